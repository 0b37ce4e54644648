package main

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the host's flags; scripts/vm-test.sh sets them from make's
// VM_* variables.
type options struct {
	goCmd, kernel, modules, busybox, qemu string
	tests, run, work                      string
	memMiB, cpus                          int
	timeout, testTimeout                  time.Duration
	shell                                 bool

	mods []kmod // resolved by pack
}

func hostMain(args []string) int {
	var o options
	flags := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	flags.StringVar(&o.goCmd, "go", "go", "the go command that builds the test binaries")
	flags.StringVar(&o.kernel, "kernel", "", "the kernel image to boot (vmlinuz)")
	flags.StringVar(&o.modules, "modules", "", "its modules: the directory .../lib/modules/RELEASE holding modules.dep")
	flags.StringVar(&o.busybox, "busybox", "/bin/busybox", "a static busybox, for the shell some tests run")
	flags.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "the qemu to run")
	flags.StringVar(&o.tests, "tests", "", `the packages to test instead of tests.txt: "./pkg" or "./pkg:PATTERN", space-separated`)
	flags.StringVar(&o.run, "run", "", "a -test.run pattern for every package, instead of the list's")
	flags.StringVar(&o.work, "work", "", "build in this directory and keep it (default: a temporary one, removed)")
	flags.IntVar(&o.memMiB, "mem", 2048, "the guest's memory in MiB")
	flags.IntVar(&o.cpus, "smp", 2, "the guest's CPUs")
	flags.DurationVar(&o.timeout, "timeout", 20*time.Minute, "stop the VM after this long")
	flags.DurationVar(&o.testTimeout, "test-timeout", 10*time.Minute, "each test binary's -test.timeout")
	flags.BoolVar(&o.shell, "shell", false, "leave a shell on the console after the tests (stdin is the guest's)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if o.kernel == "" || o.modules == "" || flags.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: vmtest -kernel VMLINUZ -modules DIR/lib/modules/RELEASE [flags]")
		return 2
	}
	// modprobe names the modules by absolute paths.
	for _, p := range []*string{&o.kernel, &o.modules} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vm-test:", err)
			return 2
		}
		*p = abs
	}
	suites, err := o.suites()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm-test:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := o.runVM(ctx, suites)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm-test:", err)
		return 1
	}
	return code
}

func (o *options) suites() ([]suite, error) {
	var suites []suite
	var err error
	if o.tests != "" {
		suites, err = parseOverride(o.tests)
		if err != nil {
			return nil, fmt.Errorf("-tests: %w", err)
		}
	} else if suites, err = parseList(defaultList); err != nil {
		return nil, fmt.Errorf("internal/vmtest/tests.txt: %w", err)
	}
	if o.run != "" {
		for i := range suites {
			suites[i].Run = o.run
		}
	}
	return suites, nil
}

func (o *options) runVM(ctx context.Context, suites []suite) (int, error) {
	root, err := moduleRoot()
	if err != nil {
		return 0, err
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "natlab-vmtest-"); err != nil {
			return 0, err
		}
		defer os.RemoveAll(work)
	}
	t0 := time.Now()
	initrd := filepath.Join(work, "initramfs.cpio")
	token, err := o.pack(ctx, root, work, initrd, suites)
	if err != nil {
		return 0, err
	}
	st, _ := os.Stat(initrd)
	fmt.Printf("vm-test: packed %d test binaries, %d modules and the sources into %s (%d MiB) in %.1fs\n",
		len(suites), len(o.mods), initrd, st.Size()>>20, time.Since(t0).Seconds())
	return o.boot(ctx, initrd, token)
}

// moduleRoot is the directory of natlab's go.mod, which the sources in
// the guest are copied from.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module github.com/natlab/natlab\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside natlab's source tree", dir)
		}
	}
}

