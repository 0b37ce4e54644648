package topology

import (
	"fmt"
	"strings"
	"testing"
)

// A segment holds as many nodes as a Linux bridge has ports, and one more
// is refused where it is written, however the nodes are spread.
func TestSegmentLimits(t *testing.T) {
	// lab writes a file of nats ("" for the internet) with hosts[i]
	// hosts behind nats[i], each nat with a LAN large enough that
	// addresses never run out first, and returns it with the line and
	// column of each host's behind: value (of its name for hosts on the
	// internet).
	lab := func(nats []string, hosts []int) (string, map[string]Position) {
		var b strings.Builder
		b.WriteString("name: big\ninternet: 10.128.0.0/9\nnodes:\n")
		line := 4
		pos := map[string]Position{}
		for i, nat := range nats {
			if nat != "" {
				lan := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
				if hosts[i] > 250 {
					lan = fmt.Sprintf("10.%d.0.0/16", 64+i)
				}
				fmt.Fprintf(&b, "  %s: {kind: nat, lan: %s}\n", nat, lan)
				line++
			}
			for j := range hosts[i] {
				name := fmt.Sprintf("h%d-%d", i, j+1)
				text := fmt.Sprintf("  %s: {kind: host}", name)
				col := 3
				if nat != "" {
					text = fmt.Sprintf("  %s: {kind: host, behind: %s}", name, nat)
					col = strings.LastIndex(text, nat) + 1
				}
				b.WriteString(text + "\n")
				pos[name] = Position{File: "big.yaml", Line: line, Column: col}
				line++
			}
		}
		return b.String(), pos
	}
	for _, tc := range []struct {
		name  string
		nats  []string
		hosts []int
		// at are the hosts the errors are at; msgs what they say.
		at   []string
		msgs []string
	}{
		{name: "full LAN", nats: []string{"nat-a"}, hosts: []int{MaxNodesPerSegment}},
		{name: "full internet", nats: []string{""}, hosts: []int{MaxNodesPerSegment}},
		{name: "two full LANs", nats: []string{"nat-a", "nat-b"}, hosts: []int{MaxNodesPerSegment, MaxNodesPerSegment}},
		{
			name: "one too many behind a nat", nats: []string{"nat-a"}, hosts: []int{MaxNodesPerSegment + 1},
			at:   []string{"h0-1024"},
			msgs: []string{"nodes.h0-1024.behind: 1024 nodes are behind nat-a, and a LAN holds at most 1023: natlab plugs each into the LAN's Linux bridge, which has at most 1023 ports; put some behind another nat, which may itself be behind nat-a"},
		},
		{
			// The lab of the report: up failed after 12 s with
			// "add veth h1024/eth0: exchange full".
			name: "4999 behind a nat", nats: []string{"nat-a"}, hosts: []int{4999},
			at:   []string{"h0-1024"},
			msgs: []string{"nodes.h0-1024.behind: 4999 nodes are behind nat-a, and a LAN holds at most 1023: natlab plugs each into the LAN's Linux bridge, which has at most 1023 ports; put some behind another nat, which may itself be behind nat-a"},
		},
		{
			name: "one too many on the internet", nats: []string{""}, hosts: []int{MaxNodesPerSegment + 1},
			at:   []string{"h0-1024"},
			msgs: []string{"nodes.h0-1024: 1024 nodes are on the internet, and it holds at most 1023: natlab plugs each into one Linux bridge, which has at most 1023 ports; put some behind a nat"},
		},
		{
			// The nats count on the internet's bridge too: 1000 nats and
			// 24 hosts there make 1024.
			name: "nats on the internet count", nats: append(make([]string, 1), natNames(1000)...), hosts: append([]int{24}, make([]int, 1000)...),
			at:   []string{"nat-1000"},
			msgs: []string{"nodes.nat-1000: 1024 nodes are on the internet, and it holds at most 1023: natlab plugs each into one Linux bridge, which has at most 1023 ports; put some behind a nat"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, pos := lab(tc.nats, tc.hosts)
			topo, err := Parse("big.yaml", []byte(data), nil)
			if len(tc.msgs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(topo.Nodes) == 0 {
					t.Fatal("no nodes")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %d hosts", len(pos))
			}
			CheckErrorList(t, "big.yaml", err)
			var want []string
			for i, at := range tc.at {
				p, ok := pos[at]
				if !ok && strings.HasPrefix(at, "nat-") {
					// A nat: its name is at the start of its line.
					p = natPosition(data, at)
				}
				want = append(want, (&Error{Pos: p, Msg: tc.msgs[i]}).Error())
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// natNames are nat-1 to nat-n.
func natNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("nat-%d", i+1)
	}
	return names
}

// natPosition is where the node called name is defined in data.
func natPosition(data, name string) Position {
	for i, line := range strings.Split(data, "\n") {
		if strings.HasPrefix(line, "  "+name+":") {
			return Position{File: "big.yaml", Line: i + 1, Column: 3}
		}
	}
	return Position{}
}
