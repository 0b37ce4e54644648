package step

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pion/transport/v3"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

// loopEnv is an Env on loopback, for the steps' logic without root: each
// node is an address of 127.0.0.0/8, its sockets bind there, commands run
// here, and a NAT's table and wall are what the test says.
type loopEnv struct {
	topo  *topology.Topology
	mem   *Memory
	plans map[string]service.Plan
	// tables and drops are the NATs' tables and wall counters.
	tables map[string]*nattable.Table
	drops  map[string]uint64
	down   map[string]bool
	// linkDown says which nodes' links a step took down.
	linkDown map[string]bool
	// events are the reboots and renumbers asked for, as "reboot nat-a"
	// or "renumber nat-a 203.0.113.77".
	events []string

	mu      sync.Mutex
	socks   []*net.UDPConn
	kept    []*net.UDPConn
	bg      context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error
}

// newLoopEnv makes an env of nodes name=address, such as "alice",
// "127.0.0.1"; a name starting with nat- is a NAT.
func newLoopEnv(t *testing.T, nodes ...string) *loopEnv {
	t.Helper()
	topo := &topology.Topology{Name: "loop"}
	for i := 0; i+1 < len(nodes); i += 2 {
		n := &topology.Node{Name: nodes[i], Kind: topology.KindHost, Addresses: []netip.Addr{netip.MustParseAddr(nodes[i+1])}}
		if strings.HasPrefix(n.Name, "nat-") {
			n.Kind, n.NAT = topology.KindNAT, &topology.NAT{}
		}
		topo.Nodes = append(topo.Nodes, n)
	}
	bg, stop := context.WithCancel(context.Background())
	e := &loopEnv{topo: topo, mem: NewMemory(), plans: map[string]service.Plan{}, tables: map[string]*nattable.Table{},
		drops: map[string]uint64{}, down: map[string]bool{}, linkDown: map[string]bool{}, bg: bg, stop: stop}
	t.Cleanup(e.close)
	return e
}

func (e *loopEnv) close() {
	e.stop()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range append(e.socks, e.kept...) {
		c.Close()
	}
	for _, fn := range e.closers {
		fn()
	}
	e.mem.Forget()
}

func (e *loopEnv) Lab() string                     { return "loop" }
func (e *loopEnv) Topology() *topology.Topology    { return e.topo }
func (e *loopEnv) TURN() labstate.TURNCredentials  { return labstate.TURNCredentials{} }
func (e *loopEnv) Plan(server string) service.Plan { return e.plans[server] }
func (e *loopEnv) Memory() *Memory                 { return e.mem }
func (e *loopEnv) Running(node string) bool        { return !e.down[node] }

func (e *loopEnv) Reboot(_ context.Context, nat string, public netip.Addr) error {
	ev := "reboot " + nat
	if public.IsValid() {
		ev += " " + public.String()
	}
	return e.event(ev, nat, public)
}

func (e *loopEnv) Renumber(_ context.Context, nat string, public netip.Addr) error {
	return e.event("renumber "+nat+" "+public.String(), nat, public)
}

func (e *loopEnv) Move(_ context.Context, host, nat string) error {
	n, to := e.topo.Node(host), e.topo.Node(nat)
	if n == nil || to == nil || to.NAT == nil {
		return fmt.Errorf("no move of %s behind %s", host, nat)
	}
	e.events = append(e.events, "move "+host+" "+nat)
	n.Behind = nat
	n.Addresses[0] = n.Addresses[0].Next()
	return nil
}

// event notes a reboot or renumber of nat and gives it the address public
// (unless that is the zero Addr), as the lab would.
func (e *loopEnv) event(ev, nat string, public netip.Addr) error {
	n := e.topo.Node(nat)
	if n == nil || n.NAT == nil {
		return fmt.Errorf("%s: not a NAT", nat)
	}
	e.events = append(e.events, ev)
	if public.IsValid() {
		n.Addresses[0] = public
	}
	return nil
}