// pack builds the test binaries and writes the initramfs. It returns the
// token of the guest's result line.
func (o *options) pack(ctx context.Context, root, work, initrd string, suites []suite) (string, error) {
	bins := filepath.Join(work, "tests")
	if err := o.build(ctx, root, bins, suites); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	for _, p := range []string{self, o.busybox} {
		if err := requireStatic(p); err != nil {
			return "", err
		}
	}
	release := filepath.Base(o.modules)
	base := strings.TrimSuffix(filepath.Clean(o.modules), filepath.Join("/lib/modules", release))
	o.mods, err = resolveModules(base, release, modules)
	if err != nil {
		return "", err
	}

	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	cfg := guestConfig{Token: hex.EncodeToString(b), Wanted: modules, Shell: o.shell}

	f, err := os.Create(initrd)
	if err != nil {
		return "", err
	}
	defer f.Close()
	a := newInitramfs(f)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc"} {
		a.Dir(d)
	}
	// The kernel opens /dev/console for process 1 before anything is
	// mounted, so the archive holds the node itself.
	a.CharDev("dev/console", 5, 1)
	a.CopyFile("init", self)
	a.Symlink("sbin/modprobe", "/init")
	a.CopyFile("bin/busybox", o.busybox)
	for _, applet := range applets {
		a.Symlink("bin/"+applet, "busybox")
	}
	a.Bytes("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost vmtest\n::1\tlocalhost ip6-localhost ip6-loopback\n"))
	a.Bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	a.Bytes("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	for _, m := range o.mods {
		rel, err := filepath.Rel(o.modules, m.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			return "", fmt.Errorf("module %s is not under %s", m.Path, o.modules)
		}
		in := filepath.Join("/lib/modules", release, rel)
		a.CopyFile(in, m.Path)
		cfg.Modules = append(cfg.Modules, guestModule{Path: in, Args: joinArgs(m.Args, moduleArgs[moduleName(m.Path)])})
	}
	// The sources at the path they have here, so that a test finds its
	// testdata, the files it reads from other packages, and the files
	// its stack traces name; elsewhere if the guest mounts over it.
	src := sourcePath(root)
	if err := addTree(a, root, src); err != nil {
		return "", err
	}
	for _, s := range suites {
		bin := filepath.Join("/tests", s.Binary())
		a.CopyFile(bin, filepath.Join(bins, s.Binary()))
		args := append(s.Args(), "-test.timeout="+o.testTimeout.String())
		cfg.Suites = append(cfg.Suites, guestSuite{Name: s.String(), Binary: bin, Dir: filepath.Join(src, s.Pkg), Args: args})
	}
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return "", err
	}
	a.Bytes(configPath, 0o644, data)
	if err := a.Close(); err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	return cfg.Token, f.Close()
}

// moduleArgs are parameters natlab's guest gives modules beyond what
// modprobe's configuration does: dummy and ifb make no links of their
// own on load, as labs make theirs where they need them.
var moduleArgs = map[string]string{"dummy": "numdummies=0", "ifb": "numifbs=0"}

func joinArgs(a, b string) string { return strings.TrimSpace(a + " " + b) }

// The busybox applets the guest offers: a shell and the utilities shell
// commands in tests use. None of its network tools (ip, ping, tc, nc,
// ...): they are not the ones the tests cross-check with, and a test
// that needs ip or ping must skip in the guest rather than run them.
var applets = []string{
	"sh", "cat", "echo", "printf", "true", "false", "test", "[", "sleep", "env",
	"ls", "wc", "grep", "head", "tail", "cut", "tr", "sort", "uniq", "sed", "awk",
	"cp", "mv", "rm", "mkdir", "ln", "chmod", "touch", "stat", "readlink", "find", "xargs",
	"id", "uname", "date", "ps", "kill", "dmesg", "mount", "umount", "dd", "od", "hexdump",
}

// build compiles each suite's test binary, as go test -c does, without
// cgo: the guest has no C library.
func (o *options) build(ctx context.Context, root, dir string, suites []suite) error {
	args := []string{"test", "-c", "-ldflags=-s -w", "-o", dir + "/"}
	for _, s := range suites {
		args = append(args, s.Pkg)
	}
	cmd := exec.CommandContext(ctx, o.goCmd, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	for _, s := range suites {
		if _, err := os.Stat(filepath.Join(dir, s.Binary())); err != nil {
			return fmt.Errorf("%s has no tests", s.Pkg)
		}
	}
	return nil
}

// requireStatic refuses a program that needs a dynamic loader, or is for
// another machine: the guest has no loader, and the kernel's "No such
// file or directory" for a missing one would name the program instead.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is a program for %v; the guest is x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is linked dynamically; the guest needs a static program (CGO_ENABLED=0 for Go, busybox-static for busybox)", path)
		}
	}
	return nil
}

