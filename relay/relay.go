// Package relay connects two peers through a TURN relay (RFC 8656), the
// fallback when hole punching fails: peer A allocates a relayed address
// and gives it to peer B, which sends to it from its ordinary socket; A's
// permission for B's address lets B's packets through, and A answers
// through the relay. It works whatever NATs the peers are behind, because
// each only ever talks to the relay, which is on the internet.
package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"

	"github.com/natlab/natlab/stunclient"
)

// Peer is one side: a name and a UDP socket inside its node.
type Peer struct {
	Name string
	Conn *net.UDPConn
}

// Config says which relay and how long to try.
type Config struct {
	Server                netip.AddrPort
	Realm, User, Password string
	Timeout               time.Duration
	// Pings is how many round trips measure the RTT (default 5).
	Pings int
}

// Allocation is A's relayed address on the TURN server, usable as a
// PacketConn: what is written to it leaves the relay, what reaches the
// relayed address from a permitted peer is read from it.
type Allocation struct {
	net.PacketConn
	client *turn.Client
	tcp    net.Conn
	// lent is the caller's UDP socket while the client reads from it.
	lent *lent
}

// Permit asks the relay to let packets from addr in (RFC 8656 section
// 9, CreatePermission).
func (a *Allocation) Permit(addr netip.Addr) error {
	p, ok := a.PacketConn.(interface{ CreatePermissions(...net.Addr) error })
	if !ok {
		return fmt.Errorf("the TURN client's relayed connection %T makes no permissions", a.PacketConn)
	}
	return p.CreatePermissions(&net.UDPAddr{IP: addr.AsSlice()})
}

// Relayed is the relayed transport address.
func (a *Allocation) Relayed() netip.AddrPort {
	return a.PacketConn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close releases the allocation and the client, and gives a UDP socket
// back to its owner: the client reads from it no more.
func (a *Allocation) Close() error {
	if a.lent != nil {
		// An answer to an earlier refresh is not the one to wait for.
		select {
		case <-a.lent.refreshed:
		default:
		}
	}
	err := a.PacketConn.Close()
	if a.lent != nil {
		// pion sends the deallocation (a Refresh with lifetime 0) and
		// does not wait for the server's answer; read until it comes,
		// or the owner would read it from its socket after Close.
		a.lent.awaitRefreshAnswer(time.Second)
	}
	a.client.Close()
	a.release()
	return err
}

// release ends the client's hold on its connection: a TCP one is closed,
// a UDP socket handed back.
func (a *Allocation) release() {
	if a.tcp != nil {
		a.tcp.Close()
	}
	if a.lent != nil {
		a.lent.giveBack()
	}
}

// lent is a socket lent to a TURN client, whose reader never stops by
// itself: it reads until the socket fails. giveBack makes its reads fail,
// waits for the one under way to end, and leaves the socket open.
type lent struct {
	net.PacketConn
	mu      sync.Mutex
	back    bool
	reading sync.WaitGroup
	// refreshed has a value when the client has read an answer to a
	// Refresh.
	refreshed chan struct{}
}

// isRefreshAnswer says whether p is a STUN answer to a Refresh (RFC 8656
// section 7): the success or error response class of method 0x004.
func isRefreshAnswer(p []byte) bool {
	return len(p) >= 20 && (p[0] == 0x01 && (p[1] == 0x04 || p[1] == 0x14)) && p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42
}

// awaitRefreshAnswer waits, at most wait, for the client to read an
// answer to a Refresh sent since the last.
func (l *lent) awaitRefreshAnswer(wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-l.refreshed:
	case <-t.C:
	}
}

func (l *lent) ReadFrom(b []byte) (int, net.Addr, error) {
	l.mu.Lock()
	if l.back {
		l.mu.Unlock()
		return 0, nil, net.ErrClosed
	}
	l.reading.Add(1)
	l.mu.Unlock()
	defer l.reading.Done()
	n, from, err := l.PacketConn.ReadFrom(b)
	if err == nil && isRefreshAnswer(b[:n]) {
		select {
		case l.refreshed <- struct{}{}:
		default:
		}
	}
	return n, from, err
}

func (l *lent) giveBack() {
	l.mu.Lock()
	l.back = true
	l.mu.Unlock()
	// Wake the read under way; the client then stops reading.
	l.PacketConn.SetReadDeadline(time.Unix(1, 0))
	l.reading.Wait()
	l.PacketConn.SetReadDeadline(time.Time{})
}

// Allocate makes an allocation for a client that talks to the server
// over conn (a UDP socket), or, if conn is nil, over a TCP connection
// made with dial: TURN over TCP, for networks that let no UDP out.
func Allocate(cfg Config, conn net.PacketConn, dial func(network, addr string) (net.Conn, error)) (*Allocation, error) {
	a := &Allocation{}
	if conn == nil {
		c, err := dial("tcp4", cfg.Server.String())
		if err != nil {
			return nil, fmt.Errorf("TURN over TCP to %v: %w", cfg.Server, err)
		}
		a.tcp = c
		conn = turn.NewSTUNConn(c)
	} else {
		a.lent = &lent{PacketConn: conn, refreshed: make(chan struct{}, 1)}
		conn = a.lent
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: cfg.Server.String(),
		TURNServerAddr: cfg.Server.String(),
		Username:       cfg.User,
		Password:       cfg.Password,
		Realm:          cfg.Realm,
		Software:       "natlab",
		RTO:            100 * time.Millisecond,
		Conn:           conn,
		LoggerFactory:  quiet{},
	})
	if err != nil {
		a.release()
		return nil, err
	}
	a.client = client
	if err := client.Listen(); err != nil {
		client.Close()
		a.release()
		return nil, err
	}
	relayConn, err := client.Allocate()
	if err != nil {
		client.Close()
		a.release()
		if strings.Contains(err.Error(), "error response") {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return nil, fmt.Errorf("allocate on %v: %w", cfg.Server, err)
	}
	a.PacketConn = relayConn
	return a, nil
}

