package natrules

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/natlab/natlab/nat"
)

func TestTableDescriptors(t *testing.T) {
	for _, tc := range []struct {
		got    *nftables.Table
		name   string
		family nftables.TableFamily
	}{
		{Table(), "natlab", nftables.TableFamilyIPv4},
		{TableFirewall6(), "natlab6", nftables.TableFamilyIPv6},
		{TraceTable(), "natlab_trace", nftables.TableFamilyIPv4},
		{TableHostFirewall(), "natlab_firewall", nftables.TableFamilyINet},
	} {
		if tc.got.Name != tc.name || tc.got.Family != tc.family {
			t.Errorf("table %q family %v, want %q family %v", tc.got.Name, tc.got.Family, tc.name, tc.family)
		}
	}
	// Each call is a table of its own: a caller may not change another's.
	Table().Name = "changed"
	if Table().Name != TableName {
		t.Error("Table returns one shared descriptor")
	}
	// What Build loads is the table the others look up.
	for name, rs := range allCases(t) {
		want := Table()
		switch {
		case strings.HasPrefix(name, "firewall6-"):
			want = TableFirewall6()
		case strings.HasPrefix(name, "host-firewall"):
			want = TableHostFirewall()
		}
		if got := rs.Table(); got.Name != want.Name || got.Family != want.Family {
			t.Errorf("%s: Build's table is %q family %v, want %q family %v", name, got.Name, got.Family, want.Name, want.Family)
		}
	}
}

var (
	private = netip.MustParseAddrPort("192.168.1.2:4660") // port 0x1234
	remote  = netip.MustParseAddr("198.51.100.7")
)

// The byte layouts, written out: network byte order, single values as long
// as they are, every value of a concatenation on a 4-byte register.
func TestElementLayouts(t *testing.T) {
	tests := []struct {
		name      string
		elem      nftables.SetElement
		key, data []byte
	}{
		{"owner", Owner{Public: 0xabcd, Private: private}.Element(0),
			[]byte{0xab, 0xcd},
			[]byte{192, 168, 1, 2, 0x12, 0x34, 0, 0}},
		{"owner, port 1", Owner{Public: 1, Private: netip.MustParseAddrPort("10.0.0.1:65535")}.Element(0),
			[]byte{0, 1},
			[]byte{10, 0, 0, 1, 0xff, 0xff, 0, 0}},
		{"mapping, endpoint-independent", Mapping{Private: private, Public: 0xabcd}.Element(0),
			[]byte{192, 168, 1, 2, 0x12, 0x34, 0, 0},
			[]byte{0xab, 0xcd}},
		{"mapping, address-dependent", Mapping{Private: private, Remote: remote, Public: 0xabcd}.Element(0),
			[]byte{192, 168, 1, 2, 0x12, 0x34, 0, 0, 198, 51, 100, 7},
			[]byte{0xab, 0xcd}},
		{"permit", Permit{Remote: remote, Public: 0xabcd}.Element(0),
			[]byte{198, 51, 100, 7, 0xab, 0xcd, 0, 0},
			nil},
		{"hairpin permit", HairpinPermit{Remote: netip.MustParseAddrPort("203.0.113.1:4660"), Public: 0xabcd}.Element(0),
			[]byte{203, 0, 113, 1, 0x12, 0x34, 0, 0, 0xab, 0xcd, 0, 0},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Equal(tc.elem.Key, tc.key) {
				t.Errorf("key % x, want % x", tc.elem.Key, tc.key)
			}
			if !bytes.Equal(tc.elem.Val, tc.data) {
				t.Errorf("data % x, want % x", tc.elem.Val, tc.data)
			}
		})
	}
}

