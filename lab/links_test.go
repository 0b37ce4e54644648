package lab_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/topology"
)

const linkLab = `
nodes:
  srv:   {kind: server, addresses: [203.0.113.10]}
  home:  {kind: nat, type: port-restricted-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice: {kind: host, behind: home}
`

// upWithLinks brings linkLab up with the links given (until the parser
// reads link: from the file, they are set on the parsed nodes) and takes
// it down when the test ends.
func upWithLinks(t *testing.T, links map[string]linkcond.Link) (string, *topology.Topology) {
	t.Helper()
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	topo, err := topology.Parse("links.yaml", []byte(linkLab), nil)
	if err != nil {
		t.Fatal(err)
	}
	topo.Name = name
	for node, l := range links {
		topo.Node(node).Link = l
	}
	if _, err := lab.Up(context.Background(), topo, lab.Options{Source: "test", Scenario: []byte(linkLab)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return name, topo
}

func listen(t *testing.T, name, node, at string) *net.UDPConn {
	t.Helper()
	ns, err := namedns.Open(lab.NamespaceName(name, node))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var c *net.UDPConn
	err = namedns.Do(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(at)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pingMedian sends n pings from alice to an echo on the server, one every
// 10 ms, and returns the median RTT of those that came back and how many
// did.
func pingMedian(t *testing.T, name string, n int) (time.Duration, int) {
	t.Helper()
	srv := listen(t, name, "srv", "0.0.0.0:7")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			srv.SetReadDeadline(time.Now().Add(time.Second))
			k, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:k], from)
		}
	})
	defer srv.Close()
	c := listen(t, name, "alice", "0.0.0.0:0")
	start := time.Now()
	var rtts []time.Duration
	wg.Go(func() {
		buf := make([]byte, 64)
		seen := map[uint32]bool{}
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := c.Read(buf)
			if err != nil || k < 12 {
				return
			}
			if seq := binary.BigEndian.Uint32(buf); !seen[seq] {
				seen[seq] = true
				rtts = append(rtts, time.Since(start)-time.Duration(binary.BigEndian.Uint64(buf[4:])))
			}
		}
	})
	to := netip.MustParseAddrPort("203.0.113.10:7")
	for i := range n {
		b := binary.BigEndian.AppendUint32(nil, uint32(i))
		b = binary.BigEndian.AppendUint64(b, uint64(time.Since(start)))
		c.WriteToUDPAddrPort(b, to)
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if len(rtts) == 0 {
		return 0, 0
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], len(rtts)
}

