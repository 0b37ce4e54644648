package topology

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
)

// The readers of the fields that only some kinds of step take: the hosts a
// step connects, the servers of stun and upgrade steps, NAT-PMP hosts,
// tunnel ports, table counts, commands and classifications.

// Between reads between:, the two distinct hosts a step connects, in the
// order the file gives them.
func (r *StepFields) Between() [2]string {
	var pair [2]string
	v := r.field("between")
	if v == nil {
		return pair
	}
	path := joinPath(r.path, "between")
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return pair
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two hosts such as [alice, bob], not %s", path, v.describe())
		return pair
	}
	switch len(v.items) {
	case 2:
	case 0:
		r.errorf(v.pos, "%s: want two hosts such as [alice, bob], not an empty list", path)
	default:
		r.errorf(v.pos, "%s: want two hosts such as [alice, bob], not a list of %d", path, len(v.items))
	}
	seen := make(map[string]int)
	for i, item := range v.items {
		ipath := indexPath(path, i)
		name, _ := r.node(item, ipath, hostsOnly)
		if name == "" {
			continue
		}
		if first, dup := seen[name]; dup {
			r.errorf(item.pos, "%s: %s is already listed at %s; want two different hosts", ipath, name, indexPath(path, first))
			continue
		}
		seen[name] = i
		if i < len(pair) {
			pair[i] = name
		}
	}
	return pair
}

// STUNServers reads key as two or more distinct STUN servers whose view
// of one socket a stun step compares; from is the step's node, which
// cannot be one of them (fromOK: it is a usable node).
func (r *StepFields) STUNServers(key, from string, fromOK bool) []string {
	v := r.field(key)
	if v == nil {
		return nil
	}
	path := joinPath(r.path, key)
	if r.field("server") != nil {
		r.errorf(v.pos, "%s: server: names a STUN server already; give either server: to ask one, or servers: to compare what two or more see", path)
	}
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return nil
	case kindSeq:
	default:
		r.errorf(v.pos, "%s: want a list of two or more servers with services: [stun], such as [stun1, stun2], not %s", path, v.describe())
		return nil
	}
	switch len(v.items) {
	case 0:
		r.errorf(v.pos, "%s: want two or more servers with services: [stun], such as [stun1, stun2], not an empty list", path)
	case 1:
		one := "stun1"
		if item := v.items[0]; item.isScalar() {
			one = item.text
		}
		r.errorf(v.pos, "%s: want two or more servers to compare, not a list of 1; to ask one server, write server: %s", path, one)
	}
	var servers []string
	seen := make(map[string]int)
	for i, item := range v.items {
		ipath := indexPath(path, i)
		name, n := r.node(item, ipath, serverWith(ServiceSTUN))
		if name == "" {
			continue
		}
		if first, dup := seen[name]; dup {
			r.errorf(item.pos, "%s: %s is already listed at %s; want different servers", ipath, name, indexPath(path, first))
			continue
		}
		seen[name] = i
		servers = append(servers, name)
		if fromOK && n != nil && name == from {
			r.errorf(r.field("from").pos, "%s.from: %s is one of this step's STUN servers too; a node cannot find its public address by asking itself, so leave it out of servers: or run the step from a host", r.path, name)
		}
	}
	return servers
}

