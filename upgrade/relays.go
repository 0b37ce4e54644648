package upgrade

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/derp/derpserver"
	"tailscale.com/net/netmon"
	"tailscale.com/types/key"

	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
)

// A relayLink carries packets between A and B through a server on the
// internet, whatever NATs they are behind.
type relayLink interface {
	// start connects both sides. onA gets every packet that reaches A
	// through the relay; onB every packet that reaches B, with a function
	// that answers it the way it came.
	start(ctx context.Context, onA func([]byte), onB func(data []byte, reply func([]byte))) error
	// sendAtoB sends from A to B; it fails until B is reachable.
	sendAtoB(data []byte) error
	// describe says which relay and where, for the result.
	describe() string
	close()
}

// turnLink relays through a TURN server: A allocates over TCP, B sends
// from its UDP socket to the relayed address.
type turnLink struct {
	cfg   relay.Config
	a, b  Peer
	alloc *relay.Allocation
	bAt   atomic.Pointer[net.UDPAddr]
	stop  chan struct{}
	wg    sync.WaitGroup
}

func (t *turnLink) describe() string {
	return fmt.Sprintf("TURN over TCP at %v, relayed address %v", t.cfg.Server, t.alloc.Relayed())
}

func (t *turnLink) start(ctx context.Context, onA func([]byte), onB func([]byte, func([]byte))) error {
	alloc, err := relay.Allocate(t.cfg, nil, t.a.Dial)
	if err != nil {
		return fmt.Errorf("%s: %w", t.a.Name, err)
	}
	t.alloc = alloc
	t.stop = make(chan struct{})
	// A permits B's address at the relay by sending to it; B's public
	// address comes from a STUN request to the relay.
	r, err := stunclient.Binding(ctx, t.b.Data, t.cfg.Server, stunclient.Request{})
	if err != nil {
		return fmt.Errorf("%s: learn its public address from %v: %w", t.b.Name, t.cfg.Server, err)
	}
	if _, err := alloc.WriteTo([]byte("NATLAB OPEN"), net.UDPAddrFromAddrPort(r.Mapped)); err != nil {
		return fmt.Errorf("%s: permission for %v: %w", t.a.Name, r.Mapped, err)
	}
	t.wg.Add(2)
	go readLoop(&t.wg, t.stop, alloc, func(data []byte, from net.Addr) {
		if string(data) == "NATLAB HELLO" {
			if u, ok := from.(*net.UDPAddr); ok {
				t.bAt.CompareAndSwap(nil, u)
			}
			return
		}
		onA(data)
	})
	go readLoop(&t.wg, t.stop, t.b.Data, func(data []byte, from net.Addr) {
		onB(data, func(answer []byte) { t.b.Data.WriteTo(answer, from) })
	})
	return nil
}

func (t *turnLink) sendAtoB(data []byte) error {
	at := t.bAt.Load()
	if at == nil {
		// B opens its side of the relayed path until A hears it.
		t.b.Data.WriteToUDPAddrPort([]byte("NATLAB HELLO"), t.alloc.Relayed())
		return errors.New("not heard from B yet")
	}
	_, err := t.alloc.WriteTo(data, at)
	return err
}

func (t *turnLink) close() {
	if t.stop != nil {
		close(t.stop)
		t.wg.Wait()
	}
	if t.alloc != nil {
		t.alloc.Close()
	}
}

// readLoop hands c's datagrams to handle until stop is closed.
func readLoop(wg *sync.WaitGroup, stop <-chan struct{}, c net.PacketConn, handle func([]byte, net.Addr)) {
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
			handle(bytes.Clone(buf[:n]), from)
		}
	}
}

// derpLink relays through a DERP server, Tailscale's relay: each peer
// keeps an HTTP connection to it open and is addressed by its public key.
type derpLink struct {
	url    string
	a, b   Peer
	ca, cb *derphttp.Client
	keyB   key.NodePublic
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (d *derpLink) describe() string { return "DERP at " + d.url }

func (d *derpLink) start(ctx context.Context, onA func([]byte), onB func([]byte, func([]byte))) error {
	d.stop = make(chan struct{})
	connect := func(p Peer) (*derphttp.Client, key.NodePublic, error) {
		priv := key.NewNode()
		c, err := derphttp.NewClient(priv, d.url, func(string, ...any) {}, netmon.NewStatic())
		if err != nil {
			return nil, key.NodePublic{}, err
		}
		// The client's connection starts in the peer's node.
		c.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.Dial(network, addr)
		})
		if err := c.Connect(ctx); err != nil {
			c.Close()
			return nil, key.NodePublic{}, fmt.Errorf("%s: connect to DERP at %s: %w", p.Name, d.url, err)
		}
		// The server has registered the client once it says hello; a
		// packet sent to a key it does not know yet is dropped.
		for {
			m, err := c.Recv()
			if err != nil {
				c.Close()
				return nil, key.NodePublic{}, fmt.Errorf("%s: DERP: %w", p.Name, err)
			}
			if _, ok := m.(derp.ServerInfoMessage); ok {
				return c, priv.Public(), nil
			}
		}
	}
	var err error
	if d.ca, _, err = connect(d.a); err != nil {
		return err
	}
	if d.cb, d.keyB, err = connect(d.b); err != nil {
		return err
	}
	recv := func(c *derphttp.Client, handle func(derp.ReceivedPacket)) {
		defer d.wg.Done()
		for {
			m, err := c.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(derp.ReceivedPacket); ok {
				p.Data = bytes.Clone(p.Data) // it aliases the client's buffer
				handle(p)
			}
		}
	}
	d.wg.Add(2)
	go recv(d.ca, func(p derp.ReceivedPacket) { onA(p.Data) })
	go recv(d.cb, func(p derp.ReceivedPacket) {
		onB(p.Data, func(answer []byte) { d.cb.Send(p.Source, answer) })
	})
	return nil
}

func (d *derpLink) sendAtoB(data []byte) error { return d.ca.Send(d.keyB, data) }

func (d *derpLink) close() {
	for _, c := range []*derphttp.Client{d.ca, d.cb} {
		if c != nil {
			c.Close() // ends its Recv loop
		}
	}
	d.wg.Wait()
}

// ServeDERP runs a DERP server on addr (in the calling thread's namespace)
// until the returned function is called, which returns once the server
// has stopped serving.
func ServeDERP(addr netip.Addr, logf func(string, ...any)) (stop func() error, err error) {
	l, err := net.Listen("tcp4", netip.AddrPortFrom(addr, service.DERPPort).String())
	if err != nil {
		return nil, fmt.Errorf("derp: %w", err)
	}
	srv := derpserver.New(key.NewNode(), func(string, ...any) {})
	hs := &http.Server{
		Handler: derpserver.Handler(srv),
		// Plain HTTP/1.1, as Tailscale's own tests serve it.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
	}
	var serving sync.WaitGroup
	serving.Go(func() { hs.Serve(l) })
	return func() error {
		hs.Close()
		serving.Wait()
		return srv.Close()
	}, nil
}
