// Package pcp is the wire format of the Port Control Protocol (RFC 6887),
// NAT-PMP's successor on the same UDP port: its requests and responses,
// their opcodes (ANNOUNCE, MAP, PEER), options and result codes, and a
// client that asks a gateway. It does no I/O but the client's; package
// natpmp serves it beside NAT-PMP.
//
// No Go library kept up to date encodes PCP for a server: Tailscale's
// portmapper builds the two client requests it sends and reads their
// answers, unexported, and the NAT-PMP libraries stop at version 0. The
// format is small and fixed (RFC 6887 sections 7, 11, 12 and 13), so it is
// written here against the RFC, and tested against a client nobody here
// wrote (natpmp's tests run Tailscale's portmapper).
package pcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Version is PCP's version number; NAT-PMP's is 0.
const Version = 2

// Opcodes (RFC 6887 section 19.2).
const (
	OpAnnounce = 0
	OpMap      = 1
	OpPeer     = 2
	// opReply is the R bit, set in every response.
	opReply = 0x80
)

// Result codes (RFC 6887 section 7.4).
const (
	Success              = 0
	UnsuppVersion        = 1
	NotAuthorized        = 2
	MalformedRequest     = 3
	UnsuppOpcode         = 4
	UnsuppOption         = 5
	MalformedOption      = 6
	NetworkFailure       = 7
	NoResources          = 8
	UnsuppProtocol       = 9
	UserExQuota          = 10
	CannotProvideExt     = 11
	AddressMismatch      = 12
	ExcessiveRemotePeers = 13
)

var resultText = [...]string{
	Success: "SUCCESS", UnsuppVersion: "UNSUPP_VERSION", NotAuthorized: "NOT_AUTHORIZED",
	MalformedRequest: "MALFORMED_REQUEST", UnsuppOpcode: "UNSUPP_OPCODE", UnsuppOption: "UNSUPP_OPTION",
	MalformedOption: "MALFORMED_OPTION", NetworkFailure: "NETWORK_FAILURE", NoResources: "NO_RESOURCES",
	UnsuppProtocol: "UNSUPP_PROTOCOL", UserExQuota: "USER_EX_QUOTA", CannotProvideExt: "CANNOT_PROVIDE_EXTERNAL",
	AddressMismatch: "ADDRESS_MISMATCH", ExcessiveRemotePeers: "EXCESSIVE_REMOTE_PEERS",
}

// ResultText names a result code as the RFC does.
func ResultText(code uint8) string {
	if int(code) < len(resultText) {
		return resultText[code]
	}
	return fmt.Sprintf("result %d", code)
}

// ShortLived says whether an error result is one of the three the RFC
// calls short lifetime errors, which clear up by themselves: the
// response's lifetime then says when to try again (30 s here), and for
// the others how long the error holds (30 min).
func ShortLived(code uint8) bool {
	return code == NetworkFailure || code == NoResources || code == UserExQuota
}

// Error lifetimes, as section 7.4 suggests.
const (
	ShortErrorLifetime = 30 * time.Second
	LongErrorLifetime  = 30 * time.Minute
)

// Option codes (RFC 6887 section 13). Codes from 128 up are optional to
// process: a server that does not know one ignores it.
const (
	OptThirdParty    = 1
	OptPreferFailure = 2
	OptFilter        = 3
)

// Protocol numbers of MAP and PEER (IANA's).
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// ProtoName is "tcp" or "udp" for their protocol numbers, "" otherwise.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return ""
}

// ProtoNumber is the protocol number of "tcp" or "udp", 0 otherwise.
func ProtoNumber(name string) uint8 {
	switch name {
	case "tcp":
		return ProtoTCP
	case "udp":
		return ProtoUDP
	}
	return 0
}

// Sizes of the parts of a message, and the longest message (section 7).
const (
	HeaderLen = 24
	mapLen    = 36
	peerLen   = 56
	MaxLen    = 1100
)

// Nonce is a MAP or PEER mapping's nonce: whoever holds it may renew or
// delete the mapping (section 11.1).
type Nonce [12]byte

// Option is one option of a request or response.
type Option struct {
	Code uint8
	Data []byte
}

