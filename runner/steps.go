package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/ice"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
	"github.com/natlab/natlab/topology"
)

func (r *run) plan(server string) service.Plan { return service.PlanFor(r.topo.Node(server)) }

// stun asks the STUN server for the sender's public endpoint, or, when the
// step expects a classification, runs RFC 5780 discovery.
func (r *run) stun(ctx context.Context, s topology.Step) (StepResult, error) {
	server := r.plan(s.Server).STUNServer()
	if c := s.Expect.Classification; c != nil {
		n, err := r.node(s.From)
		if err != nil {
			return StepResult{}, err
		}
		res, err := classify.Discover(ctx, classify.Options{Server: server, Local: r.topo.Node(s.From).Addresses[0], Listen: n.ListenUDP})
		if err != nil {
			return StepResult{Expect: c.String(), Observed: "error", Reason: err.Error()}, nil
		}
		observed := describeClassification(res)
		pass, why := matchClassification(c, res)
		return StepResult{Expect: c.String(), Observed: observed, Pass: pass, Reason: why,
			Detail: fmt.Sprintf("%s is %v behind its NAT(s): %s", s.From, res.Public, observed), Data: res}, nil
	}
	var conn *net.UDPConn
	var err error
	if s.Port != 0 {
		conn, err = r.socket(s.From, s.Port)
	} else {
		conn, err = r.fresh(s.From)
	}
	if err != nil {
		return StepResult{}, err
	}
	local := netip.AddrPortFrom(r.topo.Node(s.From).Addresses[0], localPort(conn))
	resp, err := stunclient.Binding(ctx, conn, server, stunclient.Request{})
	if err != nil {
		return verdict(s, "fail", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("no answer from %v", server)}), nil
	}
	r.remember(s.Server, s.From, resp.Mapped)
	detail := fmt.Sprintf("%s %v is %v to the STUN server", s.From, local, resp.Mapped)
	if resp.Mapped == local {
		detail = fmt.Sprintf("%s %v: no NAT between it and the STUN server", s.From, local)
	}
	return verdict(s, "ok", StepResult{Detail: detail, Data: resp}), nil
}

func describeClassification(res *classify.Result) string {
	if !res.Behind {
		return "no NAT"
	}
	name := string(res.Type)
	if name == "" {
		name = fmt.Sprintf("mapping %s, filtering %s", res.Mapping, res.Filtering)
	}
	hairpin := "no hairpin"
	if res.Hairpin {
		hairpin = "hairpin"
	}
	return fmt.Sprintf("%s, ports %s, %s", name, res.Ports, hairpin)
}

func matchClassification(want *topology.Classification, got *classify.Result) (bool, string) {
	var wrong []string
	check := func(what, want, got string) {
		if want != "" && want != got {
			wrong = append(wrong, fmt.Sprintf("%s is %s, not %s", what, got, want))
		}
	}
	check("type", string(want.Type), string(got.Type))
	check("mapping", string(want.Mapping), string(got.Mapping))
	check("filtering", string(want.Filtering), string(got.Filtering))
	check("port allocation", string(want.Ports), string(got.Ports))
	if want.Hairpin != nil && *want.Hairpin != got.Hairpin {
		wrong = append(wrong, fmt.Sprintf("hairpin is %v, not %v", got.Hairpin, *want.Hairpin))
	}
	return len(wrong) == 0, strings.Join(wrong, "; ")
}

func (r *run) remember(at, from string, addr netip.AddrPort) {
	r.mu.Lock()
	r.seen[[2]string{at, from}] = addr
	r.mu.Unlock()
}

func (r *run) punch(ctx context.Context, s topology.Step) (StepResult, error) {
	a, b := s.Between[0], s.Between[1]
	var peers [2]punch.Peer
	board := punch.NewBoard()
	for i, name := range s.Between {
		c, err := r.fresh(name)
		if err != nil {
			return StepResult{}, err
		}
		p := punch.Peer{Name: name, Conn: c, Local: netip.AddrPortFrom(r.topo.Node(name).Addresses[0], localPort(c)), Exchange: board}
		if s.Rendezvous != "" {
			hc, err := r.httpClient(name)
			if err != nil {
				return StepResult{}, err
			}
			p.Exchange = &rendezvous.Client{HTTP: hc, Base: r.plan(s.Rendezvous).RendezvousURL()}
		}
		peers[i] = p
	}
	cfg := punch.Config{
		STUN:    r.plan(s.Server).STUNServer(),
		Session: fmt.Sprintf("%s-%d", r.st.Name, time.Now().UnixNano()),
		Timeout: s.Timeout,
		Predict: s.Predict,
	}
	out, err := punch.Pair(ctx, cfg, peers[0], peers[1])
	res := StepResult{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("%s and %s found no direct path within %v", a, b, s.Timeout)
		return verdict(s, "fail", res), nil
	}
	rtt := out.A.MedianRTT()
	r.mu.Lock()
	r.directRTT[[2]string{a, b}], r.directRTT[[2]string{b, a}] = rtt, rtt
	r.mu.Unlock()
	r.remember(a, b, out.A.Seen)
	r.remember(b, a, out.B.Seen)
	res.Detail = fmt.Sprintf("%s <-> %s direct: first packet after %v, both ways after %v, rtt %v; %s",
		a, b, round(min(out.A.FirstPacket, out.B.FirstPacket)), round(max(out.A.Confirmed, out.B.Confirmed)), round(rtt), reflexive(out))
	return verdict(s, "ok", res), nil
}

