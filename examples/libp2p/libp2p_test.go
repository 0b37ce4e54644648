package libp2p_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// The nodes' programs start again from the test binary when a lab shapes
// links (the lossy cell's delay line), as every labtest binary's do.
func TestMain(m *testing.M) { labtest.Main(m) }

// gridDir is where the grids' files go; the test's temporary directory
// (gone when it ends) unless it is given.
var gridDir = flag.String("grid", "", "write the grids' markdown and HTML into this directory")

func gridFile(t *testing.T, name string) string {
	if *gridDir != "" {
		return filepath.Join(*gridDir, name)
	}
	return filepath.Join(t.TempDir(), name)
}

// internet is the labs' internet. libp2p hole punches only to addresses
// it counts as public, and it counts the documentation ranges, natlab's
// default 203.0.113.0/24 among them, as unroutable. These addresses never
// leave the lab's namespaces.
var internet = netip.MustParsePrefix("11.0.0.0/24")

// TestDCUtRGrid runs every pair of the classic NAT types, alice behind the
// row's and listening through the relay, bob behind the column's and
// dialing her through it, and checks that DCUtR upgrades the relayed
// connection to a direct one exactly where theory says a hole punch works.
func TestDCUtRGrid(t *testing.T) {
	labtest.Require(t)
	bin := buildNode(t)
	g := labtest.Grid{
		Presets:  labtest.TypePresets(nat.AllTypes...),
		Lab:      pairLab(nil),
		Title:    "DCUtR: is alice's relayed connection from bob upgraded to a direct one?",
		Markdown: gridFile(t, "grid.md"),
		HTML:     gridFile(t, "grid.html"),
	}
	out := g.Run(t, func(t *testing.T, lb *labtest.Lab) string { return dcutr(t, lb, bin) })
	t.Logf("the grid (rows: alice's NAT, columns: bob's; the time in brackets is the cell's, from the relay's start):\n%s", out.Markdown())
}

// TestDCUtRLossy is one cell on links that lose and delay packets: both
// hosts' uplinks have 20 ms of delay each way and lose 2% of packets.
func TestDCUtRLossy(t *testing.T) {
	labtest.Require(t)
	bin := buildNode(t)
	g := labtest.Grid{
		Presets:  labtest.TypePresets(nat.PortRestrictedCone),
		Lab:      pairLab(map[string]any{"delay": "20ms", "loss": "2%"}),
		Title:    "DCUtR with delay: 20ms, loss: 2% on both hosts' links",
		Markdown: gridFile(t, "lossy.md"),
	}
	out := g.Run(t, func(t *testing.T, lb *labtest.Lab) string {
		want := linkcond.Direction{Delay: 20 * time.Millisecond, Loss: 2}
		for _, h := range []string{"alice", "bob"} {
			if l := lb.Topology.Node(h).Link; l.Up != want || l.Down != want {
				t.Fatalf("%s's link is %+v, want %+v each way", h, l, want)
			}
		}
		return dcutr(t, lb, bin)
	})
	t.Logf("\n%s", out.Markdown())
}

// pairLab is labtest.PairSpec with a public-looking internet, the relay
// as its server (it runs no natlab service: p2pnode is the relay), and
// link, if not nil, as both hosts' link conditions.
func pairLab(link map[string]any) func(row, col labtest.Preset) labtest.Spec {
	return func(row, col labtest.Preset) labtest.Spec {
		s := labtest.PairSpec(row, col)
		s.Internet = internet
		for i := range s.Nodes {
			switch n := &s.Nodes[i]; n.Kind {
			case topology.KindServer:
				*n = labtest.Server("relay")
			case topology.KindHost:
				if link != nil {
					n.Extra = map[string]any{"link": link}
				}
			}
		}
		return s
	}
}

