// Package runner runs a scenario's steps against a lab that is up: STUN
// queries and RFC 5780 classification, hole punches, TURN relays, ICE,
// single packets, waits and commands, each from real sockets inside the
// lab's nodes, and checks what happened against each step's expectation.
package runner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/topology"
)

// StepResult is what one step did.
type StepResult struct {
	Index    int               `json:"index"`
	Name     string            `json:"name"`
	Kind     topology.StepKind `json:"kind"`
	Expect   string            `json:"expect"`
	Observed string            `json:"observed"`
	Pass     bool              `json:"pass"`
	Duration time.Duration     `json:"duration_ns"`
	// Detail is a one-line summary of what was seen.
	Detail string `json:"detail"`
	// Reason says why the step failed its expectation, or why what it
	// observed happened (a punch's failure, for instance).
	Reason string `json:"reason,omitempty"`
	// Data holds the step's full findings (a punch outcome, a
	// classification, ...), for --json.
	Data any `json:"data,omitempty"`
}

// Report is a whole run.
type Report struct {
	Lab      string        `json:"lab"`
	Source   string        `json:"source"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []StepResult  `json:"steps"`
	Passed   bool          `json:"passed"`
}

// Failed counts the steps whose expectation did not hold.
func (r *Report) Failed() int {
	n := 0
	for _, s := range r.Steps {
		if !s.Pass {
			n++
		}
	}
	return n
}

// Options adjust a run.
type Options struct {
	// Started is called before each step, Finished after it.
	Started  func(i int, s topology.Step)
	Finished func(StepResult)
}

// Run runs every step of topo on the lab st describes and returns the
// report. It stops early only if ctx is cancelled.
func Run(ctx context.Context, st *labstate.State, topo *topology.Topology, opts Options) (*Report, error) {
	sess := New(st, topo)
	defer sess.Close()
	rep := &Report{Lab: st.Name, Source: st.Source, Started: time.Now(), Passed: true}
	for i, step := range topo.Steps {
		if err := ctx.Err(); err != nil {
			rep.Duration = time.Since(rep.Started)
			return rep, err
		}
		if opts.Started != nil {
			opts.Started(i, step)
		}
		res := sess.Step(ctx, step)
		res.Index = i
		rep.Steps = append(rep.Steps, res)
		rep.Passed = rep.Passed && res.Pass
		if opts.Finished != nil {
			opts.Finished(res)
		}
	}
	rep.Duration = time.Since(rep.Started)
	return rep, ctx.Err()
}

// Session runs steps one at a time against a lab, keeping what steps
// share between them: handles on nodes, and what steps learnt that later
// steps use (a punched path and its sockets, a forwarded port, a tunnel).
// Every other socket a step opens is closed when the step ends, so a
// session that runs steps for hours (natlab ui's) holds no more than it
// did after the first of each. Run uses one for a whole scenario; natlab
// ui keeps one for as long as it serves a lab. Its methods may be called
// from several goroutines.
type Session struct {
	st   *labstate.State
	topo *topology.Topology
	// bg lives as long as the session: keepalives and tunnels started by
	// steps use it; bgDone counts the keepalives, which Close waits for.
	bg     context.Context
	stopBg context.CancelFunc
	bgDone sync.WaitGroup
	mu     sync.Mutex
	nodes  map[string]*nodenet.Node
	// seen[{a, b}] is where a last saw b's packets come from.
	seen map[[2]string]netip.AddrPort
	// directRTT[{a, b}] is the RTT of a punched path, to compare relays
	// with.
	directRTT map[[2]string]time.Duration
	// paths[{a, b, family}] is a's end of the path a punch opened to b;
	// later sends between them use it. The session owns its socket, and
	// closes it when a new punch between them replaces the path.
	paths map[[3]string]path
	// forwards are public endpoints a host obtained for one of its ports
	// (by NAT-PMP or a tunnel), where sends to that port go.
	forwards map[forwardKey]netip.AddrPort
	// closers run when the session closes.
	closers []func() error
}

// New starts a session on the lab st describes, whose topology is topo
// (st.Topology() or a scenario file's, which must describe the same lab).
func New(st *labstate.State, topo *topology.Topology) *Session {
	bg, stop := context.WithCancel(context.Background())
	return &Session{st: st, topo: topo, bg: bg, stopBg: stop, nodes: map[string]*nodenet.Node{},
		seen: map[[2]string]netip.AddrPort{}, directRTT: map[[2]string]time.Duration{},
		paths: map[[3]string]path{}, forwards: map[forwardKey]netip.AddrPort{}}
}

// Step runs one step and says what it did. Index is left 0 for the caller
// to set.
func (r *Session) Step(ctx context.Context, step topology.Step) StepResult {
	start := time.Now()
	res := r.step(ctx, step)
	res.Name, res.Kind = step.Name, step.Kind
	res.Duration = time.Since(start)
	if ctx.Err() != nil && !res.Pass {
		res.Observed, res.Reason = "interrupted", "the run was interrupted"
	}
	return res
}

// Forget drops what the session learnt about paths through the NATs
// (punched paths, where peers were seen, forwarded ports) and closes the
// sockets behind them: after a NAT's rules change, none of it holds.
func (r *Session) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.paths {
		p.conn.Close()
	}
	clear(r.paths)
	clear(r.seen)
	clear(r.directRTT)
	clear(r.forwards)
}

type sockKey struct {
	node   string
	port   uint16
	family string
}

// path is one end of a punched path: the socket and where the other end
// was seen.
type path struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

type forwardKey struct {
	node  string
	proto topology.Protocol
	port  uint16
}

// Close stops what the session's steps started in the background and
// closes its sockets.
func (r *Session) Close() {
	r.stopBg()
	r.bgDone.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	for _, p := range r.paths {
		p.conn.Close()
	}
	for _, n := range r.nodes {
		n.Close()
	}
}

func (r *Session) node(name string) (*nodenet.Node, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[name]; ok {
		return n, nil
	}
	n, err := nodenet.Open(lab.NamespaceName(r.st.Name, name), name)
	if err != nil {
		return nil, err
	}
	r.nodes[name] = n
	return n, nil
}

// socket returns node's UDP socket on port for the step sc: one the step
// opened already, or the end of a punched path bound there (which holds
// the port's mappings), or a new one that the step's end closes. Within a
// step, what names the same node and port talks through one socket, as
// one application would; across steps the NATs' tables, not the
// sockets, carry what a port did.
func (r *Session) socket(sc *scope, node string, port uint16, family string) (*net.UDPConn, error) {
	key := sockKey{node, port, family}
	if c, ok := sc.socks[key]; ok {
		return c, nil
	}
	if c, ok := r.pathSocket(key); ok {
		return c, nil
	}
	n, err := r.node(node)
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	if family == topology.FamilyIPv6 {
		c, err = n.ListenUDP6(fmt.Sprintf("[::]:%d", port))
	} else {
		c, err = n.ListenUDP(fmt.Sprintf(":%d", port))
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: UDP port %d: %w", node, port, err)
	}
	sc.socks[key] = c
	return c, nil
}

// pathSocket is the socket of a punched path bound to key's node, port
// and family, if there is one.
func (r *Session) pathSocket(key sockKey) (*net.UDPConn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.paths {
		if k[0] == key.node && k[2] == key.family && localPort(p.conn) == key.port {
			return p.conn, true
		}
	}
	return nil, false
}

// fresh opens a new UDP socket on a free port in node, for a step that
// must not share state with others; the step's end closes it unless the
// step keeps it.
func (r *Session) fresh(sc *scope, node, family string) (*net.UDPConn, error) {
	n, err := r.node(node)
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	if family == topology.FamilyIPv6 {
		c, err = n.ListenUDP6("[::]:0")
	} else {
		c, err = n.ListenUDP(":0")
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: UDP socket: %w", node, err)
	}
	sc.socks[sockKey{node: node, port: localPort(c), family: family}] = c
	return c, nil
}

// address is node's first address of the family.
func (r *Session) address(node, family string) netip.Addr {
	n := r.topo.Node(node)
	if family == topology.FamilyIPv6 {
		return n.Addresses6[0]
	}
	return n.Addresses[0]
}

func localPort(c *net.UDPConn) uint16 { return c.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// httpClient makes HTTP requests whose connections start in node. Each
// connection is closed once its response is read: a client kept for
// reuse would hold one open, idle, for as long as the process lives.
func (r *Session) httpClient(node string) (*http.Client, error) {
	n, err := r.node(node)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}, Timeout: time.Minute}, nil
}

// outermost returns the public address of the NAT chain node sits behind
// (its own address on the internet if it sits there). IPv6 has no NAT:
// a node's IPv6 address is public.
func (r *Session) outermost(node, family string) netip.Addr {
	n := r.topo.Node(node)
	if family == topology.FamilyIPv6 {
		return n.Addresses6[0]
	}
	for n.Behind != "" {
		n = r.topo.Node(n.Behind)
	}
	return n.Addresses[0]
}

func (r *Session) step(ctx context.Context, s topology.Step) StepResult {
	sc := newScope()
	defer sc.close()
	var res StepResult
	var err error
	switch s.Kind {
	case topology.StepSTUN:
		res, err = r.stun(ctx, sc, s)
	case topology.StepPunch:
		res, err = r.punch(ctx, sc, s)
	case topology.StepRelay:
		res, err = r.relay(ctx, sc, s)
	case topology.StepUpgrade:
		res, err = r.upgrade(ctx, sc, s)
	case topology.StepPortmap:
		res, err = r.portmap(ctx, sc, s)
	case topology.StepTunnel:
		res, err = r.tunnel(ctx, s)
	case topology.StepTable:
		res, err = r.table(s)
	case topology.StepICE:
		res, err = r.ice(ctx, s)
	case topology.StepSend:
		res, err = r.send(ctx, sc, s)
	case topology.StepWait:
		res, err = r.wait(ctx, s)
	case topology.StepExec:
		res, err = r.exec(ctx, s)
	default:
		err = fmt.Errorf("unknown step kind %q", s.Kind)
	}
	if err != nil {
		// The step could not be carried out at all (a node missing, a
		// socket refused): that fails it whatever it expected.
		res = StepResult{Expect: expectWord(s), Observed: "error", Reason: err.Error()}
	}
	if !res.Pass || res.Observed == "fail" || res.Observed == "error" {
		// What the step saw (no answer, a refused connection) has a
		// cause to name first when it is a service that died.
		if down := r.servicesDown(s); down != "" {
			res.Reason = strings.TrimSuffix(down+"; "+res.Reason, "; ")
		}
	}
	return res
}

func expectWord(s topology.Step) string {
	if s.Kind == topology.StepTable && s.Expect.Mappings == nil && s.Expect.Flows == nil {
		return "anything"
	}
	return s.Expect.String()
}

// verdict fills in the pass/fail of an outcome step.
func verdict(s topology.Step, observed string, res StepResult) StepResult {
	res.Expect = expectWord(s)
	res.Observed = observed
	res.Pass = observed == s.Expect.Outcome
	return res
}
