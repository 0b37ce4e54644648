// Package stunserver is the STUN server natlab runs on server nodes: RFC
// 5389 Binding, plus the RFC 5780 attributes that let a client discover a
// NAT's behaviour (OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST,
// RESPONSE-PORT). It listens on two addresses and two ports, four sockets
// in all, so it can answer from an address or port other than the one a
// request came to.
//
// It answers Binding over TCP too (RFC 5389 section 7.2.2), on the same
// four endpoints, so that a host can learn its TCP mapping, as a TCP hole
// punch needs: on the connection the request came on, so without the RFC
// 5780 changes, which a TCP connection cannot make (a request asking for
// one gets 400 Bad Request).
//
// Answer is the whole protocol, pure and tested with RFC vectors; Server
// only moves datagrams and stream messages between sockets and Answer.
package stunserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/natlab/natlab/service"
)

// Software is sent in every response.
const Software = "natlab"

// Reply is what Answer decides: send Packet from endpoint Via to To.
type Reply struct {
	Packet []byte
	Via    service.STUNEndpoint
	To     netip.AddrPort
}

// ErrNotBinding means the packet is not a STUN Binding request; the caller
// may hand it to another service on the same port (TURN).
var ErrNotBinding = errors.New("not a STUN Binding request")

// ChangeRequest flags (RFC 5780 section 7.2).
const (
	changeIP   = 0x04
	changePort = 0x02
)

// comprehensionOK lists the comprehension-required attributes a Binding
// request may carry that the server understands or may ignore; any other
// one in 0x0000-0x7fff gets a 420 (RFC 5389 section 7.3.1).
var comprehensionOK = map[stun.AttrType]bool{
	stun.AttrChangeRequest:    true,
	stun.AttrResponsePort:     true,
	stun.AttrPadding:          true,
	stun.AttrUsername:         true,
	stun.AttrMessageIntegrity: true,
	stun.AttrPriority:         true,
	stun.AttrUseCandidate:     true,
	stun.AttrXORMappedAddress: true,
	stun.AttrMappedAddress:    true,
}

// Answer handles one datagram that arrived on endpoint at from client.
// It returns ErrNotBinding for anything that is not a Binding request, and
// another error (and no reply) for a Binding request it must drop.
func Answer(l service.STUNLayout, at service.STUNEndpoint, client netip.AddrPort, packet []byte) (Reply, error) {
	if !stun.IsMessage(packet) {
		return Reply{}, ErrNotBinding
	}
	if len(packet) != 20+int(binary.BigEndian.Uint16(packet[2:4])) {
		return Reply{}, fmt.Errorf("malformed STUN message: %d bytes, header says %d", len(packet), 20+int(binary.BigEndian.Uint16(packet[2:4])))
	}
	req := &stun.Message{Raw: append([]byte(nil), packet...)}
	if err := req.Decode(); err != nil {
		return Reply{}, fmt.Errorf("malformed STUN message: %w", err)
	}
	if req.Type.Method != stun.MethodBinding {
		return Reply{}, ErrNotBinding
	}
	if req.Type.Class != stun.ClassRequest {
		// Indications need no answer; responses are not for a server.
		return Reply{}, fmt.Errorf("binding %s ignored", req.Type.Class)
	}
	if req.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(req); err != nil {
			return Reply{}, fmt.Errorf("bad fingerprint: %w", err)
		}
	}
	reply := Reply{Via: at, To: client}

	var unknown stun.UnknownAttributes
	for _, a := range req.Attributes {
		if a.Type < 0x8000 && !comprehensionOK[a.Type] {
			unknown = append(unknown, a.Type)
		}
	}
	if len(unknown) > 0 {
		return errorReply(req, reply, stun.CodeUnknownAttribute, unknown)
	}

	if raw, err := req.Get(stun.AttrChangeRequest); err == nil {
		if len(raw) != 4 {
			return errorReply(req, reply, stun.CodeBadRequest, nil)
		}
		flags := raw[3]
		if flags&changeIP != 0 {
			if !l.Addrs[1].IsValid() {
				// RFC 5780 section 6.1: no alternate address, no change.
				return errorReply(req, reply, stun.CodeBadRequest, nil)
			}
			reply.Via.Addr = 1 - reply.Via.Addr
		}
		if flags&changePort != 0 {
			reply.Via.Port = 1 - reply.Via.Port
		}
	}
	if raw, err := req.Get(stun.AttrResponsePort); err == nil {
		if len(raw) != 4 {
			return errorReply(req, reply, stun.CodeBadRequest, nil)
		}
		reply.To = netip.AddrPortFrom(client.Addr(), uint16(raw[0])<<8|uint16(raw[1]))
	}

	origin := l.At(reply.Via)
	setters := []stun.Setter{
		stun.NewType(stun.MethodBinding, stun.ClassSuccessResponse),
		stun.NewTransactionIDSetter(req.TransactionID),
		&stun.XORMappedAddress{IP: client.Addr().AsSlice(), Port: int(client.Port())},
		&stun.MappedAddress{IP: client.Addr().AsSlice(), Port: int(client.Port())},
		&stun.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
	}
	if l.Addrs[1].IsValid() {
		other := l.At(service.STUNEndpoint{Addr: 1 - at.Addr, Port: 1 - at.Port})
		setters = append(setters, &stun.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())})
	}
	setters = append(setters, stun.NewSoftware(Software), stun.Fingerprint)
	resp, err := stun.Build(setters...)
	if err != nil {
		return Reply{}, err
	}
	reply.Packet = resp.Raw
	return reply, nil
}