// dcutr is one cell: the relay on the server, alice listening through it,
// bob dialing her through it; then whether DCUtR made the connection
// direct, and at which attempt, against theory.
//
// DCUtR is a simultaneous open, but not a symmetric one. Alice, who got
// the relayed connection, starts it; in its first two attempts she only
// sends packets to open her NAT towards bob's observed endpoint while bob
// dials her with QUIC, and her QUIC listener answers wherever his
// handshake came from: that is nat.Reaches(bob, alice). In the third the
// roles swap and she dials too, which adds nat.Reaches(alice, bob); so
// over all three it is nat.PunchWorks, and a pair where only her dial can
// get through turns direct at the third attempt, not before.
func dcutr(t *testing.T, lb *labtest.Lab, bin string) string {
	a, b := lb.Topology.Node("a").NAT.Behaviour, lb.Topology.Node("b").NAT.Behaviour
	want := nat.PunchWorks(a, b, false)
	bobFirst := nat.Reaches(b, a, false)

	relay := start(t, lb, "relay", bin, "-mode", "relay")
	relayAddr := relay.await(t, "relay")[1]
	alice := start(t, lb, "alice", bin, "-mode", "listen", "-relay", relayAddr)
	id := alice.await(t, "ready")[1]
	bob := start(t, lb, "bob", bin, "-mode", "dial", "-relay", relayAddr, "-peer", id)
	end := bob.await(t, "direct after", "no direct after")
	if err := bob.wait(); err != nil {
		t.Fatalf("bob's p2pnode: %v", err)
	}
	got := end[0] == "direct"
	if got != want {
		t.Errorf("alice behind %v, bob behind %v: direct %v, theory (nat.PunchWorks) says %v", a, b, got, want)
	}
	if !got {
		return "relayed only"
	}
	attempt := bob.attempt()
	if !bobFirst && attempt < 3 {
		t.Errorf("alice behind %v, bob behind %v: direct at DCUtR's attempt %d, but only alice's dial can get through (nat.Reaches), and she dials only in the third", a, b, attempt)
	}
	// echo over ADDR rtt DURATION: data went over the direct connection.
	echo := bob.last("echo over")
	if len(echo) != 5 {
		t.Fatalf("bob echoed nothing over the direct connection")
	}
	return fmt.Sprintf("direct after %s, attempt %d, rtt %s", end[2], attempt, echo[4])
}

// buildNode builds cmd/p2pnode into the test's temporary directory.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "p2pnode")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/p2pnode")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/p2pnode: %v\n%s", err, out)
	}
	return bin
}

// proc is a p2pnode running inside a node, its output lines gathered.
type proc struct {
	name   string
	cmd    *labtest.Cmd
	stderr bytes.Buffer
	more   chan struct{} // a line came, or the output ended
	done   chan struct{} // closed when the output has been read to its end
	waited bool

	mu   sync.Mutex
	seen [][]string
	next int // where await looks from
}

// start runs bin with args inside the node; it is stopped (SIGTERM) and
// waited for when the test ends, and what it printed is logged.
func start(t *testing.T, lb *labtest.Lab, node, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: node, cmd: lb.Node(node).Command(bin, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start p2pnode on %s: %v", node, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.seen = append(p.seen, strings.Fields(sc.Text()))
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default: // await has been told already
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.AfterFunc(10*time.Second, func() { p.cmd.Process.Kill() })
		<-p.done
		if !p.waited {
			p.cmd.Wait()
		}
		timer.Stop()
		t.Logf("%s printed:\n%s%s", node, p.output(), p.stderr.String())
	})
	return p
}

// await returns the next line that begins with one of prefixes, failing
// the test if the program ends or 90 seconds pass first.
func (p *proc) await(t *testing.T, prefixes ...string) []string {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		if f := p.find(prefixes); f != nil {
			return f
		}
		select {
		case <-p.more:
		case <-p.done:
			if f := p.find(prefixes); f != nil {
				return f
			}
			t.Fatalf("%s's p2pnode ended without printing %q", p.name, prefixes)
		case <-timeout:
			t.Fatalf("%s's p2pnode printed no %q in 90s", p.name, prefixes)
		}
	}
}

// find returns the first line not looked at yet that begins with one of
// prefixes, and looks past it next time.
func (p *proc) find(prefixes []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := p.next; i < len(p.seen); i++ {
		for _, pre := range prefixes {
			if strings.HasPrefix(strings.Join(p.seen[i], " "), pre) {
				p.next = i + 1
				return p.seen[i]
			}
		}
	}
	return nil
}

// last is the last line so far that begins with prefix, or nil.
func (p *proc) last(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.seen) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.Join(p.seen[i], " "), prefix) {
			return p.seen[i]
		}
	}
	return nil
}

// attempt is the number of the last DCUtR attempt the program began
// before it printed that it was direct; 0 if none.
func (p *proc) attempt() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.seen {
		if strings.HasPrefix(strings.Join(f, " "), "direct after") {
			break
		}
		if len(f) == 3 && f[0] == "holepunch" && f[1] == "attempt" {
			n, _ = strconv.Atoi(f[2])
		}
	}
	return n
}

// wait waits for a program that ends by itself.
func (p *proc) wait() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("%s's p2pnode still runs", p.name)
	}
	p.waited = true
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%w: %s", err, p.stderr.String())
	}
	return nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, f := range p.seen {
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	return b.String()
}
