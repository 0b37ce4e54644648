package topology

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The readers of upgrade, portmap, tunnel and table steps.

// DefaultPortmapLifetime is how long a portmap step asks its mapping to
// last unless the step says otherwise: NAT-PMP's recommended lifetime
// (RFC 6886 section 3.3).
const DefaultPortmapLifetime = time.Hour

// Limits of a portmap step's lifetime: under a second a mapping is gone
// before it can be used; a day is longer than any script.
const (
	minPortmapLifetime = time.Second
	maxPortmapLifetime = 24 * time.Hour
)

// minTunnelPort is the lowest public port a tunnel server gives out: the
// ports below are the well-known ones.
const minTunnelPort = 1024

// upgrade reads an upgrade step: a relay to start on (a DERP server, or a
// TURN server), and a STUN server to find the direct path with.
func (r *stepReader) upgrade() {
	s, p := r.s, r.p
	r.between()
	relay := ServiceDERP
	if v := r.field("server"); v != nil {
		// A server with derp or turn.
		name, n := r.node(v, joinPath(r.path, "server"), nodeWant{kinds: []Kind{KindServer}})
		switch {
		case n == nil:
		case slices.Contains(n.node.Services, ServiceDERP):
			s.Server = name
		case slices.Contains(n.node.Services, ServiceTURN):
			s.Server = name
		default:
			r.errorf(v.pos, "%s.server: %s runs neither derp nor turn, and upgrade starts on one of them", r.path, name)
		}
		if n != nil && s.Server == "" && !n.servicesBad {
			r.ok = false
		}
	} else if p.firstServer(ServiceDERP) != nil {
		s.Server, _ = r.defaultServer(ServiceDERP, true)
	} else {
		relay = ServiceTURN
	}
	if r.field("server") == nil && relay == ServiceTURN && p.servicesKnown() && p.firstServer(ServiceTURN) == nil && p.firstServer(ServiceSTUN) == nil {
		// One message for both.
		r.errorf(s.Pos, "%s: upgrade needs a server with services: [derp] or [turn] to start on and one with services: [stun] to find the direct path, and the lab has neither; add one such as relay: {kind: server, services: [derp, stun]}", r.path)
	} else {
		if r.field("server") == nil && relay == ServiceTURN {
			s.Server, _ = r.defaultServer(ServiceTURN, true)
		}
		s.STUN, _ = r.defaultServer(ServiceSTUN, true)
	}
	s.Name = fmt.Sprintf("upgrade %s %s", s.Between[0], s.Between[1])
}

// portmap reads a portmap step.
func (r *stepReader) portmap() {
	s := r.s
	if v := r.field("from"); v != nil {
		path := joinPath(r.path, "from")
		var from *nodeSpec
		s.From, from = r.node(v, path, hostsOnly)
		if from != nil {
			r.natPMP(v, path, from)
		}
	}
	s.Proto = TCP
	if v := r.field("proto"); v != nil {
		proto, ok := r.p.protocol(v, joinPath(r.path, "proto"))
		s.Proto = proto
		r.check(ok)
	}
	if v := r.field("port"); v != nil {
		port, ok := r.p.port(v, joinPath(r.path, "port"))
		s.Port = port
		r.check(ok)
	}
	s.PublicPort = s.Port
	if v := r.field("public-port"); v != nil {
		port, ok := r.p.port(v, joinPath(r.path, "public-port"))
		s.PublicPort = port
		r.check(ok)
	}
	s.Lifetime = DefaultPortmapLifetime
	if v := r.field("lifetime"); v != nil {
		d, ok := r.p.duration(v, joinPath(r.path, "lifetime"), minPortmapLifetime, maxPortmapLifetime)
		s.Lifetime = d
		r.check(ok)
	}
	s.Name = fmt.Sprintf("portmap %s %s %d", s.From, s.Proto, s.Port)
	if s.PublicPort != s.Port {
		s.Name += fmt.Sprintf(" -> %d", s.PublicPort)
	}
}

