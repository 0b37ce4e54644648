package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/ui"
)

// storyLab has a full-cone and a symmetric home, a stranger on the
// internet and a server for STUN, TURN and the rendezvous; bob's link has
// a condition for the page to show, an MTU, which changes no test's
// packets.
const storyLab = `
description: two homes and a stranger
nodes:
  meet:     {kind: server, services: [stun, turn, rendezvous]}
  stranger: {kind: host}
  nat-a:    {kind: nat, type: full-cone, public: 203.0.113.1}
  nat-b:    {kind: nat, type: symmetric, public: 203.0.113.2}
  alice:    {kind: host, behind: nat-a}
  bob:      {kind: host, behind: nat-b, link: {mtu: 1400}}
`

const token = "test-token"

// served is a lab with natlab ui serving it on loopback.
type served struct {
	lab      *labtest.Lab
	srv      *ui.Server
	base     string
	stop     context.CancelFunc
	finished chan struct{}
	err      error
}

func serve(t *testing.T, scenario string) *served {
	t.Helper()
	return serveAt(t, scenario, "127.0.0.1:0")
}

// belowEphemeral is a free loopback address whose port is below the
// kernel's ephemeral range (32768 and up by default), for a test that
// listens on it again after closing it: an ephemeral port may be taken in
// between by any connection another test on the machine opens.
func belowEphemeral(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// serveAt is serve on addr.
func serveAt(t *testing.T, scenario, addr string) *served {
	t.Helper()
	l := labtest.Up(t, scenario)
	srv, err := ui.New(t.Context(), ui.Config{Lab: l.Topo.Name, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	s := &served{lab: l, srv: srv}
	s.listen(t, addr)
	return s
}

// listen serves on addr until stopped (or the test ends).
func (s *served) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	finished := make(chan struct{})
	s.base, s.stop, s.finished = "http://"+ln.Addr().String(), stop, finished
	go func() {
		s.err = s.srv.Serve(ctx, ln)
		close(finished)
	}()
	t.Cleanup(func() {
		stop()
		<-finished
	})
}

func (s *served) shutdown(t *testing.T) {
	s.stop()
	<-s.finished
	if s.err != nil {
		t.Errorf("serve: %v", s.err)
	}
}

// post sends an action and returns the status and the decoded body.
func (s *served) post(t *testing.T, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.base+"/api/actions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ui.TokenHeader, token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// stream is an open /api/events.
type stream struct {
	events chan sse
	seen   []sse
}

type sse struct {
	typ  string
	data string
}

func (s *served) events(t *testing.T) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/api/events?token="+token, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	st := &stream{events: make(chan sse, 4096)}
	go func() {
		defer resp.Body.Close()
		defer close(st.events)
		r := bufio.NewReader(resp.Body)
		var e sse
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				e.typ = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				e.data = line[len("data: "):]
			case line == "" && e.typ != "":
				st.events <- e
				e = sse{}
			}
		}
	}()
	return st
}

// await returns the first event of typ, seen before or to come, that
// satisfies ok, and forgets it; the events of the stream may come in any
// order (an action's result before the table it changed is read).
func (st *stream) await(t *testing.T, typ string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	match := func(e sse) map[string]any {
		if e.typ != typ {
			return nil
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(e.data), &v); err != nil {
			t.Fatalf("%s event: %v: %s", typ, err, e.data)
		}
		if ok(v) {
			return v
		}
		return nil
	}
	for i, e := range st.seen {
		if v := match(e); v != nil {
			st.seen = append(st.seen[:i], st.seen[i+1:]...)
			return v
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, open := <-st.events:
			if !open {
				t.Fatalf("the event stream ended while waiting for a %s event", typ)
			}
			if v := match(e); v != nil {
				return v
			}
			st.seen = append(st.seen, e)
		case <-timeout:
			t.Fatalf("no matching %s event within 10s", typ)
		}
	}
}