// Request is a decoded request.
type Request struct {
	Opcode uint8
	// Lifetime is the lifetime asked for; 0 deletes (MAP).
	Lifetime time.Duration
	// Client is the PCP client's IP address field: the address the
	// client believes it sends from.
	Client netip.Addr
	// MAP and PEER.
	Nonce     Nonce
	Protocol  uint8
	Internal  uint16
	Suggested netip.AddrPort
	// PEER only.
	Peer    netip.AddrPort
	Options []Option
}

// Response is a decoded response.
type Response struct {
	Opcode   uint8
	Result   uint8
	Lifetime time.Duration
	Epoch    uint32
	// MAP and PEER.
	Nonce    Nonce
	Protocol uint8
	Internal uint16
	External netip.AddrPort
	Peer     netip.AddrPort
	Options  []Option
}

// Errors of decoding, each with the result code a server answers with.
var (
	ErrMalformed       = &Error{MalformedRequest, "malformed request"}
	ErrUnsuppOpcode    = &Error{UnsuppOpcode, "unsupported opcode"}
	ErrMalformedOption = &Error{MalformedOption, "malformed option"}
)

// Error is a request a server cannot take, and the result it answers.
type Error struct {
	Result uint8
	Reason string
}

func (e *Error) Error() string { return "PCP: " + e.Reason + " (" + ResultText(e.Result) + ")" }

// ParseRequest decodes a PCP request of version 2. The caller has
// dispatched on the version byte and drops what is shorter than two
// bytes or has the R bit set. Its errors are *Error.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < HeaderLen || len(b) > MaxLen || len(b)%4 != 0 {
		return Request{}, ErrMalformed
	}
	r := Request{
		Opcode:   b[1] &^ opReply,
		Lifetime: time.Duration(binary.BigEndian.Uint32(b[4:8])) * time.Second,
		Client:   netip.AddrFrom16([16]byte(b[8:24])).Unmap(),
	}
	rest := b[HeaderLen:]
	switch r.Opcode {
	case OpAnnounce:
	case OpMap, OpPeer:
		n := mapLen
		if r.Opcode == OpPeer {
			n = peerLen
		}
		if len(rest) < n {
			return Request{}, ErrMalformed
		}
		d := parseOpData(rest, r.Opcode)
		r.Nonce, r.Protocol, r.Internal, r.Suggested, r.Peer = d.nonce, d.protocol, d.internal, d.external, d.peer
		rest = rest[n:]
	default:
		return r, ErrUnsuppOpcode
	}
	opts, err := parseOptions(rest)
	if err != nil {
		return r, err
	}
	r.Options = opts
	return r, nil
}

func parseOptions(b []byte) ([]Option, error) {
	var opts []Option
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, ErrMalformedOption
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		padded := 4 + (n+3)/4*4
		if len(b) < padded {
			return nil, ErrMalformedOption
		}
		opts = append(opts, Option{Code: b[0], Data: append([]byte(nil), b[4:4+n]...)})
		b = b[padded:]
	}
	return opts, nil
}

func appendOptions(b []byte, opts []Option) []byte {
	for _, o := range opts {
		b = append(b, o.Code, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.Data)))
		b = append(b, o.Data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

// addr16 is an address as PCP carries it: IPv6, or IPv4-mapped IPv6.
func addr16(a netip.Addr) []byte {
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	b := a.As16()
	return b[:]
}

// opData is the opcode-specific part of MAP and PEER, laid out alike in
// requests and responses (sections 11.1 and 12.1): external is the
// suggested endpoint of a request, the assigned one of a response.
type opData struct {
	nonce    Nonce
	protocol uint8
	internal uint16
	external netip.AddrPort
	peer     netip.AddrPort
}

func (d opData) append(b []byte, opcode uint8) []byte {
	if opcode != OpMap && opcode != OpPeer {
		return b
	}
	b = append(b, d.nonce[:]...)
	b = append(b, d.protocol, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, d.internal)
	b = binary.BigEndian.AppendUint16(b, d.external.Port())
	b = append(b, addr16(d.external.Addr())...)
	if opcode == OpPeer {
		b = binary.BigEndian.AppendUint16(b, d.peer.Port())
		b = append(b, 0, 0)
		b = append(b, addr16(d.peer.Addr())...)
	}
	return b
}

// parseOpData reads it from b, which holds at least mapLen bytes (MAP)
// or peerLen (PEER).
func parseOpData(b []byte, opcode uint8) opData {
	d := opData{
		nonce:    Nonce(b[0:12]),
		protocol: b[12],
		internal: binary.BigEndian.Uint16(b[16:18]),
		external: netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[20:36])).Unmap(), binary.BigEndian.Uint16(b[18:20])),
	}
	if opcode == OpPeer {
		d.peer = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[40:56])).Unmap(), binary.BigEndian.Uint16(b[36:38]))
	}
	return d
}

