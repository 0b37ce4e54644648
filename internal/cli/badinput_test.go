package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// Every malformed scenario of the corpus, and every kind of path that is
// not a scenario file, gets one short error naming the file (and the line
// and column where there is one) and exit code 2, from validate and from
// up, and up changes nothing.
func TestBadInputCorpus(t *testing.T) {
	corpus, _ := filepath.Glob(filepath.Join(repoRoot(t), "topology/testdata/invalid/*.yaml"))
	if len(corpus) < 50 {
		t.Fatalf("the corpus has only %d files", len(corpus))
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	os.WriteFile(huge, []byte(strings.Repeat("# natlab\n", 200_000)), 0o644)
	longName := filepath.Join(dir, strings.Repeat("n", 250)+".yaml")
	os.WriteFile(longName, []byte("nodes:\n  h: {kind: host}\n"), 0o644)
	special := map[string]string{
		dir:                                   "is a directory",
		filepath.Join(dir, "missing.yaml"):    "no such file",
		fifo:                                  "not a regular file",
		"/dev/zero":                           "not a regular file",
		huge:                                  "at most 1 MiB",
		longName:                              "lab name",
		filepath.Join(dir, "nested", "x.yml"): "no such file",
	}
	// Corpus files: the .err golden next to each says what the error is;
	// here it is the command line's part: exit code, file, size.
	hasPosition := regexp.MustCompile(`:\d+:\d+: `)
	root := os.Geteuid() == 0 // up is checked too, where it may run
	// maxLines is one per problem in the file: natlab reports them all.
	check := func(file, want string, maxLines int, args ...string) {
		t.Helper()
		r := run(t, append(args, file)...)
		msg := strings.TrimSpace(r.stderr)
		lines := strings.Split(msg, "\n")
		switch {
		case r.code != 2:
			t.Errorf("natlab %s %s: exit %d, want 2\n%s", args[0], file, r.code, r.stderr)
		case !strings.Contains(msg, file) && !strings.Contains(msg, filepath.Base(file)):
			t.Errorf("natlab %s %s: the error does not name the file:\n%s", args[0], file, msg)
		case want != "" && !strings.Contains(msg, want):
			t.Errorf("natlab %s %s: want %q in the error:\n%s", args[0], file, want, msg)
		case len(lines) > maxLines:
			t.Errorf("natlab %s %s: %d lines of error; want at most %d, one per problem:\n%s", args[0], file, len(lines), maxLines, msg)
		}
		for _, l := range lines {
			// Long paths and names are repeated as they are; the rest
			// of a line must be short.
			l = strings.ReplaceAll(l, file, "FILE")
			l = strings.ReplaceAll(l, strings.TrimSuffix(filepath.Base(file), ".yaml"), "NAME")
			if len(l) > 300 {
				t.Errorf("natlab %s %s: an error line of %d characters: %.120s...", args[0], file, len(l), l)
			}
		}
		if r.stdout != "" {
			t.Errorf("natlab %s %s printed on stdout: %q", args[0], file, r.stdout)
		}
	}
	for _, f := range corpus {
		golden, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
		if err != nil {
			t.Fatal(err)
		}
		problems := strings.Count(strings.TrimSpace(string(golden)), "\n") + 1
		r := run(t, "validate", f)
		check(f, "", problems, "validate")
		// Where the golden error has a line and column, so does the
		// command's.
		if hasPosition.Match(golden) && !hasPosition.MatchString(r.stderr) {
			t.Errorf("validate %s: no line:column in\n%s", f, r.stderr)
		}
		if root {
			check(f, "", problems, "up")
		}
	}
	for f, want := range special {
		check(f, want, 1, "validate")
		if root {
			check(f, want, 1, "up")
		}
	}
	if !root {
		return
	}
	// Nothing created: up of every bad input again, in a mount namespace
	// of its own whose /run/netns and /run/natlab start empty, so that
	// other tests' labs cannot hide or fake a leftover.
	script := `set -u
mount -t tmpfs natlab-test /run/netns && mount -t tmpfs natlab-test /run/natlab || exit 99
for f in "$@"; do
	"$NATLAB" up "$f" >/dev/null 2>&1
	if [ $? -ne 2 ]; then echo "up $f: exit code not 2"; fi
	left=$(ls -A /run/netns /run/natlab | grep -v '^/run\|^$')
	if [ -n "$left" ]; then echo "up $f left: $left"; rm -rf /run/natlab/* /run/netns/*; fi
done
`
	for _, dir := range []string{"/run/netns", "/run/natlab"} {
		if err := os.MkdirAll(dir, 0o755); err != nil { // mount points
			t.Fatal(err)
		}
	}
	inputs := append([]string{}, corpus...)
	for f := range special {
		inputs = append(inputs, f)
	}
	cmd := exec.Command(testutil.RequireTool(t, "unshare"), append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, inputs...)...)
	cmd.Env = append(os.Environ(), "NATLAB="+natlab)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("%v\n%s", err, out)
	}
}

// A lab larger than the kernel can build is refused before anything is
// built: 4999 hosts behind one NAT passed validate, and up failed after
// 12 s when the LAN's bridge had no port left for the 1024th.
func TestLabTooLargeForTheKernel(t *testing.T) {
	name := testutil.UniqueName(t)
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnodes:\n  nat-a: {kind: nat, lan: 10.0.0.0/16}\n", name)
	for i := 1; i <= 4999; i++ {
		fmt.Fprintf(&b, "  h%d: {kind: host, behind: nat-a}\n", i)
	}
	file := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// h1024 is on line 1027; its behind: value at column 31.
	want := file + ":1027:31: nodes.h1024.behind: 4999 nodes are behind nat-a, and a LAN holds at most 1023"
	commands := [][]string{{"validate", file}}
	if os.Geteuid() == 0 {
		commands = append(commands, []string{"up", file})
	}
	for _, args := range commands {
		r := run(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("natlab %s: exit %d\n%s\nwant exit 2 and one line starting %q", args[0], r.code, r.stderr, want)
		}
		if left := leftovers(t, name); len(left) > 0 {
			t.Errorf("natlab %s left %v", args[0], left)
		}
	}
}

// Files of the kernel's file systems are refused before natlab reads
// them, with exit 2 and the reason: `natlab validate /proc/kmsg` waited
// for ever on the kernel's log (taking it from syslog) and ignored
// SIGTERM. The wait for it to exit is bounded; a hang fails the test.
func TestKernelFilesAreNotRead(t *testing.T) {
	for _, path := range []string{"/proc/kmsg", "/proc/self/status", "/sys/kernel/uevent_seqnum"} {
		if _, err := os.Lstat(path); err != nil {
			continue // not in this container
		}
		for _, cmd := range []string{"validate", "up"} {
			p := startNatlab(t, nil, nil, cmd, path)
			code := p.exit(t, "it was started")
			if code >= 0 && (code != 2 || !strings.Contains(p.stderr.String(), path+": is in the kernel's")) {
				t.Errorf("natlab %s %s: exit %d, want 2 and that it is the kernel's file\n%s", cmd, path, code, p.stderr.String())
			}
		}
	}
}
