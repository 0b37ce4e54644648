package natpmp

import (
	"cmp"
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
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/pcp"
	"github.com/natlab/natlab/service"
)

// MaxLifetime caps what a host may ask for, as RFC 6886 and RFC 6887
// allow.
const MaxLifetime = 24 * time.Hour

// Config says where a server listens and what it serves.
type Config struct {
	// Gateway is the NAT's LAN address, where the server listens;
	// requests from outside LAN are refused.
	Gateway netip.Addr
	LAN     netip.Prefix
	// Public is the NAT's public address.
	Public netip.Addr
	// Behaviour is the NAT's: the range its public ports come from, and
	// its mapping, which says where a PEER request's mapping is kept.
	Behaviour nat.Behaviour
	// NATPMP and PCP say which protocols the server speaks; the other's
	// requests get UNSUPP_VERSION, as RFC 6887 appendix A has it.
	NATPMP, PCP bool
	// UPnP adds UPnP's Internet Gateway Device: SSDP on the LAN, and
	// the device description and its control on service.UPnPPort.
	UPnP bool
}

// Server answers NAT-PMP and PCP on a NAT's LAN address, one UDP port for
// both told apart by the version byte, and UPnP IGD where configured, by
// editing the NAT's nftables maps in the namespace it runs in. The leases
// of all three are one store: a mapping one made another renews, lists or
// deletes, and natlab table lists them all.
type Server struct {
	conn  *net.UDPConn
	cfg   Config
	start time.Time
	// closed ends the announcements when the server closes.
	closed chan struct{}

	// upnp is nil unless the server speaks UPnP.
	upnp *upnp

	mu sync.Mutex
	// granted holds each host endpoint's mapping: internal -> external.
	granted map[grantKey]grant
	// peers holds the PEER mappings clients asked for.
	peers map[peerKey]peerGrant
}

type grantKey struct {
	proto    string
	internal netip.AddrPort
}

type grant struct {
	external uint16
	expires  time.Time
	// nonce is the PCP nonce of the client that holds the mapping
	// (RFC 6887 section 11.1); a NAT-PMP lease has none, and the first
	// PCP request for it takes it over.
	nonce    pcp.Nonce
	hasNonce bool
}

