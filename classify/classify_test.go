package classify_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/service"
)

func discover(t *testing.T, l *labtest.Lab, node string, lifetime bool, max time.Duration) *classify.Result {
	t.Helper()
	// The lab's own STUN service, started by lab.Up in the server node.
	server := service.PlanFor(l.Topo.Node("server")).STUNServer()
	res, err := classify.Discover(context.Background(), classify.Options{
		Server: server,
		Local:  l.Addr(node, 0),
		Listen: func(local string) (*net.UDPConn, error) {
			return l.ListenUDP(node, local)
		},
		Lifetime:    lifetime,
		LifetimeMax: max,
	})
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	return res
}

const lab = `
nodes:
  server: {kind: server, services: [stun]}
  nat:    {kind: nat, %s}
  h1:     {kind: host, behind: nat}
`

// Every mapping, filtering and port allocation natlab can build is
// reported exactly as configured. Hairpinning (always on here) is seen
// wherever a hairpinned packet can pass the filtering: behind an
// endpoint-independent mapping or filtering. Otherwise the test's packets
// reach the public address through new mappings, which no filtering but
// an endpoint-independent one admits (RFC 4787 REQ-9).
func TestDiscoverEveryCombination(t *testing.T) {
	for _, m := range nat.Dependences {
		for _, f := range nat.Dependences {
			for _, p := range nat.PortAllocations {
				t.Run(fmt.Sprintf("%s/%s/%s", m, f, p), func(t *testing.T) {
					t.Parallel()
					l := labtest.Up(t, fmt.Sprintf(lab, fmt.Sprintf("mapping: %s, filtering: %s, ports: %s", m, f, p)))
					res := discover(t, l, "h1", false, 0)
					if !res.Behind || res.Public.Addr() != l.Addr("nat", 0) {
						t.Errorf("behind=%v public=%v; want behind the NAT at %v", res.Behind, res.Public, l.Addr("nat", 0))
					}
					seen := m == nat.EndpointIndependent || f == nat.EndpointIndependent
					if res.Mapping != m || res.Filtering != f || res.Ports != p || res.Hairpin != seen {
						t.Errorf("discovered mapping %s, filtering %s, ports %s (%v), hairpin %v; configured %s, %s, %s, hairpin true (seen: %v)",
							res.Mapping, res.Filtering, res.Ports, res.PortsSeen, res.Hairpin, m, f, p, seen)
					}
					if typ, ok := nat.TypeOf(m, f); ok && res.Type != typ {
						t.Errorf("type %q, want %q", res.Type, typ)
					}
					if res.Unsolicited {
						t.Error("an unsolicited packet to a port the host never sent from got in")
					}
				})
			}
		}
	}
}

// Behind a one-to-one NAT, RFC 5780's tests see a full cone that keeps
// ports and hairpins, and the unsolicited test sees what sets it apart:
// an answer to a port the host never sent from gets in.
func TestDiscoverOneToOne(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, fmt.Sprintf(lab, "type: one-to-one"))
	res := discover(t, l, "h1", false, 0)
	if !res.Behind || res.Public.Addr() != l.Addr("nat", 0) || res.Type != nat.FullCone || res.Ports != nat.PortPreserve || !res.Hairpin || !res.Unsolicited {
		t.Errorf("behind a one-to-one NAT: %s (behind %v, public %v, unsolicited %v); want full-cone, ports preserve, hairpin, unsolicited inbound from the NAT's address %v",
			res.Summary(), res.Behind, res.Public, res.Unsolicited, l.Addr("nat", 0))
	}
	if want := "full-cone, ports preserve, hairpin, unsolicited inbound gets in (every port forwarded, as by a one-to-one NAT)"; res.Summary() != want {
		t.Errorf("Summary = %q, want %q", res.Summary(), want)
	}
}

func TestDiscoverHairpinOff(t *testing.T) {
	for _, typ := range nat.Types {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(lab, "type: "+string(typ)+", hairpin: false"))
			if res := discover(t, l, "h1", false, 0); res.Hairpin || res.Type != typ {
				t.Errorf("hairpin=%v type=%s, want no hairpinning and %s", res.Hairpin, res.Type, typ)
			}
		})
	}
}

func TestDiscoverNoNAT(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  server: {kind: server, services: [stun]}
  h1:     {kind: host}
`)
	res := discover(t, l, "h1", false, 0)
	if res.Behind || res.Type != "" || res.Mapping != nat.EndpointIndependent || res.Filtering != nat.EndpointIndependent || res.Ports != nat.PortPreserve {
		t.Errorf("on the internet: %+v", res)
	}
}

// A host on the internet with a stateful firewall of its own is no NAT,
// but its firewall filters as a port-restricted cone does: only the
// endpoint it sent to may answer.
func TestDiscoverHostFirewall(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  server: {kind: server, services: [stun]}
  h1:     {kind: host, firewall: stateful}
`)
	res := discover(t, l, "h1", false, 0)
	if res.Behind || res.Mapping != nat.EndpointIndependent || res.Filtering != nat.AddressAndPortDependent || res.Ports != nat.PortPreserve {
		t.Errorf("on the internet with a firewall: %+v", res)
	}
}

