package natrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
)

// A NAT with several public addresses, a pool (RFC 4787 section 4.1),
// picks the address of a mapping from what the private side of the packet
// shows, by a hash the kernel computes (nft's jhash) and PoolIndex
// computes again in Go: paired pooling hashes the private address, so
// every mapping of one host has one public address for as long as the lab
// runs (REQ-2); arbitrary pooling hashes the private endpoint, so each
// socket of a host may show another. (TCP, ICMP and the rest, which
// conntrack alone translates, take the pool's addresses in turn under
// arbitrary pooling.) The address is never stored: a rule that needs it,
// outbound or inbound, computes it again from the private endpoint, which
// the maps hold.
//
// Public ports stay unique across the pool: the maps are keyed by public
// port as with one address, and a port belongs to one mapping, on the
// address its owner hashes to. An inbound packet to a mapped port on
// another address of the pool is no packet of that mapping: destination
// NAT finds the owner by port, and the pool chain (poolWall), seeing the
// owner after it, drops the packet if the owner's hash is not the
// address it was sent to. (A pool so gives no more ports than one address;
// what it changes is the address peers see, which is what RFC 4787's
// pooling is about.)

// The sets of a pooled NAT.
const (
	// PoolSet maps a pool index (what the hash yields) to its address.
	PoolSet = "pool"
	// setPublic holds the pool's addresses.
	setPublic = "pool_addresses"
	// chainPool holds poolWall's checks, which jump to ChainPoolWall,
	// the wall's rule that drops and counts what they refuse (in a chain
	// of its own, which google/nftables can read back: it cannot read
	// the checks' conntrack directions).
	chainPool     = "pool"
	ChainPoolWall = "pool_wall"
)

// poolSeed is the seed of the pool's hash: fixed, so that PoolIndex can
// say which address a host gets ("natl").
const poolSeed = 0x6e61746c

// pooled says whether the NAT has several public addresses.
func (c *Config) pooled() bool { return len(c.Pool) > 1 }

// PoolIndex is the index into pool (Config.Pool) of the public address
// that a mapping of the private endpoint priv gets, as the kernel's hash
// picks it: of priv's address with paired pooling, of priv with
// arbitrary. n is the size of the pool.
func PoolIndex(pooling nat.Pooling, priv netip.AddrPort, n int) int {
	key := encodeEndpoint(priv)
	if pooling == nat.PoolingPaired {
		key = key[:ip4Len]
	}
	return int(uint64(jhash(key, poolSeed)) * uint64(n) >> 32)
}

// PoolAddr is the public address of a mapping of priv (see PoolIndex).
func PoolAddr(pooling nat.Pooling, pool []netip.Addr, priv netip.AddrPort) netip.Addr {
	if len(pool) == 1 {
		return pool[0]
	}
	return pool[PoolIndex(pooling, priv, len(pool))]
}

// jhash is the kernel's jhash() (include/linux/jhash.h, Bob Jenkins'
// lookup3), which nft's jhash expression computes.
func jhash(k []byte, initval uint32) uint32 {
	rol := func(x uint32, s uint) uint32 { return x<<s | x>>(32-s) }
	a := 0xdeadbeef + uint32(len(k)) + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.NativeEndian.Uint32(k)
		b += binary.NativeEndian.Uint32(k[4:])
		c += binary.NativeEndian.Uint32(k[8:])
		a -= c
		a ^= rol(c, 4)
		c += b
		b -= a
		b ^= rol(a, 6)
		a += c
		c -= b
		c ^= rol(b, 8)
		b += a
		a -= c
		a ^= rol(c, 16)
		c += b
		b -= a
		b ^= rol(a, 19)
		a += c
		c -= b
		c ^= rol(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k)
	// The tail is read byte by byte, least significant first, whatever
	// the machine's byte order.
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return c
}

// poolIndexKey is a pool index as the hash leaves it in a register: a
// 32-bit number in host byte order, as nft's mark type holds one.
func poolIndexKey(i int) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(i)) }

