package topology

import (
	"fmt"
	"strings"
	"time"

	"github.com/natlab/natlab/nat"
)

// A carrier-grade nat allocates ports in blocks (RFC 6888): port-block:
// takes the size of a block, or a map of size, blocks (how many each
// subscriber holds), quota (how many ports a subscriber's mappings may
// hold at once), exhausted (what a refused mapping gets: drop, or icmp,
// a host unreachable too) and reuse-delay (how long a freed port rests).
// The subscribers are the nodes behind the nat, each with its blocks from
// the start (nat.PortBlocks), so a nat has blocks for only so many.

// MaxQuota is the most ports a subscriber may hold: a nat tries each of a
// subscriber's ports with a rule of its own before it refuses a mapping,
// so that it refuses one only when every port is taken (natrules).
const MaxQuota = 1024

// portBlockKeys are the keys of port-block's map, in the order messages
// list them.
var portBlockKeys = []string{"size", "blocks", "quota", "exhausted", "reuse-delay"}

// exhaustedWords are what exhausted: takes.
var exhaustedWords = []string{"icmp", "drop"}

// maxReuseDelay bounds reuse-delay: past a day the lab outlives it.
const maxReuseDelay = 24 * time.Hour

// portBlockSpec is a nat's port-block: value as read.
type portBlockSpec struct {
	blocks nat.PortBlocks
	// val is the port-block: value; sizeVal that of its size (val for
	// the short form); quotaVal that of its quota, nil when not given.
	val, sizeVal, quotaVal *value
}

// readPortBlock reads a nat's port-block: value.
func (p *parser) readPortBlock(n *nodeSpec, v *value, path string) {
	s := &portBlockSpec{val: v, sizeVal: v, blocks: nat.PortBlocks{Count: 1, ICMP: true, ReuseDelay: nat.DefaultReuseDelay}}
	ok := true
	switch v.kind {
	case kindInvalid:
		return
	case kindMap:
		if len(v.entries) == 0 {
			p.errs.errorf(v.pos, "%s: an empty map; want the size of a block, such as 128, or a map with size:", path)
			return
		}
		if v.get("size") == nil {
			p.errs.errorf(v.pos, "%s: missing size; want size: the number of ports in a block, such as 128", path)
			ok = false
		}
		for _, e := range v.entries {
			kpath := path + "." + e.key
			switch e.key {
			case "size":
				s.sizeVal = e.val
				s.blocks.Size = p.portCount(e.val, kpath, "ports in a block", 1, 32768)
				ok = ok && s.blocks.Size > 0
			case "blocks":
				s.blocks.Count = p.portCount(e.val, kpath, "blocks a subscriber holds", 1, 65535)
				ok = ok && s.blocks.Count > 0
			case "quota":
				s.quotaVal = e.val
				s.blocks.Quota = p.portCount(e.val, kpath, "ports a subscriber may hold at once", 1, MaxQuota)
				ok = ok && s.blocks.Quota > 0
			case "exhausted":
				w, wok := p.str(e.val, kpath, "icmp or drop")
				switch {
				case !wok:
					ok = false
				case w == "icmp" || w == "drop":
					s.blocks.ICMP = w == "icmp"
				default:
					p.errs.errorf(e.val.pos, "%s: unknown value %q; want icmp (drop the packet and answer host unreachable, as RFC 6888 REQ-8 recommends) or drop", kpath, w)
					ok = false
				}
			case "reuse-delay":
				d, dok := p.duration(e.val, kpath, 0, maxReuseDelay)
				s.blocks.ReuseDelay, ok = d, ok && dok
			default:
				p.errs.errorf(e.keyPos, "%s", unknownKeyMessage(e, kpath, "port-block", portBlockKeys, ""))
				ok = false
			}
		}
	default:
		if !v.isScalar() {
			p.errs.errorf(v.pos, "%s: want the size of a block, such as 128, or a map with size:, not %s", path, v.describe())
			return
		}
		s.blocks.Size = p.portCount(v, path, "ports in a block", 1, 32768)
		ok = s.blocks.Size > 0
	}
	if !ok {
		return
	}
	all := s.blocks.Size * s.blocks.Count
	switch {
	case s.quotaVal == nil && all > MaxQuota:
		p.errs.errorf(v.pos, "%s: %d blocks of %d give a subscriber %d ports, more than the %d natlab tries one by one before it refuses a mapping; give fewer or smaller blocks, or a quota of at most %d",
			path, s.blocks.Count, s.blocks.Size, all, MaxQuota, MaxQuota)
		return
	case s.quotaVal == nil:
		s.blocks.Quota = all
	case s.blocks.Quota > all:
		p.errs.errorf(s.quotaVal.pos, "%s.quota: %d is more than the %d ports of a subscriber's %d blocks of %d", path, s.blocks.Quota, all, s.blocks.Count, s.blocks.Size)
		return
	}
	n.nat.portBlock = s
}

