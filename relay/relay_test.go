package relay_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/service"
)

func peers(t *testing.T, l *labtest.Lab) (relay.Peer, relay.Peer) {
	a, _ := l.ListenUDP("alice", ":0")
	b, _ := l.ListenUDP("bob", ":0")
	return relay.Peer{Name: "alice", Conn: a}, relay.Peer{Name: "bob", Conn: b}
}

func config(l *labtest.Lab) relay.Config {
	cred := l.State.TURN
	return relay.Config{Server: service.PlanFor(l.Topo.Node("relay")).TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password, Timeout: 3 * time.Second}
}

// The relay connects peers behind every pair of NAT types, including the
// ones hole punching cannot cross.
func TestRelayConnectsEveryPair(t *testing.T) {
	testutil.CheckRoutines(t)
	types := []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}
	for _, ta := range types {
		for _, tb := range types {
			t.Run(ta+"/"+tb, func(t *testing.T) {
				t.Parallel()
				l := labtest.Up(t, fmt.Sprintf(`
nodes:
  relay: {kind: server, services: [stun, turn]}
  nat-a: {kind: nat, type: %s}
  nat-b: {kind: nat, type: %s}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`, ta, tb))
				a, b := peers(t, l)
				res, err := relay.Connect(context.Background(), config(l), a, b)
				if err != nil {
					t.Fatal(err)
				}
				if res.Relayed.Addr() != l.Addr("relay", 0) || res.BPublic.Addr() != l.Addr("nat-b", 0) || len(res.RTTs) != 5 {
					t.Errorf("result %+v", res)
				}
			})
		}
	}
}

func TestRelayRefusesWrongCredentials(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  relay: {kind: server, services: [turn]}
  nat-a: {kind: nat}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host}
`)
	a, b := peers(t, l)
	cfg := config(l)
	cfg.Password = "wrong"
	_, err := relay.Connect(context.Background(), cfg, a, b)
	if !errors.Is(err, relay.ErrRefused) {
		t.Errorf("wrong password: %v, want ErrRefused", err)
	}
}

// Connect gives a's socket back when it returns: the TURN client reads
// from it no more, so what reaches it is its owner's, and no goroutine is
// left behind on it.
func TestConnectGivesTheSocketBack(t *testing.T) {
	testutil.CheckRoutines(t)
	// Not parallel: it counts the process's goroutines.
	l := labtest.Up(t, `
nodes:
  relay: {kind: server, services: [stun, turn]}
  nat-a: {kind: nat, type: port-restricted-cone}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host}
`)
	a, b := peers(t, l)
	before := runtime.NumGoroutine()
	if _, err := relay.Connect(context.Background(), config(l), a, b); err != nil {
		t.Fatal(err)
	}
	// alice writes to her own socket: every packet must reach her.
	self := netip.AddrPortFrom(l.Addr("alice", 0), a.Conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	const packets = 5
	for i := 0; i < packets; i++ {
		if _, err := a.Conn.WriteToUDPAddrPort([]byte(fmt.Sprint("mine ", i)), self); err != nil {
			t.Fatal(err)
		}
	}
	a.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	for i := 0; i < packets; i++ {
		n, _, err := a.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("alice read %d of her %d packets after Connect: %v", i, packets, err)
		}
		if want := fmt.Sprint("mine ", i); string(buf[:n]) != want {
			t.Errorf("alice read %q, want %q", buf[:n], want)
		}
	}
	var now int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= before || time.Now().After(deadline) {
			break
		}
	}
	if now > before {
		t.Errorf("%d goroutines after Connect, %d before", now, before)
	}
}
