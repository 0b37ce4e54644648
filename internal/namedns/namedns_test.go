package namedns_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
)

func TestCreateDoDelete(t *testing.T) {
	testutil.RequireRoot(t)
	if err := namedns.Prepare(); err != nil {
		t.Fatal(err)
	}
	name := "natlab-" + testutil.UniqueName(t) + "-ns"
	var initRan bool
	ns, err := namedns.Create(name, func() error {
		// Inside the new namespace, before it has its name.
		_, err := os.Stat(namedns.Path(name))
		initRan = true
		ifs, _ := net.Interfaces()
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			return errors.New("init does not run in a fresh namespace")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { namedns.Delete(name) })
	if !initRan {
		t.Error("init did not run")
	}
	if _, err := namedns.Create(name, nil); !errors.Is(err, os.ErrExist) {
		t.Errorf("creating it twice: %v, want ErrExist", err)
	}
	// ip netns sees it, and it is not the caller's namespace.
	if out, err := exec.Command("ip", "netns", "list").Output(); err != nil || !strings.Contains(string(out), name) {
		t.Errorf("ip netns list: %v\n%s", err, out)
	}
	self, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside string
	if err := namedns.Do(ns, func() error {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside == self || inside == "" {
		t.Errorf("Do ran in %q, the caller is in %q", inside, self)
	}
	if after, _ := os.Readlink("/proc/thread-self/ns/net"); after != self {
		t.Errorf("the caller's thread moved from %s to %s", self, after)
	}
	// A netlink handle opened in it sees its links (a fresh namespace has
	// only its loopback), from whatever thread uses it.
	h, err := namedns.Netlink(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	links, err := h.LinkList()
	h.Close()
	if err != nil || len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Errorf("the namespace's links through Netlink: %v, %v; want only lo", links, err)
	}
	if after, _ := os.Readlink("/proc/thread-self/ns/net"); after != self {
		t.Errorf("Netlink moved the caller's thread from %s to %s", self, after)
	}
	ino, err := ns.Inode()
	if err != nil || ino == 0 || !strings.Contains(inside, "[") || !strings.Contains(inside, strconv.FormatUint(ino, 10)) {
		t.Errorf("Inode = %d, %v; the namespace is %s", ino, err, inside)
	}
	ns.Close()
	if err := namedns.Delete(name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(namedns.Path(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Delete: %v", err)
	}
	if err := namedns.Delete(name); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := namedns.Open(name); err == nil {
		t.Error("Open of a deleted namespace succeeded")
	}
}

// Many first Prepares at once, where Dir is no mount point yet, make it
// one mount, not one on top of another. It runs in a mount namespace of
// its own, with an empty tmpfs on /run, so the host's /run/netns is not
// touched.
func TestPrepareAtOnce(t *testing.T) {
	testutil.RequireRoot(t)
	const child = "NAMEDNS_TEST_PREPARE_CHILD"
	if os.Getenv(child) == "" {
		unshare := testutil.RequireTool(t, "unshare")
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestPrepareAtOnce$")
		cmd.Env = append(os.Environ(), child+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	if err := syscall.Mount("natlab-test", "/run", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, 50)
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Go(func() {
			<-start
			errs <- namedns.Prepare()
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := 0
	for _, line := range strings.Split(string(info), "\n") {
		// Field 5 is the mount point; what follows " - " the filesystem
		// and its source.
		if f := strings.Fields(line); len(f) > 4 && f[4] == namedns.Dir && strings.Contains(line, " - tmpfs natlab-test ") {
			mounts++
		}
	}
	if mounts != 1 {
		t.Errorf("%s is mounted %d times after 50 Prepares at once, want once:\n%s", namedns.Dir, mounts, info)
	}
}
