package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/topology"
)

// datapathLab is one host behind an address-restricted cone NAT (whose
// rules use both kinds of dynamic sets: the maps of endpoint-independent
// mapping and the address set of its filtering) and a server.
const datapathLab = `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, type: address-restricted-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice:  {kind: host, behind: nat, address: 192.168.1.2}
`

// fullSets is how many entries the NAT's sets hold in the last mode.
const fullSets = 10000

// throughput is one measurement: TCP bits/s and UDP packets/s.
type throughput struct{ tcp, udp float64 }

func datapath(ctx context.Context, cfg config, r *report, log io.Writer) (err error) {
	if err := need(cfg, "iperf3"); err != nil {
		r.skip("datapath", "NAT vs plain routing", err.Error())
		return nil
	}
	topo, err := topology.Parse("datapath.yaml", []byte(datapathLab), nil)
	if err != nil {
		return err
	}
	topo.Name = uniqueName("d")
	st, err := lab.Up(ctx, topo, lab.Options{Source: "natlab-bench", Scenario: []byte(datapathLab)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, downLab(st.Name)) }()
	d := &dataLab{name: st.Name, seconds: 3}
	// A full cone offloads where the lab may (the kernel has the
	// flowtable, and netem).
	offloads := st.Flowtable
	rounds := 5
	if cfg.quick {
		d.seconds, rounds = 1, 1
	}
	modes := []struct {
		name string
		set  func() error
	}{
		{"routed", d.routed},
		{"minimal nat", d.minimal},
		{"nat", func() error { return d.natted(ctx) }},
		{fmt.Sprintf("nat, sets of %d", fullSets), func() error { return d.filled(ctx) }},
		{"stateless rewrite", d.stateless},
		{"nat, no refresh", func() error { return d.unrefreshed(ctx) }},
	}
	if offloads {
		modes = append(modes, struct {
			name string
			set  func() error
		}{"nat, offloaded", func() error { return d.offloaded(ctx) }})
	}
	results := map[string][]throughput{}
	for range rounds {
		for _, m := range modes {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := m.set(); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			t, err := d.measure(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[m.name] = append(results[m.name], t)
		}
	}
	med := func(name string) throughput {
		var tcp, udp []float64
		for _, t := range results[name] {
			tcp, udp = append(tcp, t.tcp), append(udp, t.udp)
		}
		slices.Sort(tcp)
		slices.Sort(udp)
		return throughput{tcp[len(tcp)/2], udp[len(udp)/2]}
	}
	routed, minimal, natted, filled, stateless, unrefreshed := med(modes[0].name), med(modes[1].name), med(modes[2].name), med(modes[3].name), med(modes[4].name), med(modes[5].name)
	measured := map[string]map[string]float64{}
	for _, m := range modes {
		t := med(m.name)
		measured[m.name] = map[string]float64{"tcp_bits_per_s": t.tcp, "udp_packets_per_s": t.udp}
		fmt.Fprintf(log, "  %-20s TCP %.2f Gbit/s, UDP %.0f kpps\n", m.name, t.tcp/1e9, t.udp/1e3)
	}
	r.Measured["datapath"] = measured
	r.add(&goal{Suite: "datapath", Name: "TCP throughput, NAT vs plain routing", Value: natted.tcp / routed.tcp, Unit: "x", Target: 0.9, Higher: true,
		Detail: fmt.Sprintf("%.2f vs %.2f Gbit/s", natted.tcp/1e9, routed.tcp/1e9)})
	r.add(&goal{Suite: "datapath", Name: "UDP packets/s, NAT vs plain routing", Value: natted.udp / routed.udp, Unit: "x", Target: 0.9, Higher: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps (64-byte datagrams); conntrack alone: %.0f kpps", natted.udp/1e3, routed.udp/1e3, minimal.udp/1e3)})
	r.add(&goal{Suite: "datapath", Name: "UDP packets/s, NAT vs the kernel's minimal NAT", Value: natted.udp / minimal.udp, Unit: "x", Info: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps; TCP %.2f vs %.2f Gbit/s (conntrack and one snat rule)", natted.udp/1e3, minimal.udp/1e3, natted.tcp/1e9, minimal.tcp/1e9)})
	r.add(&goal{Suite: "datapath", Name: fmt.Sprintf("UDP packets/s, NAT sets of %d vs empty", fullSets), Value: filled.udp / natted.udp, Unit: "x", Target: 0.9, Higher: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps; TCP %.2f vs %.2f Gbit/s", filled.udp/1e3, natted.udp/1e3, filled.tcp/1e9, natted.tcp/1e9)})
	r.add(&goal{Suite: "datapath", Name: "UDP packets/s, NAT without its per-packet refresh vs the NAT", Value: unrefreshed.udp / natted.udp, Unit: "x", Info: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps; %.2fx of the minimal NAT: the most any way of refreshing mappings less often could gain", unrefreshed.udp/1e3, natted.udp/1e3, unrefreshed.udp/minimal.udp)})
	r.add(&goal{Suite: "datapath", Name: "UDP packets/s, stateless rewrite (no conntrack) vs plain routing", Value: stateless.udp / routed.udp, Unit: "x", Info: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps: the most a NAT without connection tracking could do", stateless.udp/1e3, routed.udp/1e3)})
	const offloadGoal = "UDP packets/s, a NAT offloaded to the flowtable (full cone) vs the kernel's minimal NAT"
	if !offloads {
		r.skip("datapath", offloadGoal, "this kernel has no nftables flowtable (or no netem): natlab's NATs take every packet through conntrack and their rules, as measured above")
		return nil
	}
	offloaded := med("nat, offloaded")
	r.add(&goal{Suite: "datapath", Name: offloadGoal, Value: offloaded.udp / minimal.udp, Unit: "x", Info: true,
		Detail: fmt.Sprintf("%.0f vs %.0f kpps; TCP %.2f vs %.2f Gbit/s", offloaded.udp/1e3, minimal.udp/1e3, offloaded.tcp/1e9, minimal.tcp/1e9)})
	return nil
}

// need checks that a Debian package's command is there, installing the
// package unless told not to.
func need(cfg config, command string) error {
	if _, err := exec.LookPath(command); err == nil {
		return nil
	}
	if cfg.noInstall {
		return fmt.Errorf("%s is not installed (-no-install)", command)
	}
	out, err := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install %s: %v: %s", command, err, bytes.TrimSpace(out))
	}
	return nil
}

// dataLab is datapathLab, up, switched between modes.
type dataLab struct {
	name    string
	seconds int
}

func (d *dataLab) ns(node string) string { return lab.NamespaceName(d.name, node) }

// routed removes the NAT's rules and routes the LAN from the server: the
// same path with plain forwarding and nothing for conntrack to do.
func (d *dataLab) routed() error {
	if err := d.bare(); err != nil {
		return err
	}
	return d.serverRouteToLAN(true)
}

// serverRouteToLAN adds or removes the server's route to alice's LAN
// through the NAT node, which plain routing needs and translation must
// not have.
func (d *dataLab) serverRouteToLAN(add bool) error {
	ns, err := namedns.Open(d.ns("server"))
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err != nil {
		return err
	}
	defer h.Close()
	_, lan, _ := net.ParseCIDR("192.168.1.0/24")
	route := &netlink.Route{Dst: lan, Gw: net.ParseIP("203.0.113.1")}
	if add {
		return h.RouteReplace(route)
	}
	if err := h.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("server: remove the route to the LAN: %w", err)
	}
	return nil
}

// bare leaves the NAT node with no rules: its table goes, and with it
// conntrack, which only runs where a rule needs it. It undoes what
// stateless set.
func (d *dataLab) bare() error {
	if err := d.withNFT("nat", func(c *nftables.Conn) {
		t := natrules.Table()
		c.AddTable(t)
		c.DelTable(t)
	}); err != nil {
		return err
	}
	return d.acceptLocal("0")
}

// acceptLocal sets the NAT node's accept_local: whether it takes packets
// whose source is one of its own addresses.
func (d *dataLab) acceptLocal(value string) error {
	ns, err := namedns.Open(d.ns("nat"))
	if err != nil {
		return err
	}
	defer ns.Close()
	return namedns.Do(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/all/accept_local", []byte(value), 0)
	})
}

// stateless translates without connection tracking, by rewriting
// addresses in place before conntrack would see the packets (notrack):
// alice's source becomes the NAT's public address on the way out, and the
// public address alice's on the way back. It is no NAT a user could use
// (one host, no ports, no filtering), only a measure of what rewriting
// packets costs without conntrack: the ceiling of a NAT built that way.
func (d *dataLab) stateless() error {
	if err := d.bare(); err != nil {
		return err
	}
	if err := d.serverRouteToLAN(false); err != nil {
		return err
	}
	// The rewritten source is the NAT's own address, which the kernel
	// would otherwise drop as a martian.
	if err := d.acceptLocal("1"); err != nil {
		return err
	}
	alice, public := []byte{192, 168, 1, 2}, []byte{203, 0, 113, 1}
	rewrite := func(iif string, offset uint32, from, to []byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iif)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: from},
			&expr.Notrack{},
			&expr.Immediate{Register: 1, Data: to},
			// The IPv4 header's checksum, and the TCP or UDP one, which
			// covers the addresses too.
			&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4,
				CsumType: expr.CsumTypeInet, CsumOffset: 10, CsumFlags: unix.NFT_PAYLOAD_L4CSUM_PSEUDOHDR},
		}
	}
	return d.withNFT("nat", func(c *nftables.Conn) {
		t := c.AddTable(natrules.Table())
		ch := c.AddChain(&nftables.Chain{Name: "stateless", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rewrite(lab.NATLAN, 12, alice, public)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rewrite(lab.NATUplink, 16, public, alice)})
	})
}

// minimal replaces the NAT's rules with the least a NAT can be in
// nftables: conntrack and one source NAT rule, as a router's masquerade.
// It is what the kernel's NAT costs, whatever the rules.
func (d *dataLab) minimal() error {
	if err := d.routed(); err != nil {
		return err
	}
	return d.withNFT("nat", func(c *nftables.Conn) {
		t := c.AddTable(natrules.Table())
		ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(lab.NATUplink)},
			&expr.Immediate{Register: 1, Data: []byte{203, 0, 113, 1}},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}})
	})
}

