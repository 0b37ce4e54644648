// Package upgrade connects two peers the way Tailscale does with DERP:
// through a relay at once, so data flows from the first moment, while a
// hole punch runs beside it; when the punch finds a direct path, the data
// moves there, without a gap. If the punch fails, the data simply stays on
// the relay. natlab uses TURN over TCP as the relay (DERP, like TURN over
// TCP, works from networks that let only TCP out).
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/stunclient"
)

// Peer is one side.
type Peer struct {
	Name string
	// Data is the socket the relayed data uses (B sends from it to A's
	// relayed address); Punch is the punch agent's.
	Data  *net.UDPConn
	Punch punch.Peer
	// Dial makes TCP connections from the peer's node (for TURN over TCP).
	Dial func(network, addr string) (net.Conn, error)
}

// Config is one connection.
type Config struct {
	Relay relay.Config
	Punch punch.Config
	// Interval is the time between data packets (default 20ms).
	Interval time.Duration
	// Settle is how long data keeps flowing after the upgrade, to show
	// nothing is lost in the switch (default 300ms).
	Settle time.Duration
}

// Result says how the connection went.
type Result struct {
	// Relayed is A's relayed address; FirstData the time to the first
	// packet through it.
	Relayed   netip.AddrPort `json:"relayed"`
	FirstData time.Duration  `json:"first_data_ns"`
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
	alloc, err := relay.Allocate(cfg.Relay, nil, a.Dial)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	defer alloc.Close()
	res := &Result{Relayed: alloc.Relayed()}
	// A permits B's address at the relay by sending to it; B's public
	// address comes from a STUN request to the relay.
	bPublic, err := publicOf(ctx, b.Data, cfg.Relay.Server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name, err)
	}
	if _, err := alloc.WriteTo([]byte("NATLAB OPEN"), net.UDPAddrFromAddrPort(bPublic)); err != nil {
		return nil, fmt.Errorf("%s: permission for %v: %w", a.Name, bPublic, err)
	}

	var mu sync.Mutex
	echoes := map[int]string{}
	relayed := make(chan struct{}) // closed at the first echo through the relay
	var bAtRelay atomic.Pointer[net.UDPAddr]
	var direct atomic.Pointer[path]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	read := func(c net.PacketConn, handle func(msg string, from net.Addr)) {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, from, err := c.ReadFrom(buf)
			select {
			case <-stop:
				return
			default:
			}
			if err == nil {
				handle(string(buf[:n]), from)
			}
		}
	}
	// B echoes data back the way it came.
	echo := func(c net.PacketConn) {
		read(c, func(msg string, from net.Addr) {
			var seq int
			if _, err := fmt.Sscanf(msg, "NATLAB DATA %d", &seq); err == nil {
				c.WriteTo(fmt.Appendf(nil, "NATLAB ECHO %d", seq), from)
			}
		})
	}
	// A counts echoes by the path they took, and learns where the relay
	// sees B.
	count := func(c net.PacketConn, via string) {
		read(c, func(msg string, from net.Addr) {
			var seq int
			switch {
			case msg == "NATLAB HELLO" && via == "relay":
				if u, ok := from.(*net.UDPAddr); ok {
					bAtRelay.CompareAndSwap(nil, u)
				}
			case func() bool { _, err := fmt.Sscanf(msg, "NATLAB ECHO %d", &seq); return err == nil }():
				mu.Lock()
				if _, dup := echoes[seq]; !dup {
					echoes[seq] = via
					if res.FirstData == 0 {
						res.FirstData = time.Since(start)
						close(relayed)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Add(2)
	go echo(b.Data)
	go count(alloc, "relay")

	// The punch runs beside the relayed data, on its own sockets, from
	// the moment data flows through the relay: in a lab a punch can beat
	// the relay's handshake, and the story is relay first.
	punched := make(chan error, 1)
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
			go echo(b.Punch.Conn)
			go count(a.Punch.Conn, "direct")
			direct.Store(&path{conn: a.Punch.Conn, to: out.A.Seen})
		}
		punched <- err
	}()

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var settled time.Time // when the data may stop, once the punch is over
	seq := 0
	for settled.IsZero() || time.Now().Before(settled) {
		switch p, at := direct.Load(), bAtRelay.Load(); {
		case p != nil:
			p.conn.WriteToUDPAddrPort(fmt.Appendf(nil, "NATLAB DATA %d", seq), p.to)
			seq++
		case at != nil:
			alloc.WriteTo(fmt.Appendf(nil, "NATLAB DATA %d", seq), at)
			seq++
		default:
			// B opens its side of the relayed path until A hears it.
			b.Data.WriteToUDPAddrPort([]byte("NATLAB HELLO"), res.Relayed)
		}
		select {
		case <-ctx.Done():
			close(stop)
			wg.Wait()
			return res, ctx.Err()
		case err := <-punched:
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
	time.Sleep(4 * cfg.Interval) // the last echoes
	close(stop)
	wg.Wait()
	mu.Lock()
	res.Received = len(echoes)
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

// publicOf asks the relay's STUN side where c's packets come from.
func publicOf(ctx context.Context, c *net.UDPConn, server netip.AddrPort) (netip.AddrPort, error) {
	r, err := stunclient.Binding(ctx, c, server, stunclient.Request{})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("learn its public address from %v: %w", server, err)
	}
	return r.Mapped, nil
}
