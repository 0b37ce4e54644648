// The tests of this example open a pion/webrtc data channel between two
// hosts behind natlab's NATs and check which candidate pair ICE selects.
// Each peer runs as a process of its own inside its host's namespace:
// pion opens sockets from goroutines of its own, which no thread pinned
// to a namespace would cover. The processes are this test binary started
// again (TestMain hands them to peer.Main), so the test needs no build
// step; cmd/peer is the same program on its own.
package webrtc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/examples/webrtc/peer"
	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// peerEnv marks a process started by the test as a peer.
const peerEnv = "NATLAB_WEBRTC_PEER"

func TestMain(m *testing.M) {
	if os.Getenv(peerEnv) == "1" {
		os.Exit(peer.Main(os.Args[1:]))
	}
	labtest.Main(m)
}

var gridDir = flag.String("grid", "", "write grid.md and grid.html to this directory (a temporary one if empty)")

// lab is a cell's lab: PairSpec's, with TURN beside STUN on the server.
func lab(row, col labtest.Preset) labtest.Spec {
	s := labtest.PairSpec(row, col)
	s.Nodes[0].Services = []topology.Service{topology.ServiceSTUN, topology.ServiceTURN}
	return s
}

// TestGrid opens a data channel for every pair of NAT types, alice (the
// offerer) behind the row's and bob behind the column's, and checks the
// selected pair against theory: direct, with server- or peer-reflexive
// candidates, where a hole punch works (nat.PunchWorks), and through the
// TURN relay where it does not.
func TestGrid(t *testing.T) {
	labtest.Require(t)
	dir := *gridDir
	if dir == "" {
		dir = t.TempDir()
	}
	g := labtest.Grid{
		Presets:  labtest.TypePresets(nat.AllTypes...),
		Lab:      lab,
		Title:    "pion/webrtc data channel: selected pair (alice-bob) and time to open",
		Markdown: filepath.Join(dir, "grid.md"),
		HTML:     filepath.Join(dir, "grid.html"),
	}
	out := g.Run(t, func(t *testing.T, lb *labtest.Lab) string {
		a, b := lb.Topology.Node("a").NAT.Behaviour, lb.Topology.Node("b").NAT.Behaviour
		alice, bob := connect(t, lb, servers(lb, "udp"), false)
		want := "relay"
		if nat.PunchWorks(a, b, false) {
			want = "direct"
		}
		if got := kind(alice); got != want {
			t.Errorf("%v and %v: alice selected %s, a %s pair; theory says %s", a, b, pair(alice), got, want)
		}
		if kind(bob) != kind(alice) {
			t.Errorf("bob selected %s, alice %s: one sees a relay the other does not", pair(bob), pair(alice))
		}
		// Across two NATs a direct pair sends from the peer's own socket
		// (a host candidate, or the srflx one pion gathers on a socket of
		// its own) to the other's public side: reflexive, from its STUN
		// answer (srflx) or from where its checks came from (prflx).
		for _, r := range []peer.Result{alice, bob} {
			if r.Direct() && (!oneOf(r.Local.Type, "host", "srflx") || !oneOf(r.Remote.Type, "srflx", "prflx")) {
				t.Errorf("%s selected %s: a direct pair across NATs is host or srflx to srflx or prflx", r.Role, pair(r))
			}
		}
		return fmt.Sprintf("%s %s, open %v", kind(alice), pair(alice), alice.Open.Round(10*time.Millisecond))
	})
	if !t.Failed() {
		t.Logf("%s\n(and %s)", out.Markdown(), g.HTML)
	}
}

// TestRelayOnly opens the channel with ICETransportPolicyRelay on both
// peers, behind NATs a punch gets through, so that a relayed pair is the
// policy's doing: through TURN over UDP, and over TCP (turn:...?transport=tcp),
// which a TCP connection from alice's host to the TURN server confirms.
func TestRelayOnly(t *testing.T) {
	labtest.Require(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			prc := labtest.TypePresets(nat.PortRestrictedCone)[0]
			lb := labtest.UpSpec(t, lab(prc, prc))
			alice, bob := connect(t, lb, servers(lb, transport), true, func(lb *labtest.Lab) {
				if transport == "tcp" {
					checkTCP(t, lb)
				}
			})
			for _, r := range []peer.Result{alice, bob} {
				if r.Local.Type != "relay" || r.Remote.Type != "relay" {
					t.Errorf("%s selected %s; a relay-only policy wants relay-relay", r.Role, pair(r))
				}
				if r.Local.RelayProtocol != transport {
					t.Errorf("%s reaches its TURN server over %q, want %s", r.Role, r.Local.RelayProtocol, transport)
				}
			}
			t.Logf("relay-only over %s: %s, open %v", transport, pair(alice), alice.Open)
		})
	}
}

