package step

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

func TestMatchClassification(t *testing.T) {
	got := &classify.Result{Behind: true, Type: nat.Symmetric, Mapping: nat.AddressAndPortDependent,
		Filtering: nat.AddressAndPortDependent, Ports: nat.PortRandom, Hairpin: true, Pooling: nat.PoolingPaired}
	yes, no := true, false
	for _, tc := range []struct {
		want *topology.Classification
		ok   bool
		why  string
	}{
		{&topology.Classification{Type: nat.Symmetric}, true, ""},
		{&topology.Classification{Type: nat.FullCone}, false, "type is symmetric, not full-cone"},
		{&topology.Classification{Ports: nat.PortRandom, Hairpin: &yes}, true, ""},
		{&topology.Classification{Ports: nat.PortSequential, Hairpin: &no}, false, "port allocation is random, not sequential; hairpin is true, not false"},
		{&topology.Classification{Pooling: nat.PoolingPaired}, true, ""},
		{&topology.Classification{Pooling: nat.PoolingArbitrary}, false, "pooling is paired, not arbitrary"},
	} {
		ok, why := MatchClassification(tc.want, got)
		if ok != tc.ok || why != tc.why {
			t.Errorf("%v: %v %q, want %v %q", tc.want, ok, why, tc.ok, tc.why)
		}
	}
}

func TestSeenAs(t *testing.T) {
	from := netip.MustParseAddrPort("203.0.113.50:48721")
	for _, tc := range []struct {
		want netip.AddrPort
		pass bool
	}{
		{netip.AddrPort{}, true},
		{netip.MustParseAddrPort("203.0.113.50:48721"), true},
		{netip.AddrPortFrom(netip.MustParseAddr("203.0.113.50"), 0), true},
		{netip.MustParseAddrPort("203.0.113.50:48722"), false},
		{netip.AddrPortFrom(netip.MustParseAddr("203.0.113.51"), 0), false},
	} {
		s := &Send{To: "server", SeenAsAddr: tc.want}
		res := s.checkSource(from, Result{Pass: true, Observed: "delivered"})
		if res.Pass != tc.pass {
			t.Errorf("seen-as %v for a packet from %v: pass=%v, want %v (%s)", tc.want, from, res.Pass, tc.pass, res.Reason)
		}
	}
}

func TestExpected(t *testing.T) {
	two := 2
	for _, tc := range []struct {
		u    Unit
		want string
	}{
		{&Table{}, "anything"},
		{&Table{Expect: TableCounts{Mappings: &two}}, "{mappings 2}"},
		{&ICE{}, "any connection"},
		{&ICE{Expect: "relay"}, "relay"},
		{&Send{Expect: "dropped"}, "dropped"},
		{&STUN{Expect: "ok", Classification: &topology.Classification{Type: nat.Symmetric}}, "{type symmetric}"},
	} {
		if got := tc.u.Expected(); got != tc.want {
			t.Errorf("%T %+v: expected %q, want %q", tc.u, tc.u, got, tc.want)
		}
	}
}

func TestTableCountsCheck(t *testing.T) {
	two, zero := 2, 0
	for _, tc := range []struct {
		c    TableCounts
		m, f int
		want []string
	}{
		{TableCounts{}, 5, 7, nil},
		{TableCounts{Mappings: &two}, 2, 7, nil},
		{TableCounts{Mappings: &two}, 3, 7, []string{"3 mappings, not 2"}},
		{TableCounts{Mappings: &two, Flows: &zero}, 1, 1, []string{"1 mappings, not 2", "1 flows, not 0"}},
	} {
		if got := tc.c.Check(tc.m, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%v on %d/%d: %q, want %q", tc.c, tc.m, tc.f, got, tc.want)
		}
	}
}

func TestICEPasses(t *testing.T) {
	for _, tc := range []struct {
		expect, got string
		pass        bool
	}{
		{"", "host", true}, {"", "relay", true},
		{"srflx", "prflx", true}, {"prflx", "srflx", true}, {"srflx", "host", false},
		{"relay", "relay", true}, {"relay", "srflx", false}, {"host", "host", true},
	} {
		if got := ICEPasses(tc.expect, tc.got); got != tc.pass {
			t.Errorf("expect %q, selected %q: pass %v, want %v", tc.expect, tc.got, got, tc.pass)
		}
	}
}

func TestSameOrDifferent(t *testing.T) {
	a, b := netip.MustParseAddrPort("203.0.113.1:1000"), netip.MustParseAddrPort("203.0.113.1:1001")
	for _, tc := range []struct {
		publics []netip.AddrPort
		want    string
	}{
		{[]netip.AddrPort{a, a}, "same"}, {[]netip.AddrPort{a, b}, "different"}, {[]netip.AddrPort{a, a, b}, "different"},
	} {
		if got := SameOrDifferent(tc.publics); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.publics, got, tc.want)
		}
	}
}
