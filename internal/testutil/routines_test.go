package testutil

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeTB is a test as CheckRoutines sees it, whose cleanups run when the
// test says and whose failures are kept rather than failing it.
type fakeTB struct {
	testing.TB
	cleanups []func()
	failures []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.failures = append(f.failures, fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.Errorf(s, a...) }

// end runs the cleanups, last first, as package testing does.
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// parked runs until stop is closed.
func parked(stop <-chan struct{}) { <-stop }

// A goroutine the test leaves running fails it, with its stack; one the
// test waited for, one that ends in a cleanup, and one older than the
// check do not.
func TestCheckRoutines(t *testing.T) {
	older := make(chan struct{})
	defer close(older)
	go parked(older)

	for _, tc := range []struct {
		name string
		// start starts goroutines, and returns what joins them before
		// the test ends (nil: nothing does).
		start  func(f *fakeTB, stop chan struct{}) func()
		leaked int
	}{
		{"leaked", func(_ *fakeTB, stop chan struct{}) func() {
			go parked(stop)
			go func() { go parked(stop) }()
			return nil
		}, 2},
		{"joined", func(_ *fakeTB, stop chan struct{}) func() {
			var wg sync.WaitGroup
			wg.Go(func() { parked(stop) })
			return func() { close(stop); wg.Wait() }
		}, 0},
		{"ended in a cleanup", func(f *fakeTB, stop chan struct{}) func() {
			done := make(chan struct{})
			go func() { parked(stop); close(done) }()
			f.Cleanup(func() { close(stop); <-done })
			return nil
		}, 0},
		{"ends soon after", func(_ *fakeTB, stop chan struct{}) func() {
			go parked(stop)
			// Told to stop, but not waited for: it ends a moment later,
			// within the check's patience.
			return func() { close(stop) }
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			checkRoutines(f, 5)
			stop := make(chan struct{})
			join := tc.start(f, stop)
			if join != nil {
				join()
			}
			f.end()
			if tc.leaked == 0 {
				if len(f.failures) > 0 {
					t.Errorf("a test whose goroutines ended failed: %s", f.failures)
				}
				return
			}
			// Let the leaked ones go, and the next subtest start clean.
			defer close(stop)
			if len(f.failures) != 1 {
				t.Fatalf("%d failures, want one: %q", len(f.failures), f.failures)
			}
			msg := f.failures[0]
			if !strings.HasPrefix(msg, fmt.Sprintf("%d goroutines the test started", tc.leaked)) || !strings.Contains(msg, "testutil.parked") {
				t.Errorf("failure does not count %d goroutines and show them parked:\n%s", tc.leaked, msg)
			}
			if strings.Contains(msg, "testing.tRunner") || strings.Contains(msg, "writeGoroutine") {
				t.Errorf("failure names the test's own goroutine:\n%s", msg)
			}
		})
	}
}
