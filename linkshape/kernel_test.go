package linkshape_test

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/topology"
)

// The tests here bring a lab up, shape its links through this package
// (a delay line in the test's process where the kernel has no netem) and
// measure what the links do with real sockets: a host behind a NAT and a
// server on the internet.
const homeLab = `
nodes:
  srv:   {kind: server, addresses: [203.0.113.10]}
  home:  {kind: nat, type: port-restricted-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice: {kind: host, behind: home}
`

const ms = time.Millisecond

// shaper shapes one lab's links as a test says.
type shaper struct {
	t     *testing.T
	l     *labtest.Lab
	wires []linkshape.Wire
	mech  linkshape.Mechanism
	line  *linkshape.Line
	links map[string]linkshape.State
	// watch measures how late this machine wakes a sleeper while the
	// test measures: each hold of a packet and each receiver it wakes may
	// add that much to a delay.
	watch *testutil.LatenessWatch
}

func newShaper(t *testing.T, l *labtest.Lab) *shaper {
	t.Helper()
	s := &shaper{t: t, l: l, wires: lab.Wires(l.Name, l.Topo), links: map[string]linkshape.State{}, watch: testutil.WatchLateness(t)}
	ns, err := namedns.Open(lab.NamespaceName(l.Name, topology.Internet))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if s.mech, err = linkshape.Detect(ns.Fd()); err != nil {
		t.Fatal(err)
	}
	t.Logf("links are shaped by %s", s.mech)
	if s.mech == linkshape.DelayLine {
		s.line = linkshape.NewLine(t.Logf)
		t.Cleanup(s.line.Close)
	}
	return s
}

// delay fails the test unless got is want±tol, or later by at most
// wakes times how late this machine woke sleepers since the last check
// (s.watch): the timed holds on
// the packets' way and the receivers they wake.
func (s *shaper) delay(what string, got, want, tol time.Duration, wakes int) {
	s.t.Helper()
	if !testutil.Timed(s.t) {
		s.t.Logf("%s is %v (want %v)", what, got, want)
		return
	}
	late := s.watch.Late(s.t)
	if !testutil.LateDelay(got, want, tol, wakes, late) {
		s.t.Errorf("%s is %v, want %v, -%v to +%v (%d wakes of %v on this machine)", what, got, want, tol, tol+time.Duration(wakes)*late, wakes, late)
	} else {
		s.t.Logf("%s is %v (want %v, -%v to +%v)", what, got, want, tol, tol+time.Duration(wakes)*late)
	}
}

// set gives node's link st, on a running lab.
func (s *shaper) set(node string, st linkshape.State) {
	s.t.Helper()
	if err := st.Link.Validate(); err != nil {
		s.t.Fatal(err)
	}
	s.links[node] = st
	plans := linkshape.PlanLab(s.wires, s.links, s.mech)
	if s.line != nil {
		if err := s.line.Update(linkshape.Queues(plans)); err != nil {
			s.t.Fatal(err)
		}
	}
	for _, ns := range linkshape.Affected(s.wires, node) {
		if err := linkshape.Apply(plans[ns], s.mech); err != nil {
			s.t.Fatalf("apply %s: %v", ns, err)
		}
	}
}

func both(d linkcond.Direction) linkshape.State {
	return linkshape.State{Link: linkcond.Link{Up: d, Down: d}}
}

// udp opens a UDP socket in node.
func udp(t *testing.T, l *labtest.Lab, node, at string) *net.UDPConn {
	t.Helper()
	c, err := l.Lab.Node(node).ListenUDP("udp4", at)
	if err != nil {
		t.Fatal(err)
	}
	largeBuffer(t, c)
	return c
}

// largeBuffer gives c a receive buffer of 8 MiB, past the machine's
// rmem_max (as root may), so that a burst the test sends is not lost to
// a receiver slower than the sender: make vm-test's emulated machine
// wakes the receiver late, and its default buffer of about 200 KiB
// held half of 2000 datagrams sent 200 µs apart.
func largeBuffer(t *testing.T, c *net.UDPConn) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	}); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v %v", err, serr)
	}
}

func srvAt(l *labtest.Lab, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(l.Addr("srv", 0), port)
}

