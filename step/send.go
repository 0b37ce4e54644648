package step

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/topology"
)

// silence is how long a send waits before it calls a packet dropped.
const silence = time.Second

// Send sends one UDP message (or opens one TCP connection) from a node to
// a node or an address, and sees whether it arrives and from where.
type Send struct {
	// The sender: a host or a server.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The receiver: a host, a server, or an address and port such as a
	// nat's public address and a forwarded port.
	To string `yaml:"to" format:"SendTarget" schema:"required"`
	// The address family to send over; ipv6 needs internet6.
	Family string `yaml:"family" format:"Family" default:"ipv4"`
	// udp sends one message; tcp opens a connection.
	Proto topology.Protocol `yaml:"proto" format:"ProtoName" default:"udp"`
	// The port the receiver listens on, when to names a node.
	Port uint16 `yaml:"port" format:"Port" default:"5000"`
	// The source the receiver must see the message come from: a node
	// (its address, any port), an address (any port), or an address and
	// port.
	SeenAs string `yaml:"seen-as" format:"SeenAs" default:"not checked"`
	// How many messages to send, 1 to 10000, 10ms apart. The receiver
	// answers each, so the step counts what reached it and what came
	// back, and measures the round trips (min, median, max). UDP only.
	Count int `yaml:"count" format:"ProbeCount" default:"one message, not answered"`
	// Whether the message must arrive; with count, delivered means at
	// least one of them did, dropped that none did.
	Expect string   `yaml:"expect" format:"SendOutcome" default:"delivered"`
	_      struct{} `name:"send FROM -> TO"`

	// ToAddr is the address the step sends to when To names none: a
	// NAT's public address and a forwarded port, say. Port is its port.
	ToAddr netip.AddrPort
	// SeenAsAddr is the source to check, of the step's family (for a
	// node, its first address); port 0 accepts any port. It is invalid
	// when the source is not checked.
	SeenAsAddr netip.AddrPort
}

func (s *Send) read(f *topology.StepFields) string {
	// The family comes first: it says what to: and seen-as: take.
	s.Family = f.Family()
	s.From, _ = f.HostOrServer("from")
	s.To, s.ToAddr = f.SendTo("to")
	s.Proto = f.Protocol("proto", topology.UDP)
	s.Port = topology.DefaultSendPort
	if f.Has("port") {
		if s.ToAddr.IsValid() {
			f.Errorf(f.At("port"), "%s.port: to: %s gives the port already; leave port out", f.Path(), s.ToAddr)
		} else {
			s.Port = f.Port("port", topology.DefaultSendPort)
		}
	}
	s.SeenAs, s.SeenAsAddr = f.SeenAs("seen-as")
	s.Count = f.ProbeCount("count")
	if s.Count > 0 && s.Proto == topology.TCP {
		f.Errorf(f.At("count"), "%s.count: a count of messages is for udp, whose receiver answers each; a tcp send opens one connection, so leave count out", f.Path())
	}
	to := s.To
	if s.ToAddr.IsValid() {
		s.Port = s.ToAddr.Port()
		to = s.ToAddr.String()
	}
	if s.From != "" && s.From == s.To {
		f.Errorf(f.At("to"), "%s.to: %s is the sender too, and a node's message to itself never leaves it; send to another node, or to ADDRESS:PORT", f.Path(), s.To)
	}
	s.Expect = f.Outcome(topology.SendOutcome("").Values(), "delivered", "delivered or dropped", map[string]string{
		"ok": "did you mean delivered?", "fail": "did you mean dropped?",
	})
	if f.Has("seen-as") && s.Expect == "dropped" && (s.SeenAs != "" || s.SeenAsAddr.IsValid()) {
		f.Errorf(f.At("seen-as"), "%s.seen-as: expect: dropped means nothing arrives to be seen; leave seen-as out, or expect delivered", f.Path())
	}
	proto := ""
	if s.Proto == topology.TCP {
		proto = "tcp "
	}
	return fmt.Sprintf("send %s%s%s -> %s", topology.FamilyWord(s.Family), proto, s.From, to)
}

