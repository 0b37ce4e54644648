// Package natpmp is NAT-PMP (RFC 6886), the protocol a host uses to ask
// its home router itself for a port forward, as game consoles and
// BitTorrent clients do, its successor PCP (RFC 6887, wire format in
// package pcp) on the same port, and UPnP's Internet Gateway Device: a
// server natlab runs on a NAT node's LAN address, which turns each
// request of any of them into an element of the NAT's nftables maps, and
// a client of NAT-PMP and PCP.
package natpmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Opcodes.
const (
	opAddress = 0
	opMapUDP  = 1
	opMapTCP  = 2
	opReply   = 128
)

// Result codes (RFC 6886 section 3.5).
const (
	ResultSuccess            = 0
	ResultUnsupportedVersion = 1
	ResultNotAuthorized      = 2
	ResultNetworkFailure     = 3
	ResultOutOfResources     = 4
	ResultUnsupportedOpcode  = 5
)

var resultText = map[uint16]string{
	ResultUnsupportedVersion: "unsupported version",
	ResultNotAuthorized:      "not authorized",
	ResultNetworkFailure:     "network failure",
	ResultOutOfResources:     "out of resources",
	ResultUnsupportedOpcode:  "unsupported opcode",
}

// Request is a decoded request.
type Request struct {
	// Proto is "" for an external address request, else "udp" or "tcp".
	Proto     string
	Internal  uint16
	Suggested uint16
	Lifetime  time.Duration
}

// ErrMalformed means a datagram is not a NAT-PMP request.
var ErrMalformed = errors.New("not a NAT-PMP request")

// ParseRequest decodes a request. A request of another version or opcode
// returns the result code to answer with.
func ParseRequest(b []byte) (Request, uint16, error) {
	if len(b) < 2 {
		return Request{}, 0, ErrMalformed
	}
	if b[0] != 0 {
		return Request{}, ResultUnsupportedVersion, nil
	}
	switch b[1] {
	case opAddress:
		if len(b) != 2 {
			return Request{}, 0, ErrMalformed
		}
		return Request{}, ResultSuccess, nil
	case opMapUDP, opMapTCP:
		if len(b) != 12 {
			return Request{}, 0, ErrMalformed
		}
		r := Request{Proto: "udp", Internal: binary.BigEndian.Uint16(b[4:6]), Suggested: binary.BigEndian.Uint16(b[6:8]),
			Lifetime: time.Duration(binary.BigEndian.Uint32(b[8:12])) * time.Second}
		if b[1] == opMapTCP {
			r.Proto = "tcp"
		}
		return r, ResultSuccess, nil
	}
	return Request{}, ResultUnsupportedOpcode, nil
}

// addressReply encodes the answer to an external address request.
func addressReply(result uint16, epoch uint32, public netip.Addr) []byte {
	b := []byte{0, opReply + opAddress}
	b = binary.BigEndian.AppendUint16(b, result)
	b = binary.BigEndian.AppendUint32(b, epoch)
	a := public.As4()
	return append(b, a[:]...)
}

// mapReply encodes the answer to a mapping request.
func mapReply(op byte, result uint16, epoch uint32, internal, external uint16, lifetime time.Duration) []byte {
	b := []byte{0, opReply + op}
	b = binary.BigEndian.AppendUint16(b, result)
	b = binary.BigEndian.AppendUint32(b, epoch)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	return binary.BigEndian.AppendUint32(b, uint32(lifetime/time.Second))
}

// errorReply answers a request that cannot be served.
func errorReply(op byte, result uint16, epoch uint32) []byte {
	if op == opMapUDP || op == opMapTCP {
		return mapReply(op, result, epoch, 0, 0, 0)
	}
	return addressReply(result, epoch, netip.IPv4Unspecified())
}

func opcode(proto string) byte {
	if proto == "tcp" {
		return opMapTCP
	}
	return opMapUDP
}

// Mapping is what a server granted.
type Mapping struct {
	Proto    string
	Internal uint16
	External uint16
	Lifetime time.Duration
}

func parseMapReply(b []byte, op byte) (Mapping, error) {
	if len(b) != 16 || b[0] != 0 || b[1] != opReply+op {
		return Mapping{}, ErrMalformed
	}
	if res := binary.BigEndian.Uint16(b[2:4]); res != ResultSuccess {
		return Mapping{}, fmt.Errorf("NAT-PMP: %s (result %d)", resultText[res], res)
	}
	return Mapping{
		Internal: binary.BigEndian.Uint16(b[8:10]),
		External: binary.BigEndian.Uint16(b[10:12]),
		Lifetime: time.Duration(binary.BigEndian.Uint32(b[12:16])) * time.Second,
	}, nil
}
