package serve_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
)

// STUN answers over TCP on every endpoint, so that a host learns its TCP
// mapping: by natlab's STUN server, and on the port TURN's TCP listener
// holds, by the TURN server. Behind a full cone the mapping keeps the
// host's port, on the NAT's public address.
func TestSTUNOverTCP(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  both:  {kind: server, addresses: [203.0.113.10, 203.0.113.11], services: [stun, turn]}
  plain: {kind: server, addresses: [203.0.113.20, 203.0.113.21], services: [stun]}
  home:  {kind: nat, type: full-cone, public: 203.0.113.1}
  alice: {kind: host, behind: home}
`)
	for _, server := range []string{"both", "plain"} {
		plan := service.PlanFor(l.Topo.Node(server))
		for _, e := range plan.STUN.Endpoints() {
			at := plan.STUN.At(e)
			var resp stunclient.Response
			var local *net.TCPAddr
			var err error
			l.Do("alice", func() error {
				var c net.Conn
				c, err = net.DialTimeout("tcp4", at.String(), 2*time.Second)
				if err != nil {
					return nil
				}
				defer c.Close()
				local = c.LocalAddr().(*net.TCPAddr)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				resp, err = stunclient.BindingStream(ctx, c)
				return nil
			})
			if err != nil {
				t.Errorf("STUN over TCP to %s at %v: %v", server, at, err)
				continue
			}
			if resp.Mapped.Addr() != l.Addr("home", 0) || resp.Mapped.Port() != uint16(local.Port) {
				t.Errorf("STUN over TCP to %s at %v: mapped %v, want the NAT's %v with alice's port %d", server, at, resp.Mapped, l.Addr("home", 0), local.Port)
			}
		}
	}
}
