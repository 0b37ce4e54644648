package cli_test

import (
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"

	"github.com/natlab/natlab/internal/testutil"
)

// tourLab is the lab of the tour's act I; a second tour at once gets
// tourLab-2, whose namespaces leftovers(tourLab) finds too.
const tourLab = "tour-1-address-problem"

// Ctrl-C in the terminal stops the tour at once and takes its lab down:
// at the prompt before its lab is built, at a prompt of a step with the
// lab up, and while it runs its steps. It used to print ^C and wait at
// the prompt, its lab up, until the next Enter ran one more step.
func TestTourStopsAtCtrlC(t *testing.T) {
	testutil.RequireRoot(t)
	for _, c := range []struct {
		name    string
		args    []string
		answers int    // Enters typed before Ctrl-C
		until   string // what the tour printed when Ctrl-C comes
		n       int    // how many times
	}{
		{"at the prompt before the build", nil, 0, "[Enter: build", 1},
		{"at a step's prompt", nil, 1, "[Enter: ", 2},
		{"running its steps", []string{"--no-pause"}, 0, "phone ", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { run(t, "down", tourLab); run(t, "down", tourLab+"-2") })
			cmd := exec.Command(natlab, append([]string{"tour", "--act", "I"}, c.args...)...)
			cmd.Dir = repoRoot(t)
			// The pseudo-terminal is the tour's controlling terminal, and
			// the tour its foreground process group: Ctrl-C typed there
			// is the kernel's SIGINT to it, as at a real terminal.
			term, err := pty.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			p := &natlabProc{cmd: cmd, done: make(chan struct{})}
			read := make(chan struct{})
			go func() {
				io.Copy(&p.stdout, term) // until the tour has exited and term is closed
				close(read)
			}()
			go func() {
				cmd.Wait()
				close(p.done)
			}()
			t.Cleanup(func() {
				if p.running() {
					cmd.Process.Kill()
					<-p.done
				}
				term.Close()
				<-read
			})
			if c.answers > 0 {
				p.waitFor(t, "[Enter: build", 1)
				term.Write([]byte(strings.Repeat("\r", c.answers)))
			}
			p.waitFor(t, c.until, c.n)
			if !p.running() {
				t.Skipf("the act ended before the test typed Ctrl-C:\n%s", p.stdout.String())
			}
			term.Write([]byte{0x03}) // Ctrl-C
			code := p.exit(t, "Ctrl-C")
			if code >= 0 && code != 128+int(syscall.SIGINT) {
				t.Errorf("tour after Ctrl-C: exit %d, want 130\n%s", code, p.stdout.String())
			}
			noLeftovers(t, "Ctrl-C in the tour", tourLab)
		})
	}
}
