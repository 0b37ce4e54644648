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
	cmd := exec.Command(natlab, "ui", "--tour", "--listen", "127.0.0.1:0", "--token", tok)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lab := ""
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if lab != "" {
			run(t, "down", lab)
		}
	}()
	lines := bufio.NewScanner(stdout)
	url := pageURL(lines)
	if !strings.HasSuffix(url, "/?token="+tok) {
		t.Fatalf("natlab ui --tour printed no URL with the token; stderr %q", stderr.String())
	}
	var rest bytes.Buffer
	copied := make(chan struct{})
	go func() {
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		io.Copy(io.Discard, stdout)
		close(copied)
	}()
	base := strings.TrimSuffix(url, "/?token="+tok)
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
