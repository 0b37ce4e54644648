package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/stunclient"
)

// side is one peer's agent. Its phases are the five steps of the package
// comment: discover, register, fetch, then punch (send to the other's
// endpoints) and receive and answer (what comes back). Pair and Run take
// the first three in turn and the last two at once, in exchange; Walk
// takes each for both peers, one after the other. The phases hold the
// punch's logic and its state; the callers only schedule them.
type side struct {
	cfg   Config
	self  Peer
	other string
	log   *eventLog
	res   *Result
	// mine is what this side registered.
	mine []netip.AddrPort
	// targets are where its punches go: the other's announced endpoints
	// (and, with prediction, the ports after them) until the other is
	// heard, then only where it was heard from.
	targets []netip.AddrPort
	// start is when punching could begin: the other's endpoints known.
	start time.Time
	// n counts the punches sent; each carries its number.
	n int
	// pending is where a punch came from that is not answered yet.
	pending netip.AddrPort
	heard   bool // a packet from the other side arrived
	acked   bool // the other side acknowledged one of ours
	done    bool // both: the path works both ways
	// confirmed is closed when done.
	confirmed chan struct{}
}

func newSide(cfg Config, self Peer, other string, log *eventLog) *side {
	return &side{cfg: cfg, self: self, other: other, log: log,
		res: &Result{Peer: self.Name}, confirmed: make(chan struct{})}
}

// run takes the phases as applications do: STUN, register, fetch, then
// punching and answering until bothDone is closed or ctx ends.
func (s *side) run(ctx context.Context, bothDone <-chan struct{}) error {
	if err := s.discover(ctx); err != nil {
		return err
	}
	if err := s.register(ctx); err != nil {
		return err
	}
	if err := s.fetch(ctx, time.Until(deadline(ctx))); err != nil {
		return err
	}
	return s.exchange(ctx, bothDone)
}

// stunWaits is how long discover waits after each of its STUN requests:
// stunclient's schedule, but its last tries stop doubling at 800ms, as the
// punch's pings do, and go on for 4.7s (the punch's timeout cuts them
// short): over a link that loses 10% each way, a fifth of the requests or
// their answers are lost, and stunclient's five tries in 3s all fail once
// in 4,000, eight once in 500,000.
var stunWaits = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
	800 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond}

// discover is step 1: ask STUN for the public endpoint. Without a STUN
// server (IPv6, where no NAT rewrites addresses) the local endpoint is
// public.
func (s *side) discover(ctx context.Context) error {
	name := s.self.Name
	if !s.cfg.STUN.IsValid() {
		s.res.Public = s.self.Local
		s.log.add(name, "%s's address %v is public: no STUN needed", name, s.self.Local)
		return nil
	}
	r, err := stunclient.Binding(ctx, s.self.Conn, s.cfg.STUN, stunclient.Request{Waits: stunWaits})
	if err != nil {
		return fmt.Errorf("%s: ask STUN at %v for its public endpoint: %w", name, s.cfg.STUN, err)
	}
	s.res.Public = r.Mapped
	s.log.add(name, "STUN says %s's public endpoint is %v (local %v)", name, r.Mapped, s.self.Local)
	return nil
}

// register is step 2: register the public endpoint and, unless the punch
// announces public endpoints only, the local one.
func (s *side) register(ctx context.Context) error {
	s.mine = []netip.AddrPort{s.res.Public}
	if !s.cfg.PublicOnly && s.self.Local.IsValid() && s.self.Local != s.res.Public {
		s.mine = append(s.mine, s.self.Local)
	}
	if err := s.self.Exchange.Register(ctx, s.cfg.Session, s.self.Name, s.mine); err != nil {
		return fmt.Errorf("%s: register: %w", s.self.Name, err)
	}
	s.log.add(s.self.Name, "%s registers %v with the rendezvous", s.self.Name, s.mine)
	return nil
}

// fetch is step 3: fetch the other side's endpoints, waiting up to wait
// for it to register them; they, and with prediction the ports after
// them, are where the punches go.
func (s *side) fetch(ctx context.Context, wait time.Duration) error {
	name := s.self.Name
	reg, err := s.self.Exchange.Fetch(ctx, s.cfg.Session, s.other, wait)
	if errors.Is(err, rendezvous.ErrNotRegistered) || (err != nil && ctx.Err() != nil) {
		return fmt.Errorf("%s: %w: %s never registered its endpoints", name, ErrNoPath, s.other)
	}
	if err != nil {
		return fmt.Errorf("%s: fetch %s's endpoints: %w", name, s.other, err)
	}
	s.res.Announced = reg.Endpoints
	s.targets = Targets(s.cfg, reg.Endpoints)
	s.start = time.Now()
	s.log.add(name, "%s learns %s's endpoints %v", name, s.other, reg.Endpoints)
	return nil
}

