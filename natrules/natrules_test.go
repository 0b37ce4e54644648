package natrules

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	vnl "github.com/vishvananda/netlink"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nat"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

type goldenCase struct {
	name string
	cfg  Config
}

var short = map[nat.Dependence]string{
	nat.EndpointIndependent:     "ei",
	nat.AddressDependent:        "ad",
	nat.AddressAndPortDependent: "apd",
}

// baseConfig is a NAT with behaviour b, refreshed both ways unless b says.
func baseConfig(b nat.Behaviour) Config {
	if b.Refresh == "" {
		b.Refresh = nat.RefreshBoth
	}
	return Config{Public: netip.MustParseAddr("203.0.113.1"), WAN: "eth0", LAN: "lan0", Behaviour: b}
}

// goldenCases is every combination of mapping, filtering, port allocation
// and hairpinning, plus forwards and non-default ranges and timeouts.
func goldenCases() []goldenCase {
	var cases []goldenCase
	for _, m := range nat.Dependences {
		for _, f := range nat.Dependences {
			for _, p := range nat.PortAllocations {
				for _, hairpin := range []bool{true, false} {
					name := fmt.Sprintf("%sm-%sf-%s", short[m], short[f], p)
					if !hairpin {
						name += "-nohairpin"
					}
					cases = append(cases, goldenCase{name, baseConfig(nat.Behaviour{
						Mapping: m, Filtering: f, Ports: p, PortRange: nat.DefaultPortRange,
						Hairpin: hairpin, Timeout: nat.DefaultTimeouts,
					})})
				}
			}
		}
	}
	forwards := []Forward{
		{Proto: "tcp", Port: 25565, To: netip.MustParseAddrPort("192.168.1.2:25565"), Name: "minecraft"},
		{Proto: "udp", Port: 27015, To: netip.MustParseAddrPort("192.168.1.3:27016")},
	}
	for _, t := range nat.Types {
		c := baseConfig(nat.Behaviour{Mapping: t.Mapping(), Filtering: t.Filtering(), Ports: t.DefaultPorts(),
			PortRange: nat.DefaultPortRange, Hairpin: false, Timeout: nat.DefaultTimeouts})
		c.Forwards = forwards
		cases = append(cases, goldenCase{string(t) + "-forwards", c})
	}
	story := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.AddressAndPortDependent,
		Ports: nat.PortSequential, PortRange: nat.PortRange{First: 48721, Last: 65535}, Hairpin: true, Timeout: nat.UDPOnly(30*time.Second + 500*time.Millisecond)})
	story.Public = netip.MustParseAddr("203.0.113.50")
	story.WAN, story.LAN = "wan", "lan"
	cases = append(cases, goldenCase{"story-sequential", story})
	pmp := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.AddressAndPortDependent,
		Ports: nat.PortPreserve, PortRange: nat.DefaultPortRange, Hairpin: true, Timeout: nat.DefaultTimeouts})
	pmp.PortMapping = true
	cases = append(cases, goldenCase{"port-mapping", pmp})
	// Refresh outbound: inbound traffic goes through the expire chain
	// instead of refreshing, for the two ways inbound packets come in.
	for _, typ := range []nat.Type{nat.FullCone, nat.PortRestrictedCone} {
		c := baseConfig(nat.Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: nat.PortPreserve,
			PortRange: nat.DefaultPortRange, Hairpin: true, Timeout: nat.DefaultTimeouts, Refresh: nat.RefreshOutbound})
		cases = append(cases, goldenCase{string(typ) + "-refresh-outbound", c})
	}
	small := baseConfig(nat.Behaviour{Mapping: nat.AddressAndPortDependent, Filtering: nat.EndpointIndependent,
		Ports: nat.PortPreserve, PortRange: nat.PortRange{First: 40000, Last: 40003}, Hairpin: false, Timeout: nat.DefaultTimeouts})
	cases = append(cases, goldenCase{"small-range", small})
	// Every port may be kept: the preserving rule has no range to check.
	whole := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.AddressAndPortDependent,
		Ports: nat.PortPreserve, PortRange: nat.PortRange{First: 1, Last: 65535}, Hairpin: true, Timeout: nat.DefaultTimeouts})
	cases = append(cases, goldenCase{"whole-range", whole})
	// Offloaded to the flowtable, mappings kept by conntrack: with a
	// mappings map and without.
	for _, typ := range []nat.Type{nat.FullCone, nat.Symmetric} {
		c := baseConfig(nat.Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: typ.DefaultPorts(),
			PortRange: nat.DefaultPortRange, Hairpin: true, Timeout: nat.DefaultTimeouts})
		c.Offload = true
		cases = append(cases, goldenCase{string(typ) + "-offload", c})
	}
	// A one-to-one NAT: the behaviour a file gives it, for every port to
	// be its host's, with and without hairpinning.
	for _, hairpin := range []bool{true, false} {
		c := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.EndpointIndependent,
			Ports: nat.PortPreserve, PortRange: nat.DefaultPortRange, Hairpin: hairpin, Timeout: nat.DefaultTimeouts})
		c.OneToOne = netip.MustParseAddr("192.168.1.2")
		name := "one-to-one"
		if !hairpin {
			name += "-nohairpin"
		}
		cases = append(cases, goldenCase{name, c})
	}
	// A pool of public addresses: each classic type with paired and
	// with arbitrary pooling, hairpinning (whose permits record the
	// address a packet was sent to), and one with forwards.
	pool := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.3")}
	for _, t := range nat.Types {
		for _, pl := range nat.Poolings {
			c := baseConfig(nat.Behaviour{Mapping: t.Mapping(), Filtering: t.Filtering(), Ports: t.DefaultPorts(),
				PortRange: nat.DefaultPortRange, Hairpin: true, Timeout: nat.DefaultTimeouts})
			c.Pool, c.Pooling = pool, pl
			cases = append(cases, goldenCase{string(t) + "-pool-" + string(pl), c})
		}
	}
	fwd := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.AddressDependent, Ports: nat.PortPreserve,
		PortRange: nat.DefaultPortRange, Hairpin: false, Timeout: nat.DefaultTimeouts})
	fwd.Pool, fwd.Pooling, fwd.Forwards = pool[:2], nat.PoolingPaired, forwards
	cases = append(cases, goldenCase{"pool-forwards", fwd})
	// Port blocks (RFC 6888): a carrier-grade NAT's classic setting,
	// port-restricted cone with random ports, ICMP when exhausted and the
	// reuse delay; and the other mappings, sequential, dropping, without
	// a delay, on a short range.
	subs := func(r nat.PortRange, b nat.PortBlocks) []Subscriber {
		var s []Subscriber
		for i, a := range []string{"100.64.0.2", "100.64.0.3"} {
			s = append(s, Subscriber{Addr: netip.MustParseAddr(a), Blocks: b.Blocks(i, r)})
		}
		return s
	}
	for _, bc := range []struct {
		name   string
		m, f   nat.Dependence
		ports  nat.PortAllocation
		blocks nat.PortBlocks
	}{
		{"cgn", nat.EndpointIndependent, nat.AddressAndPortDependent, nat.PortRandom,
			nat.PortBlocks{Size: 4, Count: 2, Quota: 6, ICMP: true, ReuseDelay: nat.DefaultReuseDelay}},
		{"cgn-adm-sequential-drop", nat.AddressDependent, nat.AddressDependent, nat.PortSequential,
			nat.PortBlocks{Size: 2, Count: 1, Quota: 2}},
		{"cgn-apdm-icmp", nat.AddressAndPortDependent, nat.EndpointIndependent, nat.PortRandom,
			nat.PortBlocks{Size: 2, Count: 1, Quota: 2, ICMP: true}},
	} {
		r := nat.PortRange{First: 20000, Last: 20015}
		c := baseConfig(nat.Behaviour{Mapping: bc.m, Filtering: bc.f, Ports: bc.ports, PortRange: r, Hairpin: true, Timeout: nat.DefaultTimeouts})
		c.Blocks, c.Subscribers = bc.blocks, subs(r, bc.blocks)
		cases = append(cases, goldenCase{bc.name, c})
	}
	return cases
}

