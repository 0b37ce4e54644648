package step

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// The punch step on loopback: no NAT, a STUN server on 127.0.0.3.

func punchEnv(t *testing.T, stunPort uint16) *loopEnv {
	t.Helper()
	layout := loopSTUN(t, stunPort)
	env := newLoopEnv(t, "alice", "127.0.0.1", "bob", "127.0.0.2", "stun", "127.0.0.3", "nat-a", "127.0.0.5")
	env.plans["stun"] = service.Plan{STUN: layout}
	return env
}

func TestPunchRun(t *testing.T) {
	env := punchEnv(t, 45488)
	s := &Punch{Between: [2]string{"alice", "bob"}, Family: topology.FamilyIPv4, Server: "stun", Timeout: 5 * time.Second, Expect: "ok"}
	res, err := s.Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "ok" || !strings.Contains(res.Detail, "alice <-> bob direct") {
		t.Fatalf("punch: %+v, %v", res, err)
	}
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		path, ok := env.mem.Path(p[0], p[1], topology.FamilyIPv4)
		if !ok || path.To != netip.AddrPortFrom(env.topo.Node(p[1]).Addresses[0], path.To.Port()) {
			t.Errorf("%s's path to %s: %+v, %v", p[0], p[1], path, ok)
		}
	}
}

// proto: tcp punches a TCP connection, STUN over TCP first.
func TestPunchTCPRun(t *testing.T) {
	env := punchEnv(t, 45494)
	s := &Punch{Between: [2]string{"alice", "bob"}, Proto: topology.TCP, Family: topology.FamilyIPv4, Server: "stun", Timeout: 5 * time.Second, Expect: "ok"}
	res, err := s.Run(context.Background(), env)
	if err != nil || !res.Pass || res.Observed != "ok" || !strings.Contains(res.Detail, "alice <-> bob direct over tcp") {
		t.Fatalf("tcp punch: %+v, %v", res, err)
	}
	if res.RTT == nil {
		t.Errorf("tcp punch measured no RTT: %+v", res)
	}
	if !strings.HasPrefix(s.Describe(), " tcp over ipv4 between alice and bob") {
		t.Errorf("Describe: %q", s.Describe())
	}
	if _, err := s.Walk(context.Background(), env); err == nil {
		t.Error("a tcp punch walked")
	}
}

// announce: public reaches the punch as announcing public endpoints only.
func TestPunchAnnounce(t *testing.T) {
	env := punchEnv(t, 45490)
	for _, a := range []Announce{"", AnnounceAll, AnnouncePublic} {
		_, cfg, err := (&Punch{Between: [2]string{"alice", "bob"}, Family: topology.FamilyIPv4, Server: "stun", Announce: a}).peers(env)
		if err != nil || cfg.PublicOnly != (a == AnnouncePublic) {
			t.Errorf("announce %q: public only %v, %v", a, cfg.PublicOnly, err)
		}
	}
}

// The walk is the punch step one phase at a time: prediction, keepalive
// and explain work there as in Run.
func TestPunchWalk(t *testing.T) {
	env := punchEnv(t, 45492)
	env.topo.Node("alice").Behind = "nat-a"
	env.tables["nat-a"] = &nattable.Table{Mappings: []nattable.Mapping{
		{Public: netip.MustParseAddrPort("127.0.0.5:40000"), Private: netip.MustParseAddrPort("127.0.0.1:40000"), Expires: time.Minute},
	}}
	s := &Punch{Between: [2]string{"alice", "bob"}, Family: topology.FamilyIPv4, Server: "stun", Timeout: 5 * time.Second,
		Predict: true, Explain: true, Keepalive: 20 * time.Millisecond, Expect: "ok"}
	w, err := s.Walk(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var lines []string
	for n := 1; !w.Over(); n++ {
		st, err := w.Next(context.Background())
		if err != nil {
			t.Fatalf("phase %d: %v", n, err)
		}
		lines = append(lines, st.Lines...)
		if st.Done && !st.OK {
			t.Fatalf("the walk failed:\n%s", strings.Join(lines, "\n"))
		}
	}
	story := strings.Join(lines, "\n")
	for _, want := range []string{"asks the STUN server at 127.0.0.3", "and to the 16 ports after each", "The path works both ways",
		"Both keep the path open, sending over it every 20ms.", "nat-a's table:", "127.0.0.5:40000"} {
		if !strings.Contains(story, want) {
			t.Errorf("the walk does not say %q:\n%s", want, story)
		}
	}
	// The path is the hosts', and each end hears the other's keepalives.
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		path, ok := env.mem.Path(p[0], p[1], topology.FamilyIPv4)
		if !ok {
			t.Fatalf("no path from %s to %s", p[0], p[1])
		}
		path.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		for {
			n, from, err := path.Conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s heard no keepalive from %s: %v", p[0], p[1], err)
			}
			if string(buf[:n]) == "NATLAB KEEPALIVE" && from == path.To {
				break
			}
		}
	}
}
