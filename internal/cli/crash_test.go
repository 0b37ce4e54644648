package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
)

// leftovers lists everything of lab name that exists on the machine: its
// namespaces' names, its files in /run/natlab, mounts of its namespaces in
// natlab's mount namespace, and processes running in a namespace whose
// name is gone (found by their service name or their namespace's mount).
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	var left []string
	ns, _ := filepath.Glob("/run/netns/natlab-" + name + "-*")
	left = append(left, ns...)
	files, _ := filepath.Glob("/run/natlab/" + name + ".*")
	left = append(left, files...)
	temps, _ := filepath.Glob("/run/natlab/." + name + ".*") // of a record being saved
	left = append(left, temps...)
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, "/natlab-"+name+"-") {
				left = append(left, "mount: "+l)
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Service processes are named "natlab-service LAB/NODE".
		if bytes.HasPrefix(cmd, []byte("natlab-service "+name+"/")) {
			left = append(left, fmt.Sprintf("process %s: %q", filepath.Base(filepath.Dir(p)), cmd))
		}
	}
	return left
}

// record reads a lab's record as natlab wrote it, or nil.
func record(name string) map[string]any {
	data, err := os.ReadFile("/run/natlab/" + name + ".json")
	if err != nil {
		return nil
	}
	var r map[string]any
	if json.Unmarshal(data, &r) != nil {
		return nil
	}
	return r
}

// upAndKill starts `natlab ARGS`, sends SIGKILL after delay, and reports
// whether the process was still running then.
func upAndKill(t *testing.T, delay time.Duration, args ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(natlab, args...)
	cmd.Dir = repoRoot(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return err != nil && ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// kill -9 of `natlab up` at points spread over the whole bring-up: after
// each kill, `natlab down LAB` (without the scenario file) removes every
// namespace, mount, process and file of the lab, and the same lab comes
// up again.
func TestKill9DuringUp(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	// How long a whole up takes here, to spread the kills over it.
	start := time.Now()
	if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	whole := time.Since(start)
	if r := run(t, "down", name); r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
	}
	const runs = 50
	midway := 0 // kills that left a part-built lab to clean up
	for i := range runs {
		delay := whole * time.Duration(i) / runs
		killed := upAndKill(t, delay, "up", "symmetric", "--name", name)
		left := leftovers(t, name)
		if killed && len(left) > 0 {
			midway++
		}
		r := run(t, "down", name)
		if r.code != 0 {
			t.Errorf("kill after %v, then down: exit %d\n%s", delay, r.code, r.stderr)
		}
		if still := leftovers(t, name); len(still) > 0 {
			t.Fatalf("kill after %v (%d things were there), then down, left behind:\n%s", delay, len(left), strings.Join(still, "\n"))
		}
		if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
			t.Fatalf("kill after %v, down, then up again: exit %d\n%s", delay, r.code, r.stderr)
		}
		if r := run(t, "down", name); r.code != 0 {
			t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
		}
	}
	t.Logf("%d kills over %v; %d left a part-built lab that down removed", runs, whole, midway)
	// The kills must have landed during the bring-up, not only before or
	// after it, or this test proves little.
	if midway < runs/5 {
		t.Errorf("only %d of %d kills caught up half way", midway, runs)
	}
}

