package testutil

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// routineLabel is the pprof label CheckRoutines puts on a test's
// goroutine. Goroutines inherit their creator's labels, so every
// goroutine the test starts, and every one those start, carries it: a
// test's goroutines are told from those of tests running in parallel.
const routineLabel = "natlab.test"

// routineTries bounds how often CheckRoutines looks again for the test's
// goroutines to end, the waits between looks growing from a millisecond
// to routineMaxWait: about five seconds in all, for a goroutine told to
// stop (a closed socket's reader, a cancelled context) to get there.
const (
	routineTries   = 60
	routineMaxWait = 100 * time.Millisecond
)

// CheckRoutines fails the test if goroutines it started are still running
// once it has ended and its cleanups have run, as pion's
// transport/test.CheckRoutines does: it names every goroutine started
// after the call by the test's goroutine, directly or through others, and
// when the test ends waits a little for them to end, then prints the
// stacks of those that did not. Call it first in the test, from the
// test's goroutine: cleanups run last first, so what the test registers
// after it (closing a session, taking a lab down) has run by the time it
// looks. It works in parallel tests; goroutines started by timers
// (time.AfterFunc) or by goroutines older than the call are not counted.
func CheckRoutines(t testing.TB) {
	t.Helper()
	checkRoutines(t, routineTries)
}

func checkRoutines(t testing.TB, tries int) {
	t.Helper()
	// The test's own address makes the label unique even across
	// -count runs of one test.
	id := fmt.Sprintf("%s %p", t.Name(), t)
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(routineLabel, id)))
	t.Cleanup(func() {
		t.Helper()
		wait := time.Millisecond
		var left []string
		for try := 0; ; try++ {
			if left = routinesOf(id); len(left) == 0 {
				return
			}
			if try+1 >= tries {
				break
			}
			time.Sleep(wait)
			wait = min(2*wait, routineMaxWait)
		}
		n := 0
		for _, s := range left {
			c, _, _ := strings.Cut(s, " ")
			k, _ := strconv.Atoi(c)
			n += k
		}
		what := fmt.Sprintf("%d goroutines the test started still run", n)
		if n == 1 {
			what = "a goroutine the test started still runs"
		}
		t.Errorf("%s after it ended (count @ stack):\n\n%s", what, strings.Join(left, "\n\n"))
	})
}

// routinesOf returns the stacks of the running goroutines labelled id,
// each with how many goroutines are there, as the goroutine profile
// gives them: identical stacks counted once.
func routinesOf(id string) []string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	want := fmt.Sprintf("%q:%q", routineLabel, id)
	var out []string
	// After a header line, one record per stack: "N @ pcs", its labels,
	// its frames, then a blank line.
	_, records, _ := strings.Cut(buf.String(), "\n")
	for _, rec := range strings.Split(records, "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "# labels: {") || !strings.Contains(lines[1], want) || ownRoutine(rec) {
			continue
		}
		out = append(out, rec)
	}
	return out
}

// ownRoutine says whether a stack is one the runtime or package testing
// keeps on purpose: the goroutine of the test (which reads the profile)
// and of its subtests, and the signal handler os/signal starts once for
// the process.
func ownRoutine(stack string) bool {
	for _, f := range []string{
		"runtime/pprof.writeGoroutine",
		"testing.tRunner",
		"os/signal.signal_recv",
		"os/signal.loop",
	} {
		if strings.Contains(stack, "\t"+f) {
			return true
		}
	}
	return false
}