// The lifetime of a mapping of 1.5s is bracketed between the probes of
// 1s and 2s, and then the refresh knob is found: whether answers from
// outside alone keep a mapping alive.
func TestDiscoverLifetime(t *testing.T) {
	for _, r := range nat.Refreshes {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(lab, "type: port-restricted-cone, timeout: 1500ms, refresh: "+string(r)))
			res := discover(t, l, "h1", true, 30*time.Second)
			if lt := res.Lifetime; lt == nil || lt.Alive != time.Second || lt.Gone != 2*time.Second {
				t.Errorf("lifetime %+v, want alive after 1s and gone after 2s for a 1.5s timeout", lt)
			}
			if res.Refresh != r {
				t.Errorf("refresh %q, want %q", res.Refresh, r)
			}
		})
	}
}

func TestDiscoverWithoutServer(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  nat:    {kind: nat}
  h1:     {kind: host, behind: nat}
`)
	_, err := classify.Discover(context.Background(), classify.Options{
		Server: netip.AddrPortFrom(l.Addr("server", 0), 3478),
		Local:  l.Addr("h1", 0),
		Listen: func(local string) (*net.UDPConn, error) { return l.ListenUDP("h1", local) },
	})
	if err == nil {
		t.Fatal("discovery without a STUN server succeeded")
	}
}

// Behind a NAT with a pool of addresses, discovery sees one of them for
// every mapping of the host with paired pooling, and more than one with
// arbitrary; behind a NAT with one address it sees paired.
func TestDiscoverPooling(t *testing.T) {
	pool := "[203.0.113.1, 203.0.113.2, 203.0.113.3]"
	for _, tc := range []struct {
		knobs   string
		want    nat.Pooling
		publics func(n int) bool
	}{
		{"type: full-cone, public: " + pool, nat.PoolingPaired, func(n int) bool { return n == 1 }},
		{"type: symmetric, public: " + pool, nat.PoolingPaired, func(n int) bool { return n == 1 }},
		{"type: full-cone, public: " + pool + ", pooling: arbitrary", nat.PoolingArbitrary, func(n int) bool { return n > 1 }},
		{"type: port-restricted-cone, public: " + pool + ", pooling: arbitrary", nat.PoolingArbitrary, func(n int) bool { return n > 1 }},
		{"type: port-restricted-cone", nat.PoolingPaired, func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.knobs, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(lab, tc.knobs))
			res := discover(t, l, "h1", false, 0)
			if res.Pooling != tc.want || !tc.publics(len(res.Publics)) {
				t.Errorf("pooling %q with public addresses %v; want %s", res.Pooling, res.Publics, tc.want)
			}
			for _, a := range res.Publics {
				if !slices.Contains(l.Topo.Node("nat").Addresses, a) {
					t.Errorf("public address %v is none of the NAT's %v", a, l.Topo.Node("nat").Addresses)
				}
			}
			// The rest of the behaviour is the NAT's type, whatever the
			// pool.
			if want := l.Topo.Node("nat").NAT.Type; res.Type != want {
				t.Errorf("type %s, want %s", res.Type, want)
			}
		})
	}
}

// Behind a carrier-grade NAT, discovery sees the host's random ports all
// within its own port blocks, and a new mapping refused once the host
// holds its quota; behind a NAT without blocks, neither.
func TestDiscoverPortBlocks(t *testing.T) {
	for _, tc := range []struct {
		knobs  string
		quota  int
		blocks bool
	}{
		{"type: port-restricted-cone, port-block: {size: 64, blocks: 2, quota: 20}", 20, true},
		{"type: symmetric, port-block: 256", 0, true},
		{"type: port-restricted-cone", 0, false},
	} {
		t.Run(tc.knobs, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(lab, tc.knobs))
			res := discover(t, l, "h1", false, 0)
			if res.Quota != tc.quota {
				t.Errorf("quota %d, want %d", res.Quota, tc.quota)
			}
			if !tc.blocks {
				if res.PortsWithin != nil {
					t.Errorf("ports within %v behind a NAT without blocks", res.PortsWithin)
				}
				return
			}
			subs := l.Topo.Subscribers(l.Topo.Node("nat"))
			if len(subs) != 1 {
				t.Fatalf("subscribers %+v", subs)
			}
			own := nat.PortRange{First: subs[0].Blocks[0].First, Last: subs[0].Blocks[len(subs[0].Blocks)-1].Last}
			if r := res.PortsWithin; r == nil || r.First < own.First || r.Last > own.Last {
				t.Errorf("ports within %v, want within h1's blocks %v", r, subs[0].Ranges())
			}
			if s := res.Summary(); !strings.Contains(s, "ports within") || tc.quota > 0 && !strings.Contains(s, fmt.Sprintf("refused after %d", tc.quota)) {
				t.Errorf("summary %q", s)
			}
		})
	}
}
