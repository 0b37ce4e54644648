package natpmp_test

import (
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natpmp"
)

const scenario = `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: nat-pmp}
  console: {kind: host, behind: home}
`

// natlab's own client asks; a friend outside then reaches the console.
func TestMapThroughNATPMP(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, scenario)
	c, _ := l.ListenUDP("console", ":0")
	client := natpmp.Client{Conn: c, Gateway: l.Topo.Node("home").NAT.Gateway}
	ext, err := client.ExternalAddress(t.Context())
	if err != nil || ext != l.Addr("home", 0) {
		t.Fatalf("external address %v, %v; want %v", ext, err, l.Addr("home", 0))
	}
	l.TCPListen("console", ":25565")
	public := netip.AddrPortFrom(ext, 25565)
	if _, err := l.TCPDial("friend", public.String(), 500*time.Millisecond); err == nil {
		t.Fatal("the friend reached the console before any mapping")
	}
	m, err := client.Map(t.Context(), "tcp", 25565, 25565, time.Hour)
	if err != nil || m.External != 25565 || m.Lifetime != time.Hour {
		t.Fatalf("map: %+v, %v", m, err)
	}
	if got, err := l.TCPDial("friend", public.String(), 2*time.Second); err != nil || got != "hello from console" {
		t.Errorf("friend -> %v after the mapping: %q, %v", public, got, err)
	}
	// UDP too.
	u, err := client.Map(t.Context(), "udp", 5000, 5000, time.Minute)
	if err != nil || u.External != 5000 {
		t.Fatalf("map udp: %+v, %v", u, err)
	}
	game := l.UDP("console", ":5000")
	l.UDP("friend", "").Send(netip.AddrPortFrom(ext, 5000), "udp through nat-pmp")
	game.Expect("udp through nat-pmp", 2*time.Second)
	// Deleting the TCP mapping closes the door again.
	if _, err := client.Map(t.Context(), "tcp", 25565, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TCPDial("friend", public.String(), 500*time.Millisecond); err == nil {
		t.Error("the friend still reached the console after the mapping was deleted")
	}
}

// natpmpc, an independent client from Debian, gets a mapping too, from
// a NAT that speaks NAT-PMP alone and from one that speaks PCP beside it
// on the same port.
func TestNatpmpc(t *testing.T) {
	testutil.CheckRoutines(t)
	testutil.RequireTool(t, "natpmpc")
	for name, sc := range map[string]string{"nat-pmp": scenario, "nat-pmp and pcp": bothScenario} {
		t.Run(name, func(t *testing.T) {
			l := labtest.Up(t, sc)
			gw := l.Topo.Node("home").NAT.Gateway.String()
			out, err := exec.Command("ip", "netns", "exec", l.Namespace("console"), "natpmpc", "-g", gw, "-a", "8080", "8080", "tcp", "600").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Mapped public port 8080 protocol TCP to local port 8080") ||
				!strings.Contains(string(out), "Public IP address : "+l.Addr("home", 0).String()) {
				t.Fatalf("natpmpc: %v\n%s", err, out)
			}
			l.TCPListen("console", ":8080")
			if got, err := l.TCPDial("friend", l.Addr("home", 0).String()+":8080", 2*time.Second); err != nil || got != "hello from console" {
				t.Errorf("friend through natpmpc's mapping: %q, %v", got, err)
			}
		})
	}
}

// A UDP lease is in the NAT's maps as nft, a reader independent of
// natlab's encoders, lists them: the forward, the port's owner, and under
// endpoint-independent mapping the host's mapping (its own traffic out
// uses the port too); an address-dependent mapping map, keyed by the
// remote too, is left alone. Deleting the lease takes it all out again.
func TestLeaseInTheNATsMaps(t *testing.T) {
	testutil.CheckRoutines(t)
	testutil.RequireTool(t, "nft")
	for _, tc := range []struct {
		name, knobs string
		mapping     bool
	}{
		{"endpoint-independent", "type: port-restricted-cone", true},
		{"address-dependent", "mapping: address-dependent, filtering: address-and-port-dependent", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  home:    {kind: nat, `+tc.knobs+`, port-mapping: nat-pmp}
  console: {kind: host, behind: home}
`)
			c, _ := l.ListenUDP("console", ":0")
			client := natpmp.Client{Conn: c, Gateway: l.Topo.Node("home").NAT.Gateway}
			if m, err := client.Map(t.Context(), "udp", 5000, 5001, time.Minute); err != nil || m.External != 5001 {
				t.Fatalf("map udp: %+v, %v", m, err)
			}
			console := regexp.QuoteMeta(l.Addr("console", 0).String())
			list := func(set string) string {
				out, err := exec.Command("ip", "netns", "exec", l.Namespace("home"), "nft", "list", "map", "ip", "natlab", set).CombinedOutput()
				if err != nil {
					t.Fatalf("nft list map %s: %v\n%s", set, err, out)
				}
				return string(out)
			}
			// The forward says by which protocol it was asked; the ports
			// map's owner is the NAT's own element.
			for set, comment := range map[string]string{"portmap_udp": `comment "nat-pmp" `, "ports": ""} {
				owner := regexp.MustCompile(`[{,] 5001 timeout 1m expires \S+ ` + comment + `: ` + console + ` \. 5000[ ,}]`)
				if got := list(set); !owner.MatchString(got) {
					t.Errorf("map %s holds no %v:\n%s", set, owner, got)
				}
			}
			mapping := regexp.MustCompile(`[{,] ` + console + ` \. 5000 timeout 1m expires \S+ : 5001[ ,}]`)
			if got := list("mappings"); mapping.MatchString(got) != tc.mapping {
				t.Errorf("map mappings holds %v: %v, want %v:\n%s", mapping, !tc.mapping, tc.mapping, got)
			}
			if _, err := client.Map(t.Context(), "udp", 5000, 0, 0); err != nil {
				t.Fatal(err)
			}
			for _, set := range []string{"portmap_udp", "ports", "mappings"} {
				if got := list(set); regexp.MustCompile(console + ` \. 5000`).MatchString(got) {
					t.Errorf("map %s still holds the lease after it was deleted:\n%s", set, got)
				}
			}
		})
	}
}

// A host that already sends from a port, and so has a public port for it,
// asks to map that port with no suggestion: the NAT grants the mapping
// the host has, as a real router does, so the socket keeps one public
// endpoint for every destination (endpoint-independent mapping). Before,
// it was granted a second, random port, and a new destination saw that.
func TestGrantKeepsTheMappingAHostHas(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  friend:  {kind: host}
  other:   {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: nat-pmp}
  console: {kind: host, behind: home}
`)
	friend, other := l.UDP("friend", ":7000"), l.UDP("other", ":7000")
	game := l.UDP("console", ":41641")
	game.Send(netip.AddrPortFrom(l.Addr("friend", 0), 7000), "first")
	before := friend.Expect("first", 2*time.Second)

	c, _ := l.ListenUDP("console", ":0")
	client := natpmp.Client{Conn: c, Gateway: l.Topo.Node("home").NAT.Gateway}
	m, err := client.Map(t.Context(), "udp", 41641, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m.External != before.Port() {
		t.Errorf("granted public port %d; the host's socket already has %d", m.External, before.Port())
	}
	game.Send(netip.AddrPortFrom(l.Addr("other", 0), 7000), "second")
	if after := other.Expect("second", 2*time.Second); after != before {
		t.Errorf("a new destination sees %v; the first saw %v", after, before)
	}
}
