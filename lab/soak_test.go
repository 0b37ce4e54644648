package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// soakScenario is small but has a bit of everything a cycle can leak: a
// service process, a NAT's rules, sockets of a run in three nodes.
const soakScenario = `
nodes:
  stun:   {kind: server, services: [stun]}
  nat:    {kind: nat, type: port-restricted-cone}
  alice:  {kind: host, behind: nat}
  friend: {kind: host}
steps:
  - stun: {from: alice}
  - send: {from: alice, to: friend, expect: delivered}
  - send: {from: friend, to: alice, expect: delivered}
`

// Soak defaults: what fits a CI run. NATLAB_SOAK=500 (make soak) runs the
// full soak.
const (
	soakCycles = 200
	soakBudget = 30 * time.Second
	soakBatch  = 10
	// soakSettle is how long counts may take to come back down after a
	// batch: reaper goroutines and closing sockets finish after Down.
	soakSettle = 2 * time.Second
)

// soakSample is what the test process and the kernel hold at one point.
type soakSample struct {
	cycles     int
	namespaces int // named namespaces of this test's labs
	mounts     int // mounts of them
	services   int // service processes of this test's labs
	children   int // processes whose parent is the test
	fds        int
	goroutines int
	heap       uint64 // HeapInuse after a GC
	live       uint64 // HeapAlloc after a GC: the live objects alone
}

func (s soakSample) String() string {
	return fmt.Sprintf("after %d cycles: %d namespaces, %d mounts, %d service processes, %d children, %d fds, %d goroutines, heap in use %.2f MiB (live %.2f MiB)",
		s.cycles, s.namespaces, s.mounts, s.services, s.children, s.fds, s.goroutines, float64(s.heap)/(1<<20), float64(s.live)/(1<<20))
}

func soakMeasure(prefix string, cycles int) soakSample {
	s := soakSample{cycles: cycles}
	ns, _ := filepath.Glob("/run/netns/natlab-" + prefix + "*")
	s.namespaces = len(ns)
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		s.mounts = strings.Count(string(mounts), "/natlab-"+prefix)
	}
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		i := strings.LastIndexByte(string(data), ')')
		if err != nil || i < 0 {
			continue
		}
		// After the command name: state, then the parent's PID.
		if f := strings.Fields(string(data[i+1:])); len(f) > 1 && f[1] == self {
			s.children++
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		if strings.HasPrefix(string(cmdline), "natlab-service "+prefix) {
			s.services++
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(fds)
	}
	s.goroutines = runtime.NumGoroutine()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.heap, s.live = m.HeapInuse, m.HeapAlloc
	return s
}

