package punch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/service"
)

func peer(t *testing.T, l *labtest.Lab, name string, ex punch.Exchange) punch.Peer {
	c, _ := l.ListenUDP(name, ":0")
	port := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	return punch.Peer{Name: name, Conn: c, Local: netip.AddrPortFrom(l.Addr(name, 0), port), Exchange: ex}
}

func twoHomes(ta, tb string) string {
	return fmt.Sprintf(`
nodes:
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat, %s}
  nat-b: {kind: nat, %s}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`, ta, tb)
}

func punchIn(t *testing.T, l *labtest.Lab, cfg punch.Config) (*punch.Outcome, error) {
	cfg.STUN = service.PlanFor(l.Topo.Node("stun")).STUNServer()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	board := punch.NewBoard()
	return punch.Pair(context.Background(), cfg, peer(t, l, "alice", board), peer(t, l, "bob", board))
}

// The expected direct-connection matrix of nat-behaviour.md: with
// peer-reflexive learning and random-port symmetric NATs, only
// port-restricted vs symmetric and symmetric vs symmetric fail.
var matrix = map[[2]string]bool{}

func init() {
	types := []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}
	fails := map[string]bool{"port-restricted-cone/symmetric": true, "symmetric/port-restricted-cone": true, "symmetric/symmetric": true}
	for _, a := range types {
		for _, b := range types {
			matrix[[2]string{a, b}] = !fails[a+"/"+b]
		}
	}
}

func TestPunchMatrix(t *testing.T) {
	for cell, want := range matrix {
		t.Run(cell[0]+"/"+cell[1], func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, twoHomes("type: "+cell[0], "type: "+cell[1]))
			out, err := punchIn(t, l, punch.Config{})
			if got := err == nil; got != want {
				t.Fatalf("punch %s vs %s: ok=%v (%v), want ok=%v", cell[0], cell[1], got, err, want)
			}
			if !want {
				if !errors.Is(err, punch.ErrNoPath) || !strings.Contains(err.Error(), "heard nothing") {
					t.Errorf("failure without a clear reason: %v", err)
				}
				return
			}
			if len(out.A.RTTs) != 5 || out.A.Confirmed == 0 || out.B.Confirmed == 0 {
				t.Errorf("outcome %+v %+v", out.A, out.B)
			}
			// Behind a symmetric NAT, the peer's packets come from a port
			// nobody announced: only peer-reflexive learning finds it.
			if cell[0] == "symmetric" && !out.B.Reflexive {
				t.Errorf("bob saw alice at %v, an announced endpoint %v; want peer-reflexive", out.B.Seen, out.B.Announced)
			}
		})
	}
}

// Sequential port allocation is beaten by port prediction; random is not.
func TestPortPrediction(t *testing.T) {
	for _, tc := range []struct {
		alice   string
		predict bool
		want    bool
	}{
		{"type: symmetric, ports: sequential", false, false},
		{"type: symmetric, ports: sequential", true, true},
		{"type: symmetric, ports: random", true, false},
	} {
		t.Run(fmt.Sprintf("%s/predict=%v", tc.alice, tc.predict), func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, twoHomes(tc.alice, "type: port-restricted-cone"))
			_, err := punchIn(t, l, punch.Config{Predict: tc.predict})
			if got := err == nil; got != tc.want {
				t.Errorf("ok=%v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

// Two hosts on one LAN connect through their local addresses.
func TestSameLAN(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  stun:  {kind: server, services: [stun]}
  home:  {kind: nat, type: symmetric, hairpin: false}
  alice: {kind: host, behind: home}
  bob:   {kind: host, behind: home}
`)
	out, err := punchIn(t, l, punch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if out.A.Seen.Addr() != l.Addr("bob", 0) {
		t.Errorf("alice reached bob at %v, want his LAN address %v", out.A.Seen, l.Addr("bob", 0))
	}
}

// A peer that never shows up, or never punches, fails the punch in time,
// with a reason.
func TestAbsentPeer(t *testing.T) {
	l := labtest.Up(t, twoHomes("type: full-cone", "type: full-cone"))
	cfg := punch.Config{STUN: service.PlanFor(l.Topo.Node("stun")).STUNServer(), Timeout: time.Second}
	for name, setup := range map[string]func(*punch.Board){
		"never registers": func(*punch.Board) {},
		"never punches": func(b *punch.Board) {
			b.Register(context.Background(), "punch", "bob", []netip.AddrPort{netip.AddrPortFrom(l.Addr("nat-b", 0), 4000)})
		},
	} {
		board := punch.NewBoard()
		setup(board)
		start := time.Now()
		_, _, err := punch.Run(context.Background(), cfg, peer(t, l, "alice", board), "bob", 0)
		if !errors.Is(err, punch.ErrNoPath) || time.Since(start) > 2*time.Second {
			t.Errorf("%s: %v after %v; want ErrNoPath within the 1s timeout", name, err, time.Since(start))
		}
		t.Logf("%s: %v", name, err)
	}
}

// The lab's rendezvous service carries the endpoints.
func TestThroughRendezvous(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  stun:  {kind: server, services: [stun, rendezvous]}
  nat-a: {kind: nat, type: full-cone}
  nat-b: {kind: nat, type: symmetric}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`)
	plan := service.PlanFor(l.Topo.Node("stun"))
	// Each peer's HTTP requests start in its own node.
	client := func(node string) *rendezvous.Client {
		return &rendezvous.Client{HTTP: &http.Client{Transport: &http.Transport{DialContext: l.DialContext(node)}}, Base: plan.RendezvousURL()}
	}
	out, err := punch.Pair(context.Background(), punch.Config{STUN: plan.STUNServer(), Timeout: 3 * time.Second},
		peer(t, l, "alice", client("alice")), peer(t, l, "bob", client("bob")))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) < 10 {
		t.Errorf("events: %v", out.Events)
	}
}

// A punched path dies with its mappings when idle longer than the NATs'
// timeout, and lives on with keepalives.
func TestKeepAlive(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keep), func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, twoHomes("type: port-restricted-cone, timeout: 2s", "type: port-restricted-cone, timeout: 2s"))
			board := punch.NewBoard()
			a, b := peer(t, l, "alice", board), peer(t, l, "bob", board)
			cfg := punch.Config{STUN: service.PlanFor(l.Topo.Node("stun")).STUNServer(), Timeout: 2 * time.Second}
			out, err := punch.Pair(context.Background(), cfg, a, b)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if keep {
				go punch.KeepAlive(ctx, a.Conn, out.A.Seen, time.Second)
				go punch.KeepAlive(ctx, b.Conn, out.B.Seen, time.Second)
			}
			<-ctx.Done()
			a.Conn.WriteToUDPAddrPort([]byte("still there?"), out.A.Seen)
			b.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			got := false
			buf := make([]byte, 100)
			for {
				n, _, err := b.Conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				if string(buf[:n]) == "still there?" {
					got = true
					break
				}
			}
			if got != keep {
				t.Errorf("after 3s with 2s mapping timeouts (keepalive=%v), the path works: %v", keep, got)
			}
		})
	}
}

