package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
)

// nodeIn is the node called name in a state view.
func nodeIn(t *testing.T, state map[string]any, name string) map[string]any {
	t.Helper()
	for _, n := range state["nodes"].([]any) {
		if n := n.(map[string]any); n["name"] == name {
			return n
		}
	}
	t.Fatalf("no node %s in the state", name)
	return nil
}

// linkText is the one line of a node's link in a state view, "" for a
// perfect wire.
func linkText(n map[string]any) string {
	l, _ := n["link"].(map[string]any)
	s, _ := l["text"].(string)
	return s
}

// state is what GET /api/state says now.
func (s *served) state(t *testing.T) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+"/api/state", nil)
	req.Header.Set("X-Natlab-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("state: %s %v", resp.Status, err)
	}
	return v
}

// The page's network controls are link steps posted as actions: each
// change is made in the kernel and every page's state shows the link as
// it now is, conditions and down alike; the page's menus offer the nodes
// a link step takes and a free address to renumber each NAT to.
func TestLinksFromThePage(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	page := s.events(t)
	first := page.await(t, "state", func(map[string]any) bool { return true })
	choices := first["choices"].(map[string]any)
	if got := fmt.Sprint(choices["links"]); got != "[meet stranger nat-a nat-b alice bob]" {
		t.Errorf("the nodes offered for a link step are %s, want every node", got)
	}
	if got := fmt.Sprint(choices["publics"]); !strings.Contains(got, "nat-a:203.0.113.") || strings.Contains(got, "203.0.113.1 ") || strings.Contains(got, "203.0.113.2 ") {
		t.Errorf("the free addresses offered to renumber to are %s", got)
	}

	code, res := s.post(t, `{"step": {"link": {"node": "alice", "delay": "20ms", "jitter": "1ms"}}}`, nil)
	if code != 200 || res["ok"] != true {
		t.Fatalf("link delay: %d %v", code, res)
	}
	state := page.await(t, "state", func(v map[string]any) bool { return strings.Contains(linkText(nodeIn(t, v, "alice")), "delay 20ms") })
	if up := nodeIn(t, state, "alice")["link"].(map[string]any)["up"].(map[string]any); up["delay"] != "20ms" || up["jitter"] != "1ms" {
		t.Errorf("alice's link's up direction in the state: %v", up)
	}

	// A count of messages measures the link: the result carries the
	// probes and the RTT, as natlab run's report writes them.
	code, res = s.post(t, `{"step": {"send": {"from": "alice", "to": "meet", "count": 5}}}`, nil)
	if code != 200 || res["ok"] != true {
		t.Fatalf("send count 5: %d %v", code, res)
	}
	if m, _ := res["measured"].(string); !strings.Contains(m, "5 sent, 5 delivered") || !strings.Contains(m, "rtt min/median/max ") {
		t.Errorf("the send's result measured %q", m)
	}
	if rtt, _ := res["step"].(map[string]any)["rtt"].(map[string]any); rtt["samples"] != 5.0 {
		t.Errorf("the send's rtt: %v", rtt)
	}

	// Down: the state says so, and nothing gets through; up again, the
	// link has the conditions it had.
	if code, res = s.post(t, `{"step": {"link": {"node": "alice", "down": true}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("link down: %d %v", code, res)
	}
	page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "alice")["link_down"] == true })
	if code, res = s.post(t, `{"step": {"send": {"from": "alice", "to": "meet"}}}`, nil); code != 200 || res["step"].(map[string]any)["observed"] != "dropped" {
		t.Errorf("a send over a link that is down: %d %v", code, res)
	}
	if code, res = s.post(t, `{"step": {"link": {"node": "alice", "down": false}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("link up: %d %v", code, res)
	}
	state = page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "alice")["link_down"] == nil })
	if got := linkText(nodeIn(t, state, "alice")); !strings.Contains(got, "delay 20ms") {
		t.Errorf("alice's link after it came up again: %q", got)
	}

	// Bad values are the step's to refuse, with its own message, and
	// change nothing.
	before, err := labstate.Load(s.lab.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"step": {"link": {"node": "alice", "loss": "200%"}}}`, "step.link: loss 200% is outside 0-100%"},
		{`{"step": {"link": {"node": "alice", "delay": "20 parsecs"}}}`, "step.link.delay: "},
		{`{"step": {"link": {"node": "alice", "mtu": "100"}}}`, "mtu 100 is outside 576-9000"},
		{`{"step": {"link": {"node": "internet", "delay": "1ms"}}}`, "internet is the internet segment, not a node"},
		{`{"step": {"renumber": {"node": "nat-a", "public": "203.0.113.2"}}}`, "203.0.113.2 is taken by nat-b"},
		{`{"step": {"renumber": {"node": "nat-a", "public": "10.9.9.9"}}}`, "step.renumber.public: "},
		{`{"step": {"reboot": {"node": "alice"}}}`, "step.reboot.node: "},
		{`{"step": {"move": {"node": "nat-a", "behind": "nat-b"}}}`, "step.move.node: "},
		{`{"step": {"move": {"node": "alice", "behind": "meet"}}}`, "step.move.behind: "},
		{`{"step": {"send": {"from": "alice", "to": "meet", "count": 0}}}`, "step.send.count: "},
	} {
		code, res := s.post(t, tc.body, nil)
		if msg, _ := res["error"].(string); code != 400 || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %v, want 400 saying %q", tc.body, code, res, tc.msg)
		}
	}
	after, err := labstate.Load(s.lab.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(before.Links), mustJSON(after.Links); a != b {
		t.Errorf("refused link steps changed the record's links:\n%s\nthen\n%s", a, b)
	}
	if len(after.Publics) != 0 || len(after.Moves) != 0 {
		t.Errorf("refused steps renumbered or moved: %v %v", after.Publics, after.Moves)
	}
	if got := linkText(nodeIn(t, s.state(t), "alice")); !strings.Contains(got, "delay 20ms") || strings.Contains(got, "loss") {
		t.Errorf("alice's link after the refused steps: %q", got)
	}

	// Clear leaves a perfect wire, which the state leaves out.
	if code, res = s.post(t, `{"step": {"link": {"node": "alice", "clear": true}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("link clear: %d %v", code, res)
	}
	page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "alice")["link"] == nil })
}