// UpgradeServers reads the servers of an upgrade step: server:, the relay
// to start on (a server with derp or turn; by default the first with
// derp, else with turn), whether it is a DERP server, and the first
// server with stun, to find the direct path with.
func (r *StepFields) UpgradeServers() (relay string, derp bool, stun string) {
	p := r.p
	derp = true
	if v := r.field("server"); v != nil {
		// A server with derp or turn.
		name, n := r.node(v, joinPath(r.path, "server"), nodeWant{kinds: []Kind{KindServer}})
		switch {
		case n == nil:
		case slices.Contains(n.node.Services, ServiceDERP):
			relay = name
		case slices.Contains(n.node.Services, ServiceTURN):
			relay, derp = name, false
		default:
			r.errorf(v.pos, "%s.server: %s runs neither derp nor turn, and upgrade starts on one of them", r.path, name)
		}
		if n != nil && relay == "" && !n.servicesBad {
			r.ok = false
		}
	} else if p.firstServer(ServiceDERP) != nil {
		relay, _ = r.defaultServer(ServiceDERP, true)
	} else {
		derp = false
	}
	if r.field("server") == nil && !derp && p.servicesKnown() && p.firstServer(ServiceTURN) == nil && p.firstServer(ServiceSTUN) == nil {
		// One message for both.
		r.errorf(r.pos, "%s: upgrade needs a server with services: [derp] or [turn] to start on and one with services: [stun] to find the direct path, and the lab has neither; add one such as relay: {kind: server, services: [derp, stun]}", r.path)
	} else {
		if r.field("server") == nil && !derp {
			relay, _ = r.defaultServer(ServiceTURN, true)
		}
		stun, _ = r.defaultServer(ServiceSTUN, true)
	}
	return relay, derp, stun
}

// PortMappingHost reads key as a host right behind a nat it can ask for
// a mapping, and protoKey as the port-mapping protocol to ask by: one of
// PortMappingProtocols that the nat speaks, by default the first it
// speaks (in PortMappingProtocols' order, NAT-PMP first). protocol is ""
// when no nat speaks for the host.
func (r *StepFields) PortMappingHost(key, protoKey string) (host, protocol string) {
	pv := r.field(protoKey)
	ppath := joinPath(r.path, protoKey)
	given, givenOK := "", false
	if pv != nil {
		given = r.oneOf(protoKey, "protocol", PortMappingProtocols, "", protocolsWant(), map[string]string{
			"none": "the portmap step asks by a protocol; leave protocol out to ask by the first the nat speaks",
		})
		givenOK = given != ""
	}
	v := r.field(key)
	if v == nil {
		return "", given
	}
	path := joinPath(r.path, key)
	name, from := r.node(v, path, hostsOnly)
	if from == nil {
		return name, given
	}
	parent := from.parent
	want := "port-mapping: " + cmp.Or(given, PortMappingNATPMP)
	switch {
	case !from.uplinkKnown:
		// Its behind: was already reported.
		r.ok = false
	case parent == nil:
		var names []string
		for _, n := range r.p.nodes {
			if n.ok && n.node.Kind == KindHost && n.parent != nil && n.parent.node.NAT != nil && len(n.parent.node.NAT.PortMapping) > 0 {
				names = append(names, n.node.Name)
			}
		}
		msg := ", and no nat has a port-mapping"
		if len(names) > 0 {
			slices.Sort(names)
			msg = "; the hosts behind one are " + listNames(names)
		}
		r.errorf(v.pos, "%s: %s is on the internet, so no nat maps ports for it; want a host behind a nat with %s%s", path, from.node.Name, want, msg)
	case parent.nat.knobs.portMappingBad:
		// Its port-mapping: was already reported.
		r.ok = false
	case len(parent.node.NAT.PortMapping) == 0:
		r.errorf(v.pos, "%s: %s is behind %s, whose port-mapping is none; add %s to %s", path, from.node.Name, parent.node.Name, want, parent.node.Name)
	case pv != nil && !givenOK:
		// The protocol was already reported.
	case pv != nil && !parent.node.NAT.Speaks(given):
		r.errorf(pv.pos, "%s: %s is behind %s, which speaks %s and not %s; ask by %s, or add %s to %s's port-mapping",
			ppath, from.node.Name, parent.node.Name, orList(parent.node.NAT.PortMapping), given, orList(parent.node.NAT.PortMapping), given, parent.node.Name)
	case pv == nil:
		return name, parent.node.NAT.PortMapping[0]
	default:
		return name, given
	}
	return name, given
}

// orList is "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// MinTunnelPort is the lowest public port a tunnel server gives out: the
// ports below are the well-known ones.
const MinTunnelPort = 1024