// poolSets declares the pool's sets, constant for the life of the lab.
func (b *builder) poolSets() {
	t := b.r.table
	mark, ipv4 := nftables.TypeMark, nftables.TypeIPAddr
	pool := newSet(t, PoolSet, "pool index -> public address ("+string(b.Pooling)+" pooling)",
		[]nftables.SetDatatype{mark}, []nftables.SetDatatype{ipv4})
	public := newSet(t, setPublic, "the public addresses", []nftables.SetDatatype{ipv4}, nil)
	for i, a := range b.Pool {
		pool.elements = append(pool.elements, nftables.SetElement{Key: poolIndexKey(i), Val: a.AsSlice()})
		pool.elementText = append(pool.elementText, fmt.Sprintf("0x%08x : %v", i, a))
		public.elements = append(public.elements, nftables.SetElement{Key: a.AsSlice()})
		public.elementText = append(public.elementText, a.String())
	}
	// The sets never change; nft would list the index of a constant map
	// in network byte order, though, and the hash leaves it in host byte
	// order, so the map is not marked constant.
	for _, s := range []*set{pool, public} {
		s.spec.Dynamic, s.spec.HasTimeout = false, false
		s.spec.Constant = s != pool
		s.fixed = true
		b.r.sets = append(b.r.sets, s)
	}
	pool.spec.KeyByteOrder = binaryutil.NativeEndian
}

// hashText is the nft text of the pool's hash of key.
func (b *builder) hashText(key string) string {
	return fmt.Sprintf("jhash %s mod %d seed 0x%x", key, len(b.Pool), poolSeed)
}

// hashOf hashes the value of size bytes at src into dst.
func (b *builder) hashOf(src, size, dst uint32) *expr.Hash {
	return &expr.Hash{SourceRegister: src, DestRegister: dst, Length: size, Modulus: uint32(len(b.Pool)), Seed: poolSeed, Type: expr.HashTypeJenkins}
}

// srcAddr is the public address a translated packet leaves with, loaded
// into reg1: the one address, or the pool's for its private source. p is
// the protocol the rule matches, whose private port arbitrary pooling
// hashes too; nil for the rest, which take the pool's addresses in turn,
// one per new flow (conntrack keeps it for the flow).
func (b *builder) srcAddr(p *transport) addrSrc {
	if !b.pooled() {
		return fixedAddr(b.Public)
	}
	lookup := &expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: PoolSet}
	switch {
	case b.Pooling == nat.PoolingPaired:
		return addrSrc{b.hashText("ip saddr") + " map @" + PoolSet, []expr.Any{
			loadIP(ipSaddrOffset, reg1), b.hashOf(reg1, ip4Len, reg1), lookup}}
	case p != nil:
		return addrSrc{b.hashText("ip saddr . "+p.name+" sport") + " map @" + PoolSet, []expr.Any{
			loadIP(ipSaddrOffset, reg1), loadPort(sportOffset, reg32(1)), b.hashOf(reg1, endpointLen, reg1), lookup}}
	}
	return addrSrc{fmt.Sprintf("numgen inc mod %d map @%s", len(b.Pool), PoolSet), []expr.Any{
		&expr.Numgen{Register: reg1, Type: unix.NFT_NG_INCREMENTAL, Modulus: uint32(len(b.Pool))}, lookup}}
}

// constAddr is address a as a key's field.
func constAddr(a netip.Addr) field {
	return field{text: a.String(), load: func(reg uint32) expr.Any { return immediate(reg, a.AsSlice()) }}
}

// toPublic matches packets to the public address, or one of the pool's.
func (b *builder) toPublic() stmt {
	if !b.pooled() {
		return ipDaddr(b.Public)
	}
	return inSet(setPublic, ipDaddrF)
}

// fromPublic matches packets from the public address, or one of the
// pool's.
func (b *builder) fromPublic() stmt {
	if !b.pooled() {
		return ipSaddrIs(b.Public)
	}
	return inSet(setPublic, ipSaddr)
}

