package runner

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
)

// TestCloseJoinsBackground checks that Close ends and waits for what
// steps started to outlast them (keepalives), and runs their closers,
// and that the session starts nothing once closed.
func TestCloseJoinsBackground(t *testing.T) {
	testutil.CheckRoutines(t)
	sess := New(&labstate.State{Name: "close"}, &topology.Topology{Name: "close"})
	ended := make(chan struct{}, 10)
	closed := 0
	for range 10 {
		env := sess.Env()
		env.Go(func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(time.Millisecond)
			ended <- struct{}{}
		})
		env.OnClose(func() error { closed++; return nil })
		env.Close()
	}
	sess.Close()
	if len(ended) != 10 || closed != 10 {
		t.Errorf("after Close, %d of 10 background goroutines had ended and %d of 10 closers run", len(ended), closed)
	}
	sess.Close()
	sess.Env().Go(func(context.Context) { t.Error("a closed session started a goroutine") })
}

// Steps still starting background work and registering closers as the
// session closes, from other goroutines: once any Close returns, every
// goroutine Go started has ended, every closer has run, and no node can
// be opened that Close would not close.
func TestCloseRacesSteps(t *testing.T) {
	testutil.CheckRoutines(t)
	for range 200 {
		sess := New(&labstate.State{Name: "race"}, &topology.Topology{Name: "race"})
		var started, ended, registered, run atomic.Int64
		var steps sync.WaitGroup
		for range 4 {
			steps.Go(func() {
				env := sess.Env()
				defer env.Close()
				for range 5 {
					env.Go(func(ctx context.Context) {
						started.Add(1)
						<-ctx.Done()
						ended.Add(1)
					})
					registered.Add(1)
					env.OnClose(func() error { run.Add(1); return nil })
				}
			})
		}
		var closers sync.WaitGroup
		for range 2 {
			closers.Go(func() {
				sess.Close()
				if s, e := started.Load(), ended.Load(); s != e {
					t.Errorf("Close returned with %d of %d background goroutines still running", s-e, s)
				}
			})
		}
		closers.Wait()
		steps.Wait()
		if r, n := registered.Load(), run.Load(); r != n {
			t.Errorf("%d closers registered, %d run", r, n)
		}
		if _, err := sess.Env().Node("alice"); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("a closed session opened a node: %v", err)
		}
		if t.Failed() {
			return
		}
	}
}
