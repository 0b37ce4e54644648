package labtest_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/linkcond"
)

// testSlowLink is how a test gives a link the conditions it wants on a
// running lab, and takes it down: a keepalive that must survive 100 ms of
// delay, then a link that goes away.
func testSlowLink(t *testing.T) {
	lb := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  home:   {kind: nat}
  alice:  {kind: host, behind: home, link: {delay: 10ms}}
`)
	server, err := lb.Node("server").ListenUDP("udp4", ":7")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := lb.Node("alice").ListenUDP("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(lb.Node("server").Addr(), 7)
	oneWay := func() (time.Duration, bool) {
		start := time.Now()
		alice.WriteToUDPAddrPort([]byte("ping"), to)
		ok := arrives(server, "ping", time.Second)
		return time.Since(start), ok
	}
	if d, ok := oneWay(); !ok || d < 10*time.Millisecond {
		t.Fatalf("through alice's link of 10 ms: arrived %v after %v", ok, d)
	}
	slow := linkcond.Direction{Delay: 100 * time.Millisecond}
	if err := lb.Node("alice").SetLink(linkcond.Link{Up: slow, Down: slow}); err != nil {
		t.Fatal(err)
	}
	if d, ok := oneWay(); !ok || d < 100*time.Millisecond {
		t.Errorf("through alice's link of 100 ms: arrived %v after %v", ok, d)
	}
	if err := lb.Node("alice").LinkDown(); err != nil {
		t.Fatal(err)
	}
	if _, ok := oneWay(); ok {
		t.Error("a packet crossed alice's link while it was down")
	}
	if err := lb.Node("alice").LinkUp(); err != nil {
		t.Fatal(err)
	}
	if _, ok := oneWay(); !ok {
		t.Error("no packet crossed alice's link once it was up again")
	}
	// A change of one condition keeps the others.
	loss := 0.0
	l, err := lb.Node("alice").ChangeLink(linkcond.Change{Both: linkcond.Setting{Loss: &loss}})
	if err != nil || l.Up.Delay != 100*time.Millisecond {
		t.Errorf("ChangeLink: %v, %v; want the delay of 100 ms kept", l, err)
	}
	bad := 101.0
	if _, err := lb.Node("alice").ChangeLink(linkcond.Change{Both: linkcond.Setting{Loss: &bad}}); err == nil {
		t.Error("a loss of 101% was taken")
	}
}

func TestSlowLink(t *testing.T) {
	testutil.CheckRoutines(t)
	testSlowLink(t)
}

// A test changes a node's link on the running lab with Node.SetLink (the
// whole link) or Node.ChangeLink (some conditions), and takes it down and
// up with LinkDown and LinkUp. It needs root; natlab's own tests run the
// function (TestSlowLink).
func ExampleNode_SetLink() {
	_ = testSlowLink
}
