// Package nattable reads a NAT node's translation table, the one the
// story draws: private endpoint -> public endpoint -> remote endpoint. It
// comes from two places in the NAT's namespace: the kernel's conntrack
// entries (every translated flow, TCP, UDP and ICMP) and natlab's own UDP
// mappings (the ports map of the node's nftables table), which outlive a
// single flow under endpoint-independent mapping.
package nattable

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/topology"
)

// Flow is one translated conntrack flow.
type Flow struct {
	Proto string `json:"proto"`
	// Private is the inside endpoint, Public what it is translated to,
	// Remote the other end on the outside. For ICMP echo the port is the
	// echo identifier.
	Private netip.AddrPort `json:"private"`
	Public  netip.AddrPort `json:"public"`
	Remote  netip.AddrPort `json:"remote"`
	// Inbound is true for flows started from outside (a forward, or a
	// packet the filtering admitted).
	Inbound bool `json:"inbound"`
	// Hairpin is true for flows between two hosts behind this NAT
	// through its public address; Remote is then the sender's public
	// endpoint.
	Hairpin bool `json:"hairpin,omitempty"`
	// State is "unreplied", "replied" or "assured"; TCP flows add their
	// TCP state.
	State   string        `json:"state"`
	Expires time.Duration `json:"expires_ns"`
	// Offloaded says the kernel's flowtable carries the flow (an
	// offloaded NAT's established flows): it expires its timeout after
	// it goes idle, which conntrack does not count down until then, and
	// Expires is zero.
	Offloaded bool `json:"offloaded,omitempty"`
	// Packets and Bytes count what crossed the NAT in this flow, both
	// ways (conntrack's accounting, which natlab turns on in each NAT).
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Mapping is one of natlab's UDP or TCP mappings: who owns a public port.
type Mapping struct {
	Public  netip.AddrPort `json:"public"`
	Private netip.AddrPort `json:"private"`
	// Expires is zero for static forwards, which never expire.
	Expires time.Duration `json:"expires_ns"`
	// Offloaded says a flow the flowtable carries keeps the mapping
	// (heldFor): it lives until that flow has been idle for the
	// timeout, and Expires says nothing.
	Offloaded bool `json:"offloaded,omitempty"`
	// held says conntrack's entries of its flows keep it (heldFor).
	held bool
}

// Forward is a port forward: a public port the NAT sends on to a private
// endpoint, whoever sends to it.
type Forward struct {
	Proto   string         `json:"proto"`
	Public  netip.AddrPort `json:"public"`
	Private netip.AddrPort `json:"private"`
	// By says where it comes from: "scenario" for a static forward of
	// the lab's file, "nat-pmp", "pcp" or "upnp" for a lease a host asked
	// for by that protocol.
	By string `json:"by"`
	// Expires is zero for static forwards, which never expire.
	Expires time.Duration `json:"expires_ns"`
}

// Forward sources.
const (
	ByScenario = "scenario"
	ByNATPMP   = "nat-pmp"
	ByPCP      = "pcp"
	ByUPnP     = "upnp"
)

// Table is a NAT's translation table at one moment.
type Table struct {
	Flows    []Flow    `json:"flows"`
	Mappings []Mapping `json:"mappings"`
	// TCPMappings are natlab's TCP mappings, kept apart from UDP's
	// (Mappings), as the NAT keeps them: a public port may be one host's
	// for UDP and another's for TCP.
	TCPMappings []Mapping `json:"tcp_mappings,omitempty"`
	Forwards    []Forward `json:"forwards,omitempty"`
	// OneToOne is a one-to-one NAT's binding; nil for other NATs. Such
	// a NAT has no mappings: its rules hold the binding, as they hold
	// static forwards, and AddStatic adds it.
	OneToOne *Binding `json:"one_to_one,omitempty"`
	// Subscribers are a carrier-grade NAT's subscribers and their port
	// blocks (RFC 6888); none for a NAT without blocks. AddBlocks adds
	// them.
	Subscribers []Subscriber `json:"subscribers,omitempty"`
}

// Subscriber is a node behind a NAT with port blocks: the blocks it
// holds, how many ports it may hold at once, and how many of its ports
// UDP and TCP mappings own now.
type Subscriber struct {
	Node    string         `json:"node"`
	Address netip.Addr     `json:"address"`
	Quota   int            `json:"quota"`
	InUse   map[string]int `json:"in_use"`
	Ranges  []string       `json:"blocks"`
}

// AddBlocks adds the subscribers of n, a NAT of topo with port blocks,
// counting the mappings already in t that own ports of each; it adds
// nothing for another NAT.
func (t *Table) AddBlocks(topo *topology.Topology, n *topology.Node) {
	if n.NAT == nil || !n.NAT.Blocks.Enabled() {
		return
	}
	for _, s := range topo.Subscribers(n) {
		sub := Subscriber{Node: s.Node.Name, Address: s.Addr, Ranges: s.Ranges(), Quota: n.NAT.Blocks.Quota, InUse: map[string]int{"udp": 0, "tcp": 0}}
		for proto, ms := range map[string][]Mapping{"udp": t.Mappings, "tcp": t.TCPMappings} {
			for _, m := range ms {
				for _, r := range s.Blocks {
					if r.Contains(m.Public.Port()) {
						sub.InUse[proto]++
					}
				}
			}
		}
		t.Subscribers = append(t.Subscribers, sub)
	}
}

// Binding is a one-to-one NAT's: Private owns Public, every port of it,
// inbound from anyone and outbound with the ports kept.
type Binding struct {
	Public  netip.Addr `json:"public"`
	Private netip.Addr `json:"private"`
	// Host is the node whose address Private is.
	Host string `json:"host"`
}

// AddOneToOne adds the binding of n, a NAT of topo, if it is a one-to-one
// NAT; it adds nothing for another.
func (t *Table) AddOneToOne(topo *topology.Topology, n *topology.Node) {
	if n.NAT == nil || n.NAT.Type != nat.OneToOne {
		return
	}
	if host, _ := topo.OneToOneHost(n); host != nil {
		t.OneToOne = &Binding{Public: n.Addresses[0], Private: host.Addresses[0], Host: host.Name}
	}
}

// MarshalJSON writes a table with no flows or mappings as empty lists,
// not null.
func (t Table) MarshalJSON() ([]byte, error) {
	type table Table // without this method
	v := table(t)
	if v.Flows == nil {
		v.Flows = []Flow{}
	}
	if v.Mappings == nil {
		v.Mappings = []Mapping{}
	}
	return json.Marshal(v)
}

// AddStatic adds the NAT's static forwards, which its nftables rules
// hold as rules rather than in maps Read can list: proto, public port,
// private endpoint, as the scenario gives them.
func (t *Table) AddStatic(public netip.Addr, forwards []topology.Forward) {
	for _, f := range forwards {
		t.Forwards = append(t.Forwards, Forward{Proto: string(f.Proto), Public: netip.AddrPortFrom(public, f.Port), Private: f.To, By: ByScenario})
	}
	sortForwards(t.Forwards)
}

func sortForwards(fs []Forward) {
	slices.SortFunc(fs, func(a, b Forward) int {
		return cmp.Or(cmp.Compare(a.Public.Port(), b.Public.Port()), cmp.Compare(a.Proto, b.Proto))
	})
}

// Read reads the table of the NAT whose namespace is open as nsFd and
// whose public address is public. Each of its reads is one exchange with
// the kernel, which answers at once; ctx is looked at before each, and
// its deadline bounds those of nftables.
func Read(ctx context.Context, nsFd int, public netip.Addr) (*Table, error) {
	return readPool(ctx, nsFd, []netip.Addr{public}, "", nil)
}

// ReadNAT reads the table of NAT node n, whose namespace is open as nsFd,
// as Read does: a mapping's public address is, for a NAT with a pool of
// them, the one natrules' rules give its owner (natrules.PoolAddr).
func ReadNAT(ctx context.Context, nsFd int, n *topology.Node) (*Table, error) {
	static := map[string]bool{}
	for _, f := range n.NAT.Forwards {
		static[fmt.Sprintf("%s/%d", f.Proto, f.Port)] = true
	}
	return readPool(ctx, nsFd, n.Addresses, n.NAT.Pooling, static)
}

// readPool reads the table; static names the public ports of the static
// forwards ("udp/27015"), which never expire.
func readPool(ctx context.Context, nsFd int, pool []netip.Addr, pooling nat.Pooling, static map[string]bool) (*Table, error) {
	t := &Table{}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	ct, err := conntrack.Dial(&netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	defer ct.Close()
	flows, err := ct.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack dump: %w", err)
	}
	for _, f := range flows {
		if fl, ok := translated(f); ok {
			t.Flows = append(t.Flows, fl)
		}
	}
	slices.SortFunc(t.Flows, func(a, b Flow) int {
		return cmp.Or(cmp.Compare(a.Public.Port(), b.Public.Port()), a.Remote.Compare(b.Remote), cmp.Compare(a.Proto, b.Proto))
	})
	conn, err := dialNFT(ctx, nsFd)
	if err != nil {
		return nil, err
	}
	if t.Mappings, err = readMappings(ctx, conn, pool, pooling); err != nil {
		return nil, err
	}
	if t.TCPMappings, err = readOwners(ctx, conn, pool, pooling, natrules.TCPPortsSet); errors.Is(err, unix.ENOENT) {
		// A one-to-one NAT keeps no mappings, and a lab brought up by
		// an older natlab kept none for TCP.
		t.TCPMappings = nil
	} else if err != nil {
		return nil, err
	}
	heldFor(t.Mappings, "udp", t.Flows, static)
	heldFor(t.TCPMappings, "tcp", t.Flows, static)
	// Port mapping is of NATs with one public address.
	if t.Forwards, err = readLeases(ctx, conn, pool[0]); err != nil {
		return nil, err
	}
	return t, nil
}

// dialNFT opens an nftables connection to the namespace open as nsFd,
// whose exchanges with the kernel end at ctx's deadline.
func dialNFT(ctx context.Context, nsFd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithNetNSFd(nsFd)}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nftables.WithSockOptions(func(c *netlink.Conn) error { return c.SetDeadline(d) }))
	}
	return nftables.New(opts...)
}

