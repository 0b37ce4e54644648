package nat

import (
	"fmt"
	"time"
)

// PortBlocks is a carrier-grade NAT's port block allocation (RFC 6888
// section 5): each subscriber, a private address behind the NAT, owns
// Count blocks of Size consecutive public ports, and its mappings take
// ports of its own blocks only, so that one address and a block say who
// a flow was (what a CGN's operator logs once per block rather than once
// per flow). The blocks are assigned deterministically, as RFC 7422
// describes: the subscribers in the order of their addresses, each the
// next Count blocks of the port range, all of them from the start
// (Blocks). The zero PortBlocks is a NAT without blocks.
//
// Its JSON names are part of labstate's lab records.
type PortBlocks struct {
	// Size is the number of ports in a block; it divides the size of the
	// NAT's port range.
	Size int `json:"Size"`
	// Count is how many blocks each subscriber holds.
	Count int `json:"Count"`
	// Quota is how many ports a subscriber's mappings may hold at once
	// (RFC 6888 REQ-3): at most Size*Count, which it is unless a file
	// says less. A subscriber whose quota is used gets no new mapping
	// until one of its own expires (REQ-4: a CGN does not take another
	// mapping away to make room).
	Quota int `json:"Quota"`
	// ICMP makes a refused mapping also answer the sender with an ICMP
	// host unreachable (RFC 6888 REQ-8 b: it SHOULD); the packet is
	// dropped either way (REQ-8 a: it MUST).
	ICMP bool `json:"ICMP"`
	// ReuseDelay is how long a port whose mapping expired stays unused
	// before another mapping may take it (RFC 6888 REQ-8: at least 120 s
	// by default), so that a late packet of the old flow never reaches a
	// new one.
	ReuseDelay time.Duration `json:"ReuseDelay"`
}

// DefaultReuseDelay is RFC 6888's: a freed port is not reused for 120 s.
const DefaultReuseDelay = 2 * time.Minute

// Enabled says whether the NAT allocates ports in blocks.
func (b PortBlocks) Enabled() bool { return b.Size > 0 }

// Total is how many blocks the port range r holds.
func (b PortBlocks) Total(r PortRange) int { return r.Size() / b.Size }

// Subscribers is how many subscribers the port range r has blocks for.
func (b PortBlocks) Subscribers(r PortRange) int { return b.Total(r) / b.Count }

// Blocks are the port blocks of subscriber i (counting from 0, in the
// order of the subscribers' addresses) within the port range r, or nil
// if r has none left for it.
func (b PortBlocks) Blocks(i int, r PortRange) []PortRange {
	if !b.Enabled() || i < 0 || i >= b.Subscribers(r) {
		return nil
	}
	blocks := make([]PortRange, b.Count)
	for k := range blocks {
		first := int(r.First) + (i*b.Count+k)*b.Size
		blocks[k] = PortRange{First: uint16(first), Last: uint16(first + b.Size - 1)}
	}
	return blocks
}

// Port is the public port at offset o (0 to Quota-1) of a subscriber's
// blocks: the blocks' ports in order.
func Port(blocks []PortRange, o int) (uint16, bool) {
	for _, r := range blocks {
		if o < r.Size() {
			return r.First + uint16(o), true
		}
		o -= r.Size()
	}
	return 0, false
}

// String describes the allocation as natlab show and status print it.
func (b PortBlocks) String() string {
	if !b.Enabled() {
		return "no port blocks"
	}
	s := fmt.Sprintf("port blocks of %d", b.Size)
	if b.Count != 1 {
		s += fmt.Sprintf(", %d a subscriber", b.Count)
	}
	if b.Quota != b.Size*b.Count {
		s += fmt.Sprintf(", quota %d", b.Quota)
	}
	if b.ICMP {
		s += ", ICMP when exhausted"
	}
	if b.ReuseDelay != DefaultReuseDelay {
		s += ", reuse after " + FormatDuration(b.ReuseDelay)
	}
	return s
}
