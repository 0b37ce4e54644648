package labtest_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/nat"
)

// A grid of every pair of NAT types, each pair in a lab of its own, as a
// project checks its own stack: here the stack is a hole punch of plain
// UDP sockets (punch below). The outcome lands in grid.md and grid.html.
func ExampleGrid() {
	var t *testing.T // the test's own t, in a real test
	g := labtest.Grid{
		Presets:  labtest.TypePresets(nat.Types...),
		Markdown: "grid.md",
		HTML:     "grid.html",
	}
	g.Run(t, func(t *testing.T, lb *labtest.Lab) string {
		// alice is behind NAT "a" (the row's type), bob behind "b".
		if punch(t, lb) {
			return "direct"
		}
		return "no path"
	})
}

// The grid of the classic types on real labs: each cell punches a hole
// between alice and bob, and what it finds must be what theory says
// (nat.PunchWorks); the files it writes hold every cell.
func TestPunchGrid(t *testing.T) {
	labtest.Require(t)
	dir := t.TempDir()
	g := labtest.Grid{
		Presets:   labtest.TypePresets(nat.FullCone, nat.PortRestrictedCone, nat.Symmetric),
		Lab:       plainPair,
		Unordered: true,
		Markdown:  filepath.Join(dir, "grid.md"),
		HTML:      filepath.Join(dir, "grid.html"),
	}
	out := g.Run(t, func(t *testing.T, lb *labtest.Lab) string {
		a, b := lb.Topology.Node("a").NAT.Behaviour, lb.Topology.Node("b").NAT.Behaviour
		want := nat.PunchWorks(a, b, false)
		got := punch(t, lb)
		if got != want {
			t.Errorf("%v and %v: a path %v, theory says %v", a, b, got, want)
		}
		if got {
			return "direct"
		}
		return "no path"
	})
	if t.Failed() {
		return
	}
	if len(out.Cells) != 6 {
		t.Errorf("%d cells ran, want 6 (3 types, unordered)", len(out.Cells))
	}
	md, err := os.ReadFile(g.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(g.HTML)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| **full-cone** | direct (", "| **symmetric** | = | = | no path ("} {
		if !strings.Contains(string(md), want) {
			t.Errorf("grid.md has no %q:\n%s", want, md)
		}
	}
	if !bytes.Contains(html, []byte(`<td class="pass">no path (`)) {
		t.Errorf("grid.html has no passing no-path cell:\n%s", html)
	}
}

// plainPair is PairSpec without STUN: the cells' server is a socket of the
// test's own, which says where each packet came from.
func plainPair(row, col labtest.Preset) labtest.Spec {
	s := labtest.PairSpec(row, col)
	s.Nodes[0].Services = nil
	return s
}

// punch is a hole punch of plain UDP sockets between alice and bob: each
// learns its public endpoint from the server, both send to each other's,
// and each answers to wherever the other's packets come from, as ICE's
// peer-reflexive candidates do. It reports whether both heard the other.
func punch(t *testing.T, lb *labtest.Lab) bool {
	t.Helper()
	server, err := lb.Node("server").ListenUDP("udp4", ":3478")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := server.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			server.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	}()
	serverAt := netip.AddrPortFrom(lb.Node("server").Addr(), 3478)
	peers := []string{"alice", "bob"}
	conns := make([]*net.UDPConn, 2)
	public := make([]netip.AddrPort, 2)
	for i, name := range peers {
		c, err := lb.Node(name).ListenUDP("udp4", ":4000")
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		if public[i], err = ask(c, serverAt); err != nil {
			t.Fatalf("%s asks the server where it is: %v", name, err)
		}
	}
	heard := make([]bool, 2)
	var wg sync.WaitGroup
	for i, c := range conns {
		other := public[1-i]
		wg.Go(func() {
			deadline := time.Now().Add(1500 * time.Millisecond)
			buf := make([]byte, 64)
			for time.Now().Before(deadline) && !heard[i] {
				c.WriteToUDPAddrPort([]byte("punch"), other)
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				_, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					continue
				}
				if from != serverAt {
					heard[i] = true
					// Answer where it came from, and keep answering a
					// little so the other side hears it too.
					for range 5 {
						c.WriteToUDPAddrPort([]byte("ack"), from)
					}
				}
			}
		})
	}
	wg.Wait()
	return heard[0] && heard[1]
}

// ask sends to the server and reads the public endpoint it saw.
func ask(c *net.UDPConn, server netip.AddrPort) (netip.AddrPort, error) {
	buf := make([]byte, 64)
	for range 10 {
		c.WriteToUDPAddrPort([]byte("where"), server)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || from != server {
			continue
		}
		return netip.ParseAddrPort(string(buf[:n]))
	}
	return netip.AddrPort{}, errors.New("no answer")
}
