package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// natlab ui --tour serves the story; entering an act brings its lab up,
// and Ctrl-C stops the page and takes that lab down, leaving nothing.
func TestUITourCommand(t *testing.T) {
	if r := run(t, "ui", "--tour", "act1-address-problem"); r.code != 2 || !strings.Contains(r.stderr, "--tour brings up each act's own lab") {
		t.Errorf("natlab ui --tour with a scenario: exit %d, %q; want a usage error", r.code, r.stderr)
	}
	testutil.RequireRoot(t)
	const tok = "a-token-of-the-tour"
	ui := startUI(t, tok, "--tour")
	cmd, stderr, rest, copied, base := ui.cmd, &ui.stderr, &ui.rest, ui.copied, ui.base
	lab := ""
	defer func() {
		if lab != "" {
			run(t, "down", lab)
		}
	}()
	req, _ := http.NewRequest("POST", base+"/api/tour", strings.NewReader(`{"act": 0}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Natlab-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Lab string `json:"lab"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	lab = v.Lab
	if resp.StatusCode != 200 || !strings.HasPrefix(lab, "tour-1-address-problem") {
		t.Fatalf("entering act I: %s, lab %q", resp.Status, lab)
	}
	if left, _ := filepath.Glob("/run/netns/natlab-" + lab + "-*"); len(left) == 0 {
		t.Fatalf("act I's lab %s has no namespaces", lab)
	}
	cmd.Process.Signal(os.Interrupt)
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Errorf("natlab ui --tour after Ctrl-C: %v; stderr %q", err, stderr.String())
	}
	noLeftovers(t, "Ctrl-C in natlab ui --tour", lab)
	if want := "lab " + lab + " is down\n"; strings.Count(rest.String(), want) != 1 {
		t.Errorf("natlab ui --tour printed after Ctrl-C %q, want one line %q", rest.String(), want)
	}
}

// uiProc is a natlab ui running, started by startUI.
type uiProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	// rest is what it printed after the URL; copied is closed once it
	// has printed all.
	rest   bytes.Buffer
	copied chan struct{}
	// base is the URL without the token.
	base string
}

// startUI starts natlab ui with args, on a free loopback port, with the
// token tok, and waits for the URL it prints; the test ends it if it has
// not.
func startUI(t *testing.T, tok string, args ...string) *uiProc {
	t.Helper()
	p := &uiProc{copied: make(chan struct{})}
	p.cmd = exec.Command(natlab, append(append([]string{"ui"}, args...), "--listen", "127.0.0.1:0", "--token", tok)...)
	stdout, _ := p.cmd.StdoutPipe()
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	url := pageURL(lines)
	if !strings.HasSuffix(url, "/?token="+tok) {
		t.Fatalf("natlab ui %v printed no URL with the token; stderr %q", args, p.stderr.String())
	}
	go func() {
		for lines.Scan() {
			p.rest.WriteString(lines.Text() + "\n")
		}
		io.Copy(io.Discard, stdout)
		close(p.copied)
	}()
	p.base = strings.TrimSuffix(url, "/?token="+tok)
	return p
}
