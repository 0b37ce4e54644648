package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// configPath is where the host leaves the guest's instructions.
const configPath = "/vmtest.json"

// guestConfig is what the host tells the guest.
type guestConfig struct {
	// Token makes the result line one no test output can fake.
	Token string
	// Modules in load order; Wanted are the names of the list's own,
	// which must be loaded when the tests start.
	Modules []guestModule
	Wanted  []string
	Suites  []guestSuite
	// Shell leaves a shell on the console after the tests, for looking
	// around; the VM powers off when it exits.
	Shell bool
}

type guestModule struct {
	Path string // in the guest
	Args string
}

type guestSuite struct {
	Name   string // "./lab"
	Binary string
	Dir    string // the package's directory, as go test runs its binary
	Args   []string
}

// modprobeLog collects what the kernel asked guestModprobe for.
const modprobeLog = "/run/vmtest-modprobe"

// guestMain is the guest's init: it prepares the system, runs the suites
// one after the other, says how they went on the console and powers the
// VM off. As process 1 it must never return, and it reaps every orphan
// (the services labs start outlive the lab's own process at times, and
// natlab's down waits until they are gone).
func guestMain() {
	code := 1
	defer func() {
		if r := recover(); r != nil {
			say("panic: %v", r)
			code = 1
		}
		powerOff(code)
	}()
	cfg, err := readGuestConfig()
	if err != nil {
		say("%v", err)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			say("panic: %v", r)
			code = 1
		}
		fmt.Printf("natlab-vmtest %s: exit %d\n", cfg.Token, code)
		if cfg.Shell {
			shell()
		}
	}()
	code = guest(cfg)
}

func readGuestConfig() (*guestConfig, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	var cfg guestConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return &cfg, nil
}

func guest(cfg *guestConfig) int {
	if err := setUp(); err != nil {
		say("set up: %v", err)
		return 1
	}
	code := 0
	if err := loadModules(cfg.Modules, cfg.Wanted); err != nil {
		say("%v", err)
		code = 1
	}
	say("%s, %d CPUs", kernelVersion(), runtime.NumCPU())

	start := time.Now()
	var lines []string
	for _, s := range cfg.Suites {
		t0 := time.Now()
		status, err := runSuite(s)
		line := fmt.Sprintf("ok   %s (%.1fs)", s.Name, time.Since(t0).Seconds())
		switch {
		case err != nil:
			line = fmt.Sprintf("FAIL %s: %v", s.Name, err)
			code = 1
		case status != 0:
			line = fmt.Sprintf("FAIL %s: exit status %d (%.1fs)", s.Name, status, time.Since(t0).Seconds())
			code = 1
		}
		say("%s", line)
		lines = append(lines, line)
	}
	// Tests remove what they make, also on failure: a namespace or a
	// process still there afterwards is a leak the host run can miss,
	// since its root namespace is shared with everything else.
	if left := leftovers(); left != "" {
		line := "FAIL left behind: " + left
		lines = append(lines, line)
		say("%s", line)
		code = 1
	}
	if asked, _ := os.ReadFile(modprobeLog); len(asked) > 0 {
		line := "note: the kernel asked for modules the guest does not load: " + strings.Join(strings.Fields(string(asked)), " ")
		lines = append(lines, line)
	}
	say("summary after %.1fs:\n  %s", time.Since(start).Seconds(), strings.Join(lines, "\n  "))
	return code
}

// guestMounts are the directories setUp mounts a file system on, which
// hide whatever the initramfs holds there.
var guestMounts = []string{"/proc", "/sys", "/dev", "/run", "/tmp"}

