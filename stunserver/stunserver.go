// Package stunserver is the STUN server natlab runs on server nodes: RFC
// 5389 Binding, plus the RFC 5780 attributes that let a client discover a
// NAT's behaviour (OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST,
// RESPONSE-PORT). It listens on two addresses and two ports, four sockets
// in all, so it can answer from an address or port other than the one a
// request came to.
//
// Answer is the whole protocol, pure and tested with RFC vectors; Server
// only moves datagrams between sockets and Answer.
package stunserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

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

// Server serves Answer on real sockets.
type Server struct {
	layout service.STUNLayout
	conns  map[service.STUNEndpoint]*net.UDPConn
	// other receives datagrams that are not Binding requests, with the
	// endpoint they came to; nil drops them.
	other func(at service.STUNEndpoint, from netip.AddrPort, packet []byte)
}

// Listen opens the layout's sockets in the calling thread's network
// namespace.
func Listen(l service.STUNLayout) (*Server, error) {
	s := &Server{layout: l, conns: map[service.STUNEndpoint]*net.UDPConn{}}
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

// Close closes every socket, which ends Serve.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
