package step

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
	"github.com/pion/transport/v3"
)

// Env is what a step needs from the lab it runs on: its nodes, sockets in
// them, its NATs' tables and traces, and what earlier steps learnt. The
// runner's session is one, scoped to one step: what a step opens through
// it closes when the step ends unless the step keeps it. A test gives a
// step an Env of its own, on loopback.
type Env interface {
	// Lab is the lab's name; Topology its nodes.
	Lab() string
	Topology() *topology.Topology
	// TURN is the lab's TURN credentials.
	TURN() labstate.TURNCredentials
	// Plan is where the services of server listen.
	Plan(server string) service.Plan
	// Node is a handle on a node's network namespace.
	Node(name string) (Node, error)
	// Socket is node's UDP socket on port for this step: one the step
	// opened already, or the end of a punched path bound there, or a
	// new one.
	Socket(node string, port uint16, family string) (*net.UDPConn, error)
	// Fresh opens a UDP socket on a free port in node.
	Fresh(node, family string) (*net.UDPConn, error)
	// Keep hands a socket of the step on to the session, which closes
	// it from then on (when Memory forgets the path it is the end of).
	Keep(c *net.UDPConn)
	// HTTPClient makes HTTP requests whose connections start in node.
	HTTPClient(node string) (*http.Client, error)
	// Table reads a NAT's translation table; WallDrops the count of
	// packets its wall dropped.
	Table(ctx context.Context, nat string) (*nattable.Table, error)
	WallDrops(ctx context.Context, nat string) (uint64, error)
	// Trace starts a trace of what a NAT does to packets; the step must
	// stop it.
	Trace(ctx context.Context, nat string) (*trace.Tracer, error)
	// Memory is what steps learnt that later steps use.
	Memory() *Memory
	// Go runs fn for as long as the session lasts; the session cancels
	// its context and waits for it when it closes.
	Go(fn func(ctx context.Context))
	// OnClose has the session run fn when it closes.
	OnClose(fn func() error)
	// Running says whether the process serving node's services runs.
	Running(node string) bool
	// SetLink changes the conditions of node's uplink, over those it
	// has, and returns the link as it now is; SetLinkState takes it down
	// (up false) or brings it up again. Topology has the new conditions
	// after SetLink.
	SetLink(ctx context.Context, node string, c linkcond.Change) (linkcond.Link, error)
	SetLinkState(ctx context.Context, node string, up bool) error
	// Reboot power-cycles a NAT, which comes back with public as its
	// address unless that is the zero Addr; Renumber gives it a new
	// public address. Topology has the NAT's new address after either.
	Reboot(ctx context.Context, nat string, public netip.Addr) error
	Renumber(ctx context.Context, nat string, public netip.Addr) error
	// Move roams a host behind another NAT; Topology has the host there,
	// with its new address, after it.
	Move(ctx context.Context, host, nat string) error
}

// Node is what a step does inside one node: sockets and processes that
// start there.
type Node interface {
	ListenUDP(local string) (*net.UDPConn, error)
	ListenUDP6(local string) (*net.UDPConn, error)
	Listen(network, local string) (net.Listener, error)
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Do runs fn on a thread inside the node, for what it starts there.
	Do(fn func() error) error
	// PionNet is the node's network for pion's ICE agents.
	PionNet() (transport.Net, error)
}

// Memory is what steps learnt that later steps use: where nodes saw each
// other, the punched paths and their sockets, the RTT of direct paths,
// and public endpoints hosts obtained for their ports. Its methods may be
// called from several goroutines.
type Memory struct {
	mu sync.Mutex
	// seen[{a, b}] is where a last saw b's packets come from.
	seen map[[2]string]netip.AddrPort
	// rtt[{a, b}] is the RTT of a punched path, to compare relays with.
	rtt map[[2]string]time.Duration
	// paths[{a, b, family}] is a's end of the path a punch opened to b;
	// Memory owns its socket.
	paths map[[3]string]Path
	// forwards are public endpoints a host obtained for one of its ports
	// (by NAT-PMP or a tunnel), where sends to that port go.
	forwards map[Forward]netip.AddrPort
	// goodput[{from, to}] is the goodput a throughput step measured over
	// the direct path, in bits per second, to compare relays with.
	goodput map[[2]string]float64
}

// Path is one end of a punched path: the socket and where the other end
// was seen.
type Path struct {
	Conn *net.UDPConn
	To   netip.AddrPort
}

// Forward names a port of a host that has a public endpoint.
type Forward struct {
	Node  string
	Proto topology.Protocol
	Port  uint16
}

