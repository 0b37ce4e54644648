// Package rootless runs natlab without root: it re-executes natlab inside
// new user, mount, network and PID namespaces, where natlab is root of a
// user namespace that owns every network namespace it then creates.
//
// Why each namespace:
//   - user: the caller's uid and gid become 0 inside (a single-id map,
//     which needs no newuidmap helper), with every capability over the
//     namespaces created from there.
//   - mount: natlab mounts private tmpfs on the directories it keeps state
//     in, so nothing reaches the host's /run, and binds its namespaces
//     there without any right over the host's mounts.
//   - network: the libraries natlab uses (vishvananda/netlink) enter a
//     lab's namespace and then go back to the one they came from, and
//     going back into the host's namespace needs CAP_SYS_ADMIN over the
//     host: with a namespace of natlab's own to return to, that works.
//   - PID: natlab is its init, so when it exits, however it exits, the
//     kernel kills everything left inside (service processes, commands of
//     exec steps), and with them the last users of the lab's namespaces.
package rootless

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envChild marks the re-executed natlab. It is no proof of anything:
// Setup checks the namespaces themselves before it mounts.
const envChild = "NATLAB_ROOTLESS_CHILD"

// InChild reports whether this process is the re-executed natlab, which
// must call Setup before it does anything else.
func InChild() bool { return os.Getenv(envChild) != "" }

// Sysctls that decide whether an unprivileged user may create a user
// namespace.
const (
	sysctlDebianClone = "kernel.unprivileged_userns_clone"
	sysctlMaxUserNS   = "user.max_user_namespaces"
	sysctlAppArmor    = "kernel.apparmor_restrict_unprivileged_userns"
)

// ReadSysctl reads a sysctl of the calling process's namespaces.
func ReadSysctl(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	return strings.TrimSpace(string(data)), err
}

// Check returns an error naming the sysctl that forbids unprivileged user
// namespaces, or nil if none does as far as the sysctls tell; read reads a
// sysctl (ReadSysctl). A sysctl that does not exist forbids nothing: the
// Debian one, for instance, is only in Debian's and Ubuntu's kernels.
//
// AppArmor's restriction is reported as well, although with it creating
// the namespace succeeds: the process inside just has no capabilities,
// unless an AppArmor profile grants natlab "userns", which it cannot see.
// Saying so first beats failing later on a mount.
func Check(read func(string) (string, error)) error {
	if v, err := read(sysctlDebianClone); err == nil && v == "0" {
		return forbidden(sysctlDebianClone, "0", "1")
	}
	if v, err := read(sysctlMaxUserNS); err == nil && v == "0" {
		return forbidden(sysctlMaxUserNS, "0", "15000")
	}
	if v, err := read(sysctlAppArmor); err == nil && v == "1" && !appArmorConfined() {
		return forbidden(sysctlAppArmor, "1", "0")
	}
	return nil
}

// ErrForbidden is what Check's errors wrap.
var ErrForbidden = errors.New("the kernel forbids unprivileged user namespaces")

func forbidden(name, value, allow string) error {
	return fmt.Errorf("%w (%s=%s): run it with sudo, or allow them with sysctl -w %s=%s", ErrForbidden, name, value, name, allow)
}

// appArmorConfined reports whether natlab runs under an AppArmor
// profile (not "unconfined"), which may grant it userns.
func appArmorConfined() bool {
	data, err := os.ReadFile("/proc/self/attr/apparmor/current")
	if err != nil {
		data, err = os.ReadFile("/proc/self/attr/current")
	}
	label := strings.TrimSpace(string(data))
	return err == nil && label != "" && label != "unconfined"
}

// Exec runs natlab again, with args, inside new user, mount, network and
// PID namespaces, and returns its exit code once it is done. It gets
// stdin, stdout and stderr, and the SIGINT, SIGTERM and SIGHUP this
// process gets. If this process dies, the kernel kills the other one.
func Exec(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	// The sysctls restrict unprivileged users only; root (with --rootless)
	// may create user namespaces regardless.
	if os.Geteuid() != 0 {
		if err := Check(ReadSysctl); err != nil {
			return 0, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find natlab's own binary: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		GidMappingsEnableSetgroups: false, // an unprivileged gid map requires it
		Pdeathsig:                  syscall.SIGKILL,
	}
	// The parent-death signal fires when the thread that forked exits, not
	// the process: this goroutine keeps that thread until the child is
	// gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, explainStart(err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				// A Ctrl-C at a terminal reaches both processes; a second
				// SIGINT changes nothing for natlab.
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ExitCode(ee.Sys().(syscall.WaitStatus)), nil
	default:
		return 0, fmt.Errorf("wait for natlab in its user namespace: %w", err)
	}
}