// The API end to end: actions carried out in the kernel and seen by every
// watcher as packets, rewrites, table rows and results.
func TestActions(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	first, second := s.events(t), s.events(t)
	for _, st := range []*stream{first, second} {
		state := st.await(t, "state", func(map[string]any) bool { return true })
		if state["description"] != "two homes and a stranger" || len(state["nodes"].([]any)) != 6 {
			t.Fatalf("first event: %v", state)
		}
	}

	// Acts I and II: alice sends out; nat-a rewrites her source, and its
	// table gets a row.
	code, res := s.post(t, `{"step": {"send": {"from": "alice", "to": "meet", "port": 5000}}}`, nil)
	if code != 200 || res["ok"] != true {
		t.Fatalf("send: %d %v", code, res)
	}
	for _, st := range []*stream{first, second} {
		p := st.await(t, "packet", func(p map[string]any) bool { return p["nat"] == "nat-a" && p["kind"] == "forwarded" })
		if p["from"] != "alice" || p["to"] != "meet" || p["src_changed"] != true || !strings.HasPrefix(p["after"].(string), "203.0.113.1:5000 → ") {
			t.Errorf("alice's packet at nat-a: %v", p)
		}
		st.await(t, "table", func(tab map[string]any) bool {
			return tab["nat"] == "nat-a" && strings.Contains(mustJSON(tab["flows"]), `"private":"192.168.`)
		})
		st.await(t, "action", func(a map[string]any) bool { return a["state"] == "finished" && a["ok"] == true })
	}

	// Act III: a knock on nat-b from outside meets the wall.
	code, res = s.post(t, `{"step": {"send": {"from": "stranger", "to": "203.0.113.2:40000"}}}`, nil)
	if code != 200 || res["step"].(map[string]any)["observed"] != "dropped" {
		t.Fatalf("knock: %d %v", code, res)
	}
	drop := first.await(t, "packet", func(p map[string]any) bool { return p["nat"] == "nat-b" && p["kind"] == "dropped" })
	if !strings.Contains(drop["reason"].(string), "The wall") || drop["from"] != "stranger" {
		t.Errorf("the drop at nat-b: %v", drop)
	}

	// Act V, step by step, then Act VI: full cone against symmetric
	// punches; both symmetric does not.
	// The walk is the punch step: keepalive and explain work there too.
	code, res = s.post(t, `{"walk": {"punch": {"between": ["alice", "bob"], "keepalive": "1s", "explain": true}}}`, nil)
	if code != 200 || res["walk"].(map[string]any)["number"] != 1.0 {
		t.Fatalf("walk: %d %v", code, res)
	}
	for n := 2; n <= 5; n++ {
		code, res = s.post(t, `{"walk-next": {}}`, nil)
		if code != 200 || res["walk"].(map[string]any)["number"] != float64(n) {
			t.Fatalf("walk step %d: %d %v", n, code, res)
		}
	}
	if w := res["walk"].(map[string]any); w["done"] != true || w["ok"] != true {
		t.Errorf("the walk between full cone and symmetric ended %v", w)
	}
	if lines := fmt.Sprint(res["walk"].(map[string]any)["lines"]); !strings.Contains(lines, "keep the path open, sending over it every 1s") || !strings.Contains(lines, "nat-b's table:") {
		t.Errorf("the walk's last step does not keep the path alive and explain it: %s", lines)
	}
	// The path the walk opened is the hosts' from then on: a send from
	// alice reaches bob behind his symmetric NAT through it.
	if code, res = s.post(t, `{"step": {"send": {"from": "alice", "to": "bob"}}}`, nil); code != 200 || res["step"].(map[string]any)["observed"] != "delivered" {
		t.Errorf("a send over the walked path: %d %v", code, res)
	}
	if code, res = s.post(t, `{"walk-next": {}}`, nil); code != 409 {
		t.Errorf("a sixth walk step: %d %v", code, res)
	}
	if code, res = s.post(t, `{"step": {"punch": {"between": ["alice", "bob"]}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("punch full cone vs symmetric: %d %v", code, res)
	}
	if code, res = s.post(t, `{"switch": {"node": "nat-a", "type": "symmetric"}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("switch: %d %v", code, res)
	}
	state := first.await(t, "state", func(v map[string]any) bool { return true })
	for _, n := range state["nodes"].([]any) {
		n := n.(map[string]any)
		if n["name"] == "nat-a" && n["nat"].(map[string]any)["type"] != "symmetric" {
			t.Errorf("nat-a in the state after the switch: %v", n)
		}
	}
	ruleset, err := exec.Command("ip", "netns", "exec", s.lab.Namespace("nat-a"), "nft", "list", "table", "ip", "natlab").CombinedOutput()
	if err != nil || !strings.Contains(string(ruleset), "numgen random") {
		t.Errorf("nat-a's rules in the kernel after the switch to symmetric (want random ports): %v\n%s", err, ruleset)
	}
	code, res = s.post(t, `{"step": {"punch": {"between": ["alice", "bob"], "expect": "fail"}}}`, nil)
	if code != 200 || res["step"].(map[string]any)["observed"] != "fail" {
		t.Fatalf("punch symmetric vs symmetric: %d %v", code, res)
	}

	// Act VII: the relay still works.
	if code, res = s.post(t, `{"step": {"relay": {"between": ["alice", "bob"]}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("relay: %d %v", code, res)
	}
}

// Requests that are refused change nothing: no rules, no record, no
// table row.
func TestRefusedActionsChangeNothing(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	rules := func() string {
		out, err := exec.Command("ip", "netns", "exec", s.lab.Namespace("nat-a"), "nft", "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
		return string(out)
	}
	before := rules()
	for _, tc := range []struct {
		body   string
		header map[string]string
		code   int
		msg    string
	}{
		{`{"switch": {"node": "nat-a", "type": "symmetric"}}`, map[string]string{ui.TokenHeader: ""}, 401, "missing token"},
		{`{"switch": {"node": "nat-a", "type": "symmetric"}}`, map[string]string{ui.TokenHeader: "guess"}, 401, "wrong token"},
		{`{"switch": {"node": "nat-a", "type": "symmetric"}}`, map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{`{"switch": {"node": "nat-a", "type": "symmetric"`, nil, 400, "not valid JSON"},
		{`{"switch": {"node": "nat-a", "type": "leaky"}}`, nil, 400, `switch: unknown NAT type "leaky"`},
		{`{"switch": {"node": "alice", "type": "symmetric"}}`, nil, 400, `"alice" is not a NAT`},
		{`{"step": {"send": {"from": "mallory", "to": "meet"}}}`, nil, 400, `step:1:19: step.send.from: no node named "mallory"`},
		{`{"step": {"exec": {"node": "alice", "command": "id"}}}`, nil, 400, "natlab ui runs no commands"},
		{`{"step": {"wait": "1s"}}`, nil, 400, "does nothing to watch"},
		{`{"walk": {"relay": {"between": ["alice", "bob"]}}}`, nil, 400, "a walk takes a punch step"},
		{`{"walk-next": {}}`, nil, 409, "no punch is being walked"},
	} {
		code, res := s.post(t, tc.body, tc.header)
		if code != tc.code || !strings.Contains(res["error"].(string), tc.msg) {
			t.Errorf("%s: %d %v, want %d with %q", tc.body, code, res, tc.code, tc.msg)
		}
	}
	if after := rules(); after != before {
		t.Errorf("refused requests changed nat-a's rules:\n%s\nthen\n%s", before, after)
	}
	st, err := labstate.Load(s.lab.Topo.Name)
	if err != nil || len(st.NATChanges) != 0 {
		t.Errorf("the record has changes %v (%v)", st.NATChanges, err)
	}
	out, _ := exec.Command("ip", "netns", "exec", s.lab.Namespace("nat-a"), "conntrack", "-L").CombinedOutput()
	if strings.Contains(string(out), "src=192.168.1.2 ") {
		t.Errorf("refused requests made traffic through nat-a:\n%s", out)
	}
}

// A page's stream ends when the server stops, and a server on the same
// address takes the page back.
func TestStreamsEndWithTheServer(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serveAt(t, storyLab, belowEphemeral(t))
	st := s.events(t)
	st.await(t, "state", func(map[string]any) bool { return true })
	addr := strings.TrimPrefix(s.base, "http://")
	s.shutdown(t)
	for range st.events {
	}
	s.listen(t, addr)
	again := s.events(t)
	again.await(t, "state", func(map[string]any) bool { return true })
	resp, err := http.Get(s.base + "/api/state?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"lab":"`+s.lab.Topo.Name+`"`) {
		t.Errorf("state after a restart: %d %s", resp.StatusCode, body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A lab taken down under the server is announced to the pages, and Gone
// says so to the command that serves it.
func TestLabTakenDown(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	st := s.events(t)
	st.await(t, "state", func(map[string]any) bool { return true })
	if _, err := lab.Down(context.Background(), s.lab.Topo.Name, nil); err != nil {
		t.Fatal(err)
	}
	st.await(t, "gone", func(v map[string]any) bool { return v["lab"] == s.lab.Topo.Name })
	select {
	case <-s.srv.Gone():
	case <-time.After(5 * time.Second):
		t.Error("Gone is not closed after the lab went down")
	}
}

// A NAT's port forwards reach the browser with its table.
func TestTableForwards(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, `
nodes:
  home:      {kind: nat, type: port-restricted-cone, public: 203.0.113.2, forward: [{proto: tcp, port: 25565, to: minecraft}]}
  minecraft: {kind: host, behind: home}
`)
	// The table is read when the server starts: it comes in the first
	// state, or after it as an event.
	var tab map[string]any
	st := s.events(t)
	state := st.await(t, "state", func(map[string]any) bool { return true })
	if tables, _ := state["tables"].(map[string]any); tables["home"] != nil {
		tab = tables["home"].(map[string]any)
	} else {
		tab = st.await(t, "table", func(tab map[string]any) bool { return tab["nat"] == "home" })
	}
	forwards, _ := tab["forwards"].([]any)
	if len(forwards) != 1 {
		t.Fatalf("home's table has forwards %v, want the static one", tab["forwards"])
	}
	f := forwards[0].(map[string]any)
	want := map[string]any{"proto": "tcp", "public": "203.0.113.2:25565", "private": s.lab.Addr("minecraft", 0).String() + ":25565", "by": "scenario", "expires_ns": 0.0}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("forward's %s = %v, want %v (%v)", k, f[k], v, f)
		}
	}
}

// A one-to-one NAT's table on the page holds its binding, which no map
// of the NAT holds.
func TestTableOneToOne(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, `
nodes:
  cloud: {kind: nat, type: one-to-one, public: 203.0.113.2}
  vm:    {kind: host, behind: cloud}
`)
	var tab map[string]any
	st := s.events(t)
	state := st.await(t, "state", func(map[string]any) bool { return true })
	if tables, _ := state["tables"].(map[string]any); tables["cloud"] != nil {
		tab = tables["cloud"].(map[string]any)
	} else {
		tab = st.await(t, "table", func(tab map[string]any) bool { return tab["nat"] == "cloud" })
	}
	b, _ := tab["one_to_one"].(map[string]any)
	want := map[string]any{"public": "203.0.113.2", "private": s.lab.Addr("vm", 0).String(), "host": "vm"}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("the binding's %s = %v, want %v (table %v)", k, b[k], v, tab)
		}
	}
	if tab["error"] != nil {
		t.Errorf("the table has an error: %v", tab["error"])
	}
}