// TunnelPublicPort reads key as the public port a tunnel step asks its
// server for; 0, for the server to pick one, when it is left out.
func (r *StepFields) TunnelPublicPort(key string) uint16 {
	v := r.field(key)
	if v == nil {
		return 0
	}
	path := joinPath(r.path, key)
	const pick = "leave public-port out to have the tunnel server pick one"
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a port number from %d to 65535, not %s; %s", path, MinTunnelPort, v.describe(), pick)
	case 0 < n && n < MinTunnelPort:
		r.errorf(v.pos, "%s: port %s is below %d; a tunnel server gives out ports %d to 65535, so choose one of those, or %s", path, v.text, MinTunnelPort, MinTunnelPort, pick)
	case n < MinTunnelPort || n > 65535:
		r.errorf(v.pos, "%s: port %s is out of range; want %d to 65535, or %s", path, v.text, MinTunnelPort, pick)
	default:
		return uint16(n)
	}
	return 0
}

// tableExpectKeys are the keys a table step's expect takes.
var tableExpectKeys = formatKeys[TableExpect]()

// TableExpectWant says what a table step's expect takes.
const TableExpectWant = "the size of the table, such as {mappings: 2, flows: 3}"

// TableCounts reads key as how many mappings and flows a table step
// expects; nil for a count not given.
func (r *StepFields) TableCounts(key string) (mappings, flows *int) {
	v := r.field(key)
	if v == nil {
		return nil, nil
	}
	path := joinPath(r.path, key)
	p := r.p
	switch v.kind {
	case kindInvalid:
		r.ok = false
		return nil, nil
	case kindMap:
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, TableExpectWant, v.describe())
		return nil, nil
	}
	if len(v.entries) == 0 {
		r.errorf(v.pos, "%s: empty expectation; give %s or both, such as {mappings: 2}, or leave expect out to just read the table", path, strings.Join(tableExpectKeys, ", "))
		return nil, nil
	}
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "mappings":
			mappings = r.count(e.val, epath)
		case "flows":
			flows = r.count(e.val, epath)
		default:
			r.ok = false
			p.unknownKey(e, epath, "a table step's expect", tableExpectKeys)
		}
	}
	return mappings, flows
}

// MaxProbes is the most messages a send step sends.
const MaxProbes = 10000

// ProbeCount reads an optional number of messages to send, 1 to
// MaxProbes; 0 when the step leaves it out.
func (r *StepFields) ProbeCount(key string) int {
	v := r.field(key)
	if v == nil {
		return 0
	}
	n, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case !ok:
		r.errorf(v.pos, "%s: want a number from 1 to %d, not %s", joinPath(r.path, key), MaxProbes, v.describe())
	case n < 1 || n > MaxProbes:
		r.errorf(v.pos, "%s: %s is out of range; want 1 to %d", joinPath(r.path, key), v.text, MaxProbes)
	default:
		return int(n)
	}
	return 0
}

// maxCount is the largest count a table step expects.
const maxCount = 65535

