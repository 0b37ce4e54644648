package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// runIn runs natlab in dir, as a user does outside a checkout.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(natlab, args...)
	cmd.Dir = dir
	return runCmd(t, cmd)
}

// The paths people are told to type (natlab up scenarios/symmetric.yaml)
// work anywhere: where no such file is, a base name that is a built-in
// scenario is that built-in, and natlab says so in one line on stderr. So
// does a directory named like a built-in.
func TestBuiltinForAMissingPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "full-cone"), 0o755); err != nil {
		t.Fatal(err)
	}
	for arg, note := range map[string]string{
		"scenario/symmetric.yaml":  "natlab: scenario/symmetric.yaml: no such file; using the built-in scenario symmetric\n",
		"scenarios/symmetric.yaml": "natlab: scenarios/symmetric.yaml: no such file; using the built-in scenario symmetric\n",
		"symmetric.yml":            "natlab: symmetric.yml: no such file; using the built-in scenario symmetric\n",
		"full-cone":                "natlab: full-cone is a directory, not a scenario file; using the built-in scenario full-cone\n",
		"./full-cone/":             "natlab: ./full-cone/ is a directory, not a scenario file; using the built-in scenario full-cone\n",
		"symmetric":                "",
		"/nowhere/hairpin.yaml":    "natlab: /nowhere/hairpin.yaml: no such file; using the built-in scenario hairpin\n",
	} {
		r := runIn(t, dir, "validate", arg)
		if r.code != 0 || r.stderr != note || !strings.Contains(r.stdout, "(built in)") {
			t.Errorf("validate %s: exit %d\nstdout %q\nstderr %q, want %q", arg, r.code, r.stdout, r.stderr, note)
		}
	}
	// A name that is nothing is still an error, with a did you mean
	// where a built-in is close.
	r := runIn(t, dir, "validate", "symetric")
	if r.code != 2 || !strings.Contains(r.stderr, "no such file, and no built-in scenario") || !strings.Contains(r.stderr, "did you mean symmetric?") {
		t.Errorf("validate symetric: exit %d, %q", r.code, r.stderr)
	}
	r = runIn(t, dir, "validate", "nothing-like-it.yaml")
	if r.code != 2 || strings.Contains(r.stderr, "did you mean") {
		t.Errorf("validate nothing-like-it.yaml: exit %d, %q", r.code, r.stderr)
	}
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	r = runIn(t, dir, "up", "scenario/symmetric.yaml", "--name", name)
	if r.code != 0 || !strings.Contains(r.stdout, "lab "+name+" is up") || r.stderr != "natlab: scenario/symmetric.yaml: no such file; using the built-in scenario symmetric\n" {
		t.Errorf("up scenario/symmetric.yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A LAN written with host bits is read as the LAN and the nat's address
// on it, and natlab says so at the value's file, line and column.
func TestLANWithHostBitsIsNoted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lan.yaml")
	os.WriteFile(file, []byte("nodes:\n  home: {kind: nat, type: full-cone, lan: 192.168.1.77/24}\n  pc: {kind: host, behind: home}\n"), 0o644)
	r := run(t, "validate", file)
	want := file + ":2:43: warning: nodes.home.lan: 192.168.1.77/24 has host bits set, so natlab reads it as LAN 192.168.1.0/24 with the nat on 192.168.1.77"
	if r.code != 0 || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("validate: exit %d\nstderr %q\nwant   %q...", r.code, r.stderr, want)
	}
}

// A lab name one typo away from a lab that is up gets a did you mean,
// from every command that takes a lab; down of it changes nothing and
// exits 2, while down of a lab that is not up and like no other stays a
// successful no-op.
func TestMistypedLabName(t *testing.T) {
	testutil.RequireRoot(t)
	base := testutil.UniqueName(t)
	name, typo := base+"-symmetric", base+"-symetric"
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"status", typo},
		{"exec", typo, "alice", "--", "true"},
		{"table", typo, "nat-a"},
		{"trace", typo, "nat-a", "--count", "1"},
		{"classify", typo, "alice"},
		{"rules", typo, "nat-a"},
		{"graph", typo},
		{"ui", typo},
		{"down", typo},
	} {
		r := run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "did you mean "+name+"?") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("natlab %s: exit %d, stderr %q; want exit 2 and one line with did you mean %s?", strings.Join(args, " "), r.code, r.stderr, name)
		}
	}
	if r := run(t, "status", name); r.code != 0 {
		t.Errorf("down %s took %s down: status exit %d", typo, name, r.code)
	}
	other := testutil.UniqueName(t)
	if r := run(t, "down", other); r.code != 0 || !strings.Contains(r.stdout, "lab "+other+" is not up") || strings.Contains(r.stdout+r.stderr, "did you mean") {
		t.Errorf("down %s (not up, like no lab): exit %d\n%s%s", other, r.code, r.stdout, r.stderr)
	}
}

