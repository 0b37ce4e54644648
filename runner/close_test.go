package runner

import (
	"context"
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
