package natpmp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/service"
)

// MaxLifetime caps what a host may ask for, as RFC 6886 allows.
const MaxLifetime = 24 * time.Hour

// Server answers NAT-PMP on a NAT's LAN address by editing the NAT's
// nftables maps in the namespace it runs in.
type Server struct {
	conn   *net.UDPConn
	lan    netip.Prefix
	public netip.Addr
	ports  nat.PortRange
	start  time.Time

	mu sync.Mutex
	// granted holds each host endpoint's mapping: internal -> external.
	granted map[grantKey]grant
}

type grantKey struct {
	proto    string
	internal netip.AddrPort
}

type grant struct {
	external uint16
	expires  time.Time
}

// Listen opens the server's socket on gateway (inside the NAT's
// namespace). Requests from outside lan are refused.
func Listen(gateway netip.Addr, lan netip.Prefix, public netip.Addr, ports nat.PortRange) (*Server, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(gateway, service.NATPMPPort)))
	if err != nil {
		return nil, fmt.Errorf("nat-pmp: %w", err)
	}
	return &Server{conn: c, lan: lan, public: public, ports: ports, start: time.Now(), granted: map[grantKey]grant{}}, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.conn.Close() }

// Serve answers requests until Close.
func (s *Server) Serve(logf func(string, ...any)) {
	buf := make([]byte, 64)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		reply := s.answer(from, buf[:n], logf)
		if reply != nil {
			s.conn.WriteToUDPAddrPort(reply, from)
		}
	}
}

func (s *Server) epoch() uint32 { return uint32(time.Since(s.start) / time.Second) }

func (s *Server) answer(from netip.AddrPort, b []byte, logf func(string, ...any)) []byte {
	req, result, err := ParseRequest(b)
	if err != nil {
		return nil
	}
	op := byte(0)
	if len(b) > 1 {
		op = b[1]
	}
	if result != ResultSuccess {
		return errorReply(op, result, s.epoch())
	}
	if !s.lan.Contains(from.Addr()) {
		return errorReply(op, ResultNotAuthorized, s.epoch())
	}
	if req.Proto == "" {
		return addressReply(ResultSuccess, s.epoch(), s.public)
	}
	m, err := s.grant(netip.AddrPortFrom(from.Addr(), req.Internal), req)
	if err != nil {
		logf("nat-pmp: %v: %v", from, err)
		return errorReply(op, ResultOutOfResources, s.epoch())
	}
	if req.Lifetime > 0 {
		logf("nat-pmp: %s %v:%d -> %v:%d for %v", req.Proto, s.public, m.External, from.Addr(), req.Internal, m.Lifetime)
	}
	return mapReply(op, ResultSuccess, s.epoch(), req.Internal, m.External, m.Lifetime)
}

// grant creates, renews or (lifetime 0) deletes a mapping.
func (s *Server) grant(internal netip.AddrPort, req Request) (Mapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := grantKey{req.Proto, internal}
	now := time.Now()
	old, had := s.granted[key]
	if had && now.After(old.expires) {
		had = false
	}
	if req.Lifetime == 0 {
		if had {
			delete(s.granted, key)
			if err := s.apply(req.Proto, old.external, internal, 0); err != nil {
				return Mapping{}, err
			}
		}
		return Mapping{Internal: internal.Port()}, nil
	}
	lifetime := min(req.Lifetime, MaxLifetime)
	external := old.external
	if !had {
		// A host that already sends from this port has a public port for
		// it (endpoint-independent mapping): a real router grants that
		// one (RFC 6886 section 3.3), whatever port was suggested, so that
		// the socket keeps one public endpoint for every destination.
		mapped, ok, err := s.mapped(req.Proto, internal)
		switch {
		case err != nil:
			return Mapping{}, err
		case ok:
			external = mapped
		default:
			if external, err = s.pick(req.Proto, req.Suggested); err != nil {
				return Mapping{}, err
			}
		}
	}
	if err := s.apply(req.Proto, external, internal, lifetime); err != nil {
		return Mapping{}, err
	}
	s.granted[key] = grant{external, now.Add(lifetime)}
	return Mapping{Proto: req.Proto, Internal: internal.Port(), External: external, Lifetime: lifetime}, nil
}

