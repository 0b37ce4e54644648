package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// natlab link changes a running lab's link, and refuses a bad value with
// exit 2 and one line, changing nothing; status shows what it did.
func TestLinkCommand(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	file := filepath.Join(t.TempDir(), "links.yaml")
	os.WriteFile(file, []byte(`
nodes:
  srv:   {kind: server}
  home:  {kind: nat}
  alice: {kind: host, behind: home, link: {delay: 5ms}}
`), 0o644)
	if r := run(t, "up", file, "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	defer run(t, "down", name)
	type status []struct {
		LinkMechanism string `json:"link_mechanism"`
		Nodes         []struct {
			Name     string
			LinkDown bool `json:"link_down"`
			Link     *struct{ Text string }
		}
	}
	alice := func() (text string, down bool) {
		t.Helper()
		r := run(t, "status", name, "--json")
		var s status
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || len(s) != 1 {
			t.Fatalf("status --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if s[0].LinkMechanism == "" {
			t.Error("status --json has no link_mechanism for a lab whose links are shaped")
		}
		for _, n := range s[0].Nodes {
			if n.Name == "alice" {
				if n.Link == nil {
					return "none", n.LinkDown
				}
				return n.Link.Text, n.LinkDown
			}
		}
		t.Fatal("status has no alice")
		return "", false
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--loss", "150%"}, "natlab: alice's link: loss 150% is outside 0-100%"},
		{[]string{"--delay", "30"}, `natlab: --delay: invalid duration "30"`},
		{[]string{"--up-rate", "10mbps"}, "write 10mbit"},
		// Alice's delay is 5 ms.
		{[]string{"--jitter", "10ms"}, "natlab: alice's link: jitter 10ms is more than the delay 5ms"},
		{[]string{"--mtu", "100"}, "mtu 100 is outside 576-9000"},
		{nil, "nothing to change"},
		{[]string{"--down", "--up"}, "contradict"},
	} {
		r := run(t, append([]string{"link", name, "alice"}, c.args...)...)
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); r.code != 2 || len(lines) != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("link %v: exit %d, %q; want exit 2 and one line with %q", c.args, r.code, r.stderr, c.want)
		}
		if text, _ := alice(); text != "delay 5ms" {
			t.Errorf("after the refused link %v, alice's link is %q", c.args, text)
		}
	}
	if r := run(t, "link", name, "carol", "--delay", "1ms"); r.code != 2 || !strings.Contains(r.stderr, "has no node carol") {
		t.Errorf("link of an unknown node: exit %d, %s", r.code, r.stderr)
	}

	r := run(t, "link", name, "alice", "--delay", "50ms", "--loss", "2%", "--down-rate", "20mbit")
	if r.code != 0 || !strings.Contains(r.stdout, "alice's link: up: delay 50ms, loss 2%; down: delay 50ms, loss 2%, rate 20mbit") {
		t.Errorf("link: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if text, down := alice(); text != "up: delay 50ms, loss 2%; down: delay 50ms, loss 2%, rate 20mbit" || down {
		t.Errorf("status: alice's link %q, down %v", text, down)
	}
	if r := run(t, "link", name, "alice", "--down"); r.code != 0 || !strings.Contains(r.stdout, "down") {
		t.Errorf("link --down: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, down := alice(); !down {
		t.Error("status does not say alice's link is down")
	}
	if r := run(t, "status", name); !strings.Contains(r.stdout, "link of alice: DOWN") || !strings.Contains(r.stdout, "links: shaped by") {
		t.Errorf("status does not say how the links are shaped and which is down:\n%s", r.stdout)
	}
	if r := run(t, "link", name, "alice", "--up"); r.code != 0 {
		t.Errorf("link --up: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "link", name, "alice", "--clear"); r.code != 0 {
		t.Errorf("link --clear: exit %d\n%s", r.code, r.stderr)
	}
	if text, down := alice(); text != "none" || down {
		t.Errorf("after --clear and --up: alice's link %q, down %v", text, down)
	}
}
