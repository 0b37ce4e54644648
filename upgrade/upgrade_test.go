package upgrade_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/upgrade"
)

func TestRelayThenDirect(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, tc := range []struct {
		relay    string
		a, b     string
		upgraded bool
	}{
		{"derp", "port-restricted-cone", "port-restricted-cone", true},
		{"derp", "symmetric", "port-restricted-cone", false},
		{"turn", "port-restricted-cone", "port-restricted-cone", true},
		{"turn", "symmetric", "port-restricted-cone", false},
	} {
		t.Run(tc.relay+"/"+tc.a+"/"+tc.b, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(`
nodes:
  derp:  {kind: server, services: [stun, turn, derp]}
  nat-a: {kind: nat, type: %s}
  nat-b: {kind: nat, type: %s}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`, tc.a, tc.b))
			plan := service.PlanFor(l.Topo.Node("derp"))
			board := punch.NewBoard()
			peer := func(name string) upgrade.Peer {
				data, _ := l.ListenUDP(name, ":0")
				pc, _ := l.ListenUDP(name, ":0")
				dial := l.DialContext(name)
				return upgrade.Peer{Name: name, Data: data,
					Punch: punch.Peer{Name: name, Conn: pc, Local: netip.AddrPortFrom(l.Addr(name, 0), pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()), Exchange: board},
					Dial:  func(n, a string) (net.Conn, error) { return dial(context.Background(), n, a) }}
			}
			cred := l.State.TURN
			cfg := upgrade.Config{
				TURN:  relay.Config{Server: plan.TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password},
				Punch: punch.Config{STUN: plan.STUNServer(), Timeout: time.Second},
			}
			if tc.relay == "derp" {
				cfg.DERP = plan.DERPURL()
			}
			res, err := upgrade.Run(context.Background(), cfg, peer("alice"), peer("bob"))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Upgraded != tc.upgraded || res.OverRelay == 0 || res.Lost() > 0 {
				t.Errorf("upgraded=%v (want %v), %d over the relay, %d direct, %d of %d lost", res.Upgraded, tc.upgraded, res.OverRelay, res.Direct, res.Lost(), res.Sent)
			}
			if tc.upgraded && res.Direct == 0 {
				t.Error("upgraded, but no data went direct")
			}
		})
	}
}
