package trace_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/trace"
)

const scenario = `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  h1:     {kind: host, behind: nat}
`

// upNAT brings the scenario up and opens its NAT's namespace until the
// test ends.
func upNAT(t *testing.T) (*labtest.Lab, *namedns.NS) {
	t.Helper()
	l := labtest.Up(t, scenario)
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return l, ns
}

func TestTraceShowsRewritesAndDrops(t *testing.T) {
	testutil.CheckRoutines(t)
	testutil.RequireTool(t, "tcpdump")
	l, ns := upNAT(t)

	// An independent capture of the same namespace, on every interface.
	capture := filepath.Join(t.TempDir(), "tcpdump.pcap")
	ctx, stop := context.WithCancel(context.Background())
	tcpdump := exec.CommandContext(ctx, "ip", "netns", "exec", l.Namespace("nat"), "tcpdump", "-i", "any", "-n", "-U", "-w", capture, "udp")
	stderr, err := tcpdump.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tcpdump.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop()
	// tcpdump says "listening" once it captures; what it says later is
	// drained so that it never blocks on a full pipe.
	lines := bufio.NewScanner(stderr)
	for lines.Scan() && !strings.Contains(lines.Text(), "listening") {
	}
	go io.Copy(io.Discard, stderr)

	tr, err := trace.Start(t.Context(), ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	srv := l.UDP("server", ":3478")
	other := l.UDP("server", ":3479")
	h := l.UDP("h1", ":5000")
	h.Send(netip.MustParseAddrPort("203.0.113.10:3478"), "hello")
	public := srv.Expect("hello", time.Second)
	srv.Send(public, "welcome")
	h.Expect("welcome", time.Second)
	other.Send(public, "knock") // port-restricted: dropped
	evs := tr.Drain(t.Context(), time.Second)
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	stop()
	tcpdump.Wait()

	priv := netip.AddrPortFrom(l.Addr("h1", 0), 5000)
	want := []struct {
		kind        trace.Kind
		in, out     string
		before      string
		afterSrcDst string
		rule        string
	}{
		{trace.Forwarded, "lan0", "wan0", "udp " + priv.String() + " > 203.0.113.10:3478", public.String() + " > 203.0.113.10:3478", ""},
		{trace.Forwarded, "wan0", "lan0", "udp 203.0.113.10:3478 > " + public.String(), "203.0.113.10:3478 > " + priv.String(), ""},
		{trace.Dropped, "wan0", "", "udp 203.0.113.10:3479 > " + public.String(), "", natrules.DropInput},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d:\n%v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[i]
		after := ""
		if e.After != nil {
			after = e.After.Src.String() + " > " + e.After.Dst.String()
		}
		if e.Kind != w.kind || e.In != w.in || e.Out != w.out || e.Before.String() != w.before || after != w.afterSrcDst || e.Rule != w.rule {
			t.Errorf("event %d: %v\nwant %s %s->%s %s => %s (%s)", i, e, w.kind, w.in, w.out, w.before, w.afterSrcDst, w.rule)
		}
	}

	// The trace as a pcap reads back with tcpdump: the five packets, each
	// forwarded one before and after its rewrite.
	pcapFile := filepath.Join(t.TempDir(), "trace.pcap")
	f, _ := os.Create(pcapFile)
	pw, _ := trace.NewPcapWriter(f)
	for _, e := range evs {
		pw.Write(e.Time, e.Before.Raw)
		if e.After != nil {
			pw.Write(e.Time, e.After.Raw)
		}
	}
	f.Close()
	back, err := exec.Command("tcpdump", "-n", "-r", pcapFile).CombinedOutput()
	if err != nil || strings.Count(string(back), " IP ") != 5 || !strings.Contains(string(back), tcpdumpAddr(priv)+" > 203.0.113.10.3478: UDP, length 5") {
		t.Errorf("the trace's pcap read back with tcpdump: %v\n%s", err, back)
	}

	// tcpdump saw the same: each forwarded packet on the way in and on the
	// way out, and the dropped one on the way in only.
	out, err := exec.Command("tcpdump", "-n", "-r", capture).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	// It sees LAN packets twice (on the host's bridge port and on the
	// bridge), so compare the distinct headers.
	distinct := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, hdr, ok := strings.Cut(line, " IP "); ok {
			distinct[strings.Split(hdr, ":")[0]] = true
		}
	}
	if len(distinct) != 5 {
		t.Errorf("tcpdump saw %d distinct headers, want 5 (2 forwarded, before and after, 1 dropped):\n%s", len(distinct), out)
	}
	for _, e := range evs {
		if !strings.Contains(string(out), tcpdumpAddr(e.Before.Src)+" > "+tcpdumpAddr(e.Before.Dst)) {
			t.Errorf("tcpdump did not see %v", e.Before)
		}
		if e.After != nil && !strings.Contains(string(out), tcpdumpAddr(e.After.Src)+" > "+tcpdumpAddr(e.After.Dst)) {
			t.Errorf("tcpdump did not see %v", e.After)
		}
	}
}

