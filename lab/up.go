package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// Options describe where a topology came from, for the lab's record.
type Options struct {
	// Source is the scenario's path, or "builtin:NAME".
	Source string
	// Scenario is the scenario file's content.
	Scenario []byte
}

// Up builds topo in the kernel and records it. If anything fails, or ctx
// is cancelled (Ctrl-C), everything built so far is removed before Up
// returns, and the record with it.
func Up(ctx context.Context, topo *topology.Topology, opts Options) (*labstate.State, error) {
	if len(opts.Scenario) == 0 {
		return nil, fmt.Errorf("lab %s: no scenario to record (Options.Scenario)", topo.Name)
	}
	lock, err := labstate.Acquire(topo.Name)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if _, err := labstate.Load(topo.Name); err == nil {
		return nil, fmt.Errorf("lab %s is %w: take it down with `natlab down %s`, or bring the file up under another name with --name", topo.Name, ErrExists, topo.Name)
	} else if !errors.Is(err, labstate.ErrNotFound) {
		return nil, err
	}

	st := &labstate.State{
		Version:  labstate.FormatVersion,
		Name:     topo.Name,
		ID:       newID(),
		Source:   opts.Source,
		Scenario: opts.Scenario,
		Created:  time.Now().UTC().Truncate(time.Second),
	}
	st.Namespaces = append(st.Namespaces, labstate.Namespace{Name: NamespaceName(topo.Name, topology.Internet)})
	for _, n := range topo.Nodes {
		st.Namespaces = append(st.Namespaces, labstate.Namespace{Name: NamespaceName(topo.Name, n.Name), Node: n.Name})
	}
	for _, n := range topo.Nodes {
		if slices.Contains(n.Services, topology.ServiceTURN) {
			st.TURN = labstate.TURNCredentials{Realm: "natlab", User: "natlab", Password: newID()}
			break
		}
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Lstat(namedns.Path(ns.Name)); err == nil {
			return nil, fmt.Errorf("lab %s: namespace %s exists already and is not this lab's; another lab's names may overlap (lab a-b node c and lab a node b-c are both natlab-a-b-c): choose another lab name with --name", topo.Name, ns.Name)
		}
	}
	// The record goes first, so a crash at any later point leaves enough
	// for `natlab down` to find everything.
	if err := labstate.Save(st); err != nil {
		// Save may have written the secret before the record failed (a
		// full /run): nothing of this lab may stay.
		labstate.Remove(topo.Name)
		return nil, fmt.Errorf("lab %s: write record: %w", topo.Name, err)
	}

	b := &builder{topo: topo, st: st, ns: map[string]*namedns.NS{}, nl: map[string]*netlink.Handle{}, raw: map[string]*nl.SocketHandle{}}
	err = b.build(ctx)
	b.close()
	if err == nil {
		st.Complete = true
		err = labstate.Save(st)
	}
	if err != nil {
		if rerr := remove(st); rerr != nil {
			err = fmt.Errorf("%w; removing what was built also failed: %v (run `natlab down %s`)", err, rerr, topo.Name)
		} else {
			labstate.Remove(topo.Name)
		}
		return nil, fmt.Errorf("lab %s: %w", topo.Name, err)
	}
	return st, nil
}

// builder holds the open handles of one bring-up.
type builder struct {
	topo *topology.Topology
	st   *labstate.State
	// mu guards the maps and st while the steps of a phase run in
	// parallel.
	mu sync.Mutex
	// ns and nl are keyed by node name; the internet's by topology.Internet.
	ns map[string]*namedns.NS
	nl map[string]*netlink.Handle
	// raw are sockets in the same namespaces as nl, for the requests
	// netlink.Handle cannot make in one message.
	raw map[string]*nl.SocketHandle
	// bridges are the segments' bridges' indexes, keyed by the NAT that
	// owns the segment ("" for the internet).
	bridges map[string]int
	// services are the service processes launched, not yet serving.
	services []*launched
	// links are the plans of the lab's shaped links, by namespace (nil
	// when every link is a perfect wire), mech their mechanism, and
	// delayLine the delay line launched for them, not yet bound.
	links     map[string]*linkshape.Plan
	mech      linkshape.Mechanism
	delayLine *service.Launched
}

type launched struct {
	node string
	l    *service.Launched
}