// Describe says what goes from where to where, and the source checked.
func (s *Send) Describe() string {
	to := fmt.Sprintf("%s port %d", s.To, s.Port)
	if s.ToAddr.IsValid() {
		to = s.ToAddr.String()
	}
	d := fmt.Sprintf(" %s over %s from %s to %s", s.Proto, s.Family, s.From, to)
	if s.SeenAsAddr.IsValid() || s.SeenAs != "" {
		d += ", seen as "
		if s.SeenAs != "" {
			d += s.SeenAs + " "
		}
		if s.SeenAsAddr.Port() == 0 {
			d += fmt.Sprintf("%s any port", s.SeenAsAddr.Addr())
		} else {
			d += s.SeenAsAddr.String()
		}
	}
	if s.Count > 0 {
		d += fmt.Sprintf(", %d messages answered", s.Count)
	}
	return d + ", expect " + s.Expect
}

// Expected is delivered or dropped.
func (s *Send) Expected() string { return s.Expect }

// Needs is nothing: the receiver is the step's own socket.
func (s *Send) Needs(Env) []Need { return nil }

// Run sends, and waits for the message to arrive.
func (s *Send) Run(ctx context.Context, env Env) (Result, error) {
	receiver, port, dest, err := s.resolve(ctx, env)
	if err != nil {
		return Result{}, err
	}
	if receiver == "" {
		return s.knock(ctx, env, dest)
	}
	if s.Proto == topology.TCP {
		return s.sendTCP(ctx, env, receiver, port, dest)
	}
	out, in, err := s.sockets(env, receiver, port)
	if err != nil {
		return Result{}, err
	}
	if p, ok := env.Memory().Path(s.From, s.To, s.Family); ok {
		dest = p.To
	}
	if s.Count > 0 {
		return s.probe(ctx, env, out, in, receiver, dest), nil
	}
	payload := fmt.Sprintf("natlab send %d from %s", time.Now().UnixNano(), s.From)
	if _, err := out.WriteToUDPAddrPort([]byte(payload), dest); err != nil {
		return verdict(s, s.Expect, "dropped", Result{Reason: err.Error(), Detail: fmt.Sprintf("%s could not send to %v", s.From, dest)}), nil
	}
	from, ok := awaitPayload(ctx, in, payload, silence)
	if !ok {
		return verdict(s, s.Expect, "dropped", Result{Detail: fmt.Sprintf("%s -> %v: nothing reached %s within %v", s.From, dest, receiver, silence)}), nil
	}
	env.Memory().Saw(receiver, s.From, from)
	res := verdict(s, s.Expect, "delivered", Result{Detail: fmt.Sprintf("%s -> %v reached %s, from %v", s.From, dest, receiver, from)})
	return s.checkSource(from, res), nil
}

// probeInterval is the time between the messages of a send with a count.
const probeInterval = 10 * time.Millisecond