func reflexive(out *punch.Outcome) string {
	var parts []string
	for _, p := range []struct {
		by, of string
		r      *punch.Result
	}{{out.A.Peer, out.B.Peer, out.A}, {out.B.Peer, out.A.Peer, out.B}} {
		kind := "as announced"
		if p.r.Reflexive {
			kind = "peer-reflexive"
		}
		parts = append(parts, fmt.Sprintf("%s saw %s at %v (%s)", p.by, p.of, p.r.Seen, kind))
	}
	return strings.Join(parts, ", ")
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func (r *run) relay(ctx context.Context, s topology.Step) (StepResult, error) {
	a, b := s.Between[0], s.Between[1]
	ca, err := r.fresh(a)
	if err != nil {
		return StepResult{}, err
	}
	cb, err := r.fresh(b)
	if err != nil {
		return StepResult{}, err
	}
	cred := r.st.TURN
	cfg := relay.Config{Server: r.plan(s.Server).TURN, Realm: cred.Realm, User: cred.User, Password: cred.Password, Timeout: s.Timeout}
	out, err := relay.Connect(ctx, cfg, relay.Peer{Name: a, Conn: ca}, relay.Peer{Name: b, Conn: cb})
	res := StepResult{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("no relayed path between %s and %s", a, b)
		return verdict(s, "fail", res), nil
	}
	rtt := out.MedianRTT()
	res.Detail = fmt.Sprintf("%s <-> relay %v <-> %s (from %v), rtt %v", a, out.Relayed, b, out.BSeen, round(rtt))
	r.mu.Lock()
	direct, ok := r.directRTT[[2]string{a, b}]
	r.mu.Unlock()
	if ok && direct > 0 {
		res.Detail += fmt.Sprintf(", %.1fx the direct path's %v", float64(rtt)/float64(direct), round(direct))
	}
	return verdict(s, "ok", res), nil
}

func (r *run) ice(ctx context.Context, s topology.Step) (StepResult, error) {
	var servers []ice.Server
	cred := r.st.TURN
	for _, n := range r.topo.Nodes {
		plan := service.PlanFor(n)
		if a := plan.STUNServer(); a.IsValid() {
			servers = append(servers, ice.Server{Addr: a})
		}
		if plan.TURN.IsValid() {
			servers = append(servers, ice.Server{TURN: true, Addr: plan.TURN, User: cred.User, Password: cred.Password})
		}
	}
	var agents [2]ice.Agent
	for i, name := range s.Between {
		n, err := r.node(name)
		if err != nil {
			return StepResult{}, err
		}
		pn, err := n.PionNet()
		if err != nil {
			return StepResult{}, err
		}
		agents[i] = ice.Agent{Name: name, Net: pn}
	}
	out, err := ice.Connect(ctx, ice.Config{Servers: servers, Timeout: s.Timeout}, agents[0], agents[1])
	res := StepResult{Expect: expectWord(s), Data: out}
	if err != nil {
		res.Observed, res.Reason = "fail", err.Error()
		res.Pass = s.Expect.Outcome == "fail"
		return res, nil
	}
	res.Observed = string(out.Rung)
	res.Detail = fmt.Sprintf("selected %s %v <-> %s %v after %v, rtt %v", out.Local.Type, out.Local.Address, out.Remote.Type, out.Remote.Address, round(out.Connected), round(out.RTT))
	switch s.Expect.Outcome {
	case "":
		res.Pass = true
	case "srflx", "prflx":
		// Which of the two ICE reports depends on whose check arrives
		// first; both mean the NATs were punched.
		res.Pass = out.Rung == ice.Srflx || out.Rung == ice.Prflx
	default:
		res.Pass = string(out.Rung) == s.Expect.Outcome
	}
	return res, nil
}

// silence is how long a send waits before it calls a packet dropped.
const silence = time.Second

func (r *run) send(ctx context.Context, s topology.Step) (StepResult, error) {
	receiver, port, dest, err := r.resolveSend(s)
	if err != nil {
		return StepResult{}, err
	}
	if s.Proto == topology.TCP {
		return r.sendTCP(ctx, s, receiver, port, dest)
	}
	in, err := r.socket(receiver, port)
	if err != nil {
		return StepResult{}, err
	}
	out, err := r.socket(s.From, port)
	if err != nil {
		return StepResult{}, err
	}
	payload := fmt.Sprintf("natlab send %d from %s", time.Now().UnixNano(), s.From)
	if _, err := out.WriteToUDPAddrPort([]byte(payload), dest); err != nil {
		return verdict(s, "dropped", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s could not send to %v", s.From, dest)}), nil
	}
	from, ok := awaitPayload(ctx, in, payload, silence)
	if !ok {
		return verdict(s, "dropped", StepResult{Detail: fmt.Sprintf("%s -> %v: nothing reached %s:%d within %v", s.From, dest, receiver, port, silence)}), nil
	}
	r.remember(receiver, s.From, from)
	return verdict(s, "delivered", StepResult{Detail: fmt.Sprintf("%s -> %v reached %s:%d, from %v", s.From, dest, receiver, port, from)}), nil
}

// resolveSend works out where a send goes and which node should get it.
// To a node, it goes where the sender last saw that node's packets come
// from, else to the node's public address (its own on the internet, its
// outermost NAT's behind NATs) at the port. To an address, the node that
// owns it, or that a NAT forwards it to, is the receiver.
func (r *run) resolveSend(s topology.Step) (receiver string, port uint16, dest netip.AddrPort, err error) {
	if s.To != "" {
		r.mu.Lock()
		seen, ok := r.seen[[2]string{s.From, s.To}]
		r.mu.Unlock()
		if ok && s.Proto == topology.UDP {
			return s.To, s.Port, seen, nil
		}
		return s.To, s.Port, netip.AddrPortFrom(r.outermost(s.To), s.Port), nil
	}
	dest = s.ToAddr
	for _, n := range r.topo.Nodes {
		if !slices.Contains(n.Addresses, dest.Addr()) {
			continue
		}
		if n.NAT != nil {
			for _, f := range n.NAT.Forwards {
				if string(f.Proto) == string(s.Proto) && f.Port == dest.Port() && f.ToNode != "" {
					return f.ToNode, f.To.Port(), dest, nil
				}
			}
			return "", 0, dest, fmt.Errorf("%v is %s's public address, which forwards no %s port %d to a node", dest.Addr(), n.Name, s.Proto, dest.Port())
		}
		return n.Name, dest.Port(), dest, nil
	}
	return "", 0, dest, fmt.Errorf("no node has the address %v, so nothing can see the packet arrive", dest.Addr())
}

func awaitPayload(ctx context.Context, c *net.UDPConn, payload string, wait time.Duration) (netip.AddrPort, bool) {
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, false
		}
		if string(buf[:n]) == payload {
			return netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
		}
	}
}

