package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// The README starts with the two commands, then says how natlab gets on
// the PATH that every "sudo natlab ..." hint assumes; make install puts it
// in $(DESTDIR)$(PREFIX)/bin, /usr/local/bin unless told otherwise.
func TestInstall(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	top, _, _ := strings.Cut(string(readme), "\n## ")
	start := "# natlab\n\n```sh\nsudo make demo "
	if !strings.HasPrefix(top, start) || !strings.Contains(top, "\nsudo make test ") {
		t.Errorf("the README does not start with sudo make demo and sudo make test:\n%.200s", top)
	}
	if !strings.Contains(top, "sudo make install") {
		t.Errorf("the top of the README does not say make install puts natlab on the PATH")
	}

	mk := testutil.RequireTool(t, "make")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "/usr/local/bin/natlab"},
		{[]string{"PREFIX=/opt/natlab"}, "/opt/natlab/bin/natlab"},
		{[]string{"DESTDIR=/tmp/stage", "PREFIX=/usr"}, "/tmp/stage/usr/bin/natlab"},
	} {
		// -n: print what it would do; -o build: without building.
		cmd := exec.Command(mk, append([]string{"--no-print-directory", "-n", "-o", "build", "install"}, tc.args...)...)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "install -m 0755 bin/natlab '"+tc.want+"'") {
			t.Errorf("make install %v: %v\n%s\nwant it to install bin/natlab as %s", tc.args, err, out, tc.want)
		}
	}
}
