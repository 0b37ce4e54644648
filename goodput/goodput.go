// Package goodput measures how fast data crosses a path, as iperf's UDP
// mode does: a sender offers datagrams at a set rate for a while, the
// receiver counts the payload that arrives, once each, and the goodput is
// that payload over the time it took to arrive, from the first datagram to
// the last. A path slower than the offer (a link's rate, a relay's)
// shows as its own rate, the rest of the offer as lost; a path faster
// than the offer shows as the offer. The datagrams are real ones, sent and
// received through the kernel's sockets; what carries them between (a
// punched path, a TURN relay) is the caller's.
package goodput

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Size is the payload of each datagram: with TURN's 36 bytes of framing
// and the IP and UDP headers it fits in a 1280-byte packet, so no path of
// a lab (mtu 576 aside) fragments it.
const Size = 1200

// maxDatagrams bounds the numbers the receiver takes: more than 1 Gbit/s
// of 1200-byte datagrams sends in an hour.
const maxDatagrams = 1 << 30

// Config is one measurement.
type Config struct {
	// Offer is the rate the sender sends at, in bits per second of
	// payload.
	Offer uint64
	// For is how long the sender sends.
	For time.Duration
	// Session marks this measurement's datagrams, so that others on the
	// receiver's socket are not counted.
	Session string
	// Quiet is how long the receiver waits for more after the sender has
	// stopped and nothing has come for that long (default 300ms): what is
	// still queued on the path's links arrives meanwhile.
	Quiet time.Duration
}

// Result is what a measurement saw.
type Result struct {
	// Offered is the rate the sender offered, in bits per second.
	Offered uint64 `json:"offered_bps"`
	// Sent and Received count datagrams (Received once each, however
	// often a duplicating link delivered one); Bytes is the payload
	// received.
	Sent     int   `json:"sent"`
	Received int   `json:"received"`
	Bytes    int64 `json:"bytes"`
	// Span is the time from the first datagram's arrival to the last's.
	Span time.Duration `json:"span_ns"`
	// Goodput is the payload that arrived after the first datagram, in
	// bits per second over Span: 0 when fewer than two arrived.
	Goodput float64 `json:"goodput_bps"`
}

// Lost is the share of the datagrams sent that never arrived, 0 to 1.
func (r *Result) Lost() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// Mbps writes a rate in bits per second as megabits per second, to three
// figures: 9.61 Mbit/s, 47.4 Mbit/s, 100 Mbit/s.
func Mbps(bps float64) string {
	m := bps / 1e6
	digits := 2
	switch {
	case m >= 99.95:
		digits = 0
	case m >= 9.995:
		digits = 1
	}
	return strconv.FormatFloat(m, 'f', digits, 64) + " Mbit/s"
}

// ErrNothing means no datagram arrived.
var ErrNothing = errors.New("no data arrived")

// Measure sends datagrams with send, at cfg.Offer for cfg.For, and counts
// those that reach recv. send is called from one goroutine; an error it
// returns stops the sending, except a full queue on the way out
// (ENOBUFS), which is a datagram lost as on a full link. recv's read
// deadline is set and cleared again: it may be a socket later steps use.
func Measure(ctx context.Context, cfg Config, send func([]byte) error, recv net.PacketConn) (*Result, error) {
	if cfg.Offer == 0 || cfg.For <= 0 {
		return nil, fmt.Errorf("goodput: an offer (%d bit/s) and a time (%v) are needed", cfg.Offer, cfg.For)
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = 300 * time.Millisecond
	}
	res := &Result{Offered: cfg.Offer}
	prefix := fmt.Sprintf("NATLAB DATA %s ", cfg.Session)

	// The receiver counts until it is told to stop (its read deadline
	// set in the past).
	var (
		mu sync.Mutex
		// seen has a bit per datagram, as many as the offer sends: a
		// map would take 40 bytes each, 300 MB at 1 Gbit/s for a minute.
		seen        []uint64
		first, last time.Time
		firstBytes  int
		lastAt      atomic.Int64 // UnixNano of the last arrival
	)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := recv.ReadFrom(buf)
			if err != nil {
				return
			}
			at := time.Now()
			rest, ok := strings.CutPrefix(string(buf[:n]), prefix)
			if !ok {
				continue
			}
			num, _, _ := strings.Cut(rest, " ")
			seq, err := strconv.Atoi(num)
			if err != nil || seq < 0 || seq > maxDatagrams {
				continue
			}
			mu.Lock()
			for len(seen) <= seq/64 {
				seen = append(seen, 0)
			}
			if bit := uint64(1) << (seq % 64); seen[seq/64]&bit == 0 {
				seen[seq/64] |= bit
				if first.IsZero() {
					first, firstBytes = at, n
				}
				last = at
				res.Received++
				res.Bytes += int64(n)
			}
			mu.Unlock()
			lastAt.Store(at.UnixNano())
		}
	})
	stop := func() {
		recv.SetReadDeadline(time.Unix(1, 0))
		wg.Wait()
		recv.SetReadDeadline(time.Time{})
	}

	sent, err := pace(ctx, cfg, prefix, send)
	res.Sent = sent
	if err != nil {
		stop()
		return res, err
	}
	// What is queued on the way still comes: wait until the receiver has
	// heard nothing for Quiet.
	ended := time.Now()
	for {
		quietFor := time.Since(time.Unix(0, lastAt.Load()))
		if since := time.Since(ended); since < quietFor {
			quietFor = since
		}
		if quietFor >= cfg.Quiet || ctx.Err() != nil {
			break
		}
		time.Sleep(cfg.Quiet - quietFor)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if res.Received == 0 {
		return res, fmt.Errorf("%w: none of %d datagrams", ErrNothing, sent)
	}
	res.Span = last.Sub(first)
	if res.Received > 1 && res.Span > 0 {
		res.Goodput = float64(res.Bytes-int64(firstBytes)) * 8 / res.Span.Seconds()
	}
	return res, ctx.Err()
}

// pace sends numbered datagrams of Size bytes at cfg.Offer for cfg.For,
// catching up each millisecond with what the rate owes by then, and
// returns how many it sent.
func pace(ctx context.Context, cfg Config, prefix string, send func([]byte) error) (int, error) {
	buf := make([]byte, Size)
	for i := range buf {
		buf[i] = '.'
	}
	perSecond := float64(cfg.Offer) / 8 / Size
	start := time.Now()
	sent := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= cfg.For {
			return sent, nil
		}
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		// A full socket buffer blocks a send (a shaped link's queue
		// holds the socket's datagrams): the offer then stops at For
		// all the same.
		for due := int(elapsed.Seconds()*perSecond) + 1; sent < due && time.Since(start) < cfg.For; sent++ {
			msg := fmt.Appendf(buf[:0], "%s%d ", prefix, sent)
			msg = msg[:Size]
			if err := send(msg); err != nil && !isNoBufs(err) {
				return sent, fmt.Errorf("send datagram %d: %w", sent, err)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// isNoBufs says the kernel had no room for the datagram on its way out: a
// full queue, which drops it as a full link does.
func isNoBufs(err error) bool { return errors.Is(err, syscall.ENOBUFS) }