// RTT through two links of 25 ms each (alice's and the server's) is
// 100 ms at the median of 50 pings; with one of them at 50 ms, 150 ms.
func TestRTT(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Delay: 25 * ms}))
	s.set("srv", both(linkcond.Direction{Delay: 25 * ms}))
	echo(t, udp(t, l, "srv", ":7"))
	c := udp(t, l, "alice", ":0")
	rtt, lost := rtts(t, c, srvAt(l, 7), 50, 10*ms, 500*ms)
	if lost > 0 {
		t.Errorf("%d of 50 pings lost on links without loss", lost)
	}
	// Four holds (alice's link and the server's, each way) and two
	// receivers (the echo and alice).
	s.delay("the median RTT through two links of 25 ms", median(rtt), 100*ms, 3*ms, 6)

	s.set("srv", both(linkcond.Direction{Delay: 50 * ms}))
	rtt, _ = rtts(t, c, srvAt(l, 7), 50, 10*ms, 500*ms)
	s.delay("the median RTT with one link changed to 50 ms", median(rtt), 150*ms, 4*ms, 6)
}

// Plain ping (iputils, without -U) measures the RTT by the kernel's
// stamp of the reply's arrival (SO_TIMESTAMP), so it sees the whole delay
// only if every direction is held before the receiving namespace gets
// the packet: through two links of 25 ms it reports 100 ms at the median
// of 50 pings.
func TestPingRTT(t *testing.T) {
	ping, err := exec.LookPath("ping")
	if err != nil {
		t.Skip("no ping binary (iputils-ping) to cross-check with")
	}
	if v, err := exec.Command(ping, "-V").CombinedOutput(); err != nil || !strings.Contains(string(v), "iputils") {
		t.Skipf("ping is not iputils' (%s): its timestamps may differ", strings.TrimSpace(string(v)))
	}
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Delay: 25 * ms}))
	s.set("srv", both(linkcond.Direction{Delay: 25 * ms}))
	out, err := exec.Command("ip", "netns", "exec", lab.NamespaceName(l.Name, "alice"),
		ping, "-n", "-c", "50", "-i", "0.02", "-W", "2", l.Addr("srv", 0).String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	var rtt []time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		_, after, ok := strings.Cut(line, " time=")
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(strings.ReplaceAll(after, " ", "")); err == nil {
			rtt = append(rtt, d)
		}
	}
	if len(rtt) != 50 {
		t.Errorf("%d of 50 pings came back on links without loss:\n%s", len(rtt), out)
	}
	// Four holds; the kernel stamps the reply as it arrives.
	s.delay("the median RTT plain ping sees through two links of 25 ms", median(rtt), 100*ms, 3*ms, 4)
}

// IPv6 has no NAT: what the server sends alice is addressed to her but
// goes to her NAT first, so the server must know it by the prefix the NAT
// routes. Through the NAT's link of 10 ms each way, the RTT is 20 ms.
func TestIPv6RTT(t *testing.T) {
	l := labtest.Up(t, `
internet6: 2001:db8::/32
nodes:
  srv:   {kind: server, addresses: [203.0.113.10]}
  home:  {kind: nat, type: port-restricted-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice: {kind: host, behind: home}
`)
	s := newShaper(t, l)
	srv, err := l.Lab.Node("srv").ListenUDP("udp6", "[::]:7")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, srv)
	c, err := l.Lab.Node("alice").ListenUDP("udp6", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to := netip.AddrPortFrom(l.Topo.Node("srv").Addresses6[0], 7)
	// The path's own RTT first: the shaped link adds its delay to it.
	// (Routing IPv6 through the NAT costs make vm-test's emulated
	// machine a few milliseconds a round trip; the host a tenth of one.)
	wire, lost := rtts(t, c, to, 20, 10*ms, 500*ms)
	if lost > 0 {
		t.Fatalf("%d of 20 pings lost on perfect wires", lost)
	}
	s.set("home", both(linkcond.Direction{Delay: 10 * ms}))
	rtt, lost := rtts(t, c, to, 20, 10*ms, 500*ms)
	if lost > 0 {
		t.Errorf("%d of 20 pings lost on links without loss", lost)
	}
	t.Logf("the median IPv6 RTT on perfect wires is %v", median(wire))
	s.delay("the median IPv6 RTT the NAT's link of 10 ms adds", median(rtt)-median(wire), 20*ms, 2*ms, 2)
}