// firewall6Cases are the IPv6 firewall's tables, one per filtering.
func firewall6Cases() []struct {
	name string
	cfg  Firewall6Config
} {
	var cases []struct {
		name string
		cfg  Firewall6Config
	}
	for _, f := range nat.Dependences {
		cases = append(cases, struct {
			name string
			cfg  Firewall6Config
		}{"firewall6-" + short[f] + "f", Firewall6Config{WAN: "wan0", LAN: "lan0", Filtering: f, Timeout: nat.DefaultTimeout}})
	}
	return cases
}

func goldenPath(name string) string { return filepath.Join("testdata", name+".nft") }

// allCases builds every golden ruleset: the NAT tables, the IPv6
// firewall tables and a host's firewall.
func allCases(t *testing.T) map[string]*Ruleset {
	out := map[string]*Ruleset{}
	for _, tc := range goldenCases() {
		rs, err := Build(tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out[tc.name] = rs
	}
	for _, tc := range firewall6Cases() {
		rs, err := BuildFirewall6(tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out[tc.name] = rs
	}
	// A host's firewall, in an IPv4-only lab and in a dual-stack one.
	out["host-firewall"] = BuildHostFirewall(HostFirewallConfig{})
	out["host-firewall-ipv6"] = BuildHostFirewall(HostFirewallConfig{IPv6: true})
	return out
}

func TestGolden(t *testing.T) {
	for name, rs := range allCases(t) {
		t.Run(name, func(t *testing.T) {
			got := rs.String()
			path := goldenPath(name)
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./natrules -update` to create it)", err)
			}
			if got != string(want) {
				t.Errorf("ruleset differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

func TestBuildRejectsBadConfig(t *testing.T) {
	good := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.EndpointIndependent,
		Ports: nat.PortPreserve, PortRange: nat.DefaultPortRange, Timeout: nat.UDPOnly(time.Minute)})
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"ipv6 public", func(c *Config) { c.Public = netip.MustParseAddr("2001:db8::1") }, "not IPv4"},
		{"long interface", func(c *Config) { c.WAN = "a-very-long-interface" }, "WAN interface name"},
		{"same interfaces", func(c *Config) { c.LAN = c.WAN }, "both"},
		{"bad mapping", func(c *Config) { c.Behaviour.Mapping = "cone" }, "mapping: unknown value"},
		{"bad filtering", func(c *Config) { c.Behaviour.Filtering = "" }, "filtering: unknown value"},
		{"bad ports", func(c *Config) { c.Behaviour.Ports = "odd" }, "ports: unknown value"},
		{"empty range", func(c *Config) { c.Behaviour.PortRange = nat.PortRange{First: 10, Last: 9} }, "port range"},
		{"short timeout", func(c *Config) { c.Behaviour.Timeout.UDP = time.Millisecond }, "timeout"},
		{"bad refresh", func(c *Config) { c.Behaviour.Refresh = "sideways" }, "refresh: unknown value"},
		{"offload, refresh outbound", func(c *Config) { c.Offload, c.Behaviour.Refresh = true, nat.RefreshOutbound }, "offload: refresh outbound"},
		{"offload, short timeout", func(c *Config) { c.Offload = true; c.Behaviour.Timeout.UDP = 5 * time.Second }, "offload: UDP timeout 5s"},
		{"bad forward proto", func(c *Config) {
			c.Forwards = []Forward{{Proto: "sctp", Port: 1, To: netip.MustParseAddrPort("10.0.0.1:1")}}
		}, "tcp or udp"},
		{"one-to-one v6", func(c *Config) { c.OneToOne = netip.MustParseAddr("fd00::2") }, "not IPv4"},
		{"one-to-one to itself", func(c *Config) { c.OneToOne = c.Public }, "is the public one"},
		{"one-to-one with a forward", func(c *Config) {
			c.OneToOne = netip.MustParseAddr("10.0.0.2")
			c.Forwards = []Forward{{Proto: "udp", Port: 1, To: netip.MustParseAddrPort("10.0.0.2:1")}}
		}, "no forwards and no port mapping"},
		{"one-to-one with port mapping", func(c *Config) {
			c.OneToOne, c.PortMapping = netip.MustParseAddr("10.0.0.2"), true
		}, "no forwards and no port mapping"},
		{"forward twice", func(c *Config) {
			f := Forward{Proto: "udp", Port: 1, To: netip.MustParseAddrPort("10.0.0.1:1")}
			c.Forwards = []Forward{f, f}
		}, "given twice"},
	}
	if _, err := Build(good); err != nil {
		t.Fatalf("good config rejected: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			_, err := Build(c)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("Build error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

var counters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// TestKernelListsGolden loads every golden ruleset into a fresh namespace
// through netlink, as a lab does, and checks that nft, an independent reader of the
// kernel's state, lists exactly the golden text back. This is what keeps
// the text next to each rule honest.
func TestKernelListsGolden(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "nft")
	for caseName, rs := range allCases(t) {
		t.Run(caseName, func(t *testing.T) {
			_, name := loadInNS(t, "rules", rs)
			wantGolden(t, name, caseName, "nft lists")
		})
	}
}

// loadInNS loads rs into a fresh namespace through the connection
// natlab's labs load their tables with, and returns the connection
// (closed when the test ends) and the namespace's name.
func loadInNS(t *testing.T, prefix string, rs *Ruleset) (*nftconn.Conn, string) {
	t.Helper()
	ns, name := testutil.NewNS(t, prefix)
	skipWithoutFlowtable(t, ns.Fd(), rs)
	conn, err := nftconn.Dial(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := rs.AddTo(conn.Conn); err != nil {
		t.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatalf("kernel refused the ruleset: %v", err)
	}
	return conn, name
}

// wantGolden wants nft, in namespace name, to list golden case caseName's
// text; what says what is listed in the message when it does not.
func wantGolden(t *testing.T, name, caseName, what string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", name, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, out)
	}
	want, err := os.ReadFile(goldenPath(caseName))
	if err != nil {
		t.Fatal(err)
	}
	if got := counters.ReplaceAllString(string(out), "counter packets 0 bytes 0"); got != string(want) {
		t.Errorf("%s something else than %s:\n%s", what, goldenPath(caseName), lineDiff(string(want), got))
	}
}

// lineDiff shows the lines that differ, enough to see what went wrong.
func lineDiff(want, got string) string {
	wl := bytes.Split([]byte(want), []byte("\n"))
	gl := bytes.Split([]byte(got), []byte("\n"))
	var b bytes.Buffer
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, w, g)
		}
	}
	return b.String()
}

// TestForgetLeavesTheTableAsLoaded fills every set of a loaded table
// with an element the NAT could have learnt, then has Forget empty them:
// nft must list exactly the golden text again, the static forwards in
// their maps and nothing else.
func TestForgetLeavesTheTableAsLoaded(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "nft")
	cases := allCases(t)
	for _, caseName := range []string{"full-cone-forwards", "port-mapping", "eim-adf-preserve", "firewall6-eif", "firewall6-adf", "pool-forwards", "symmetric-pool-arbitrary"} {
		rs := cases[caseName]
		if rs == nil {
			t.Fatalf("no golden case %s", caseName)
		}
		t.Run(caseName, func(t *testing.T) {
			conn, name := loadInNS(t, "forget", rs)
			learnt := 0
			for _, s := range rs.sets {
				if s.fixed {
					// A pool's sets: nothing is learnt into them.
					continue
				}
				key := bytes.Repeat([]byte{1}, int(s.spec.KeyType.Bytes))
				var val []byte
				if s.spec.IsMap {
					val = bytes.Repeat([]byte{2}, int(s.spec.DataType.Bytes))
				}
				if err := conn.SetAddElements(s.spec, []nftables.SetElement{{Key: key, Val: val, Timeout: time.Minute}}); err != nil {
					t.Fatal(err)
				}
				learnt++
			}
			if err := conn.Flush(); err != nil {
				t.Fatalf("adding what the NAT learnt: %v", err)
			}
			if learnt == 0 {
				t.Fatal("the table has no set; the test proves nothing")
			}
			if err := rs.Forget(conn.Conn); err != nil {
				t.Fatal(err)
			}
			if err := conn.Flush(); err != nil {
				t.Fatalf("forget: %v", err)
			}
			wantGolden(t, name, caseName, "after Forget nft lists")
		})
	}
}

// skipWithoutFlowtable skips the test of an offloaded NAT's ruleset on a
// kernel without the flowtable, which refuses it, and on one with it
// gives the namespace the devices the flowtable names, which must exist.
func skipWithoutFlowtable(t *testing.T, nsFd int, rs *Ruleset) {
	t.Helper()
	if !rs.Offloads() {
		return
	}
	has, err := HasFlowtable(nsFd)
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		t.Skip("an offloaded NAT's table needs the nftables flowtable, which this kernel does not have")
	}
	h, err := namedns.Netlink(nsFd)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range rs.flowtable.Devices {
		if err := h.LinkAdd(&vnl.Dummy{LinkAttrs: vnl.LinkAttrs{Name: name}}); err != nil {
			t.Fatalf("add device %s: %v", name, err)
		}
	}
}

// A NAT offloads only what conntrack can keep: whatever needs every
// packet of a flow says why not.
func TestOffloadProblem(t *testing.T) {
	base := baseConfig(nat.Behaviour{Mapping: nat.EndpointIndependent, Filtering: nat.EndpointIndependent,
		Ports: nat.PortPreserve, PortRange: nat.DefaultPortRange, Timeout: nat.DefaultTimeouts})
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" offloads
	}{
		{"full cone, 2m", func(*Config) {}, ""},
		{"symmetric", func(c *Config) {
			c.Behaviour.Mapping, c.Behaviour.Filtering = nat.AddressAndPortDependent, nat.AddressAndPortDependent
		}, ""},
		{"20s", func(c *Config) { c.Behaviour.Timeout.UDP = OffloadMinLifetime }, ""},
		{"19s", func(c *Config) { c.Behaviour.Timeout.UDP = 19 * time.Second }, "UDP timeout 19s"},
		{"not whole seconds", func(c *Config) { c.Behaviour.Timeout.UDP = 30*time.Second + time.Millisecond }, "UDP timeout 30s1ms"},
		{"refresh outbound", func(c *Config) { c.Behaviour.Refresh = nat.RefreshOutbound }, "refresh outbound"},
		{"address-dependent filtering", func(c *Config) { c.Behaviour.Filtering = nat.AddressDependent }, "address-dependent filtering"},
		{"port mapping", func(c *Config) { c.PortMapping = true }, "port mapping"},
		{"one-to-one", func(c *Config) { c.OneToOne = netip.MustParseAddr("192.168.1.2") }, "one-to-one"},
		{"port-restricted cone, hairpin", func(c *Config) { c.Behaviour.Filtering, c.Behaviour.Hairpin = nat.AddressAndPortDependent, true }, "hairpinning"},
		{"port-restricted cone, no hairpin", func(c *Config) { c.Behaviour.Filtering = nat.AddressAndPortDependent }, ""},
		{"full cone, hairpin", func(c *Config) { c.Behaviour.Hairpin = true }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			got := c.OffloadProblem()
			if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
				t.Errorf("OffloadProblem() = %q, want %q", got, tc.want)
			}
		})
	}
}
