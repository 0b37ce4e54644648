// Package upgrade connects two peers the way Tailscale does with DERP:
// through a relay at once, so data flows from the first moment, while a
// hole punch runs beside it; when the punch finds a direct path, the data
// moves there, without a gap. If the punch fails, the data simply stays on
// the relay. The relay is a real DERP server (tailscale.com/derp), or TURN
// over TCP; both work from networks that let only TCP out.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
)

// Peer is one side.
type Peer struct {
	Name string
	// Data is the socket B's relayed data uses with a TURN relay (B sends
	// from it to A's relayed address); Punch is the punch agent's.
	Data  *net.UDPConn
	Punch punch.Peer
	// Dial makes TCP connections from the peer's node (for TURN over TCP).
	Dial func(network, addr string) (net.Conn, error)
}

// Config is one connection.
type Config struct {
	// DERP is the URL of a DERP server to relay through; if empty, the
	// relay is the TURN server in TURN, over TCP.
	DERP  string
	TURN  relay.Config
	Punch punch.Config
	// Interval is the time between data packets (default 20ms).
	Interval time.Duration
	// Settle is how long data keeps flowing after the upgrade, to show
	// nothing is lost in the switch (default 300ms).
	Settle time.Duration
}

// Result says how the connection went.
type Result struct {
	// Relay says which relay carried the first packets.
	Relay string `json:"relay"`
	// FirstData is the time to the first packet through the relay.
	FirstData time.Duration `json:"first_data_ns"`
	// Upgraded tells whether the data moved to a direct path, and when.
	Upgraded   bool          `json:"upgraded"`
	UpgradedAt time.Duration `json:"upgraded_at_ns,omitempty"`
	PunchError string        `json:"punch_error,omitempty"`
	// Sent and Received count the data packets A sent and got echoed
	// back; OverRelay and Direct count the echoes by path.
	Sent      int `json:"sent"`
	Received  int `json:"received"`
	OverRelay int `json:"over_relay"`
	Direct    int `json:"direct"`
	// RelayRTTs and DirectRTTs are the round trips of the data packets
	// echoed over each path, from A's send to the echo's arrival.
	RelayRTTs  []time.Duration `json:"relay_rtts_ns,omitempty"`
	DirectRTTs []time.Duration `json:"direct_rtts_ns,omitempty"`
}

// Lost is how many data packets did not come back.
func (r *Result) Lost() int { return r.Sent - r.Received }

// Run connects a and b: relay first, then direct if the punch succeeds
// within cfg.Punch.Timeout. A sends numbered data packets to B, which
// echoes each back the way it came.
func Run(ctx context.Context, cfg Config, a, b Peer) (*Result, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.Settle == 0 {
		cfg.Settle = 300 * time.Millisecond
	}
	start := time.Now()
	var link relayLink = &turnLink{cfg: cfg.TURN, a: a, b: b}
	if cfg.DERP != "" {
		link = &derpLink{url: cfg.DERP, a: a, b: b}
	}
	defer link.close()

	res := &Result{}
	var mu sync.Mutex
	echoes := map[int]string{}
	sentAt := map[int]time.Time{}
	// The round trips by path; res gets copies at the end, since a
	// relay's reader may still count an echo while Run returns.
	var relayRTTs, directRTTs []time.Duration
	relayed := make(chan struct{}) // closed at the first echo through the relay
	count := func(via string) func([]byte) {
		return func(data []byte) {
			var seq int
			if _, err := fmt.Sscanf(string(data), "NATLAB ECHO %d", &seq); err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, dup := echoes[seq]; dup {
				return
			}
			echoes[seq] = via
			if at, ok := sentAt[seq]; ok {
				if via == "relay" {
					relayRTTs = append(relayRTTs, time.Since(at))
				} else {
					directRTTs = append(directRTTs, time.Since(at))
				}
			}
			if res.FirstData == 0 {
				res.FirstData = time.Since(start)
				close(relayed)
			}
		}
	}
	echo := func(data []byte, reply func([]byte)) {
		var seq int
		if _, err := fmt.Sscanf(string(data), "NATLAB DATA %d", &seq); err == nil {
			reply(fmt.Appendf(nil, "NATLAB ECHO %d", seq))
		}
	}
	if err := link.start(ctx, count("relay"), echo); err != nil {
		return nil, err
	}
	res.Relay = link.describe()

	// The punch runs beside the relayed data, on its own sockets, from
	// the moment data flows through the relay: in a lab a punch can beat
	// the relay's handshake, and the story is relay first.
	var direct atomic.Pointer[path]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The punch's goroutine sends on punched once, as it ends, after it
	// started the direct path's readers if the punch succeeded: once
	// punched has been received, wg counts every reader.
	punched := make(chan error, 1)
	punchOver := false
	go func() {
		select {
		case <-relayed:
		case <-ctx.Done():
			punched <- ctx.Err()
			return
		}
		out, err := punch.Pair(ctx, cfg.Punch, a.Punch, b.Punch)
		if err == nil {
			wg.Add(2)
			go readLoop(&wg, stop, b.Punch.Conn, func(data []byte, from net.Addr) {
				echo(data, func(answer []byte) { b.Punch.Conn.WriteTo(answer, from) })
			})
			go readLoop(&wg, stop, a.Punch.Conn, func(data []byte, _ net.Addr) { count("direct")(data) })
			direct.Store(&path{conn: a.Punch.Conn, to: out.A.Seen})
		}
		punched <- err
	}()

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var settled time.Time // when the data may stop, once the punch is over
	seq := 0
	for settled.IsZero() || time.Now().Before(settled) {
		msg := fmt.Appendf(nil, "NATLAB DATA %d", seq)
		mu.Lock()
		sentAt[seq] = time.Now()
		mu.Unlock()
		if p := direct.Load(); p != nil {
			p.conn.WriteToUDPAddrPort(msg, p.to)
			seq++
		} else if link.sendAtoB(msg) == nil {
			seq++
		}
		select {
		case <-ctx.Done():
			if !punchOver {
				// The punch ends with ctx.
				<-punched
			}
			close(stop)
			wg.Wait()
			return res, ctx.Err()
		case err := <-punched:
			punchOver = true
			if err != nil {
				res.PunchError = err.Error()
			} else {
				res.Upgraded = true
				res.UpgradedAt = time.Since(start)
			}
			settled = time.Now().Add(cfg.Settle)
		case <-tick.C:
		}
	}
	res.Sent = seq
	// The last echoes are on their way: wait for them as long as the
	// slowest round trip took, and half as long again, so that a slow
	// relay's packets in flight are not counted lost.
	mu.Lock()
	wait := 4 * cfg.Interval
	for _, rtt := range append(slices.Clone(relayRTTs), directRTTs...) {
		wait = max(wait, rtt*3/2)
	}
	mu.Unlock()
	time.Sleep(wait)
	close(stop)
	wg.Wait()
	mu.Lock()
	res.Received = len(echoes)
	res.RelayRTTs, res.DirectRTTs = slices.Clone(relayRTTs), slices.Clone(directRTTs)
	for _, via := range echoes {
		if via == "relay" {
			res.OverRelay++
		} else {
			res.Direct++
		}
	}
	mu.Unlock()
	if res.OverRelay == 0 {
		return res, errors.New("no data went through the relay")
	}
	return res, nil
}

type path struct {
	conn *net.UDPConn
	to   netip.AddrPort
}
