package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// scaleLab writes a scenario of nats NATs with hosts hosts each and a
// STUN server: nats*(hosts+1)+2 namespaces with the internet's.
func scaleLab(dir string, nats, hosts int) (string, error) {
	var b strings.Builder
	b.WriteString("nodes:\n  stun: {kind: server, services: [stun]}\n")
	types := []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}
	for i := range nats {
		// 10.I.J.0/24 LANs: room for far more than 255 of them.
		fmt.Fprintf(&b, "  nat%d: {kind: nat, type: %s, lan: 10.%d.%d.0/24}\n", i, types[i%len(types)], i/250, i%250)
		for j := range hosts {
			fmt.Fprintf(&b, "  h%d-%d: {kind: host, behind: nat%d}\n", i, j, i)
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("scale-%d-%d.yaml", nats, hosts))
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// run times a natlab command and reads its peak memory.
func runNatlab(ctx context.Context, natlab string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, natlab, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, 0, fmt.Errorf("natlab %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	rss := int64(0)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return d, rss, nil
}

// runNatlabTo runs natlab with args and writes what it prints on stdout
// to the file out.
func runNatlabTo(ctx context.Context, natlab, out string, args ...string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, natlab, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("natlab %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return f.Close()
}

func scale(ctx context.Context, cfg config, r *report, log io.Writer) error {
	dir, err := os.MkdirTemp("", "natlab-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Hosts behind 10-host NATs: 10, 100 and 1,000, then the goal's 100
	// NATs of 10 hosts (1,102 namespaces).
	sizes := []int{1, 10, 100}
	if cfg.quick {
		sizes = []int{1, 10}
	}
	type point struct {
		NATs, Hosts, Namespaces int
		UpS, DownS              float64
		UpRSSKiB, DownRSSKiB    int64
	}
	var points []point
	for _, nats := range sizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		file, err := scaleLab(dir, nats, 10)
		if err != nil {
			return err
		}
		name := uniqueName("s")
		up, upRSS, err := runNatlab(ctx, cfg.natlab, "up", file, "--name", name)
		if err != nil {
			runNatlab(context.Background(), cfg.natlab, "down", name)
			return err
		}
		down, downRSS, err := runNatlab(ctx, cfg.natlab, "down", name)
		if err != nil {
			return err
		}
		p := point{NATs: nats, Hosts: nats * 10, Namespaces: nats*11 + 2, UpS: up.Seconds(), DownS: down.Seconds(), UpRSSKiB: upRSS, DownRSSKiB: downRSS}
		points = append(points, p)
		fmt.Fprintf(log, "  %5d hosts (%4d namespaces): up %v (%.2fms a namespace), down %v, peak memory %d MiB\n",
			p.Hosts, p.Namespaces, round(up), 1000*p.UpS/float64(p.Namespaces), round(down), max(upRSS, downRSS)/1024)
		// The kernel frees namespaces in the background, for a while
		// after a large lab.
		time.Sleep(time.Duration(p.Namespaces) * 3 * time.Millisecond)
	}
	r.Measured["scale"] = points
	last := points[len(points)-1]
	if last.NATs == 100 {
		r.add(&goal{Suite: "scale", Name: "up of 100 NATs x 10 hosts", Value: last.UpS, Unit: "s", Target: 15, Detail: fmt.Sprintf("%d namespaces", last.Namespaces)})
		r.add(&goal{Suite: "scale", Name: "down of 100 NATs x 10 hosts", Value: last.DownS, Unit: "s", Target: 10})
		r.add(&goal{Suite: "scale", Name: "peak memory of up or down", Value: float64(max(last.UpRSSKiB, last.DownRSSKiB)) / 1024, Unit: "MiB", Target: 200})
	} else {
		r.skip("scale", "100 NATs x 10 hosts", "-quick")
	}
	// Linear: the time a namespace takes at the largest size is within
	// 1.5x of that at 100 hosts.
	mid := points[max(0, len(points)-2)]
	per := func(p point) float64 { return p.UpS / float64(p.Namespaces) }
	r.add(&goal{Suite: "scale", Name: fmt.Sprintf("up time a namespace, %d vs %d hosts", last.Hosts, mid.Hosts), Value: per(last) / per(mid), Unit: "x", Target: 1.5,
		Detail: fmt.Sprintf("%.2fms vs %.2fms a namespace", 1000*per(last), 1000*per(mid))})
	return nil
}