// poolWall drops, for a pooled NAT, what destination NAT let in to a
// mapping on an address of the pool that is not the mapping's: the
// prerouting rules find the owner of a public port whatever the address,
// and only after destination NAT does the packet show the owner, whose
// hash says its address. (nft cannot list a hash of a map's data, which
// checking before destination NAT would take.) It runs in the forward
// hook before the track chain, so that such a packet refreshes nothing,
// and drops it before conntrack confirms its flow, which leaves nothing
// behind. Static forwards, on the first address, are let through first.
func (b *builder) poolWall() {
	if !b.pooled() {
		return
	}
	c := b.chain(chainPool, nftables.ChainHookForward, nftables.ChainTypeFilter, prio(*nftables.ChainPriorityFilter-20), nftables.ChainPolicyAccept)
	for _, p := range b.transports {
		for _, f := range b.Forwards {
			if string(f.Proto) == p.name {
				c.add(fmt.Sprintf("forward %s %d: on the first address", p.name, f.Port),
					l4proto(p.name, true), ctStateNew(), ctAddrIs(expr.CtKeyDST, original, b.Public),
					ctPortIs(original, f.Port), accept())
			}
		}
	}
	for _, p := range b.transports {
		// nft leaves out the protocol that the hash's destination port
		// implies.
		key, size := "ip daddr", uint32(ip4Len)
		load := []expr.Any{loadIP(ipDaddrOffset, reg1)}
		if b.Pooling == nat.PoolingArbitrary {
			key, size = "ip daddr . "+p.name+" dport", endpointLen
			load = append(load, loadPort(dportOffset, reg32(1)))
		}
		for i, a := range b.Pool {
			hash := stmt{b.hashText(key) + fmt.Sprintf(" != %d", i), append(slices.Clone(load),
				b.hashOf(reg1, size, reg1),
				&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: poolIndexKey(i)})}
			c.add(p.comment(fmt.Sprintf("sent to %v: its mapping's owner has another address", a)),
				l4proto(p.name, b.Pooling == nat.PoolingPaired), ctStateNew(), ctStatusDNAT(), ctAddrIs(expr.CtKeyDST, original, a), hash,
				jump(ChainPoolWall))
		}
	}
	w := b.chain(ChainPoolWall, nil, "", nil, 0)
	w.add("the wall: the port is mapped on another address of the pool", counter(), logDrop(DropPool), drop())
}

// ctPortIs matches the destination port of a conntrack tuple.
func ctPortIs(dir uint32, port uint16) stmt {
	p := ctPort(expr.CtKeyPROTODST, dir)
	return stmt{fmt.Sprintf("%s %d", p.text, port), []expr.Any{
		p.load(reg1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: encodePort(port)},
	}}
}

// poolHairpinPermits records, for a pooled NAT, whom a hairpinned packet
// was sent to: the public address it was addressed to, which with a pool
// is not always the address it leaves from. That is the destination of
// its direction of the flow, before destination NAT; a rule per address
// and direction compares it (nft can list a conntrack address compared
// with a constant, not one in a concatenation) and records the address as
// a constant. key makes the key of the set from the remote address.
func (b *builder) poolHairpinPermits(c *chain, p transport, looped []stmt, set string, key func(remote field, dir uint32) []field) {
	for _, dir := range []uint32{original, reply} {
		for _, a := range b.Pool {
			c.add(p.comment("a mapping that sends to a public endpoint may hear back from it"),
				append(slices.Clone(looped), ctDirection(dir), ctAddrIs(expr.CtKeyDST, dir, a),
					update(set, p.live, key(constAddr(a), dir), nil))...)
		}
	}
}

// ctAddrIs matches an address of a conntrack tuple.
func ctAddrIs(key expr.CtKey, dir uint32, a netip.Addr) stmt {
	word := map[expr.CtKey]string{expr.CtKeySRC: "saddr", expr.CtKeyDST: "daddr"}[key]
	dirWord := map[uint32]string{original: "original", reply: "reply"}[dir]
	return stmt{fmt.Sprintf("ct %s ip %s %v", dirWord, word, a), []expr.Any{
		// The direction in the top byte: see ctPort.
		&expr.Ct{Key: key, Direction: dir << 24, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: a.AsSlice()},
	}}
}