// count reads a number of table entries, or returns nil after reporting
// why it is not one.
func (r *StepFields) count(v *value, path string) *int {
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

const commandWant = `a shell command such as "ping -c1 203.0.113.10", or a list such as [ping, -c1, 203.0.113.10]`

// Command reads key as what an exec step runs: one string for sh -c
// (shell), or a program and its arguments.
func (r *StepFields) Command(key string) (argv []string, shell bool) {
	v := r.field(key)
	if v == nil {
		return nil, false
	}
	path := joinPath(r.path, key)
	switch {
	case v.kind == kindInvalid:
		r.ok = false
	case v.isScalar():
		if strings.TrimSpace(v.text) == "" {
			r.errorf(v.pos, "%s: empty command; want %s", path, commandWant)
			return nil, false
		}
		if strings.ContainsRune(v.text, 0) {
			r.errorf(v.pos, "%s: contains a NUL character, which no command can hold", path)
			return nil, false
		}
		return []string{v.text}, true
	case v.kind == kindSeq:
		if len(v.items) == 0 {
			r.errorf(v.pos, "%s: empty list; want a program and its arguments, such as [ping, -c1, 203.0.113.10]", path)
			return nil, false
		}
		argv := make([]string, 0, len(v.items))
		for i, item := range v.items {
			ipath := indexPath(path, i)
			arg, ok := r.p.str(item, ipath, "an argument")
			switch {
			case !ok:
				r.ok = false
			case i == 0 && strings.TrimSpace(arg) == "":
				r.errorf(item.pos, "%s: empty program name; the first item is the program to run, such as ping", ipath)
			case strings.ContainsRune(arg, 0):
				r.errorf(item.pos, "%s: contains a NUL character, which no argument can hold", ipath)
			default:
				argv = append(argv, arg)
			}
		}
		return argv, false
	default:
		r.errorf(v.pos, "%s: want %s, not %s", path, commandWant, v.describe())
	}
	return nil, false
}

// classificationKeys are the keys an expected classification takes.
var classificationKeys = formatKeys[ClassificationExpect]()

// Classification reads key as the NAT behaviour a stun step expects
// discovery to report, from server, the step's STUN server.
func (r *StepFields) Classification(key, server string) *Classification {
	v := r.field(key)
	if v == nil {
		return nil
	}
	path := joinPath(r.path, key)
	p := r.p
	if len(v.entries) == 0 {
		r.errorf(v.pos, "%s: empty classification; give at least one of %s, or write ok or fail", path, strings.Join(classificationKeys, ", "))
		return nil
	}
	c := &Classification{}
	var mappingVal, filteringVal *value
	typeGiven := false
	for _, e := range v.entries {
		epath := joinPath(path, e.key)
		switch e.key {
		case "type":
			t, ok := p.natType(e.val, epath)
			if ok && t == nat.OneToOne {
				// What sets one apart, that no mapping is needed to be
				// reached, is no part of RFC 5780's discovery.
				p.errs.errorf(e.val.pos, "%s: a classification names a classic type, and RFC 5780 discovery sees a one-to-one nat as the full-cone it maps and filters as; write type: full-cone", epath)
				ok = false
			}
			c.Type, typeGiven = t, ok
			r.check(ok)
		case "mapping", "filtering":
			d, ok := p.dependence(e.val, epath)
			r.check(ok)
			switch {
			case !ok:
			case e.key == "mapping":
				c.Mapping, mappingVal = d, e.val
			default:
				c.Filtering, filteringVal = d, e.val
			}
		case "ports":
			a, ok := p.portAllocation(e.val, epath)
			c.Ports = a
			r.check(ok)
		case "hairpin":
			if b, ok := p.boolean(e.val, epath); ok {
				c.Hairpin = &b
			} else {
				r.ok = false
			}
		case "pooling":
			s, ok := p.str(e.val, epath, "paired or arbitrary")
			pl, err := nat.ParsePooling(s)
			if ok && err != nil {
				p.errs.errorf(e.val.pos, "%s: %v", epath, err)
				ok = false
			}
			c.Pooling = pl
			r.check(ok)
		default:
			r.ok = false
			p.unknownKey(e, epath, "a classification", classificationKeys)
		}
	}
	if typeGiven {
		p.contradicts(path, c.Type, "mapping", c.Mapping, mappingVal)
		p.contradicts(path, c.Type, "filtering", c.Filtering, filteringVal)
		c.Mapping, c.Filtering = c.Type.Mapping(), c.Type.Filtering()
	}
	// RFC 5780 discovery, which starts with the mapping test, needs
	// answers from a second address.
	if n := p.byName[server]; p.nodesOK && n != nil && serverWith(ServiceSTUN).accepts(n) && n.addrsGiven && len(n.addrs) == 1 {
		r.errorf(v.pos, "%s: classifying a NAT (RFC 5780) needs a STUN server with two addresses, and %s has one; give it a second, or leave its addresses out to get two",
			path, n.node.Name)
	}
	return c
}

// ShellQuote quotes an argument for showing a command, where needed.
func ShellQuote(arg string) string {
	if arg != "" && !strings.ContainsFunc(arg, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) {
		return arg
	}
	return strconv.Quote(arg)
}

// Clip makes s one line of at most n characters, ending in ... when cut.
func Clip(s string, n int) string {
	line, _, more := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(line))
	if more || utf8.RuneCountInString(line) > n {
		runes := []rune(line)
		line = string(runes[:min(len(runes), n-3)]) + "..."
	}
	return line
}