// SetLink changes the link of the topology's node, as the lab's does.
func (e *loopEnv) SetLink(_ context.Context, node string, c linkcond.Change) (linkcond.Link, error) {
	n := e.topo.Node(node)
	if n == nil {
		return linkcond.Link{}, fmt.Errorf("no node %q", node)
	}
	l := c.Apply(n.Link)
	if err := l.Validate(); err != nil {
		return linkcond.Link{}, err
	}
	n.Link = l
	return l, nil
}

func (e *loopEnv) SetLinkState(_ context.Context, node string, up bool) error {
	if e.topo.Node(node) == nil {
		return fmt.Errorf("no node %q", node)
	}
	e.linkDown[node] = !up
	return nil
}
func (e *loopEnv) HTTPClient(string) (*http.Client, error) { return http.DefaultClient, nil }

func (e *loopEnv) Node(name string) (Node, error) {
	n := e.topo.Node(name)
	if n == nil {
		return nil, fmt.Errorf("no node %s", name)
	}
	return loopNode{n.Addresses[0]}, nil
}

func (e *loopEnv) Socket(node string, port uint16, family string) (*net.UDPConn, error) {
	if c, ok := e.mem.PathSocket(node, port, family); ok {
		return c, nil
	}
	e.mu.Lock()
	for _, c := range e.socks {
		if a := c.LocalAddr().(*net.UDPAddr).AddrPort(); a.Port() == port && a.Addr() == e.topo.Node(node).Addresses[0] {
			e.mu.Unlock()
			return c, nil
		}
	}
	e.mu.Unlock()
	return e.open(node, port)
}

func (e *loopEnv) Fresh(node, family string) (*net.UDPConn, error) { return e.open(node, 0) }

func (e *loopEnv) open(node string, port uint16) (*net.UDPConn, error) {
	n, err := e.Node(node)
	if err != nil {
		return nil, err
	}
	c, err := n.ListenUDP(fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.socks = append(e.socks, c)
	e.mu.Unlock()
	return c, nil
}

func (e *loopEnv) Keep(c *net.UDPConn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kept = append(e.kept, c)
}

func (e *loopEnv) Table(_ context.Context, nat string) (*nattable.Table, error) {
	t, ok := e.tables[nat]
	if !ok {
		return nil, fmt.Errorf("node %s: no table", nat)
	}
	c := *t
	return &c, nil
}

func (e *loopEnv) WallDrops(_ context.Context, nat string) (uint64, error) { return e.drops[nat], nil }

func (e *loopEnv) Trace(context.Context, string) (*trace.Tracer, error) {
	return nil, errors.New("no traces on loopback")
}

func (e *loopEnv) Go(fn func(ctx context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn(e.bg)
	}()
}

func (e *loopEnv) OnClose(fn func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, fn)
}

// loopNode is a node that is one loopback address.
type loopNode struct{ addr netip.Addr }

func (n loopNode) port(local string) int {
	_, p, _ := strings.Cut(local, ":")
	port, _ := strconv.Atoi(p)
	return port
}

func (n loopNode) ListenUDP(local string) (*net.UDPConn, error) {
	return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.addr, uint16(n.port(local)))))
}

func (n loopNode) ListenUDP6(string) (*net.UDPConn, error) {
	return nil, errors.New("no IPv6 on loopback")
}

func (n loopNode) Listen(network, local string) (net.Listener, error) {
	return net.Listen("tcp4", netip.AddrPortFrom(n.addr, uint16(n.port(local))).String())
}

func (n loopNode) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: n.addr.AsSlice()}}
	return d.DialContext(ctx, "tcp4", addr)
}

func (n loopNode) Do(fn func() error) error { return fn() }

func (n loopNode) PionNet() (transport.Net, error) { return nil, errors.New("no pion on loopback") }

var _ Env = (*loopEnv)(nil)