// Reboot, renumber and move steps from the page change the lab, and every
// page's state shows it as it now is; a later step is checked against
// the lab as it is, not as the file put it.
func TestEventsFromThePage(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	page := s.events(t)
	node := func(state map[string]any, name string) map[string]any {
		for _, n := range state["nodes"].([]any) {
			if n := n.(map[string]any); n["name"] == name {
				return n
			}
		}
		t.Fatalf("no node %s in the state", name)
		return nil
	}
	addrOf := func(name string) func(map[string]any) bool {
		return func(v map[string]any) bool { return fmt.Sprint(node(v, name)["addresses"]) == "[203.0.113.77]" }
	}
	for _, tc := range []struct {
		body, observed string
	}{
		{`{"step": {"reboot": {"node": "nat-a"}}}`, "ok"},
		{`{"step": {"renumber": {"node": "nat-a", "public": "203.0.113.77"}}}`, "ok"},
	} {
		if code, res := s.post(t, tc.body, nil); code != 200 || res["step"].(map[string]any)["observed"] != tc.observed {
			t.Fatalf("%s: %d %v", tc.body, code, res)
		}
	}
	page.await(t, "state", addrOf("nat-a"))
	// Its first address is free again, and it can have it back.
	if code, res := s.post(t, `{"step": {"renumber": {"node": "nat-b", "public": "203.0.113.1"}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("renumber nat-b to nat-a's old address: %d %v", code, res)
	}
	if code, res := s.post(t, `{"step": {"move": {"node": "alice", "behind": "nat-b"}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("move: %d %v", code, res)
	}
	page.await(t, "state", func(v map[string]any) bool { return node(v, "alice")["behind"] == "nat-b" })
	code, res := s.post(t, `{"step": {"move": {"node": "alice", "behind": "nat-b"}}}`, nil)
	if code != 400 || !strings.Contains(fmt.Sprint(res["error"]), "alice is behind nat-b already") {
		t.Errorf("a second move behind nat-b: %d %v, want 400 saying alice is there already", code, res)
	}
}