// Listen opens the server's socket on cfg.Gateway (inside the NAT's
// namespace).
func Listen(cfg Config) (*Server, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Gateway, service.NATPMPPort)))
	if err != nil {
		return nil, fmt.Errorf("nat-pmp: %w", err)
	}
	s := &Server{conn: c, cfg: cfg, start: time.Now(), closed: make(chan struct{}),
		granted: map[grantKey]grant{}, peers: map[peerKey]peerGrant{}}
	if cfg.UPnP {
		if err := s.listenUPnP(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	err := s.conn.Close()
	if s.upnp != nil {
		err = cmp.Or(s.upnp.close(), err)
	}
	return err
}

// Serve answers requests until Close, and returns once every goroutine
// it started has.
func (s *Server) Serve(logf func(string, ...any)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.upnp != nil {
		wg.Go(func() { s.serveUPnP(logf) })
	}
	wg.Go(s.announce)
	buf := make([]byte, pcp.MaxLen+1)
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

// AnnouncePort is where hosts listen for a gateway's announcements, on
// the all-hosts group 224.0.0.1 (RFC 6886 section 3.2.1, RFC 6887
// section 8.5).
const AnnouncePort = 5350

// announce tells the LAN that the server has (re)started, as both RFCs
// have a gateway do when it boots or its epoch starts again: NAT-PMP's
// external address answer and PCP's ANNOUNCE answer, each of the
// protocols the NAT speaks, to 224.0.0.1:5350, ten times at 250 ms
// doubling, so that clients learn at once that their mappings are gone.
// The socket is bound to the LAN address, so Linux sends the multicast out
// of the LAN, not along the default route.
func (s *Server) announce() {
	if !s.cfg.NATPMP && !s.cfg.PCP {
		return
	}
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 1}), AnnouncePort)
	wait := 250 * time.Millisecond
	for range 10 {
		if s.cfg.NATPMP {
			s.conn.WriteToUDPAddrPort(addressReply(ResultSuccess, s.epoch(), s.cfg.Public), to)
		}
		if s.cfg.PCP {
			s.conn.WriteToUDPAddrPort(pcp.Response{Opcode: pcp.OpAnnounce, Result: pcp.Success, Epoch: s.epoch()}.Marshal(), to)
		}
		select {
		case <-s.closed:
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// epoch is the seconds since the server started: both protocols' epoch,
// which starts again when the NAT reboots, telling clients their
// mappings are gone.
func (s *Server) epoch() uint32 { return uint32(time.Since(s.start) / time.Second) }

// answer dispatches on the version byte (RFC 6887 appendix A): 0 is
// NAT-PMP, 2 PCP. A version the server does not speak gets
// UNSUPP_VERSION in the format of the newest one it does, which is what
// tells a client what to fall back to.
func (s *Server) answer(from netip.AddrPort, b []byte, logf func(string, ...any)) []byte {
	if len(b) < 2 || b[1]&opReply != 0 {
		// Too short to answer, or a response: silently dropped, as both
		// RFCs say.
		return nil
	}
	switch {
	case b[0] == 0 && s.cfg.NATPMP:
		return s.answerNATPMP(from, b, logf)
	case b[0] == pcp.Version && s.cfg.PCP:
		return s.answerPCP(from, b, logf)
	case s.cfg.PCP:
		return pcp.HeaderError(b, pcp.UnsuppVersion, s.epoch())
	case !s.cfg.NATPMP:
		// UPnP only: nothing answers on this port.
		return nil
	}
	return errorReply(b[1], ResultUnsupportedVersion, s.epoch())
}

func (s *Server) answerNATPMP(from netip.AddrPort, b []byte, logf func(string, ...any)) []byte {
	req, result, err := ParseRequest(b)
	if err != nil {
		return nil
	}
	op := b[1]
	if result != ResultSuccess {
		return errorReply(op, result, s.epoch())
	}
	if !s.cfg.LAN.Contains(from.Addr()) {
		return errorReply(op, ResultNotAuthorized, s.epoch())
	}
	if req.Proto == "" {
		return addressReply(ResultSuccess, s.epoch(), s.cfg.Public)
	}
	m, err := s.grant(lease{proto: req.Proto, internal: netip.AddrPortFrom(from.Addr(), req.Internal), suggested: req.Suggested, lifetime: req.Lifetime, by: nattable.ByNATPMP})
	if err != nil {
		logf("nat-pmp: %v: %v", from, err)
		return errorReply(op, ResultOutOfResources, s.epoch())
	}
	if req.Lifetime > 0 {
		logf("nat-pmp: %s %v:%d -> %v:%d for %v", req.Proto, s.cfg.Public, m.External, from.Addr(), req.Internal, m.Lifetime)
	} else {
		// RFC 6886 section 3.4: a deletion is answered with external
		// port 0.
		m.External = 0
	}
	return mapReply(op, ResultSuccess, s.epoch(), req.Internal, m.External, m.Lifetime)
}

// lease is a request for a mapping, of any of the protocols.
type lease struct {
	proto     string
	internal  netip.AddrPort
	suggested uint16
	lifetime  time.Duration
	// by is the protocol asking, nattable.ByNATPMP, ByPCP or ByUPnP.
	by string
	// nonce is a PCP request's; a NAT-PMP request has none.
	nonce *pcp.Nonce
	// exactly refuses any port but the suggested one (PCP's
	// PREFER_FAILURE, and UPnP's AddPortMapping).
	exactly bool
}

// Errors of grant that a protocol answers with a result code of its own.
var (
	errNonce      = errors.New("the mapping is another client's: its nonce differs")
	errNotOffered = errors.New("the suggested port is taken")
)

// grant creates, renews or (lifetime 0) deletes a mapping.
func (s *Server) grant(req lease) (Mapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := grantKey{req.proto, req.internal}
	now := time.Now()
	old, had := s.granted[key]
	if had && now.After(old.expires) {
		had = false
	}
	if had && req.nonce != nil && old.hasNonce && old.nonce != *req.nonce {
		return Mapping{}, errNonce
	}
	if req.lifetime == 0 {
		if had {
			delete(s.granted, key)
			if err := s.apply(req.proto, old.external, req.internal, 0, req.by); err != nil {
				return Mapping{}, err
			}
		}
		return Mapping{Proto: req.proto, Internal: req.internal.Port(), External: old.external}, nil
	}
	lifetime := min(req.lifetime, MaxLifetime)
	external := old.external
	if !had {
		// A host that already sends from this port has a public port for
		// it (endpoint-independent mapping): a real router grants that
		// one (RFC 6886 section 3.3), whatever port was suggested, so that
		// the socket keeps one public endpoint for every destination.
		mapped, ok, err := s.mapped(req.proto, req.internal)
		switch {
		case err != nil:
			return Mapping{}, err
		case ok:
			external = mapped
		default:
			if external, err = s.pick(req.proto, req.suggested); err != nil {
				return Mapping{}, err
			}
		}
	}
	if req.exactly && req.suggested != 0 && external != req.suggested {
		return Mapping{}, errNotOffered
	}
	if err := s.apply(req.proto, external, req.internal, lifetime, req.by); err != nil {
		return Mapping{}, err
	}
	g := grant{external: external, expires: now.Add(lifetime), nonce: old.nonce, hasNonce: had && old.hasNonce}
	if req.nonce != nil {
		g.nonce, g.hasNonce = *req.nonce, true
	}
	s.granted[key] = g
	return Mapping{Proto: req.proto, Internal: req.internal.Port(), External: external, Lifetime: lifetime}, nil
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
		p := uint16(int(s.cfg.Behaviour.PortRange.First) + rand.IntN(s.cfg.Behaviour.PortRange.Size()))
		if !taken[p] {
			return p, nil
		}
	}
	return 0, errors.New("no free public port")
}

// taken lists the public ports a mapping of proto already holds: the
// server's own grants, and every port in the NAT's ports map of proto.
func (s *Server) taken(proto string) (map[uint16]bool, error) {
	taken := map[uint16]bool{}
	now := time.Now()
	for k, g := range s.granted {
		if k.proto == proto && now.Before(g.expires) {
			taken[g.external] = true
		}
	}
	owners, err := portOwners(proto)
	if err != nil {
		return nil, err
	}
	for _, o := range owners {
		taken[o.Public] = true
	}
	return taken, nil
}

// mapped finds the public port the NAT already maps internal to: the
// port of proto's ports map that internal owns.
func (s *Server) mapped(proto string, internal netip.AddrPort) (uint16, bool, error) {
	owners, err := portOwners(proto)
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

// portOwners reads the NAT's ports map of proto (UDP's or TCP's): which
// private endpoint owns each public port.
func portOwners(proto string) ([]natrules.Owner, error) {
	name, _, _, _, ok := natrules.TransportSets(proto)
	if !ok {
		return nil, fmt.Errorf("no ports map for protocol %q", proto)
	}
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	set, err := conn.GetSetByName(natrules.Table(), name)
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
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
		owners = append(owners, o)
	}
	return owners, nil
}

// apply writes the mapping into the NAT's maps (lifetime 0 removes it),
// the elements natrules.Lease says a lease has, marked as asked by by.
func (s *Server) apply(proto string, external uint16, internal netip.AddrPort, lifetime time.Duration, by string) error {
	entries, err := natrules.Lease(proto, external, internal, lifetime, by)
	if err != nil {
		return err
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	var elems []setElement
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
		elems = append(elems, setElement{e.Set, e.Element})
	}
	// Renewing is deleting and adding again (setElements).
	return s.setElements(elems, lifetime > 0)
}

// setElement is an element of one of the NAT's maps.
type setElement struct {
	set  string
	elem nftables.SetElement
}

// setElements adds elems to the NAT's maps (deleting each first, as an
// element's timeout is set when it is added), or deletes them.
func (s *Server) setElements(elems []setElement, add bool) error {
	if len(elems) == 0 {
		return nil
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	for _, e := range elems {
		set, err := conn.GetSetByName(natrules.Table(), e.set)
		if err != nil {
			return fmt.Errorf("map %s: %w", e.set, err)
		}
		// The delete fails harmlessly when there is nothing to delete,
		// so it is a transaction of its own.
		conn.SetDeleteElements(set, []nftables.SetElement{{Key: e.elem.Key}})
		conn.Flush()
		if !add {
			continue
		}
		if err := conn.SetAddElements(set, []nftables.SetElement{e.elem}); err != nil {
			return err
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("map %s: %w", e.set, err)
		}
	}
	return nil
}