// NewMemory returns an empty memory.
func NewMemory() *Memory {
	return &Memory{seen: map[[2]string]netip.AddrPort{}, rtt: map[[2]string]time.Duration{},
		paths: map[[3]string]Path{}, forwards: map[Forward]netip.AddrPort{}, goodput: map[[2]string]float64{}}
}

// Saw notes that at saw from's packets come from addr.
func (m *Memory) Saw(at, from string, addr netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[[2]string{at, from}] = addr
}

// Seen is where at last saw from's packets come from.
func (m *Memory) Seen(at, from string) (netip.AddrPort, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.seen[[2]string{at, from}]
	return a, ok
}

// SetRTT notes the RTT of the direct path between a and b.
func (m *Memory) SetRTT(a, b string, rtt time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rtt[[2]string{a, b}], m.rtt[[2]string{b, a}] = rtt, rtt
}

// RTT is the RTT of the direct path between a and b, if one was punched.
func (m *Memory) RTT(a, b string) (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.rtt[[2]string{a, b}]
	return d, ok
}

// SetGoodput notes the goodput measured from a to b over their direct
// path, in bits per second.
func (m *Memory) SetGoodput(a, b string, bps float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.goodput[[2]string{a, b}] = bps
}

// Goodput is the goodput measured from a to b over their direct path.
func (m *Memory) Goodput(a, b string) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bps, ok := m.goodput[[2]string{a, b}]
	return bps, ok
}

// KeepPath makes p a's end of the path to b over family, closing the
// socket of the path it replaces; Memory owns p's socket from then on.
func (m *Memory) KeepPath(a, b, family string, p Path) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [3]string{a, b, family}
	if old, ok := m.paths[key]; ok && old.Conn != p.Conn {
		old.Conn.Close()
	}
	m.paths[key] = p
}

// Path is a's end of a path a punch opened to b over family.
func (m *Memory) Path(a, b, family string) (Path, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.paths[[3]string{a, b, family}]
	return p, ok
}

// PathSocket is the socket of a punched path bound to node's port over
// family, if there is one.
func (m *Memory) PathSocket(node string, port uint16, family string) (*net.UDPConn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.paths {
		if k[0] == node && k[2] == family && LocalPort(p.Conn) == port {
			return p.Conn, true
		}
	}
	return nil, false
}

// SetForward notes the public endpoint of a host's port.
func (m *Memory) SetForward(f Forward, public netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forwards[f] = public
}

// Forwarded is the public endpoint of a host's port, if it has one.
func (m *Memory) Forwarded(f Forward) (netip.AddrPort, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.forwards[f]
	return a, ok
}

// ForwardTo finds the host port whose public endpoint is public.
func (m *Memory) ForwardTo(public netip.AddrPort, proto topology.Protocol) (Forward, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for f, a := range m.forwards {
		if a == public && f.Proto == proto {
			return f, true
		}
	}
	return Forward{}, false
}

// Forget drops everything and closes the paths' sockets: after a NAT's
// rules change, none of it holds.
func (m *Memory) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.paths {
		p.Conn.Close()
	}
	clear(m.paths)
	clear(m.seen)
	clear(m.rtt)
	clear(m.forwards)
}

// LocalPort is the port a UDP socket is bound to.
func LocalPort(c *net.UDPConn) uint16 { return c.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// address is node's first address of the family.
func address(topo *topology.Topology, node, family string) netip.Addr {
	n := topo.Node(node)
	if family == topology.FamilyIPv6 {
		return n.Addresses6[0]
	}
	return n.Addresses[0]
}

// outermost returns the public address of the NAT chain node sits behind
// (its own address on the internet if it sits there). IPv6 has no NAT:
// a node's IPv6 address is public.
func outermost(topo *topology.Topology, node, family string) netip.Addr {
	n := topo.Node(node)
	if family == topology.FamilyIPv6 {
		return n.Addresses6[0]
	}
	for n.Behind != "" {
		n = topo.Node(n.Behind)
	}
	return n.Addresses[0]
}

// natsOf lists the NATs in front of the hosts, nearest first.
func natsOf(topo *topology.Topology, hosts []string) []string {
	var nats []string
	seen := map[string]bool{}
	for _, h := range hosts {
		for n := topo.Node(h); n.Behind != ""; n = topo.Node(n.Behind) {
			if !seen[n.Behind] {
				seen[n.Behind] = true
				nats = append(nats, n.Behind)
			}
		}
	}
	return nats
}
