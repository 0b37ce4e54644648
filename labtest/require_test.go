package labtest

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/testutil"
)

func TestSkipReason(t *testing.T) {
	testutil.CheckRoutines(t)
	all := func(int) (bool, error) { return true, nil }
	without := func(missing int) func(int) (bool, error) {
		return func(c int) (bool, error) { return c != missing, nil }
	}
	kernelOK := func() error { return nil }
	tests := []struct {
		name   string
		euid   int
		hasCap func(int) (bool, error)
		kernel func() error
		want   string // in the reason; "" for none
	}{
		{"root with everything", 0, all, kernelOK, ""},
		{"not root", 1000, all, kernelOK, "needs root"},
		{"no CAP_NET_ADMIN", 0, without(unix.CAP_NET_ADMIN), kernelOK, "without CAP_NET_ADMIN"},
		{"no CAP_SYS_ADMIN", 0, without(unix.CAP_SYS_ADMIN), kernelOK, "without CAP_SYS_ADMIN"},
		{"capabilities unreadable", 0, func(int) (bool, error) { return false, errors.New("capget: EPERM") }, kernelOK, "capget: EPERM"},
		{"no veth", 0, all, func() error { return errors.New("create a veth pair: operation not supported") }, "cannot build labs: create a veth pair"},
		{"not root is said before the kernel is probed", 1000, all, func() error { t.Error("probed"); return nil }, "needs root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := skipReason(tc.euid, tc.hasCap, tc.kernel)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("reason %q, want one with %q", got, tc.want)
			}
			if strings.Contains(got, "\n") {
				t.Fatalf("reason %q is more than one line", got)
			}
		})
	}
}

// TestKernelProbe runs the real probe, which must pass on a machine where
// labs are built, and leave nothing in the test's own namespace.
func TestKernelProbe(t *testing.T) {
	testutil.CheckRoutines(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to probe the kernel")
	}
	before := interfaces(t)
	if err := probeKernel(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if after := interfaces(t); after != before {
		t.Fatalf("the probe changed the test's namespace: interfaces %s, then %s", before, after)
	}
}

func interfaces(t *testing.T) string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return strings.Join(names, ",")
}

// TestSkipsWithoutPrivileges runs this test binary again without root, and
// as root without each capability a lab needs, and checks that Up skips
// with the reason instead of failing.
func TestSkipsWithoutPrivileges(t *testing.T) {
	testutil.CheckRoutines(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop privileges from")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to drop privileges")
	}
	exe := copyExecutable(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nobody", []string{"--reuid=65534", "--regid=65534", "--clear-groups"}, "labtest: needs root"},
		{"root without CAP_NET_ADMIN", []string{"--inh-caps=-net_admin", "--bounding-set=-net_admin"}, "without CAP_NET_ADMIN"},
		{"root without CAP_SYS_ADMIN", []string{"--inh-caps=-sys_admin", "--bounding-set=-sys_admin"}, "without CAP_SYS_ADMIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--", exe, "-test.run=^TestUpUnprivileged$", "-test.v", "-test.count=1")
			cmd := exec.Command(setpriv, args...)
			cmd.Env = append(os.Environ(), "LABTEST_UNPRIVILEGED=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- SKIP: TestUpUnprivileged") || !strings.Contains(string(out), tc.want) {
				t.Fatalf("want a skip saying %q:\n%s", tc.want, out)
			}
		})
	}
}

// TestUpUnprivileged is TestSkipsWithoutPrivileges's child.
func TestUpUnprivileged(t *testing.T) {
	testutil.CheckRoutines(t)
	if os.Getenv("LABTEST_UNPRIVILEGED") == "" {
		t.Skip("run by TestSkipsWithoutPrivileges")
	}
	Up(t, "nodes: {a: {kind: host}}")
	t.Fatal("Up did not skip")
}

// copyExecutable copies the test binary where an unprivileged user can
// run it: go test builds it in a directory only root may enter.
func copyExecutable(t *testing.T) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "labtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe := filepath.Join(dir, "labtest.test")
	dst, err := os.OpenFile(exe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}
