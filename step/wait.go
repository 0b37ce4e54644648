package step

import (
	"context"
	"fmt"
	"time"

	"github.com/natlab/natlab/topology"
)

// Wait pauses the script, for instance to let mappings expire.
type Wait struct {
	Duration time.Duration
}

func (s *Wait) read(f *topology.StepFields) string {
	s.Duration = f.ScalarDuration(topology.MinWait, topology.MaxWait)
	return "wait " + topology.FormatDuration(s.Duration)
}

// Describe says how long the step waits.
func (s *Wait) Describe() string { return " " + topology.FormatDuration(s.Duration) }

// Expected is ok: a wait always passes unless the run is interrupted.
func (s *Wait) Expected() string { return "ok" }

// Needs is nothing.
func (s *Wait) Needs(Env) []Need { return nil }

// Run waits, or stops early when ctx ends.
func (s *Wait) Run(ctx context.Context, env Env) (Result, error) {
	t := time.NewTimer(s.Duration)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return Result{Observed: "interrupted", Reason: "the run was interrupted"}, nil
	}
	return Result{Expect: "ok", Observed: "ok", Pass: true, Detail: fmt.Sprintf("waited %v", s.Duration)}, nil
}
