// Command p2pnode is one go-libp2p host of natlab's libp2p example: a
// circuit relay v2 with AutoNAT on a public server, or a peer behind a NAT
// that reserves a slot on that relay (listen) or reaches such a peer
// through it (dial), both with DCUtR hole punching, which should upgrade
// the relayed connection to a direct one where the NATs allow it.
//
// It speaks QUIC only, so every packet is UDP, the protocol natlab's NAT
// types are defined for, and every connection, the relay's included, leaves
// from the one socket the host listens on, whose public endpoint the relay
// observes and the peers then punch to.
//
// It prints what happens as lines of words, the first naming the event,
// for a test (or a person) to read:
//
//	relay ADDR                       the relay's address (mode relay)
//	ready ID CIRCUIT                 reserved on the relay, reachable at CIRCUIT (listen)
//	reachability private|public      what AutoNAT (v1) concluded
//	reachable ADDR... | unreachable ADDR...   what AutoNAT v2 concluded, per address
//	connected relayed ADDR           the dialer has a relayed connection (dial)
//	holepunch attempt N              DCUtR's Nth attempt with the peer begins
//	holepunch end ok|failed DURATION [ERR]
//	direct PEER ADDR                 a direct connection to a peer (listen)
//	direct after DURATION ADDR       time from the relayed connection to a direct one (dial)
//	echo over ADDR rtt DURATION      a stream that may not use the relay went through (dial)
//	no direct after DURATION: WHY    the dialer gave up (dial)
//
// Usage:
//
//	p2pnode -mode relay
//	p2pnode -mode listen -relay /ip4/11.0.0.2/udp/4001/quic-v1/p2p/12D3...
//	p2pnode -mode dial -relay ... -peer 12D3...
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// echoProtocol answers what a stream says; the dialer uses it to show
// that data flows over the direct connection.
const echoProtocol protocol.ID = "/natlab/echo/1.0.0"

// punchAttempts is how many hole punches DCUtR's initiator makes before it
// gives up (go-libp2p's holepunch.maxRetries); the dialer, DCUtR's
// receiver, counts them to know when to stop waiting.
const punchAttempts = 3

func main() {
	mode := flag.String("mode", "", "relay, listen or dial")
	listen := flag.String("listen", "/ip4/0.0.0.0/udp/4001/quic-v1", "the address to listen on")
	relay := flag.String("relay", "", "the relay's address, with its /p2p/ID (listen, dial)")
	target := flag.String("peer", "", "the peer ID to reach through the relay (dial)")
	timeout := flag.Duration("timeout", time.Minute, "the most to wait for the relay and the reservation (listen), or for the relay, the peer and a direct connection (dial)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &printer{w: bufio.NewWriter(os.Stdout)}
	var err error
	switch *mode {
	case "relay":
		err = runRelay(ctx, out, *listen)
	case "listen":
		err = runListen(ctx, out, *listen, *relay, *timeout)
	case "dial":
		err = runDial(ctx, out, *listen, *relay, *target, *timeout)
	default:
		err = fmt.Errorf("-mode is %q; want relay, listen or dial", *mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "p2pnode %s: %v\n", *mode, err)
		os.Exit(1)
	}
}

// printer writes the event lines; the hosts' goroutines share it.
type printer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.w.Flush()
}

