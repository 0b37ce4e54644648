package runner

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/upgrade"
)

func (r *Session) relayConfig(server string, s topology.Step) relay.Config {
	cred := r.st.TURN
	return relay.Config{Server: r.plan(server).TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password, Timeout: s.Timeout}
}

func (r *Session) relay(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	a, b := s.Between[0], s.Between[1]
	ca, err := r.fresh(sc, a, topology.FamilyIPv4)
	if err != nil {
		return StepResult{}, err
	}
	cb, err := r.fresh(sc, b, topology.FamilyIPv4)
	if err != nil {
		return StepResult{}, err
	}
	out, err := relay.Connect(ctx, r.relayConfig(s.Server, s), relay.Peer{Name: a, Conn: ca}, relay.Peer{Name: b, Conn: cb})
	res := StepResult{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("no relayed path between %s and %s", a, b)
		return verdict(s, "fail", res), nil
	}
	rtt := out.MedianRTT()
	res.Detail = fmt.Sprintf("%s <-> relay %v <-> %s (from %v), rtt %v", a, out.Relayed, b, out.BSeen, Round(rtt))
	r.mu.Lock()
	direct, ok := r.directRTT[[2]string{a, b}]
	r.mu.Unlock()
	if ok && direct > 0 {
		res.Detail += fmt.Sprintf(", %.1fx the direct path's %v", float64(rtt)/float64(direct), Round(direct))
	}
	return verdict(s, "ok", res), nil
}

// upgrade relays first, over TURN over TCP, and moves to a direct path if
// a punch beside it finds one.
func (r *Session) upgrade(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	board := punch.NewBoard()
	var peers [2]upgrade.Peer
	for i, name := range s.Between {
		data, err := r.fresh(sc, name, topology.FamilyIPv4)
		if err != nil {
			return StepResult{}, err
		}
		pc, err := r.fresh(sc, name, topology.FamilyIPv4)
		if err != nil {
			return StepResult{}, err
		}
		n, err := r.node(name)
		if err != nil {
			return StepResult{}, err
		}
		peers[i] = upgrade.Peer{Name: name, Data: data,
			Punch: punch.Peer{Name: name, Conn: pc, Local: netip.AddrPortFrom(r.address(name, topology.FamilyIPv4), localPort(pc)), Exchange: board},
			Dial: func(network, addr string) (net.Conn, error) {
				return n.DialContext(ctx, network, addr)
			}}
	}
	cfg := upgrade.Config{
		TURN:  r.relayConfig(s.Server, s),
		Punch: punch.Config{STUN: r.plan(s.STUN).STUNServer(), Timeout: s.Timeout},
	}
	if d := r.plan(s.Server).DERP; d.IsValid() {
		cfg.DERP = upgrade.DERPURL(d.Addr())
	}
	out, err := upgrade.Run(ctx, cfg, peers[0], peers[1])
	res := StepResult{Data: out}
	if err != nil {
		res.Reason = err.Error()
		return verdict(s, "fail", res), nil
	}
	a, b := s.Between[0], s.Between[1]
	if out.Upgraded {
		res.Detail = fmt.Sprintf("%s -> %s: through %s from %v, direct after %v; %d packets over the relay, %d direct, %d lost",
			a, b, out.Relay, Round(out.FirstData), Round(out.UpgradedAt), out.OverRelay, out.Direct, out.Lost())
		return verdict(s, "direct", res), nil
	}
	res.Detail = fmt.Sprintf("%s -> %s: through %s from %v; no direct path, so the data stays on the relay (%d packets, %d lost)",
		a, b, out.Relay, Round(out.FirstData), out.OverRelay, out.Lost())
	res.Reason = out.PunchError
	return verdict(s, "relay", res), nil
}
