// Package runner runs a scenario's steps against a lab that is up: each
// step is a unit of package step, run through a Session that gives it the
// lab's nodes, sockets in them, the NATs' tables and traces, and what
// earlier steps learnt; the runner checks what each saw against what it
// expects and makes the report.
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

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

// Report is a whole run.
type Report struct {
	Lab      string        `json:"lab"`
	Source   string        `json:"source"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Up and Down are how long bringing the lab up and taking it down
	// took, where the caller did both (natlab run): with Duration, the
	// steps', they say where a CI job's time goes.
	Up     time.Duration `json:"up_ns,omitempty"`
	Down   time.Duration `json:"down_ns,omitempty"`
	Steps  []step.Result `json:"steps"`
	Passed bool          `json:"passed"`
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
	Finished func(step.Result)
}

// Run runs every step of topo on the lab st describes and returns the
// report. It stops early only if ctx is cancelled.
func Run(ctx context.Context, st *labstate.State, topo *topology.Topology, opts Options) (*Report, error) {
	sess := New(st, topo)
	defer sess.Close()
	rep := &Report{Lab: st.Name, Source: st.Source, Started: time.Now(), Passed: true}
	for i, s := range topo.Steps {
		if err := ctx.Err(); err != nil {
			rep.Duration = time.Since(rep.Started)
			return rep, err
		}
		if opts.Started != nil {
			opts.Started(i, s)
			// Started may wait (the tour waits for Enter there): a run
			// stopped meanwhile does not start the step.
			if err := ctx.Err(); err != nil {
				rep.Duration = time.Since(rep.Started)
				return rep, err
			}
		}
		res := sess.Step(ctx, s)
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
// steps use (step.Memory: a punched path and its sockets, a forwarded
// port). Every other socket a step opens is closed when the step ends,
// so a session that runs steps for hours (natlab ui's) holds no more
// than it did after the first of each. Run uses one for a whole
// scenario; natlab ui keeps one for as long as it serves a lab. Its
// methods may be called from several goroutines.
type Session struct {
	// labMu guards st and topo, which a step that changes the lab (a
	// reboot, a renumber) replaces.
	labMu sync.Mutex
	st    *labstate.State
	topo  *topology.Topology
	mem   *step.Memory
	// bg lives as long as the session: what steps start to outlast
	// them (keepalives) runs under it, and Close waits for it.
	bg     context.Context
	stopBg context.CancelFunc
	bgDone sync.WaitGroup
	mu     sync.Mutex
	nodes  map[string]*nodenet.Node
	// closers run when the session closes, last first.
	closers []func() error
	// closed is set, under mu, before Close waits for bg: from then on Go
	// starts nothing, so nothing is added to bgDone once it is waited on.
	closed    bool
	closeOnce sync.Once
}

// New starts a session on the lab st describes, whose topology is topo
// (st.Topology() or a scenario file's, which must describe the same lab).
func New(st *labstate.State, topo *topology.Topology) *Session {
	bg, stop := context.WithCancel(context.Background())
	return &Session{st: st, topo: topo, mem: step.NewMemory(), bg: bg, stopBg: stop, nodes: map[string]*nodenet.Node{}}
}

// state is the lab's record and topology as they are now.
func (r *Session) state() (*labstate.State, *topology.Topology) {
	r.labMu.Lock()
	defer r.labMu.Unlock()
	return r.st, r.topo
}

// reload reads the lab's record again after a change to the lab, and
// takes its topology, with the change, for the session's; the steps stay
// the session's own.
func (r *Session) reload() error {
	st, topo := r.state()
	fresh, err := labstate.Load(st.Name)
	if err != nil {
		return err
	}
	t, err := fresh.Topology()
	if err != nil {
		return err
	}
	t.Source, t.Steps = topo.Source, topo.Steps
	r.labMu.Lock()
	defer r.labMu.Unlock()
	r.st, r.topo = fresh, t
	return nil
}

// Step runs one step and says what it did. Index is left 0 for the caller
// to set.
func (r *Session) Step(ctx context.Context, s topology.Step) step.Result {
	start := time.Now()
	env := r.Env()
	defer env.Close()
	u := step.UnitOf(s)
	res, err := u.Run(ctx, env)
	if err != nil {
		// The step could not be carried out at all (a node missing, a
		// socket refused): that fails it whatever it expected.
		res = step.Result{Expect: u.Expected(), Observed: "error", Reason: err.Error()}
	}
	if !res.Pass || res.Observed == "fail" || res.Observed == "error" {
		// What the step saw (no answer, a refused connection) has a
		// cause to name first when it is a service that died.
		if down := step.ServicesDown(env, u); down != "" {
			res.Reason = strings.TrimSuffix(down+"; "+res.Reason, "; ")
		}
	}
	res.Name, res.Kind = s.Name, s.Kind
	res.Duration = time.Since(start)
	if ctx.Err() != nil && !res.Pass {
		res.Observed, res.Reason = "interrupted", "the run was interrupted"
	}
	return res
}

// Forget drops what the session learnt about paths through the NATs
// (punched paths, where peers were seen, forwarded ports) and closes the
// sockets behind them: after a NAT's rules change, none of it holds.
func (r *Session) Forget() { r.mem.Forget() }

// Close stops what the session's steps started in the background, waits
// for it to end, and closes its sockets and handles. It may be called
// more than once, and from several goroutines: each returns once the
// session is closed.
func (r *Session) Close() { r.closeOnce.Do(r.close) }

func (r *Session) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stopBg()
	r.bgDone.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.mem.Forget()
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
	if r.closed {
		// Close would not close a handle opened now.
		return nil, fmt.Errorf("node %s: the session is closed", name)
	}
	n, err := nodenet.Open(lab.NamespaceName(r.lab(), name), name)
	if err != nil {
		return nil, err
	}
	r.nodes[name] = n
	return n, nil
}

// Env is the session as one step sees it: what the step opens through it
// is closed by Close unless the step keeps it. It implements step.Env.
type Env struct {
	s     *Session
	socks map[sockKey]*net.UDPConn
}

type sockKey struct {
	node   string
	port   uint16
	family string
}

// Env starts a step's view of the session; the caller closes it when the
// step ends.
func (r *Session) Env() *Env { return &Env{s: r, socks: map[sockKey]*net.UDPConn{}} }

// Close closes the sockets the step opened and did not keep.
func (e *Env) Close() {
	for _, c := range e.socks {
		c.Close()
	}
	clear(e.socks)
}

var _ step.Env = (*Env)(nil)

// Lab is the lab's name.
func (e *Env) Lab() string { return e.s.lab() }

// Topology is the lab's topology.
func (e *Env) Topology() *topology.Topology {
	_, topo := e.s.state()
	return topo
}

// TURN is the lab's TURN credentials.
func (e *Env) TURN() labstate.TURNCredentials {
	st, _ := e.s.state()
	return st.TURN
}

// Plan is where server's services listen.
func (e *Env) Plan(server string) service.Plan { return service.PlanFor(e.Topology().Node(server)) }

// Memory is what the session's steps learnt.
func (e *Env) Memory() *step.Memory { return e.s.mem }

// Node opens (once per session) a handle on a node.
func (e *Env) Node(name string) (step.Node, error) { return e.s.node(name) }

// Socket returns node's UDP socket on port: one the step opened already,
// or the end of a punched path bound there (which holds the port's
// mappings), or a new one. Within a step, what names the same node and
// port talks through one socket, as one application would; across steps
// the NATs' tables, not the sockets, carry what a port did.
func (e *Env) Socket(node string, port uint16, family string) (*net.UDPConn, error) {
	key := sockKey{node, port, family}
	if c, ok := e.socks[key]; ok {
		return c, nil
	}
	if c, ok := e.s.mem.PathSocket(node, port, family); ok {
		return c, nil
	}
	c, err := e.listen(node, port, family)
	if err != nil {
		return nil, err
	}
	e.socks[key] = c
	return c, nil
}

// Fresh opens a new UDP socket on a free port in node, for a step that
// must not share state with others.
func (e *Env) Fresh(node, family string) (*net.UDPConn, error) {
	c, err := e.listen(node, 0, family)
	if err != nil {
		return nil, err
	}
	e.socks[sockKey{node: node, port: step.LocalPort(c), family: family}] = c
	return c, nil
}

func (e *Env) listen(node string, port uint16, family string) (*net.UDPConn, error) {
	n, err := e.s.node(node)
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
		if port == 0 {
			return nil, fmt.Errorf("node %s: UDP socket: %w", node, err)
		}
		return nil, fmt.Errorf("node %s: UDP port %d: %w", node, port, err)
	}
	return c, nil
}

// Keep takes c out of the step's sockets: the step hands it to what
// closes it (the memory of a punched path, a walk).
func (e *Env) Keep(c *net.UDPConn) {
	for k, s := range e.socks {
		if s == c {
			delete(e.socks, k)
		}
	}
}

// HTTPClient makes HTTP requests whose connections start in node. Each
// connection is closed once its response is read: a client kept for
// reuse would hold one open, idle, for as long as the process lives.
func (e *Env) HTTPClient(node string) (*http.Client, error) {
	n, err := e.s.node(node)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}, Timeout: time.Minute}, nil
}

// inNAT runs fn with a handle on the namespace of NAT nat.
func (e *Env) inNAT(nat string, fn func(ns *namedns.NS) error) error {
	ns, err := namedns.Open(lab.NamespaceName(e.s.lab(), nat))
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := fn(ns); err != nil {
		return fmt.Errorf("node %s: %w", nat, err)
	}
	return nil
}

// Table reads NAT nat's translation table.
func (e *Env) Table(ctx context.Context, nat string) (*nattable.Table, error) {
	var t *nattable.Table
	err := e.inNAT(nat, func(ns *namedns.NS) (err error) {
		t, err = nattable.ReadNAT(ctx, ns.Fd(), e.Topology().Node(nat))
		return err
	})
	return t, err
}

// WallDrops counts the packets NAT nat's wall dropped.
func (e *Env) WallDrops(ctx context.Context, nat string) (uint64, error) {
	var n uint64
	err := e.inNAT(nat, func(ns *namedns.NS) (err error) {
		n, err = nattable.WallDrops(ctx, ns.Fd())
		return err
	})
	return n, err
}

// Trace starts a trace on NAT nat.
func (e *Env) Trace(ctx context.Context, nat string) (*trace.Tracer, error) {
	tr, err := trace.Open(ctx, lab.NamespaceName(e.s.lab(), nat))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nat, err)
	}
	return tr, nil
}

// Go runs fn until the session closes, which cancels fn's context and
// waits for it to return.
func (e *Env) Go(fn func(ctx context.Context)) {
	r := e.s
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		fn(r.bg)
	}()
}

// OnClose has the session run fn when it closes.
// A session closed already runs it at once: what a step still running
// as the session closed kept open is closed all the same.
func (e *Env) OnClose(fn func() error) {
	r := e.s
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		fn()
		return
	}
	defer r.mu.Unlock()
	r.closers = append(r.closers, fn)
}

// SetLink changes node's uplink on the lab (lab.SetLink), and the
// session's topology with it.
func (e *Env) SetLink(ctx context.Context, node string, c linkcond.Change) (linkcond.Link, error) {
	l, err := lab.SetLink(ctx, e.s.st.Name, node, c)
	if err != nil {
		return linkcond.Link{}, err
	}
	if n := e.s.topo.Node(node); n != nil {
		n.Link = l
	}
	return l, nil
}

// SetLinkState takes node's uplink down or brings it up (lab.SetLinkState).
func (e *Env) SetLinkState(ctx context.Context, node string, up bool) error {
	return lab.SetLinkState(ctx, e.s.st.Name, node, up)
}

// Running says whether the process serving node's services runs, as far
// as the lab's record tells: a node whose process is not recorded (a lab
// whose services natlab did not start) counts as running.
func (e *Env) Running(node string) bool {
	st, _ := e.s.state()
	for _, p := range st.Processes {
		if p.Node == node {
			return lab.ProcessAlive(p.PID, p.StartTime)
		}
	}
	return true
}

// lab is the lab's name.
func (r *Session) lab() string {
	st, _ := r.state()
	return st.Name
}

// Reboot power-cycles NAT nat (lab.Reboot); the session's topology has
// its address after it.
func (e *Env) Reboot(ctx context.Context, nat string, public netip.Addr) error {
	if _, err := lab.Reboot(ctx, e.s.lab(), nat, public); err != nil {
		return err
	}
	return e.s.reload()
}

// Renumber gives NAT nat a new public address (lab.Renumber); the
// session's topology has it after it.
func (e *Env) Renumber(ctx context.Context, nat string, public netip.Addr) error {
	if _, err := lab.Renumber(ctx, e.s.lab(), nat, public); err != nil {
		return err
	}
	return e.s.reload()
}

// Move roams host behind NAT nat (lab.Move); the session's topology has
// it there after it.
func (e *Env) Move(ctx context.Context, host, nat string) error {
	if _, err := lab.Move(ctx, e.s.lab(), host, nat); err != nil {
		return err
	}
	return e.s.reload()
}