// After a renumber, a reboot with a new address and a move, the state
// and the NAT's table show the lab as it is: the new address in the
// picture's boxes and in the table's mappings, the host under its new NAT
// with an address of that LAN.
func TestRenumberedTablesFromThePage(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	page := s.events(t)
	if code, res := s.post(t, `{"step": {"renumber": {"node": "nat-a", "public": "203.0.113.77"}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("renumber: %d %v", code, res)
	}
	page.await(t, "state", func(v map[string]any) bool { return fmt.Sprint(nodeIn(t, v, "nat-a")["addresses"]) == "[203.0.113.77]" })
	// nat-a is a full cone: its mapping of alice's port is natlab's, and
	// the table names it with the address nat-a has now.
	if code, res := s.post(t, `{"step": {"send": {"from": "alice", "to": "meet", "port": 5000}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("send after the renumber: %d %v", code, res)
	}
	// The renumber emptied the table: its first mapping is the send's.
	tab := page.await(t, "table", func(tab map[string]any) bool {
		return tab["nat"] == "nat-a" && len(tab["mappings"].([]any)) > 0
	})
	if m := mustJSON(tab["mappings"]); !strings.Contains(m, `"public":"203.0.113.77:`) {
		t.Errorf("nat-a's table after the renumber: %s, want its mappings on 203.0.113.77", m)
	}

	if code, res := s.post(t, `{"step": {"reboot": {"node": "nat-b", "public": "203.0.113.78"}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("reboot with a new address: %d %v", code, res)
	}
	page.await(t, "state", func(v map[string]any) bool { return fmt.Sprint(nodeIn(t, v, "nat-b")["addresses"]) == "[203.0.113.78]" })

	if code, res := s.post(t, `{"step": {"move": {"node": "alice", "behind": "nat-b"}}}`, nil); code != 200 || res["ok"] != true {
		t.Fatalf("move: %d %v", code, res)
	}
	state := page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "alice")["behind"] == "nat-b" })
	alice, natB := nodeIn(t, state, "alice"), nodeIn(t, state, "nat-b")
	lan := natB["nat"].(map[string]any)["lan"].(string)
	if addr := alice["addresses"].([]any)[0].(string); !strings.HasPrefix(addr, strings.TrimSuffix(lan, "0/24")) {
		t.Errorf("alice moved behind nat-b (LAN %s) has the address %s", lan, addr)
	}
	// The picture draws her under nat-b.
	for _, b := range state["layout"].(map[string]any)["boxes"].([]any) {
		if b := b.(map[string]any); b["name"] == "alice" && b["parent"] != "nat-b" {
			t.Errorf("alice's box hangs from %v, want nat-b", b["parent"])
		}
	}
	// What the lab's record says the page says.
	st, err := labstate.Load(s.lab.Topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Moves["alice"]; m.Behind != "nat-b" || fmt.Sprint([]any{m.Address.String()}) != fmt.Sprint(alice["addresses"]) {
		t.Errorf("the record has alice %v, the page %v", m, alice["addresses"])
	}
}

// What the steps that find a path measured, its RTT, is in the action's
// result, as natlab run's report writes it.
func TestMeasuredFromThePage(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	for _, kind := range []string{"punch", "relay", "upgrade", "ice"} {
		body := fmt.Sprintf(`{"step": {%q: {"between": ["alice", "bob"]}}}`, kind)
		code, res := s.post(t, body, nil)
		if code != 200 {
			t.Fatalf("%s: %d %v", body, code, res)
		}
		st := res["step"].(map[string]any)
		rtt, _ := st["rtt"].(map[string]any)
		// An upgrade measures the relay it starts on, then the direct
		// path it moves to.
		want := "rtt "
		if kind == "upgrade" && st["observed"] == "direct" {
			want = "relay rtt "
		}
		if m, _ := res["measured"].(string); !strings.HasPrefix(m, want) || rtt["samples"] == nil {
			t.Errorf("%s observed %v and measured %q (rtt %v), want the path's rtt", kind, st["observed"], m, rtt)
		}
	}
}

// A change made from another terminal (natlab renumber, natlab link) is
// shown to every page as it is made from the page, and the page's next
// step is checked against the lab as it now is.
func TestChangesFromOutside(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	page := s.events(t)
	page.await(t, "state", func(map[string]any) bool { return true })
	if _, err := lab.Renumber(t.Context(), s.lab.Topo.Name, "nat-b", netip.MustParseAddr("203.0.113.90")); err != nil {
		t.Fatal(err)
	}
	page.await(t, "state", func(v map[string]any) bool { return fmt.Sprint(nodeIn(t, v, "nat-b")["addresses"]) == "[203.0.113.90]" })
	if _, err := lab.Move(t.Context(), s.lab.Topo.Name, "alice", "nat-b"); err != nil {
		t.Fatal(err)
	}
	page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "alice")["behind"] == "nat-b" })
	if err := lab.SetLinkState(t.Context(), s.lab.Topo.Name, "bob", false); err != nil {
		t.Fatal(err)
	}
	page.await(t, "state", func(v map[string]any) bool { return nodeIn(t, v, "bob")["link_down"] == true })
	// The page's step sees alice where she is now.
	code, res := s.post(t, `{"step": {"move": {"node": "alice", "behind": "nat-b"}}}`, nil)
	if code != 400 || !strings.Contains(fmt.Sprint(res["error"]), "alice is behind nat-b already") {
		t.Errorf("a move behind nat-b after one from outside: %d %v", code, res)
	}
	// A send from alice goes out through nat-b at its new address.
	if code, res = s.post(t, `{"step": {"send": {"from": "alice", "to": "meet", "seen-as": "203.0.113.90"}}}`, nil); code != 200 || res["ok"] != true {
		t.Errorf("a send from alice after she moved: %d %v", code, res)
	}
}
