package cli_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
)

// Every command that takes a lab name refuses one that is not a lab name,
// with exit 2, before it touches the file system: as root, `natlab down
// ../../home/me/notes` removed /home/me/notes.d and notes.secret, and
// `down 'x*'` another lab's temporary record. The victims here live in a
// temporary directory, reached from /run/natlab by climbing out of it.
func TestLabNamesAreNotPaths(t *testing.T) {
	testutil.RequireRoot(t)
	victims := t.TempDir()
	files := []string{"notes.json", "notes.secret", "notes.lock", "notes.d/keep"}
	for _, f := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(victims, f)), 0o755)
		if err := os.WriteFile(filepath.Join(victims, f), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	climb, err := filepath.Rel(labstate.Dir, filepath.Join(victims, "notes"))
	if err != nil {
		t.Fatal(err)
	}
	other := testutil.UniqueName(t)
	os.MkdirAll(labstate.Dir, 0o755)
	otherTemp := filepath.Join(labstate.Dir, "."+other+".json.123")
	if err := os.WriteFile(otherTemp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(otherTemp) })

	for _, name := range []string{climb, other[:3] + "*", "*", "", "-rf", "Symmetric"} {
		for _, argv := range [][]string{
			{"down", "--", name},
			{"status", "--", name},
			{"exec", "--", name, "alice", "true"},
			{"table", "--", name, "nat-a"},
			{"trace", "--", name, "nat-a"},
			{"classify", "--", name, "alice"},
		} {
			r := run(t, argv...)
			if r.code != 2 || !strings.Contains(r.stderr, "is not valid") || r.stdout != "" {
				t.Errorf("natlab %q: exit %d, stdout %q, stderr %q; want exit 2 and why the name is not valid", argv, r.code, r.stdout, r.stderr)
			}
		}
	}
	for _, f := range files {
		if data, err := os.ReadFile(filepath.Join(victims, f)); err != nil || string(data) != "mine" {
			t.Errorf("%s: %q, %v; want it untouched", f, data, err)
		}
	}
	if _, err := os.Stat(otherTemp); err != nil {
		t.Errorf("another lab's temporary record: %v", err)
	}
	// An empty --name is not "no --name".
	for _, cmd := range []string{"up", "run", "ui"} {
		if r := run(t, cmd, "symmetric", "--name", ""); r.code != 2 || !strings.Contains(r.stderr, `lab name "" is not valid`) {
			t.Errorf("%s --name '': exit %d, %q; want exit 2", cmd, r.code, r.stderr)
		}
	}
}

// `natlab down` waits for a lock that another process holds (a natlab
// killed a moment ago whose threads have not left the kernel yet), says
// whom it waits for, and then removes the lab; it used to fail at once.
func TestDownWaitsForTheLock(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	lock, err := labstate.Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	down := exec.Command(natlab, "down", name)
	down.Stdout = &stdout
	stderrPipe, err := down.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := down.Start(); err != nil {
		lock.Release()
		t.Fatal(err)
	}
	// The lock goes once down has said that it waits, or when down has
	// said all it will (a down that does not wait still ends).
	stderr, _ := bufio.NewReader(stderrPipe).ReadString('\n')
	lock.Release()
	rest, _ := io.ReadAll(stderrPipe)
	err = down.Wait()
	if err != nil || !strings.Contains(stderr, "is held by process") || !strings.Contains(stdout.String(), "is not up") {
		t.Errorf("down while another process held the lock: %v\nstdout: %s\nstderr: %s%s", err, stdout.String(), stderr, rest)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// An up that cannot write its record (a full /run) leaves nothing: it
// used to leave LAB.secret, the TURN password. /run/natlab here is a
// tmpfs of one page, in a mount namespace of the test's own.
func TestUpOnAFullRunLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireTool(t, "unshare")
	script := `mount -t tmpfs -o size=4k natlab-test /run/natlab && mount -t tmpfs natlab-test /run/netns || exit 99
"$NATLAB" up symmetric --name "$A" && exit 98
ls -A /run/natlab /run/netns | grep -v '^/run\|^$'
exit 0`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "NATLAB="+natlab, "A="+testutil.UniqueName(t))
	r := runCmd(t, cmd)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "no space left") {
		t.Errorf("up on a full /run: exit %d\nleft: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