// runRelay serves a circuit relay v2 and AutoNAT (v1 and v2) to the
// peers, and says where, until it is told to stop.
func runRelay(ctx context.Context, out *printer, listen string) error {
	h, err := libp2p.New(
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ListenAddrStrings(listen),
		// A server on the internet: no need to find that out, and the
		// relay service runs only on a host that is reachable.
		libp2p.ForceReachabilityPublic(),
		libp2p.EnableRelayService(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
	)
	if err != nil {
		return fmt.Errorf("relay host: %w", err)
	}
	defer h.Close()
	var addr ma.Multiaddr
	for _, a := range h.Addrs() {
		if manet.IsPublicAddr(a) {
			addr = a
			break
		}
	}
	if addr == nil {
		return fmt.Errorf("relay host has no public address among %v (libp2p counts the documentation ranges, such as 203.0.113.0/24, as unroutable)", h.Addrs())
	}
	out.line("relay %s/p2p/%s", addr, h.ID())
	<-ctx.Done()
	return nil
}

// peerHost is a peer behind a NAT: QUIC, DCUtR with its events printed,
// AutoNAT's clients, and the echo protocol. close closes the host and
// joins what printed its events.
func peerHost(out *printer, listen string, punches chan<- *holepunch.Event) (h host.Host, closeHost func(), err error) {
	h, err = libp2p.New(
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ListenAddrStrings(listen),
		libp2p.EnableHolePunching(holepunch.WithTracer(tracer{out, punches})),
		libp2p.EnableAutoNATv2(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("host: %w", err)
	}
	h.SetStreamHandler(echoProtocol, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	stopPrinting, err := printReachability(h, out)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, func() { h.Close(); stopPrinting() }, nil
}

// tracer prints DCUtR's events and hands them on.
type tracer struct {
	out     *printer
	punches chan<- *holepunch.Event
}

func (t tracer) Trace(e *holepunch.Event) {
	switch ev := e.Evt.(type) {
	case *holepunch.HolePunchAttemptEvt:
		t.out.line("holepunch attempt %d", ev.Attempt)
	case *holepunch.EndHolePunchEvt:
		if ev.Success {
			t.out.line("holepunch end ok %v", ev.EllapsedTime.Round(time.Millisecond))
		} else {
			t.out.line("holepunch end failed %v %s", ev.EllapsedTime.Round(time.Millisecond), ev.Error)
		}
	case *holepunch.ProtocolErrorEvt:
		t.out.line("holepunch error %s", ev.Error)
	default:
		return
	}
	if t.punches != nil {
		select {
		case t.punches <- e:
		default:
		}
	}
}

// printReachability prints what AutoNAT concludes, v1 for the host and v2
// for each address, until stop is called.
func printReachability(h host.Host, out *printer) (stop func(), err error) {
	sub, err := h.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtHostReachableAddrsChanged)})
	if err != nil {
		return nil, fmt.Errorf("subscribe to AutoNAT's events: %w", err)
	}
	done := make(chan struct{})
	// Closing the subscription closes its channel, which ends the loop.
	go func() {
		defer close(done)
		for e := range sub.Out() {
			switch e := e.(type) {
			case event.EvtLocalReachabilityChanged:
				out.line("reachability %s", strings.ToLower(e.Reachability.String()))
			case event.EvtHostReachableAddrsChanged:
				if len(e.Reachable) > 0 {
					out.line("reachable %s", joinAddrs(e.Reachable))
				}
				if len(e.Unreachable) > 0 {
					out.line("unreachable %s", joinAddrs(e.Unreachable))
				}
			}
		}
	}()
	return func() { sub.Close(); <-done }, nil
}

func joinAddrs(as []ma.Multiaddr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// connectRelay connects to the relay and waits until the host knows the
// public endpoint the relay saw it at: DCUtR offers the peer only such
// observed addresses, and takes part in no hole punch until it has one.
func connectRelay(ctx context.Context, h host.Host, relay string) (*peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(relay)
	if err != nil {
		return nil, fmt.Errorf("-relay %q: %w", relay, err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		return nil, fmt.Errorf("connect to the relay %s: %w", relay, err)
	}
	// The hole punching service registers its protocol once the host has
	// a public address, which identify with the relay brings.
	for !slices.Contains(h.Mux().Protocols(), holepunch.Protocol) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no public address observed by the relay %s (DCUtR would not start): %w", relay, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ai, nil
}

// runListen reserves a slot on the relay, says how to reach it through
// it, and answers until it is told to stop. DCUtR starts on its own when
// a peer comes in through the relay: this side is its initiator.
func runListen(ctx context.Context, out *printer, listen, relay string, timeout time.Duration) error {
	h, closeHost, err := peerHost(out, listen, nil)
	if err != nil {
		return err
	}
	defer closeHost()
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ai, err := connectRelay(stepCtx, h, relay)
	if err != nil {
		return err
	}
	if _, err := client.Reserve(stepCtx, h, *ai); err != nil {
		return fmt.Errorf("reserve a slot on the relay %s: %w", relay, err)
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() != ai.ID && !isRelayed(c) {
			out.line("direct %s %s", c.RemotePeer(), c.RemoteMultiaddr())
		}
	}})
	out.line("ready %s %s/p2p-circuit/p2p/%s", h.ID(), relay, h.ID())
	<-ctx.Done()
	return nil
}