func (r *run) sendTCP(ctx context.Context, s topology.Step, receiver string, port uint16, dest netip.AddrPort) (StepResult, error) {
	rn, err := r.node(receiver)
	if err != nil {
		return StepResult{}, err
	}
	l, err := rn.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return StepResult{}, fmt.Errorf("node %s: listen on TCP port %d: %w", receiver, port, err)
	}
	defer l.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
	}()
	sn, err := r.node(s.From)
	if err != nil {
		return StepResult{}, err
	}
	dctx, cancel := context.WithTimeout(ctx, silence)
	defer cancel()
	c, err := sn.DialContext(dctx, "tcp4", dest.String())
	if err != nil {
		return verdict(s, "dropped", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s -> %v: no TCP connection to %s:%d", s.From, dest, receiver, port)}), nil
	}
	c.Close()
	select {
	case from := <-accepted:
		return verdict(s, "delivered", StepResult{Detail: fmt.Sprintf("%s -> %v: %s:%d accepted a TCP connection from %v", s.From, dest, receiver, port, from)}), nil
	case <-time.After(silence):
		return verdict(s, "dropped", StepResult{Detail: fmt.Sprintf("%s -> %v connected, but not to %s:%d", s.From, dest, receiver, port)}), nil
	}
}

func (r *run) wait(ctx context.Context, s topology.Step) (StepResult, error) {
	select {
	case <-time.After(s.Duration):
	case <-ctx.Done():
		return StepResult{}, ctx.Err()
	}
	return StepResult{Expect: "ok", Observed: "ok", Pass: true, Detail: fmt.Sprintf("waited %v", s.Duration)}, nil
}

func (r *run) exec(ctx context.Context, s topology.Step) (StepResult, error) {
	n, err := r.node(s.Node)
	if err != nil {
		return StepResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	argv := s.Command
	if s.Shell {
		argv = []string{"/bin/sh", "-c", s.Command[0]}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.Env = append(cmd.Environ(), "NATLAB_LAB="+r.st.Name, "NATLAB_NODE="+s.Node)
	// Started from a thread inside the node, the command runs there.
	if err := n.Do(cmd.Start); err != nil {
		return verdict(s, "fail", StepResult{Reason: err.Error()}), nil
	}
	err = cmd.Wait()
	out := strings.TrimSpace(output.String())
	res := StepResult{Data: map[string]any{"output": out}}
	last := out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		last = out[i+1:]
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Detail = last
		return verdict(s, "ok", res), nil
	case ctx.Err() != nil:
		res.Reason = fmt.Sprintf("still running after %v, killed", s.Timeout)
	case errors.As(err, &ee):
		res.Reason = fmt.Sprintf("exit status %d: %s", ee.ExitCode(), last)
	default:
		res.Reason = err.Error()
	}
	res.Detail = last
	return verdict(s, "fail", res), nil
}
