package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
)

// renamedBuiltins writes copies of built-in scenarios under unique lab
// names (other tests may run the same scenarios now) and returns the
// files and the labs' names; the labs are taken down at the end.
func renamedBuiltins(t *testing.T, builtins ...string) (files, labs []string) {
	t.Helper()
	dir, base := t.TempDir(), testutil.UniqueName(t)
	for i, builtin := range builtins {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "scenarios", builtin+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		lab := base + "-" + string(rune('a'+i))
		renamed := regexp.MustCompile(`(?m)^name: .*$`).ReplaceAll(data, []byte("name: "+lab))
		file := filepath.Join(dir, lab+".yaml")
		if err := os.WriteFile(file, renamed, 0o644); err != nil {
			t.Fatal(err)
		}
		files, labs = append(files, file), append(labs, lab)
		t.Cleanup(func() { run(t, "down", lab) })
	}
	return files, labs
}

// Several scenarios with --parallel run at the same time, and print and
// report in the order given, each scenario's lines together.
func TestRunParallel(t *testing.T) {
	testutil.RequireRoot(t)
	// Each waits out silences of a second or more: they overlap in time
	// only if they ran at once.
	files, labs := renamedBuiltins(t, "act3-the-wall", "act1-address-problem", "mapping-expiry")
	out := filepath.Join(t.TempDir(), "r.json")
	r := run(t, append([]string{"run", "--parallel", "3", "--json", out}, files...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "3 scenarios, 3 at once") || !strings.Contains(r.stdout, "3 scenarios: 3 passed, 0 failed") {
		t.Fatalf("run --parallel 3: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The lines of each scenario come after its own header and before
	// the next: none of another lab's lines are among them.
	sections := strings.Split(r.stdout, "\n== ")[1:]
	if len(sections) != 3 {
		t.Fatalf("want 3 sections headed ==, got %d:\n%s", len(sections), r.stdout)
	}
	for i, sec := range sections {
		if !strings.HasPrefix(sec, string(rune('1'+i))+"/3 "+labs[i]+"\n") || !strings.Contains(sec, "lab "+labs[i]+" is up") {
			t.Errorf("section %d is not %s's:\n%s", i+1, labs[i], sec)
		}
		for j, other := range labs {
			if j != i && strings.Contains(sec, "lab "+other+" ") {
				t.Errorf("section %d (%s) holds %s's lines:\n%s", i+1, labs[i], other, sec)
			}
		}
	}
	var suite struct {
		Runs []struct {
			Lab      string
			Started  time.Time
			Duration time.Duration `json:"duration_ns"`
		}
	}
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &suite); err != nil || len(suite.Runs) != 3 {
		t.Fatalf("JSON report: %v\n%s", err, data)
	}
	for i, run := range suite.Runs {
		if run.Lab != labs[i] {
			t.Errorf("run %d of the report is %s, want %s", i, run.Lab, labs[i])
		}
	}
	// The wall and mapping-expiry each spend seconds waiting: run at
	// once, each started before the other ended.
	a, c := suite.Runs[0], suite.Runs[2]
	if !a.Started.Before(c.Started.Add(c.Duration)) || !c.Started.Before(a.Started.Add(a.Duration)) {
		t.Errorf("the runs did not overlap: %s %v+%v, %s %v+%v", a.Lab, a.Started, a.Duration, c.Lab, c.Started, c.Duration)
	}
	if r := run(t, "run", "--parallel", "0", files[0], files[1]); r.code != 2 || !strings.Contains(r.stderr, "--parallel 0") {
		t.Errorf("--parallel 0: exit %d, %q; want a usage error", r.code, r.stderr)
	}
}

// Ctrl-C during a parallel run stops every scenario, takes their labs
// down, and says it was interrupted.
func TestRunParallelInterrupted(t *testing.T) {
	testutil.RequireRoot(t)
	files, labs := renamedBuiltins(t, "mapping-expiry", "act3-the-wall", "act1-address-problem")
	cmd := exec.Command(natlab, append([]string{"run", "--parallel", "2"}, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupted once the first two labs are up, the third not started.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := filepath.Glob("/run/netns/natlab-" + labs[0] + "-*")
		b, _ := filepath.Glob("/run/netns/natlab-" + labs[1] + "-*")
		if len(a) > 0 && len(b) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("interrupted run: %v, want exit 130 saying so\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, lab := range labs {
		if left, _ := filepath.Glob("/run/netns/natlab-" + lab + "-*"); len(left) > 0 {
			t.Errorf("an interrupted parallel run left %v", left)
		}
	}
}