// natPMP checks that host from, named by v, is right behind a NAT it can
// ask for a mapping.
func (r *stepReader) natPMP(v *value, path string, from *nodeSpec) {
	parent := from.parent
	switch {
	case !from.uplinkKnown:
		// Its behind: was already reported.
		r.ok = false
	case parent == nil:
		var names []string
		for _, n := range r.p.nodes {
			if n.ok && n.node.Kind == KindHost && n.parent != nil && n.parent.node.NAT.PortMapping == PortMappingNATPMP {
				names = append(names, n.node.Name)
			}
		}
		msg := ", and no nat has port-mapping: nat-pmp"
		if len(names) > 0 {
			slices.Sort(names)
			msg = "; the hosts behind one are " + listNames(names)
		}
		r.errorf(v.pos, "%s: %s is on the internet, so no nat maps ports for it; want a host behind a nat with port-mapping: nat-pmp%s", path, from.node.Name, msg)
	case parent.nat.knobs.portMappingBad:
		// Its port-mapping: was already reported.
		r.ok = false
	case parent.node.NAT.PortMapping != PortMappingNATPMP:
		r.errorf(v.pos, "%s: %s is behind %s, whose port-mapping is none; add port-mapping: nat-pmp to %s", path, from.node.Name, parent.node.Name, parent.node.Name)
	}
}

// tunnel reads a tunnel step.
func (r *stepReader) tunnel() {
	s := r.s
	if v := r.field("from"); v != nil {
		s.From, _ = r.node(v, joinPath(r.path, "from"), hostsOnly)
	}
	s.Server, _ = r.server("server", ServiceTunnel, true)
	if v := r.field("port"); v != nil {
		port, ok := r.p.port(v, joinPath(r.path, "port"))
		s.Port = port
		r.check(ok)
	}
	if v := r.field("public-port"); v != nil {
		r.tunnelPublicPort(v, joinPath(r.path, "public-port"))
	}
	s.Name = fmt.Sprintf("tunnel %s %d", s.From, s.Port)
}

// tunnelPublicPort reads the public port a tunnel step asks its server
// for.
func (r *stepReader) tunnelPublicPort(v *value, path string) {
	const pick = "leave public-port out to have the tunnel server pick one"
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a port number from %d to 65535, not %s; %s", path, minTunnelPort, v.describe(), pick)
	case 0 < n && n < minTunnelPort:
		r.errorf(v.pos, "%s: port %s is below %d; a tunnel server gives out ports %d to 65535, so choose one of those, or %s", path, v.text, minTunnelPort, minTunnelPort, pick)
	case n < minTunnelPort || n > 65535:
		r.errorf(v.pos, "%s: port %s is out of range; want %d to 65535, or %s", path, v.text, minTunnelPort, pick)
	default:
		r.s.PublicPort = uint16(n)
	}
}

// table reads a table step.
func (r *stepReader) table() {
	s := r.s
	if v := r.field("node"); v != nil {
		s.Node, _ = r.node(v, joinPath(r.path, "node"), natsOnly)
	}
	s.Name = "table " + s.Node
}

// tableExpectKeys are the keys a table step's expect takes.
var tableExpectKeys = formatKeys[TableExpect]()

const tableExpectWant = "the size of the table, such as {mappings: 2, flows: 3}"

// tableExpect reads how many mappings and flows a table step expects.
func (r *stepReader) tableExpect(v *value, path string) {
	p := r.p
	switch v.kind {
	case kindMap:
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, tableExpectWant, v.describe())
		return
	}
	if len(v.entries) == 0 {
		r.errorf(v.pos, "%s: empty expectation; give %s or both, such as {mappings: 2}, or leave expect out to just read the table", path, strings.Join(tableExpectKeys, ", "))
		return
	}
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "mappings":
			r.s.Expect.Mappings = r.count(e.val, epath)
		case "flows":
			r.s.Expect.Flows = r.count(e.val, epath)
		default:
			r.ok = false
			p.unknownKey(e, epath, "a table step's expect", tableExpectKeys)
		}
	}
}

// maxCount is the largest count a table step expects.
const maxCount = 65535

// count reads a number of table entries, or returns nil after reporting
// why it is not one.
func (r *stepReader) count(v *value, path string) *int {
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a number from 0 to %d, not %s", path, maxCount, v.describe())
	case n < 0 || n > maxCount:
		r.errorf(v.pos, "%s: %s is out of range; want 0 to %d", path, v.text, maxCount)
	default:
		c := int(n)
		return &c
	}
	return nil
}
