package natrules

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	vnl "github.com/vishvananda/netlink"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/internal/testutil"
)

// The kernel facts a NAT whose mappings live by conntrack's own timeouts
// would stand on, instead of natlab's per-packet refresh (issue 19): a
// dynamic map's element that carries "ct count over 0" lives while a
// conntrack entry it counted lives and is removed by the set's garbage
// collection once none does; and a flow the nftables flowtable offloads,
// whose packets skip every chain, keeps its conntrack entry, and so the
// element, alive until it is idle. Each is checked on a router of three
// namespaces: a sends UDP to b through r, whose table holds the element.
// The flowtable half runs where the kernel has one (make vm-test's
// Debian kernel); this kernel has none and says so.
func TestConntrackHoldsElements(t *testing.T) {
	testutil.RequireRoot(t)
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			t.Parallel()
			const lifetime = 2 * time.Second
			rt := newRouted(t)
			has, err := HasFlowtable(rt.r.Fd())
			if err != nil {
				t.Fatal(err)
			}
			if offload && !has {
				t.Skip("this kernel has no nftables flowtable (CONFIG_NF_FLOW_TABLE): nothing is offloaded here")
			}
			rt.sysctl(t, "net.netfilter.nf_conntrack_udp_timeout", lifetime)
			rt.sysctl(t, "net.netfilter.nf_conntrack_udp_timeout_stream", lifetime)
			if offload {
				// The flowtable gives an idle flow back to conntrack
				// after this (30 s by default), with conntrack's timeout
				// less the time it already sat idle.
				rt.sysctl(t, "net.netfilter.nf_flowtable_udp_timeout", lifetime)
			}
			rt.loadHolder(t, offload)

			a, b := rt.sockets(t)
			send := func() {
				t.Helper()
				if _, err := a.WriteToUDPAddrPort([]byte("ping"), rt.bAddr); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 16)
				b.SetReadDeadline(time.Now().Add(time.Second))
				n, from, err := b.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("b did not get a's packet: %v", err)
				}
				// b answers, so that the flow is established (the
				// flowtable offloads only those).
				if _, err := b.WriteToUDPAddrPort(buf[:n], from); err != nil {
					t.Fatal(err)
				}
				a.SetReadDeadline(time.Now().Add(time.Second))
				if _, _, err := a.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatalf("a did not get b's answer: %v", err)
				}
			}
			// Traffic for twice the lifetime: the element stays.
			for end := time.Now().Add(2 * lifetime); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				send()
			}
			if !rt.held(t) {
				t.Fatalf("after %v of traffic with conntrack's UDP timeouts at %v the element is gone", 2*lifetime, lifetime)
			}
			if offload && !rt.offloaded(t) {
				t.Fatal("the flow's conntrack entry is not offloaded (no IPS_OFFLOAD) after its packets met the flow add rule")
			}
			// Idle: the element goes once the entry expires, within the
			// garbage collections that follow (the set's, once a second
			// by default, and the flowtable's).
			idle := time.Now()
			for rt.held(t) {
				if time.Since(idle) > 3*lifetime {
					t.Fatalf("the element is still there %v after the flow went idle, with conntrack's UDP timeouts at %v", time.Since(idle), lifetime)
				}
				time.Sleep(20 * time.Millisecond)
			}
			gone := time.Since(idle)
			t.Logf("offload=%v: the element went %v after the last packet (lifetime %v)", offload, gone.Round(time.Millisecond), lifetime)
			// An offloaded flow's timeout is refreshed at most once a
			// second (flow_offload_refresh), so the flowtable may give
			// it back to conntrack up to a second and the gap between
			// two packets (200 ms and a round trip) before its lifetime
			// from the last packet; conntrack then has the rest of its
			// timeout less the flowtable's (here none) to run.
			early := 100 * time.Millisecond
			if offload {
				early = 1500 * time.Millisecond
			}
			if gone < lifetime-early {
				t.Errorf("the element went %v after the last packet, more than %v before conntrack's timeout of %v", gone, early, lifetime)
			}
		})
	}
}

// routed is a router r between a and b, each in a namespace of its own.
type routed struct {
	a, r, b *namedns.NS
	// aAddr is a's socket; bAddr b's.
	aAddr, bAddr netip.AddrPort
	table        *nftables.Table
	set          *nftables.Set
}

