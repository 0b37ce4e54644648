package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// parallel brings 20 copies of scenarios/symmetric.yaml up at once, from
// 20 natlab processes, checks each works on its own (the same addresses
// in every lab), and takes them down at once; then the same one after
// another.
func parallel(ctx context.Context, cfg config, r *report, log io.Writer) error {
	labs := 20
	if cfg.quick {
		labs = 4
	}
	scenario := filepath.Join(cfg.repo, "scenarios", "symmetric.yaml")
	names := make([]string, labs)
	for i := range names {
		names[i] = uniqueName("p")
	}
	all := func(fn func(name string) error) error {
		var wg sync.WaitGroup
		errs := make([]error, labs)
		for i, name := range names {
			wg.Go(func() { errs[i] = fn(name) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	up := func(name string) error {
		_, _, err := runNatlab(ctx, cfg.natlab, "up", scenario, "--name", name)
		return err
	}
	down := func(name string) error {
		_, _, err := runNatlab(context.Background(), cfg.natlab, "down", name)
		return err
	}
	// Every lab has the same addresses: a ping through each lab's NAT
	// reaches its own server only if the labs are apart.
	works := func(name string) error {
		out, err := exec.CommandContext(ctx, cfg.natlab, "exec", name, "alice", "--", "ping", "-c1", "-W2", "203.0.113.10").CombinedOutput()
		if err != nil {
			return fmt.Errorf("lab %s: alice cannot reach its server: %v\n%s", name, err, out)
		}
		return nil
	}

	start := time.Now()
	err := all(up)
	parallelUp := time.Since(start)
	if err == nil {
		err = all(works)
	}
	start = time.Now()
	if derr := all(down); derr != nil {
		return errors.Join(err, derr)
	}
	parallelDown := time.Since(start)
	if err != nil {
		return err
	}
	settle()

	var serial time.Duration
	for _, name := range names {
		start := time.Now()
		if err := up(name); err != nil {
			return err
		}
		if err := down(name); err != nil {
			return err
		}
		serial += time.Since(start)
	}
	par := parallelUp + parallelDown
	fmt.Fprintf(log, "  %d labs at once: up %v, down %v; one after another: %v\n", labs, round(parallelUp), round(parallelDown), round(serial))
	r.Measured["parallel"] = map[string]float64{"labs": float64(labs), "parallel_up_s": parallelUp.Seconds(), "parallel_down_s": parallelDown.Seconds(), "serial_s": serial.Seconds()}
	r.add(&goal{Suite: "parallel", Name: fmt.Sprintf("%d labs at once vs one after another", labs), Value: ratio(par, serial), Unit: "x", Target: 1,
		Detail: fmt.Sprintf("at once %v, in turn %v; all %d labs worked apart", round(par), round(serial), labs)})
	return nil
}
