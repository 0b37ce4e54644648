package natpmp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/pcp"
)

// answerPCP answers a PCP request (RFC 6887): ANNOUNCE, MAP and PEER.
func (s *Server) answerPCP(from netip.AddrPort, b []byte, logf func(string, ...any)) []byte {
	req, err := pcp.ParseRequest(b)
	var perr *pcp.Error
	if errors.As(err, &perr) {
		if perr == pcp.ErrMalformedOption && (req.Opcode == pcp.OpMap || req.Opcode == pcp.OpPeer) {
			return pcp.ErrorResponse(req, perr.Result, s.epoch()).Marshal()
		}
		return pcp.HeaderError(b, perr.Result, s.epoch())
	}
	fail := func(result uint8) []byte { return pcp.ErrorResponse(req, result, s.epoch()).Marshal() }
	switch {
	case !s.cfg.LAN.Contains(from.Addr()):
		return fail(pcp.NotAuthorized)
	case req.Client != from.Addr():
		// A NAT between the client and this server (section 8.1).
		return fail(pcp.AddressMismatch)
	}
	preferFailure := false
	for _, o := range req.Options {
		switch {
		case o.Code == pcp.OptPreferFailure && req.Opcode == pcp.OpMap:
			preferFailure = true
		case o.Code == pcp.OptPreferFailure:
			return fail(pcp.MalformedOption)
		case o.Code < 128:
			// THIRD_PARTY and FILTER, and any other that must be
			// understood: natlab's NATs do neither.
			return fail(pcp.UnsuppOption)
		}
	}
	switch req.Opcode {
	case pcp.OpAnnounce:
		return pcp.Response{Opcode: pcp.OpAnnounce, Result: pcp.Success, Epoch: s.epoch()}.Marshal()
	case pcp.OpMap:
		return s.mapPCP(from, req, preferFailure, logf)
	}
	return s.peerPCP(from, req, logf)
}

// check reads MAP's and PEER's common fields: the protocol and the
// internal port.
func check(req pcp.Request) (string, uint8) {
	proto := pcp.ProtoName(req.Protocol)
	switch {
	case proto == "":
		// 0, all protocols, included: natlab maps UDP and TCP ports.
		return "", pcp.UnsuppProtocol
	case req.Internal == 0:
		return "", pcp.MalformedRequest
	}
	return proto, pcp.Success
}

func (s *Server) mapPCP(from netip.AddrPort, req pcp.Request, preferFailure bool, logf func(string, ...any)) []byte {
	fail := func(result uint8) []byte { return pcp.ErrorResponse(req, result, s.epoch()).Marshal() }
	proto, result := check(req)
	if result != pcp.Success {
		return fail(result)
	}
	if preferFailure && req.Suggested.Addr().IsValid() && !req.Suggested.Addr().IsUnspecified() && req.Suggested.Addr() != s.cfg.Public {
		return fail(pcp.CannotProvideExt)
	}
	nonce := req.Nonce
	m, err := s.grant(lease{proto: proto, internal: netip.AddrPortFrom(from.Addr(), req.Internal), suggested: req.Suggested.Port(),
		lifetime: req.Lifetime, by: nattable.ByPCP, nonce: &nonce, exactly: preferFailure})
	switch {
	case errors.Is(err, errNonce):
		return fail(pcp.NotAuthorized)
	case errors.Is(err, errNotOffered):
		return fail(pcp.CannotProvideExt)
	case err != nil:
		logf("pcp: %v: %v", from, err)
		return fail(pcp.NoResources)
	}
	if req.Lifetime > 0 {
		logf("pcp: %s %v:%d -> %v:%d for %v", proto, s.cfg.Public, m.External, from.Addr(), req.Internal, m.Lifetime)
	}
	resp := pcp.Response{Opcode: pcp.OpMap, Result: pcp.Success, Lifetime: m.Lifetime, Epoch: s.epoch(),
		Nonce: req.Nonce, Protocol: req.Protocol, Internal: req.Internal, External: netip.AddrPortFrom(s.cfg.Public, m.External)}
	if preferFailure {
		resp.Options = []pcp.Option{{Code: pcp.OptPreferFailure}}
	}
	return resp.Marshal()
}

// peerPCP answers PEER (section 12): the mapping of the 5-tuple internal
// endpoint, protocol, remote peer, as the host's own traffic to the peer
// would use it. A flow the NAT already tracks for it gives it; otherwise
// the mapping the endpoint has under endpoint-independent mapping; and
// failing both, the server makes the mapping in the NAT's maps as its own
// translation would, with the lifetime asked for, so that the host's
// first packet to the peer leaves by the port the answer names. The same
// nonce renews it and, with lifetime 0, gives it up; another nonce may
// do neither (NOT_AUTHORIZED), as for MAP. Under
// address-and-port-dependent mapping the kernel's conntrack is the only
// mapping there is, which a new flow makes: such a NAT answers PEER for a
// flow it tracks, and NO_RESOURCES before there is one.
func (s *Server) peerPCP(from netip.AddrPort, req pcp.Request, logf func(string, ...any)) []byte {
	fail := func(result uint8) []byte { return pcp.ErrorResponse(req, result, s.epoch()).Marshal() }
	proto, result := check(req)
	switch {
	case result != pcp.Success:
		return fail(result)
	case !req.Peer.Addr().Is4() || req.Peer.Addr().IsUnspecified() || req.Peer.Port() == 0:
		return fail(pcp.MalformedRequest)
	}
	internal := netip.AddrPortFrom(from.Addr(), req.Internal)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	external, lifetime, err := s.peer(ctx, proto, internal, req.Peer, req.Nonce, min(req.Lifetime, MaxLifetime))
	switch {
	case errors.Is(err, errNonce):
		return fail(pcp.NotAuthorized)
	case err != nil:
		logf("pcp: peer %v -> %v: %v", internal, req.Peer, err)
		return fail(pcp.NoResources)
	}
	logf("pcp: peer %s %v -> %v by %v:%d for %v", proto, internal, req.Peer, s.cfg.Public, external, lifetime)
	return pcp.Response{Opcode: pcp.OpPeer, Result: pcp.Success, Lifetime: lifetime, Epoch: s.epoch(),
		Nonce: req.Nonce, Protocol: req.Protocol, Internal: req.Internal,
		External: netip.AddrPortFrom(s.cfg.Public, external), Peer: req.Peer}.Marshal()
}

