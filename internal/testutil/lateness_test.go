package testutil

import (
	"testing"
	"time"
)

func TestLateDelay(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		got, want, tol time.Duration
		wakes          int
		lateness       time.Duration
		ok             bool
	}{
		{got: 100 * ms, want: 100 * ms, tol: 3 * ms, ok: true},
		{got: 103 * ms, want: 100 * ms, tol: 3 * ms, ok: true},
		{got: 104 * ms, want: 100 * ms, tol: 3 * ms, ok: false},
		{got: 104 * ms, want: 100 * ms, tol: 3 * ms, wakes: 4, lateness: ms / 4, ok: true},
		{got: 107 * ms, want: 100 * ms, tol: 3 * ms, wakes: 4, lateness: ms, ok: true},
		{got: 108 * ms, want: 100 * ms, tol: 3 * ms, wakes: 4, lateness: ms, ok: false},
		// Late, never early: a slow machine widens only the upper bound.
		{got: 96 * ms, want: 100 * ms, tol: 3 * ms, wakes: 4, lateness: ms, ok: false},
		{got: 97 * ms, want: 100 * ms, tol: 3 * ms, wakes: 4, lateness: ms, ok: true},
	} {
		if ok := LateDelay(c.got, c.want, c.tol, c.wakes, c.lateness); ok != c.ok {
			t.Errorf("LateDelay(%v, want %v ± %v, %d wakes of %v) = %v, want %v", c.got, c.want, c.tol, c.wakes, c.lateness, ok, c.ok)
		}
	}
}
