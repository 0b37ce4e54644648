package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultList(t *testing.T) {
	suites, err := parseList(defaultList)
	if err != nil {
		t.Fatalf("tests.txt: %v", err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range suites {
		// Every package of the list is there and has tests.
		tests, _ := filepath.Glob(filepath.Join(root, s.Pkg, "*_test.go"))
		if len(tests) == 0 {
			t.Errorf("tests.txt: %s has no tests", s.Pkg)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList(`
# a comment
./lab   -skip ^TestSoak$   # why
./natrules -run ^TestKernel -skip Golden
./service/serve
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []suite{{Pkg: "./lab", Skip: "^TestSoak$"}, {Pkg: "./natrules", Run: "^TestKernel", Skip: "Golden"}, {Pkg: "./service/serve"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := got[2].Binary(); got != "serve.test" {
		t.Errorf("binary %q, want what go test -c -o DIR/ writes, serve.test", got)
	}
	if args := strings.Join(got[1].Args(), " "); args != "-test.v -test.count=1 -test.parallel=1 -test.run=^TestKernel -test.skip=Golden" {
		t.Errorf("args %q", args)
	}

	for _, tc := range []struct{ text, want string }{
		{"", "no packages"},
		{"lab", "want a package path relative to the module"},
		{"./", "want a package path"},
		{"./../x", "want a package path"},
		{"./lab/", "want a package path"},
		{"./lab -run", "needs a pattern"},
		{"./lab -v x", `"-v": want -run PATTERN or -skip PATTERN`},
		{"./lab -run a -run b", "-run twice"},
		{"./lab -run (", "error parsing regexp"},
		{"./lab\n./x/lab", "line 2: ./lab and ./x/lab both build lab.test"},
	} {
		if _, err := parseList(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseList(%q): %v, want an error with %q", tc.text, err, tc.want)
		}
	}
}

func TestParseOverride(t *testing.T) {
	got, err := parseOverride("./lab:^TestLink ./trace  ./x:a:b")
	if err != nil {
		t.Fatal(err)
	}
	want := []suite{{Pkg: "./lab", Run: "^TestLink"}, {Pkg: "./trace"}, {Pkg: "./x", Run: "a:b"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	o := options{tests: "./lab:^TestA ./trace", run: "^TestB$"}
	suites, err := o.suites()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range suites {
		if s.Run != "^TestB$" {
			t.Errorf("%s: -run %q, want VM_RUN's", s.Pkg, s.Run)
		}
	}
}

func TestParseShowDepends(t *testing.T) {
	out := `insmod /lib/modules/6.1.0-48-amd64/kernel/lib/libcrc32c.ko
insmod /lib/modules/6.1.0-48-amd64/kernel/net/netfilter/nf_tables.ko
builtin ipv6
insmod /lib/modules/6.1.0-48-amd64/kernel/lib/libcrc32c.ko
insmod /lib/modules/6.1.0-48-amd64/kernel/drivers/net/dummy.ko numdummies=2
`
	got, err := parseShowDepends(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []kmod{
		{Path: "/lib/modules/6.1.0-48-amd64/kernel/lib/libcrc32c.ko"},
		{Path: "/lib/modules/6.1.0-48-amd64/kernel/net/netfilter/nf_tables.ko"},
		{Path: "/lib/modules/6.1.0-48-amd64/kernel/drivers/net/dummy.ko", Args: "numdummies=2"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseShowDepends("modprobe: FATAL: Module x not found\n"); err == nil {
		t.Error("an unknown line was read as a module")
	}
	for file, want := range map[string]string{
		"/x/crc32c-intel.ko":  "crc32c_intel",
		"/x/nf_tables.ko.xz":  "nf_tables",
		"/x/nft_ct.ko.zst":    "nft_ct",
		"sch_netem.ko":        "sch_netem",
		"/x/y/not-a-module.o": "not_a_module.o",
	} {
		if got := moduleName(file); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", file, got, want)
		}
	}
}

// The modules of the list are the ones this kernel's modprobe can
// resolve, where this machine has Debian's kernel: a misspelt name fails
// here rather than in the VM.
func TestModulesResolve(t *testing.T) {
	dirs, _ := filepath.Glob("/lib/modules/*/kernel/net/sched/sch_netem.ko*")
	if len(dirs) == 0 {
		t.Skip("needs the modules of a kernel that builds netem as a module, as Debian's does, under /lib/modules")
	}
	if _, err := exec.LookPath("modprobe"); err != nil {
		t.Skip("needs kmod's modprobe")
	}
	release := filepath.Base(strings.TrimSuffix(dirs[0], "/kernel/net/sched/"+filepath.Base(dirs[0])))
	mods, err := resolveModules("/", release, modules)
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, m := range mods {
		loaded[moduleName(m.Path)] = true
	}
	for _, name := range modules {
		if !loaded[name] {
			// Built into this kernel: modprobe says "builtin", which is
			// fine, but then it is not Debian's.
			t.Logf("%s is built into %s", name, release)
		}
	}
	if !loaded["nf_tables"] || !loaded["sch_netem"] || !loaded["libcrc32c"] {
		t.Errorf("%s: nf_tables, sch_netem and their dependency libcrc32c not all resolved: %v", release, mods)
	}
}

func TestRequireStatic(t *testing.T) {
	// Programs of both kinds, where this machine has them: the test
	// binary itself is static when built as make builds it
	// (CGO_ENABLED=0), busybox-static's busybox is, ls is not.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var static, dynamic []string
	for _, p := range []string{self, "/bin/busybox", "/bin/ls", "/usr/bin/env"} {
		out, err := exec.Command("file", "-L", p).Output()
		switch {
		case err != nil:
		case strings.Contains(string(out), "statically linked"):
			static = append(static, p)
		case strings.Contains(string(out), "dynamically linked"):
			dynamic = append(dynamic, p)
		}
	}
	if len(static) == 0 || len(dynamic) == 0 {
		t.Skipf("needs file(1) and programs of both kinds to compare with (static %v, dynamic %v)", static, dynamic)
	}
	for _, p := range static {
		if err := requireStatic(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range dynamic {
		if err := requireStatic(p); err == nil || !strings.Contains(err.Error(), "linked dynamically") {
			t.Errorf("%s: %v, want it refused", p, err)
		}
	}
	if err := requireStatic("/no/such/file"); err == nil {
		t.Error("a missing file passed")
	}
}

func TestSourcePath(t *testing.T) {
	for root, want := range map[string]string{
		"/work/natlab":     "/work/natlab",
		"/home/a/natlab":   "/home/a/natlab",
		"/tmp/ci/natlab":   "/src/natlab", // the guest's /tmp is a tmpfs
		"/run/user/natlab": "/src/natlab",
		"/tmpfoo/natlab":   "/tmpfoo/natlab",
	} {
		if got := sourcePath(root); got != want {
			t.Errorf("sourcePath(%q) = %q, want %q", root, got, want)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	o := &options{kernel: "/boot/vmlinuz", memMiB: 1024, cpus: 2}
	args := strings.Join(qemuArgs(o, "/tmp/i.cpio"), " ")
	for _, want := range []string{"-accel tcg,thread=single", "-nic none", "-nodefaults", "-no-reboot", "-smp 2", "-m 1024", "-kernel /boot/vmlinuz", "-initrd /tmp/i.cpio", "panic=-1"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu %s: no %q", args, want)
		}
	}
	// The guest shares nothing with the host: no KVM (it hangs on
	// natlab's machines), no network, no disk.
	for _, not := range []string{"kvm", "-netdev", "-drive", "-hda", "-virtfs"} {
		if strings.Contains(args, not) {
			t.Errorf("qemu %s: %q", args, not)
		}
	}
}

func TestRelay(t *testing.T) {
	console := "boot\r\nnatlab-vmtest: run ./lab: x\r\n" +
		"natlab-vmtest othertoken: exit 0\r\n" + // another run's line: not ours
		"natlab-vmtest abc: exit 3\r\nafter"
	var out strings.Builder
	var lines []string
	code, found := relay(strings.NewReader(console), &out, "abc", func(l string) { lines = append(lines, l) })
	if !found || code != 3 {
		t.Errorf("relay: code %d, found %v; want 3, true", code, found)
	}
	if strings.Contains(out.String(), "\r") || !strings.HasSuffix(out.String(), "exit 3\nafter") {
		t.Errorf("relayed %q", out.String())
	}
	if len(lines) != 4 || lines[1] != "natlab-vmtest: run ./lab: x" {
		t.Errorf("lines %q", lines)
	}
	if _, found := relay(strings.NewReader("Kernel panic - not syncing\n"), &out, "abc", func(string) {}); found {
		t.Error("a console without the result line gave a result")
	}
}

func TestResults(t *testing.T) {
	var r results
	for _, l := range strings.Split(`natlab-vmtest: loaded 52 modules
natlab-vmtest: run ./lab -skip ^TestSoak$: /tests/lab.test -test.v
=== RUN   TestA
--- PASS: TestA (0.1s)
=== RUN   TestB
    b_test.go:12: needs nft for a cross-check
--- SKIP: TestB (0.0s)
=== RUN   TestC
=== RUN   TestC/sub
    --- FAIL: TestC/sub (0.0s)
--- FAIL: TestC (0.0s)
FAIL
natlab-vmtest: FAIL ./lab -skip ^TestSoak$: exit status 1 (1.0s)
natlab-vmtest: run ./nattable: /tests/nattable.test
=== RUN   TestD
    d_test.go:3: labtest: this kernel cannot build labs
--- SKIP: TestD (0.0s)
natlab-vmtest: ok   ./nattable (0.2s)
natlab-vmtest: run ./trace: /tests/trace.test
=== RUN   TestE
--- PASS: TestE (0.0s)
natlab-vmtest: ok   ./trace (0.1s)
natlab-vmtest: run ./runner: /tests/runner.test
=== RUN   TestF`, "\n") {
		r.line(l)
	}
	sum, ok := r.summary()
	if ok {
		t.Error("summary: all ran")
	}
	want := `FAIL ./lab: 1 passed, 1 failed, 1 skipped
       failed TestC
       skipped TestB: needs nft for a cross-check
NONE ./nattable: 0 passed, 0 failed, 1 skipped
       skipped TestD: labtest: this kernel cannot build labs
       no test of ./nattable passed on this kernel: it proves nothing here
ok   ./trace: 1 passed, 0 failed, 0 skipped
FAIL ./runner: 0 passed, 0 failed, 0 skipped
`
	if sum != want {
		t.Errorf("summary\n%s\nwant\n%s", sum, want)
	}
}
