package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// A file whose link conditions are wrong is refused by validate with
// exit 2 and one FILE:LINE:COL line per problem (TestBadInputCorpus runs
// up on the same files, and checks that it creates nothing).
func TestValidateLinks(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "links.yaml")
	os.WriteFile(bad, []byte("nodes:\n  a: {kind: host, link: {rate: 10mbps}}\n  b: {kind: host, link: {loss: 101%, delay: 1ms}}\n"), 0o644)
	r := run(t, "validate", bad)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 2 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], bad+":2:32: nodes.a.link.rate: invalid rate \"10mbps\"") ||
		!strings.HasPrefix(lines[1], bad+":3:32: nodes.b.link: loss 101% is outside 0-100%") {
		t.Errorf("validate: exit %d\n%s", r.code, r.stderr)
	}
	good := filepath.Join(t.TempDir(), "links.yaml")
	os.WriteFile(good, []byte("nodes:\n  a: {kind: host, link: {delay: 30ms, up: {rate: 1mbit}}}\n"), 0o644)
	if r := run(t, "validate", good); r.code != 0 {
		t.Errorf("validate a good file: exit %d\n%s", r.code, r.stderr)
	}
}

// natlab status --json and the page's state show a running lab's link
// conditions the same.
func TestStatusAndPageAgree(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	file := filepath.Join(t.TempDir(), "links.yaml")
	os.WriteFile(file, []byte(`
nodes:
  srv:   {kind: server, link: {mtu: 1400}}
  home:  {kind: nat, link: {delay: 2ms, up: {rate: 1mbit}, down: {rate: 20mbit}}}
  alice: {kind: host, behind: home, link: {delay: 3ms, jitter: 1ms, loss: 0.5%, rate: 10mbit}}
  bob:   {kind: host, behind: home}
`), 0o644)
	const tok = "a-token-for-the-links"
	ui := startUI(t, tok, file, "--name", name)
	defer func() {
		ui.cmd.Process.Signal(os.Interrupt)
		<-ui.copied
		if err := ui.cmd.Wait(); err != nil {
			t.Errorf("natlab ui: %v; stderr %q", err, ui.stderr.String())
		}
		run(t, "down", name)
	}()
	type nodes struct {
		Nodes []struct {
			Name string
			Link json.RawMessage
		}
	}
	links := func(n nodes) map[string]string {
		m := map[string]string{}
		// status --json is indented, the page's state is not.
		for _, node := range n.Nodes {
			var b bytes.Buffer
			json.Compact(&b, node.Link)
			m[node.Name] = b.String()
		}
		return m
	}

	resp, err := http.Get(ui.base + "/api/state?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	var page nodes
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, "status", name, "--json")
	var status []nodes
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil || len(status) != 1 {
		t.Fatalf("status --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	fromPage, fromStatus := links(page), links(status[0])
	if len(fromPage) != 4 || len(fromStatus) != 4 {
		t.Fatalf("the page has %d nodes, status %d; want 4", len(fromPage), len(fromStatus))
	}
	for node, l := range fromStatus {
		if fromPage[node] != l {
			t.Errorf("%s's link: status --json %s, the page %s", node, l, fromPage[node])
		}
	}
	if want := `{"up":{"delay":"3ms","jitter":"1ms","loss":0.5,"rate":"10mbit"},"down":{"delay":"3ms","jitter":"1ms","loss":0.5,"rate":"10mbit"},"text":"delay 3ms, jitter 1ms, loss 0.5%, rate 10mbit"}`; fromStatus["alice"] != want {
		t.Errorf("alice's link in status --json: %s, want %s", fromStatus["alice"], want)
	}
	if fromStatus["bob"] != "" {
		t.Errorf("bob's perfect wire in status --json: %s", fromStatus["bob"])
	}
	if r := run(t, "status", name); !strings.Contains(r.stdout, "LINK") || !strings.Contains(r.stdout, "up: delay 2ms, rate 1mbit; down: delay 2ms, rate 20mbit") {
		t.Errorf("status shows no links:\n%s", r.stdout)
	}
}