// Result is what a relayed connection showed.
type Result struct {
	// Relayed is the address the relay allocated for A.
	Relayed netip.AddrPort `json:"relayed"`
	// BPublic is B's public endpoint as its STUN request to the relay
	// showed it; BSeen is where B's data came from at the relay (they
	// differ behind a symmetric NAT).
	BPublic netip.AddrPort `json:"b_public"`
	BSeen   netip.AddrPort `json:"b_seen"`
	// FirstExchange is from B's first packet to its first answer.
	FirstExchange time.Duration   `json:"first_exchange"`
	RTTs          []time.Duration `json:"rtts"`
}

// MedianRTT is the middle RTT measured.
func (r *Result) MedianRTT() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	s := slices.Clone(r.RTTs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ErrRefused means the relay refused the credentials or the allocation.
var ErrRefused = errors.New("relay refused the allocation")

// Connect relays between a and b. It lends a's socket to the TURN client
// until it returns.
func Connect(ctx context.Context, cfg Config, a, b Peer) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Pings == 0 {
		cfg.Pings = 5
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	res := &Result{}

	// B learns its public address, which A's permission must name.
	sb, err := stunclient.Binding(ctx, b.Conn, cfg.Server, stunclient.Request{})
	if err != nil {
		return nil, fmt.Errorf("%s: learn its public address from %v: %w", b.Name, cfg.Server, err)
	}
	res.BPublic = sb.Mapped

	relayConn, err := Allocate(cfg, a.Conn, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	// Closing the allocation ends A's answering; Run waits for it.
	var answering sync.WaitGroup
	defer func() {
		relayConn.Close()
		answering.Wait()
	}()
	res.Relayed = relayConn.Relayed()

	// A permits B's address (any port of it, so B's data gets through
	// from behind a symmetric NAT too) with a CreatePermission request,
	// as ICE agents do (RFC 8656 section 9), not by sending B data: the
	// relay would pass that on to B's public endpoint, where a NAT that
	// filters drops it, a drop that is no part of the relayed path.
	if err := relayConn.Permit(res.BPublic.Addr()); err != nil {
		return nil, fmt.Errorf("%s: permission for %v: %w", a.Name, res.BPublic.Addr(), err)
	}

	// A answers every ping through the relay, to wherever it came from.
	served := make(chan netip.AddrPort, 1)
	answering.Go(func() {
		buf := make([]byte, 1500)
		first := true
		for {
			n, from, err := relayConn.ReadFrom(buf)
			if err != nil {
				return
			}
			if !strings.HasPrefix(string(buf[:n]), "PING ") {
				continue
			}
			reply := "PONG " + strings.TrimPrefix(string(buf[:n]), "PING ")
			relayConn.WriteTo([]byte(reply), from)
			if first {
				served <- from.(*net.UDPAddr).AddrPort()
				first = false
			}
		}
	})

	// B pings the relayed address until an answer comes back.
	start := time.Now()
	if _, err := pingUntil(ctx, b.Conn, res.Relayed, "first", 30*time.Millisecond); err != nil {
		return res, fmt.Errorf("%s -> relay %v -> %s: no answer within %v: %w", b.Name, res.Relayed, a.Name, cfg.Timeout, err)
	}
	res.FirstExchange = time.Since(start)
	select {
	case res.BSeen = <-served:
	default:
	}
	for i := 0; i < cfg.Pings; i++ {
		rtt, err := pingUntil(ctx, b.Conn, res.Relayed, fmt.Sprint(i), 200*time.Millisecond)
		if err != nil {
			return res, fmt.Errorf("%s <-> %s through the relay: ping %d: %w", a.Name, b.Name, i, err)
		}
		res.RTTs = append(res.RTTs, rtt)
	}
	return res, nil
}

// pingUntil sends "PING id/N" every interval, N counting the tries, until
// "PONG id/N" comes back for any of them, and returns the round-trip time
// of the try answered: timed from the last send instead, an answer that
// takes longer than interval would look as fast as the time since the
// try after it.
func pingUntil(ctx context.Context, c *net.UDPConn, to netip.AddrPort, id string, interval time.Duration) (time.Duration, error) {
	buf := make([]byte, 1500)
	defer c.SetReadDeadline(time.Time{})
	var sent []time.Time
	answer := "PONG " + id + "/"
	for {
		sent = append(sent, time.Now())
		if _, err := c.WriteToUDPAddrPort(fmt.Appendf(nil, "PING %s/%d", id, len(sent)-1), to); err != nil {
			return 0, err
		}
		c.SetReadDeadline(sent[len(sent)-1].Add(interval))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			try, ok := strings.CutPrefix(string(buf[:n]), answer)
			if i, err := strconv.Atoi(try); ok && err == nil && i >= 0 && i < len(sent) {
				return time.Since(sent[i]), nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}
