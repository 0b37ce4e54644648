// Package namedns creates, enters and removes named network namespaces:
// namespaces bind-mounted under /run/netns, where `ip netns` finds them.
//
// Entering a namespace is per thread on Linux, and Go moves goroutines
// between threads. So every function here that must enter a namespace
// does it on a fresh goroutine locked to its thread and never unlocks it:
// when the goroutine ends, the Go runtime throws the thread away instead
// of returning a thread in a foreign namespace to the pool. The calling
// goroutine's thread never changes namespace.
package namedns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces live, as iproute2 expects.
const Dir = "/run/netns"

// Path returns the file a named namespace is mounted on.
func Path(name string) string { return filepath.Join(Dir, name) }

// Prepare makes Dir exist and be a shared mount point, exactly as
// `ip netns add` does, so that removing a namespace here also unmounts it
// in mount namespaces created later (`ip netns exec` makes one per
// command) instead of leaving the namespace alive there.
func Prepare() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	// Two first ups at once would both find Dir no mount point and both
	// bind-mount it, one over the other: the directory is locked while
	// it is looked at and made one.
	dir, err := os.Open(Dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", Dir, err)
	}
	err = unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: make it one, then share it.
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s on itself: %w", Dir, err)
		}
		err = unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", Dir, err)
	}
	return nil
}

// NS is an open handle on a network namespace. Close it when done; the
// namespace itself lives on as long as it is mounted or used.
type NS struct {
	f *os.File
}

// Fd is the namespace's file descriptor, for netlink.NewHandleAt and
// nftables.WithNetNSFd.
func (ns *NS) Fd() int { return int(ns.f.Fd()) }

// Close releases the handle.
func (ns *NS) Close() error { return ns.f.Close() }

// Inode identifies the namespace itself: two handles with the same inode
// are the same namespace, whatever its name.
func (ns *NS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(ns.Fd(), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Create makes a new network namespace and mounts it as name. It fails if
// the name is taken. Call Prepare once before.
//
// init, if not nil, runs inside the new namespace before it gets its name,
// so that nobody can find the namespace half set up: natlab marks its
// namespaces there and sets their sysctls.
func Create(name string, init func() error) (*NS, error) {
	path := Path(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("namespace %s exists already: %w", name, os.ErrExist)
		}
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if init != nil {
			if err := init(); err != nil {
				return err
			}
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	return Open(name)
}

// Open returns a handle on the namespace mounted as name.
func Open(name string) (*NS, error) {
	f, err := os.Open(Path(name))
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || (fs.Type != unix.NSFS_MAGIC && fs.Type != unix.PROC_SUPER_MAGIC) {
		f.Close()
		return nil, fmt.Errorf("open namespace %s: %s is not a mounted namespace", name, Path(name))
	}
	return &NS{f: f}, nil
}

// Delete unmounts the namespace called name and removes its file. The
// kernel destroys the namespace, with every link and rule in it, once no
// process and no open handle uses it. A missing namespace is not an error.
func Delete(name string) error {
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// Netlink opens a route netlink handle whose socket lives in the
// namespace open as fd. It is opened on a thread that is thrown away
// afterwards: netlink.NewHandleAt instead moves its thread back to where
// it was and carries on whether or not that worked, which could leave a
// later goroutine of natlab running in a lab's namespace.
func Netlink(fd int) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := onThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	return h, err
}

// Do runs fn on a thread inside ns and waits for it. Sockets fn opens stay
// in ns for their whole life, whichever goroutine uses them later; that is
// how natlab opens listening sockets inside a node.
func Do(ns *NS, fn func() error) error { return DoFd(ns.Fd(), fn) }

// DoFd is Do in the namespace open as fd.
func DoFd(fd int, fn func() error) error {
	return onThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// onThread runs fn on a new goroutine locked to its own OS thread, which is
// discarded afterwards because fn may have changed its namespaces.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		done <- fn()
	}()
	return <-done
}
