package punch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/stunclient"
)

// TCP hole punching is the same trick with TCP's simultaneous open (RFC
// 793's "simultaneous initiation", which RFC 5382 REQ-2 has NATs handle):
// each peer binds one port, with SO_REUSEADDR and SO_REUSEPORT so that the
// port can listen and connect to several endpoints at once; learns its
// public endpoint for that port from STUN over TCP; registers it; and then
// connects to the other's endpoints, again and again, while listening on
// the same port. Each SYN out opens the sender's NAT for the other's SYN;
// when the two SYNs cross, both connects succeed as one connection, and
// when the other's SYN is let in before ours went out (a NAT whose
// filtering admits it) our listener accepts it. Either way the peers end
// with one connection between them, which each confirms by reading the
// other's hello on it.

// TCPPeer is one side of a TCP punch.
type TCPPeer struct {
	Name string
	// Do runs fn on a thread inside the peer's node; the punch opens its
	// sockets there.
	Do func(fn func() error) error
	// Local is the peer's own address, announced with the punch's port
	// as its host candidate unless Config.PublicOnly; invalid for none.
	Local netip.Addr
	// Exchange carries this peer's endpoints to the other and back.
	Exchange Exchange
}

// tcpAttempt bounds one connection attempt: a SYN that no answer follows
// within it was dropped (a lab's round trip is well under a millisecond),
// and the next attempt sends a new one.
const tcpAttempt = 500 * time.Millisecond

// PairTCP punches a TCP connection between a and b at once and measures
// the RTT over it, as Pair does for UDP; cfg.STUN is a STUN server that
// answers over TCP, and Predict is not used. It returns an error wrapping
// ErrNoPath, with what each side saw, if no connection is made within the
// timeout.
func PairTCP(ctx context.Context, cfg Config, a, b TCPPeer) (*Outcome, error) {
	cfg = withDefaults(cfg)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	log := &eventLog{start: time.Now()}
	sa := newTCPSide(cfg, a, b.Name, log)
	sb := newTCPSide(cfg, b, a.Name, log)
	defer sa.close()
	defer sb.close()
	out := &Outcome{A: sa.res, B: sb.res}

	bothDone := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*tcpSide{sa, sb} {
		wg.Go(func() { errs[i] = s.run(ctx, bothDone) })
	}
	watch, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for _, c := range []chan struct{}{sa.confirmed, sb.confirmed} {
			select {
			case <-c:
			case <-watch.Done():
				return
			}
		}
		close(bothDone)
	}()
	wg.Wait()
	stopWatch()
	<-watched
	out.Events = log.events()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	rtts, err := sa.ping(ctx)
	sa.res.RTTs = rtts
	if err != nil {
		return out, fmt.Errorf("ping over the punched connection: %w", err)
	}
	return out, nil
}

