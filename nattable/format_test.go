package nattable_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/step"
)

// An empty table is empty lists in JSON, not null.
func TestJSONEmptyLists(t *testing.T) {
	for _, tab := range []*nattable.Table{{}, {Flows: []nattable.Flow{}}} {
		data, err := json.Marshal(tab)
		if err != nil || string(data) != `{"flows":[],"mappings":[]}` {
			t.Errorf("%+v as JSON: %s, %v", tab, data, err)
		}
	}
}

// Time left is written as natlab writes durations everywhere: 1h, 2m30s.
func TestWriteDurations(t *testing.T) {
	ap := netip.MustParseAddrPort
	tab := &nattable.Table{
		Flows: []nattable.Flow{{Proto: "udp", Private: ap("192.168.1.2:5000"), Public: ap("203.0.113.1:5000"), Remote: ap("203.0.113.10:3478"), State: "replied", Expires: 29*time.Second + 400*time.Millisecond}},
		Mappings: []nattable.Mapping{{Public: ap("203.0.113.1:5000"), Private: ap("192.168.1.2:5000"), Expires: 150 * time.Second},
			{Public: ap("203.0.113.1:5001"), Private: ap("192.168.1.2:5001"), Offloaded: true}},
		Forwards: []nattable.Forward{
			{Proto: "tcp", Public: ap("203.0.113.1:25565"), Private: ap("192.168.1.2:25565"), By: nattable.ByNATPMP, Expires: 3600 * time.Second},
			{Proto: "udp", Public: ap("203.0.113.1:27015"), Private: ap("192.168.1.3:27015"), By: nattable.ByScenario},
		},
	}
	var b bytes.Buffer
	if err := nattable.Write(&b, tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replied  29s  ", "192.168.1.2:5000  2m30s\n", "nat-pmp   1h\n", "scenario  never\n", "192.168.1.2:5001  when idle (offloaded)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("want %q in\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "3600s") || strings.Contains(b.String(), "150s") {
		t.Errorf("durations in seconds:\n%s", b.String())
	}
}

// A NAT with port blocks lists its subscribers in the order of their
// addresses, each with its blocks and the ports its mappings hold, in
// the table and its JSON.
func TestSubscribers(t *testing.T) {
	topo, err := step.Parse("f.yaml", []byte("nodes:\n  mobile: {kind: nat, port-range: 40000-40007, port-block: 2}\n  tablet: {kind: host, behind: mobile, address: 192.168.1.9}\n  phone: {kind: host, behind: mobile}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	tab := &nattable.Table{
		Mappings:    []nattable.Mapping{{Public: ap("203.0.113.1:40000"), Private: ap("192.168.1.2:5000")}, {Public: ap("203.0.113.1:40001"), Private: ap("192.168.1.2:5001")}},
		TCPMappings: []nattable.Mapping{{Public: ap("203.0.113.1:40003"), Private: ap("192.168.1.9:6000")}},
	}
	tab.AddBlocks(topo, topo.Node("mobile"))
	var b strings.Builder
	if err := nattable.Write(&b, tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"phone       192.168.1.2  40000-40001  2, 0               2", "tablet      192.168.1.9  40002-40003  0, 1               2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table has no line %q:\n%s", want, b.String())
		}
	}
	data, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"subscribers":[{"node":"phone","address":"192.168.1.2","quota":2,"in_use":{"tcp":0,"udp":2},"blocks":["40000-40001"]}`; !strings.Contains(string(data), want) {
		t.Errorf("JSON %s\nwants %s", data, want)
	}
}