// probe sends Count numbered messages from out to dest, which in (the
// receiver's socket) answers, each to where it came from; out reads the
// answers and times each round trip. It waits for the answers until they
// are all in or silence has passed since the last message.
func (s *Send) probe(ctx context.Context, env Env, out, in *net.UDPConn, receiver string, dest netip.AddrPort) Result {
	prefix := fmt.Sprintf("natlab probe %d from %s #", time.Now().UnixNano(), s.From)
	var (
		mu        sync.Mutex
		delivered int
		first     netip.AddrPort
		sentAt    = make([]time.Time, s.Count)
		rtts      []time.Duration
		answered  = make([]bool, s.Count)
		sent      int
	)
	allIn := make(chan struct{})
	var wg sync.WaitGroup
	// The receiver answers every probe.
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !strings.HasPrefix(string(buf[:n]), prefix) {
				continue
			}
			mu.Lock()
			if delivered++; delivered == 1 {
				first = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			}
			mu.Unlock()
			in.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	// The sender times the answers.
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := out.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			at := time.Now()
			rest, ok := strings.CutPrefix(string(buf[:n]), prefix)
			seq, err := strconv.Atoi(rest)
			if !ok || err != nil || seq < 0 || seq >= s.Count {
				continue
			}
			mu.Lock()
			if !answered[seq] && !sentAt[seq].IsZero() {
				answered[seq] = true
				rtts = append(rtts, at.Sub(sentAt[seq]))
				if len(rtts) == s.Count {
					close(allIn)
				}
			}
			mu.Unlock()
		}
	})
	var sendErr error
	tick := time.NewTicker(probeInterval)
	for seq := 0; seq < s.Count && ctx.Err() == nil; seq++ {
		if seq > 0 {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		mu.Lock()
		sentAt[seq] = time.Now()
		mu.Unlock()
		if _, err := out.WriteToUDPAddrPort(fmt.Appendf(nil, "%s%d", prefix, seq), dest); err != nil && sendErr == nil {
			sendErr = err
		}
		sent++
	}
	tick.Stop()
	wait := time.NewTimer(silence)
	select {
	case <-allIn:
	case <-wait.C:
	case <-ctx.Done():
	}
	wait.Stop()
	// A deadline in the past ends both reads; the sockets may be a
	// punched path's, which later steps use, so they stay open.
	for _, c := range []*net.UDPConn{in, out} {
		c.SetReadDeadline(time.Unix(1, 0))
	}
	wg.Wait()
	for _, c := range []*net.UDPConn{in, out} {
		c.SetReadDeadline(time.Time{})
	}
	probes := &Probes{Sent: sent, Delivered: delivered, Answered: len(rtts)}
	if delivered == 0 {
		res := Result{Detail: fmt.Sprintf("%s -> %v: none of %d messages reached %s within %v", s.From, dest, sent, receiver, silence), Probes: probes}
		if sendErr != nil {
			res.Reason = sendErr.Error()
		}
		return verdict(s, s.Expect, "dropped", res)
	}
	env.Memory().Saw(receiver, s.From, first)
	res := verdict(s, s.Expect, "delivered", Result{Probes: probes, RTT: NewRTT(rtts),
		Detail: fmt.Sprintf("%s -> %v reached %s, from %v", s.From, dest, receiver, first)})
	return s.checkSource(first, res)
}

// checkSource checks a delivered message's source against seen-as.
func (s *Send) checkSource(from netip.AddrPort, res Result) Result {
	want := s.SeenAsAddr
	if !want.IsValid() || !res.Pass {
		return res
	}
	if from.Addr() != want.Addr() || (want.Port() != 0 && from.Port() != want.Port()) {
		res.Pass = false
		res.Observed = fmt.Sprintf("delivered from %v", from)
		res.Expect = fmt.Sprintf("delivered from %v", want)
		if want.Port() == 0 {
			res.Expect = fmt.Sprintf("delivered from %v", want.Addr())
		}
		res.Reason = fmt.Sprintf("%s saw the packet come from %v", s.To, from)
	}
	return res
}