// natlab run A B C runs them in the order given; only shards, which
// must agree on one list, sort it.
func TestRunKeepsTheOrderGiven(t *testing.T) {
	testutil.RequireRoot(t)
	dir, base := t.TempDir(), testutil.UniqueName(t)
	var files, labs []string
	for _, suffix := range []string{"c", "a", "b"} {
		lab := base + "-" + suffix
		file := filepath.Join(dir, lab+".yaml")
		os.WriteFile(file, []byte("name: "+lab+"\nnodes:\n  h: {kind: host}\nsteps:\n  - exec: {node: h, command: \"true\"}\n"), 0o644)
		files, labs = append(files, file), append(labs, lab)
		t.Cleanup(func() { run(t, "down", lab) })
	}
	r := run(t, append([]string{"run"}, files...)...)
	var order []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if rest, ok := strings.CutPrefix(l, "== "); ok {
			order = append(order, rest[strings.Index(rest, " ")+1:])
		}
	}
	if r.code != 0 || strings.Join(order, " ") != strings.Join(labs, " ") {
		t.Errorf("run %v: exit %d, ran %v, want %v\n%s%s", labs, r.code, order, labs, r.stdout, r.stderr)
	}
}

// tour --act takes arabic numbers and the act's name, not only roman
// numbers.
func TestTourActByNumberOrName(t *testing.T) {
	if r := run(t, "tour", "--act", "wal"); r.code != 2 || !strings.Contains(r.stderr, "did you mean wall?") {
		t.Errorf("tour --act wal: exit %d, %q", r.code, r.stderr)
	}
	testutil.RequireRoot(t)
	for _, act := range []string{"3", "the wall"} {
		r := run(t, "tour", "--act", act, "--no-pause")
		if r.code != 0 || !strings.Contains(r.stdout, "Act III: The wall") || strings.Contains(r.stdout, "Act II:") || strings.Contains(r.stdout, "Act IV:") {
			t.Errorf("tour --act %q: exit %d\n%s%s", act, r.code, r.stdout, r.stderr)
		}
	}
}

// A NAT-PMP forward's lifetime, and the time table entries have left, are
// written as natlab writes durations (1h, 2m30s), not 3600s or 1h0m0s;
// table --json has empty lists, not null.
func TestForwardDurations(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	r := run(t, "run", "act7-nat-pmp", "--name", name, "--keep")
	if r.code != 0 || !strings.Contains(r.stdout, "to console:25565 for 1h\n") || strings.Contains(r.stdout, "1h0m0s") {
		t.Errorf("run act7-nat-pmp: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "table", name, "home")
	if r.code != 0 || !regexp.MustCompile(`nat-pmp +(1h|59m\d+s)\n`).MatchString(r.stdout) || regexp.MustCompile(`\d{3,}s\b`).MatchString(r.stdout) {
		t.Errorf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "table", name, "home", "--json")
	if r.code != 0 || strings.Contains(r.stdout, "null") || !strings.Contains(r.stdout, `"mappings": [`) {
		t.Errorf("table --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// No word twice in a row ("through the relay relay") where a node's name
// is the word for what it is.
func TestNoDoubledWords(t *testing.T) {
	testutil.RequireRoot(t)
	r := run(t, "run", "act7-reverse-tunnel", "--name", testutil.UniqueName(t))
	for _, line := range strings.Split(r.stdout, "\n") {
		words := strings.Fields(line)
		for i := 1; i < len(words); i++ {
			a, b := strings.TrimRight(words[i-1], ",.;:"), strings.TrimRight(words[i], ",.;:")
			if strings.EqualFold(a, b) && strings.Trim(a, "abcdefghijklmnopqrstuvwxyz") == "" && a != "" {
				t.Errorf("%q twice in %q", a, line)
			}
		}
	}
	if r.code != 0 {
		t.Errorf("run act7-reverse-tunnel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The tour fits its lines to the terminal: 80 columns when its output is
// not one.
func TestTourWrapsLines(t *testing.T) {
	testutil.RequireRoot(t)
	r := run(t, "tour", "--act", "I", "--no-pause")
	if r.code != 0 || !strings.Contains(r.stdout, "Act I: The address problem") {
		t.Fatalf("tour --act I: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	escape := regexp.MustCompile("\033\\[[0-9;]*[a-zA-Z]")
	for _, l := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(escape.ReplaceAllString(l, ""))); n > 80 {
			t.Errorf("a line of %d columns: %q", n, l)
		}
	}
}
