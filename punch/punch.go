// Package punch is natlab's hole-punching agent, the trick of the story's
// fifth act, between two peers behind NATs:
//
//  1. each peer asks a STUN server for its public endpoint;
//  2. each registers its endpoints (public and local) with a rendezvous;
//  3. each fetches the other's;
//  4. both send to each other at the same time: each packet out opens the
//     sender's own NAT for answers from where it went;
//  5. a packet gets through, the receiver answers to wherever it came from
//     (its observed source, a peer-reflexive address when the peer's NAT
//     gave a new port), and both directions are confirmed.
//
// Then the agent measures the round-trip time and can keep the mapping
// alive. With port prediction, a peer behind a NAT that allocates ports
// sequentially is also tried at the ports after the one STUN saw.
package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/stunclient"
)

// Peer is one side of a punch.
type Peer struct {
	Name string
	// Conn is the peer's UDP socket, inside its node.
	Conn *net.UDPConn
	// Local is the peer's own address and Conn's port: its host
	// candidate, which works when both peers share a LAN. Leave it
	// invalid to announce the public endpoint only.
	Local netip.AddrPort
	// Exchange carries this peer's endpoints to the other and back: a
	// rendezvous client whose connections start in the peer's node, or a
	// Board shared by both peers.
	Exchange Exchange
}

// Exchange carries endpoints between the peers: a rendezvous service,
// or an in-process Board when the lab has none.
type Exchange interface {
	Register(ctx context.Context, session, peer string, endpoints []netip.AddrPort) error
	Fetch(ctx context.Context, session, peer string, wait time.Duration) (rendezvous.Registration, error)
}

// Config is one punch.
type Config struct {
	// STUN is the STUN server both peers ask for their public endpoint;
	// invalid for none (IPv6).
	STUN netip.AddrPort
	// Session names this punch at the rendezvous.
	Session string
	// Timeout bounds the whole punch: STUN, exchange and punching.
	Timeout time.Duration
	// Interval is the time between punches (default 20ms).
	Interval time.Duration
	// Predict also punches to the PredictSpan ports after the peer's
	// public port (default 16), for sequential-port NATs.
	Predict     bool
	PredictSpan int
	// Pings measure the RTT once connected (default 5).
	Pings int
}

// Event is one thing that happened, for the step-by-step story.
type Event struct {
	At   time.Duration `json:"at"`
	Peer string        `json:"peer"`
	What string        `json:"what"`
}

// Result is one side's view of the punch.
type Result struct {
	Peer string `json:"peer"`
	// Public is this side's public endpoint, from STUN.
	Public netip.AddrPort `json:"public"`
	// Announced are the endpoints the other side registered.
	Announced []netip.AddrPort `json:"announced"`
	// Seen is where the other side's packets came from; Reflexive is
	// true when that is none of the announced endpoints (peer-reflexive).
	Seen      netip.AddrPort `json:"seen"`
	Reflexive bool           `json:"peer_reflexive"`
	// Punches is how many punch packets this side sent.
	Punches int `json:"punches"`
	// FirstPacket is the time from the start of punching to the first
	// packet from the other side; Confirmed to both directions working.
	FirstPacket time.Duration `json:"first_packet"`
	// Heard is the time from the agents starting (before STUN and the
	// exchange) to the first packet from the other side.
	Heard     time.Duration   `json:"heard"`
	Confirmed time.Duration   `json:"confirmed"`
	RTTs      []time.Duration `json:"rtts,omitempty"`
}