// Marshal encodes the request.
func (r Request) Marshal() []byte {
	b := []byte{Version, r.Opcode, 0, 0}
	b = binary.BigEndian.AppendUint32(b, uint32(r.Lifetime/time.Second))
	b = append(b, addr16(r.Client)...)
	b = opData{r.Nonce, r.Protocol, r.Internal, r.Suggested, r.Peer}.append(b, r.Opcode)
	return appendOptions(b, r.Options)
}

// Marshal encodes the response.
func (r Response) Marshal() []byte {
	b := []byte{Version, opReply | r.Opcode, 0, r.Result}
	b = binary.BigEndian.AppendUint32(b, uint32(r.Lifetime/time.Second))
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	b = append(b, make([]byte, 12)...)
	b = opData{r.Nonce, r.Protocol, r.Internal, r.External, r.Peer}.append(b, r.Opcode)
	return appendOptions(b, r.Options)
}

// ErrNotResponse means a datagram is not a PCP response.
var ErrNotResponse = errors.New("not a PCP response")

// ParseResponse decodes a response.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < HeaderLen || len(b) > MaxLen || len(b)%4 != 0 || b[0] != Version || b[1]&opReply == 0 {
		return Response{}, ErrNotResponse
	}
	r := Response{
		Opcode:   b[1] &^ opReply,
		Result:   b[3],
		Lifetime: time.Duration(binary.BigEndian.Uint32(b[4:8])) * time.Second,
		Epoch:    binary.BigEndian.Uint32(b[8:12]),
	}
	rest := b[HeaderLen:]
	if r.Opcode == OpMap || r.Opcode == OpPeer {
		n := mapLen
		if r.Opcode == OpPeer {
			n = peerLen
		}
		if len(rest) < n {
			if r.Result != Success {
				// An error answering a request too short to copy.
				return r, nil
			}
			return Response{}, ErrNotResponse
		}
		d := parseOpData(rest, r.Opcode)
		r.Nonce, r.Protocol, r.Internal, r.External, r.Peer = d.nonce, d.protocol, d.internal, d.external, d.peer
		rest = rest[n:]
	}
	opts, err := parseOptions(rest)
	if err != nil {
		return Response{}, ErrNotResponse
	}
	r.Options = opts
	return r, nil
}

// ErrorResponse is the answer to a request that fails with result: its
// opcode-specific fields copied from the request, so that the client can
// match it, with the error's lifetime.
func ErrorResponse(req Request, result uint8, epoch uint32) Response {
	lifetime := LongErrorLifetime
	if ShortLived(result) {
		lifetime = ShortErrorLifetime
	}
	return Response{
		Opcode: req.Opcode, Result: result, Lifetime: lifetime, Epoch: epoch,
		Nonce: req.Nonce, Protocol: req.Protocol, Internal: req.Internal, External: req.Suggested, Peer: req.Peer,
	}
}

// HeaderError is the answer to a datagram whose opcode-specific part
// cannot be read (a version it does not speak, a malformed request):
// the common header only, with version 2, which tells a client of another
// version what this server speaks (section 9). A NAT-PMP client reads
// its bytes 2 and 3 as NAT-PMP's result, 1 for UNSUPP_VERSION: the field
// was laid out so.
func HeaderError(b []byte, result uint8, epoch uint32) []byte {
	op := byte(0)
	if len(b) > 1 {
		op = b[1] &^ opReply
	}
	lifetime := LongErrorLifetime
	if ShortLived(result) {
		lifetime = ShortErrorLifetime
	}
	return Response{Opcode: op, Result: result, Lifetime: lifetime, Epoch: epoch}.Marshal()[:HeaderLen]
}
