package labtest

import (
	"testing"

	"github.com/natlab/natlab/internal/floor"
)

// iterationTB is the benchmark's testing.TB for one iteration: the
// cleanups a lab registers run at the iteration's end, as at a test's,
// rather than all at the benchmark's end, and the log stays quiet.
type iterationTB struct {
	testing.TB
	cleanups []func()
}

func (t *iterationTB) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *iterationTB) Logf(string, ...any)       {}
func (t *iterationTB) Helper()                   {}
func (t *iterationTB) Name() string              { return t.TB.Name() }
func (t *iterationTB) Errorf(f string, a ...any) { t.TB.Errorf(f, a...) }

func (t *iterationTB) end() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

// What labtest users pay per lab: labtest.UpBuiltin of symmetric.yaml and
// the cleanup that takes it down, in the test's own process. Issue 19's
// goal is within 1.5x of BenchmarkFloor, run beside it:
//
//	go test -run '^$' -bench 'Up|Floor' -benchtime 20x ./labtest
func BenchmarkUpSymmetric(b *testing.B) {
	Require(b)
	for b.Loop() {
		it := &iterationTB{TB: b}
		UpBuiltin(it, "symmetric")
		it.end()
	}
}

// The floor of BenchmarkUpSymmetric: the symmetric lab's six namespaces
// and five veth pairs made through netlink and deleted, nothing else
// (package internal/floor).
func BenchmarkFloor(b *testing.B) {
	Require(b)
	prefix, err := uniqueName()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := floor.Up(prefix); err != nil {
			floor.Down(prefix)
			b.Fatal(err)
		}
		if err := floor.Down(prefix); err != nil {
			b.Fatal(err)
		}
	}
}