// translated turns a conntrack flow into a table row, if the NAT
// translated it.
func translated(f conntrack.Flow) (Flow, bool) {
	o, r := f.TupleOrig, f.TupleReply
	fl := Flow{Proto: protoName(o.Proto), Expires: time.Duration(f.Timeout) * time.Second,
		Packets: f.CountersOrig.Packets + f.CountersReply.Packets, Bytes: f.CountersOrig.Bytes + f.CountersReply.Bytes}
	port := func(t conntrack.Tuple, src bool) uint16 {
		if t.Proto.Protocol == unix.IPPROTO_ICMP {
			return t.Proto.ICMPID
		}
		if src {
			return t.Proto.SourcePort
		}
		return t.Proto.DestinationPort
	}
	ap := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a.Unmap(), p) }
	switch {
	case f.Status.SrcNAT() && !f.Status.DstNAT():
		// Started inside: private -> remote, answers to the public side.
		fl.Private = ap(o.IP.SourceAddress, port(o, true))
		fl.Remote = ap(o.IP.DestinationAddress, port(o, false))
		fl.Public = ap(r.IP.DestinationAddress, port(r, false))
		if o.Proto.Protocol == unix.IPPROTO_ICMP {
			fl.Public = ap(r.IP.DestinationAddress, r.Proto.ICMPID)
		}
	case f.Status.DstNAT():
		// Let in from outside, or looped back (hairpin): remote ->
		// public, answered by the private side.
		fl.Inbound = true
		fl.Remote = ap(o.IP.SourceAddress, port(o, true))
		fl.Public = ap(o.IP.DestinationAddress, port(o, false))
		fl.Private = ap(r.IP.SourceAddress, port(r, true))
		if f.Status.SrcNAT() {
			// The sender is inside too; it appears as its own mapping.
			fl.Hairpin = true
			fl.Remote = ap(r.IP.DestinationAddress, port(r, false))
		}
	default:
		return Flow{}, false
	}
	if f.Status.Offload() {
		// Conntrack holds an offloaded entry a day at a time.
		fl.Offloaded, fl.Expires = true, 0
	}
	switch {
	case f.Status.Assured():
		fl.State = "assured"
	case f.Status.SeenReply():
		fl.State = "replied"
	default:
		fl.State = "unreplied"
	}
	if o.Proto.Protocol == unix.IPPROTO_TCP {
		fl.State += " " + tcpState(f.ProtoInfo)
	}
	return fl, true
}

