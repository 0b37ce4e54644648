package turnserver

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// SharedConn lets TURN serve on a UDP socket another service reads: the
// STUN server answers Binding requests itself and hands everything else
// here with Deliver. Writes go straight to the socket.
type SharedConn struct {
	conn *net.UDPConn

	mu       sync.Mutex
	queue    chan datagram
	closed   chan struct{}
	once     sync.Once
	deadline time.Time
}

type datagram struct {
	from netip.AddrPort
	data []byte
}

// NewSharedConn wraps conn.
func NewSharedConn(conn *net.UDPConn) *SharedConn {
	return &SharedConn{conn: conn, queue: make(chan datagram, 256), closed: make(chan struct{})}
}

// Deliver queues a datagram for TURN. When TURN falls behind, datagrams
// are dropped, as a full socket buffer would.
func (s *SharedConn) Deliver(from netip.AddrPort, data []byte) {
	select {
	case s.queue <- datagram{from, data}:
	case <-s.closed:
	default:
	}
}

// ReadFrom returns the next delivered datagram.
func (s *SharedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	s.mu.Lock()
	deadline := s.deadline
	s.mu.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case d := <-s.queue:
		return copy(p, d.data), net.UDPAddrFromAddrPort(d.from), nil
	case <-s.closed:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo sends on the shared socket.
func (s *SharedConn) WriteTo(p []byte, addr net.Addr) (int, error) { return s.conn.WriteTo(p, addr) }

// Close ends ReadFrom; the shared socket stays open for its owner.
func (s *SharedConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// LocalAddr is the shared socket's address.
func (s *SharedConn) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// SetDeadline sets the read deadline; writes do not block.
func (s *SharedConn) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

// SetReadDeadline bounds the next ReadFrom.
func (s *SharedConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

// SetWriteDeadline is accepted and ignored: writes to UDP do not block.
func (s *SharedConn) SetWriteDeadline(time.Time) error { return nil }
