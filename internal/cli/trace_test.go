package cli_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// A second trace of a NAT says who is tracing it already.
func TestSecondTraceNamesTheFirst(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	first := exec.Command(natlab, "trace", name, "nat-a", "--duration", "30s")
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.Process.Signal(syscall.SIGINT)
		first.Wait()
	}()
	// It says "tracing" once it listens.
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "tracing nat-a") {
		t.Fatalf("the first trace did not start: %q", lines.Text())
	}
	r := run(t, "trace", name, "nat-a", "--duration", "1s")
	want := fmt.Sprintf("trace NAT nat-a of lab %s: another natlab trace or natlab ui is tracing this NAT (process %d: %s trace %s nat-a --duration 30s); a NAT's packets go to one tracer at a time", name, first.Process.Pid, natlab, name)
	if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("second trace: exit %d\n%s\nwant exit 1 and one line with %q", r.code, r.stderr, want)
	}
	// Another NAT of the lab is free to trace.
	if r := run(t, "trace", name, "nat-b", "--duration", "100ms"); r.code != 0 {
		t.Errorf("trace of the other NAT: exit %d\n%s", r.code, r.stderr)
	}
}
