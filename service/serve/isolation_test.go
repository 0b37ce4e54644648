package serve_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/service"
)

const rendezvousLab = `
nodes:
  srv:   {kind: server, services: [rendezvous]}
  home:  {kind: nat, type: full-cone}
  alice: {kind: host, behind: home}
  bob:   {kind: host}
`

// Two labs up at once use the same addresses, each in its own namespaces:
// each has its own rendezvous service, and what a peer registers in one
// is never seen from the other, not even by a fetch already waiting when
// the registration arrives.
func TestRendezvousIsolatedBetweenLabs(t *testing.T) {
	a := labtest.Up(t, rendezvousLab)
	b := labtest.Up(t, rendezvousLab)
	base := service.PlanFor(a.Topo.Node("srv")).RendezvousURL()
	if other := service.PlanFor(b.Topo.Node("srv")).RendezvousURL(); other != base {
		t.Fatalf("the labs' services are at %s and %s; the test needs them at the same address", base, other)
	}
	client := func(l *labtest.Lab, node string) *rendezvous.Client {
		tr := &http.Transport{DialContext: l.DialContext(node)}
		t.Cleanup(tr.CloseIdleConnections)
		return &rendezvous.Client{HTTP: &http.Client{Transport: tr}, Base: base}
	}
	ctx := context.Background()
	aliceA, bobA := client(a, "alice"), client(a, "bob")
	aliceB, bobB := client(b, "alice"), client(b, "bob")
	epA := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:1111")}
	epB := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.2:2222")}

	// The same peer in the same session in both labs, each with its own
	// endpoints: each lab returns its own.
	if err := aliceA.Register(ctx, "s", "alice", epA); err != nil {
		t.Fatal(err)
	}
	if err := aliceB.Register(ctx, "s", "alice", epB); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lab  string
		from *rendezvous.Client
		want []netip.AddrPort
	}{{"A", bobA, epA}, {"B", bobB, epB}} {
		reg, err := c.from.Fetch(ctx, "s", "alice", time.Second)
		if err != nil || !slices.Equal(reg.Endpoints, c.want) {
			t.Errorf("lab %s: bob fetched alice: %+v, %v; want endpoints %v", c.lab, reg, err, c.want)
		}
	}

	// A peer registered in one lab only is not there in the other.
	if err := aliceA.Register(ctx, "s", "only-a", epA); err != nil {
		t.Fatal(err)
	}
	if err := bobB.Register(ctx, "s", "only-b", epB); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lab, peer string
		from      *rendezvous.Client
	}{{"B", "only-a", bobB}, {"B", "only-a", aliceB}, {"A", "only-b", bobA}, {"A", "only-b", aliceA}} {
		if reg, err := c.from.Fetch(ctx, "s", c.peer, 200*time.Millisecond); !errors.Is(err, rendezvous.ErrNotRegistered) {
			t.Errorf("lab %s fetched %s, registered in the other lab: %+v, %v; want not registered", c.lab, c.peer, reg, err)
		}
	}

	// A fetch waiting in A is not woken by a registration in B, and does
	// get the one that then comes in A.
	type fetched struct {
		reg rendezvous.Registration
		err error
	}
	waiting := make(chan fetched, 1)
	go func() {
		reg, err := bobA.Fetch(ctx, "s", "late", 1500*time.Millisecond)
		waiting <- fetched{reg, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := aliceB.Register(ctx, "s", "late", epB); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := aliceA.Register(ctx, "s", "late", epA); err != nil {
		t.Fatal(err)
	}
	if got := <-waiting; got.err != nil || !slices.Equal(got.reg.Endpoints, epA) {
		t.Errorf("lab A's waiting fetch of late: %+v, %v; want lab A's endpoints %v", got.reg, got.err, epA)
	}
}
