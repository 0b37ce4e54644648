package rootless

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// envTestDir tells the re-executed test binary which directory to make
// private (TestSetupCopiesUp).
const envTestDir = "NATLAB_ROOTLESS_TEST_DIR"

func TestMain(m *testing.M) {
	if InChild() {
		os.Exit(setupChild(os.Getenv(envTestDir)))
	}
	os.Exit(m.Run())
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		sysctls map[string]string
		want    string // in the error; "" for none
	}{
		{map[string]string{}, ""},
		{map[string]string{sysctlDebianClone: "1", sysctlMaxUserNS: "15000", sysctlAppArmor: "0"}, ""},
		{map[string]string{sysctlDebianClone: "0", sysctlMaxUserNS: "15000"}, "kernel.unprivileged_userns_clone=0"},
		{map[string]string{sysctlMaxUserNS: "0"}, "user.max_user_namespaces=0"},
	} {
		err := Check(func(name string) (string, error) {
			if v, ok := c.sysctls[name]; ok {
				return v, nil
			}
			return "", os.ErrNotExist
		})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v, want no error", c.sysctls, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrForbidden)):
			t.Errorf("%v: %v, want ErrForbidden naming %s", c.sysctls, err, c.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%v: %q is more than one line", c.sysctls, err)
		}
	}
}

func TestFullUIDMap(t *testing.T) {
	for m, want := range map[string]bool{
		"         0          0 4294967295\n": true,
		"         0       1000          1\n": false,
		"         0          0          1\n": false,
		"":                                   false,
	} {
		if got := fullUIDMap(m); got != want {
			t.Errorf("fullUIDMap(%q) = %v, want %v", m, got, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	// A wait status: the exit code in the second byte, or the signal in
	// the first.
	if got := ExitCode(syscall.WaitStatus(3 << 8)); got != 3 {
		t.Errorf("exit 3: got %d", got)
	}
	if got := ExitCode(syscall.WaitStatus(syscall.SIGKILL)); got != 137 {
		t.Errorf("killed: got %d, want 137", got)
	}
}

func TestPlan(t *testing.T) {
	exists := func(present ...string) func(string) bool {
		return func(d string) bool { return slices.Contains(present, d) }
	}
	dirs := []string{"/run/netns", "/run/natlab"}
	for _, c := range []struct {
		present []string
		want    mountPlan
	}{
		{[]string{"/run/netns", "/run/natlab"}, mountPlan{skip: map[string][]string{}, tmpfs: dirs}},
		{nil, mountPlan{copyUp: []string{"/run"}, skip: map[string][]string{"/run": {"netns", "natlab"}}, mkdir: dirs}},
		// One that exists goes with its parent when the other is missing:
		// a tmpfs on it would be hidden.
		{[]string{"/run/netns"}, mountPlan{copyUp: []string{"/run"}, skip: map[string][]string{"/run": {"netns", "natlab"}}, mkdir: dirs}},
	} {
		if got := plan(dirs, exists(c.present...)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("present %v:\n got %+v\nwant %+v", c.present, got, c.want)
		}
	}
	got := plan([]string{"/run/netns", "/var/lib/natlab"}, exists("/run/netns"))
	want := mountPlan{copyUp: []string{"/var/lib"}, skip: map[string][]string{"/var/lib": {"natlab"}}, tmpfs: []string{"/run/netns"}, mkdir: []string{"/var/lib/natlab"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("two parents:\n got %+v\nwant %+v", got, want)
	}
}

// A state directory missing on the host makes Setup copy /run up: the
// directory appears, private and empty, every other entry of /run is
// still there, and the host's /run is unchanged.
func TestSetupCopiesUp(t *testing.T) {
	testutil.RequireRoot(t)
	dir := filepath.Join("/run", "natlab-rootless-"+testutil.UniqueName(t))
	t.Setenv(envTestDir, dir)
	code, err := Exec([]string{"-test.run=^$"}, nil, os.Stdout, os.Stderr)
	if errors.Is(err, ErrForbidden) {
		t.Skip(err)
	}
	if err != nil || code != 0 {
		t.Errorf("the test binary in its namespaces: exit %d, %v", code, err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(dir)
		t.Errorf("%s appeared on the host: %v", dir, err)
	}
}

// setupChild runs in the re-executed test binary: it calls Setup with dir
// and checks what it sees.
func setupChild(dir string) int {
	before, err := os.ReadDir("/run")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// What the directories in /run hold: after Setup, bound back, they
	// must hold the same.
	contents := func() map[string]int {
		m := map[string]int{}
		for _, e := range before {
			if sub, err := os.ReadDir(filepath.Join("/run", e.Name())); err == nil && e.IsDir() {
				m[e.Name()] = len(sub)
			}
		}
		return m
	}
	held := contents()
	if err := Setup([]string{dir}); err != nil {
		fmt.Fprintln(os.Stderr, "Setup:", err)
		return 1
	}
	after, err := os.ReadDir("/run")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	names := func(es []os.DirEntry) []string {
		var n []string
		for _, e := range es {
			n = append(n, e.Name()+" "+e.Type().String())
		}
		return n
	}
	want := append(names(before), filepath.Base(dir)+" "+os.ModeDir.String())
	slices.Sort(want)
	if got := names(after); !slices.Equal(got, want) {
		fmt.Fprintf(os.Stderr, "/run after Setup:\n%v\nwant\n%v\n", got, want)
		return 1
	}
	if got := contents(); !reflect.DeepEqual(got, held) {
		fmt.Fprintf(os.Stderr, "entries of /run's directories after Setup:\n%v\nbefore\n%v\n", got, held)
		return 1
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v %v, want an empty directory\n", dir, entries, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getpid() != 1 || InChild() {
		fmt.Fprintf(os.Stderr, "pid %d, %s=%q; want pid 1 and the variable gone\n", os.Getpid(), envChild, os.Getenv(envChild))
		return 1
	}
	return 0
}