func tcpdumpAddr(a netip.AddrPort) string {
	return a.Addr().String() + "." + strings.TrimPrefix(a.String(), a.Addr().String()+":")
}

func TestPcapReadsBack(t *testing.T) {
	testutil.CheckRoutines(t)
	tool := testutil.RequireTool(t, "tcpdump")
	var b bytes.Buffer
	w, err := trace.NewPcapWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	// An IPv4 UDP packet 192.168.1.2:5000 > 203.0.113.10:3478, "hi".
	pkt := []byte{0x45, 0, 0, 30, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 168, 1, 2, 203, 0, 113, 10,
		0x13, 0x88, 0x0d, 0x96, 0, 10, 0, 0, 'h', 'i'}
	w.Write(time.Unix(1700000000, 0), pkt)
	file := filepath.Join(t.TempDir(), "t.pcap")
	os.WriteFile(file, b.Bytes(), 0o644)
	out, err := exec.Command(tool, "-n", "-r", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "192.168.1.2.5000 > 203.0.113.10.3478: UDP, length 2") {
		t.Errorf("tcpdump -r: %v\n%s", err, out)
	}
}

// A packet for an address the NAT has no route to is dropped by the
// kernel, not taken in by the NAT.
func TestTraceNoRoute(t *testing.T) {
	testutil.CheckRoutines(t)
	l, ns := upNAT(t)
	tr, err := trace.Start(t.Context(), ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	h := l.UDP("h1", ":5000")
	h.Send(netip.MustParseAddrPort("10.9.9.9:7"), "anyone?")
	for _, e := range tr.Drain(t.Context(), time.Second) {
		if e.Before.Dst.String() != "10.9.9.9:7" {
			continue
		}
		if e.Kind != trace.Dropped || e.Rule != trace.NoRoute || e.In != "lan0" {
			t.Errorf("the packet to 10.9.9.9: %v, want dropped for want of a route", e)
		}
		return
	}
	t.Error("the packet to 10.9.9.9 was not traced")
}

// Setting a trace up ends with its context, leaving the NAT's log free
// for the next; Drain returns when its context ends, however long it
// would have waited for the NAT to be quiet.
func TestTraceContext(t *testing.T) {
	testutil.CheckRoutines(t)
	_, ns := upNAT(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if tr, err := trace.Start(cancelled, ns.Fd()); !errors.Is(err, context.Canceled) {
		if err == nil {
			tr.Stop()
		}
		t.Fatalf("start with a cancelled context: %v, want %v", err, context.Canceled)
	}
	tr, err := trace.Start(t.Context(), ns.Fd())
	if err != nil {
		t.Fatalf("start after a cancelled start: %v", err)
	}
	defer tr.Stop()
	if evs := tr.Drain(cancelled, time.Hour); len(evs) != 0 {
		t.Errorf("drain of a quiet NAT: %v", evs)
	}
}
