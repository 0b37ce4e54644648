package topology_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// FuzzParse checks that no input makes Parse panic or hang, and that its
// errors always have the documented form.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		topo, err := step.Parse(name, data)
		if err != nil {
			if topo != nil {
				t.Fatalf("Parse returned both a topology and an error")
			}
			topology.CheckErrorList(t, name, err)
			return
		}
		if topo == nil || len(topo.Nodes) == 0 {
			t.Fatalf("Parse returned no error and no nodes")
		}
		_ = topo.String()
		checkIPv6(t, topo)
		for _, s := range topo.Steps {
			checkStep(t, topo, s)
		}
	})
}

// checkStep checks what every step Parse accepts has: a name of one line
// within the limit, a one-line description, and references to nodes that
// exist.
func checkStep(t *testing.T, topo *topology.Topology, s topology.Step) {
	t.Helper()
	if n := utf8.RuneCountInString(s.Name); n == 0 || n > topology.MaxStepNameLen || strings.ContainsFunc(s.Name, topology.IsControl) {
		t.Errorf("step name %q is not one line of 1 to %d characters", s.Name, topology.MaxStepNameLen)
	}
	if strings.Contains(s.String(), "\n") {
		t.Errorf("step %q is described on more than one line", s.Name)
	}
	var refs []string
	between := func(pair [2]string) {
		refs = append(refs, pair[:]...)
		if pair[0] == pair[1] {
			t.Errorf("step %q is between %s and itself", s.Name, pair[0])
		}
	}
	family := func(f string) {
		if f != topology.FamilyIPv4 && f != topology.FamilyIPv6 || f == topology.FamilyIPv6 && !topo.Internet6.IsValid() {
			t.Errorf("step %q has family %q in a lab with internet6 %v", s.Name, f, topo.Internet6)
		}
	}
	nat := func(name string) {
		if n := topo.Node(name); n == nil || n.Kind != topology.KindNAT {
			t.Errorf("step %q names %q as a nat, which it is not", s.Name, name)
		}
	}
	switch u := s.Spec.(type) {
	case *step.Punch:
		between(u.Between)
		family(u.Family)
		refs = append(refs, u.Server, u.Rendezvous)
	case *step.Relay:
		between(u.Between)
		refs = append(refs, u.Server)
	case *step.ICE:
		between(u.Between)
	case *step.Upgrade:
		between(u.Between)
		refs = append(refs, u.Server, u.STUN)
	case *step.STUN:
		refs = append(append(refs, u.From, u.Server), u.Servers...)
		if (u.Server == "") == (len(u.Servers) == 0) || len(u.Servers) == 1 {
			t.Errorf("step %q has server %q and servers %v", s.Name, u.Server, u.Servers)
		}
	case *step.Send:
		family(u.Family)
		refs = append(refs, u.From, u.To, u.SeenAs)
		if u.SeenAs != "" && !u.SeenAsAddr.IsValid() {
			t.Errorf("step %q is seen as %s, which has no address", s.Name, u.SeenAs)
		}
	case *step.Table:
		nat(u.Node)
	case *step.Portmap:
		if n := topo.Node(u.From); n == nil || n.Behind == "" || !topo.Node(n.Behind).NAT.Speaks(u.Protocol) {
			t.Errorf("step %q maps a port for %q by %q, which its nat does not speak", s.Name, u.From, u.Protocol)
		}
	case *step.Tunnel:
		refs = append(refs, u.From, u.Server)
	case *step.Exec:
		if u.Node != topology.Internet {
			refs = append(refs, u.Node)
		}
		if len(u.Command) == 0 {
			t.Errorf("step %q has no command", s.Name)
		}
	case *step.Reboot:
		nat(u.Node)
		if u.Public.IsValid() && !u.Public.Is4() {
			t.Errorf("step %q reboots %s with the address %v", s.Name, u.Node, u.Public)
		}
	case *step.Renumber:
		nat(u.Node)
		if !u.Public.Is4() {
			t.Errorf("step %q renumbers %s to %v", s.Name, u.Node, u.Public)
		}
	case *step.Move:
		nat(u.Behind)
		if n := topo.Node(u.Node); n == nil || n.Kind != topology.KindHost {
			t.Errorf("step %q moves %q, which is not a host", s.Name, u.Node)
		}
	case *step.Wait:
	default:
		t.Errorf("step %q of kind %s is a %T", s.Name, s.Kind, s.Spec)
	}
	for _, name := range refs {
		if name != "" && topo.Node(name) == nil {
			t.Errorf("step %q refers to %q, which is not a node", s.Name, name)
		}
	}
}

// checkIPv6 checks that a dual-stack lab gives every node an IPv6 address
// on its uplink's /64, every LAN a /64 of its own, and that a lab without
// internet6 has no IPv6 at all.
func checkIPv6(t *testing.T, topo *topology.Topology) {
	t.Helper()
	dual := topo.Internet6.IsValid()
	lans := make(map[netip.Prefix]string)
	if dual {
		lans[topo.Internet6Segment] = topology.Internet
	}
	for _, n := range topo.Nodes {
		if !dual {
			if len(n.Addresses6) > 0 || n.NAT != nil && (n.NAT.LAN6.IsValid() || n.NAT.Firewall6 != "") {
				t.Errorf("%s has IPv6 in a lab without internet6", n.Name)
			}
			continue
		}
		if len(n.Addresses6) == 0 {
			t.Errorf("%s has no IPv6 address in a dual-stack lab", n.Name)
		}
		for _, a := range n.Addresses6 {
			if !topo.Uplink6(n).Contains(a) {
				t.Errorf("%s's IPv6 address %s is not on %s", n.Name, a, topo.Uplink6(n))
			}
		}
		if n.NAT != nil {
			lan := n.NAT.LAN6
			if lan.Bits() != 64 || !topo.Internet6.Contains(lan.Addr()) {
				t.Errorf("%s's lan6 %s is not a /64 of %s", n.Name, lan, topo.Internet6)
			}
			if other, dup := lans[lan]; dup {
				t.Errorf("%s's lan6 %s is %s's too", n.Name, lan, other)
			}
			lans[lan] = n.Name
		}
	}
}
