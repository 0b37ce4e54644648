// Package testutil holds what natlab's privileged tests share: skipping
// without root and namespaces that clean up after themselves.
package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/natlab/natlab/internal/namedns"
)

// RequireRoot skips the test unless it runs as root, which creating
// namespaces, links and nftables rules needs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it builds network namespaces (run `sudo make test`)")
	}
}

// RequireTool skips the test when an independent tool it cross-checks with
// is not installed (`make test` installs them all).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s for a cross-check (`make deps` installs it)", name)
	}
	return path
}

// UniqueName returns a short name no other test run uses, for labs and
// namespaces: "t" and eight hex digits.
func UniqueName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// NewNS creates a network namespace named natlab-<unique>-<tag> and
// removes it when the test ends, pass or fail.
func NewNS(t testing.TB, tag string) (*namedns.NS, string) {
	t.Helper()
	RequireRoot(t)
	if err := namedns.Prepare(); err != nil {
		t.Fatal(err)
	}
	name := "natlab-" + UniqueName(t) + "-" + tag
	ns, err := namedns.Create(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := namedns.Delete(name); err != nil {
			t.Errorf("remove namespace %s: %v", name, err)
		}
	})
	return ns, name
}

// NewNSNamed creates a network namespace with exactly this name, not
// marked as natlab's, and removes it when the test ends.
func NewNSNamed(t testing.TB, name string) (*namedns.NS, string) {
	t.Helper()
	RequireRoot(t)
	if err := namedns.Prepare(); err != nil {
		t.Fatal(err)
	}
	ns, err := namedns.Create(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		namedns.Delete(name)
	})
	return ns, name
}

// BuildNatlab builds the natlab command once for a package's tests, as a
// user or a release has it (CGO_ENABLED=0), into a new temporary
// directory. It is for TestMain, before any test runs, so it panics on
// failure after printing the compiler's output; remove the directory
// with the returned func once m.Run is done.
func BuildNatlab(tag string) (path string, remove func()) {
	dir, err := os.MkdirTemp("", "natlab-"+tag)
	if err != nil {
		panic(err)
	}
	path = filepath.Join(dir, "natlab")
	build := exec.Command("go", "build", "-o", path, "github.com/natlab/natlab/cmd/natlab")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		panic(fmt.Sprintf("building natlab for the tests: %v", err))
	}
	return path, func() { os.RemoveAll(dir) }
}
