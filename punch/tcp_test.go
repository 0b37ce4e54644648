package punch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/service"
)

func tcpPeer(l *labtest.Lab, name string, ex punch.Exchange) punch.TCPPeer {
	return punch.TCPPeer{Name: name, Do: l.Lab.Node(name).Do, Local: l.Addr(name, 0), Exchange: ex}
}

func tcpPunchIn(l *labtest.Lab, cfg punch.Config) (*punch.Outcome, error) {
	cfg.STUN = service.PlanFor(l.Topo.Node("stun")).STUNServer()
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	board := punch.NewBoard()
	return punch.PairTCP(context.Background(), cfg, tcpPeer(l, "alice", board), tcpPeer(l, "bob", board))
}

// TestTCPPunchMatrix punches TCP (simultaneous open, with each side also
// listening on its port) across every pair of NAT types: it connects
// where theory says a punch can, the cells of the UDP matrix
// (nat.PunchWorks), since the listener that accepts a SYN from a port
// nobody announced is TCP's peer-reflexive learning, and fails where both
// mappings depend on the destination and the filtering is too strict to
// let a SYN from an unknown port in (port-restricted or symmetric against
// symmetric).
func TestTCPPunchMatrix(t *testing.T) {
	for cell, want := range matrix {
		t.Run(cell[0]+"/"+cell[1], func(t *testing.T) {
			t.Parallel()
			behaviour := func(name string) nat.Behaviour {
				typ, err := nat.ParseType(name)
				if err != nil {
					t.Fatal(err)
				}
				return nat.Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: typ.DefaultPorts()}
			}
			if theory := nat.PunchWorks(behaviour(cell[0]), behaviour(cell[1]), false); theory != want {
				t.Fatalf("the matrix says %v, nat.PunchWorks %v", want, theory)
			}
			l := labtest.Up(t, twoHomes("type: "+cell[0], "type: "+cell[1]))
			out, err := tcpPunchIn(l, punch.Config{})
			if got := err == nil; got != want {
				t.Fatalf("TCP punch %s vs %s: ok=%v (%v), want ok=%v", cell[0], cell[1], got, err, want)
			}
			if !want {
				if !errors.Is(err, punch.ErrNoPath) || !strings.Contains(err.Error(), "heard nothing") {
					t.Errorf("failure without a clear reason: %v", err)
				}
				return
			}
			if len(out.A.RTTs) != 5 || out.A.Confirmed == 0 || out.B.Confirmed == 0 {
				t.Errorf("outcome %+v %+v", out.A, out.B)
			}
			// Each saw the other at a public address of the other's NAT.
			for _, r := range []struct {
				res *punch.Result
				nat string
			}{{out.A, "nat-b"}, {out.B, "nat-a"}} {
				if r.res.Seen.Addr() != l.Addr(r.nat, 0) {
					t.Errorf("%s saw the other at %v, want %s's public address %v", r.res.Peer, r.res.Seen, r.nat, l.Addr(r.nat, 0))
				}
			}
			// Behind a symmetric NAT, the peer's connection comes from a
			// port nobody announced.
			if cell[0] == "symmetric" && !out.B.Reflexive {
				t.Errorf("bob saw alice at %v, an announced endpoint %v; want peer-reflexive", out.B.Seen, out.B.Announced)
			}
		})
	}
}

// Two hosts behind one NAT that does not hairpin reach each other over
// TCP at their own addresses, announced beside their public endpoints.
func TestTCPPunchSameLAN(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  stun:  {kind: server, services: [stun]}
  home:  {kind: nat, type: symmetric, hairpin: false}
  alice: {kind: host, behind: home}
  bob:   {kind: host, behind: home}
`)
	out, err := tcpPunchIn(l, punch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if out.A.Seen.Addr() != l.Addr("bob", 0) {
		t.Errorf("alice reached bob at %v, want his LAN address %v", out.A.Seen, l.Addr("bob", 0))
	}
}