// A lab comes up with its links as the topology gives them, records them
// and the mechanism, and SetLink and SetLinkState change them on the
// running lab: RTT through two links of 25 ms is 100 ms at the median of
// 50 pings; set to 50 ms on one of them, 150 ms; down, nothing comes back;
// up again, 150 ms. The root namespace is not touched.
func TestLinks(t *testing.T) {
	before := rootSnapshot(t)
	d25 := linkcond.Link{Up: linkcond.Direction{Delay: 25 * time.Millisecond}, Down: linkcond.Direction{Delay: 25 * time.Millisecond}}
	name, _ := upWithLinks(t, map[string]linkcond.Link{"alice": d25, "srv": d25})
	st, err := labstate.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Links["alice"].Link != d25 || st.Links["srv"].Link != d25 || st.LinkMechanism == "" {
		t.Errorf("the record has links %+v, mechanism %q", st.Links, st.LinkMechanism)
	}
	t.Logf("links shaped by %s", st.LinkMechanism)
	watch, timed := testutil.WatchLateness(t), testutil.Timed(t)
	// Four holds (alice's link and the server's, each way) and two
	// receivers woken (the echo and alice) per ping: each may be late
	// on a busy or emulated machine, as late as it was while the pings
	// ran (testutil.LatenessWatch).
	rtt, got := pingMedian(t, name, 50)
	late := watch.Late(t)
	if got != 50 || timed && !testutil.LateDelay(rtt, 100*time.Millisecond, 3*time.Millisecond, 6, late) {
		t.Errorf("median RTT %v of %d pings through two links of 25 ms, want 100 ms -3 ms to +%v of 50", rtt, got, 3*time.Millisecond+6*late)
	}

	d50 := 50 * time.Millisecond
	now, err := lab.SetLink(context.Background(), name, "srv", linkcond.Change{Both: linkcond.Setting{Delay: &d50}})
	if err != nil {
		t.Fatal(err)
	}
	if now.Up.Delay != d50 || now.Down.Delay != d50 {
		t.Errorf("SetLink returned %v", now)
	}
	rtt, got = pingMedian(t, name, 50)
	late = watch.Late(t)
	if got != 50 || timed && !testutil.LateDelay(rtt, 150*time.Millisecond, 4*time.Millisecond, 6, late) {
		t.Errorf("median RTT %v of %d pings with one link at 50 ms, want 150 ms -4 ms to +%v of 50", rtt, got, 4*time.Millisecond+6*late)
	}

	if err := lab.SetLinkState(context.Background(), name, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, got := pingMedian(t, name, 10); got != 0 {
		t.Errorf("%d of 10 pings came back through a link that is down", got)
	}
	if err := lab.SetLinkState(context.Background(), name, "alice", true); err != nil {
		t.Fatal(err)
	}
	rtt, got = pingMedian(t, name, 20)
	late = watch.Late(t)
	if got != 20 || timed && !testutil.LateDelay(rtt, 150*time.Millisecond, 4*time.Millisecond, 6, late) {
		t.Errorf("after the link came up: median RTT %v of %d pings, want 150 ms -4 ms to +%v of 20", rtt, got, 4*time.Millisecond+6*late)
	}
	st, err = labstate.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := st.Topology()
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Node("srv").Link; got.Up.Delay != d50 || st.Links["alice"].Down {
		t.Errorf("the record's topology has srv's link %v, alice down %v", got, st.Links["alice"].Down)
	}
	if after := rootSnapshot(t); !equalSnapshots(t, before, after) {
		t.Error("shaping links changed the root namespace")
	}
}

// equalSnapshots compares two root snapshots, naming what differs.
func equalSnapshots(t *testing.T, a, b map[string]string) bool {
	t.Helper()
	same := true
	for k := range a {
		if k == "namespaces" {
			continue
		}
		if a[k] != b[k] {
			t.Errorf("root %s changed:\nbefore:\n%s\nafter:\n%s", k, a[k], b[k])
			same = false
		}
	}
	return same
}

// A bad change is refused whole and changes nothing; a node the lab does
// not have is named.
func TestSetLinkRefuses(t *testing.T) {
	name, _ := upWithLinks(t, nil)
	loss := 150.0
	d := 10 * time.Millisecond
	_, err := lab.SetLink(context.Background(), name, "alice", linkcond.Change{Both: linkcond.Setting{Delay: &d, Loss: &loss}})
	if err == nil || !strings.Contains(err.Error(), "loss 150% is outside 0-100%") || !strings.Contains(err.Error(), "alice") {
		t.Errorf("loss 150%%: %v", err)
	}
	if _, err := lab.SetLink(context.Background(), name, "carol", linkcond.Change{Both: linkcond.Setting{Delay: &d}}); err == nil || !strings.Contains(err.Error(), `no node "carol"`) {
		t.Errorf("unknown node: %v", err)
	}
	st, err := labstate.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Links) != 0 || st.LinkMechanism != "" {
		t.Errorf("a refused change left links %+v, mechanism %q", st.Links, st.LinkMechanism)
	}
	// A lab that came up with perfect wires gets its delay line on its
	// first delay.
	if _, err := lab.SetLink(context.Background(), name, "alice", linkcond.Change{Both: linkcond.Setting{Delay: &d}}); err != nil {
		t.Fatal(err)
	}
	if st, err = labstate.Load(name); err != nil {
		t.Fatal(err)
	}
	if st.LinkMechanism == string(linkshape.DelayLine) && !slices.ContainsFunc(st.Processes, func(p labstate.Process) bool { return p.What == "delay line" && lab.ProcessAlive(p.PID, p.StartTime) }) {
		t.Errorf("no delay line runs: processes %+v", st.Processes)
	}
	// Two holds and two receivers woken per ping (testutil.Lateness).
	watch, timed := testutil.WatchLateness(t), testutil.Timed(t)
	rtt, got := pingMedian(t, name, 20)
	if late := watch.Late(t); got != 20 || timed && !testutil.LateDelay(rtt, 20*time.Millisecond, 3*time.Millisecond, 4, late) {
		t.Errorf("median RTT %v of %d pings with alice's link at 10 ms, want 20 ms -3 ms to +%v of 20", rtt, got, 3*time.Millisecond+4*late)
	}
}
