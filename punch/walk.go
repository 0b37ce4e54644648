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
)

// Walk is a punch taken one step at a time, for people to watch each
// step's packets and table rows: the five steps of the package comment,
// each the same phase of the same agents as Pair's (side.go), taken for
// both peers before the next. Only the timing differs: the fourth step's
// punches go one peer after the other, each listened for before the next
// is sent, so that each NAT's answer to each can be seen, and the fifth
// step's answers likewise.
type Walk struct {
	cfg   Config
	sides [2]*side
	// next is the number of the step Next takes, 1 to 5; 6 when done.
	next int
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

// walkFetchWait is how long step 3 waits for the other's endpoints, which
// step 2 registered already.
const walkFetchWait = 2 * time.Second

// NewWalk prepares a walk between a and b. cfg is a punch's, as Pair
// takes it: STUN, session, prediction, public endpoints only; its timing
// is not used, since people set the pace.
func NewWalk(cfg Config, a, b Peer) *Walk {
	cfg = withDefaults(cfg)
	log := &eventLog{start: time.Now()}
	return &Walk{cfg: cfg, sides: [2]*side{newSide(cfg, a, b.Name, log), newSide(cfg, b, a.Name, log)}, next: 1}
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
		st = w.send(ctx)
	case 5:
		st = w.answer(ctx)
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
	for _, s := range w.sides {
		s.self.Conn.Close()
	}
	w.next = WalkSteps + 1
}

// Seen is where each peer heard the other from: after a walk that
// worked, the other end of the path each peer's socket holds.
func (w *Walk) Seen() [2]netip.AddrPort {
	return [2]netip.AddrPort{w.sides[0].res.Seen, w.sides[1].res.Seen}
}

// Conns are the peers' sockets.
func (w *Walk) Conns() [2]*net.UDPConn {
	return [2]*net.UDPConn{w.sides[0].self.Conn, w.sides[1].self.Conn}
}

// Outcome is what each peer saw so far, as Pair reports it (without
// RTTs: a walk measures none).
func (w *Walk) Outcome() *Outcome {
	return &Outcome{A: w.sides[0].res, B: w.sides[1].res, Events: w.sides[0].log.events()}
}

// Stop ends the walk without closing its sockets, for whoever took them
// over.
func (w *Walk) Stop() { w.next = WalkSteps + 1 }

// Over says whether every step has been taken.
func (w *Walk) Over() bool { return w.next > WalkSteps }

func (w *Walk) discover(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Ask the mirror"}
	for _, s := range w.sides {
		if err := s.discover(ctx); err != nil {
			return st, err
		}
		if !w.cfg.STUN.IsValid() {
			st.Lines = append(st.Lines, fmt.Sprintf("%s's address %v is public: no STUN needed.", s.self.Name, s.self.Local))
		} else {
			st.Lines = append(st.Lines, fmt.Sprintf("%s (%v) asks the STUN server at %v, which sees it as %v.", s.self.Name, s.self.Local, w.cfg.STUN, s.res.Public))
		}
	}
	return st, nil
}

func (w *Walk) register(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Tell the rendezvous"}
	for _, s := range w.sides {
		if err := s.register(ctx); err != nil {
			return st, err
		}
		line := fmt.Sprintf("%s registers %v with the rendezvous", s.self.Name, joinEndpoints(s.mine))
		if l := s.self.Local; w.cfg.PublicOnly && l.IsValid() && !slices.Contains(s.mine, l) {
			line += fmt.Sprintf(", not its own address %v: this punch announces public endpoints only", l)
		}
		st.Lines = append(st.Lines, line+".")
	}
	return st, nil
}

func (w *Walk) fetch(ctx context.Context) (WalkStep, error) {
	st := WalkStep{Title: "Learn the other's endpoints"}
	for _, s := range w.sides {
		if err := s.fetch(ctx, walkFetchWait); err != nil {
			return st, err
		}
		st.Lines = append(st.Lines, fmt.Sprintf("%s learns that %s is at %v.", s.self.Name, s.other, joinEndpoints(s.res.Announced)))
	}
	return st, nil
}

// send is step 4: each side punches, one after the other, and the other
// listens; then a side not heard yet punches once more, as Pair's sides
// keep punching: a punch out may open its NAT for the other's next one
// only. A side that heard the other punches only to where it heard it
// from, as in Pair.
func (w *Walk) send(ctx context.Context) WalkStep {
	st := WalkStep{Title: "Both send"}
	for round := 1; round <= 2; round++ {
		for i, from := range w.sides {
			to := w.sides[1-i]
			if round == 2 && to.heard {
				continue
			}
			narrowed := from.heard
			first, last := from.punch()
			announced := from.res.Announced
			switch {
			case round == 1 && len(from.targets) > len(announced):
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s at %v, and to the %d ports after each, where a NAT that allocates ports in sequence will have put %s's next mapping: its own NAT now lets in answers from all of them.",
					from.self.Name, to.self.Name, joinEndpoints(announced), w.cfg.PredictSpan, to.self.Name))
			case round == 1:
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s at %v: its own NAT now lets in answers from there.", from.self.Name, to.self.Name, joinEndpoints(announced)))
			case narrowed:
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s again, now only to %v, where it heard %s from.", from.self.Name, to.self.Name, from.res.Seen, to.self.Name))
			default:
				st.Lines = append(st.Lines, fmt.Sprintf("%s sends to %s again.", from.self.Name, to.self.Name))
			}
			st.Lines = append(st.Lines, w.heardLine(ctx, to, first, last))
		}
	}
	return st
}

