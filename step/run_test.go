package step

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunserver"
	"github.com/natlab/natlab/topology"
)

// The steps' logic, run through loopEnv: no root, no namespaces.

func TestWaitRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t)
	res, err := (&Wait{Duration: time.Millisecond}).Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "ok" {
		t.Errorf("wait 1ms: %+v, %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err = (&Wait{Duration: time.Hour}).Run(ctx, env)
	if err != nil || res.Pass || res.Observed != "interrupted" {
		t.Errorf("an interrupted wait: %+v, %v", res, err)
	}
}

func TestExecRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1")
	for _, tc := range []struct {
		name     string
		s        Exec
		observed string
		pass     bool
		reason   string
	}{
		{"ok", Exec{Node: "alice", Command: []string{"true"}, Expect: "ok"}, "ok", true, ""},
		{"exit status", Exec{Node: "alice", Command: []string{"echo out; exit 3"}, Shell: true, Expect: "ok"}, "fail", false, "exit status 3: out"},
		{"expected to fail", Exec{Node: "alice", Command: []string{"false"}, Expect: "fail"}, "fail", true, "exit status 1"},
		{"its lab and node", Exec{Node: "alice", Command: []string{`test "$NATLAB_LAB/$NATLAB_NODE" = loop/alice`}, Shell: true, Expect: "ok"}, "ok", true, ""},
		{"killed after its timeout", Exec{Node: "alice", Command: []string{"sleep 60 & sleep 60"}, Shell: true, Timeout: 100 * time.Millisecond, Expect: "ok"}, "fail", false, "still running after 100ms, killed"},
		{"no such program", Exec{Node: "alice", Command: []string{"/nonexistent/natlab-probe"}, Expect: "ok"}, "fail", false, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.s.Timeout == 0 {
				tc.s.Timeout = 10 * time.Second
			}
			res, err := tc.s.Run(context.Background(), env)
			if err != nil || res.Observed != tc.observed || res.Pass != tc.pass || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("%+v, %v; want observed %s, pass %v, reason with %q", res, err, tc.observed, tc.pass, tc.reason)
			}
		})
	}
	if _, err := (&Exec{Node: "bob", Command: []string{"true"}, Timeout: time.Second}).Run(context.Background(), env); err == nil {
		t.Error("exec on a node that is not there: no error")
	}
}

func TestTableRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "nat-a", "127.0.0.1")
	env.tables["nat-a"] = &nattable.Table{
		Mappings: []nattable.Mapping{
			{Public: netip.MustParseAddrPort("127.0.0.1:40000"), Private: netip.MustParseAddrPort("192.168.1.2:4000"), Expires: time.Minute},
			{Public: netip.MustParseAddrPort("127.0.0.1:40001"), Private: netip.MustParseAddrPort("192.168.1.3:4000"), Expires: time.Minute},
		},
	}
	two, one := 2, 1
	for _, tc := range []struct {
		expect TableCounts
		pass   bool
		reason string
	}{
		{TableCounts{}, true, ""},
		{TableCounts{Mappings: &two}, true, ""},
		{TableCounts{Mappings: &one}, false, "2 mappings, not 1"},
		{TableCounts{Flows: &one}, false, "0 flows, not 1"},
	} {
		res, err := (&Table{Node: "nat-a", Expect: tc.expect}).Run(context.Background(), env)
		if err != nil || res.Pass != tc.pass || res.Reason != tc.reason || res.Observed != "{mappings 2, flows 0}" || !strings.Contains(res.Detail, "192.168.1.3:4000") {
			t.Errorf("expect %v: %+v, %v", tc.expect, res, err)
		}
	}
	if _, err := (&Table{Node: "nat-b"}).Run(context.Background(), env); err == nil {
		t.Error("the table of a NAT that has none: no error")
	}
}

func TestSendRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1", "bob", "127.0.0.2")
	alice := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name     string
		s        Send
		observed string
		pass     bool
	}{
		{"udp", Send{From: "alice", To: "bob", Proto: topology.UDP, Port: 45001}, "delivered", true},
		{"udp seen as alice", Send{From: "alice", To: "bob", Proto: topology.UDP, Port: 45002, SeenAs: "alice", SeenAsAddr: netip.AddrPortFrom(alice, 0)}, "delivered", true},
		{"udp seen from its own port", Send{From: "alice", To: "bob", Proto: topology.UDP, Port: 45003, SeenAsAddr: netip.AddrPortFrom(alice, 45003)}, "delivered", true},
		{"udp seen as another", Send{From: "alice", To: "bob", Proto: topology.UDP, Port: 45004, SeenAsAddr: netip.MustParseAddrPort("127.0.0.9:0")}, "delivered from 127.0.0.1:45004", false},
		{"tcp", Send{From: "alice", To: "bob", Proto: topology.TCP, Port: 45005}, "delivered", true},
		{"tcp seen as alice", Send{From: "alice", To: "bob", Proto: topology.TCP, Port: 45006, SeenAsAddr: netip.AddrPortFrom(alice, 0)}, "delivered", true},
		{"to an address", Send{From: "alice", ToAddr: netip.MustParseAddrPort("127.0.0.2:45007"), Proto: topology.UDP, Port: 45007}, "delivered", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Family, tc.s.Expect = topology.FamilyIPv4, "delivered"
			res, err := tc.s.Run(context.Background(), env)
			if err != nil || res.Observed != tc.observed || res.Pass != tc.pass {
				t.Errorf("%+v, %v; want %s, pass %v", res, err, tc.observed, tc.pass)
			}
		})
	}
	if got, ok := env.mem.Seen("bob", "alice"); !ok || got.Addr() != alice {
		t.Errorf("bob saw alice at %v, %v", got, ok)
	}
	if _, err := (&Send{From: "alice", ToAddr: netip.MustParseAddrPort("127.0.0.99:1"), Family: topology.FamilyIPv4}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "no node has the address") {
		t.Errorf("a send to an address of no node: %v", err)
	}
}

// A send with a count has the receiver answer each message, so it counts
// the round trips and times them.
func TestSendCountRun(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1", "bob", "127.0.0.2")
	s := Send{From: "alice", To: "bob", Proto: topology.UDP, Port: 45010, Family: topology.FamilyIPv4, Expect: "delivered", Count: 20}
	res, err := s.Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "delivered" {
		t.Fatalf("%+v, %v", res, err)
	}
	if p := res.Probes; p == nil || *p != (Probes{Sent: 20, Delivered: 20, Answered: 20}) {
		t.Errorf("probes %+v, want 20 sent, delivered and answered", p)
	}
	if r := res.RTT; r == nil || r.Samples != 20 || r.Min <= 0 || r.Min > r.Median || r.Median > r.Max {
		t.Errorf("rtt %+v, want 20 samples in order", r)
	}
	if m := res.Measured(); !strings.Contains(m, "20 sent, 20 delivered, 20 answered, 0 lost (0%)") || !strings.Contains(m, "rtt min/median/max") {
		t.Errorf("measured %q", m)
	}
}