// MedianRTT is the middle of the measured RTTs.
func (r *Result) MedianRTT() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	s := slices.Clone(r.RTTs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Outcome is a punch between two peers.
type Outcome struct {
	A, B   *Result
	Events []Event
}

// ErrNoPath means the punch timed out without a working path.
var ErrNoPath = errors.New("no direct path")

// Pair punches between a and b at once and measures the RTT. It returns
// an error wrapping ErrNoPath, with what each side heard, if the punch
// fails within the timeout; the Outcome is filled in as far as it got.
func Pair(ctx context.Context, cfg Config, a, b Peer) (*Outcome, error) {
	cfg = withDefaults(cfg)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	log := &eventLog{start: time.Now()}
	sa := newSide(cfg, a, b.Name, log)
	sb := newSide(cfg, b, a.Name, log)
	out := &Outcome{A: sa.res, B: sb.res}

	// Both sides run until both are confirmed: a side that is done still
	// answers the other's punches.
	bothDone := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*side{sa, sb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.run(ctx, bothDone)
		}()
	}
	go func() {
		for _, c := range []chan struct{}{sa.confirmed, sb.confirmed} {
			select {
			case <-c:
			case <-ctx.Done():
				return
			}
		}
		close(bothDone)
	}()
	wg.Wait()
	out.Events = log.events()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	// Measure the RTT over the punched path, a pinging b.
	for i := 0; i < cfg.Pings; i++ {
		rtt, err := ping(ctx, a.Conn, b.Conn, sa.res.Seen, sb.res.Seen, fmt.Sprintf("%s %d", cfg.Session, i))
		if err != nil {
			return out, fmt.Errorf("ping over the punched path: %w", err)
		}
		sa.res.RTTs = append(sa.res.RTTs, rtt)
	}
	return out, nil
}

// Run is one side of a punch, for a peer whose other side runs
// elsewhere: it punches until both directions are confirmed, then keeps
// answering the other side's punches for linger, so that it can confirm
// too.
func Run(ctx context.Context, cfg Config, self Peer, other string, linger time.Duration) (*Result, []Event, error) {
	cfg = withDefaults(cfg)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	log := &eventLog{start: time.Now()}
	s := newSide(cfg, self, other, log)
	lingered := make(chan struct{})
	go func() {
		select {
		case <-s.confirmed:
			select {
			case <-time.After(linger):
			case <-ctx.Done():
			}
			close(lingered)
		case <-ctx.Done():
		}
	}()
	err := s.run(ctx, lingered)
	return s.res, log.events(), err
}

// Targets are the endpoints a side punches to: those the other
// announced, and with port prediction the PredictSpan ports after each,
// where a NAT that allocates ports in sequence puts the other's next
// mapping.
func Targets(cfg Config, announced []netip.AddrPort) []netip.AddrPort {
	cfg = withDefaults(cfg)
	targets := slices.Clone(announced)
	if cfg.Predict {
		for _, e := range announced {
			for i := 1; i <= cfg.PredictSpan && int(e.Port())+i <= 65535; i++ {
				targets = append(targets, netip.AddrPortFrom(e.Addr(), e.Port()+uint16(i)))
			}
		}
	}
	return targets
}

func withDefaults(cfg Config) Config {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.PredictSpan == 0 {
		cfg.PredictSpan = 16
	}
	if cfg.Pings == 0 {
		cfg.Pings = 5
	}
	if cfg.Session == "" {
		cfg.Session = "punch"
	}
	return cfg
}

type eventLog struct {
	start time.Time
	mu    sync.Mutex
	list  []Event
}

func (l *eventLog) add(peer, format string, args ...any) {
	l.mu.Lock()
	l.list = append(l.list, Event{At: time.Since(l.start), Peer: peer, What: fmt.Sprintf(format, args...)})
	l.mu.Unlock()
}

func (l *eventLog) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// side is one peer's agent.
type side struct {
	cfg       Config
	self      Peer
	other     string
	log       *eventLog
	res       *Result
	confirmed chan struct{}
	heard     bool // a packet from the other side arrived
	acked     bool // the other side acknowledged one of ours
}

func newSide(cfg Config, self Peer, other string, log *eventLog) *side {
	return &side{cfg: cfg, self: self, other: other, log: log,
		res: &Result{Peer: self.Name}, confirmed: make(chan struct{})}
}

// Wire format: text, so tcpdump -A shows the story.
//
//	NATLAB PUNCH <session> <from> <to> <n>
//	NATLAB ACK <session> <from> <to> <n>
func (s *side) message(kind string, n int) []byte {
	return fmt.Appendf(nil, "NATLAB %s %s %s %s %d", kind, s.cfg.Session, s.self.Name, s.other, n)
}

// parse returns the kind and counter of a message from the other side to
// this one, or ok=false.
func (s *side) parse(b []byte) (kind string, n int, ok bool) {
	f := strings.Fields(string(b))
	if len(f) != 6 || f[0] != "NATLAB" || f[2] != s.cfg.Session || f[3] != s.other || f[4] != s.self.Name {
		return "", 0, false
	}
	if _, err := fmt.Sscan(f[5], &n); err != nil {
		return "", 0, false
	}
	return f[1], n, true
}