func errorReply(req *stun.Message, reply Reply, code stun.ErrorCode, unknown stun.UnknownAttributes) (Reply, error) {
	setters := []stun.Setter{
		stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		stun.NewTransactionIDSetter(req.TransactionID),
		code,
	}
	if len(unknown) > 0 {
		setters = append(setters, unknown)
	}
	setters = append(setters, stun.NewSoftware(Software), stun.Fingerprint)
	resp, err := stun.Build(setters...)
	if err != nil {
		return Reply{}, err
	}
	reply.Packet = resp.Raw
	return reply, nil
}

// AnswerStream handles one Binding request that came over TCP to endpoint
// at from client: Answer's reply, sent back on the same connection. A
// request for an answer from elsewhere (CHANGE-REQUEST, RESPONSE-PORT) gets
// 400 Bad Request, since a connection cannot be answered from another
// endpoint.
func AnswerStream(l service.STUNLayout, at service.STUNEndpoint, client netip.AddrPort, packet []byte) ([]byte, error) {
	reply, err := Answer(l, at, client, packet)
	if err != nil {
		return nil, err
	}
	if reply.Via == at && reply.To == client {
		return reply.Packet, nil
	}
	req := &stun.Message{Raw: append([]byte(nil), packet...)}
	if err := req.Decode(); err != nil {
		return nil, err
	}
	bad, err := errorReply(req, Reply{}, stun.CodeBadRequest, nil)
	return bad.Packet, err
}

// maxStreamMessage bounds a message read from a TCP connection: a
// Binding request is a few dozen bytes; anything much longer is no STUN
// request of natlab's.
const maxStreamMessage = 1500