func (b *builder) close() {
	for _, h := range b.nl {
		h.Close()
	}
	for _, s := range b.raw {
		s.Close()
	}
	for _, ns := range b.ns {
		ns.Close()
	}
}

// build brings the lab up in phases, each a barrier for the next; within
// a phase the nodes are independent (each works in its own namespace
// through its own netlink handle) and are done in parallel, as the kernel
// can do much of it at once.
func (b *builder) build(ctx context.Context) error {
	if err := namedns.Prepare(); err != nil {
		return err
	}
	nodes := b.topo.Nodes
	// The internet's namespace is named for topology.Internet and has
	// no node.
	// A server's service process is launched as soon as its namespace
	// exists, and starts up while the rest is built: it may bind its
	// addresses before they are there (ip_nonlocal_bind).
	err := each(ctx, len(nodes)+1, func(i int) error {
		if i == len(nodes) {
			return b.createNamespace(ctx, topology.Internet, nil)
		}
		n := nodes[i]
		if err := b.createNamespace(ctx, n.Name, n); err != nil {
			return err
		}
		if service.PlanFor(n).Any() {
			return b.launchServices(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := b.recordLinks(); err != nil {
		return err
	}
	var nats []*topology.Node
	for _, n := range nodes {
		if n.Kind == topology.KindNAT {
			nats = append(nats, n)
		}
	}
	b.findFlowtable(nats)
	b.bridges = map[string]int{}
	err = each(ctx, len(nats)+1, func(i int) error {
		if i == len(nats) {
			return b.addBridge("", topology.Internet, InternetBridge)
		}
		n := nats[i]
		addrs := []netip.Prefix{netip.PrefixFrom(n.NAT.Gateway, n.NAT.LAN.Bits())}
		if n.NAT.Gateway6.IsValid() {
			addrs = append(addrs, netip.PrefixFrom(n.NAT.Gateway6, n.NAT.LAN6.Bits()))
		}
		return b.addBridge(n.Name, n.Name, NATLAN, addrs...)
	})
	if err != nil {
		return err
	}
	if err := b.plugUplinks(ctx); err != nil {
		return err
	}
	if err := b.planLinks(); err != nil {
		return err
	}
	err = each(ctx, len(nodes)+1, func(i int) error {
		if i == len(nodes) {
			return b.shape(topology.Internet)
		}
		n := nodes[i]
		if err := b.configureNode(n); err != nil {
			return err
		}
		if n.Kind == topology.KindNAT {
			if err := b.loadNAT(n); err != nil {
				return err
			}
		}
		if n.Firewall != topology.FirewallNone {
			if err := b.loadFirewall(n); err != nil {
				return err
			}
		}
		return b.shape(n.Name)
	})
	if err != nil {
		return err
	}
	if err := b.waitLinksUp(ctx); err != nil {
		return err
	}
	return b.waitServices()
}

// buildWorkers is how many steps of a phase run at once: more than the
// cores, since much of each step is waiting on the kernel.
const buildWorkers = 8

// each runs fn(0) to fn(n-1) on up to buildWorkers goroutines and returns
// the first error; after an error, or with ctx done, no more are started.
func each(ctx context.Context, n int, fn func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(n, buildWorkers) {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// createNamespace makes the namespace of node n (nil for the internet),
// marked and with its sysctls set before it gets its name.
func (b *builder) createNamespace(ctx context.Context, node string, n *topology.Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := NamespaceName(b.topo.Name, node)
	markerNode := node
	if n == nil {
		markerNode = ""
	}
	// The node's netlink handle is opened while the new namespace is the
	// thread's own: a socket opened there belongs to it for good, which
	// spares entering the namespace again to open one.
	var h *netlink.Handle
	var raw *nl.NetlinkSocket
	ns, err := namedns.Create(name, func() error {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		if raw, err = nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		if err := markLoopback(&nl.SocketHandle{Socket: raw}, marker(b.topo.Name, markerNode, b.st.ID)); err != nil {
			return err
		}
		return initSysctls(n, b.topo.Internet6.IsValid())
	})
	if err != nil {
		if h != nil {
			h.Close()
		}
		if raw != nil {
			raw.Close()
		}
	}
	if errors.Is(err, os.ErrExist) {
		// Another lab whose names overlap this one's made it since Up's
		// check. It is not ours: the rollback must not look at it, or it
		// would delete the other lab's mount point before that is mounted
		// (an empty file, as a crash leaves), or refuse to remove our
		// record because of its marker.
		b.mu.Lock()
		b.st.Namespaces = slices.DeleteFunc(b.st.Namespaces, func(ns labstate.Namespace) bool { return ns.Name == name })
		b.mu.Unlock()
		return fmt.Errorf("namespace %s was just made by another lab; its names overlap this one's (lab a-b node c and lab a node b-c are both natlab-a-b-c): choose another lab name with --name", name)
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ns[node] = ns
	b.nl[node] = h
	b.raw[node] = &nl.SocketHandle{Socket: raw}
	return nil
}

// markLoopback brings a new namespace's loopback up with the marker as
// its alias, in one request. A namespace's loopback is always its link 1.
func markLoopback(sock *nl.SocketHandle, marker string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sock}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index, msg.Flags, msg.Change = 1, unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(marker)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("mark and bring up the loopback: %w", err)
	}
	return nil
}

// initSysctls runs inside a new namespace. IPv6 is off: natlab's NATs
// translate IPv4, and IPv6 link-local traffic would cross a lab's wall.
// A bridge must not hand bridged frames to the NAT's filter rules, which
// br_netfilter does when loaded (Docker loads it).
func initSysctls(n *topology.Node, dualStack bool) error {
	settings := [][2]string{
		{"net.ipv6.conf.all.disable_ipv6", "1"},
		{"net.ipv6.conf.default.disable_ipv6", "1"},
	}
	if dualStack {
		// IPv6 on, with addresses usable at once (no duplicate address
		// detection, which would make them wait a second or two) and
		// nothing configured behind natlab's back (no router adverts).
		settings = [][2]string{
			{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"},
			{"net.ipv6.conf.all.accept_ra", "0"}, {"net.ipv6.conf.default.accept_ra", "0"},
			{"net.ipv6.conf.all.autoconf", "0"}, {"net.ipv6.conf.default.autoconf", "0"},
		}
	}
	if n != nil && service.PlanFor(n).Any() {
		// Services start before their addresses are configured.
		settings = append(settings, [2]string{"net.ipv4.ip_nonlocal_bind", "1"})
		if dualStack {
			settings = append(settings, [2]string{"net.ipv6.ip_nonlocal_bind", "1"})
		}
	}
	if n != nil && n.Kind == topology.KindNAT {
		settings = append(settings, [2]string{"net.ipv4.ip_forward", "1"})
		if dualStack {
			settings = append(settings, [2]string{"net.ipv6.conf.all.forwarding", "1"})
		}
	}
	for _, s := range settings {
		if err := writeSysctl(s[0], s[1]); err != nil {
			return err
		}
	}
	if n == nil || n.Kind == topology.KindNAT {
		// A bridge is a switch: frames between two ports of a LAN must not
		// pass the NAT's own IPv4, IPv6 or ARP filters, as they do in a
		// namespace where br_netfilter (loaded by Docker, among others)
		// still has its default of 1. The IPv6 one dropped neighbour
		// solicitations between two hosts of a dual-stack LAN.
		for _, family := range []string{"iptables", "ip6tables", "arptables"} {
			if err := writeSysctlIfPresent("net.bridge.bridge-nf-call-"+family, "0"); err != nil {
				return err
			}
		}
	}
	return nil
}

// addBridge creates the bridge of segment (the NAT that owns it, "" for
// the internet) in node's namespace, up, with the addresses given.
func (b *builder) addBridge(segment, node, name string, addrs ...netip.Prefix) error {
	h := b.nl[node]
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, Flags: net.FlagUp, Index: bridgeIndex}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("node %s: add bridge %s: %w", node, name, err)
	}
	for _, addr := range addrs {
		if err := h.AddrAdd(br, addrOf(addr)); err != nil {
			return fmt.Errorf("node %s: address %v on %s: %w", node, addr, name, err)
		}
	}
	b.mu.Lock()
	b.bridges[segment] = br.Index
	b.mu.Unlock()
	return nil
}

// addrOf is a netlink address; IPv6 ones skip duplicate address detection.
func addrOf(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// portIndexBase numbers the bridge's end of each node's veth pair, far
// above the indexes the kernel hands out by itself in a lab namespace.
// The two ends of a pair live in different namespaces, which number their
// links apart; were both ends to get the same number, the kernel would
// take the pair for an ordinary link and delay bringing it up by as much
// as a second (linkwatch's rate limit). The node's end gets a small
// number, so the two never meet.
const portIndexBase = 1 << 16

// uplinkIndex is the node's end of its uplink in every node's namespace,
// and bridgeIndex a segment's bridge in the namespace that holds it. They
// are set rather than left to the kernel so that the uplink can be
// configured without asking the kernel for its number.
const (
	uplinkIndex = 2
	bridgeIndex = 3
)

// plugUplinks creates every node's veth pair from the namespace of the
// bridge it plugs into, with the other end created directly in the node's
// namespace: no link ever exists in the root namespace. Segments are
// plugged in parallel, the nodes of one segment in turn.
func (b *builder) plugUplinks(ctx context.Context) error {
	segments := map[string][]*topology.Node{}
	var owners []string
	for _, n := range b.topo.Nodes {
		if _, ok := segments[n.Behind]; !ok {
			owners = append(owners, n.Behind)
		}
		segments[n.Behind] = append(segments[n.Behind], n)
	}
	return each(ctx, len(owners), func(i int) error {
		owner := owners[i]
		nsKey := owner
		if owner == "" {
			nsKey = topology.Internet
		}
		nodes := segments[owner]
		ports := portNames(nodes)
		for _, n := range nodes {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := addVeth(b.raw[nsKey], vethEnd{name: ports[n.Name], index: portIndexBase + slices.Index(b.topo.Nodes, n), master: b.bridges[owner]},
				vethEnd{name: Uplink(n), index: uplinkIndex}, b.ns[n.Name].Fd())
			if err != nil {
				return fmt.Errorf("node %s: add veth %s/%s: %w", n.Name, ports[n.Name], Uplink(n), err)
			}
		}
		return nil
	})
}

// vethEnd is one end of a veth pair: its name, index and, if it is a
// bridge's port, the bridge.
type vethEnd struct {
	name          string
	index, master int
}

// addVeth creates a veth pair in one request: end in the namespace of
// sock, up and enslaved to its bridge, and peer, down, in the namespace of
// peerNS. netlink.Handle.LinkAdd would take two (creation, then the
// master), and a third to find the peer's number.
func addVeth(sock *nl.SocketHandle, end, peer vethEnd, peerNS int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sock}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index, msg.Flags, msg.Change = int32(end.index), unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(end.name)))
	if end.master != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(end.master))))
	}
	// A queue length of 0, as netlink.Handle gives a veth: the kernel then
	// gives it no queueing discipline.
	req.AddData(nl.NewRtAttr(unix.IFLA_TXQLEN, nl.Uint32Attr(0)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peerAttr := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	peerMsg := nl.NewIfInfomsgChild(peerAttr, unix.AF_UNSPEC)
	// Not up: the kernel would open the peer before the pair is joined,
	// and refuse (ENOTCONN).
	peerMsg.Index = int32(peer.index)
	peerAttr.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(peer.name))
	peerAttr.AddRtAttr(unix.IFLA_TXQLEN, nl.Uint32Attr(0))
	peerAttr.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(peerNS)))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// configureNode brings a node's uplink up with its addresses and, behind a