func ifname(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// natted puts the NAT's rules back, as natlab loads them, with empty sets.
func (d *dataLab) natted(ctx context.Context) error {
	_, err := lab.SwitchNAT(ctx, d.name, "nat", nat.AddressRestrictedCone)
	return err
}

// offloaded is natlab's NAT as a full cone, which hands its established
// UDP flows to the kernel's flowtable (natrules.Config.Offload).
func (d *dataLab) offloaded(ctx context.Context) error {
	_, err := lab.SwitchNAT(ctx, d.name, "nat", nat.FullCone)
	return err
}

// unrefreshed is natted with its track chain emptied: the mappings are
// no longer refreshed by their traffic, so they expire as they were made
// (not a NAT to use), and the rest of the rules run as before. What it
// gains over natted is what the per-packet refresh costs.
func (d *dataLab) unrefreshed(ctx context.Context) error {
	if err := d.natted(ctx); err != nil {
		return err
	}
	return d.withNFT("nat", func(c *nftables.Conn) {
		c.FlushChain(&nftables.Chain{Name: natrules.ChainTrack, Table: natrules.Table()})
	})
}

// filled is natted with fullSets entries in every set of the NAT, on
// ports and addresses no packet of the measurement uses.
func (d *dataLab) filled(ctx context.Context) error {
	if err := d.natted(ctx); err != nil {
		return err
	}
	c, done, err := d.nft("nat")
	if err != nil {
		return err
	}
	defer done()
	t := natrules.Table()
	sets := map[string]*nftables.Set{}
	for _, name := range []string{natrules.PortsSet, natrules.MappingsSet, natrules.PermitsSet} {
		if sets[name], err = c.GetSetByName(t, name); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	var ports, mappings, permits []nftables.SetElement
	for i := range fullSets {
		public := uint16(20000 + i)
		private := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 1, byte(100 + i/250)}), uint16(1024+i%250))
		remote := netip.AddrFrom4([4]byte{198, 51, byte(i / 250), byte(i % 250)})
		ports = append(ports, natrules.Owner{Public: public, Private: private}.Element(time.Hour))
		mappings = append(mappings, natrules.Mapping{Private: private, Public: public}.Element(time.Hour))
		permits = append(permits, natrules.Permit{Remote: remote, Public: public}.Element(time.Hour))
	}
	// In batches: one netlink message holds a few hundred.
	const batch = 500
	for name, elems := range map[string][]nftables.SetElement{natrules.PortsSet: ports, natrules.MappingsSet: mappings, natrules.PermitsSet: permits} {
		for i := 0; i < len(elems); i += batch {
			if err := c.SetAddElements(sets[name], elems[i:min(i+batch, len(elems))]); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
			if err := c.Flush(); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
		}
	}
	// Check that they are there: the measurement means nothing otherwise.
	for name, set := range sets {
		got, err := c.GetSetElements(set)
		if err != nil {
			return err
		}
		if len(got) < fullSets {
			return fmt.Errorf("set %s holds %d entries after adding %d", name, len(got), fullSets)
		}
	}
	return nil
}