func (s *side) run(ctx context.Context, bothDone <-chan struct{}) error {
	name := s.self.Name
	// 1. Ask STUN for the public endpoint. Without a STUN server (IPv6,
	// where no NAT rewrites addresses) the local endpoint is public.
	if s.cfg.STUN.IsValid() {
		r, err := stunclient.Binding(ctx, s.self.Conn, s.cfg.STUN, stunclient.Request{})
		if err != nil {
			return fmt.Errorf("%s: ask STUN at %v for its public endpoint: %w", name, s.cfg.STUN, err)
		}
		s.res.Public = r.Mapped
		s.log.add(name, "STUN says %s's public endpoint is %v (local %v)", name, r.Mapped, s.self.Local)
	} else {
		s.res.Public = s.self.Local
		s.log.add(name, "%s's address %v is public: no STUN needed", name, s.self.Local)
	}

	// 2. Register public and local endpoints.
	mine := []netip.AddrPort{s.res.Public}
	if s.self.Local.IsValid() && s.self.Local != s.res.Public {
		mine = append(mine, s.self.Local)
	}
	if err := s.self.Exchange.Register(ctx, s.cfg.Session, name, mine); err != nil {
		return fmt.Errorf("%s: register: %w", name, err)
	}
	s.log.add(name, "%s registers %v with the rendezvous", name, mine)

	// 3. Fetch the other side's.
	wait := time.Until(deadline(ctx))
	reg, err := s.self.Exchange.Fetch(ctx, s.cfg.Session, s.other, wait)
	if errors.Is(err, rendezvous.ErrNotRegistered) || (err != nil && ctx.Err() != nil) {
		return fmt.Errorf("%s: %w: %s never registered its endpoints", name, ErrNoPath, s.other)
	}
	if err != nil {
		return fmt.Errorf("%s: fetch %s's endpoints: %w", name, s.other, err)
	}
	s.res.Announced = reg.Endpoints
	s.log.add(name, "%s learns %s's endpoints %v", name, s.other, reg.Endpoints)

	// 4. Punch, and 5. answer what comes back.
	targets := Targets(s.cfg, reg.Endpoints)
	start := time.Now()
	readErr := make(chan error, 1)
	incoming := make(chan packet, 64)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go read(s.self.Conn, incoming, readErr, stop, stopped)
	defer func() {
		// The socket is used again after the punch: wait until the
		// reader is gone so it cannot take those packets.
		close(stop)
		s.self.Conn.SetReadDeadline(time.Now())
		<-stopped
		s.self.Conn.SetReadDeadline(time.Time{})
	}()
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	n := 0
	send := func() {
		for _, t := range targets {
			n++
			s.self.Conn.WriteToUDPAddrPort(s.message("PUNCH", n), t)
		}
		if n == len(targets) {
			s.log.add(name, "%s sends its first punches to %s: its NAT now expects answers from there", name, endpoints(targets))
		}
	}
	send()
	done := false
	for {
		select {
		case <-ctx.Done():
			s.res.Punches = n
			if done {
				return nil
			}
			return fmt.Errorf("%s: %w within %v: %s", name, ErrNoPath, s.cfg.Timeout, s.failure(n, targets))
		case <-bothDone:
			s.res.Punches = n
			return nil
		case err := <-readErr:
			return fmt.Errorf("%s: read: %w", name, err)
		case <-tick.C:
			if !done {
				send()
			}
		case p := <-incoming:
			kind, _, ok := s.parse(p.data)
			if !ok {
				continue
			}
			if !s.heard {
				s.heard = true
				s.res.FirstPacket = time.Since(start)
				s.res.Heard = time.Since(s.log.start)
				s.res.Seen = p.from
				s.res.Reflexive = !slices.Contains(reg.Endpoints, p.from)
				how := "an announced endpoint"
				if s.res.Reflexive {
					how = "a new, peer-reflexive endpoint"
				}
				s.log.add(name, "%s hears %s from %v (%s) after %v", name, s.other, p.from, how, s.res.FirstPacket.Round(time.Microsecond))
				// Answer where it came from, from now on.
				targets = []netip.AddrPort{p.from}
			}
			switch kind {
			case "PUNCH":
				s.self.Conn.WriteToUDPAddrPort(s.message("ACK", 0), p.from)
			case "ACK":
				if !s.acked {
					s.acked = true
					s.log.add(name, "%s's punch reached %s: both directions work", name, s.other)
				}
			}
			if s.heard && s.acked && !done {
				done = true
				s.res.Confirmed = time.Since(start)
				close(s.confirmed)
			}
		}
	}
}