// NAT, a default route to the NAT's LAN address.
func (b *builder) configureNode(n *topology.Node) error {
	h := b.nl[n.Name]
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: Uplink(n), Index: uplinkIndex}}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("node %s: %s up: %w", n.Name, Uplink(n), err)
	}
	var addrs []netip.Prefix
	for _, a := range n.Addresses {
		addrs = append(addrs, netip.PrefixFrom(a, b.topo.Uplink(n).Bits()))
	}
	for _, a := range n.Addresses6 {
		addrs = append(addrs, netip.PrefixFrom(a, b.topo.Uplink6(n).Bits()))
	}
	for _, a := range addrs {
		if err := h.AddrAdd(link, addrOf(a)); err != nil {
			return fmt.Errorf("node %s: address %v: %w", n.Name, a, err)
		}
	}
	var routes []*netlink.Route
	if gw, ok := b.topo.Gateway(n); ok {
		routes = append(routes, &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()})
	}
	if gw, ok := b.topo.Gateway6(n); ok {
		routes = append(routes, &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice(), Family: unix.AF_INET6})
	}
	for _, r := range routes6(b.topo, n) {
		// The next hop is on the uplink or, for a NAT, on its LAN: let the
		// kernel find which.
		routes = append(routes, &netlink.Route{Dst: ipNet(r.dst), Gw: r.via.AsSlice()})
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("node %s: route %v via %v: %w", n.Name, r.Dst, r.Gw, err)
		}
	}
	return nil
}