// A walk reaches the same verdict as Pair for each kind of cell of the
// matrix, and says where the first packets were dropped.
func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		ok   bool
	}{
		{"port-restricted-cone", "port-restricted-cone", true},
		{"symmetric", "restricted-cone", true},
		{"symmetric", "port-restricted-cone", false},
		{"symmetric", "symmetric", false},
	} {
		t.Run(tc.a+"/"+tc.b, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, twoHomes("type: "+tc.a, "type: "+tc.b))
			board := punch.NewBoard()
			cfg := punch.Config{STUN: service.PlanFor(l.Topo.Node("stun")).STUNServer(), Session: "walk"}
			w := punch.NewWalk(cfg, peer(t, l, "alice", board), peer(t, l, "bob", board))
			var story []string
			var last punch.WalkStep
			for i := 1; i <= punch.WalkSteps; i++ {
				st, err := w.Next(context.Background())
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if st.Number != i || st.Title == "" || len(st.Lines) == 0 {
					t.Errorf("step %d came back as %+v", i, st)
				}
				story = append(story, st.Lines...)
				last = st
			}
			text := strings.Join(story, "\n")
			if !last.Done || last.OK != tc.ok {
				t.Errorf("walk ended done=%v ok=%v, want ok=%v:\n%s", last.Done, last.OK, tc.ok, text)
			}
			// In every one of these cells alice's first packet meets bob's wall.
			if !strings.Contains(text, "It never reaches bob: bob's NAT dropped it.") {
				t.Errorf("the story does not tell of the first drop:\n%s", text)
			}
			if _, err := w.Next(context.Background()); err == nil || !w.Over() {
				t.Error("a sixth step was taken")
			}
		})
	}
}

func TestTargets(t *testing.T) {
	a, b := netip.MustParseAddrPort("203.0.113.1:40000"), netip.MustParseAddrPort("203.0.113.1:65534")
	for _, tc := range []struct {
		cfg  punch.Config
		in   []netip.AddrPort
		want int
		last netip.AddrPort
	}{
		{punch.Config{}, []netip.AddrPort{a}, 1, a},
		{punch.Config{Predict: true}, []netip.AddrPort{a}, 17, netip.MustParseAddrPort("203.0.113.1:40016")},
		{punch.Config{Predict: true, PredictSpan: 2}, []netip.AddrPort{a}, 3, netip.MustParseAddrPort("203.0.113.1:40002")},
		// No port past 65535.
		{punch.Config{Predict: true}, []netip.AddrPort{b}, 2, netip.MustParseAddrPort("203.0.113.1:65535")},
	} {
		got := punch.Targets(tc.cfg, tc.in)
		if len(got) != tc.want || got[len(got)-1] != tc.last || got[0] != tc.in[0] {
			t.Errorf("%+v on %v: %v", tc.cfg, tc.in, got)
		}
	}
}

// A host's own stateful firewall lets a punch through where both sides
// send first, as a port-restricted cone NAT does: two firewalled hosts
// on the internet, with no NAT, connect, and so do two behind full-cone
// NATs. It walls a full cone off as a port-restricted cone would: a
// firewalled host behind one cannot punch with a host behind a
// symmetric NAT, which the full cone alone can (see matrix).
func TestFirewalls(t *testing.T) {
	for _, tc := range []struct {
		name, typeB, alice, bob string
		want                    bool
	}{
		{"on the internet", "full-cone", "{kind: host, firewall: stateful}", "{kind: host, firewall: stateful}", true},
		{"behind full cones", "full-cone", "{kind: host, behind: nat-a, firewall: stateful}", "{kind: host, behind: nat-b, firewall: stateful}", true},
		{"full cone against symmetric", "symmetric", "{kind: host, behind: nat-a, firewall: stateful}", "{kind: host, behind: nat-b}", false},
		{"full cone against symmetric, no firewall", "symmetric", "{kind: host, behind: nat-a}", "{kind: host, behind: nat-b}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := labtest.Up(t, fmt.Sprintf(`
nodes:
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat, type: full-cone}
  nat-b: {kind: nat, type: %s}
  alice: %s
  bob:   %s
`, tc.typeB, tc.alice, tc.bob))
			_, err := punchIn(t, l, punch.Config{})
			if got := err == nil; got != tc.want {
				t.Fatalf("punch: ok=%v (%v), want ok=%v", got, err, tc.want)
			}
		})
	}
}
