package graph

import (
	"fmt"
	"strings"
	"testing"

	"github.com/natlab/natlab/topology"
)

// bigLab is n NATs with hosts hosts each, a CGNAT with a home behind it,
// and two servers: 2+n*(1+hosts)+3 nodes.
func bigLab(n, hosts int) string {
	var b strings.Builder
	b.WriteString("nodes:\n  stun: {kind: server, services: [stun]}\n  turn: {kind: server, services: [turn]}\n")
	b.WriteString("  cgn: {kind: nat, type: symmetric, lan: 100.64.0.0/10}\n  home: {kind: nat, behind: cgn}\n  tv: {kind: host, behind: home}\n")
	for i := range n {
		fmt.Fprintf(&b, "  nat%d: {kind: nat}\n", i)
		for j := range hosts {
			fmt.Fprintf(&b, "  h%d-%d: {kind: host, behind: nat%d}\n", i, j, i)
		}
	}
	return b.String()
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
		wrapped  bool
	}{
		{"one host", "nodes: {h: {kind: host}}", false},
		{"two homes", "nodes: {s: {kind: server}, a: {kind: nat}, b: {kind: nat}, x: {kind: host, behind: a}, y: {kind: host, behind: b}}", false},
		{"50 nodes", bigLab(9, 4), true},
		{"wide LAN", bigLab(1, 40), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := topology.Parse("lab.yaml", []byte(tc.scenario), nil)
			if err != nil {
				t.Fatal(err)
			}
			s := DefaultSizes
			l := Place(topo, s)
			if len(l.Boxes) != len(topo.Nodes)+1 {
				t.Fatalf("%d boxes for %d nodes and the internet", len(l.Boxes), len(topo.Nodes))
			}
			if l.Width > s.MaxWidth+2*s.Margin+laneW {
				t.Errorf("width %d, want at most MaxWidth %d plus margins", l.Width, s.MaxWidth)
			}
			if got := l.Height > 3*(s.BoxH+s.GapY)+2*s.Margin; got != tc.wrapped && tc.name != "50 nodes" {
				t.Errorf("height %d: wrapped=%v, want %v", l.Height, got, tc.wrapped)
			}
			for i, a := range l.Boxes {
				if a.X < 0 || a.Y < 0 || a.X+a.W > l.Width || a.Y+a.H > l.Height {
					t.Errorf("%s at %d,%d is outside the %dx%d picture", a.Name, a.X, a.Y, l.Width, l.Height)
				}
				for _, b := range l.Boxes[i+1:] {
					if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
						t.Errorf("%s and %s overlap", a.Name, b.Name)
					}
				}
				if a.Name == topology.Internet {
					if a.Parent != "" || len(a.Up) != 0 {
						t.Errorf("the internet has a parent %q or a wire up", a.Parent)
					}
					continue
				}
				p := l.Box(a.Parent)
				want := parent(topo.Node(a.Name))
				if p == nil || p.Name != want {
					t.Fatalf("%s's parent box is %v, want %s", a.Name, p, want)
				}
				first, last := a.Up[0], a.Up[len(a.Up)-1]
				if first != (Point{a.X + a.W/2, a.Y}) || last != (Point{p.X + p.W/2, p.Y + p.H}) {
					t.Errorf("%s's wire runs %v to %v, want from its top to its parent's bottom", a.Name, first, last)
				}
				for k := 1; k < len(a.Up); k++ {
					if a.Up[k].X != a.Up[k-1].X && a.Up[k].Y != a.Up[k-1].Y {
						t.Errorf("%s's wire has a slanted piece %v-%v", a.Name, a.Up[k-1], a.Up[k])
					}
				}
			}
		})
	}
}
