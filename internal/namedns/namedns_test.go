package namedns_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