// Loss of 10% on alice's link, both directions, loses 19% of round trips.
func TestLoss(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	echo(t, udp(t, l, "srv", ":7"))
	c := udp(t, l, "alice", ":0")
	// Loss takes ARP's frames too, as on a real link: a lost request
	// would hold the first second's pings. The neighbours are found
	// first.
	if _, lost := rtts(t, c, srvAt(l, 7), 5, ms, 300*ms); lost > 0 {
		t.Fatalf("%d of 5 pings lost before the loss was set", lost)
	}
	s.set("alice", both(linkcond.Direction{Loss: 10}))
	_, lost := rtts(t, c, srvAt(l, 7), 1000, ms, 300*ms)
	binomial(t, "round trips lost through a link with 10% loss each way", lost, 1000, 1-0.9*0.9)
}

// Duplication of 10% sends a tenth of the packets twice, in each
// direction.
func TestDuplicate(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Duplicate: 10}))
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":0")
	// A slow receiver (make vm-test's emulated machine) may lose some
	// of a burst from its socket's buffer (udp gives it a large one),
	// copies and originals alike: the share of duplicates is counted
	// among the packets that arrived.
	const n = 2000
	dup := func(what string, got []arrival) {
		t.Helper()
		if d := distinct(got); d < n*9/10 {
			t.Errorf("%s: %d of %d packets arrived on a link without loss", what, d, n)
		} else {
			binomial(t, what+": packets duplicated", len(got)-d, d, 0.10)
		}
	}
	dup("up", send(t, c, srvAt(l, 9), at, n, 64, 200*time.Microsecond, 300*ms))
	// Down: the server answers to alice's mapping, which her first
	// packets made.
	from := publicOf(t, at, c, srvAt(l, 9))
	dup("down", send(t, at, from, c, n, 64, 200*time.Microsecond, 300*ms))
}

// publicOf returns the endpoint srv sees c's packets come from.
func publicOf(t *testing.T, srv, c *net.UDPConn, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	for range 50 {
		c.WriteToUDPAddrPort(probe(1<<31, 16), to)
		srv.SetReadDeadline(time.Now().Add(100 * ms))
		buf := make([]byte, 2048)
		if _, from, err := srv.ReadFromUDPAddrPort(buf); err == nil {
			return from
		}
	}
	t.Fatal("the server never heard from alice")
	return netip.AddrPort{}
}

func distinct(a []arrival) int {
	seen := map[uint32]bool{}
	for _, x := range a {
		seen[x.seq] = true
	}
	return len(seen)
}

// Reordering of 10% with a delay of 20 ms sends a tenth of the packets at
// once: each overtakes the one before it, unless that one went at once
// too.
func TestReorder(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Delay: 20 * ms, Reorder: 10}))
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":0")
	const n = 2000
	got := send(t, c, srvAt(l, 9), at, n, 16, 500*time.Microsecond, time.Second)
	if len(got) != n {
		t.Fatalf("%d of %d packets arrived on a link without loss", len(got), n)
	}
	binomial(t, "packets that overtook the one sent before them", overtook(got), n-1, 0.10*0.90)
	// The ones that went at once did not take the delay; those that took
	// it took all of it, never less. (A slow machine, make vm-test's, can
	// hold one that went at once until the qdisc's next timer, though
	// never as long as the delay.)
	fast := 0
	for _, a := range got {
		if a.delay < 18*ms {
			fast++
		}
	}
	// Linux 6.1's netem under make vm-test's emulation sent only 97,
	// 114 and 147 of 2000 at once in three runs, while as many as
	// expected overtook the one before them. netem on an emulated machine
	// has its count reported, not checked (the overtaking above is);
	// natlab's delay line, and netem on a machine that keeps time, are
	// checked.
	if s.mech == linkshape.Netem && testutil.Lateness(t) > 750*time.Microsecond {
		t.Logf("packets that skipped the delay: %d of %d (not checked on an emulated machine's netem)", fast, n)
		return
	}
	binomial(t, "packets that skipped the delay", fast, n, 0.10)
}

// overtook counts the packets that arrived before the one sent just
// before them.
func overtook(a []arrival) int {
	at := map[uint32]int{}
	for i, x := range a {
		at[x.seq] = i
	}
	n := 0
	for seq, i := range at {
		if prev, ok := at[seq-1]; ok && seq > 0 && i < prev {
			n++
		}
	}
	return n
}

