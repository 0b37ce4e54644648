package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// make demo leaves alone a lab it did not make: its exit trap ran
// `natlab down demo` whatever happened, so a teacher's lab named demo
// went when the demo's own up failed on the name. The demo runs here in
// a mount namespace of its own with private, empty /run/netns and
// /run/natlab, where the test's lab named demo cannot be anyone's: once
// as make demo runs it, and once told a name that is taken
// (NATLAB_DEMO_LAB), when its up fails. The lab named demo survives both,
// and the demo leaves no lab of its own behind.
func TestDemoRemovesOnlyItsOwnLab(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireTool(t, "unshare")
	if err := os.MkdirAll("/run/natlab", 0o755); err != nil {
		t.Fatal(err)
	}
	script := `set -u
mount -t tmpfs natlab-test /run/netns && mount -t tmpfs natlab-test /run/natlab || exit 99
"$NATLAB" up full-cone --name demo >/dev/null || exit 98
sh "$DEMO" "$NATLAB" >demo.out 2>&1; echo "make demo: exit $?"
"$NATLAB" status demo >/dev/null || { echo "make demo removed lab demo"; cat demo.out; exit 97; }
grep -q "^lab demo-[0-9]* is up" demo.out || { echo "make demo did not bring up a lab of its own"; cat demo.out; exit 92; }
NATLAB_DEMO_LAB=demo sh "$DEMO" "$NATLAB" >taken.out 2>&1 && { echo "the demo went on with a taken name"; cat taken.out; exit 96; }
"$NATLAB" status demo >/dev/null || { echo "the demo whose up failed removed lab demo"; cat taken.out; exit 95; }
"$NATLAB" down demo >/dev/null || exit 94
left=$(ls -A /run/netns /run/natlab | grep -v '^/run\|^$')
if [ -n "$left" ]; then echo "the demo left: $left"; cat demo.out; exit 93; fi
`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "NATLAB="+natlab, "DEMO="+filepath.Join(repoRoot(t), "scripts/demo.sh"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}