// TestLossyDelayed is one cell under bad conditions: each host's link
// delays every packet 30 ms each way and loses 2% of them, and the
// channel must still open, directly through two port-restricted cones.
func TestLossyDelayed(t *testing.T) {
	labtest.Require(t)
	prc := labtest.TypePresets(nat.PortRestrictedCone)[0]
	s := lab(prc, prc)
	link := map[string]any{"delay": "30ms", "loss": "2%"}
	for i := range s.Nodes {
		if s.Nodes[i].Kind == topology.KindHost {
			s.Nodes[i].Extra = map[string]any{"link": link}
		}
	}
	lb := labtest.UpSpec(t, s)
	if l := lb.Topology.Node("alice").Link; l.Up.Delay != 30*time.Millisecond || l.Up.Loss != 2 || l.Down != l.Up {
		t.Fatalf("alice's link is %+v, want 30ms delay and 2%% loss", l)
	}
	alice, _ := connect(t, lb, servers(lb, "udp"), false)
	if kind(alice) != "direct" {
		t.Errorf("selected %s through two port-restricted cones; want a direct pair", pair(alice))
	}
	t.Logf("30ms delay, 2%% loss: %s, open %v", pair(alice), alice.Open)
}

// servers are the -ice URLs of the lab's STUN and TURN server, TURN over
// transport.
func servers(lb *labtest.Lab, transport string) []string {
	plan := service.PlanFor(lb.Topology.Node("server"))
	return []string{
		"stun:" + plan.STUNServer().String(),
		fmt.Sprintf("turn:%s?transport=%s", plan.TURN, transport),
	}
}

// checkTCP checks, with ss inside alice's host, that a TCP connection to
// the TURN server is established while the channel is up.
func checkTCP(t *testing.T, lb *labtest.Lab) {
	t.Helper()
	turn := service.PlanFor(lb.Topology.Node("server")).TURN
	out, err := lb.Node("alice").Command("ss", "-Htn", "state", "established", "dst", turn.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ss in alice: %v: %s", err, out)
		return
	}
	if len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("alice has no TCP connection to the TURN server %s while the channel is up", turn)
	}
}

// connect runs an offerer in alice and an answerer in bob, carries their
// descriptions across, and returns what each saw once the channel was
// open. Whatever during is given runs while both are still connected.
func connect(t *testing.T, lb *labtest.Lab, ice []string, relayOnly bool, during ...func(*labtest.Lab)) (alice, bob peer.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cred := lb.State.TURN
	args := []string{"-ice", strings.Join(ice, ","), "-user", cred.User, "-password", cred.Password, "-timeout", "40s"}
	if relayOnly {
		args = append(args, "-relay-only")
	}
	a := start(ctx, t, lb, "alice", append([]string{"-role", "offer"}, args...))
	b := start(ctx, t, lb, "bob", append([]string{"-role", "answer"}, args...))
	// Both hang up when their input closes; a failing one has already
	// ended, and the other ends at its closed input.
	defer b.stop(t)
	defer a.stop(t)

	offer := a.line(t)
	b.send(t, offer)
	answer := b.line(t)
	a.send(t, answer)
	alice, bob = a.result(t), b.result(t)
	for _, f := range during {
		f(lb)
	}
	t.Logf("alice %s, bob %s", pair(alice), pair(bob))
	return alice, bob
}

// proc is a peer process inside a node.
type proc struct {
	name   string
	cmd    *labtest.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

func start(ctx context.Context, t *testing.T, lb *labtest.Lab, node string, args []string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: node, cmd: lb.Node(node).CommandContext(ctx, exe, args...)}
	p.cmd.Env = append(os.Environ(), peerEnv+"=1")
	p.cmd.Stderr = &p.stderr
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start the peer in %s: %v", node, err)
	}
	return p
}

// line is the next line the peer printed; the test fails if it ended.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	if !p.out.Scan() {
		// Its stdout is closed: it has ended, and Wait collects its stderr.
		err := p.cmd.Wait()
		p.cmd = nil
		t.Fatalf("the peer in %s ended (%v): %s", p.name, err, p.stderr.String())
	}
	return p.out.Text()
}

func (p *proc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatalf("signal the peer in %s: %v", p.name, err)
	}
}

func (p *proc) result(t *testing.T) peer.Result {
	t.Helper()
	var r peer.Result
	if err := json.Unmarshal([]byte(p.line(t)), &r); err != nil {
		t.Fatalf("the peer in %s: result: %v", p.name, err)
	}
	return r
}

// stop closes the peer's input and waits for it to hang up.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	p.in.Close()
	// What it prints after its result (nothing, unless it fails) is read
	// so that Wait is not left waiting for the pipe.
	for p.out.Scan() {
	}
	switch err := p.cmd.Wait(); {
	case err != nil && t.Failed():
		t.Logf("the peer in %s: %v: %s", p.name, err, p.stderr.String())
	case err != nil:
		t.Errorf("the peer in %s: %v: %s", p.name, err, p.stderr.String())
	}
}

// kind is "direct" or "relay".
func kind(r peer.Result) string {
	if r.Direct() {
		return "direct"
	}
	return "relay"
}

func oneOf(s string, of ...string) bool { return slices.Contains(of, s) }

// pair is the selected pair's types, local-remote.
func pair(r peer.Result) string { return r.Local.Type + "-" + r.Remote.Type }