// Jitter of 10 ms on a delay of 20 ms spreads packets' delays evenly over
// 10-30 ms, around the delay the link has without it, and does not
// reorder them.
func TestJitter(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":0")
	// The same link without jitter first: what this machine adds to the
	// delay (a busy one, or an emulated one, makes packets late, never
	// early), measured as the jitter is.
	s.set("alice", linkshape.State{Link: linkcond.Link{Up: linkcond.Direction{Delay: 20 * ms}}})
	plain := median(delays(send(t, c, srvAt(l, 9), at, 50, 16, 21*ms, 300*ms)))
	s.set("alice", linkshape.State{Link: linkcond.Link{Up: linkcond.Direction{Delay: 20 * ms, Jitter: 10 * ms}}})
	// Spaced by more than the spread, so that no packet waits for the
	// one ahead of it: each delay is the one drawn.
	got := send(t, c, srvAt(l, 9), at, 200, 16, 21*ms, 300*ms)
	d := delays(got)
	s.delay("the median one-way delay without jitter", plain, 20*ms, 2*ms, 2)
	// The median of n delays drawn evenly from ±jitter strays from the
	// middle by jitter/√n (0.7 ms for 200) one standard deviation at a
	// time: four of them, and a millisecond for the plain median's own
	// stray (2 ms once failed a run 2.6 ms off, 3.6 of them).
	within(t, "the median one-way delay with jitter", median(d), plain, 4*10*ms/time.Duration(math.Sqrt(float64(len(d))))+ms)
	within(t, "the spread of the middle half of the delays", quantile(d, 0.75)-quantile(d, 0.25), 10*ms, 5*ms/2)
	within(t, "the 5th percentile of one-way delays", quantile(d, 0.05), plain-9*ms, 2*ms)
	if lo := quantile(d, 0); lo < 10*ms-ms/2 {
		t.Errorf("a packet took %v, less than the delay less the jitter (10 ms)", lo)
	}
	// Sent faster than the spread, they would be shuffled if each took
	// its own delay.
	got = send(t, c, srvAt(l, 9), at, 500, 16, 200*time.Microsecond, 300*ms)
	if len(got) != 500 {
		t.Fatalf("%d of 500 packets arrived", len(got))
	}
	// natlab's delay line keeps their order exactly. netem keeps it
	// through the rate it is given, except on Linux 6.1 (Debian 12's
	// default kernel), where one packet of these 500 overtook the one
	// before it in every run of make vm-test (docs/kernels.md); without
	// the rate, 241 did. So netem may shuffle one packet in 250.
	allowed := 0
	if s.mech == linkshape.Netem {
		allowed = len(got) / 250
	}
	if n := overtook(got); n > allowed {
		t.Errorf("%d packets overtook the one before them on a link with jitter and no reorder (%s; at most %d may)", n, s.mech, allowed)
		for i, a := range got {
			if a.seq != uint32(i) {
				t.Errorf("packet %d arrived in place %d", a.seq, i)
				break
			}
		}
	}
}

// A rate of 10mbit carries 9-10.5 Mbit/s of TCP.
func TestRate(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Rate: 10_000_000}))
	mbit(t, "TCP through a link of rate 10mbit", func() float64 {
		alice, server := tcpPair(t, l)
		return throughput(t, alice, server, 3*time.Second)
	}, 9, 10.5)
}

// tcpPair connects alice to the server with TCP, and returns her end and
// a channel with the server's.
func tcpPair(t *testing.T, l *labtest.Lab) (net.Conn, chan net.Conn) {
	t.Helper()
	ln, err := l.Lab.Node("srv").Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := accept(t, ln)
	to := srvAt(l, uint16(ln.Addr().(*net.TCPAddr).Port))
	c, err := l.Lab.Node("alice").Dial("tcp4", to.String())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 1)
	select {
	case s := <-accepted:
		ch <- s
	case <-time.After(5 * time.Second):
		t.Fatal("no TCP connection arrived")
	}
	return c, ch
}