// ReadStreamMessage reads one STUN message from a TCP stream: its 20-byte
// header, whose length field says how much follows (RFC 5389 section
// 7.2.2: messages follow each other on the stream with no other framing).
func ReadStreamMessage(r io.Reader) ([]byte, error) {
	head := make([]byte, 20, maxStreamMessage)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if !stun.IsMessage(head) {
		return nil, errors.New("not a STUN message")
	}
	n := int(binary.BigEndian.Uint16(head[2:4]))
	if 20+n > maxStreamMessage {
		return nil, fmt.Errorf("a STUN message of %d bytes; at most %d", 20+n, maxStreamMessage)
	}
	msg := head[:20+n]
	if _, err := io.ReadFull(r, msg[20:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// Server serves Answer on real sockets.
type Server struct {
	layout service.STUNLayout
	conns  map[service.STUNEndpoint]*net.UDPConn
	tcp    map[service.STUNEndpoint]net.Listener
	// streams are the TCP connections being served, closed by Close.
	mu      sync.Mutex
	streams map[net.Conn]bool
	closed  bool
	// other receives datagrams that are not Binding requests, with the
	// endpoint they came to; nil drops them.
	other func(at service.STUNEndpoint, from netip.AddrPort, packet []byte)
}

// Listen opens the layout's sockets in the calling thread's network
// namespace.
func Listen(l service.STUNLayout) (*Server, error) {
	s := &Server{layout: l, conns: map[service.STUNEndpoint]*net.UDPConn{}, tcp: map[service.STUNEndpoint]net.Listener{}, streams: map[net.Conn]bool{}}
	for _, e := range l.Endpoints() {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(l.At(e)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("stun: listen on %v: %w", l.At(e), err)
		}
		s.conns[e] = c
	}
	return s, nil
}

// ListenTCP opens TCP listeners on the layout's endpoints, in the calling
// thread's network namespace, but for those in skip: endpoints whose TCP
// port another service holds and answers Binding on itself (TURN, whose
// server answers Binding requests too). Serve then serves them too.
func (s *Server) ListenTCP(skip ...service.STUNEndpoint) error {
	for _, e := range s.layout.Endpoints() {
		if slices.Contains(skip, e) {
			continue
		}
		ln, err := net.Listen("tcp4", s.layout.At(e).String())
		if err != nil {
			return fmt.Errorf("stun: listen on tcp %v: %w", s.layout.At(e), err)
		}
		s.tcp[e] = ln
	}
	return nil
}

// Conn returns the socket of endpoint e, for a service sharing it.
func (s *Server) Conn(e service.STUNEndpoint) *net.UDPConn { return s.conns[e] }

// HandleOther passes every datagram that is not a Binding request to fn,
// which runs on the endpoint's reading goroutine.
func (s *Server) HandleOther(fn func(at service.STUNEndpoint, from netip.AddrPort, packet []byte)) {
	s.other = fn
}

// Serve answers requests until the sockets are closed. logf reports
// dropped requests; it may be nil.
func (s *Server) Serve(logf func(format string, args ...any)) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var streams sync.WaitGroup
	defer streams.Wait()
	for e, ln := range s.tcp {
		streams.Go(func() { s.serveTCP(e, ln, logf) })
	}
	done := make(chan struct{})
	for e, c := range s.conns {
		go func() {
			defer func() { done <- struct{}{} }()
			buf := make([]byte, 1500)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				reply, err := Answer(s.layout, e, from, buf[:n])
				switch {
				case errors.Is(err, ErrNotBinding):
					if s.other != nil {
						s.other(e, from, append([]byte(nil), buf[:n]...))
					}
				case err != nil:
					logf("stun: %v: dropped a request from %v: %v", s.layout.At(e), from, err)
				default:
					if _, err := s.conns[reply.Via].WriteToUDPAddrPort(reply.Packet, reply.To); err != nil {
						logf("stun: %v: reply to %v: %v", s.layout.At(reply.Via), reply.To, err)
					}
				}
			}
		}()
	}
	for range s.conns {
		<-done
	}
}

// streamIdle is how long a TCP connection may stay silent before the
// server closes it.
const streamIdle = 30 * time.Second

// serveTCP accepts connections on endpoint e and answers each one's
// Binding requests on it, until the listener is closed.
func (s *Server) serveTCP(e service.STUNEndpoint, ln net.Listener, logf func(string, ...any)) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !s.track(c, true) {
			c.Close()
			return
		}
		conns.Go(func() {
			defer s.track(c, false)
			defer c.Close()
			from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			for {
				c.SetReadDeadline(time.Now().Add(streamIdle))
				msg, err := ReadStreamMessage(c)
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						logf("stun: tcp %v: from %v: %v", s.layout.At(e), from, err)
					}
					return
				}
				reply, err := AnswerStream(s.layout, e, from, msg)
				if err != nil {
					logf("stun: tcp %v: dropped a request from %v: %v", s.layout.At(e), from, err)
					return
				}
				if _, err := c.Write(reply); err != nil {
					return
				}
			}
		})
	}
}

// track adds a connection to those Close closes (false once closed) or
// removes it.
func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.streams, c)
		return true
	}
	if s.closed {
		return false
	}
	s.streams[c] = true
	return true
}

// Close closes every socket and connection, which ends Serve.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	for _, ln := range s.tcp {
		errs = append(errs, ln.Close())
	}
	s.mu.Lock()
	s.closed = true
	for c := range s.streams {
		c.Close()
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}
