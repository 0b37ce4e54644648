package ui_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
)

// Every action's sockets and goroutines end with it. A hundred actions
// (STUN, punches, relays, sends, walks) leave the process serving the
// page with the descriptors and goroutines it had after one of each.
func TestActionsLeaveNothingOpen(t *testing.T) {
	testutil.CheckRoutines(t)
	// Not parallel: it counts the whole process's descriptors and
	// goroutines, and the parallel tests wait until it is done.
	s := serve(t, storyLab)
	walk := []string{`{"walk": {"punch": {"between": ["alice", "bob"]}}}`,
		`{"walk-next": {}}`, `{"walk-next": {}}`, `{"walk-next": {}}`, `{"walk-next": {}}`}
	round := append([]string{
		`{"step": {"stun": {"from": "alice"}}}`,
		`{"step": {"punch": {"between": ["alice", "bob"]}}}`,
		`{"step": {"relay": {"between": ["alice", "bob"]}}}`,
		`{"step": {"send": {"from": "alice", "to": "meet", "port": 5000}}}`,
		// Over the path the punch opened.
		`{"step": {"send": {"from": "bob", "to": "alice"}}}`,
	}, walk...)
	act := func(body string) {
		t.Helper()
		code, res := s.post(t, body, nil)
		if code != 200 || res["ok"] != true {
			t.Fatalf("%s: %d %v", body, code, res)
		}
	}
	// What the server keeps for as long as it serves (a handle on each
	// node, the path a punch opened, the page's connection) is there
	// after the first round.
	for _, body := range round {
		act(body)
	}
	fds, goroutines := counts(t)
	for i := 0; i < 100/len(round); i++ {
		for _, body := range round {
			act(body)
		}
	}
	// A socket's last reader may take a moment to notice it closed: wait
	// for the counts to come back, up to a bound.
	const slack = 4
	var nowFDs, nowGoroutines int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nowFDs, nowGoroutines = counts(t)
		if nowFDs <= fds+slack && nowGoroutines <= goroutines+slack || time.Now().After(deadline) {
			break
		}
	}
	if nowFDs > fds+slack {
		t.Errorf("%d descriptors open after 100 actions, %d before", nowFDs, fds)
	}
	if nowGoroutines > goroutines+slack {
		t.Errorf("%d goroutines after 100 actions, %d before", nowGoroutines, goroutines)
	}
}

// counts says how many descriptors this process has open, and how many
// goroutines it runs.
func counts(t *testing.T) (fds, goroutines int) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries), runtime.NumGoroutine()
}