// mbit checks the rate measure measures, in bit/s, against lo-hi Mbit/s.
// A link never carries more than its rate, so every measurement must be
// at most hi; one below lo is measured again once, since a sender or a
// delay line that other work on the machine keeps off the CPU for a
// while sends less than the link would carry (seen at 83% under a load
// of CI and browser tests on two cores), and only a link that carries
// too little twice fails.
func mbit(t *testing.T, what string, measure func() float64, lo, hi float64) {
	t.Helper()
	for try := 1; ; try++ {
		m := measure() / 1e6
		switch {
		case m > hi:
			t.Errorf("%s: %.2f Mbit/s, want %v-%v", what, m, lo, hi)
		case m < lo && try == 1:
			t.Logf("%s: %.2f Mbit/s, want %v-%v: measuring again", what, m, lo, hi)
			continue
		case m < lo && m >= 0.85*lo && !testutil.KeepsTime(t, testutil.Lateness(t)):
			// An emulated machine (make vm-test's) is itself too slow
			// to fill a link now and then: 7.19 Mbit/s of 8mbit twice.
			t.Logf("%s: %.2f Mbit/s, want %v-%v (twice, on a machine too slow to fill it; within 85%%)", what, m, lo, hi)
		case m < lo:
			t.Errorf("%s: %.2f Mbit/s, want %v-%v (twice)", what, m, lo, hi)
		default:
			t.Logf("%s: %.2f Mbit/s (want %v-%v)", what, m, lo, hi)
		}
		return
	}
}

// An asymmetric link has each direction's rate and delay: measured
// alice to the server (up) and back (down).
func TestAsymmetric(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", linkshape.State{Link: linkcond.Link{
		Up:   linkcond.Direction{Delay: 10 * ms, Rate: 2_000_000},
		Down: linkcond.Direction{Delay: 30 * ms, Rate: 8_000_000},
	}})
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":0")
	up := send(t, c, srvAt(l, 9), at, 50, 16, 5*ms, 300*ms)
	s.delay("the median delay up", median(delays(up)), 10*ms, ms, 2)
	from := publicOf(t, at, c, srvAt(l, 9))
	down := send(t, at, from, c, 50, 16, 5*ms, 300*ms)
	s.delay("the median delay down", median(delays(down)), 30*ms, ms, 2)

	mbit(t, "TCP up through 2mbit", func() float64 {
		alice, server := tcpPair(t, l)
		return throughput(t, alice, server, 3*time.Second)
	}, 1.8, 2.1)
	// Down: the server sends on a connection alice opened.
	mbit(t, "TCP down through 8mbit", func() float64 {
		alice, server := tcpPair(t, l)
		back := make(chan net.Conn, 1)
		back <- alice
		return throughput(t, <-server, back, 3*time.Second)
	}, 7.2, 8.4)
}

// The link is down: nothing crosses it either way; up again, everything
// does.
func TestDown(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	echo(t, udp(t, l, "srv", ":7"))
	c := udp(t, l, "alice", ":0")
	if _, lost := rtts(t, c, srvAt(l, 7), 20, 5*ms, 200*ms); lost > 0 {
		t.Fatalf("%d of 20 pings lost before the link went down", lost)
	}
	s.set("alice", linkshape.State{Down: true})
	if _, lost := rtts(t, c, srvAt(l, 7), 20, 5*ms, 300*ms); lost != 20 {
		t.Errorf("%d of 20 pings came back through a link that is down", 20-lost)
	}
	// Nor does anything from the NAT's side reach alice.
	home := udp(t, l, "home", ":0")
	far := udp(t, l, "alice", ":9")
	if got := send(t, home, netip.AddrPortFrom(l.Addr("alice", 0), 9), far, 20, 16, 5*ms, 200*ms); len(got) > 0 {
		t.Errorf("%d of 20 packets from the NAT reached alice through a link that is down", len(got))
	}
	s.set("alice", linkshape.State{})
	if _, lost := rtts(t, c, srvAt(l, 7), 20, 5*ms, 300*ms); lost > 0 {
		t.Errorf("%d of 20 pings lost after the link came up again", lost)
	}
}

