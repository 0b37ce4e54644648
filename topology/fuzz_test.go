package topology

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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
		topo, err := Parse(name, data)
		if err != nil {
			if topo != nil {
				t.Fatalf("Parse returned both a topology and an error")
			}
			checkErrorList(t, name, err)
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
func checkStep(t *testing.T, topo *Topology, s Step) {
	t.Helper()
	if n := utf8.RuneCountInString(s.Name); n == 0 || n > MaxStepNameLen || strings.ContainsFunc(s.Name, isControl) {
		t.Errorf("step name %q is not one line of 1 to %d characters", s.Name, MaxStepNameLen)
	}
	if strings.Contains(s.String(), "\n") {
		t.Errorf("step %q is described on more than one line", s.Name)
	}
	refs := []string{s.From, s.To, s.Server, s.Rendezvous, s.SeenAs, s.STUN}
	refs = append(refs, s.Servers...)
	switch s.Kind {
	case StepPunch, StepRelay, StepICE, StepUpgrade:
		refs = append(refs, s.Between[:]...)
		if s.Between[0] == s.Between[1] {
			t.Errorf("step %q is between %s and itself", s.Name, s.Between[0])
		}
	case StepSTUN:
		if (s.Server == "") == (len(s.Servers) == 0) || len(s.Servers) == 1 {
			t.Errorf("step %q has server %q and servers %v", s.Name, s.Server, s.Servers)
		}
	case StepTable:
		if n := topo.Node(s.Node); n == nil || n.Kind != KindNAT {
			t.Errorf("step %q reads the table of %q, which is not a nat", s.Name, s.Node)
		}
	case StepPortmap:
		if n := topo.Node(s.From); n == nil || n.Behind == "" || topo.Node(n.Behind).NAT.PortMapping != PortMappingNATPMP {
			t.Errorf("step %q maps a port for %q, which is not behind a nat with NAT-PMP", s.Name, s.From)
		}
	case StepExec:
		if s.Node != Internet {
			refs = append(refs, s.Node)
		}
		if len(s.Command) == 0 {
			t.Errorf("step %q has no command", s.Name)
		}
	}
	switch s.Kind {
	case StepSend, StepPunch:
		if s.Family != FamilyIPv4 && s.Family != FamilyIPv6 || s.Family == FamilyIPv6 && !topo.Internet6.IsValid() {
			t.Errorf("step %q has family %q in a lab with internet6 %v", s.Name, s.Family, topo.Internet6)
		}
	}
	if s.SeenAs != "" && !s.SeenAsAddr.IsValid() {
		t.Errorf("step %q is seen as %s, which has no address", s.Name, s.SeenAs)
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
func checkIPv6(t *testing.T, topo *Topology) {
	t.Helper()
	dual := topo.Internet6.IsValid()
	lans := make(map[netip.Prefix]string)
	if dual {
		lans[topo.Internet6Segment] = Internet
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