// pick chooses the public port: the suggested one if nobody holds it, else
// a free one from the NAT's range.
func (s *Server) pick(proto string, suggested uint16) (uint16, error) {
	taken, err := s.taken(proto)
	if err != nil {
		return 0, err
	}
	if suggested != 0 && !taken[suggested] {
		return suggested, nil
	}
	for i := 0; i < 64; i++ {
		p := uint16(int(s.ports.First) + rand.IntN(s.ports.Size()))
		if !taken[p] {
			return p, nil
		}
	}
	return 0, errors.New("no free public port")
}

// taken lists the public ports a mapping of proto already holds: the
// server's own grants, and for UDP every port in the NAT's ports map.
func (s *Server) taken(proto string) (map[uint16]bool, error) {
	taken := map[uint16]bool{}
	now := time.Now()
	for k, g := range s.granted {
		if k.proto == proto && now.Before(g.expires) {
			taken[g.external] = true
		}
	}
	if proto != "udp" {
		return taken, nil
	}
	owners, err := portOwners()
	if err != nil {
		return nil, err
	}
	for _, o := range owners {
		taken[o.Public] = true
	}
	return taken, nil
}

// mapped finds the public port the NAT already maps internal to, for
// UDP: the port of the ports map that internal owns.
func (s *Server) mapped(proto string, internal netip.AddrPort) (uint16, bool, error) {
	if proto != "udp" {
		return 0, false, nil
	}
	owners, err := portOwners()
	if err != nil {
		return 0, false, err
	}
	for _, o := range owners {
		if o.Private == internal {
			return o.Public, true, nil
		}
	}
	return 0, false, nil
}

// portOwners reads the NAT's ports map: which private endpoint owns each
// public UDP port.
func portOwners() ([]natrules.Owner, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	set, err := conn.GetSetByName(natrules.Table(), natrules.PortsSet)
	if err != nil {
		return nil, err
	}
	elems, err := conn.GetSetElements(set)
	if err != nil {
		return nil, err
	}
	owners := make([]natrules.Owner, 0, len(elems))
	for _, e := range elems {
		o, err := natrules.ParseOwner(e)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", natrules.PortsSet, err)
		}
		owners = append(owners, o)
	}
	return owners, nil
}

// apply writes the mapping into the NAT's maps (lifetime 0 removes it),
// the elements natrules.Lease says a lease has.
func (s *Server) apply(proto string, external uint16, internal netip.AddrPort, lifetime time.Duration) error {
	entries, err := natrules.Lease(proto, external, internal, lifetime)
	if err != nil {
		return err
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	for _, e := range entries {
		set, err := conn.GetSetByName(natrules.Table(), e.Set)
		if err != nil {
			if e.Optional {
				continue // no mappings map: address-and-port-dependent mapping
			}
			return fmt.Errorf("map %s: %w", e.Set, err)
		}
		if !e.Fits(set) {
			if e.Optional {
				continue // address-dependent mappings are keyed by the remote too
			}
			return fmt.Errorf("map %s: its elements are laid out otherwise than a lease's", e.Set)
		}
		// An element's timeout is set when it is added: renewing is
		// deleting and adding again. The delete fails harmlessly when
		// there is nothing to delete, so it is a transaction of its own.
		conn.SetDeleteElements(set, []nftables.SetElement{{Key: e.Element.Key}})
		conn.Flush()
		if lifetime == 0 {
			continue
		}
		if err := conn.SetAddElements(set, []nftables.SetElement{e.Element}); err != nil {
			return err
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("map %s: %w", e.Set, err)
		}
	}
	return nil
}
