package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/rootless"
	"github.com/natlab/natlab/internal/testutil"
)

// nobody is the unprivileged user the rootless tests run natlab as.
const nobodyID = 65534

// unprivileged runs natlab as nobody: from a copy of the binary in a
// directory nobody may enter (the one TestMain builds is private to
// root), in a working directory nobody may write reports to.
type unprivileged struct {
	setpriv []string
	bin     string
	work    string
}

// asNobody skips the test unless it runs as root (to become nobody) on a
// kernel that lets nobody create user namespaces.
func asNobody(t *testing.T) *unprivileged {
	t.Helper()
	testutil.RequireRoot(t)
	setpriv := testutil.RequireTool(t, "setpriv")
	if err := rootless.Check(rootless.ReadSysctl); err != nil {
		t.Skipf("rootless mode cannot work on this kernel: %v", err)
	}
	dir, err := os.MkdirTemp("", "natlab-rootless-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	work := filepath.Join(dir, "work")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, nobodyID, nobodyID); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "natlab")
	if err := copyExecutable(natlab, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(nobodyID)
	return &unprivileged{
		setpriv: []string{setpriv, "--reuid=" + id, "--regid=" + id, "--clear-groups"},
		bin:     bin,
		work:    work,
	}
}

func copyExecutable(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// command is natlab with args, as nobody, in the working directory.
func (u *unprivileged) command(args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, u.setpriv...), u.bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = u.work
	return cmd
}

func (u *unprivileged) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, u.command(args...))
}

// rootlessTraces lists what lab name has in the host's /run/netns and
// /run/natlab: namespaces, records, locks, logs.
func rootlessTraces(name string) []string {
	ns, _ := filepath.Glob("/run/netns/natlab-" + name + "-*")
	state, _ := filepath.Glob("/run/natlab/" + name + ".*")
	return append(ns, state...)
}

// watchRootlessTraces looks for traces of lab name on the host until the returned
// function is called, which returns everything it saw: a rootless run
// that wrote to the host and cleaned up after itself is caught too.
func watchRootlessTraces(name string) func() []string {
	stop := make(chan struct{})
	var seen []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			seen = append(seen, rootlessTraces(name)...)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return func() []string {
		close(stop)
		wg.Wait()
		return append(seen, rootlessTraces(name)...)
	}
}

func TestRootlessRun(t *testing.T) {
	u := asNobody(t)
	name := testutil.UniqueName(t)
	seen := watchRootlessTraces(name)
	r := u.run(t, "run", "full-cone", "--name", name, "--json", "report.json")
	if traces := seen(); len(traces) > 0 {
		t.Errorf("a rootless run wrote to the host: %v", traces)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "3 passed, 0 failed") {
		t.Fatalf("natlab run full-cone as nobody: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	report := filepath.Join(u.work, "report.json")
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Passed bool
		Steps  []struct {
			Name string
			Pass bool
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil || !rep.Passed || len(rep.Steps) != 3 {
		t.Errorf("report: %v %+v", err, rep)
	}
	for _, s := range rep.Steps {
		if !s.Pass {
			t.Errorf("step %s failed", s.Name)
		}
	}
	// Files natlab writes belong to the user who ran it, not to the root
	// of its user namespace.
	if st, err := os.Stat(report); err != nil || st.Sys().(*syscall.Stat_t).Uid != nobodyID {
		t.Errorf("the report is not nobody's: %v %+v", err, st.Sys())
	}
}

// Killing natlab outright takes the lab with it: the services, and the
// natlab that ran inside the user namespace, are gone too.
func TestRootlessRunKilledLeavesNothing(t *testing.T) {
	u := asNobody(t)
	name := testutil.UniqueName(t)
	file := filepath.Join(u.work, "slow.yaml")
	scenario := "nodes:\n  stun: {kind: server, services: [stun]}\n  nat: {kind: nat, type: full-cone}\n  alice: {kind: host, behind: nat}\n" +
		"steps:\n  - stun: {from: alice}\n  - wait: 1m\n"
	if err := os.WriteFile(file, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := u.command("run", file, "--name", name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a buffer: Wait would wait for every holder of a pipe
	// to close it, which a natlab that outlived the killed one would not.
	stderrFile, err := os.Create(filepath.Join(u.work, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderrFile.Close()
	stderr := func() string {
		data, _ := os.ReadFile(stderrFile.Name())
		return string(data)
	}
	cmd.Stderr = stderrFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, pid := range labProcesses(name) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	up := make(chan bool, 1)
	go func() {
		var out bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			out.Write(buf[:n])
			if strings.Contains(out.String(), "PASS  1/2") {
				up <- true
				io.Copy(io.Discard, stdout)
				return
			}
			if err != nil {
				up <- false
				return
			}
		}
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatalf("natlab run ended before its first step passed: %s", stderr())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no first step after 30s: %s", stderr())
	}
	inside := labProcesses(name)
	if len(inside) < 2 {
		t.Fatalf("want natlab and the stun service inside the lab, found pids %v", inside)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for left := labProcesses(name); len(left) > 0; left = labProcesses(name) {
		if time.Now().After(deadline) {
			t.Fatalf("5s after natlab was killed, processes of lab %s live on: %v", name, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// labProcesses lists the processes whose command line names lab: the
// natlab running it in its user namespace and the lab's services
// ("natlab-service LAB/NODE").
func labProcesses(lab string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.Contains(args[0], "natlab-service "+lab+"/") || (strings.HasSuffix(args[0], "natlab") && strings.Contains(string(cmdline), "\x00"+lab+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// What cannot work rootless says so in one line; what needs no root
// still needs none.
func TestRootlessRefusals(t *testing.T) {
	u := asNobody(t)
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"up", "full-cone"}, 1, []string{"natlab up needs root", "natlab run"}},
		{[]string{"down", "--all"}, 1, []string{"natlab down needs root"}},
		{[]string{"run", "full-cone", "--keep"}, 2, []string{"--keep needs root"}},
	} {
		r := u.run(t, c.args...)
		one := strings.Count(strings.TrimSpace(r.stderr), "\n") == 0
		ok := r.code == c.code && one
		for _, w := range c.want {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Errorf("natlab %v as nobody: exit %d, stderr %q; want exit %d and one line with %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	for _, args := range [][]string{{"validate", "full-cone"}, {"list"}, {"graph", "full-cone"}} {
		if r := u.run(t, args...); r.code != 0 {
			t.Errorf("natlab %v as nobody: exit %d, %s", args, r.code, r.stderr)
		}
	}
}

// Root may ask for rootless mode too, and gets the same isolation.
func TestRootlessFlagAsRoot(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	seen := watchRootlessTraces(name)
	r := run(t, "run", "full-cone", "--name", name, "--rootless")
	if traces := seen(); len(traces) > 0 {
		t.Errorf("natlab run --rootless wrote to the host: %v", traces)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "3 passed, 0 failed") {
		t.Errorf("natlab run --rootless as root: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
