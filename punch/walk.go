package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/natlab/natlab/stunclient"
)

// Walk is a punch taken one step at a time, for people to watch each
// step's packets and table rows: the five steps of the package comment,
// with the fourth step's sends made one after the other instead of at
// once, so that each NAT's answer to each can be seen. Pair is the punch
// applications make; Walk is the same exchange slowed down to be shown.
type Walk struct {
	cfg  Config
	peer [2]Peer
	// next is the number of the step Next takes, 1 to 5; 6 when done.
	next int
	// public[i] is what STUN told peer i; announced[i] what peer i
	// learnt of the other; seen[i] where peer i heard the other from.
	public    [2]netip.AddrPort
	announced [2][]netip.AddrPort
	seen      [2]netip.AddrPort
	counter   int
}

// WalkStep is what one step of a Walk did.
type WalkStep struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	// Lines tell what happened, one sentence each.
	Lines []string `json:"lines"`
	// Done is true after the last step; OK then says whether the path
	// works both ways.
	Done bool `json:"done"`
	OK   bool `json:"ok"`
}

// WalkSteps is the number of steps of a Walk.
const WalkSteps = 5

// walkWait is how long a peer listens for the other's packet in steps 4
// and 5: far longer than a lab needs, short enough to click through.
const walkWait = 500 * time.Millisecond

// NewWalk prepares a walk between a and b; cfg's STUN, Session and
// Predict are used, its timing is not.
func NewWalk(cfg Config, a, b Peer) *Walk {
	return &Walk{cfg: withDefaults(cfg), peer: [2]Peer{a, b}, next: 1}
}

// Next takes the next step. After the fifth it returns an error.
func (w *Walk) Next(ctx context.Context) (WalkStep, error) {
	n := w.next
	var st WalkStep
	var err error
	switch n {
	case 1:
		st, err = w.discover(ctx)
	case 2:
		st, err = w.register(ctx)
	case 3:
		st, err = w.fetch(ctx)
	case 4:
		st, err = w.send()
	case 5:
		st, err = w.answer()
	default:
		return WalkStep{}, errors.New("the walk is over: start a new one")
	}
	st.Number = n
	if err != nil {
		// A step that could not be taken ends the walk.
		w.next = WalkSteps + 1
		return st, err
	}
	w.next++
	return st, nil
}

// Close closes both peers' sockets; a walk that is closed takes no more
// steps.
func (w *Walk) Close() {
	for _, p := range w.peer {
		p.Conn.Close()
	}
	w.next = WalkSteps + 1
}

// Seen is where each peer last heard the other from: after a walk that
// worked, the other end of the path each peer's socket holds.
func (w *Walk) Seen() [2]netip.AddrPort { return w.seen }

// Conns are the peers' sockets.
func (w *Walk) Conns() [2]*net.UDPConn { return [2]*net.UDPConn{w.peer[0].Conn, w.peer[1].Conn} }

// Stop ends the walk without closing its sockets, for whoever took them
// over.
func (w *Walk) Stop() { w.next = WalkSteps + 1 }

// Over says whether every step has been taken.
func (w *Walk) Over() bool { return w.next > WalkSteps }

func (w *Walk) discover(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Ask the mirror"}
	for i, p := range w.peer {
		if !w.cfg.STUN.IsValid() {
			w.public[i] = p.Local
			st.Lines = append(st.Lines, fmt.Sprintf("%s's address %v is public: no STUN needed.", p.Name, p.Local))
			continue
		}
		r, err := stunclient.Binding(ctx, p.Conn, w.cfg.STUN, stunclient.Request{})
		if err != nil {
			return st, fmt.Errorf("%s: ask STUN at %v: %w", p.Name, w.cfg.STUN, err)
		}
		w.public[i] = r.Mapped
		st.Lines = append(st.Lines, fmt.Sprintf("%s (%v) asks the STUN server at %v, which sees it as %v.", p.Name, p.Local, w.cfg.STUN, r.Mapped))
	}
	return st, nil
}

func (w *Walk) register(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Tell the rendezvous"}
	for i, p := range w.peer {
		mine := []netip.AddrPort{w.public[i]}
		if p.Local.IsValid() && p.Local != w.public[i] {
			mine = append(mine, p.Local)
		}
		if err := p.Exchange.Register(ctx, w.cfg.Session, p.Name, mine); err != nil {
			return st, fmt.Errorf("%s: register: %w", p.Name, err)
		}
		st.Lines = append(st.Lines, fmt.Sprintf("%s registers %v with the rendezvous.", p.Name, joinEndpoints(mine)))
	}
	return st, nil
}

func (w *Walk) fetch(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Learn the other's endpoints"}
	for i, p := range w.peer {
		other := w.peer[1-i].Name
		reg, err := p.Exchange.Fetch(ctx, w.cfg.Session, other, 2*time.Second)
		if err != nil {
			return st, fmt.Errorf("%s: fetch %s's endpoints: %w", p.Name, other, err)
		}
		w.announced[i] = reg.Endpoints
		st.Lines = append(st.Lines, fmt.Sprintf("%s learns that %s is at %v.", p.Name, other, joinEndpoints(reg.Endpoints)))
	}
	return st, nil
}

