package runner

import (
	"net/netip"
	"testing"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

func TestMatchClassification(t *testing.T) {
	got := &classify.Result{Behind: true, Type: nat.Symmetric, Mapping: nat.AddressAndPortDependent,
		Filtering: nat.AddressAndPortDependent, Ports: nat.PortRandom, Hairpin: true}
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
	} {
		ok, why := matchClassification(tc.want, got)
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
		s := topology.Step{To: "server", SeenAsAddr: tc.want}
		res := seenAs(s, from, StepResult{Pass: true, Observed: "delivered"})
		if res.Pass != tc.pass {
			t.Errorf("seen-as %v for a packet from %v: pass=%v, want %v (%s)", tc.want, from, res.Pass, tc.pass, res.Reason)
		}
	}
}

func TestExpectWord(t *testing.T) {
	two := 2
	for _, tc := range []struct {
		s    topology.Step
		want string
	}{
		{topology.Step{Kind: topology.StepTable}, "anything"},
		{topology.Step{Kind: topology.StepTable, Expect: topology.Expect{Mappings: &two}}, "{mappings 2}"},
		{topology.Step{Kind: topology.StepICE}, "any connection"},
		{topology.Step{Kind: topology.StepSend, Expect: topology.Expect{Outcome: "dropped"}}, "dropped"},
	} {
		if got := expectWord(tc.s); got != tc.want {
			t.Errorf("expectWord(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
