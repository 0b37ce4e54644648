// Package stunclient sends STUN Binding requests from a socket natlab
// holds inside a lab node and reads the answers, with the RFC 5780
// extensions natlab's discovery and punch agent use.
package stunclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Request is one Binding request.
type Request struct {
	// ChangeIP and ChangePort ask the server to answer from its other
	// address and/or port (RFC 5780 CHANGE-REQUEST).
	ChangeIP, ChangePort bool
	// ResponsePort asks the server to answer to this port of the client's
	// address instead of the source port (RFC 5780 RESPONSE-PORT); 0 for
	// none.
	ResponsePort uint16
	// Waits is how long to wait after each transmission; nil means
	// Retransmissions.
	Waits []time.Duration
}

// Response is what a Binding success response said.
type Response struct {
	// Mapped is the client's address as the server saw it
	// (XOR-MAPPED-ADDRESS): its public endpoint behind a NAT.
	Mapped netip.AddrPort
	// Origin is where the server says it answered from (RESPONSE-ORIGIN).
	Origin netip.AddrPort
	// Other is the server's alternate address and port (OTHER-ADDRESS),
	// invalid if the server has none.
	Other netip.AddrPort
	// Source is where the response actually came from.
	Source netip.AddrPort
	// RTT is the time from the last transmission to the response.
	RTT time.Duration
}

// Retransmissions is how long to wait after each transmission when an
// answer is expected: 3s in all. A lab has no loss and sub-millisecond
// latency, but a busy machine may not run the server for a while.
var Retransmissions = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond}

// Probes is the shorter schedule for requests whose answer a NAT may
// filter, where silence is the finding: 900ms in all.
var Probes = []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 450 * time.Millisecond}

// ErrNoResponse means no response came after every retransmission.
var ErrNoResponse = errors.New("no STUN response")

// Build encodes a Binding request with a new transaction ID.
func Build(req Request) (*stun.Message, error) {
	setters := []stun.Setter{stun.BindingRequest, stun.TransactionID}
	if req.ChangeIP || req.ChangePort {
		var flags byte
		if req.ChangeIP {
			flags |= 0x04
		}
		if req.ChangePort {
			flags |= 0x02
		}
		setters = append(setters, raw{stun.AttrChangeRequest, []byte{0, 0, 0, flags}})
	}
	if req.ResponsePort != 0 {
		setters = append(setters, raw{stun.AttrResponsePort, []byte{byte(req.ResponsePort >> 8), byte(req.ResponsePort), 0, 0}})
	}
	setters = append(setters, stun.Fingerprint)
	return stun.Build(setters...)
}

type raw struct {
	t stun.AttrType
	v []byte
}

func (a raw) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

// Binding sends req from conn to server and waits for its response,
// retransmitting on the schedule. Datagrams that are not the response are
// dropped.
func Binding(ctx context.Context, conn *net.UDPConn, server netip.AddrPort, req Request) (Response, error) {
	m, err := Build(req)
	if err != nil {
		return Response{}, err
	}
	waits := req.Waits
	if waits == nil {
		waits = Retransmissions
	}
	for _, wait := range waits {
		sent := time.Now()
		if _, err := conn.WriteToUDPAddrPort(m.Raw, server); err != nil {
			return Response{}, fmt.Errorf("send binding request to %v: %w", server, err)
		}
		deadline := sent.Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		resp, err := Await(conn, m.TransactionID, deadline)
		if err == nil {
			resp.RTT = time.Since(sent)
			return resp, nil
		}
		if !errors.Is(err, ErrNoResponse) {
			return Response{}, err
		}
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
	}
	return Response{}, fmt.Errorf("%w from %v after %d tries", ErrNoResponse, server, len(waits))
}

// Await reads conn until the response to transaction id arrives or the
// deadline passes.
func Await(conn *net.UDPConn, id [stun.TransactionIDSize]byte, deadline time.Time) (Response, error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return Response{}, err
	}
	defer conn.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Response{}, ErrNoResponse
		}
		if err != nil {
			return Response{}, err
		}
		resp, ok, err := Parse(buf[:n], id)
		if !ok {
			continue
		}
		if err != nil {
			return Response{}, err
		}
		resp.Source = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		return resp, nil
	}
}

// Parse decodes a datagram; ok is false if it is not the response to
// transaction id. An error response is ok with an error.
func Parse(packet []byte, id [stun.TransactionIDSize]byte) (Response, bool, error) {
	if !stun.IsMessage(packet) {
		return Response{}, false, nil
	}
	m := &stun.Message{Raw: append([]byte(nil), packet...)}
	if err := m.Decode(); err != nil || m.TransactionID != id || m.Type.Method != stun.MethodBinding {
		return Response{}, false, nil
	}
	if m.Type.Class == stun.ClassErrorResponse {
		var code stun.ErrorCodeAttribute
		code.GetFrom(m)
		return Response{}, true, fmt.Errorf("STUN error %d %s", code.Code, code.Reason)
	}
	if m.Type.Class != stun.ClassSuccessResponse {
		return Response{}, false, nil
	}
	var resp Response
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		resp.Mapped = addrPort(xor.IP, xor.Port)
	} else {
		var mapped stun.MappedAddress
		if err := mapped.GetFrom(m); err != nil {
			return Response{}, true, errors.New("STUN response without a mapped address")
		}
		resp.Mapped = addrPort(mapped.IP, mapped.Port)
	}
	var origin stun.ResponseOrigin
	if origin.GetFrom(m) == nil {
		resp.Origin = addrPort(origin.IP, origin.Port)
	}
	var other stun.OtherAddress
	if other.GetFrom(m) == nil {
		resp.Other = addrPort(other.IP, other.Port)
	}
	return resp, true, nil
}

func addrPort(ip net.IP, port int) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// BindingStream sends a plain Binding request on a TCP connection to a
// STUN server and reads its response (RFC 5389 section 7.2.2: no
// retransmissions, TCP is reliable), waiting until ctx's deadline if it
// has one. Over TCP the answer can only come back on the connection, so
// the request asks for no RFC 5780 change; Mapped is the connection's
// public endpoint, the host's TCP mapping towards the server.
func BindingStream(ctx context.Context, conn net.Conn) (Response, error) {
	m, err := Build(Request{})
	if err != nil {
		return Response{}, err
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
		defer conn.SetDeadline(time.Time{})
	}
	sent := time.Now()
	if _, err := conn.Write(m.Raw); err != nil {
		return Response{}, fmt.Errorf("send binding request to %v: %w", conn.RemoteAddr(), err)
	}
	for {
		packet, err := readStreamMessage(conn)
		if err != nil {
			return Response{}, fmt.Errorf("read binding response from %v: %w", conn.RemoteAddr(), err)
		}
		resp, ok, err := Parse(packet, m.TransactionID)
		if !ok {
			continue
		}
		if err != nil {
			return Response{}, err
		}
		resp.RTT = time.Since(sent)
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			ap := a.AddrPort()
			resp.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		return resp, nil
	}
}

// readStreamMessage reads one STUN message from a stream: the 20-byte
// header, whose length field says how much follows.
func readStreamMessage(r io.Reader) ([]byte, error) {
	head := make([]byte, 20)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if !stun.IsMessage(head) {
		return nil, errors.New("not a STUN message")
	}
	msg := make([]byte, 20+int(binary.BigEndian.Uint16(head[2:4])))
	copy(msg, head)
	if _, err := io.ReadFull(r, msg[20:]); err != nil {
		return nil, err
	}
	return msg, nil
}
