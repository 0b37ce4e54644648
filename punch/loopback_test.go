package punch_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/punch"
)

// Pair and Walk on loopback, without root or a lab: no NAT and no STUN,
// so each peer's own address is its public endpoint.

func loopPeer(t *testing.T, name, addr string, ex punch.Exchange) punch.Peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr+":0")))
	if err != nil {
		t.Skipf("no loopback address %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return punch.Peer{Name: name, Conn: c, Local: c.LocalAddr().(*net.UDPAddr).AddrPort(), Exchange: ex}
}

func TestPairOnLoopback(t *testing.T) {
	board := punch.NewBoard()
	a, b := loopPeer(t, "alice", "127.0.0.1", board), loopPeer(t, "bob", "127.0.0.2", board)
	out, err := punch.Pair(context.Background(), punch.Config{Session: "loop", Timeout: 5 * time.Second}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if out.A.Seen != b.Local || out.B.Seen != a.Local || out.A.Reflexive || out.B.Reflexive || len(out.A.RTTs) != 5 {
		t.Errorf("outcome %+v %+v", out.A, out.B)
	}
	var story []string
	for _, e := range out.Events {
		story = append(story, e.What)
	}
	for _, want := range []string{"no STUN needed", "registers", "learns", "sends its first punches", "hears", "both directions work"} {
		if !strings.Contains(strings.Join(story, "\n"), want) {
			t.Errorf("no event says %q:\n%s", want, strings.Join(story, "\n"))
		}
	}
}

// walk takes every step of w and returns them.
func walk(t *testing.T, w *punch.Walk) []punch.WalkStep {
	t.Helper()
	var steps []punch.WalkStep
	for i := 1; i <= punch.WalkSteps; i++ {
		st, err := w.Next(context.Background())
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		steps = append(steps, st)
	}
	if !w.Over() {
		t.Error("the walk is not over after its last step")
	}
	return steps
}

func text(steps []punch.WalkStep) string {
	var b strings.Builder
	for _, st := range steps {
		fmt.Fprintf(&b, "%d. %s\n   %s\n", st.Number, st.Title, strings.Join(st.Lines, "\n   "))
	}
	return b.String()
}

// A walk is Pair's punch, phase by phase: it ends where Pair does, with
// each peer's socket holding the path to where it heard the other.
func TestWalkOnLoopback(t *testing.T) {
	board := punch.NewBoard()
	a, b := loopPeer(t, "alice", "127.0.0.1", board), loopPeer(t, "bob", "127.0.0.2", board)
	w := punch.NewWalk(punch.Config{Session: "loop"}, a, b)
	steps := walk(t, w)
	last := steps[len(steps)-1]
	if !last.Done || !last.OK || w.Seen() != [2]netip.AddrPort{b.Local, a.Local} {
		t.Errorf("the walk ended done=%v ok=%v, seen %v:\n%s", last.Done, last.OK, w.Seen(), text(steps))
	}
	out := w.Outcome()
	if out.A.Confirmed == 0 || out.B.Confirmed == 0 || out.A.Punches == 0 || len(out.Events) == 0 {
		t.Errorf("the walk's outcome %+v %+v", out.A, out.B)
	}
	if _, err := w.Next(context.Background()); err == nil {
		t.Error("a sixth step was taken")
	}
}

// With prediction, a walk punches the ports after the announced one too:
// a socket bound to one of them hears alice's punch.
func TestWalkPredicts(t *testing.T) {
	for _, predict := range []bool{false, true} {
		t.Run(fmt.Sprintf("predict=%v", predict), func(t *testing.T) {
			board := punch.NewBoard()
			a, b := loopPeer(t, "alice", "127.0.0.1", board), loopPeer(t, "bob", "127.0.0.2", board)
			// A socket where a sequential NAT would put bob's next
			// mapping: one of the 16 ports after his.
			var spy *net.UDPConn
			for i := 1; i <= 16 && spy == nil && int(b.Local.Port())+i <= 65535; i++ {
				spy, _ = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.Local.Addr(), b.Local.Port()+uint16(i))))
			}
			if spy == nil {
				t.Skip("no free port after bob's")
			}
			defer spy.Close()
			w := punch.NewWalk(punch.Config{Session: "loop", Predict: predict}, a, b)
			steps := walk(t, w)
			if !steps[4].OK {
				t.Errorf("the walk failed:\n%s", text(steps))
			}
			if got := strings.Contains(text(steps), "and to the 16 ports after each"); got != predict {
				t.Errorf("the story tells of predicted ports: %v:\n%s", got, text(steps))
			}
			buf := make([]byte, 100)
			spy.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, _, err := spy.ReadFromUDPAddrPort(buf)
			heard := err == nil && strings.HasPrefix(string(buf[:n]), "NATLAB PUNCH loop alice bob ")
			if heard != predict {
				t.Errorf("a predicted port heard alice's punch: %v (%q, %v)", heard, buf[:n], err)
			}
			want := 1
			if predict {
				want = 17
			}
			if got := w.Outcome().A.Punches; got != want {
				t.Errorf("alice sent %d punches, want %d", got, want)
			}
		})
	}
}