func newRouted(t *testing.T) *routed {
	rt := &routed{table: &nftables.Table{Name: "held", Family: nftables.TableFamilyIPv4},
		aAddr: netip.MustParseAddrPort("10.91.0.1:4000"), bAddr: netip.MustParseAddrPort("10.91.1.1:5000")}
	rt.a, _ = testutil.NewNS(t, "ha")
	rt.r, _ = testutil.NewNS(t, "hr")
	rt.b, _ = testutil.NewNS(t, "hb")
	hr, err := namedns.Netlink(rt.r.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	for _, side := range []struct {
		ns             *namedns.NS
		dev, peer      string
		addr, peerAddr string
	}{
		{rt.a, "r0", "a0", "10.91.0.2/24", "10.91.0.1/24"},
		{rt.b, "r1", "b0", "10.91.1.2/24", "10.91.1.1/24"},
	} {
		veth := &vnl.Veth{LinkAttrs: vnl.LinkAttrs{Name: side.dev}, PeerName: side.peer, PeerNamespace: vnl.NsFd(side.ns.Fd())}
		if err := hr.LinkAdd(veth); err != nil {
			t.Fatalf("add veth %s: %v", side.dev, err)
		}
		up(t, hr, side.dev, side.addr)
		h, err := namedns.Netlink(side.ns.Fd())
		if err != nil {
			t.Fatal(err)
		}
		up(t, h, side.peer, side.peerAddr)
		up(t, h, "lo", "")
		gw := netip.MustParsePrefix(side.addr).Addr()
		if err := h.RouteAdd(&vnl.Route{Gw: gw.AsSlice()}); err != nil {
			t.Fatalf("default route via %v: %v", gw, err)
		}
		h.Close()
	}
	rt.sysctlRaw(t, "net.ipv4.ip_forward", "1")
	return rt
}

func up(t *testing.T, h *vnl.Handle, dev, addr string) {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s: %v", dev, err)
	}
	if addr != "" {
		a, err := vnl.ParseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatalf("%s: add %s: %v", dev, addr, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("%s: up: %v", dev, err)
	}
}

func (rt *routed) sysctl(t *testing.T, name string, d time.Duration) {
	rt.sysctlRaw(t, name, fmt.Sprint(int(d.Seconds())))
}

func (rt *routed) sysctlRaw(t *testing.T, name, value string) {
	t.Helper()
	p := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := namedns.Do(rt.r, func() error { return os.WriteFile(p, []byte(value), 0o644) }); err != nil {
		t.Fatalf("r: sysctl %s=%s: %v", name, value, err)
	}
}

func (rt *routed) dial(t *testing.T) *nftconn.Conn {
	t.Helper()
	conn, err := nftconn.Dial(rt.r.Fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// loadHolder gives r a map of source endpoint -> destination port whose
// elements count the flows that made them, added by a flow's first
// packet only, and, with offload, a flowtable that takes established
// flows.
func (rt *routed) loadHolder(t *testing.T, offload bool) {
	conn := rt.dial(t)
	conn.AddTable(rt.table)
	keyType, err := nftables.ConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	if err != nil {
		t.Fatal(err)
	}
	rt.set = &nftables.Set{Table: rt.table, Name: "held", IsMap: true, Dynamic: true, KeyType: keyType, DataType: nftables.TypeInetService, Concatenation: true}
	if err := conn.AddSet(rt.set, nil); err != nil {
		t.Fatal(err)
	}
	policy := nftables.ChainPolicyAccept
	fwd := conn.AddChain(&nftables.Chain{Name: "forward", Table: rt.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	add := func(stmts ...stmt) {
		conn.AddRule(&nftables.Rule{Table: rt.table, Chain: fwd, Exprs: rule{stmts: stmts}.exprs()})
	}
	add(ctStateNew(), l4proto("udp", false), hold(rt.set.Name, []field{ipSaddr, udpSport}, []field{udpDport}))
	if offload {
		ft := conn.AddFlowtable(&nftables.Flowtable{Table: rt.table, Name: "ft", Hooknum: nftables.FlowtableHookIngress,
			Priority: nftables.FlowtablePriorityRef(0), Devices: []string{"r0", "r1"}})
		add(ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED, "ct state established"), l4proto("udp", false),
			stmt{"flow add @ft", []expr.Any{&expr.FlowOffload{Name: ft.Name}}})
	}
	if err := conn.Flush(); err != nil {
		t.Fatalf("load the holder: %v", err)
	}
}

func (rt *routed) sockets(t *testing.T) (a, b *net.UDPConn) {
	listen := func(ns *namedns.NS, at netip.AddrPort) *net.UDPConn {
		var c *net.UDPConn
		err := namedns.Do(ns, func() (err error) {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return listen(rt.a, rt.aAddr), listen(rt.b, rt.bAddr)
}

// held says whether r's map holds a's endpoint.
func (rt *routed) held(t *testing.T) bool {
	t.Helper()
	// Reads go through google/nftables's own socket: nftconn's relays
	// batches.
	conn, err := nftables.New(nftables.WithNetNSFd(rt.r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseLasting()
	elems, err := conn.GetSetElements(rt.set)
	if err != nil {
		t.Fatalf("list the held map: %v", err)
	}
	key := append(rt.aAddr.Addr().AsSlice(), binary.BigEndian.AppendUint16(nil, rt.aAddr.Port())...)
	key = append(key, 0, 0) // each part of a concatenation is 4 bytes
	for _, e := range elems {
		if bytes.Equal(e.Key, key) {
			return true
		}
	}
	return false
}

// offloaded says whether r's conntrack entry of a's flow is offloaded.
func (rt *routed) offloaded(t *testing.T) bool {
	t.Helper()
	ct, err := conntrack.Dial(&netlink.Config{NetNS: rt.r.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	flows, err := ct.Dump(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if f.TupleOrig.IP.SourceAddress == rt.aAddr.Addr() && f.TupleOrig.Proto.SourcePort == rt.aAddr.Port() {
			return f.Status.Offload()
		}
	}
	t.Fatal("r has no conntrack entry of a's flow")
	return false
}