// runDial reaches the peer through the relay and waits until DCUtR
// upgrades the connection to a direct one, or every attempt has failed.
func runDial(ctx context.Context, out *printer, listen, relay, target string, timeout time.Duration) error {
	id, err := peer.Decode(target)
	if err != nil {
		return fmt.Errorf("-peer %q: %w", target, err)
	}
	punches := make(chan *holepunch.Event, 16)
	h, closeHost, err := peerHost(out, listen, punches)
	if err != nil {
		return err
	}
	defer closeHost()
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := connectRelay(stepCtx, h, relay); err != nil {
		return err
	}
	circuit, err := ma.NewMultiaddr(relay + "/p2p-circuit")
	if err != nil {
		return fmt.Errorf("circuit address: %w", err)
	}
	if err := h.Connect(stepCtx, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{circuit}}); err != nil {
		return fmt.Errorf("connect to %s through the relay: %w", id, err)
	}
	start := time.Now()
	for _, c := range h.Network().ConnsToPeer(id) {
		if isRelayed(c) {
			out.line("connected relayed %s", c.RemoteMultiaddr())
		}
	}

	conn, why := awaitDirect(stepCtx, h, id, punches)
	took := time.Since(start)
	if conn == nil {
		out.line("no direct after %v: %s", took.Round(time.Millisecond), why)
		return nil
	}
	out.line("direct after %v %s", took.Round(time.Millisecond), conn.RemoteMultiaddr())
	return echo(stepCtx, out, h, id)
}

// awaitDirect waits for a direct connection to the peer, which DCUtR makes
// while the relayed one stands; nil, and why, if none comes.
func awaitDirect(ctx context.Context, h host.Host, id peer.ID, punches <-chan *holepunch.Event) (network.Conn, string) {
	// DCUtR's last attempt may fail on this side while the peer's dial of
	// the same attempt gets through: wait a little past it.
	const grace = 2 * time.Second
	var failed int
	var giveUp <-chan time.Time
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, c := range h.Network().ConnsToPeer(id) {
			if !isRelayed(c) {
				return c, ""
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Sprintf("timed out after %d failed hole punches", failed)
		case <-giveUp:
			return nil, fmt.Sprintf("%d hole punches failed", failed)
		case e := <-punches:
			if end, ok := e.Evt.(*holepunch.EndHolePunchEvt); ok && !end.Success {
				failed++
				if failed == punchAttempts {
					giveUp = time.After(grace)
				}
			}
		case <-tick.C:
		}
	}
}

// echo sends a line on a stream that may not go through the relay, and
// reads it back.
func echo(ctx context.Context, out *printer, h host.Host, id peer.ID) error {
	s, err := h.NewStream(network.WithNoDial(ctx, "direct already"), id, echoProtocol)
	if err != nil {
		return fmt.Errorf("echo stream: %w", err)
	}
	defer s.Close()
	if isRelayed(s.Conn()) {
		return errors.New("the echo stream went through the relay")
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	const msg = "hello through the hole\n"
	if _, err := io.WriteString(s, msg); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	got, err := bufio.NewReader(s).ReadString('\n')
	if err != nil || got != msg {
		return fmt.Errorf("echo: got %q, %v", got, err)
	}
	out.line("echo over %s rtt %v", s.Conn().RemoteMultiaddr(), time.Since(start).Round(100*time.Microsecond))
	return nil
}

func isRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
