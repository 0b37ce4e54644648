package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
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
