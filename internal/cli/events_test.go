package cli_test

import (
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// natlab reboot and natlab renumber on a running lab: each says what it
// did, status shows the new address, and bad input is one line and exit
// 2 with nothing changed.
func TestRebootRenumberCommands(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "act1-address-problem", "--name", name); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	if r := run(t, "reboot", name, "home"); r.code != 0 || !strings.Contains(r.stdout, "home rebooted") {
		t.Errorf("reboot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "renumber", name, "home", "203.0.113.77"); r.code != 0 || r.stdout != "home's public address is 203.0.113.77, was 203.0.113.50; its mappings of 203.0.113.50 are gone\n" {
		t.Errorf("renumber: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "status", name); !strings.Contains(r.stdout, "203.0.113.77") || strings.Contains(r.stdout, "203.0.113.50") {
		t.Errorf("status after the renumber does not show home at 203.0.113.77:\n%s%s", r.stdout, r.stderr)
	}
	if r := run(t, "reboot", name, "home", "--public", "203.0.113.78"); r.code != 0 || !strings.Contains(r.stdout, "its public address is 203.0.113.78") {
		t.Errorf("reboot --public: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	usageErrors(t, []usageCase{
		{[]string{"renumber", name, "home", "198.51.100.1"}, "198.51.100.1 is outside 203.0.113.0/24, the internet"},
		{[]string{"renumber", name, "home", "203.0.113.10"}, "203.0.113.10 is taken by server"},
		{[]string{"renumber", name, "home", "203.0.113.78"}, "203.0.113.78 is home's address already"},
		{[]string{"renumber", name, "home", "home.example"}, `"home.example" is not an IPv4 address`},
		{[]string{"renumber", name, "phone", "203.0.113.79"}, "phone is a host: only a NAT node can be renumbered"},
		{[]string{"renumber", name, "home"}, "accepts 3 arg(s)"},
		{[]string{"reboot", name, "phone"}, "phone is a host: only a NAT node can be rebooted"},
		{[]string{"reboot", name, "nobody"}, "has no node nobody"},
		{[]string{"reboot", name, "home", "--public", "203.0.113.10"}, "203.0.113.10 is taken by server"},
		{[]string{"reboot", name + "x", "home"}, "is not up"},
	})
	if r := run(t, "status", name); !strings.Contains(r.stdout, "203.0.113.78") {
		t.Errorf("status after the refused changes does not show home at 203.0.113.78:\n%s%s", r.stdout, r.stderr)
	}
}

// natlab move roams a host, status shows it behind the other NAT, and
// bad input is one line and exit 2.
func TestMoveCommand(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	r := run(t, "move", name, "alice", "nat-b")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "alice left nat-a (192.168.1.2) and is behind nat-b at 192.168.2.") {
		t.Errorf("move: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "status", name, "--json"); !strings.Contains(r.stdout, `"behind": "nat-b"`) && !strings.Contains(r.stdout, `"behind":"nat-b"`) {
		t.Errorf("status after the move does not have alice behind nat-b:\n%s%s", r.stdout, r.stderr)
	}
	usageErrors(t, []usageCase{
		{[]string{"move", name, "alice", "nat-b"}, "alice is behind nat-b already"},
		{[]string{"move", name, "nat-a", "nat-b"}, "nat-a is a nat; only a host moves"},
		{[]string{"move", name, "alice", "stun"}, "stun is a server, not a nat"},
		{[]string{"move", name, "alice", "nowhere"}, `no node named "nowhere"`},
		{[]string{"move", name, "nobody", "nat-a"}, "has no node nobody"},
		{[]string{"move", name, "alice"}, "accepts 3 arg(s)"},
	})
}

// usageCase is a command line natlab must refuse, and what its one line
// of error must say.
type usageCase struct {
	args []string
	want string
}

// usageErrors runs each command line and wants exit 2, one line of error
// with what the case says, and nothing on stdout.
func usageErrors(t *testing.T, cases []usageCase) {
	t.Helper()
	for _, tc := range cases {
		r := run(t, tc.args...)
		msg := strings.TrimSpace(r.stderr)
		if r.code != 2 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || r.stdout != "" {
			t.Errorf("natlab %s: exit %d, stderr %q, stdout %q; want exit 2 and one line with %q", strings.Join(tc.args, " "), r.code, msg, r.stdout, tc.want)
		}
	}
}