// reuse lets the punch's sockets share their port: the listener, the
// connection to STUN and each attempt to connect to the other peer.
func reuse(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err == nil {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// tcpSide is one peer's agent of a TCP punch.
type tcpSide struct {
	cfg   Config
	self  TCPPeer
	other string
	log   *eventLog
	res   *Result
	// port is the one port every socket of the side is bound to.
	port uint16
	ln   net.Listener
	// mine is what the side registered; start is when it could connect.
	mine  []netip.AddrPort
	start time.Time
	// attempts counts the connection attempts (SYNs sent anew).
	attempts atomic.Int64

	mu sync.Mutex
	// open are every socket the side has, closed at the end; closed
	// says the end has come.
	open   []io.Closer
	closed bool
	// path is the first connection on which the other's hello came.
	path net.Conn
	// pongs delivers the answers to ping over path.
	pongs     chan int
	confirmed chan struct{}
	// workers are the goroutines that serve the side's connections.
	workers sync.WaitGroup
}

func newTCPSide(cfg Config, self TCPPeer, other string, log *eventLog) *tcpSide {
	return &tcpSide{cfg: cfg, self: self, other: other, log: log, res: &Result{Peer: self.Name},
		pongs: make(chan int, 16), confirmed: make(chan struct{})}
}

// keep records a socket to close at the end, or closes it at once if the
// end has come (a connection made as the punch ended); it says which.
func (s *tcpSide) keep(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.open = append(s.open, c)
	return true
}

// close closes every socket of the side and waits for its goroutines.
func (s *tcpSide) close() {
	s.mu.Lock()
	open := s.open
	s.open, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	s.workers.Wait()
}

// run takes the phases in turn: bind and listen, STUN, register, fetch,
// then connect and accept until bothDone or ctx ends.
func (s *tcpSide) run(ctx context.Context, bothDone <-chan struct{}) error {
	if err := s.listen(); err != nil {
		return err
	}
	if err := s.discover(ctx); err != nil {
		return err
	}
	if err := s.register(ctx); err != nil {
		return err
	}
	if err := s.fetch(ctx); err != nil {
		return err
	}
	return s.connect(ctx, bothDone)
}

// listen binds the side's port and listens on it.
func (s *tcpSide) listen() error {
	err := s.self.Do(func() error {
		ln, err := (&net.ListenConfig{Control: reuse}).Listen(context.Background(), "tcp4", s.bind(0).String())
		if err != nil {
			return err
		}
		s.ln = ln
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: listen on tcp: %w", s.self.Name, err)
	}
	if !s.keep(s.ln) {
		return fmt.Errorf("%s: %w", s.self.Name, net.ErrClosed)
	}
	s.port = uint16(s.ln.Addr().(*net.TCPAddr).Port)
	s.log.add(s.self.Name, "%s listens on TCP port %d and will connect from it too", s.self.Name, s.port)
	return nil
}

// bind is where the side's sockets are bound: its own address where it
// has one, and port.
func (s *tcpSide) bind(port uint16) netip.AddrPort {
	if s.self.Local.IsValid() {
		return netip.AddrPortFrom(s.self.Local, port)
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), port)
}

// dial connects from the side's port to to, inside its node.
func (s *tcpSide) dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := s.self.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(s.bind(s.port)), Control: reuse, Timeout: timeout}
		var err error
		c, err = d.DialContext(ctx, "tcp4", to.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	if !s.keep(c) {
		return nil, net.ErrClosed
	}
	return c, nil
}

// discover asks STUN, over a connection from the side's port, for the
// port's public endpoint. The connection stays open for the punch, and
// with it the mapping. Without a STUN server the local endpoint is public.
func (s *tcpSide) discover(ctx context.Context) error {
	name := s.self.Name
	local := netip.AddrPortFrom(s.self.Local, s.port)
	if !s.cfg.STUN.IsValid() {
		s.res.Public = local
		s.log.add(name, "%s's address %v is public: no STUN needed", name, local)
		return nil
	}
	c, err := s.dial(ctx, s.cfg.STUN, time.Until(deadline(ctx)))
	if err != nil {
		return fmt.Errorf("%s: connect to STUN at %v over TCP: %w", name, s.cfg.STUN, err)
	}
	r, err := stunclient.BindingStream(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: ask STUN at %v over TCP for its public endpoint: %w", name, s.cfg.STUN, err)
	}
	s.res.Public = r.Mapped
	s.log.add(name, "STUN over TCP says %s's public endpoint is %v (local %v)", name, r.Mapped, local)
	return nil
}

// register registers the public endpoint and, unless the punch announces
// public endpoints only, the local one.
func (s *tcpSide) register(ctx context.Context) error {
	s.mine = []netip.AddrPort{s.res.Public}
	if local := netip.AddrPortFrom(s.self.Local, s.port); !s.cfg.PublicOnly && s.self.Local.IsValid() && local != s.res.Public {
		s.mine = append(s.mine, local)
	}
	if err := s.self.Exchange.Register(ctx, s.cfg.Session, s.self.Name, s.mine); err != nil {
		return fmt.Errorf("%s: register: %w", s.self.Name, err)
	}
	s.log.add(s.self.Name, "%s registers %v with the rendezvous", s.self.Name, s.mine)
	return nil
}

// fetch fetches the other side's endpoints: where the side connects to.
func (s *tcpSide) fetch(ctx context.Context) error {
	name := s.self.Name
	reg, err := s.self.Exchange.Fetch(ctx, s.cfg.Session, s.other, time.Until(deadline(ctx)))
	if errors.Is(err, rendezvous.ErrNotRegistered) || (err != nil && ctx.Err() != nil) {
		return fmt.Errorf("%s: %w: %s never registered its endpoints", name, ErrNoPath, s.other)
	}
	if err != nil {
		return fmt.Errorf("%s: fetch %s's endpoints: %w", name, s.other, err)
	}
	s.res.Announced = reg.Endpoints
	s.start = time.Now()
	s.log.add(name, "%s learns %s's endpoints %v", name, s.other, reg.Endpoints)
	return nil
}

// connect accepts on the side's port and connects from it to each of the
// other's endpoints, attempt after attempt, until the other's hello comes
// on one of the connections and then until bothDone (a side that is done
// still serves the connection the other is confirming on) or ctx ends.
func (s *tcpSide) connect(ctx context.Context, bothDone <-chan struct{}) error {
	name := s.self.Name
	s.workers.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			if s.keep(c) {
				s.serve(ctx, c, "accepted")
			}
		}
	})
	s.log.add(name, "%s connects to %s again and again: each SYN opens its NAT for %s's", name, endpoints(s.res.Announced), s.other)
	punching, stop := context.WithCancel(ctx)
	defer stop()
	for _, to := range s.res.Announced {
		s.workers.Go(func() {
			for punching.Err() == nil {
				select {
				case <-s.confirmed:
					return
				default:
				}
				s.attempts.Add(1)
				c, err := s.dial(punching, to, min(tcpAttempt, time.Until(deadline(punching))))
				if err == nil {
					s.serve(ctx, c, "connected")
					return
				}
				select {
				case <-punching.Done():
				case <-s.confirmed:
				case <-time.After(s.cfg.Interval):
				}
			}
		})
	}
	select {
	case <-ctx.Done():
		s.res.Punches = int(s.attempts.Load())
		select {
		case <-s.confirmed:
			return nil
		default:
		}
		return fmt.Errorf("%s: %w within %v: %s", name, ErrNoPath, s.cfg.Timeout, s.failure())
	case <-bothDone:
		s.res.Punches = int(s.attempts.Load())
		return nil
	}
}