// soakSettled measures until the counts that drop asynchronously are no
// higher than base's plus slack, or soakSettle has passed.
func soakSettled(prefix string, cycles int, base soakSample, slack int) soakSample {
	deadline := time.Now().Add(soakSettle)
	for {
		s := soakMeasure(prefix, cycles)
		if time.Now().After(deadline) || (s.namespaces == 0 && s.mounts == 0 && s.services == 0 &&
			s.children <= base.children && s.fds <= base.fds+slack && s.goroutines <= base.goroutines+slack) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func soakEnv(t *testing.T) (cycles int, budget time.Duration) {
	cycles, budget = soakCycles, soakBudget
	if v := os.Getenv("NATLAB_SOAK"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2*soakBatch {
			t.Fatalf("NATLAB_SOAK=%q: want a number of cycles, at least %d", v, 2*soakBatch)
		}
		cycles, budget = n, 20*time.Minute
	}
	if d, ok := t.Deadline(); ok && time.Until(d)-time.Minute < budget {
		// Leave time to take the last lab down and check for leaks.
		budget = max(time.Until(d)-time.Minute, 0)
	}
	return cycles, budget
}

// Cycles of up, a small run and down, in one process, as natlab ui or a
// long test session does them: nothing may pile up, in the kernel (named
// namespaces, mounts, processes) or in the process (descriptors,
// goroutines, memory).
func TestSoakUpRunDown(t *testing.T) {
	testutil.RequireRoot(t)
	cycles, budget := soakEnv(t)
	prefix := testutil.UniqueName(t)
	t.Cleanup(func() {
		names, _ := labstate.Names()
		for _, name := range names {
			if strings.HasPrefix(name, prefix) {
				lab.Down(context.Background(), name, nil)
			}
		}
	})
	ctx := context.Background()
	cycle := func(i int) error {
		name := fmt.Sprintf("%ss%04d", prefix, i)
		topo, err := step.Parse(name+".yaml", []byte(soakScenario))
		if err != nil {
			return err
		}
		topo.Name = name
		st, err := lab.Up(ctx, topo, lab.Options{Source: "test:soak", Scenario: []byte(soakScenario)})
		if err != nil {
			return err
		}
		rep, runErr := runner.Run(ctx, st, topo, runner.Options{})
		if _, err := lab.Down(context.Background(), name, nil); err != nil {
			return fmt.Errorf("cycle %d: down: %w", i, err)
		}
		if runErr != nil {
			return fmt.Errorf("cycle %d: run: %w", i, runErr)
		}
		if !rep.Passed || len(rep.Steps) != 3 {
			return fmt.Errorf("cycle %d: run: %d of %d steps failed: %+v", i, rep.Failed(), len(rep.Steps), rep.Steps)
		}
		return nil
	}

	// The first batch warms up what is made once per process (netlink
	// and nftables state, the runtime's threads and pools).
	start := time.Now()
	done := 0
	for ; done < soakBatch; done++ {
		if err := cycle(done); err != nil {
			t.Fatal(err)
		}
	}
	const slack = 3
	base := soakSettled(prefix, done, soakSample{children: 1 << 30, fds: 1 << 30, goroutines: 1 << 30}, 0)
	t.Logf("%s (%v a cycle)", base, (time.Since(start) / time.Duration(done)).Round(time.Millisecond))
	last := base
	batchStart := time.Now()
	for done < cycles {
		if time.Since(start) > budget {
			t.Logf("time budget of %v spent after %d of %d cycles; checking what they left", budget, done, cycles)
			break
		}
		if err := cycle(done); err != nil {
			t.Fatal(err)
		}
		done++
		if done%soakBatch == 0 || done == cycles {
			last = soakSettled(prefix, done, base, slack)
			t.Logf("%s (%v a cycle)", last, (time.Since(batchStart) / soakBatch).Round(time.Millisecond))
			batchStart = time.Now()
		}
	}
	if last.cycles != done {
		last = soakSettled(prefix, done, base, slack)
	}
	t.Logf("%d cycles in %v", done, time.Since(start).Round(time.Millisecond))

	if last.namespaces != 0 || last.mounts != 0 || last.services != 0 {
		t.Errorf("labs left behind: %s", last)
	}
	if last.children > base.children {
		t.Errorf("child processes grew from %d to %d", base.children, last.children)
	}
	if last.fds > base.fds+slack {
		t.Errorf("open descriptors grew from %d to %d", base.fds, last.fds)
	}
	if last.goroutines > base.goroutines+slack {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, last.goroutines)
	}
	// The heap may move by a few hundred KiB as pools and caches settle,
	// never with the number of cycles: a cycle's topology, record and
	// report alone take about 6 KiB, so keeping them, let alone a
	// session with its sockets, breaks the bound over a CI run, and by
	// far over a full soak.
	grown := int64(last.heap) - int64(base.heap)
	if limit := int64(512<<10) + int64(done-base.cycles)*(2<<10); grown > limit {
		t.Errorf("heap in use grew by %.2f MiB over %d cycles (limit %.2f MiB): %s, then %s",
			float64(grown)/(1<<20), done-base.cycles, float64(limit)/(1<<20), base, last)
	}
}