// send is step 4: each side sends to every endpoint the other announced,
// one side after the other, and then once more for a side not heard yet,
// as Pair's sides keep sending: a packet out may open its NAT for the
// other's next packet only.
func (w *Walk) send() (WalkStep, error) {
	st := WalkStep{Title: "Both send"}
	for round := 1; round <= 2; round++ {
		for i := range w.peer {
			from, to := w.peer[i], w.peer[1-i]
			if round == 2 && w.seen[1-i].IsValid() {
				continue
			}
			targets := Targets(w.cfg, w.announced[i])
			msg, err := w.sendTo(from, to.Name, targets)
			if err != nil {
				return st, err
			}
			if round == 1 && len(targets) > len(w.announced[i]) {
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s at %v, and to the %d ports after each, where a NAT that allocates ports in sequence will have put %s's next mapping: its own NAT now lets in answers from all of them.",
					from.Name, to.Name, joinEndpoints(w.announced[i]), w.cfg.PredictSpan, to.Name))
			} else if round == 1 {
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s at %v: its own NAT now lets in answers from there.", from.Name, to.Name, joinEndpoints(w.announced[i])))
			} else {
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s again.", from.Name, to.Name))
			}
			if src, ok := w.hear(to, msg); ok {
				w.seen[1-i] = src
				st.Lines = append(st.Lines, fmt.Sprintf("%s hears it, from %v%s.", to.Name, src, w.reflexive(1-i, src)))
			} else {
				st.Lines = append(st.Lines, fmt.Sprintf("It never reaches %s: %s's NAT dropped it.", to.Name, to.Name))
			}
		}
	}
	return st, nil
}

// answer is step 5: whoever heard the other answers to where the packet
// came from; the path works if a packet has gone each way.
func (w *Walk) answer() (WalkStep, error) {
	st := WalkStep{Title: "Answer", Done: true}
	if !w.seen[0].IsValid() && !w.seen[1].IsValid() {
		st.Lines = append(st.Lines, "Neither heard the other, so there is nothing to answer: no direct path. Each NAT gave the packets to the other a public endpoint the other side did not know, or its wall kept them out. A relay (TURN) is what is left.")
		return st, nil
	}
	for i := range w.peer {
		from, to := w.peer[i], w.peer[1-i]
		if !w.seen[i].IsValid() {
			continue
		}
		msg, err := w.sendTo(from, to.Name, []netip.AddrPort{w.seen[i]})
		if err != nil {
			return st, err
		}
		if src, ok := w.hear(to, msg); ok {
			w.seen[1-i] = src
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, and %s hears it.", from.Name, to.Name, w.seen[i], to.Name))
		} else {
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, but the answer never arrives.", from.Name, to.Name, w.seen[i]))
		}
	}
	st.OK = w.seen[0].IsValid() && w.seen[1].IsValid()
	if st.OK {
		st.Lines = append(st.Lines, fmt.Sprintf("The path works both ways: %s <-> %s, straight through both NATs.", w.seen[1], w.seen[0]))
	} else {
		st.Lines = append(st.Lines, "Packets got through one way only: no direct path.")
	}
	return st, nil
}

func (w *Walk) reflexive(i int, src netip.AddrPort) string {
	for _, a := range w.announced[i] {
		if a == src {
			return ""
		}
	}
	return " (an endpoint it was never told: peer-reflexive, the other NAT gave a new port)"
}

// sendTo sends one walk message from peer from to each endpoint.
func (w *Walk) sendTo(from Peer, to string, endpoints []netip.AddrPort) (string, error) {
	w.counter++
	msg := fmt.Sprintf("NATLAB WALK %s %s %s %d", w.cfg.Session, from.Name, to, w.counter)
	for _, e := range endpoints {
		if _, err := from.Conn.WriteToUDPAddrPort([]byte(msg), e); err != nil {
			return "", fmt.Errorf("%s: send to %v: %w", from.Name, e, err)
		}
	}
	return msg, nil
}

// hear waits for msg at p and says where it came from.
func (w *Walk) hear(p Peer, msg string) (netip.AddrPort, bool) {
	deadline := time.Now().Add(walkWait)
	buf := make([]byte, 1500)
	defer p.Conn.SetReadDeadline(time.Time{})
	for {
		p.Conn.SetReadDeadline(deadline)
		n, src, err := p.Conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return netip.AddrPort{}, false
		}
		if err == nil && string(buf[:n]) == msg {
			return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), true
		}
	}
}

func joinEndpoints(eps []netip.AddrPort) string {
	s := make([]string, len(eps))
	for i, e := range eps {
		s[i] = e.String()
	}
	return strings.Join(s, " and ")
}
