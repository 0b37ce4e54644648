package trace_test

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/trace"
)

// startTrace traces NAT node nat of l until the test ends.
func startTrace(t *testing.T, l *labtest.Lab, nat string) *trace.Tracer {
	t.Helper()
	ns, err := namedns.Open(l.Namespace(nat))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	tr, err := trace.Start(t.Context(), ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Stop() })
	return tr
}

// Events come in the order the kernel saw the packets: the NAT's ICMP
// error after the packet it answers, although the trace knows that a
// packet went nowhere only a moment later.
func TestTraceInTimeOrder(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, scenario)
	gateway := l.Topo.Node("nat").NAT.Gateway
	for _, tc := range []struct {
		name string
		to   netip.AddrPort
		kind trace.Kind
	}{
		{"no route", netip.MustParseAddrPort("10.9.9.9:7"), trace.Dropped},
		{"to the NAT's closed port", netip.AddrPortFrom(gateway, 9), trace.Local},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := startTrace(t, l, "nat")
			h := l.UDP("h1", "")
			h.Send(tc.to, "anyone?")
			evs := tr.Drain(t.Context(), time.Second)
			cause, answer := -1, -1
			for i, e := range evs {
				switch {
				case e.Before.Dst == tc.to && e.Kind == tc.kind:
					cause = i
				case e.Kind == trace.Sent && e.Before.ICMP == "unreachable":
					answer = i
				}
				if i > 0 && e.Time.Before(evs[i-1].Time) {
					t.Errorf("event %d is older than event %d before it:\n%v\n%v", i, i-1, e, evs[i-1])
				}
			}
			if cause < 0 || answer < 0 {
				t.Fatalf("want the packet to %v (%s) and the NAT's ICMP error, got:\n%v", tc.to, tc.kind, evs)
			}
			if answer < cause {
				t.Errorf("the ICMP error (event %d) comes before the packet it answers (event %d):\n%v\n%v", answer, cause, evs[answer], evs[cause])
			}
		})
	}
}

// Behind a symmetric NAT an echo request's source is rewritten and its
// identifier may be; its destination never is, and the label says what
// changed.
func TestTraceLabelsICMPRewrite(t *testing.T) {
	testutil.CheckRoutines(t)
	testutil.RequireTool(t, "ping")
	l := labtest.Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, type: symmetric, public: 203.0.113.1}
  h1:     {kind: host, behind: nat}
