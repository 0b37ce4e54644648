package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/testutil"
)

// stopBound is how long a natlab that was told to stop may take to take
// its lab down and exit before the test calls it hung. It bounds the
// wait; it asserts no time.
const stopBound = 90 * time.Second

// slowScenario is a lab with a service process whose run passes its first
// step at once and then waits: a run that is stopped is in the middle.
const slowScenario = `name: slow
nodes:
  srv:   {kind: server, services: [stun]}
  home:  {kind: nat, type: symmetric}
  alice: {kind: host, behind: home}
steps:
  - wait: 1ms
  - wait: 5m
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// natlabProc is a natlab process that a test stops.
type natlabProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
}

// startNatlab starts natlab ARGS. Its stdout is stdout if not nil, else
// kept; its stdin is stdin if not nil, else /dev/null.
func startNatlab(t *testing.T, stdin, stdout *os.File, args ...string) *natlabProc {
	t.Helper()
	p := &natlabProc{cmd: exec.Command(natlab, args...), done: make(chan struct{})}
	p.cmd.Dir = repoRoot(t)
	p.cmd.Stderr = &p.stderr
	p.cmd.Stdout = &p.stdout
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *natlabProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitFor waits until what the process printed on stdout or stderr
// holds want n times, or it exits, or stopBound passes.
func (p *natlabProc) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(stopBound)
	for strings.Count(p.stdout.String()+p.stderr.String(), want) < n {
		select {
		case <-p.done:
			t.Fatalf("natlab %v exited before it printed %q:\n%s%s", p.cmd.Args[1:], want, p.stdout.String(), p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("natlab %v did not print %q:\n%s%s", p.cmd.Args[1:], want, p.stdout.String(), p.stderr.String())
		}
	}
}

// exit waits for the process to exit, at most stopBound, and returns its
// exit code, or -1 and a failed test if it did not exit, or a signal
// killed it.
func (p *natlabProc) exit(t *testing.T, why string) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(stopBound):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("natlab %v had not exited %v after %s; killed it. It printed:\n%s%s", p.cmd.Args[1:], stopBound, why, p.stdout.String(), p.stderr.String())
		return -1
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Errorf("natlab %v died of %v after %s, without taking its lab down. It printed:\n%s%s", p.cmd.Args[1:], ws.Signal(), why, p.stdout.String(), p.stderr.String())
		return -1
	}
	return ws.ExitStatus()
}

// noLeftovers fails the test if anything of the labs is left, and then
// removes it.
func noLeftovers(t *testing.T, why string, labs ...string) {
	t.Helper()
	for _, name := range labs {
		if left := leftovers(t, name); len(left) > 0 {
			t.Errorf("after %s, lab %s left behind:\n%s", why, name, strings.Join(left, "\n"))
			run(t, "down", name)
		}
	}
}

// SIGTERM and SIGHUP (a closed terminal, a dropped ssh session) stop
// every command that runs for long, as Ctrl-C does: at once, and with
// nothing of its lab left, namespaces, mounts, records or services.
func TestStopSignalsEndEveryCommand(t *testing.T) {
	testutil.RequireRoot(t)
	slow := writeScenario(t, slowScenario)
	var big strings.Builder
	big.WriteString("nodes:\n  srv: {kind: server, services: [stun]}\n  nat: {kind: nat, type: full-cone}\n")
	for i := range 60 {
		fmt.Fprintf(&big, "  h%d: {kind: host, behind: nat}\n", i)
	}
	bigFile := writeScenario(t, big.String())

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		// Each case starts its command, waits until it is where it is to
		// be stopped, and says which labs must be gone and the exit code.
		for _, c := range []struct {
			name  string
			start func(t *testing.T, name string) (p *natlabProc, labs []string)
			code  int
		}{
			{"up, half way", func(t *testing.T, name string) (*natlabProc, []string) {
				p := startNatlab(t, nil, nil, "up", bigFile, "--name", name)
				// The record comes first: once it is there, up is building.
				for p.running() && record(name) == nil {
					time.Sleep(2 * time.Millisecond)
				}
				return p, []string{name}
			}, 128 + int(sig)},
			{"run, in a step", func(t *testing.T, name string) (*natlabProc, []string) {
				p := startNatlab(t, nil, nil, "run", slow, "--name", name)
				p.waitFor(t, " 1/2 ", 1)
				return p, []string{name}
			}, 128 + int(sig)},
			{"ui, serving", func(t *testing.T, name string) (*natlabProc, []string) {
				p := startNatlab(t, nil, nil, "ui", slow, "--name", name, "--listen", "127.0.0.1:0")
				p.waitFor(t, "Ctrl-C stops", 1)
				return p, []string{name}
			}, 0},
			{"tour, at a prompt", func(t *testing.T, _ string) (*natlabProc, []string) {
				// Its stdin stays open and says nothing: the tour waits.
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close(); w.Close() })
				p := startNatlab(t, r, nil, "tour", "--act", "I")
				t.Cleanup(func() { run(t, "down", tourLab); run(t, "down", tourLab+"-2") })
				p.waitFor(t, "[Enter: build", 1)
				w.Write([]byte("\n"))
				p.waitFor(t, "[Enter: ", 2) // its lab is up, its first step waits
				return p, []string{tourLab}
			}, 128 + int(sig)},
			{"trace", func(t *testing.T, name string) (*natlabProc, []string) {
				if r := run(t, "up", slow, "--name", name); r.code != 0 {
					t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
				}
				t.Cleanup(func() { run(t, "down", name) })
				p := startNatlab(t, nil, nil, "trace", name, "home")
				p.waitFor(t, "Ctrl-C stops", 1)
				return p, nil
			}, 0},
			{"table --watch", func(t *testing.T, name string) (*natlabProc, []string) {
				if r := run(t, "up", slow, "--name", name); r.code != 0 {
					t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
				}
				t.Cleanup(func() { run(t, "down", name) })
				p := startNatlab(t, nil, nil, "table", name, "home", "--watch")
				p.waitFor(t, "\n", 1)
				return p, nil
			}, 0},
		} {
			t.Run(fmt.Sprintf("%s/%v", c.name, unix.SignalName(sig)), func(t *testing.T) {
				name := testutil.UniqueName(t)
				t.Cleanup(func() { run(t, "down", name) })
				p, labs := c.start(t, name)
				if !p.running() {
					t.Fatalf("natlab %v ended before the test could stop it:\n%s%s", p.cmd.Args[1:], p.stdout.String(), p.stderr.String())
				}
				p.cmd.Process.Signal(sig)
				why := unix.SignalName(sig)
				if code := p.exit(t, why); code >= 0 && code != c.code {
					t.Errorf("natlab %v after %s: exit %d, want %d\n%s%s", p.cmd.Args[1:], why, code, c.code, p.stdout.String(), p.stderr.String())
				}
				noLeftovers(t, why, labs...)
			})
		}
	}
}

// `natlab run FILE | head -1` and `natlab ui FILE | head -1`: once the
// reader of stdout has gone, natlab takes its lab down, says why on
// stderr and exits non-zero, instead of dying of SIGPIPE with the lab up.
func TestClosedOutputTakesTheLabDown(t *testing.T) {
	testutil.RequireRoot(t)
	slow := writeScenario(t, slowScenario)
	for _, args := range [][]string{{"run", slow}, {"ui", slow, "--listen", "127.0.0.1:0"}} {
		t.Run(args[0], func(t *testing.T) {
			name := testutil.UniqueName(t)
			t.Cleanup(func() { run(t, "down", name) })
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			p := startNatlab(t, nil, w, append(args, "--name", name)...)
			w.Close()
			// head -1: one line, then gone.
			first, err := bufio.NewReader(r).ReadString('\n')
			r.Close()
			if err != nil || !strings.Contains(first, "lab "+name+" is up") {
				t.Fatalf("first line %q, %v; stderr:\n%s", first, err, p.stderr.String())
			}
			code := p.exit(t, "its stdout was closed")
			if code == 0 || !strings.Contains(p.stderr.String(), "broken pipe") {
				t.Errorf("natlab %s | head -1: exit %d, stderr %q; want non-zero and a message that the output could not be written", args[0], code, p.stderr.String())
			}
			noLeftovers(t, "its stdout was closed", name)
		})
	}
}

// Output that cannot be written fails the command: `natlab run FILE
// >/dev/full` exited 0 with all its output lost. It stops, takes its lab
// down, and says on stderr what failed.
func TestOutputThatCannotBeWritten(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	check := func(t *testing.T, p *natlabProc, what string) {
		t.Helper()
		code := p.exit(t, "writing to /dev/full")
		if code == 0 || !strings.Contains(p.stderr.String(), "no space left on device") {
			t.Errorf("natlab %s >/dev/full: exit %d, stderr %q; want non-zero and what failed", what, code, p.stderr.String())
		}
	}
	check(t, startNatlab(t, nil, full, "list"), "list")

	testutil.RequireRoot(t)
	file := writeScenario(t, strings.Replace(slowScenario, "  - wait: 5m\n", "", 1))
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	check(t, startNatlab(t, nil, full, "run", file, "--name", name), "run")
	noLeftovers(t, "run >/dev/full", name)
	// A report file that cannot be written is said, by name.
	p := startNatlab(t, nil, nil, "run", file, "--name", name, "--json", "/dev/full")
	if code := p.exit(t, "writing its report"); code == 0 || !strings.Contains(p.stderr.String(), "writing /dev/full: ") {
		t.Errorf("natlab run --json /dev/full: exit %d, stderr %q; want non-zero and the file named", code, p.stderr.String())
	}
	noLeftovers(t, "run --json /dev/full", name)
}