// kill -9 of `natlab run` in the middle of a scenario, and of a lab's
// service process: down removes everything, and the lab comes up again.
func TestKill9DuringRunAndOfServices(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	file := filepath.Join(t.TempDir(), "slow.yaml")
	os.WriteFile(file, []byte(`name: slow
nodes:
  meet:  {kind: server, services: [stun, turn, rendezvous]}
  home:  {kind: nat, type: symmetric}
  alice: {kind: host, behind: home}
steps:
  - stun: {from: alice}
  - wait: 30s
`), 0o644)

	cmd := exec.Command(natlab, "run", file, "--name", name)
	cmd.Dir = repoRoot(t)
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the first step has passed: the lab is up, the run is
	// waiting in its second step.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "1/2") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rec := record(name); rec == nil || rec["complete"] != true {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the lab was not up while run was in its steps; output:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if left := leftovers(t, name); len(left) == 0 {
		t.Fatal("nothing was left after kill -9 of run: the test did not kill it mid-scenario")
	}
	if r := run(t, "down", name); r.code != 0 {
		t.Fatalf("down after kill -9 of run: exit %d\n%s", r.code, r.stderr)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Fatalf("kill -9 of run, then down, left behind:\n%s", strings.Join(left, "\n"))
	}

	// Now the service process dies: status says so, down still cleans up.
	if r := run(t, "up", file, "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	rec := record(name)
	procs, _ := rec["processes"].([]any)
	if len(procs) == 0 {
		t.Fatalf("the record lists no service process: %v", rec)
	}
	pid := int(procs[0].(map[string]any)["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the service process %d: %v", pid, err)
	}
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond) // reaped by its parent, init
	}
	if r := run(t, "status", name); !strings.Contains(r.stdout, "NOT RUNNING") {
		t.Errorf("status after the service died does not say so:\n%s%s", r.stdout, r.stderr)
	}
	if r := run(t, "down", name); r.code != 0 {
		t.Fatalf("down after the service died: exit %d\n%s", r.code, r.stderr)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Fatalf("down after the service died left behind:\n%s", strings.Join(left, "\n"))
	}
	if r := run(t, "up", file, "--name", name); r.code != 0 {
		t.Fatalf("up again after the crashes: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, "down", name); r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.stderr)
	}
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// `natlab down --all` after kill -9 of up at several points. down --all
// removes every lab on the machine, so it runs in a mount namespace of its
// own, with private, empty /run/netns and /run/natlab: there it sees only
// the labs this test makes.
func TestDownAllAfterKill9(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireTool(t, "unshare")
	if err := os.MkdirAll("/run/natlab", 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{testutil.UniqueName(t), testutil.UniqueName(t)}
	script := `set -u
mount -t tmpfs natlab-test /run/netns && mount -t tmpfs natlab-test /run/natlab || exit 99
for delay in 0 0.005 0.01 0.015 0.02 0.03; do
	"$NATLAB" up symmetric --name "$A" >/dev/null 2>&1 & pid=$!
	sleep $delay; kill -9 $pid; wait $pid
	"$NATLAB" up full-cone --name "$B" >/dev/null || exit 98
	"$NATLAB" down --all || exit 97
	left=$(ls -A /run/netns /run/natlab | grep -v '^/run\|^$')
	if [ -n "$left" ]; then echo "after kill at $delay, down --all left: $left"; exit 96; fi
	for p in /proc/[0-9]*; do
		case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in
		"natlab-service $A/"*|"natlab-service $B/"*) echo "after kill at $delay, a service is left: $p"; exit 95;;
		esac
	done
	"$NATLAB" up symmetric --name "$A" >/dev/null || exit 94
	"$NATLAB" down "$A" >/dev/null || exit 93
done
`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "NATLAB="+natlab, "A="+names[0], "B="+names[1])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	for _, n := range names {
		if left := leftovers(t, n); len(left) > 0 {
			t.Errorf("left behind on the host: %v", left)
		}
	}
}

// Two tours of one act at once, as two students on one machine: the
// second takes the next free lab name instead of failing. A tour's lab
// names are fixed (tour-1-address-problem, then -2), so the test runs in a
// mount namespace of its own, with private, empty /run/netns and
// /run/natlab: a tour run at the same time elsewhere on the machine (a
// student, another test run) neither takes its names nor is taken down.
func TestTwoToursAtOnce(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireTool(t, "unshare")
	if err := os.MkdirAll("/run/natlab", 0o755); err != nil {
		t.Fatal(err)
	}
	script := `set -u
mount -t tmpfs natlab-test /run/netns && mount -t tmpfs natlab-test /run/natlab || exit 99
"$NATLAB" tour --act I --no-pause >/tmp/tour-a.$$ 2>&1 & a=$!
"$NATLAB" tour --act I --no-pause >/tmp/tour-b.$$ 2>&1 & b=$!
# The lab records the tours make, seen while they run: both names.
seen=""
while kill -0 $a 2>/dev/null || kill -0 $b 2>/dev/null; do
	seen="$seen $(ls /run/natlab)"
	sleep 0.01
done
wait $a; ca=$?; wait $b; cb=$?
echo "--- labs seen:" $(echo $seen | tr ' ' '\n' | sort -u)
for f in a b; do echo "--- tour $f"; cat /tmp/tour-$f.$$; rm -f /tmp/tour-$f.$$; done
left=$(ls -A /run/netns /run/natlab | grep -v '^/run\|^$')
if [ -n "$left" ]; then echo "left behind: $left"; exit 96; fi
[ $ca -eq 0 ] && [ $cb -eq 0 ] || { echo "exit codes $ca $cb"; exit 95; }
`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "NATLAB="+natlab)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "FAIL") {
		t.Errorf("%v\n%s", err, out)
	}
	// Both tours ran under their own names: the second took the next one.
	_, seen, _ := strings.Cut(string(out), "--- labs seen:")
	seen, _, _ = strings.Cut(seen, "\n")
	labs := strings.Fields(seen)
	for _, name := range []string{"tour-1-address-problem", "tour-1-address-problem-2"} {
		if !slices.ContainsFunc(labs, func(l string) bool { return l == name || strings.HasPrefix(l, name+".") }) {
			t.Errorf("no tour ran as %s; labs seen: %v", name, labs)
		}
	}
}
