package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/cli"
)

// Every command natlab shows gets a page, with its synopsis and examples,
// and man renders them without warnings.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() || c.Name() == "help" {
			return
		}
		page := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			t.Errorf("no man page for %s: %v", c.CommandPath(), err)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.Commands())
	for _, p := range []string{"natlab.1", "natlab-up.1", "natlab-completion-bash.1"} {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("no man page: %v", err)
			continue
		}
		page := string(data)
		if !strings.HasPrefix(page, ".nh\n.TH ") || !strings.Contains(page, "\n.SH EXAMPLE\n") || !strings.Contains(page, "\n.SH SYNOPSIS\n") {
			t.Errorf("%s lacks its header, synopsis or examples:\n%.400s", p, page)
		}
	}
	if man, err := exec.LookPath("man"); err == nil {
		out, err := exec.Command(man, "--warnings", "-l", "-P", "cat", filepath.Join(dir, "natlab-up.1")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "natlab up") || strings.Contains(string(out), "warning") {
			t.Errorf("man natlab-up.1: %v\n%s", err, out)
		}
	}
}