// ExitCode is the exit code a shell reports for a process that ended
// with ws: its own, or 128 plus the signal that killed it.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// explainStart says why the kernel refused the namespaces.
func explainStart(err error) error {
	err = fmt.Errorf("create a user namespace: %w", err)
	switch {
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("%w (the limit %s, or user.max_net_namespaces, is reached)", err, sysctlMaxUserNS)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w (the kernel, a container's seccomp filter or a security module forbids unprivileged user namespaces; run it with sudo)", err)
	}
	return err
}

// Setup prepares the re-executed natlab, before it does anything else: a
// /proc of its PID namespace, and a private, empty tmpfs on each of dirs
// (where natlab keeps state), so that what it writes there stays in its
// mount namespace and vanishes with it. Directories in dirs that do not
// exist on the host cannot be mount points; then their parent (/run) is
// replaced by a tmpfs into which every other entry of the original is
// bind-mounted back, so that programs in the lab still find them.
func Setup(dirs []string) error {
	os.Unsetenv(envChild)
	if err := checkInOwnNamespaces(); err != nil {
		return err
	}
	// The host's /proc shows the host's PIDs; natlab finds and signals
	// the processes of its labs by PID, which must be this namespace's.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return explainSetup(fmt.Errorf("mount /proc for the new PID namespace: %w", err))
	}
	p := plan(dirs, isDir)
	for _, parent := range p.copyUp {
		if err := copyUp(parent, p.skip[parent]); err != nil {
			return explainSetup(err)
		}
	}
	for _, dir := range p.tmpfs {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return explainSetup(fmt.Errorf("mount a private tmpfs on %s: %w", dir, err))
		}
	}
	for _, dir := range p.mkdir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s in the private tmpfs: %w", dir, err)
		}
	}
	return nil
}

// checkInOwnNamespaces refuses to mount anything unless this process is
// the init of a new PID namespace inside a user namespace that maps only
// a few ids: an environment variable alone must never make natlab mount
// over the host's /run.
func checkInOwnNamespaces() error {
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("read uid_map: %w", err)
	}
	if os.Getpid() != 1 || fullUIDMap(string(uidMap)) {
		return fmt.Errorf("%s is set, but natlab is not in namespaces of its own; unset it", envChild)
	}
	return nil
}

// fullUIDMap reports whether uidMap (the text of /proc/PID/uid_map) maps
// every uid, as the initial user namespace's does.
func fullUIDMap(uidMap string) bool {
	for _, line := range strings.Split(strings.TrimSpace(uidMap), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
			return true
		}
	}
	return false
}

// explainSetup adds AppArmor's restriction to a failed mount, the usual
// reason on Ubuntu: the namespace was created, but without capabilities.
func explainSetup(err error) error {
	if v, rerr := ReadSysctl(sysctlAppArmor); rerr == nil && v == "1" && errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: AppArmor denies capabilities in unprivileged user namespaces (%s=1); run it with sudo, or sysctl -w %s=0", err, sysctlAppArmor, sysctlAppArmor)
	}
	return err
}

// mountPlan is what Setup mounts and creates.
type mountPlan struct {
	copyUp []string            // parents replaced by a tmpfs with their entries bound back
	skip   map[string][]string // by parent: the entries not bound back (the dirs)
	tmpfs  []string            // dirs that exist: a tmpfs on each
	mkdir  []string            // dirs created inside a copied-up parent
}

// plan decides how to make each of dirs a private, empty directory: a
// tmpfs on it if it exists, else a copy-up of its parent.
func plan(dirs []string, exists func(string) bool) mountPlan {
	p := mountPlan{skip: map[string][]string{}}
	for _, d := range dirs {
		parent := filepath.Dir(filepath.Clean(d))
		if _, ok := p.skip[parent]; !ok && !exists(d) {
			p.copyUp = append(p.copyUp, parent)
			p.skip[parent] = nil
		}
	}
	// A dir that exists under a parent copied up for another goes with
	// it: a tmpfs on it would be hidden by the parent's.
	for _, d := range dirs {
		d = filepath.Clean(d)
		parent := filepath.Dir(d)
		if _, ok := p.skip[parent]; ok {
			p.skip[parent] = append(p.skip[parent], filepath.Base(d))
			p.mkdir = append(p.mkdir, d)
		} else {
			p.tmpfs = append(p.tmpfs, d)
		}
	}
	return p
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// copyUp replaces dir with a tmpfs holding the same entries, each bound
// to the original, except those in skip, which are left out. Entries that
// cannot be bound back are left as empty placeholders: natlab itself needs
// none of them, only programs that exec steps run might.
func copyUp(dir string, skip []string) error {
	old, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer old.Close()
	names, err := old.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	st, err := old.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	opts := fmt.Sprintf("mode=%04o", st.Mode().Perm()|0o700)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount a private tmpfs on %s: %w", dir, err)
	}
	// The open descriptor still reaches the original directory, now
	// hidden beneath the tmpfs.
	base := fmt.Sprintf("/proc/self/fd/%d", old.Fd())
	for _, name := range names {
		if slices.Contains(skip, name) {
			continue
		}
		src, dst := filepath.Join(base, name), filepath.Join(dir, name)
		fi, err := os.Lstat(src)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(src); err == nil {
				os.Symlink(target, dst)
			}
			continue
		case fi.IsDir():
			if err := os.Mkdir(dst, fi.Mode().Perm()|0o700); err != nil {
				continue
			}
		default:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				continue
			}
			f.Close()
		}
		unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, "")
	}
	return nil
}