// portCount reads a whole number from lo to hi, what names.
func (p *parser) portCount(v *value, path, what string, lo, hi int64) int {
	x, ok := v.integer()
	switch {
	case v.kind == kindInvalid:
	case !ok:
		p.errs.errorf(v.pos, "%s: want a number of %s, %d to %d, not %s", path, what, lo, hi, v.describe())
	case x < lo || x > hi:
		p.errs.errorf(v.pos, "%s: %s is out of range; want %d to %d %s", path, v.text, lo, hi, what)
	default:
		return int(x)
	}
	return 0
}

// checkPortBlock gives nat n its port blocks, once its behaviour is
// known, and reports what does not go with them: a one-to-one nat (its
// host owns every port), a pool or port mapping (natlab's blocks are on
// one address, and a port-mapping protocol would hand out ports of no
// subscriber's), a block that does not divide the port range, and ports
// preserve (a subscriber's ports are its blocks'). A nat with blocks
// picks ports at random unless ports: says sequential.
func (p *parser) checkPortBlock(n *nodeSpec, node *value) {
	s := n.nat.portBlock
	if s == nil {
		return
	}
	path := n.path + ".port-block"
	na := n.node.NAT
	r := na.Behaviour.PortRange
	ports := n.nat.knobs.given["ports"]
	switch {
	case na.Type == nat.OneToOne:
		p.errs.errorf(s.val.pos, "%s: a one-to-one nat takes no port-block: its host owns every port of the public address; remove port-block, or choose another type", path)
	case len(n.addrs) > 1:
		p.errs.errorf(s.val.pos, "%s: port blocks are on one public address; give public: one address, or remove port-block", path)
	case len(na.PortMapping) > 0:
		p.errs.errorf(s.val.pos, "%s: port-mapping does not work with port blocks (a grant would take a port of no subscriber's blocks); remove port-mapping or port-block", path)
	case r.Size()%s.blocks.Size != 0:
		p.errs.errorf(s.sizeVal.pos, "%s: a block of %d ports does not divide the port range %v (%d ports); take a size that does, such as %s, or set port-range",
			path, s.blocks.Size, r, r.Size(), divisors(r.Size(), s.blocks.Size))
	case s.blocks.Count > s.blocks.Total(r):
		p.errs.errorf(s.val.pos, "%s: a subscriber's %d blocks of %d are more than the port range %v holds (%d)", path, s.blocks.Count, s.blocks.Size, r, s.blocks.Total(r))
	case ports.at != nil && ports.x == nat.PortPreserve:
		p.errs.errorf(ports.at.pos, "%s.ports: a nat with port blocks picks its ports from each subscriber's blocks and cannot keep the private port; say random or sequential, or remove port-block", n.path)
	default:
		if ports.at == nil {
			na.Behaviour.Ports = nat.PortRandom
		}
		na.Blocks = s.blocks
	}
}

// divisors suggests block sizes near size that divide a range of n
// ports: the nearest below and above, such as "64 or 96".
func divisors(n, size int) string {
	var near []string
	for d := size - 1; d >= 1; d-- {
		if n%d == 0 {
			near = append(near, fmt.Sprint(d))
			break
		}
	}
	for d := size + 1; d <= n; d++ {
		if n%d == 0 {
			near = append(near, fmt.Sprint(d))
			break
		}
	}
	return strings.Join(near, " or ")
}

// checkSubscribers reports each node behind a nat with port blocks that
// the nat has no blocks left for, at its behind:.
func (p *parser) checkSubscribers() {
	for _, t := range p.nodes {
		if !t.ok || t.nat == nil || !t.node.NAT.Blocks.Enabled() {
			continue
		}
		b, r := t.node.NAT.Blocks, t.node.NAT.Behaviour.PortRange
		i := 0
		for _, n := range p.nodes {
			if n.parent != t {
				continue
			}
			if i++; i > b.Subscribers(r) {
				p.errs.errorf(n.behindVal.pos, "%s.behind: %s's port range %v holds %d blocks of %d, %d for each subscriber: blocks for %d, and %s would be subscriber %d; give %s fewer or smaller blocks, or a larger port-range",
					n.path, t.node.Name, r, b.Total(r), b.Size, b.Count, b.Subscribers(r), n.node.Name, i, t.node.Name)
			}
		}
	}
}