// failure says what this side saw of a failed punch.
func (s *side) failure(n int, targets []netip.AddrPort) string {
	switch {
	case !s.heard:
		return fmt.Sprintf("%s sent %d punches to %s and heard nothing from %s: %s's NAT dropped them, or %s's NAT dropped the answers",
			s.self.Name, n, endpoints(targets), s.other, s.other, s.self.Name)
	default:
		return fmt.Sprintf("%s heard %s from %v, but %s never acknowledged %s's answers", s.self.Name, s.other, s.res.Seen, s.other, s.self.Name)
	}
}

// endpoints writes the endpoints a side punches for a message: all of
// them when they are few, else how many and, for each address in the
// order it first appears, the range of its ports and how many.
func endpoints(targets []netip.AddrPort) string {
	if len(targets) <= 4 {
		return fmt.Sprint(targets)
	}
	type ports struct {
		lo, hi uint16
		n      int
	}
	var order []netip.Addr
	byAddr := map[netip.Addr]*ports{}
	for _, t := range targets {
		p := byAddr[t.Addr()]
		if p == nil {
			p = &ports{lo: t.Port(), hi: t.Port()}
			byAddr[t.Addr()] = p
			order = append(order, t.Addr())
		}
		p.lo, p.hi, p.n = min(p.lo, t.Port()), max(p.hi, t.Port()), p.n+1
	}
	parts := make([]string, len(order))
	for i, a := range order {
		p := byAddr[a]
		parts[i] = netip.AddrPortFrom(a, p.lo).String()
		if p.n > 1 {
			parts[i] += fmt.Sprintf("-%d (%d)", p.hi, p.n)
		}
	}
	return fmt.Sprintf("%d endpoints: %s", len(targets), strings.Join(parts, ", "))
}

type packet struct {
	data []byte
	from netip.AddrPort
}

// read delivers datagrams until stop is closed (and the socket's read
// deadline set in the past to wake it) or the socket fails.
func read(c *net.UDPConn, out chan<- packet, errc chan<- error, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		select {
		case <-stop:
			return
		default:
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				errc <- err
			}
			return
		}
		select {
		case out <- packet{append([]byte(nil), buf[:n]...), netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}:
		case <-stop:
			return
		}
	}
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(5 * time.Second)
	}
	return d
}

// ping sends one ping from a to b over the punched path (a sends to
// bSeen, where a saw b's packets come from) and waits for the pong.
func ping(ctx context.Context, a, b *net.UDPConn, bSeen, aSeen netip.AddrPort, id string) (time.Duration, error) {
	msg := []byte("NATLAB PING " + id)
	buf := make([]byte, 1500)
	sent := time.Now()
	if _, err := a.WriteToUDPAddrPort(msg, bSeen); err != nil {
		return 0, err
	}
	b.SetReadDeadline(deadline(ctx))
	defer b.SetReadDeadline(time.Time{})
	for {
		n, _, err := b.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, fmt.Errorf("the ping did not arrive: %w", err)
		}
		if string(buf[:n]) == string(msg) {
			break
		}
	}
	pong := []byte("NATLAB PONG " + id)
	if _, err := b.WriteToUDPAddrPort(pong, aSeen); err != nil {
		return 0, err
	}
	a.SetReadDeadline(deadline(ctx))
	defer a.SetReadDeadline(time.Time{})
	for {
		n, _, err := a.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, fmt.Errorf("the pong did not arrive: %w", err)
		}
		if string(buf[:n]) == string(pong) {
			return time.Since(sent), nil
		}
	}
}

// KeepAlive keeps a punched path open: it sends a small packet from conn
// to peer every interval until ctx is done. Both NATs on the path refresh
// their mapping with each one; without them a mapping expires after the
// NAT's timeout and the path closes.
func KeepAlive(ctx context.Context, conn *net.UDPConn, peer netip.AddrPort, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := conn.WriteToUDPAddrPort([]byte("NATLAB KEEPALIVE"), peer); errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}
