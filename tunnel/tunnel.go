// Package tunnel is a reverse tunnel through a public relay, as ngrok and
// playit offer: a host behind NAT, which nobody outside can reach, keeps a
// TCP connection open to a relay on the internet; the relay listens on a
// public port for it, and hands every connection that arrives there back
// down the tunnel to the host. The host needs no port forward and no hole
// punch, only the ability to connect out.
//
// Protocol, one text line per message over TCP to the relay's control
// port:
//
//	client: NATLAB TUNNEL <public-port or 0>   server: OK <public-port> | ERR <reason>
//	server: CONN <id>                          (a visitor arrived)
//	client, on a new connection: NATLAB DATA <id>, then the visitor's bytes
package tunnel

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/service"
)

// Limits of a relay.
const (
	MaxTunnels     = 100
	PendingTimeout = 10 * time.Second
)

// Server is the relay.
type Server struct {
	addr netip.Addr
	ctl  net.Listener

	mu      sync.Mutex
	tunnels int
	pending map[string]chan net.Conn
}

// Listen opens the relay's control port on addr (in the calling thread's
// namespace).
func Listen(addr netip.Addr) (*Server, error) {
	l, err := net.Listen("tcp4", netip.AddrPortFrom(addr, service.TunnelPort).String())
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	return &Server{addr: addr, ctl: l, pending: map[string]chan net.Conn{}}, nil
}

// Close stops accepting tunnels.
func (s *Server) Close() error { return s.ctl.Close() }

// Serve accepts tunnels and data connections until Close.
func (s *Server) Serve(logf func(string, ...any)) {
	for {
		c, err := s.ctl.Accept()
		if err != nil {
			return
		}
		go s.handle(c, logf)
	}
}

func (s *Server) handle(c net.Conn, logf func(string, ...any)) {
	c.SetReadDeadline(time.Now().Add(PendingTimeout))
	r := bufio.NewReader(io.LimitReader(c, 256))
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "NATLAB" && f[1] == "TUNNEL":
		port, err := strconv.ParseUint(f[2], 10, 16)
		if err != nil || (port != 0 && port < 1024) {
			fmt.Fprintf(c, "ERR public port must be 0 or 1024-65535\n")
			c.Close()
			return
		}
		s.serveTunnel(c, uint16(port), logf)
	case len(f) == 3 && f[0] == "NATLAB" && f[1] == "DATA":
		s.mu.Lock()
		ch, ok := s.pending[f[2]]
		delete(s.pending, f[2])
		s.mu.Unlock()
		if !ok {
			c.Close()
			return
		}
		// Anything already read past the line belongs to the visitor.
		ch <- &prefixed{Conn: c, r: io.MultiReader(r, c)}
	default:
		c.Close()
	}
}

// serveTunnel holds one tunnel: a public listener whose visitors are
// sent down the tunnel.
func (s *Server) serveTunnel(ctl net.Conn, port uint16, logf func(string, ...any)) {
	defer ctl.Close()
	s.mu.Lock()
	if s.tunnels >= MaxTunnels {
		s.mu.Unlock()
		fmt.Fprintf(ctl, "ERR too many tunnels\n")
		return
	}
	s.tunnels++
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.tunnels--; s.mu.Unlock() }()
	pub, err := net.Listen("tcp4", netip.AddrPortFrom(s.addr, port).String())
	if err != nil {
		fmt.Fprintf(ctl, "ERR %v\n", err)
		return
	}
	defer pub.Close()
	public := pub.Addr().(*net.TCPAddr).AddrPort()
	fmt.Fprintf(ctl, "OK %d\n", public.Port())
	logf("tunnel: %v now reaches %v", public, ctl.RemoteAddr())
	// The tunnel ends when its client hangs up.
	go func() {
		io.Copy(io.Discard, ctl)
		pub.Close()
	}()
	var mu sync.Mutex
	for {
		visitor, err := pub.Accept()
		if err != nil {
			logf("tunnel: %v closed", public)
			return
		}
		id := newID()
		ch := make(chan net.Conn, 1)
		s.mu.Lock()
		s.pending[id] = ch
		s.mu.Unlock()
		mu.Lock()
		_, err = fmt.Fprintf(ctl, "CONN %s\n", id)
		mu.Unlock()
		if err != nil {
			visitor.Close()
			return
		}
		go func() {
			select {
			case data := <-ch:
				splice(visitor, data)
			case <-time.After(PendingTimeout):
				s.mu.Lock()
				delete(s.pending, id)
				s.mu.Unlock()
				visitor.Close()
			}
		}()
	}
}

type prefixed struct {
	net.Conn
	r io.Reader
}

func (p *prefixed) Read(b []byte) (int, error) { return p.r.Read(b) }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// splice copies both ways until either side closes.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}

// Dialer makes connections from the host's node.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Client is an open tunnel.
type Client struct {
	// Public is where the relay accepts visitors for this tunnel.
	Public netip.AddrPort
	ctl    net.Conn
	done   chan struct{}
	// The visitors' connections: Close ends them and waits for their
	// goroutines, which dial from the host's node, so that none of them
	// uses the node after its owner closed it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

// track registers a visitor's connection, or reports false once the
// tunnel is closing.
func (c *Client) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = true
	}
	return true
}

func (c *Client) untrack(conns ...net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range conns {
		delete(c.conns, conn)
	}
}

// Open asks the relay at relay for a tunnel to target (the host's local
// address and port), with a public port (0: the relay picks). Every
// connection is made with dial, from the host's node. The tunnel stays
// open until Close.
func Open(ctx context.Context, dial Dialer, relay netip.Addr, publicPort uint16, target string) (*Client, error) {
	ctlAddr := netip.AddrPortFrom(relay, service.TunnelPort).String()
	ctl, err := dial(ctx, "tcp4", ctlAddr)
	if err != nil {
		return nil, fmt.Errorf("tunnel: connect to the relay at %s: %w", ctlAddr, err)
	}
	fmt.Fprintf(ctl, "NATLAB TUNNEL %d\n", publicPort)
	r := bufio.NewReader(ctl)
	ctl.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	ctl.SetReadDeadline(time.Time{})
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("tunnel: the relay did not answer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "OK" {
		ctl.Close()
		return nil, fmt.Errorf("tunnel: the relay refused: %s", strings.TrimSpace(strings.TrimPrefix(line, "ERR")))
	}
	port, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil {
		ctl.Close()
		return nil, errors.New("tunnel: bad answer from the relay")
	}
	c := &Client{Public: netip.AddrPortFrom(relay, uint16(port)), ctl: ctl, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(c.done)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) != 2 || f[0] != "CONN" {
				continue
			}
			c.wg.Add(1)
			go func(id string) {
				defer c.wg.Done()
				data, err := dial(c.ctx, "tcp4", ctlAddr)
				if err != nil {
					return
				}
				local, err := dial(c.ctx, "tcp4", target)
				if err != nil {
					data.Close()
					return
				}
				if !c.track(data, local) {
					data.Close()
					local.Close()
					return
				}
				defer c.untrack(data, local)
				fmt.Fprintf(data, "NATLAB DATA %s\n", id)
				splice(data, local)
			}(f[1])
		}
	}()
	return c, nil
}

// Close ends the tunnel and the visitors' connections through it; the
// relay stops listening for it. It returns once nothing of the tunnel
// runs any more.
func (c *Client) Close() error {
	c.cancel()
	err := c.ctl.Close()
	<-c.done
	c.mu.Lock()
	c.closed = true
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return err
}
