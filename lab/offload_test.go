package lab_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/nattable"
)

// On a kernel with the nftables flowtable (make vm-test's Debian kernel)
// a NAT whose timeout is long enough offloads its established flows, and
// its mappings live as long as conntrack's entries of their flows: a
// mapping carrying traffic past its timeout stays, another remote still
// reaches it (endpoint-independent filtering, through the ports map), and
// once idle it goes its timeout after the last packet, to within a
// second or two. This kernel has no flowtable: the lab comes up with the
// per-packet rules, and the test says so.
func TestOffloadKeepsMappings(t *testing.T) {
	lifetime := natrules.OffloadMinLifetime
	l := natLab(t, fmt.Sprintf("type: full-cone, timeout: %v", lifetime))
	st, err := labstate.Load(l.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Flowtable {
		t.Skip("this kernel has no nftables flowtable: the NAT keeps its per-packet rules")
	}
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	table := func() *nattable.Table {
		t.Helper()
		tab, err := nattable.Read(context.Background(), ns.Fd(), l.Addr("nat", 0))
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	mapped := func(public string) (nattable.Mapping, bool) {
		for _, m := range table().Mappings {
			if m.Public.String() == public {
				return m, true
			}
		}
		return nattable.Mapping{}, false
	}

	s := openServers(l)
	h := l.UDP("h1", "")
	public := s.seen(t, h, s.a1p1)
	// Both ways, so that the flow is established and offloaded.
	exchange := func() {
		t.Helper()
		h.Send(s.addr[s.a1p1], "ping")
		s.a1p1.Expect("ping", arrival)
		s.a1p1.Send(public, "pong")
		h.Expect("pong", arrival)
	}
	for end := time.Now().Add(lifetime + 5*time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		exchange()
	}
	if !offloaded(t, ns.Fd(), public.Port()) {
		t.Error("the flow through the NAT is not offloaded (IPS_OFFLOAD) after its packets went both ways")
	}
	m, ok := mapped(public.String())
	if !ok {
		t.Fatalf("after %v of traffic, more than the timeout of %v, the mapping of %v is gone", lifetime+5*time.Second, lifetime, public)
	}
	if !m.Offloaded {
		t.Errorf("natlab table does not say the mapping's flow is offloaded: %+v", m)
	}
	s.a2p2.Send(public, "another remote")
	h.Expect("another remote", arrival)
	// That packet started a flow of its own, which keeps the mapping too:
	// the last packet was now.
	last := time.Now()
	const slack = 2500 * time.Millisecond
	time.Sleep(lifetime - slack - time.Since(last))
	if _, ok := mapped(public.String()); !ok {
		t.Errorf("the mapping went less than %v after its last packet, its timeout %v", lifetime-slack, lifetime)
	}
	for {
		if _, ok := mapped(public.String()); !ok {
			t.Logf("the mapping went %v after its last packet (timeout %v)", time.Since(last).Round(10*time.Millisecond), lifetime)
			break
		}
		if time.Since(last) > lifetime+slack {
			t.Fatalf("the mapping is still there %v after its last packet, its timeout %v", time.Since(last), lifetime)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.a2p2.Send(public, "after it went")
	if h.Arrives("after it went", silence) {
		t.Error("a packet to the expired mapping came through")
	}
}

// offloaded says whether the NAT's conntrack entry of the flow whose
// public port is port is offloaded to the flowtable.
func offloaded(t *testing.T, nsFd int, port uint16) bool {
	t.Helper()
	c, err := conntrack.Dial(&netlink.Config{NetNS: nsFd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if f.TupleReply.Proto.DestinationPort == port {
			return f.Status.Offload()
		}
	}
	t.Fatalf("the NAT has no conntrack entry of public port %d", port)
	return false
}