// heardLine has to listen for the punches numbered first to last and
// says whether it heard one, and from where.
func (w *Walk) heardLine(ctx context.Context, to *side, first, last int) string {
	src, ok := w.listen(ctx, to, func(kind string, n int) bool { return kind == "PUNCH" && n >= first && n <= last })
	if !ok {
		return fmt.Sprintf("It never reaches %s: %s's NAT dropped it.", to.self.Name, to.self.Name)
	}
	how := ""
	if !slices.Contains(to.res.Announced, src) {
		how = " (an endpoint it was never told of: the sender's NAT gave this destination a new port, a peer-reflexive candidate)"
	}
	return fmt.Sprintf("%s hears it, from %v%s.", to.self.Name, src, how)
}

// answer is step 5: whoever heard a punch answers it, to where it came
// from, and the other listens. A side that heard the other but has had no
// answer yet punches once more to where it heard it from, and is
// answered, as Pair's sides keep punching until answered. The path works
// when each side has heard the other and been answered.
func (w *Walk) answer(ctx context.Context) WalkStep {
	st := WalkStep{Title: "Answer", Done: true}
	a, b := w.sides[0], w.sides[1]
	if !a.heard && !b.heard {
		st.Lines = append(st.Lines, "Neither heard the other, so there is nothing to answer: no direct path. A NAT that picks a new public port for each destination sent the punches out from a port the other side was never told, or a NAT's wall kept them out. A relay (TURN) is what is left.")
		return st
	}
	isAck := func(kind string, _ int) bool { return kind == "ACK" }
	for i, from := range w.sides {
		to := w.sides[1-i]
		at, ok := from.answer()
		if !ok {
			continue
		}
		if _, ok := w.listen(ctx, to, isAck); ok {
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, and %s hears it.", from.self.Name, to.self.Name, at, to.self.Name))
		} else {
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, but the answer never arrives.", from.self.Name, to.self.Name, at))
		}
	}
	for i, from := range w.sides {
		to := w.sides[1-i]
		if from.acked || !from.heard {
			continue
		}
		first, last := from.punch()
		st.Lines = append(st.Lines, fmt.Sprintf("%s has had no answer yet, so it sends to %s again, at %v.", from.self.Name, to.self.Name, from.res.Seen))
		heard := w.heardLine(ctx, to, first, last)
		st.Lines = append(st.Lines, heard)
		if !to.pending.IsValid() {
			continue
		}
		at, _ := to.answer()
		if _, ok := w.listen(ctx, from, isAck); ok {
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, and %s hears it.", to.self.Name, from.self.Name, at, from.self.Name))
		} else {
			st.Lines = append(st.Lines, fmt.Sprintf("%s answers %s at %v, but the answer never arrives.", to.self.Name, from.self.Name, at))
		}
	}
	a.confirm()
	b.confirm()
	st.OK = a.done && b.done
	if st.OK {
		st.Lines = append(st.Lines, fmt.Sprintf("The path works both ways: %s <-> %s, straight through both NATs.", b.res.Seen, a.res.Seen))
	} else {
		st.Lines = append(st.Lines, "Packets got through one way only: no direct path.")
	}
	return st
}

// listen reads s's socket for up to walkWait, and every packet of the
// other side goes to s.receive, until one that want accepts arrives; it
// says where that came from.
func (w *Walk) listen(ctx context.Context, s *side, want func(kind string, n int) bool) (netip.AddrPort, bool) {
	deadline := time.Now().Add(walkWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c := s.self.Conn
	buf := make([]byte, 1500)
	defer c.SetReadDeadline(time.Time{})
	c.SetReadDeadline(deadline)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || ctx.Err() != nil {
			// The deadline passed, or the socket is closed: nothing
			// more arrives for this step.
			return netip.AddrPort{}, false
		}
		p := packet{buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port())}
		if kind, num, ok := s.receive(p); ok && want(kind, num) {
			return p.from, true
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
