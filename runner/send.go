package runner

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
)

// silence is how long a send waits before it calls a packet dropped.
const silence = time.Second

// send sends one UDP packet (or opens one TCP connection) and sees whether
// it arrives.
func (r *Session) send(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	receiver, port, dest, err := r.resolveSend(s)
	if err != nil {
		return StepResult{}, err
	}
	if receiver == "" {
		return r.knock(ctx, s, dest)
	}
	if s.Proto == topology.TCP {
		return r.sendTCP(ctx, s, receiver, port, dest)
	}
	out, in, err := r.sendSockets(sc, s, receiver, port)
	if err != nil {
		return StepResult{}, err
	}
	if p, ok := r.punched(s.From, s.To, s.Family); ok {
		dest = p.to
	}
	payload := fmt.Sprintf("natlab send %d from %s", time.Now().UnixNano(), s.From)
	if _, err := out.WriteToUDPAddrPort([]byte(payload), dest); err != nil {
		return verdict(s, "dropped", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s could not send to %v", s.From, dest)}), nil
	}
	from, ok := awaitPayload(ctx, in, payload, silence)
	if !ok {
		return verdict(s, "dropped", StepResult{Detail: fmt.Sprintf("%s -> %v: nothing reached %s within %v", s.From, dest, receiver, silence)}), nil
	}
	r.remember(receiver, s.From, from)
	res := verdict(s, "delivered", StepResult{Detail: fmt.Sprintf("%s -> %v reached %s, from %v", s.From, dest, receiver, from)})
	return seenAs(s, from, res), nil
}

// seenAs checks a delivered packet's source against the step's seen-as.
func seenAs(s topology.Step, from netip.AddrPort, res StepResult) StepResult {
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

// punched returns a's end of a path a punch opened to b.
func (r *Session) punched(a, b, family string) (path, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.paths[[3]string{a, b, family}]
	return p, ok
}

// sendSockets are the sockets a UDP send uses: the two ends of a punched
// path between the nodes if there is one, else each node's socket on the
// step's port, which the step's end closes.
func (r *Session) sendSockets(sc *scope, s topology.Step, receiver string, port uint16) (out, in *net.UDPConn, err error) {
	pa, okA := r.punched(s.From, receiver, s.Family)
	pb, okB := r.punched(receiver, s.From, s.Family)
	if okA && okB {
		return pa.conn, pb.conn, nil
	}
	if in, err = r.socket(sc, receiver, port, s.Family); err != nil {
		return nil, nil, err
	}
	if out, err = r.socket(sc, s.From, port, s.Family); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// resolveSend works out where a send goes and which node should get it.
// To a node, it goes: to a public endpoint the node obtained for the port
// (NAT-PMP, a tunnel); over IPv4 UDP to where the sender last saw that
// node's packets come from, or else where anyone on the internet last saw
// them come from (as a rendezvous would tell); else to the node's public
// address (its own on the internet or over IPv6, its outermost NAT's
// behind NATs) at the port. To an address, the node that owns it, or that
// a NAT forwards it to, is the receiver.
func (r *Session) resolveSend(s topology.Step) (receiver string, port uint16, dest netip.AddrPort, err error) {
	if s.To != "" {
		r.mu.Lock()
		fwd, forwarded := r.forwards[forwardKey{s.To, s.Proto, s.Port}]
		seen, ok := r.seen[[2]string{s.From, s.To}]
		if !ok {
			for _, n := range r.topo.Nodes {
				if n.Behind == "" && n.Name != s.From {
					if seen, ok = r.seen[[2]string{n.Name, s.To}]; ok {
						break
					}
				}
			}
		}
		r.mu.Unlock()
		switch {
		case forwarded && s.Family == topology.FamilyIPv4:
			return s.To, s.Port, fwd, nil
		case ok && s.Proto == topology.UDP && s.Family == topology.FamilyIPv4:
			return s.To, s.Port, seen, nil
		}
		return s.To, s.Port, netip.AddrPortFrom(r.outermost(s.To, s.Family), s.Port), nil
	}
	dest = s.ToAddr
	for _, n := range r.topo.Nodes {
		if !slices.Contains(n.Addresses, dest.Addr()) && !slices.Contains(n.Addresses6, dest.Addr()) {
			continue
		}
		if n.NAT != nil && dest.Addr().Is4() {
			for _, f := range n.NAT.Forwards {
				if f.Proto == s.Proto && f.Port == dest.Port() && f.ToNode != "" {
					return f.ToNode, f.To.Port(), dest, nil
				}
			}
			r.mu.Lock()
			for k, fwd := range r.forwards {
				if fwd == dest && k.proto == s.Proto {
					r.mu.Unlock()
					return k.node, k.port, dest, nil
				}
			}
			r.mu.Unlock()
			// Whoever holds the public port in the NAT's table now: the
			// knock of the story's third act, on an opening or not.
			owner, port, err := r.holder(n, s.Proto, dest)
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

func (r *Session) sendTCP(ctx context.Context, s topology.Step, receiver string, port uint16, dest netip.AddrPort) (StepResult, error) {
	rn, err := r.node(receiver)
	if err != nil {
		return StepResult{}, err
	}
	network, local := "tcp4", fmt.Sprintf(":%d", port)
	if s.Family == topology.FamilyIPv6 {
		network, local = "tcp6", fmt.Sprintf("[::]:%d", port)
	}
	l, err := rn.Listen(network, local)
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
	c, err := sn.DialContext(dctx, network, dest.String())
	if err != nil {
		return verdict(s, "dropped", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s -> %v: no TCP connection to %s:%d", s.From, dest, receiver, port)}), nil
	}
	c.Close()
	select {
	case from := <-accepted:
		src := from.(*net.TCPAddr).AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		res := verdict(s, "delivered", StepResult{Detail: fmt.Sprintf("%s -> %v: %s:%d accepted a TCP connection from %v", s.From, dest, receiver, port, src)})
		return seenAs(s, src, res), nil
	case <-time.After(silence):
		return verdict(s, "dropped", StepResult{Detail: fmt.Sprintf("%s -> %v connected, but not to %s:%d", s.From, dest, receiver, port)}), nil
	}
}

// holder finds who holds public endpoint dest of NAT n: the node behind
// it whose private endpoint a mapping or a translated flow of its table
// links to dest, and that endpoint's port. With no such row, the receiver
// is "": nobody behind the NAT can receive the packet.
func (r *Session) holder(n *topology.Node, proto topology.Protocol, dest netip.AddrPort) (string, uint16, error) {
	ns, err := namedns.Open(lab.NamespaceName(r.st.Name, n.Name))
	if err != nil {
		return "", 0, err
	}
	defer ns.Close()
	t, err := nattable.Read(ns.Fd(), n.Addresses[0])
	if err != nil {
		return "", 0, fmt.Errorf("node %s: %w", n.Name, err)
	}
	var private netip.AddrPort
	for _, m := range t.Mappings {
		if m.Public == dest && proto == topology.UDP {
			private = m.Private
		}
	}
	for _, f := range t.Flows {
		if f.Public == dest && f.Proto == string(proto) && !private.IsValid() {
			private = f.Private
		}
	}
	if !private.IsValid() {
		return "", 0, nil
	}
	for _, c := range r.topo.Nodes {
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
func (r *Session) knock(ctx context.Context, s topology.Step, dest netip.AddrPort) (StepResult, error) {
	var nat *topology.Node
	for _, n := range r.topo.Nodes {
		if n.NAT != nil && slices.Contains(n.Addresses, dest.Addr()) {
			nat = n
		}
	}
	ns, err := namedns.Open(lab.NamespaceName(r.st.Name, nat.Name))
	if err != nil {
		return StepResult{}, err
	}
	defer ns.Close()
	before, err := nattable.WallDrops(ns.Fd())
	if err != nil {
		return StepResult{}, fmt.Errorf("node %s: %w", nat.Name, err)
	}
	if s.Proto == topology.TCP {
		sn, err := r.node(s.From)
		if err != nil {
			return StepResult{}, err
		}
		dctx, cancel := context.WithTimeout(ctx, silence)
		if c, err := sn.DialContext(dctx, "tcp4", dest.String()); err == nil {
			c.Close()
		}
		cancel()
	} else {
		n, err := r.node(s.From)
		if err != nil {
			return StepResult{}, err
		}
		out, err := n.ListenUDP(":0")
		if err != nil {
			return StepResult{}, err
		}
		defer out.Close()
		if _, err := out.WriteToUDPAddrPort([]byte(fmt.Sprintf("natlab knock from %s", s.From)), dest); err != nil {
			return verdict(s, "dropped", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s could not send to %v", s.From, dest)}), nil
		}
	}
	// The counter rises as the packet meets the wall, well within the
	// time a send waits for a packet to arrive.
	deadline := time.Now().Add(silence)
	for {
		after, err := nattable.WallDrops(ns.Fd())
		if err != nil {
			return StepResult{}, fmt.Errorf("node %s: %w", nat.Name, err)
		}
		if after > before {
			return verdict(s, "dropped", StepResult{Detail: fmt.Sprintf("%s -> %v: no row of %s's table holds that public port, and its wall dropped the packet", s.From, dest, nat.Name)}), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return verdict(s, "lost", StepResult{Detail: fmt.Sprintf("%s -> %v: no row of %s's table holds that public port, yet its wall did not count the packet", s.From, dest, nat.Name)}), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
