package step

import (
	"context"
	"fmt"
	"strings"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

// PunchWalk is a punch step taken one phase at a time, for people to
// watch (natlab ui's walk): the same step, with the same sockets,
// servers, port prediction and announced endpoints as its Run, and the
// same phases of the same agents (punch.Walk), only taken one after the
// other. A walk that opens a path ends as Run does (keepPath): the path
// is kept for later sends between the hosts, kept alive when the step
// asks, and with explain its last phase tells what the NATs on the way
// dropped and what their tables hold.
type PunchWalk struct {
	step    *Punch
	env     Env
	walk    *punch.Walk
	tracers map[string]*trace.Tracer
	// kept says the sockets went to Memory with the path: Close leaves
	// them open.
	kept bool
}

// Walk starts walking the punch on env. The walk owns its sockets until
// it hands them to Memory with a path it opened; Close closes the
// others.
func (s *Punch) Walk(ctx context.Context, env Env) (*PunchWalk, error) {
	if s.Proto == topology.TCP {
		return nil, fmt.Errorf("a walk takes a udp punch, phase by phase; a tcp punch runs whole, as a step of a scenario")
	}
	peers, cfg, err := s.peers(env)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		env.Keep(p.Conn)
	}
	w := &PunchWalk{step: s, env: env, walk: punch.NewWalk(cfg, peers[0], peers[1])}
	if s.Explain {
		w.tracers = traceNATs(ctx, env, s.Between[:])
	}
	return w, nil
}

// Next takes the walk's next phase.
func (w *PunchWalk) Next(ctx context.Context) (punch.WalkStep, error) {
	st, err := w.walk.Next(ctx)
	if err != nil || !st.Done {
		if err != nil {
			stopTracers(w.tracers)
			w.tracers = nil
		}
		return st, err
	}
	s := w.step
	drops := stopTracers(w.tracers)
	w.tracers = nil
	if st.OK {
		// As Run ends a punch that worked.
		s.keepPath(w.env, w.walk.Conns(), w.walk.Seen())
		w.kept = true
		if s.Keepalive > 0 {
			st.Lines = append(st.Lines, fmt.Sprintf("Both keep the path open, sending over it every %v.", s.Keepalive))
		}
	}
	if s.Explain {
		var tables map[string]*nattable.Table
		if st.OK {
			tables = tablesOf(ctx, w.env, s.Between[:])
		}
		if e := explain(nil, drops, tables); e != "" {
			st.Lines = append(st.Lines, strings.Split(e, "\n")...)
		}
	}
	return st, nil
}

// Over says whether every phase has been taken.
func (w *PunchWalk) Over() bool { return w.walk.Over() }

// Close ends the walk, and closes its sockets unless a path it opened
// holds them.
func (w *PunchWalk) Close() {
	stopTracers(w.tracers)
	w.tracers = nil
	if w.kept {
		w.walk.Stop()
		return
	}
	w.walk.Close()
}