type route struct {
	dst netip.Prefix
	via netip.Addr
}

// routes6 are the IPv6 routes node n needs besides its default route:
// IPv6 has no NAT, so every LAN's prefix must be routed to the NAT in
// front of it. A node on the internet sends a LAN's traffic to the first
// NAT on the way to it; a NAT on that way, to the next one. Nodes behind
// a NAT reach everything else through their default route.
func routes6(topo *topology.Topology, n *topology.Node) []route {
	if !topo.Internet6.IsValid() {
		return nil
	}
	var routes []route
	for _, nat := range topo.Nodes {
		if nat.NAT == nil || !nat.NAT.LAN6.IsValid() || nat == n {
			continue
		}
		var chain []*topology.Node // from the internet down to nat
		for c := nat; c != nil; c = topo.Node(c.Behind) {
			chain = append([]*topology.Node{c}, chain...)
			if c.Behind == "" {
				break
			}
		}
		via := netip.Addr{}
		for i, c := range chain[:len(chain)-1] {
			if c == n {
				via = chain[i+1].Addresses6[0]
			}
		}
		if !via.IsValid() && n.Behind == "" {
			via = chain[0].Addresses6[0]
		}
		if via.IsValid() {
			routes = append(routes, route{nat.NAT.LAN6, via})
		}
	}
	return routes
}