// nft is a connection to node's nftables; done closes what it holds.
func (d *dataLab) nft(node string) (*nftables.Conn, func(), error) {
	ns, err := namedns.Open(d.ns(node))
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return c, func() { ns.Close() }, nil
}

// withNFT queues what fn adds on node's nftables and applies it.
func (d *dataLab) withNFT(node string, fn func(*nftables.Conn)) error {
	c, done, err := d.nft(node)
	if err != nil {
		return err
	}
	defer done()
	fn(c)
	return c.Flush()
}

// measure runs iperf3 from alice to the server: TCP, then UDP with small
// datagrams as fast as they go. A run that reports nothing (iperf3 does,
// now and then, when its control connection races the test) is repeated.
func (d *dataLab) measure(ctx context.Context) (throughput, error) {
	var t throughput
	var err error
	for try := 0; try < 3; try++ {
		if t, err = d.measureOnce(ctx); err == nil {
			return t, nil
		}
	}
	return t, err
}

func (d *dataLab) measureOnce(ctx context.Context) (throughput, error) {
	var t throughput
	var tcp struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := d.iperf(ctx, &tcp); err != nil {
		return t, err
	}
	var udp struct {
		End struct {
			Sum struct {
				Packets int     `json:"packets"`
				Lost    int     `json:"lost_packets"`
				Seconds float64 `json:"seconds"`
			} `json:"sum"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := d.iperf(ctx, &udp, "-u", "-b", "0", "-l", "64"); err != nil {
		return t, err
	}
	t.tcp = tcp.End.SumReceived.BitsPerSecond
	if s := udp.End.Sum; s.Seconds > 0 {
		t.udp = float64(s.Packets-s.Lost) / s.Seconds
	}
	if t.tcp == 0 || t.udp == 0 {
		return t, fmt.Errorf("iperf3 measured nothing: TCP %v bit/s (%s), UDP %v packets/s (%s)", t.tcp, tcp.Error, t.udp, udp.Error)
	}
	return t, nil
}

// iperf runs one iperf3 server for one test, and the client against it.
func (d *dataLab) iperf(ctx context.Context, result any, args ...string) error {
	server := exec.CommandContext(ctx, "ip", "netns", "exec", d.ns("server"), "iperf3", "-s", "-1", "-p", "5201")
	if err := server.Start(); err != nil {
		return err
	}
	defer server.Wait()
	defer server.Process.Kill()
	var out []byte
	var err error
	// The server takes a moment to listen.
	for try := 0; try < 50; try++ {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", d.ns("alice"), "iperf3", "-c", "203.0.113.10", "-p", "5201",
			"-t", fmt.Sprint(d.seconds), "--json"}, args...)...)
		out, err = cmd.Output()
		var failed struct {
			Error string `json:"error"`
		}
		json.Unmarshal(out, &failed)
		if err == nil && failed.Error == "" {
			return json.Unmarshal(out, result)
		}
		if failed.Error != "" {
			err = errors.New(failed.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("iperf3: %v: %s", err, out)
}
