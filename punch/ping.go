package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A ping whose pong has not come back after pingRTO is sent again, and
// each try waits twice as long as the one before, up to pingMaxRTO: the
// back-off of STUN's transactions (RFC 8489 §6.2.1), which ICE's
// connectivity checks are (RFC 8445 §14.3). Their first RTO of 500 ms and
// seven tries over 39.5 s are for the internet; a lab's paths answer
// within their links' delays, and a punch has seconds, not minutes, so
// the tries here start sooner and stop doubling sooner: over a path that
// loses a third of its round trips (10% loss on both hosts' links), the
// eight tries that fit in 4 s all fail once in 5,000. A ping sent again
// too early costs one packet, not a wrong time (each try is timed on its
// own).
const (
	pingRTO    = 100 * time.Millisecond
	pingMaxRTO = 800 * time.Millisecond
)

// pings measures cfg.Pings round trips from a to b over a punched path: a
// sends to bSeen, where it saw b's packets come from, and b answers to
// aSeen. A ping that goes unanswered is sent again, each try with a number
// of its own that its pong repeats, so that a round trip is timed from the
// try it answers, never from an earlier one that was lost (the ambiguity
// Karn's algorithm avoids in TCP). It returns the round trips measured,
// and gives up when ctx ends.
func pings(ctx context.Context, cfg Config, a, b *net.UDPConn, bSeen, aSeen netip.AddrPort) ([]time.Duration, error) {
	ping := "NATLAB PING " + cfg.Session + " "
	pong := "NATLAB PONG " + cfg.Session + " "
	// b answers every ping, until the measurement ends: a deadline in
	// the past wakes its read, and the socket is the path's, used again
	// after the punch.
	var wg sync.WaitGroup
	wg.Go(func() { echo(b, aSeen, ping, pong) })
	defer func() {
		b.SetReadDeadline(time.Unix(1, 0))
		wg.Wait()
		b.SetReadDeadline(time.Time{})
	}()
	defer a.SetReadDeadline(time.Time{})

	var rtts []time.Duration
	buf := make([]byte, 1500)
	for i := range cfg.Pings {
		var sent []time.Time
		rto := pingRTO
	tries:
		for try := 0; ; try++ {
			if err := ctx.Err(); err != nil {
				return rtts, fmt.Errorf("ping %d: no pong after %d tries: %w", i+1, try, err)
			}
			sent = append(sent, time.Now())
			if _, err := a.WriteToUDPAddrPort(fmt.Appendf(nil, "%s%d.%d", ping, i, try), bSeen); err != nil {
				return rtts, err
			}
			wait, last := sent[try].Add(rto), false
			if d, ok := ctx.Deadline(); ok && !d.After(wait) {
				// The socket's deadline can pass a moment before ctx
				// says it is done: this try is the last either way.
				wait, last = d, true
			}
			a.SetReadDeadline(wait)
			for {
				n, _, err := a.ReadFromUDPAddrPort(buf)
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					if last {
						return rtts, fmt.Errorf("ping %d: no pong after %d tries: %w", i+1, try+1, context.DeadlineExceeded)
					}
					break
				}
				if err != nil {
					return rtts, fmt.Errorf("ping %d: %w", i+1, err)
				}
				at := time.Now()
				if t, ok := answers(string(buf[:n]), pong, i); ok && t < len(sent) {
					rtts = append(rtts, at.Sub(sent[t]))
					break tries
				}
			}
			rto = min(2*rto, pingMaxRTO)
		}
	}
	return rtts, nil
}

// echo answers each ping that reaches c with its pong, to where the other
// side is, until c's reads fail.
func echo(c *net.UDPConn, to netip.AddrPort, ping, pong string) {
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if id, ok := strings.CutPrefix(string(buf[:n]), ping); ok {
			c.WriteToUDPAddrPort([]byte(pong+id), to)
		}
	}
}

// answers says which try of ping i the message msg is the pong of.
func answers(msg, pong string, i int) (try int, ok bool) {
	id, ok := strings.CutPrefix(msg, pong)
	if !ok {
		return 0, false
	}
	seq, t, ok := strings.Cut(id, ".")
	if !ok || seq != strconv.Itoa(i) {
		return 0, false
	}
	try, err := strconv.Atoi(t)
	return try, err == nil && try >= 0
}