// loadNAT loads the NAT's nftables table in one transaction, then sets
// conntrack's timeouts and accounting (conntrackSysctls).
func (b *builder) loadNAT(n *topology.Node) error {
	rs, err := Rules(b.topo, n, b.st.Flowtable)
	if err != nil {
		return err
	}
	conn, err := nftconn.Dial(b.ns[n.Name].Fd())
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer conn.Close()
	if err := rs.AddTo(conn.Conn); err != nil {
		return fmt.Errorf("node %s: rules: %w", n.Name, err)
	}
	if fw := n.NAT.Firewall6; fw != "" {
		rs6, err := natrules.BuildFirewall6(natrules.Firewall6Config{WAN: NATUplink, LAN: NATLAN, Filtering: fw, Timeout: n.NAT.Behaviour.Timeout.UDP, TCPTimeout: n.NAT.Behaviour.Timeout.TCPEstablished})
		if err != nil {
			return fmt.Errorf("node %s: IPv6 firewall: %w", n.Name, err)
		}
		if err := rs6.AddTo(conn.Conn); err != nil {
			return fmt.Errorf("node %s: IPv6 firewall: %w", n.Name, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("node %s: load nftables table: %w", n.Name, err)
	}
	return namedns.Do(b.ns[n.Name], func() error {
		for _, s := range conntrackSysctls(n.NAT.Behaviour.Timeout) {
			if err := writeSysctl(s[0], s[1]); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if b.st.Flowtable {
			// The flowtable gives an idle flow back to conntrack after
			// this, with conntrack's timeout less this to run: no more
			// than the mapping timeout, or the flow would outlive it.
			// Set wherever the NATs may offload, for one that offloads
			// only once its type changes. (Linux 5.17 made it a sysctl;
			// before, it is 30 s.)
			udp := fmt.Sprint(int(min(n.NAT.Behaviour.Timeout.UDP, flowtableIdle).Seconds()))
			if err := writeSysctlIfPresent("net.netfilter.nf_flowtable_udp_timeout", udp); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		return nil
	})
}

// loadFirewall loads host n's own firewall table in its namespace, the
// one table natlab makes there; it names no address, so it needs nothing
// when the host moves.
func (b *builder) loadFirewall(n *topology.Node) error {
	rs := FirewallRules(n)
	conn, err := nftconn.Dial(b.ns[n.Name].Fd())
	if err != nil {
		return fmt.Errorf("node %s: firewall: %w", n.Name, err)
	}
	defer conn.Close()
	if err := rs.AddTo(conn.Conn); err != nil {
		return fmt.Errorf("node %s: firewall: %w", n.Name, err)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("node %s: load the firewall's nftables table: %w", n.Name, err)
	}
	return nil
}

// flowtableIdle is how long the flowtable keeps an idle flow by default
// (nf_flowtable_udp_timeout and _tcp_timeout).
const flowtableIdle = 30 * time.Second

// conntrackSysctls are what a NAT's namespace sets of conntrack, each a
// sysctl and its value, in the NAT's namespace only, never in the root
// namespace (they are per namespace): the timeouts, in whole seconds,
// and accounting. UDP's are the mapping timeout, so that conntrack and
// natlab's maps forget a mapping together; TCP's and ICMP's are
// conntrack's alone, which translates those protocols. A transitory TCP
// connection (RFC 5382) is one opening (SYN sent or received) or closing
// (FIN wait, close wait, last ACK, time wait); after a reset (close) and
// with data unacknowledged, conntrack keeps its own timeouts.
// nf_conntrack_acct counts each flow's packets and bytes, which natlab
// table shows; it is off by default.
func conntrackSysctls(t nat.Timeouts) [][2]string {
	secs := func(d time.Duration) string { return fmt.Sprint(int(math.Ceil(d.Seconds()))) }
	const p = "net.netfilter.nf_conntrack_"
	out := [][2]string{
		{p + "udp_timeout", secs(t.UDP)},
		{p + "udp_timeout_stream", secs(t.UDP)},
		{p + "tcp_timeout_established", secs(t.TCPEstablished)},
	}
	for _, state := range []string{"syn_sent", "syn_recv", "fin_wait", "close_wait", "last_ack", "time_wait"} {
		out = append(out, [2]string{p + "tcp_timeout_" + state, secs(t.TCPTransitory)})
	}
	return append(out, [2]string{p + "icmp_timeout", secs(t.ICMP)}, [2]string{p + "acct", "1"})
}

// launchServices starts the service process of server node n, which
// waitServices then waits for.
func (b *builder) launchServices(n *topology.Node) error {
	if err := os.MkdirAll(labstate.LogDir(b.topo.Name), 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(labstate.LogDir(b.topo.Name), n.Name+".log")
	// Other namespaces of this phase are being added to b.ns meanwhile.
	b.mu.Lock()
	ns := b.ns[n.Name]
	b.mu.Unlock()
	l, err := service.Launch(ns, b.topo.Name, n.Name, logPath)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	b.mu.Lock()
	b.services = append(b.services, &launched{n.Name, l})
	b.mu.Unlock()
	return nil
}

// recordLinks records the conditions of the links the scenario shapes
// and, if it shapes any, finds the lab's mechanism.
func (b *builder) recordLinks() error {
	for _, n := range b.topo.Nodes {
		if !n.Link.IsZero() {
			if b.st.Links == nil {
				b.st.Links = map[string]labstate.LinkState{}
			}
			b.st.Links[n.Name] = labstate.LinkState{Link: n.Link}
		}
	}
	if len(b.st.Links) == 0 {
		return nil
	}
	mech, err := linkshape.Detect(b.ns[topology.Internet].Fd())
	if err != nil {
		return err
	}
	b.mech, b.st.LinkMechanism = mech, string(mech)
	return nil
}

// planLinks plans the shaped links, once every uplink exists, and
// launches the delay line if they need one: it binds its queues while the
// rest is built.
func (b *builder) planLinks() error {
	if len(b.st.Links) == 0 {
		return nil
	}
	wires := Wires(b.topo.Name, b.topo)
	links := linkStates(b.st)
	b.links = linkshape.PlanLab(wires, links, b.mech)
	if len(linkshape.Queues(b.links)) == 0 {
		return nil
	}
	// The delay line reads the links from the record.
	if err := labstate.Save(b.st); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	l, err := launchDelayLine(b.ns[topology.Internet], b.topo.Name)
	if err != nil {
		return err
	}
	b.delayLine = l
	return nil
}

// shape makes the namespace of node (topology.Internet for the
// internet's) hold what the lab's links need there.
func (b *builder) shape(node string) error {
	p := b.links[NamespaceName(b.topo.Name, node)]
	if p == nil || p.IsZero() {
		return nil
	}
	if err := linkshape.ApplyNew(b.ns[node].Fd(), b.nl[node], p, b.mech); err != nil {
		if node == topology.Internet {
			return fmt.Errorf("the internet: links: %w", err)
		}
		return fmt.Errorf("node %s: link: %w", node, err)
	}
	return nil
}

// waitServices waits for every service process to serve, and for the
// delay line to hold its queues, and records each.
func (b *builder) waitServices() error {
	var errs []error
	if b.delayLine != nil {
		proc, err := b.delayLine.Wait()
		if err != nil {
			errs = append(errs, err)
		} else {
			start, _ := startTime(proc.Pid)
			b.st.Processes = append(b.st.Processes, labstate.Process{PID: proc.Pid, What: DelayLineProcess, StartTime: start})
		}
	}
	for _, s := range b.services {
		proc, err := s.l.Wait()
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", s.node, err))
			continue
		}
		start, _ := startTime(proc.Pid)
		b.st.Processes = append(b.st.Processes, labstate.Process{PID: proc.Pid, Node: s.node, What: "services", StartTime: start})
	}
	return errors.Join(errs...)
}

// FirewallRules returns the table of host n's firewall, as Up loads it
// in the host's namespace.
func FirewallRules(n *topology.Node) *natrules.Ruleset {
	return natrules.BuildHostFirewall(natrules.HostFirewallConfig{IPv6: len(n.Addresses6) > 0})
}

// Rules returns the ruleset of NAT node n of topo, as Up loads it. A
// one-to-one NAT's rules name the host behind it, whose address owns the
// NAT's public address.
//
// flowtable says the kernel has the nftables flowtable (the lab's record
// says whether it had when the lab came up): a NAT that can then
// offloads its established flows (natrules.Config.Offload).
func Rules(topo *topology.Topology, n *topology.Node, flowtable bool) (*natrules.Ruleset, error) {
	cfg, err := natConfig(topo, n)
	if err != nil {
		return nil, err
	}
	cfg.Offload = flowtable && cfg.OffloadProblem() == ""
	rs, err := natrules.Build(cfg)
	if err != nil {
		return nil, fmt.Errorf("node %s: rules: %w", n.Name, err)
	}
	return rs, nil
}

// OffloadProblem says why NAT node n does not offload its flows on a
// kernel with the flowtable, "" if it does.
func OffloadProblem(topo *topology.Topology, n *topology.Node) string {
	cfg, err := natConfig(topo, n)
	if err != nil {
		return err.Error()
	}
	return cfg.OffloadProblem()
}

// natConfig is what NAT node n's rules are built from.
func natConfig(topo *topology.Topology, n *topology.Node) (natrules.Config, error) {
	cfg := natrules.Config{
		Public:      n.Addresses[0],
		WAN:         NATUplink,
		LAN:         NATLAN,
		Behaviour:   n.NAT.Behaviour,
		PortMapping: len(n.NAT.PortMapping) > 0,
	}
	if len(n.Addresses) > 1 {
		// A pool: every address is on the uplink (configureNode), so
		// the uplink's segment reaches each of them without a route.
		cfg.Pool, cfg.Pooling = n.Addresses, n.NAT.Pooling
	}
	if n.NAT.Type == nat.OneToOne {
		host, msg := topo.OneToOneHost(n)
		if host == nil {
			return cfg, fmt.Errorf("node %s: rules: %s", n.Name, msg)
		}
		cfg.OneToOne = host.Addresses[0]
	}
	for _, f := range n.NAT.Forwards {
		cfg.Forwards = append(cfg.Forwards, natrules.Forward{Proto: string(f.Proto), Port: f.Port, To: f.To, Name: f.ToNode})
	}
	if n.NAT.Blocks.Enabled() {
		cfg.Blocks = n.NAT.Blocks
		for _, s := range topo.Subscribers(n) {
			cfg.Subscribers = append(cfg.Subscribers, natrules.Subscriber{Addr: s.Addr, Blocks: s.Blocks})
		}
	}
	return cfg, nil
}

// findFlowtable records whether the NATs may offload: the kernel has the
// nftables flowtable, and netem for the links (natlab's delay line would
// miss offloaded packets), asked in the first NAT's namespace. A NAT
// whose knobs allow then offloads, at up or when a change of its type
// allows it (natrules.Config.OffloadProblem).
func (b *builder) findFlowtable(nats []*topology.Node) {
	if len(nats) == 0 {
		return
	}
	n := nats[0]
	fd := b.ns[n.Name].Fd()
	// The answers only allow offloading: a kernel that refuses the
	// trial for another reason than lacking the flowtable (or netem)
	// gets the per-packet rules, which work everywhere.
	if has, err := natrules.HasFlowtable(fd); err != nil || !has {
		return
	}
	if mech, err := linkshape.Detect(fd); err == nil && mech == linkshape.Netem {
		b.st.Flowtable = true
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