// skipDirs are what the guest needs none of: git's objects, builds,
// fetched tools.
var skipDirs = map[string]bool{".git": true, "bin": true, ".tools": true, "dist": true, "artifacts": true, "man": true, ".vagrant": true}

// sourcePath is where the guest holds the sources of root: the same
// path, unless the guest mounts a file system of its own over it.
func sourcePath(root string) string {
	for _, m := range guestMounts {
		if root == m || strings.HasPrefix(root, m+"/") {
			return "/src/natlab"
		}
	}
	return root
}

// addTree adds the tree at root, as dst.
func addTree(a *initramfs, root, dst string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		in := filepath.Join(dst, rel)
		if d.IsDir() {
			if p != root && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			a.Dir(in)
			return nil
		}
		switch {
		case d.Type().IsRegular():
			a.CopyFile(in, p)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			a.Symlink(in, target)
		}
		return nil
	})
}

// boot runs the VM and relays its console until the guest's result line,
// or until qemu ends or the timeout passes.
func (o *options) boot(ctx context.Context, initrd, token string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	args := qemuArgs(o, initrd)
	fmt.Printf("vm-test: %s %s\n", o.qemu, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, o.qemu, args...)
	cmd.Stderr = os.Stderr
	if o.shell {
		cmd.Stdin = os.Stdin
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("qemu: %w", err)
	}
	var res results
	code, found := relay(out, os.Stdout, token, res.line)
	werr := cmd.Wait()
	took := time.Since(t0).Round(100 * time.Millisecond)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return 0, fmt.Errorf("no result after %v: stopped the VM", o.timeout)
	case ctx.Err() != nil:
		return 0, fmt.Errorf("interrupted: stopped the VM")
	case !found && werr != nil:
		return 0, fmt.Errorf("qemu: %w", werr)
	case !found:
		return 0, fmt.Errorf("the guest stopped after %v without a result (a kernel panic or a crash of the guest's init; its console is above)", took)
	}
	sum, allRan := res.summary()
	fmt.Printf("vm-test: results on the guest's kernel:\n%s", sum)
	if !allRan && code == 0 {
		code = 1
	}
	verdict := "passed"
	if code != 0 {
		verdict = fmt.Sprintf("failed (exit %d)", code)
	}
	fmt.Printf("vm-test: %s in %v on the guest's kernel\n", verdict, took)
	return code, nil
}

func qemuArgs(o *options, initrd string) []string {
	return []string{
		// Emulation, not KVM: /dev/kvm on natlab's CI machines hangs
		// the guest. One host thread for all guest CPUs: with one each
		// (thread=multi), a guest CPU now and then ran code another had
		// just patched, which the kernel does whenever a namespace's
		// netfilter hooks come or go (static keys), and the guest died
		// of an int3 Oops in NF_HOOK, once in three runs of the list.
		// The tests wait more than they compute: one thread is as fast.
		"-accel", "tcg,thread=single", "-cpu", "max",
		"-smp", fmt.Sprint(o.cpus), "-m", fmt.Sprint(o.memMiB),
		// No devices but a serial console: no network card, no disk,
		// no display; the guest shares nothing with the host.
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "stdio", "-nic", "none", "-no-reboot",
		"-kernel", o.kernel, "-initrd", initrd,
		// panic=-1 reboots at once on a panic, which -no-reboot turns
		// into qemu exiting.
		"-append", "console=ttyS0 quiet panic=-1",
	}
}

// relay copies the console to w without carriage returns, hands each line
// to each, and returns the guest's exit code once its result line has
// passed.
func relay(r io.Reader, w io.Writer, token string, each func(string)) (code int, found bool) {
	marker := "natlab-vmtest " + token + ": exit "
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		for _, c := range chunk[:n] {
			if c == '\r' {
				continue
			}
			buf = append(buf, c)
			if c != '\n' {
				continue
			}
			w.Write(buf)
			line := strings.TrimSuffix(string(buf), "\n")
			each(line)
			if rest, ok := strings.CutPrefix(line, marker); ok {
				if _, err := fmt.Sscanf(rest, "%d", &code); err == nil {
					found = true
				}
			}
			buf = buf[:0]
		}
		if err != nil {
			w.Write(buf)
			return code, found
		}
	}
}