`)
	tr := startTrace(t, l, "nat")
	if out, err := exec.Command("ip", "netns", "exec", l.Namespace("h1"), "ping", "-c", "1", "-W", "1", "203.0.113.10").CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	seen := 0
	for _, e := range tr.Drain(t.Context(), time.Second) {
		if e.Kind != trace.Forwarded || e.Before.Proto != "icmp" {
			continue
		}
		seen++
		var changed []string
		if e.Before.Src.Addr() != e.After.Src.Addr() {
			changed = append(changed, "source")
		}
		if e.Before.Dst.Addr() != e.After.Dst.Addr() {
			changed = append(changed, "destination")
		}
		if e.Before.Src.Port() != e.After.Src.Port() {
			changed = append(changed, "ICMP id")
		}
		want := strings.Join(changed, " and ") + " rewritten"
		if got := e.Rewritten(); got != want {
			t.Errorf("%v: labelled %q, want %q", e, got, want)
		}
		if e.Before.ICMP == "echo-request" && strings.Contains(e.Rewritten(), "destination") {
			t.Errorf("an echo request's destination is not rewritten: %v", e)
		}
	}
	if seen != 2 {
		t.Errorf("traced %d ICMP packets through the NAT, want the request and the reply", seen)
	}
}

// One tracer per NAT: the second is told who likely holds the NAT's log.
func TestSecondTracerIsBusy(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, scenario)
	startTrace(t, l, "nat")
	ns, err := namedns.Open(l.Namespace("nat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tr, err := trace.Start(t.Context(), ns.Fd())
	if err == nil {
		tr.Stop()
		t.Fatal("a second tracer started on the same NAT")
	}
	if !errors.Is(err, trace.ErrBusy) || !strings.Contains(err.Error(), "natlab trace") {
		t.Errorf("second tracer: %v; want trace.ErrBusy, naming natlab trace", err)
	}
	// The first tracer is this process's.
	var busy *trace.BusyError
	if !errors.As(err, &busy) || busy.PID != os.Getpid() || !strings.Contains(busy.Holder(), "trace.test") {
		t.Errorf("second tracer: %v; want the holder named: process %d, this test", err, os.Getpid())
	}
}

// The label says what changed, the ICMP identifier apart from the
// addresses: it is no port, though trace keeps it in the ports.
func TestRewrittenLabels(t *testing.T) {
	testutil.CheckRoutines(t)
	ap := netip.MustParseAddrPort
	pkt := func(proto, icmp, src, dst string) trace.Packet {
		return trace.Packet{Proto: proto, ICMP: icmp, Src: ap(src), Dst: ap(dst)}
	}
	for _, tc := range []struct {
		before, after trace.Packet
		want          string
	}{
		// An echo request out of a NAT that keeps the identifier, and one
		// out of a symmetric NAT that picks a new one.
		{pkt("icmp", "echo-request", "192.168.1.2:7", "203.0.113.10:7"), pkt("icmp", "echo-request", "203.0.113.1:7", "203.0.113.10:7"), "source rewritten"},
		{pkt("icmp", "echo-request", "192.168.1.2:7", "203.0.113.10:7"), pkt("icmp", "echo-request", "203.0.113.1:900", "203.0.113.10:900"), "source and ICMP id rewritten"},
		{pkt("icmp", "echo-reply", "203.0.113.10:900", "203.0.113.1:900"), pkt("icmp", "echo-reply", "203.0.113.10:7", "192.168.1.2:7"), "destination and ICMP id rewritten"},
		{pkt("icmp", "echo-request", "192.168.1.2:7", "203.0.113.10:7"), pkt("icmp", "echo-request", "192.168.1.2:8", "203.0.113.10:8"), "ICMP id rewritten"},
		{pkt("icmp", "echo-request", "192.168.1.2:7", "203.0.113.1:7"), pkt("icmp", "echo-request", "203.0.113.1:8", "192.168.1.3:8"), "source, destination and ICMP id rewritten"},
		{pkt("icmp", "unreachable", "192.168.1.2:0", "203.0.113.10:0"), pkt("icmp", "unreachable", "192.168.1.2:0", "203.0.113.10:0"), "unchanged"},
		// UDP: an endpoint is an address and a port.
		{pkt("udp", "", "192.168.1.2:5000", "203.0.113.10:3478"), pkt("udp", "", "203.0.113.1:5000", "203.0.113.10:3478"), "source rewritten"},
		{pkt("udp", "", "192.168.1.2:5000", "203.0.113.10:3478"), pkt("udp", "", "192.168.1.2:6000", "203.0.113.10:3478"), "source rewritten"},
		{pkt("udp", "", "203.0.113.10:3478", "203.0.113.1:8080"), pkt("udp", "", "203.0.113.10:3478", "192.168.1.2:80"), "destination rewritten"},
		{pkt("udp", "", "192.168.1.2:5000", "203.0.113.1:8080"), pkt("udp", "", "203.0.113.1:5000", "192.168.1.3:80"), "source and destination rewritten"},
	} {
		after := tc.after
		e := trace.Event{Kind: trace.Forwarded, In: "lan0", Out: "wan0", Before: tc.before, After: &after}
		if got := e.Rewritten(); got != tc.want {
			t.Errorf("%v => %v: %q, want %q", tc.before, tc.after, got, tc.want)
		}
		if s := e.String(); !strings.Contains(s, "("+tc.want+")") && tc.want != "unchanged" {
			t.Errorf("%q does not say %q", s, tc.want)
		}
	}
	// The line shows the identifier before and after.
	before, after := pkt("icmp", "echo-request", "192.168.1.2:7", "203.0.113.10:7"), pkt("icmp", "echo-request", "203.0.113.1:900", "203.0.113.10:900")
	e := trace.Event{Kind: trace.Forwarded, In: "lan0", Out: "wan0", Before: before, After: &after}
	if s := e.String(); !strings.Contains(s, "=>  203.0.113.1 > 203.0.113.10 (id 900, was 7)  (source and ICMP id rewritten)") {
		t.Errorf("%q does not show the identifier's change", s)
	}
}
