package testutil

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Lateness is how late this machine wakes a sleeping program: the median
// overshoot of short sleeps, measured when it is called. Every delay a
// test measures through a shaped link is made of such wakes (each timed
// hold of a packet, and each receiver the packet wakes), so a busy
// machine, or an emulated one such as make vm-test's, where each costs
// about a millisecond, makes packets late by a few of them, never early.
// The accuracy tests allow a delay that many wakes more than the one the
// link was given, and no less; on the host a wake costs a fraction of a
// millisecond.
func Lateness(t testing.TB) time.Duration {
	t.Helper()
	const n, sleep = 15, 10 * time.Millisecond
	late := make([]time.Duration, n)
	for i := range late {
		start := time.Now()
		time.Sleep(sleep)
		late[i] = max(time.Since(start)-sleep, 0)
	}
	l := median(late)
	t.Logf("this machine wakes a sleeper %v late (the median of %d sleeps of %v)", l, n, sleep)
	return l
}

// LateDelay reports whether a measured delay is the one wanted: no less
// than want-tol, and no more than want+tol plus wakes times how late this
// machine wakes (lateness, from Lateness).
func LateDelay(got, want, tol time.Duration, wakes int, lateness time.Duration) bool {
	return got >= want-tol && got <= want+tol+time.Duration(wakes)*lateness
}

// Timed reports whether a test may check the delays it measures through
// links natlab shapes, and logs why not: not in a binary built with the
// race detector (Race), which slows natlab's delay line in the test's
// own process, its agents and relay (a 100 ms round trip measured 105 to
// 108 ms there); make test's plain run checks them.
func Timed(t testing.TB) bool {
	t.Helper()
	if Race {
		t.Log("the timings are not checked: the race detector slows every goroutine, and what they time with it (make race); make test checks them")
		return false
	}
	return true
}

// keepsTimeLateness is the most a machine may wake a sleeper late and
// still time a scenario: the host here wakes one 0.2-0.3 ms late, even
// under make test's load; make vm-test's emulated machine about 1 ms,
// and by much more now and then (an ICE check's single round trip of
// 40 ms measured 393 ms there).
const keepsTimeLateness = 750 * time.Microsecond

// KeepsTime reports whether this machine wakes sleepers on time enough
// for a test to check what a whole scenario measured (round trips of
// single exchanges, throughput through agents and a relay in user
// space), and logs why not: nor does a binary built with the race
// detector (Race). The link tests check each delay on any machine,
// allowing for its lateness (LateDelay), but not under the race
// detector; a scenario's measurements stack too many wakes for that on
// an emulated one. late is what Lateness measured.
func KeepsTime(t testing.TB, late time.Duration) bool {
	t.Helper()
	if !Timed(t) {
		return false
	}
	if late > keepsTimeLateness {
		t.Logf("the timings are not checked: this machine wakes a sleeper %v late, more than %v (an emulated or overloaded machine); they are on one that keeps time", late, keepsTimeLateness)
		return false
	}
	return true
}

// LatenessWatch measures how late this machine wakes a sleeper for as
// long as a test measures delays, not only before: a machine that grows
// busy half way (make test runs the browser tests beside the link tests)
// makes the packets of that stretch late, and a measurement taken at the
// start does not see it (a 100 ms round trip measured 105 ms while
// Lateness, taken before, said 0.28 ms).
type LatenessWatch struct {
	start time.Duration // what Lateness measured when the watch began
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	late []time.Duration // the overshoot of each sleep since the last Late
}

// WatchLateness measures Lateness and goes on sleeping 10 ms at a time
// beside the test, until it ends.
func WatchLateness(t testing.TB) *LatenessWatch {
	t.Helper()
	w := &LatenessWatch{start: Lateness(t), stop: make(chan struct{})}
	w.wg.Go(w.sleep)
	t.Cleanup(func() {
		close(w.stop)
		w.wg.Wait()
	})
	return w
}

func (w *LatenessWatch) sleep() {
	const sleep = 10 * time.Millisecond
	timer := time.NewTimer(sleep)
	defer timer.Stop()
	for {
		start := time.Now()
		timer.Reset(sleep)
		select {
		case <-w.stop:
			return
		case <-timer.C:
		}
		w.mu.Lock()
		w.late = append(w.late, max(time.Since(start)-sleep, 0))
		w.mu.Unlock()
	}
}

// Late is how late this machine woke a sleeper since the last call (or
// since the watch began): the median overshoot of the sleeps of that
// stretch, and no less than what Lateness measured at the start.
func (w *LatenessWatch) Late(t testing.TB) time.Duration {
	t.Helper()
	w.mu.Lock()
	late := w.late
	w.late = nil
	w.mu.Unlock()
	if len(late) == 0 {
		return w.start
	}
	l := median(late)
	t.Logf("while it measured, this machine woke a sleeper %v late (the median of %d sleeps of 10ms)", l, len(late))
	return max(l, w.start)
}

// median is the middle of overshoots, which it sorts.
func median(late []time.Duration) time.Duration {
	slices.Sort(late)
	return late[len(late)/2]
}