// errNoMapping is a PEER the NAT cannot make a mapping for ahead of the
// traffic.
var errNoMapping = errors.New("no mapping yet, and this NAT makes its mappings from traffic only")

// peerKey is the 5-tuple of a PEER mapping (with the NAT's own public
// address, the sixth part, fixed).
type peerKey struct {
	proto            string
	internal, remote netip.AddrPort
}

// peerGrant is a PEER mapping a client holds: its nonce, like a MAP's,
// renews and deletes it. The elements are those the server added to the
// NAT's maps, none for a mapping the traffic had made.
type peerGrant struct {
	nonce    pcp.Nonce
	external uint16
	expires  time.Time
	elems    []setElement
}

// peer finds or makes the mapping of internal's traffic to remote, and
// says for how long it holds; lifetime 0 gives the mapping up, removing
// what the server had added for it (the mapping of the traffic itself
// lives on while the traffic does).
func (s *Server) peer(ctx context.Context, proto string, internal, remote netip.AddrPort, nonce pcp.Nonce, lifetime time.Duration) (uint16, time.Duration, error) {
	key := peerKey{proto, internal, remote}
	s.mu.Lock()
	g, had := s.peers[key]
	if had && time.Now().After(g.expires) {
		delete(s.peers, key)
		had = false
	}
	s.mu.Unlock()
	switch {
	case had && g.nonce != nonce:
		return 0, 0, errNonce
	case lifetime == 0:
		s.mu.Lock()
		delete(s.peers, key)
		s.mu.Unlock()
		return g.external, 0, s.setElements(g.elems, false)
	case had && len(g.elems) > 0:
		// Renewed: the elements again, with the new lifetime.
		for i := range g.elems {
			g.elems[i].elem.Timeout = lifetime
		}
		if err := s.setElements(g.elems, true); err != nil {
			return 0, 0, err
		}
		g.expires = time.Now().Add(lifetime)
		s.mu.Lock()
		s.peers[key] = g
		s.mu.Unlock()
		return g.external, lifetime, nil
	}
	external, held, elems, err := s.peerMapping(ctx, key, lifetime)
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	s.peers[key] = peerGrant{nonce: nonce, external: external, expires: time.Now().Add(held), elems: elems}
	s.mu.Unlock()
	return external, held, nil
}

// peerMapping is the mapping of key's traffic: a flow's, the endpoint's
// under endpoint-independent mapping, or, failing both, one it makes,
// returning the elements it added.
func (s *Server) peerMapping(ctx context.Context, key peerKey, lifetime time.Duration) (uint16, time.Duration, []setElement, error) {
	t, err := s.table(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	for _, f := range t.Flows {
		if f.Proto == key.proto && !f.Inbound && f.Private == key.internal && f.Remote == key.remote {
			return f.Public.Port(), min(lifetime, f.Expires), nil, nil
		}
	}
	// A PEER request makes a mapping ahead of the flow for UDP and TCP,
	// whose mappings follow the knobs in maps of their own (RFC 5382):
	// the host's first packet, a datagram or a SYN, then leaves by it.
	portsSet, mappingsSet, permitsSet, _, ok := natrules.TransportSets(key.proto)
	if !ok || s.cfg.Behaviour.Mapping == nat.AddressAndPortDependent {
		return 0, 0, nil, errNoMapping
	}
	if s.cfg.Behaviour.Mapping == nat.EndpointIndependent {
		mappings := t.Mappings
		if key.proto == "tcp" {
			mappings = t.TCPMappings
		}
		i := slices.IndexFunc(mappings, func(m nattable.Mapping) bool { return m.Private == key.internal })
		if i >= 0 {
			return mappings[i].Public.Port(), min(lifetime, mappings[i].Expires), nil, nil
		}
	}
	s.mu.Lock()
	external, err := s.pick(key.proto, 0)
	s.mu.Unlock()
	if err != nil {
		return 0, 0, nil, err
	}
	m := natrules.Mapping{Private: key.internal, Public: external}
	if s.cfg.Behaviour.Mapping == nat.AddressDependent {
		m.Remote = key.remote.Addr()
	}
	elems := []setElement{
		{portsSet, natrules.Owner{Public: external, Private: key.internal}.Element(lifetime)},
		{mappingsSet, m.Element(lifetime)},
	}
	if s.cfg.Behaviour.Filtering == nat.AddressDependent {
		// Under address-dependent filtering the permits let the peer in;
		// under port-dependent filtering conntrack does, once the host
		// has sent.
		elems = append(elems, setElement{permitsSet, natrules.Permit{Remote: key.remote.Addr(), Public: external}.Element(lifetime)})
	}
	if err := s.setElements(elems, true); err != nil {
		return 0, 0, nil, fmt.Errorf("the mapping of %v to %v: %w", key.internal, key.remote, err)
	}
	return external, lifetime, elems, nil
}

// table reads the NAT's table in the namespace the server runs in.
func (s *Server) table(ctx context.Context) (*nattable.Table, error) {
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return nattable.Read(ctx, int(ns.Fd()), s.cfg.Public)
}