// sockets are the sockets a UDP send uses: the two ends of a punched
// path between the nodes if there is one, else each node's socket on the
// step's port.
func (s *Send) sockets(env Env, receiver string, port uint16) (out, in *net.UDPConn, err error) {
	pa, okA := env.Memory().Path(s.From, receiver, s.Family)
	pb, okB := env.Memory().Path(receiver, s.From, s.Family)
	if okA && okB {
		return pa.Conn, pb.Conn, nil
	}
	if in, err = env.Socket(receiver, port, s.Family); err != nil {
		return nil, nil, err
	}
	if out, err = env.Socket(s.From, port, s.Family); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// resolve works out where a send goes and which node should get it. To
// a node, it goes: to a public endpoint the node obtained for the port
// (NAT-PMP, a tunnel); over IPv4 UDP to where the sender last saw that
// node's packets come from, or else where anyone on the internet last saw
// them come from (as a rendezvous would tell); else to the node's public
// address (its own on the internet or over IPv6, its outermost NAT's
// behind NATs) at the port. To an address, the node that owns it, or that
// a NAT forwards it to, is the receiver.
func (s *Send) resolve(ctx context.Context, env Env) (receiver string, port uint16, dest netip.AddrPort, err error) {
	topo, mem := env.Topology(), env.Memory()
	if s.To != "" {
		fwd, forwarded := mem.Forwarded(Forward{s.To, s.Proto, s.Port})
		seen, ok := mem.Seen(s.From, s.To)
		if !ok {
			for _, n := range topo.Nodes {
				if n.Behind == "" && n.Name != s.From {
					if seen, ok = mem.Seen(n.Name, s.To); ok {
						break
					}
				}
			}
		}
		switch {
		case forwarded && s.Family == topology.FamilyIPv4:
			return s.To, s.Port, fwd, nil
		case ok && s.Proto == topology.UDP && s.Family == topology.FamilyIPv4:
			return s.To, s.Port, seen, nil
		}
		return s.To, s.Port, netip.AddrPortFrom(outermost(topo, s.To, s.Family), s.Port), nil
	}
	dest = s.ToAddr
	for _, n := range topo.Nodes {
		if !slices.Contains(n.Addresses, dest.Addr()) && !slices.Contains(n.Addresses6, dest.Addr()) {
			continue
		}
		if n.NAT != nil && dest.Addr().Is4() {
			for _, f := range n.NAT.Forwards {
				if f.Proto == s.Proto && f.Port == dest.Port() && f.ToNode != "" {
					return f.ToNode, f.To.Port(), dest, nil
				}
			}
			if f, ok := mem.ForwardTo(dest, s.Proto); ok {
				return f.Node, f.Port, dest, nil
			}
			// Whoever holds the public port in the NAT's table now: the
			// knock of the story's third act, on an opening or not.
			owner, port, err := s.holder(ctx, env, n, dest)
			return owner, port, dest, err
		}
		return n.Name, dest.Port(), dest, nil
	}
	return "", 0, dest, fmt.Errorf("no node has the address %v, so nothing can see the packet arrive", dest.Addr())
}

// awaitPayload reads c until payload arrives (returning its source) or
// wait passes.
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

func (s *Send) sendTCP(ctx context.Context, env Env, receiver string, port uint16, dest netip.AddrPort) (Result, error) {
	rn, err := env.Node(receiver)
	if err != nil {
		return Result{}, err
	}
	network, local := "tcp4", fmt.Sprintf(":%d", port)
	if s.Family == topology.FamilyIPv6 {
		network, local = "tcp6", fmt.Sprintf("[::]:%d", port)
	}
	l, err := rn.Listen(network, local)
	if err != nil {
		return Result{}, fmt.Errorf("node %s: listen on TCP port %d: %w", receiver, port, err)
	}
	accepted := make(chan net.Addr, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
	}()
	// Closing the listener ends the accept; the step waits for it.
	defer wg.Wait()
	defer l.Close()
	sn, err := env.Node(s.From)
	if err != nil {
		return Result{}, err
	}
	dctx, cancel := context.WithTimeout(ctx, silence)
	defer cancel()
	c, err := sn.DialContext(dctx, network, dest.String())
	if err != nil {
		return verdict(s, s.Expect, "dropped", Result{Reason: err.Error(), Detail: fmt.Sprintf("%s -> %v: no TCP connection to %s:%d", s.From, dest, receiver, port)}), nil
	}
	c.Close()
	t := time.NewTimer(silence)
	defer t.Stop()
	select {
	case from := <-accepted:
		src := from.(*net.TCPAddr).AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		res := verdict(s, s.Expect, "delivered", Result{Detail: fmt.Sprintf("%s -> %v: %s:%d accepted a TCP connection from %v", s.From, dest, receiver, port, src)})
		return s.checkSource(src, res), nil
	case <-t.C:
		return verdict(s, s.Expect, "dropped", Result{Detail: fmt.Sprintf("%s -> %v connected, but not to %s:%d", s.From, dest, receiver, port)}), nil
	}
}

// holder finds who holds public endpoint dest of NAT n: the node behind
// it whose private endpoint a mapping or a translated flow of its table
// links to dest, and that endpoint's port. With no such row, the receiver
// is "": nobody behind the NAT can receive the packet.
func (s *Send) holder(ctx context.Context, env Env, n *topology.Node, dest netip.AddrPort) (string, uint16, error) {
	t, err := env.Table(ctx, n.Name)
	if err != nil {
		return "", 0, err
	}
	var private netip.AddrPort
	for _, m := range t.Mappings {
		if m.Public == dest && s.Proto == topology.UDP {
			private = m.Private
		}
	}
	for _, f := range t.Flows {
		if f.Public == dest && f.Proto == string(s.Proto) && !private.IsValid() {
			private = f.Private
		}
	}
	if !private.IsValid() {
		return "", 0, nil
	}
	for _, c := range env.Topology().Nodes {
		if c.Behind == n.Name && slices.Contains(c.Addresses, private.Addr()) {
			if c.NAT != nil {
				return "", 0, fmt.Errorf("%v leads to %s, another NAT: send to the node behind it instead", dest, c.Name)
			}
			return c.Name, private.Port(), nil
		}
	}
	return "", 0, fmt.Errorf("%v leads to %v, which is no node of the lab", dest, private)
}

// knock sends to a public endpoint of a NAT that nobody behind it holds,
// and reads the NAT's wall counters to see the packet dropped.
func (s *Send) knock(ctx context.Context, env Env, dest netip.AddrPort) (Result, error) {
	var nat *topology.Node
	for _, n := range env.Topology().Nodes {
		if n.NAT != nil && slices.Contains(n.Addresses, dest.Addr()) {
			nat = n
		}
	}
	before, err := env.WallDrops(ctx, nat.Name)
	if err != nil {
		return Result{}, err
	}
	sn, err := env.Node(s.From)
	if err != nil {
		return Result{}, err
	}
	if s.Proto == topology.TCP {
		dctx, cancel := context.WithTimeout(ctx, silence)
		if c, err := sn.DialContext(dctx, "tcp4", dest.String()); err == nil {
			c.Close()
		}
		cancel()
	} else {
		out, err := sn.ListenUDP(":0")
		if err != nil {
			return Result{}, err
		}
		defer out.Close()
		if _, err := out.WriteToUDPAddrPort([]byte(fmt.Sprintf("natlab knock from %s", s.From)), dest); err != nil {
			return verdict(s, s.Expect, "dropped", Result{Reason: err.Error(), Detail: fmt.Sprintf("%s could not send to %v", s.From, dest)}), nil
		}
	}
	// The counter rises as the packet meets the wall, well within the
	// time a send waits for a packet to arrive.
	deadline := time.Now().Add(silence)
	for {
		after, err := env.WallDrops(ctx, nat.Name)
		if err != nil {
			return Result{}, err
		}
		if after > before {
			return verdict(s, s.Expect, "dropped", Result{Detail: fmt.Sprintf("%s -> %v: no row of %s's table holds that public port, and its wall dropped the packet", s.From, dest, nat.Name)}), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return verdict(s, s.Expect, "lost", Result{Detail: fmt.Sprintf("%s -> %v: no row of %s's table holds that public port, yet its wall did not count the packet", s.From, dest, nat.Name)}), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