// An MTU of 1400 on alice's link lets a 1400-byte packet through with
// "don't fragment" set, either way, and the NAT, the router in front of
// the link, answers a 1500-byte one from the far side with ICMP
// "fragmentation needed", naming 1400.
func TestMTU(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("alice", linkshape.State{Link: linkcond.Link{MTU: 1400}})
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":9")
	for _, conn := range []*net.UDPConn{at, c} {
		dontFragment(t, conn)
	}
	const udpIP = 28 // IPv4 and UDP headers
	if got := send(t, c, srvAt(l, 9), at, 5, 1400-udpIP, 5*ms, 200*ms); len(got) != 5 {
		t.Errorf("%d of 5 packets of 1400 bytes went up a link of MTU 1400", len(got))
	}
	from := publicOf(t, at, c, srvAt(l, 9))
	if got := send(t, at, from, c, 5, 1400-udpIP, 5*ms, 200*ms); len(got) != 5 {
		t.Errorf("%d of 5 packets of 1400 bytes came down a link of MTU 1400", len(got))
	}
	// One packet: the ICMP error it gets back fails the socket's next
	// send, as IP_RECVERR asks.
	if got := send(t, at, from, c, 1, 1500-udpIP, 5*ms, 200*ms); len(got) > 0 {
		t.Errorf("a packet of 1500 bytes crossed a link of MTU 1400")
	}
	fragNeeded(t, "the server", at, 1400, l.Addr("home", 0))
	// Alice's own end refuses to send more than the link takes.
	if _, err := c.WriteToUDPAddrPort(make([]byte, 1500-udpIP), srvAt(l, 9)); err == nil {
		t.Error("alice sent 1500 bytes with don't-fragment on a link of MTU 1400")
	}
}

// A server whose link has mtu 1400 sits behind the internet, a switch:
// a 1500-byte packet with "don't fragment" that a NAT forwards there is
// answered by the NAT, the router that forwards onto the internet, with
// ICMP "fragmentation needed" naming 1400, rather than dying unanswered at
// the switch; a 1400-byte one goes through.
func TestMTUOnTheInternet(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	s.set("srv", linkshape.State{Link: linkcond.Link{MTU: 1400}})
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":9")
	dontFragment(t, c)
	const udpIP = 28 // IPv4 and UDP headers
	if got := send(t, c, srvAt(l, 9), at, 5, 1400-udpIP, 5*ms, 200*ms); len(got) != 5 {
		t.Errorf("%d of 5 packets of 1400 bytes reached a server whose link has MTU 1400", len(got))
	}
	if got := send(t, c, srvAt(l, 9), at, 1, 1500-udpIP, 5*ms, 200*ms); len(got) > 0 {
		t.Errorf("a packet of 1500 bytes reached a server whose link has MTU 1400")
	}
	gw, _ := l.Topo.Gateway(l.Topo.Node("alice"))
	fragNeeded(t, "alice", c, 1400, gw)
}

// fragNeeded fails the test unless who, sending on c, got ICMP
// "fragmentation needed" naming mtu from router, the router in front of
// the narrow link.
func fragNeeded(t *testing.T, who string, c *net.UDPConn, mtu uint32, router netip.Addr) {
	t.Helper()
	e := icmpError(t, c)
	if e == nil {
		t.Fatalf("%s got no ICMP error for a 1500-byte packet too big for a link of MTU %d", who, mtu)
	}
	if e.Type != 3 || e.Code != 4 || e.Info != mtu {
		t.Errorf("%s got ICMP type %d code %d, MTU %d; want type 3 code 4 (fragmentation needed), MTU %d", who, e.Type, e.Code, e.Info, mtu)
	}
	if e.From != router {
		t.Errorf("the ICMP error came from %v, want the NAT %v, the router in front of the link", e.From, router)
	}
}

// dontFragment sets "don't fragment" on c's packets whatever the path's
// MTU is thought to be, and asks for ICMP errors on its error queue.
func dontFragment(t *testing.T, c *net.UDPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
	if serr != nil {
		t.Fatal(serr)
	}
}

type icmpErr struct {
	Type, Code uint8
	Info       uint32
	From       netip.Addr
}

// icmpError reads the ICMP error c's error queue holds, waiting a little
// for one; nil if none comes.
func icmpError(t *testing.T, c *net.UDPConn) *icmpErr {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		var got *icmpErr
		rc.Control(func(fd uintptr) {
			buf, oob := make([]byte, 2048), make([]byte, 512)
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return
			}
			for _, m := range msgs {
				if m.Header.Level != unix.IPPROTO_IP || m.Header.Type != unix.IP_RECVERR || len(m.Data) < int(unsafe.Sizeof(unix.SockExtendedErr{}))+8 {
					continue
				}
				ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
				if ee.Origin != unix.SO_EE_ORIGIN_ICMP {
					continue
				}
				// The offender's address follows: a sockaddr_in.
				off := m.Data[unsafe.Sizeof(*ee):]
				from, _ := netip.AddrFromSlice(off[4:8])
				got = &icmpErr{Type: ee.Type, Code: ee.Code, Info: ee.Info, From: from}
			}
		})
		if got != nil {
			return got
		}
		time.Sleep(10 * ms)
	}
	return nil
}