func protoName(p conntrack.ProtoTuple) string {
	switch p.Protocol {
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	}
	return fmt.Sprint(p.Protocol)
}

var tcpStates = []string{"none", "syn-sent", "syn-recv", "established", "fin-wait", "close-wait", "last-ack", "time-wait", "close", "syn-sent2"}

func tcpState(pi conntrack.ProtoInfo) string {
	if pi.TCP == nil || int(pi.TCP.State) >= len(tcpStates) {
		return "?"
	}
	return tcpStates[pi.TCP.State]
}

// readMappings lists natlab's ports map: public UDP port -> private
// endpoint, each port on its owner's address of pool.
func readMappings(ctx context.Context, conn *nftables.Conn, pool []netip.Addr, pooling nat.Pooling) ([]Mapping, error) {
	maps, err := readOwners(ctx, conn, pool, pooling, natrules.PortsSet)
	if !errors.Is(err, unix.ENOENT) {
		return maps, err
	}
	// A one-to-one NAT's table has no maps: it keeps no mappings.
	if _, err := conn.ListTable(natrules.Table().Name); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("no natlab table here: not a NAT node")
		}
		return nil, fmt.Errorf("read the natlab table: %w", err)
	}
	return nil, nil
}

// heldFor gives the mappings of proto an offloaded NAT keeps, which
// live as long as conntrack's entries of their flows (natrules'
// Config.Offload; their elements have no timeout, Expires zero), the
// lifetime of their longest-lived flow. Static forwards stay zero; a
// mapping whose flows are all gone is about to go (the kernel removes it
// within a second) and stays zero too.
func heldFor(maps []Mapping, proto string, flows []Flow, static map[string]bool) {
	for i, m := range maps {
		if m.Expires != 0 || !m.held || static[fmt.Sprintf("%s/%d", proto, m.Public.Port())] {
			continue
		}
		for _, f := range flows {
			if f.Proto == proto && f.Public == m.Public {
				maps[i].Expires = max(maps[i].Expires, f.Expires)
				maps[i].Offloaded = maps[i].Offloaded || f.Offloaded
			}
		}
	}
}

