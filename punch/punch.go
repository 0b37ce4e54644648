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
//
// PairTCP does the same over TCP, by simultaneous open (tcp.go).
//
// Each step is a phase of one peer's agent (side.go). Pair and Run take
// them as applications do, the last two at once and in real time; Walk
// takes the same phases one at a time, for people to watch.
package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/natlab/natlab/rendezvous"
)

// Peer is one side of a punch.
type Peer struct {
	Name string
	// Conn is the peer's UDP socket, inside its node.
	Conn *net.UDPConn
	// Local is the peer's own address and Conn's port: its host
	// candidate, which works when both peers share a LAN. Leave it
	// invalid, or set Config.PublicOnly, to announce the public endpoint
	// only.
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
	// PublicOnly has each peer announce its public endpoint only, not
	// its Local address: two peers on one LAN must then reach each other
	// through their NAT's public address (hairpinning).
	PublicOnly bool
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
	// Measure the RTT over the punched path, a pinging b.
	rtts, err := pings(ctx, cfg, a.Conn, b.Conn, sa.res.Seen, sb.res.Seen)
	sa.res.RTTs = rtts
	if err != nil {
		return out, fmt.Errorf("ping over the punched path: %w", err)
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
	watch, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-s.confirmed:
			t := time.NewTimer(linger)
			defer t.Stop()
			select {
			case <-t.C:
				close(lingered)
			case <-watch.Done():
			}
		case <-watch.Done():
		}
	}()
	err := s.run(ctx, lingered)
	stopWatch()
	<-watched
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

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(5 * time.Second)
	}
	return d
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
