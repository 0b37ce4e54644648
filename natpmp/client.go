package natpmp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/pcp"
	"github.com/natlab/natlab/service"
)

// Client asks a NAT-PMP or PCP server (the gateway) from a socket of the
// host's.
type Client struct {
	Conn    *net.UDPConn
	Gateway netip.Addr
}

// tries is the retransmission schedule: RFC 6886 starts at 250ms and
// doubles; a lab answers at once or not at all.
var tries = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// exchange sends req until an answer ok accepts comes from the gateway,
// the tries run out or ctx ends, whichever is first.
func (c *Client) exchange(ctx context.Context, req []byte, ok func([]byte) bool) ([]byte, error) {
	return c.exchangeAs(ctx, "NAT-PMP", req, ok)
}

// exchangeAs is exchange, its errors naming protocol.
func (c *Client) exchangeAs(ctx context.Context, protocol string, req []byte, ok func([]byte) bool) ([]byte, error) {
	return ask(ctx, c.Conn, protocol, netip.AddrPortFrom(c.Gateway, service.NATPMPPort), req, func(b []byte, from netip.AddrPort) bool {
		return from.Addr().Unmap() == c.Gateway && ok(b)
	})
}

// drain discards the datagrams queued on conn, reading without waiting
// (MSG_DONTWAIT) until none is left. A read with a short deadline did
// not do: a slow machine (make vm-test's emulated one) passed the
// deadline before the read began, and left the queue as it was.
func drain(conn *net.UDPConn, buf []byte) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		for {
			if _, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT); err != nil && err != unix.EINTR {
				return true
			}
		}
	})
}

// ask sends req from conn to to until an answer ok accepts comes, the
// tries run out or ctx ends, whichever is first; its errors name
// protocol.
func ask(ctx context.Context, conn *net.UDPConn, protocol string, to netip.AddrPort, req []byte, ok func(b []byte, from netip.AddrPort) bool) ([]byte, error) {
	buf := make([]byte, 1500)
	// A cancelled ctx ends the read under way; the socket is the
	// caller's again, without a deadline, once ask returns.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.SetReadDeadline(time.Now())
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
		conn.SetReadDeadline(time.Time{})
	}()
	// Answers still queued on the socket are to requests asked before,
	// which were sent again and answered twice: one would pass for this
	// request's answer when it asks the same with the same nonce, as a
	// PCP renewal does, and carry the old lifetime.
	drain(conn, buf)
	for _, wait := range tries {
		if _, err := conn.WriteToUDPAddrPort(req, to); err != nil {
			return nil, fmt.Errorf("%s: send to %v: %w", protocol, to, err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		// After the deadline is set: a ctx that ended before it was
		// would not be noticed until the deadline.
		if err := ended(ctx); err != nil {
			return nil, fmt.Errorf("%s: asking %v: %w", protocol, to, err)
		}
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: read: %w", protocol, err)
			}
			if ok(buf[:n], from) {
				return append([]byte(nil), buf[:n]...), nil
			}
		}
		if err := ended(ctx); err != nil {
			return nil, fmt.Errorf("%s: no answer from %v: %w", protocol, to, err)
		}
	}
	return nil, fmt.Errorf("%s: no answer from %v", protocol, to)
}

// ended is ctx's error, or context.DeadlineExceeded once its deadline
// has passed: a read whose deadline is ctx's may end before ctx's timer
// has marked it done.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// ExternalAddress asks for the NAT's public address.
func (c *Client) ExternalAddress(ctx context.Context) (netip.Addr, error) {
	b, err := c.exchange(ctx, []byte{0, opAddress}, func(b []byte) bool { return len(b) == 12 && b[1] == opReply+opAddress })
	if err != nil {
		return netip.Addr{}, err
	}
	if res := binary.BigEndian.Uint16(b[2:4]); res != ResultSuccess {
		return netip.Addr{}, fmt.Errorf("NAT-PMP: %s (result %d)", resultText[res], res)
	}
	return netip.AddrFrom4([4]byte(b[8:12])), nil
}

// Map asks for a forward of proto ("tcp" or "udp") from a public port
// (suggested, which the NAT may not grant) to the host's internal port.
// A zero lifetime deletes the mapping.
func (c *Client) Map(ctx context.Context, proto string, internal, suggested uint16, lifetime time.Duration) (Mapping, error) {
	op := opcode(proto)
	req := []byte{0, op, 0, 0}
	req = binary.BigEndian.AppendUint16(req, internal)
	req = binary.BigEndian.AppendUint16(req, suggested)
	req = binary.BigEndian.AppendUint32(req, uint32(lifetime/time.Second))
	b, err := c.exchange(ctx, req, func(b []byte) bool { return len(b) == 16 && b[1] == opReply+op })
	if err != nil {
		return Mapping{}, err
	}
	m, err := parseMapReply(b, op)
	m.Proto = proto
	return m, err
}

// PCP sends a PCP request (RFC 6887) and returns the server's response to
// it, whatever its result: the one of the request's opcode, and for MAP
// and PEER of its nonce. req.Client must be the host's address.
func (c *Client) PCP(ctx context.Context, req pcp.Request) (pcp.Response, error) {
	var resp pcp.Response
	_, err := c.exchangeAs(ctx, "PCP", req.Marshal(), func(b []byte) bool {
		r, err := pcp.ParseResponse(b)
		if err != nil || r.Opcode != req.Opcode || (r.Opcode != pcp.OpAnnounce && r.Result == pcp.Success && r.Nonce != req.Nonce) {
			return false
		}
		resp = r
		return true
	})
	return resp, err
}

// MapPCP asks by PCP's MAP opcode (RFC 6887 section 11) for a forward of
// proto from a public port (suggested) to the host's internal port. client
// is the host's own address, which a PCP request carries and the server
// checks against the packet's source. A zero lifetime deletes the
// mapping; the nonce is new for every call, so this client cannot renew
// a mapping it made before but only ask again.
func (c *Client) MapPCP(ctx context.Context, proto string, client netip.Addr, internal, suggested uint16, lifetime time.Duration) (netip.AddrPort, Mapping, error) {
	req := pcp.Request{Opcode: pcp.OpMap, Lifetime: lifetime, Client: client, Protocol: pcp.ProtoNumber(proto),
		Internal: internal, Suggested: netip.AddrPortFrom(netip.IPv4Unspecified(), suggested)}
	if _, err := rand.Read(req.Nonce[:]); err != nil {
		return netip.AddrPort{}, Mapping{}, fmt.Errorf("PCP: nonce: %w", err)
	}
	resp, err := c.PCP(ctx, req)
	if err != nil {
		return netip.AddrPort{}, Mapping{}, err
	}
	if resp.Result != pcp.Success {
		return netip.AddrPort{}, Mapping{}, fmt.Errorf("PCP: %s (result %d)", pcp.ResultText(resp.Result), resp.Result)
	}
	ext := netip.AddrPortFrom(resp.External.Addr().Unmap(), resp.External.Port())
	return ext, Mapping{Proto: proto, Internal: internal, External: ext.Port(), Lifetime: resp.Lifetime}, nil
}