// readOwners lists a ports map of natlab's (UDP's or TCP's): public port
// -> private endpoint, each port on its owner's address of pool, sorted
// by port. A map the table does not have is
// an error wrapping ENOENT.
func readOwners(ctx context.Context, conn *nftables.Conn, pool []netip.Addr, pooling nat.Pooling, name string) ([]Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read the %s map: %w", name, err)
	}
	set, err := conn.GetSetByName(natrules.Table(), name)
	if err != nil {
		return nil, fmt.Errorf("read the %s map: %w", name, err)
	}
	elems, err := conn.GetSetElements(set)
	if err != nil {
		return nil, fmt.Errorf("read the %s map: %w", name, err)
	}
	var maps []Mapping
	for _, e := range elems {
		o, err := natrules.ParseOwner(e)
		if err != nil {
			return nil, fmt.Errorf("read the %s map: %w", name, err)
		}
		public := natrules.PoolAddr(pooling, pool, o.Private)
		maps = append(maps, Mapping{Public: netip.AddrPortFrom(public, o.Public), Private: o.Private, Expires: e.Expires, held: !set.HasTimeout})
	}
	slices.SortFunc(maps, func(a, b Mapping) int { return cmp.Compare(a.Public.Port(), b.Public.Port()) })
	return maps, nil
}

// readLeases lists the NAT-PMP and PCP leases: the port forward maps a NAT with
// port-mapping has, one for each protocol; a NAT without has none.
func readLeases(ctx context.Context, conn *nftables.Conn, public netip.Addr) ([]Forward, error) {
	var leases []Forward
	for _, proto := range []string{"tcp", "udp"} {
		name := natrules.PortMapSet(proto)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read the map %s: %w", name, err)
		}
		set, err := conn.GetSetByName(natrules.Table(), name)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the map %s: %w", name, err)
		}
		elems, err := conn.GetSetElements(set)
		if err != nil {
			return nil, fmt.Errorf("read the map %s: %w", name, err)
		}
		for _, e := range elems {
			o, err := natrules.ParseOwner(e)
			if err != nil {
				return nil, fmt.Errorf("read the map %s: %w", name, err)
			}
			// The lease's comment names the protocol it was asked by;
			// a lease without one is NAT-PMP's, from before there was PCP.
			by := ByNATPMP
			if e.Comment == ByPCP || e.Comment == ByUPnP {
				by = e.Comment
			}
			leases = append(leases, Forward{Proto: proto, Public: netip.AddrPortFrom(public, o.Public), Private: o.Private, By: by, Expires: e.Expires})
		}
	}
	sortForwards(leases)
	return leases, nil
}