// setUp mounts what tests expect of a Linux system and brings up the
// root namespace's loopback.
func setUp() error {
	for _, m := range []struct {
		fstype, dir, data string
		flags             uintptr
	}{
		{"proc", "/proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "mode=0755", unix.MS_NOSUID},
		{"devpts", "/dev/pts", "mode=0620,ptmxmode=0666", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"tmpfs", "/dev/shm", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/run", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/tmp", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	if err := unix.Sethostname([]byte("vmtest")); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	for k, v := range map[string]string{"PATH": "/bin:/sbin", "HOME": "/root", "TMPDIR": "/tmp", "USER": "root"} {
		os.Setenv(k, v)
	}
	return nil
}

// loadModules loads the modules in order. One that is loaded already is
// fine; one that fails is reported and the rest still loaded, so that
// the tests show what is missing.
func loadModules(mods []guestModule, wanted []string) error {
	var failed []string
	for _, m := range mods {
		if err := loadModule(m); err != nil {
			say("module %s: %v", moduleName(m.Path), err)
			failed = append(failed, moduleName(m.Path))
		}
	}
	var missing []string
	for _, name := range wanted {
		if _, err := os.Stat("/sys/module/" + name); err != nil {
			missing = append(missing, name)
		}
	}
	say("loaded %d modules", len(mods)-len(failed))
	if len(missing) > 0 {
		return fmt.Errorf("modules not loaded: %s", strings.Join(missing, " "))
	}
	return nil
}

func loadModule(m guestModule) error {
	f, err := os.Open(m.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(m.Path, ".ko") {
		// .ko.xz, .ko.zst: the kernel decompresses them itself
		// (CONFIG_MODULE_DECOMPRESS), as kmod asks it to.
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), m.Args, flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func kernelVersion() string {
	v, err := os.ReadFile("/proc/version")
	if err != nil {
		return "kernel: " + err.Error()
	}
	return strings.TrimSpace(string(v))
}

// runSuite runs a test binary in its package's directory with the
// console as its output, reaping every other child that exits meanwhile.
func runSuite(s guestSuite) (int, error) {
	say("run %s: %s %s", s.Name, s.Binary, strings.Join(s.Args, " "))
	p, err := os.StartProcess(s.Binary, append([]string{s.Binary}, s.Args...), &os.ProcAttr{
		Dir:   s.Dir,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return 0, err
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait: %w", err)
		}
		if pid != p.Pid {
			continue
		}
		if ws.Signaled() {
			return 0, fmt.Errorf("killed by %v", ws.Signal())
		}
		return ws.ExitStatus(), nil
	}
}

// leftovers names the namespaces in /run/netns and the processes other
// than this one that outlived the tests.
func leftovers() string {
	// Children that exit just now are reaped first.
	deadline := time.Now().Add(5 * time.Second)
	var out []string
	for {
		out = out[:0]
		reapAll()
		if entries, _ := os.ReadDir("/run/netns"); len(entries) > 0 {
			for _, e := range entries {
				out = append(out, "namespace "+e.Name())
			}
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: kernel threads are children of
			// kthreadd (2), or kthreadd itself.
			f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
			pid := strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/stat")
			if pid == "1" || pid == "2" || len(f) < 2 || f[1] == "2" {
				continue
			}
			out = append(out, "process "+pid+" "+string(data[strings.IndexByte(string(data), '(')+1:strings.LastIndexByte(string(data), ')')]))
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return strings.Join(out, ", ")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// shell runs busybox's shell on the console.
func shell() {
	say("shell: the VM powers off when it exits")
	p, err := os.StartProcess("/bin/sh", []string{"sh"}, &os.ProcAttr{
		Dir:   "/",
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true},
	})
	if err != nil {
		say("shell: %v", err)
		return
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if pid == p.Pid || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
	}
}

func powerOff(code int) {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		say("power off: %v", err)
	}
	// Process 1 must not exit: that panics the kernel.
	for {
		time.Sleep(time.Hour)
	}
}

func say(format string, args ...any) {
	fmt.Printf("natlab-vmtest: "+format+"\n", args...)
}

// guestModprobe stands in for /sbin/modprobe, which the kernel runs as
// "modprobe -q -- NAME" when something needs a module that is not
// loaded. The guest loads its modules itself, so a request means one is
// missing from the list: it is written to the console and to the log the
// summary shows, and refused.
func guestModprobe(args []string) int {
	name := ""
	if len(args) > 0 {
		name = args[len(args)-1]
	}
	if f, err := os.OpenFile(modprobeLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintln(f, name)
		f.Close()
	}
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		fmt.Fprintf(c, "natlab-vmtest: the kernel asked for module %q, which the guest does not load (internal/vmtest/modules.go lists them)\n", name)
		c.Close()
	}
	return 1
}