// NewAddress reads key as a new address for node's uplink, as a NAT that
// is renumbered gets: a free IPv4 host address of the subnet node is on
// (AddressProblem), as the steps before leave the lab. node is the name
// the step read, "" when that was not a usable node, and then only the
// address itself is checked. It returns the zero Addr when key is missing
// or bad.
func (r *StepFields) NewAddress(key, node string) netip.Addr {
	v := r.field(key)
	if v == nil {
		return netip.Addr{}
	}
	path := joinPath(r.path, key)
	now := r.p.current()
	var n *Node
	if r.p.nodesOK && node != "" {
		n = now.Node(node)
	}
	want := "an IPv4 address such as 203.0.113.77"
	if n != nil {
		if free := now.freeAddress(n); free.IsValid() {
			want = fmt.Sprintf("a free address of %s's uplink such as %s", node, free)
		}
		if n.NAT != nil && len(n.Addresses) > 1 {
			// No address would do (AddressProblem).
			want = "no renumbering of a pool; remove the step"
		}
	}
	s, ok := r.p.str(v, path, "an IPv4 address")
	if !ok {
		r.ok = false
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	switch {
	case err != nil:
		r.errorf(v.pos, "%s: invalid IPv4 address %q; want %s", path, s, want)
	case !a.Is4():
		r.errorf(v.pos, "%s: %s is IPv6; want %s", path, s, want)
	case n == nil:
		return a
	default:
		if msg := now.AddressProblem(n, a); msg != "" {
			r.errorf(v.pos, "%s: %s; want %s", path, msg, want)
			return netip.Addr{}
		}
		return a
	}
	return netip.Addr{}
}

// Renumbered notes that the step gives node the address a, so that the
// steps after it are checked against the lab with that address; a step
// with a problem changes nothing.
func (r *StepFields) Renumbered(node string, a netip.Addr) {
	if !r.ok || !r.p.nodesOK || !a.IsValid() {
		return
	}
	now := r.p.current()
	if n := now.Node(node); n != nil {
		r.p.now = now.Renumbered(n, a)
	}
}

// MoveTo reads key as the nat host moves behind (MoveProblem), as the
// steps before leave the lab; host is the name the step read, "" when
// that was not a usable host.
func (r *StepFields) MoveTo(key, host string) string {
	nat, ok := r.NAT(key)
	if !ok || host == "" || !r.p.nodesOK {
		return nat
	}
	now := r.p.current()
	if msg := now.MoveProblem(now.Node(host), nat); msg != "" {
		r.errorf(r.At(key), "%s.%s: %s", r.path, key, msg)
	}
	return nat
}

// Moved notes that the step moves host behind nat, so that the steps
// after it are checked against the lab with the host there.
func (r *StepFields) Moved(host, nat string) {
	if !r.ok || !r.p.nodesOK || host == "" || nat == "" {
		return
	}
	now := r.p.current()
	n := now.Node(host)
	if a4, a6, ok := now.MoveAddresses(n, nat); ok {
		r.p.now = now.Moved(n, nat, a4, a6)
	}
}

// Rate reads an optional rate field, such as 100mbit, from lo to hi; def
// when the step leaves it out.
func (r *StepFields) Rate(key string, lo, hi, def linkcond.Rate) linkcond.Rate {
	v := r.field(key)
	if v == nil {
		return def
	}
	path := joinPath(r.path, key)
	switch {
	case v.kind == kindInvalid:
		r.ok = false
		return def
	case !v.isScalar():
		r.errorf(v.pos, "%s: want %s, not %s", path, linkcond.RateWant, v.describe())
		return def
	}
	rate, err := parseRate(v.text)
	switch {
	case err != nil:
		r.errorf(v.pos, "%s: %v", path, err)
	case rate < lo || rate > hi:
		r.errorf(v.pos, "%s: %s is out of range; want %s to %s", path, v.text, lo, hi)
	default:
		return rate
	}
	return def
}