// punch is step 4, once: one punch to each target. Each punch out opens
// this side's NAT for answers from where it went. It returns the numbers
// of the first and last punch sent.
func (s *side) punch() (first, last int) {
	first = s.n + 1
	for _, t := range s.targets {
		s.n++
		// A punch that cannot be sent is one that does not arrive; the
		// socket failing shows in its reads.
		s.self.Conn.WriteToUDPAddrPort(s.message("PUNCH", s.n), t)
	}
	s.res.Punches = s.n
	if first == 1 {
		s.log.add(s.self.Name, "%s sends its first punches to %s: its NAT now expects answers from there", s.self.Name, endpoints(s.targets))
	}
	return first, s.n
}

// receive is step 5's half that listens: it takes a packet that came in
// and says whether it is the other side's, of which kind and number. The
// first one says where the other side is, and from then on the punches
// go only there; a punch is to be answered (answer); an acknowledgement
// says this side's punches get through.
func (s *side) receive(p packet) (kind string, n int, ok bool) {
	kind, n, ok = s.parse(p.data)
	if !ok {
		return "", 0, false
	}
	name := s.self.Name
	if !s.heard {
		s.heard = true
		s.res.FirstPacket = time.Since(s.start)
		s.res.Heard = time.Since(s.log.start)
		s.res.Seen = p.from
		s.res.Reflexive = !slices.Contains(s.res.Announced, p.from)
		how := "an announced endpoint"
		if s.res.Reflexive {
			how = "a new, peer-reflexive endpoint"
		}
		s.log.add(name, "%s hears %s from %v (%s) after %v", name, s.other, p.from, how, s.res.FirstPacket.Round(time.Microsecond))
		s.targets = []netip.AddrPort{p.from}
	}
	switch kind {
	case "PUNCH":
		s.pending = p.from
	case "ACK":
		if !s.acked {
			s.acked = true
			s.log.add(name, "%s's punch reached %s: both directions work", name, s.other)
		}
	}
	return kind, n, true
}

// answer is step 5's half that speaks: it acknowledges the punch that
// came last, to where it came from. It says where the answer went, or
// false if no punch waited for one.
func (s *side) answer() (netip.AddrPort, bool) {
	to := s.pending
	if !to.IsValid() {
		return to, false
	}
	s.pending = netip.AddrPort{}
	s.self.Conn.WriteToUDPAddrPort(s.message("ACK", 0), to)
	return to, true
}

// confirm ends the punch for this side once it has heard the other and
// been acknowledged: the path works both ways.
func (s *side) confirm() {
	if s.done || !s.heard || !s.acked {
		return
	}
	s.done = true
	s.res.Confirmed = time.Since(s.start)
	close(s.confirmed)
}

// exchange is steps 4 and 5 at once, in real time, as applications
// punch: a punch every Interval until confirmed, every packet received
// and every punch answered, until bothDone is closed (a side that is done
// still answers the other's punches) or ctx ends.
func (s *side) exchange(ctx context.Context, bothDone <-chan struct{}) error {
	name := s.self.Name
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
	s.punch()
	for {
		select {
		case <-ctx.Done():
			if s.done {
				return nil
			}
			return fmt.Errorf("%s: %w within %v: %s", name, ErrNoPath, s.cfg.Timeout, s.failure())
		case <-bothDone:
			return nil
		case err := <-readErr:
			return fmt.Errorf("%s: read: %w", name, err)
		case <-tick.C:
			if !s.done {
				s.punch()
			}
		case p := <-incoming:
			if _, _, ok := s.receive(p); ok {
				s.answer()
				s.confirm()
			}
		}
	}
}

// failure says what this side saw of a failed punch.
func (s *side) failure() string {
	switch {
	case !s.heard:
		return fmt.Sprintf("%s sent %d punches to %s and heard nothing from %s: %s's NAT dropped them, or %s's NAT dropped the answers",
			s.self.Name, s.n, endpoints(s.targets), s.other, s.other, s.self.Name)
	default:
		return fmt.Sprintf("%s heard %s from %v, but %s never acknowledged %s's answers", s.self.Name, s.other, s.res.Seen, s.other, s.self.Name)
	}
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
