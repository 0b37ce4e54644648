package serve_test

import (
	"context"
	"math/rand/v2"

	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
)

const scenario = `
nodes:
  srv:   {kind: server, services: [stun, turn, rendezvous]}
  home:  {kind: nat, type: symmetric}
  alice: {kind: host, behind: home}
  bob:   {kind: host}
`

// The services survive a flood of malformed packets from inside the lab,
// and then still do their work.
func TestServicesSurviveGarbage(t *testing.T) {
	l := labtest.Up(t, scenario)
	plan := service.PlanFor(l.Topo.Node("srv"))
	rng := rand.New(rand.NewPCG(1, 2))
	c, _ := l.ListenUDP("alice", ":0")
	var targets []netip.AddrPort
	for _, e := range plan.STUN.Endpoints() {
		targets = append(targets, plan.STUN.At(e))
	}
	stunLike := func() []byte {
		// Half the time a valid STUN header with garbage after it, which
		// gets past the first checks of a decoder.
		b := make([]byte, rng.IntN(600))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if len(b) >= 20 && rng.IntN(2) == 0 {
			m, _ := stun.Build(stun.NewType(stun.Method(rng.UintN(0x1000)), stun.MessageClass(rng.UintN(4))), stun.TransactionID)
			copy(b, m.Raw[:20])
			b[2], b[3] = byte((len(b)-20)>>8), byte(len(b)-20)
		}
		return b
	}
	for i := 0; i < 4000; i++ {
		c.WriteToUDPAddrPort(stunLike(), targets[i%len(targets)])
	}
	for i := 0; i < 50; i++ {
		for _, addr := range []string{plan.TURN.String(), plan.Rendezvous.String()} {
			conn, err := l.DialContext("bob")(context.Background(), "tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(time.Second))
			conn.Write(stunLike())
			conn.Close()
		}
	}
	// Still serving.
	fresh, _ := l.ListenUDP("alice", ":0")
	if _, err := stunclient.Binding(context.Background(), fresh, plan.STUNServer(), stunclient.Request{}); err != nil {
		t.Errorf("STUN after the flood: %v", err)
	}
	a, _ := l.ListenUDP("alice", ":0")
	b, _ := l.ListenUDP("bob", ":0")
	cred := l.State.TURN
	if _, err := relay.Connect(context.Background(), relay.Config{Server: plan.TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password},
		relay.Peer{Name: "alice", Conn: a}, relay.Peer{Name: "bob", Conn: b}); err != nil {
		t.Errorf("TURN after the flood: %v", err)
	}
	rv := &rendezvous.Client{HTTP: &http.Client{Transport: &http.Transport{DialContext: l.DialContext("bob")}}, Base: plan.RendezvousURL()}
	if err := rv.Register(context.Background(), "s", "bob", []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:1")}); err != nil {
		t.Errorf("rendezvous after the flood: %v", err)
	}
	for _, p := range l.State.Processes {
		if !lab.ProcessAlive(p.PID, p.StartTime) {
			t.Errorf("the service process of %s died", p.Node)
		}
	}
}

// down leaves no service process behind, and neither does a failed up.
func TestNoOrphans(t *testing.T) {
	l := labtest.Up(t, scenario)
	procs := l.State.Processes
	if len(procs) != 1 {
		t.Fatalf("processes %+v, want one for srv", procs)
	}
	if _, err := lab.Down(context.Background(), l.Topo.Name, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if lab.ProcessAlive(p.PID, p.StartTime) {
			t.Errorf("service process %d of %s survived down", p.PID, p.Node)
		}
	}
}