// loopSTUN serves STUN on loopback, on 127.0.0.3 and 127.0.0.4 and the
// two ports from port, until the test ends.
func loopSTUN(t *testing.T, port uint16) service.STUNLayout {
	t.Helper()
	layout := service.STUNLayout{Addrs: [2]netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")}, Ports: [2]uint16{port, port + 1}}
	srv, err := stunserver.Listen(layout)
	if err != nil {
		t.Skipf("no loopback STUN server: %v", err)
	}
	if err := srv.ListenTCP(); err != nil {
		srv.Close()
		t.Skipf("no loopback STUN server over TCP: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(nil) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return layout
}

func TestSTUNRun(t *testing.T) {
	testutil.CheckRoutines(t)
	layout := loopSTUN(t, 45478)
	env := newLoopEnv(t, "alice", "127.0.0.1", "stun", "127.0.0.3")
	env.plans["stun"] = service.Plan{STUN: layout}
	env.plans["stun2"] = service.Plan{STUN: layout}
	res, err := (&STUN{From: "alice", Server: "stun", Expect: "ok"}).Run(context.Background(), env)
	if err != nil || !res.Pass || !strings.HasSuffix(res.Detail, "no NAT between it and the STUN server stun") {
		t.Errorf("stun: %+v, %v", res, err)
	}
	if got, ok := env.mem.Seen("stun", "alice"); !ok || got.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the server saw alice at %v, %v", got, ok)
	}
	res, err = (&STUN{From: "alice", Servers: []string{"stun", "stun2"}, Port: 45480, Expect: "same"}).Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "same" {
		t.Errorf("stun to two servers from one port: %+v, %v", res, err)
	}
	if res.Data.([]netip.AddrPort)[0].Port() != 45480 {
		t.Errorf("not sent from port 45480: %v", res.Data)
	}
	res, err = (&STUN{From: "alice", Servers: []string{"stun", "stun2"}, Expect: "different"}).Run(context.Background(), env)
	if err != nil || res.Pass || res.Observed != "same" {
		t.Errorf("stun expecting different endpoints from one socket without a NAT: %+v, %v", res, err)
	}
}

func TestServicesDownNamesOnlyNeeds(t *testing.T) {
	testutil.CheckRoutines(t)
	env := newLoopEnv(t, "alice", "127.0.0.1", "one", "127.0.0.3", "two", "127.0.0.4")
	env.down["one"] = true
	for _, tc := range []struct {
		u    Unit
		want string
	}{
		{&STUN{From: "alice", Server: "one"}, "the STUN service on one is not running"},
		{&STUN{From: "alice", Server: "two"}, ""},
		{&Punch{Between: [2]string{"alice", "two"}, Family: topology.FamilyIPv4, Server: "one", Rendezvous: "one"}, "the STUN and rendezvous services on one are not running"},
		{&Punch{Between: [2]string{"alice", "two"}, Family: topology.FamilyIPv6, Server: "one"}, ""},
		{&Upgrade{Server: "one", Relay: topology.ServiceDERP, STUN: "one"}, "the STUN and DERP services on one are not running"},
		{&Tunnel{From: "alice", Server: "one"}, "the tunnel service on one is not running"},
		{&Exec{Node: "one"}, ""},
	} {
		if got := ServicesDown(env, tc.u); got != tc.want {
			t.Errorf("%T %+v: %q, want %q", tc.u, tc.u, got, tc.want)
		}
	}
}

// Reboot and renumber steps ask the lab for the event and say what
// changed.
func TestRebootRenumberRun(t *testing.T) {
	env := newLoopEnv(t, "nat-a", "203.0.113.1", "alice", "127.0.0.1")
	ctx := context.Background()
	res, err := (&Reboot{Node: "nat-a"}).Run(ctx, env)
	if err != nil || !res.Pass || !strings.Contains(res.Detail, "nat-a rebooted") {
		t.Errorf("reboot: %+v, %v", res, err)
	}
	public := netip.MustParseAddr("203.0.113.77")
	res, err = (&Renumber{Node: "nat-a", Public: public}).Run(ctx, env)
	if err != nil || !res.Pass || res.Detail != "nat-a's public address is 203.0.113.77, was 203.0.113.1; its mappings of 203.0.113.1 are gone" {
		t.Errorf("renumber: %+v, %v", res, err)
	}
	res, err = (&Reboot{Node: "nat-a", Public: netip.MustParseAddr("203.0.113.78")}).Run(ctx, env)
	if err != nil || !res.Pass || !strings.Contains(res.Detail, "its public address is 203.0.113.78") {
		t.Errorf("reboot with an address: %+v, %v", res, err)
	}
	if want := []string{"reboot nat-a", "renumber nat-a 203.0.113.77", "reboot nat-a 203.0.113.78"}; !slices.Equal(env.events, want) {
		t.Errorf("events %q, want %q", env.events, want)
	}
	if _, err := (&Reboot{Node: "alice"}).Run(ctx, env); err == nil {
		t.Error("a reboot of a host: no error")
	}
}

// A move step asks the lab for the move and says where the host went.
func TestMoveRun(t *testing.T) {
	env := newLoopEnv(t, "nat-a", "203.0.113.1", "nat-b", "203.0.113.2", "alice", "127.0.0.1")
	env.topo.Node("alice").Behind = "nat-a"
	res, err := (&Move{Node: "alice", Behind: "nat-b"}).Run(context.Background(), env)
	if err != nil || !res.Pass || res.Detail != "alice left nat-a (127.0.0.1) and is behind nat-b at 127.0.0.2; nat-a's mappings of it are gone" {
		t.Errorf("move: %+v, %v", res, err)
	}
	if want := []string{"move alice nat-b"}; !slices.Equal(env.events, want) {
		t.Errorf("events %q, want %q", env.events, want)
	}
}