// failure says what the side saw of a failed punch.
func (s *tcpSide) failure() string {
	return fmt.Sprintf("%s made %d connection attempts to %s and heard nothing from %s: %s's NAT dropped the SYNs, or %s's NAT dropped what came back",
		s.self.Name, s.attempts.Load(), endpoints(s.res.Announced), s.other, s.other, s.self.Name)
}

// serve says hello on a new connection and reads the other's: the first
// connection it comes on is the punched path. Then it answers pings on
// it, and passes on answers to its own, until the connection closes.
func (s *tcpSide) serve(ctx context.Context, c net.Conn, how string) {
	s.workers.Go(func() {
		fmt.Fprintf(c, "NATLAB TCP HELLO %s %s %s\n", s.cfg.Session, s.self.Name, s.other)
		c.SetReadDeadline(deadline(ctx))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != fmt.Sprintf("NATLAB TCP HELLO %s %s %s", s.cfg.Session, s.other, s.self.Name) {
			return
		}
		s.confirm(c, how)
		c.SetReadDeadline(time.Time{})
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			var n int
			switch f := strings.Fields(line); {
			case len(f) == 3 && f[1] == "PING":
				if _, err := fmt.Sscan(f[2], &n); err == nil {
					fmt.Fprintf(c, "NATLAB PONG %d\n", n)
				}
			case len(f) == 3 && f[1] == "PONG":
				if _, err := fmt.Sscan(f[2], &n); err == nil {
					select {
					case s.pongs <- n:
					default:
					}
				}
			}
		}
	})
}

// confirm makes c the punched path, if it is the first connection the
// other's hello came on.
func (s *tcpSide) confirm(c net.Conn, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != nil {
		return
	}
	s.path = c
	name := s.self.Name
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	s.res.Seen = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	s.res.Reflexive = !slices.Contains(s.res.Announced, s.res.Seen)
	s.res.FirstPacket = time.Since(s.start)
	s.res.Heard = time.Since(s.log.start)
	s.res.Confirmed = s.res.FirstPacket
	kind := "an announced endpoint"
	if s.res.Reflexive {
		kind = "a new, peer-reflexive endpoint"
	}
	verb := map[string]string{"accepted": "accepts a connection from", "connected": "is connected to"}[how]
	s.log.add(name, "%s %s %s at %v (%s) after %v, and hears its hello: both directions work", name, verb, s.other, s.res.Seen, kind, s.res.FirstPacket.Round(time.Microsecond))
	close(s.confirmed)
}

// ping measures the RTT over the punched path.
func (s *tcpSide) ping(ctx context.Context) ([]time.Duration, error) {
	s.mu.Lock()
	c := s.path
	s.mu.Unlock()
	var rtts []time.Duration
	for i := 1; i <= s.cfg.Pings; i++ {
		sent := time.Now()
		if _, err := fmt.Fprintf(c, "NATLAB PING %d\n", i); err != nil {
			return rtts, err
		}
		for got := false; !got; {
			select {
			case n := <-s.pongs:
				got = n == i
			case <-ctx.Done():
				return rtts, fmt.Errorf("no answer to ping %d: %w", i, ctx.Err())
			}
		}
		rtts = append(rtts, time.Since(sent))
	}
	return rtts, nil
}