// The layouts are the sets': a key or data as long as the set declares it,
// which is what the kernel checks an element against.
func TestElementsFitTheirSets(t *testing.T) {
	setsOf := func(c Config) map[string]*nftables.Set {
		rs, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		sets := map[string]*nftables.Set{}
		for _, s := range rs.sets {
			sets[s.spec.Name] = s.spec
		}
		return sets
	}
	for _, tc := range goldenCases() {
		c := tc.cfg
		if c.OneToOne.IsValid() || len(c.Pool) > 0 || c.Blocks.Enabled() || c.Offload {
			// No maps, and no port mapping to ask for; a pool has no
			// port mapping either.
			continue
		}
		c.PortMapping = true
		sets := setsOf(c)
		mapping := Mapping{Private: private, Public: 1}
		if c.Behaviour.Mapping == nat.AddressDependent {
			mapping.Remote = remote
		}
		for _, e := range []struct {
			set  string
			elem nftables.SetElement
		}{
			{PortsSet, Owner{Public: 1, Private: private}.Element(0)},
			{PortMapTCP, Owner{Public: 1, Private: private}.Element(0)},
			{PortMapUDP, Owner{Public: 1, Private: private}.Element(0)},
			{MappingsSet, mapping.Element(0)},
			{PermitsSet, Permit{Remote: remote, Public: 1}.Element(0)},
			{HairpinPermitsSet, HairpinPermit{Remote: netip.AddrPortFrom(remote, 2), Public: 1}.Element(0)},
		} {
			s, ok := sets[e.set]
			if !ok {
				continue
			}
			if s.KeyType.Bytes != uint32(len(e.elem.Key)) {
				t.Errorf("%s: set %s has %d-byte keys, its element %d", tc.name, e.set, s.KeyType.Bytes, len(e.elem.Key))
			}
			if s.IsMap && s.DataType.Bytes != uint32(len(e.elem.Val)) || !s.IsMap && e.elem.Val != nil {
				t.Errorf("%s: set %s has %d-byte data (map %v), its element %d", tc.name, e.set, s.DataType.Bytes, s.IsMap, len(e.elem.Val))
			}
		}
	}
}

func TestElementRoundTrips(t *testing.T) {
	for _, o := range []Owner{
		{Public: 0xabcd, Private: private},
		{Public: 1, Private: netip.MustParseAddrPort("10.0.0.1:65535")},
		{Public: 65535, Private: netip.MustParseAddrPort("255.255.255.255:1")},
	} {
		if got, err := ParseOwner(o.Element(time.Minute)); err != nil || got != o {
			t.Errorf("ParseOwner(%+v) = %+v, %v", o, got, err)
		}
	}
	for _, m := range []Mapping{
		{Private: private, Public: 0xabcd},
		{Private: private, Remote: remote, Public: 0xabcd},
		{Private: netip.MustParseAddrPort("10.0.0.1:256"), Remote: netip.MustParseAddr("0.0.0.1"), Public: 255},
	} {
		if got, err := ParseMapping(m.Element(0)); err != nil || got != m {
			t.Errorf("ParseMapping(%+v) = %+v, %v", m, got, err)
		}
	}
	for _, p := range []Permit{{Remote: remote, Public: 0xabcd}, {Remote: netip.MustParseAddr("1.2.3.4"), Public: 1}} {
		if got, err := ParsePermit(p.Element(0)); err != nil || got != p {
			t.Errorf("ParsePermit(%+v) = %+v, %v", p, got, err)
		}
	}
	for _, p := range []HairpinPermit{{Remote: netip.MustParseAddrPort("203.0.113.1:65535"), Public: 0xabcd}, {Remote: netip.MustParseAddrPort("1.2.3.4:1"), Public: 1}} {
		if got, err := ParseHairpinPermit(p.Element(0)); err != nil || got != p {
			t.Errorf("ParseHairpinPermit(%+v) = %+v, %v", p, got, err)
		}
	}
}

// The kernel returns what a rule stored, padding and all; what is not an
// element of the set is an error, never a wrong row.
func TestParseRejectsOtherLayouts(t *testing.T) {
	endpoint := []byte{192, 168, 1, 2, 0x12, 0x34, 0, 0}
	tests := []struct {
		name  string
		parse func(nftables.SetElement) error
		elem  nftables.SetElement
		want  string
	}{
		{"owner, key padded", parseOwner, nftables.SetElement{Key: []byte{0xab, 0xcd, 0, 0}, Val: endpoint}, "key"},
		{"owner, data unpadded", parseOwner, nftables.SetElement{Key: []byte{0xab, 0xcd}, Val: endpoint[:6]}, "data"},
		{"owner, no data", parseOwner, nftables.SetElement{Key: []byte{0xab, 0xcd}}, "data"},
		{"mapping, key of 6", parseMapping, nftables.SetElement{Key: endpoint[:6], Val: []byte{0xab, 0xcd}}, "key"},
		{"mapping, key of 16", parseMapping, nftables.SetElement{Key: append(endpoint, endpoint...), Val: []byte{0xab, 0xcd}}, "key"},
		{"mapping, data padded", parseMapping, nftables.SetElement{Key: endpoint, Val: []byte{0xab, 0xcd, 0, 0}}, "data"},
		{"permit, key of 12", parsePermit, nftables.SetElement{Key: append(endpoint, 1, 2, 3, 4)}, "key"},
		{"hairpin permit, key of 8", parseHairpinPermit, nftables.SetElement{Key: endpoint}, "key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.elem); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about the %s", err, tc.want)
			}
		})
	}
}