// A delayed link does not change what the NAT does: packets of one new
// flow sent faster than the delay all leave a NAT of random ports from
// one public port, as they would on a wire. (Were they held after
// conntrack had seen the first but before it had confirmed its entry,
// each would get a mapping of its own.)
func TestNATUnderDelay(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  srv:   {kind: server, addresses: [203.0.113.10]}
  home:  {kind: nat, type: symmetric, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice: {kind: host, behind: home}
`)
	s := newShaper(t, l)
	s.set("alice", both(linkcond.Direction{Delay: 30 * ms}))
	s.set("home", both(linkcond.Direction{Delay: 30 * ms}))
	at := udp(t, l, "srv", ":9")
	c := udp(t, l, "alice", ":0")
	var wg sync.WaitGroup
	froms := map[netip.AddrPort]int{}
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			at.SetReadDeadline(time.Now().Add(300 * ms))
			_, from, err := at.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			froms[from]++
		}
	})
	for i := range 10 {
		c.WriteToUDPAddrPort(probe(uint32(i), 16), srvAt(l, 9))
		time.Sleep(ms)
	}
	wg.Wait()
	if len(froms) != 1 {
		t.Errorf("10 packets of one flow came from %d public endpoints: %v", len(froms), froms)
	}
}

// Under netem a node's up direction is carried out where its packets
// arrive: the bridge's end of its uplink redirects them to an ifb device
// whose netem qdisc holds them, and the node's own end keeps only the
// rate. Cleared, the ifb and the redirect are gone. (The delay line holds
// packets in its own way: TestRTT and the others measure both.)
func TestUpHeldOnArrival(t *testing.T) {
	l := labtest.Up(t, homeLab)
	s := newShaper(t, l)
	if s.mech != linkshape.Netem {
		t.Skipf("links are shaped by %s here: the ifb is netem's", s.mech)
	}
	var w linkshape.Wire
	for _, x := range s.wires {
		if x.Node == "alice" {
			w = x
		}
	}
	handle := func(ns string) *netlink.Handle {
		n, err := namedns.Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		h, err := namedns.Netlink(n.Fd())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	own, parent := handle(w.NS), handle(w.ParentNS)
	kinds := func(h *netlink.Handle, index int) []string {
		qs, err := h.QdiscList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}})
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, q := range qs {
			k = append(k, q.Type())
		}
		slices.Sort(k)
		return k
	}
	ifb := fmt.Sprintf("up.%d", w.PortIndex)
	s.set("alice", linkshape.State{Link: linkcond.Link{Up: linkcond.Direction{Delay: 10 * ms, Rate: 2_000_000}}})
	if k := kinds(own, w.UplinkIndex); !slices.Equal(k, []string{"tbf"}) {
		t.Errorf("alice's own end has qdiscs %v, want only the rate's tbf", k)
	}
	l2, err := parent.LinkByName(ifb)
	if err != nil {
		t.Fatalf("no %s holding alice's up direction: %v", ifb, err)
	}
	if k := kinds(parent, l2.Attrs().Index); !slices.Contains(k, "netem") {
		t.Errorf("%s has qdiscs %v, want a netem", ifb, k)
	}
	if k := kinds(parent, w.PortIndex); !slices.Contains(k, "ingress") {
		t.Errorf("alice's port has qdiscs %v, want an ingress qdisc redirecting to %s", k, ifb)
	}
	// A change keeps the device and the redirect.
	s.set("alice", linkshape.State{Link: linkcond.Link{Up: linkcond.Direction{Delay: 20 * ms}}})
	if _, err := parent.LinkByName(ifb); err != nil {
		t.Errorf("after a change of delay: %v", err)
	}
	s.set("alice", linkshape.State{})
	if _, err := parent.LinkByName(ifb); err == nil {
		t.Errorf("%s is still there with alice's link a perfect wire", ifb)
	}
	if k := kinds(parent, w.PortIndex); slices.Contains(k, "ingress") {
		t.Errorf("alice's port still has an ingress qdisc: %v", k)
	}
}