func parseOwner(e nftables.SetElement) error   { _, err := ParseOwner(e); return err }
func parseMapping(e nftables.SetElement) error { _, err := ParseMapping(e); return err }
func parsePermit(e nftables.SetElement) error  { _, err := ParsePermit(e); return err }
func parseHairpinPermit(e nftables.SetElement) error {
	_, err := ParseHairpinPermit(e)
	return err
}

func TestLease(t *testing.T) {
	owner := Owner{Public: 5000, Private: private}.Element(time.Minute)
	forward := owner
	forward.Comment = "pcp"
	tests := []struct {
		proto string
		want  []LeaseEntry
	}{
		{"tcp", []LeaseEntry{
			{Set: PortMapTCP, Element: forward},
			{Set: TCPPortsSet, Element: owner},
			{Set: TCPMappingsSet, Optional: true, Element: Mapping{Private: private, Public: 5000}.Element(time.Minute)},
		}},
		{"udp", []LeaseEntry{
			{Set: PortMapUDP, Element: forward},
			{Set: PortsSet, Element: owner},
			{Set: MappingsSet, Optional: true, Element: Mapping{Private: private, Public: 5000}.Element(time.Minute)},
		}},
	}
	for _, tc := range tests {
		got, err := Lease(tc.proto, 5000, private, time.Minute, "pcp")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d entries, want %d: %+v", tc.proto, len(got), len(tc.want), got)
		}
		for i, e := range got {
			w := tc.want[i]
			if e.Set != w.Set || e.Optional != w.Optional || !bytes.Equal(e.Element.Key, w.Element.Key) ||
				!bytes.Equal(e.Element.Val, w.Element.Val) || e.Element.Timeout != time.Minute || e.Element.Comment != w.Element.Comment {
				t.Errorf("%s: entry %d is %+v, want %+v", tc.proto, i, e, w)
			}
		}
	}
	for _, bad := range []struct {
		proto   string
		private netip.AddrPort
	}{{"sctp", private}, {"udp", netip.MustParseAddrPort("[2001:db8::1]:1")}} {
		if _, err := Lease(bad.proto, 1, bad.private, time.Minute, "nat-pmp"); err == nil {
			t.Errorf("Lease(%q, %v) accepted", bad.proto, bad.private)
		}
	}
	// A lease fits the maps of every NAT with port mapping, bar the
	// mappings map of address-dependent mapping, keyed by the remote
	// too; nothing else is optional.
	udp, _ := Lease("udp", 5000, private, time.Minute, "nat-pmp")
	tcp, _ := Lease("tcp", 5000, private, time.Minute, "nat-pmp")
	entries := append(udp, tcp...)
	for _, tc := range goldenCases() {
		c := tc.cfg
		if c.OneToOne.IsValid() || len(c.Pool) > 0 || c.Blocks.Enabled() || c.Offload {
			continue
		}
		c.PortMapping = true
		rs, err := Build(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for _, s := range rs.sets {
				if s.spec.Name != e.Set {
					continue
				}
				wantFit := !((e.Set == MappingsSet || e.Set == TCPMappingsSet) && c.Behaviour.Mapping == nat.AddressDependent)
				if e.Fits(s.spec) != wantFit {
					t.Errorf("%s: the lease's %s entry fits %v, want %v", tc.name, e.Set, e.Fits(s.spec), wantFit)
				}
			}
		}
	}
}

func TestPortMapSet(t *testing.T) {
	for proto, want := range map[string]string{"tcp": PortMapTCP, "udp": PortMapUDP, "icmp": ""} {
		if got := PortMapSet(proto); got != want {
			t.Errorf("PortMapSet(%q) = %q, want %q", proto, got, want)
		}
	}
}
