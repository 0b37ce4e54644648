package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/topology"
)

// linksLab is one host behind a NAT and a server: alice's link is the one
// shaped.
const linksLab = `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  nat:    {kind: nat, type: port-restricted-cone, public: 203.0.113.1, lan: 192.168.1.0/24}
  alice:  {kind: host, behind: nat, address: 192.168.1.2}
`

// The goals of the links: a link with a 10 ms delay carries 50,000
// packets a second with its median delay within 1 ms of that, and a lab
// of 100 shaped links comes up within 1.3 times the same lab's time
// unshaped.
const (
	linkDelay   = 10 * time.Millisecond
	offeredPPS  = 60000
	floodDelay  = 2 * time.Second
	shapedLinks = 100
)

func links(ctx context.Context, cfg config, r *report, log io.Writer) (err error) {
	topo, err := topology.Parse("links.yaml", []byte(linksLab), nil)
	if err != nil {
		return err
	}
	topo.Name = uniqueName("l")
	st, err := lab.Up(ctx, topo, lab.Options{Source: "natlab-bench", Scenario: []byte(linksLab)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, downLab(st.Name)) }()
	l := &linkBench{name: st.Name}
	if err := l.open(); err != nil {
		return err
	}
	defer l.close()
	seconds := 3.0
	if cfg.quick {
		seconds = 0.5
	}
	// The same flow unshaped first: what the path adds without the link.
	base, err := l.flow(offeredPPS, 1)
	if err != nil {
		return err
	}
	up := linkcond.Direction{Delay: linkDelay}
	if _, err := lab.SetLink(ctx, st.Name, "alice", linkcond.To(linkcond.Link{Up: up})); err != nil {
		return err
	}
	if st, err = labstate.Load(st.Name); err != nil {
		return err
	}
	mech := st.LinkMechanism
	shaped, err := l.flow(offeredPPS, seconds)
	if err != nil {
		return err
	}
	added := shaped.median - base.median
	fmt.Fprintf(log, "  %s: offered %d packets/s for %.1fs; unshaped %.0f/s, median %v; with 10 ms up: %.0f/s, median %v (added %v)\n",
		mech, offeredPPS, seconds, base.pps, round(base.median), shaped.pps, round(shaped.median), round(added))
	r.Measured["links"] = map[string]any{"mechanism": mech, "offered_pps": offeredPPS,
		"unshaped_pps": base.pps, "unshaped_median_s": base.median.Seconds(), "shaped_pps": shaped.pps, "shaped_median_s": shaped.median.Seconds()}
	r.add(&goal{Suite: "links", Name: "packets/s through a link of 10 ms delay", Value: shaped.pps, Unit: "/s", Target: 50000, Higher: true,
		Detail: fmt.Sprintf("%s; offered %d/s; unshaped %.0f/s in the same run (%.2fx)", mech, offeredPPS, base.pps, shaped.pps/base.pps)})
	r.add(&goal{Suite: "links", Name: "median added delay, off the 10 ms set", Value: float64(abs(added-linkDelay)) / 1e6, Unit: "ms", Target: 1,
		Detail: fmt.Sprintf("added %v at %.0f packets/s (median %v, unshaped %v)", round(added), shaped.pps, round(shaped.median), round(base.median))})
	// How far past the goal: offered more than one sender here sends.
	most, err := l.flow(4*offeredPPS, seconds/3)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "  offered %d packets/s: %.0f/s through, median %v\n", 4*offeredPPS, most.pps, round(most.median))
	r.add(&goal{Suite: "links", Name: "packets/s through a link of 10 ms delay, offered all a sender sends", Value: most.pps, Unit: "/s", Info: true,
		Detail: fmt.Sprintf("offered %d/s; median delay %v", 4*offeredPPS, round(most.median))})

	if err := l.flood(ctx, r, log, mech, seconds); err != nil {
		return err
	}
	return upShaped(ctx, cfg, r, log)
}

// linkBench is linksLab, up, with a socket in alice and one in the
// server.
type linkBench struct {
	name     string
	from, to *net.UDPConn
	dest     netip.AddrPort
}

func (l *linkBench) open() error {
	var err error
	if l.from, err = listenIn(lab.NamespaceName(l.name, "alice"), "0.0.0.0:0"); err != nil {
		return err
	}
	if l.to, err = listenIn(lab.NamespaceName(l.name, "server"), "0.0.0.0:9"); err != nil {
		return err
	}
	l.to.SetReadBuffer(32 << 20)
	l.dest = netip.MustParseAddrPort("203.0.113.10:9")
	return nil
}

func (l *linkBench) close() {
	l.from.Close()
	l.to.Close()
}

func listenIn(ns, at string) (*net.UDPConn, error) {
	h, err := namedns.Open(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var c *net.UDPConn
	err = namedns.Do(h, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(at)))
		return err
	})
	return c, err
}

// flowResult is what one flow measured: packets a second received, and
// the median one-way delay.
type flowResult struct {
	pps    float64
	median time.Duration
}

// flow sends 64-byte datagrams from alice to the server at pps for
// seconds and measures, at the server, how many arrive a second and how
// long each took: sender and receiver read one clock.
func (l *linkBench) flow(pps int, seconds float64) (flowResult, error) {
	start := time.Now()
	var delays []time.Duration
	var first, last time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			l.to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := l.to.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n >= 8 {
				delays = append(delays, now.Sub(start)-time.Duration(binary.BigEndian.Uint64(buf)))
				if first.IsZero() {
					first = now
				}
				last = now
			}
		}
	})
	buf := make([]byte, 64)
	total := int(float64(pps) * seconds)
	sent := 0
	for sent < total {
		// As many as are due by now, then a short sleep: a steady rate
		// in bursts of a fraction of a millisecond.
		due := min(total, int(time.Since(start).Seconds()*float64(pps)))
		for ; sent < due; sent++ {
			binary.BigEndian.PutUint64(buf, uint64(time.Since(start)))
			if _, err := l.from.WriteToUDPAddrPort(buf, l.dest); err != nil {
				wg.Wait()
				return flowResult{}, err
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	wg.Wait()
	if len(delays) < 2 {
		return flowResult{}, fmt.Errorf("%d of %d packets arrived", len(delays), total)
	}
	slices.Sort(delays)
	return flowResult{pps: float64(len(delays)-1) / last.Sub(first).Seconds(), median: delays[len(delays)/2]}, nil
}

// flood sends from alice as fast as it can for a while through a link
// that holds every packet for floodDelay, and watches the memory of the
// process that holds them, and how many the kernel holds for it.
func (l *linkBench) flood(ctx context.Context, r *report, log io.Writer, mech string, seconds float64) error {
	if mech != string(linkshape.DelayLine) {
		r.skip("links", "delay line memory under a flood", "the kernel has netem: no delay line")
		return nil
	}
	if _, err := lab.SetLink(ctx, l.name, "alice", linkcond.To(linkcond.Link{Up: linkcond.Direction{Delay: floodDelay}})); err != nil {
		return err
	}
	st, err := labstate.Load(l.name)
	if err != nil {
		return err
	}
	pid := 0
	for _, p := range st.Processes {
		if p.What == lab.DelayLineProcess {
			pid = p.PID
		}
	}
	if pid == 0 {
		return errors.New("no delay line process is recorded")
	}
	idle, err := rssKiB(pid)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peakRSS int64
	var peakHeld, dropped int
	wg.Go(func() {
		for {
			if k, err := rssKiB(pid); err == nil {
				peakRSS = max(peakRSS, k)
			}
			if held, drop, err := queueStats(lab.NamespaceName(l.name, "nat")); err == nil {
				peakHeld, dropped = max(peakHeld, held), drop
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	buf := make([]byte, 64)
	sent := 0
	end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for time.Now().Before(end) {
		if _, err := l.from.WriteToUDPAddrPort(buf, l.dest); err == nil {
			sent++
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	fmt.Fprintf(log, "  flood: %d packets in %.1fs through a link of %v; the kernel held at most %d for the delay line (limit %d) and dropped %d; its memory %d KiB idle, %d KiB at most\n",
		sent, seconds, floodDelay, peakHeld, linkshape.Limit, dropped, idle, peakRSS)
	r.Measured["links_flood"] = map[string]any{"sent": sent, "held_max": peakHeld, "limit": linkshape.Limit, "dropped": dropped, "rss_idle_kib": idle, "rss_peak_kib": peakRSS}
	r.add(&goal{Suite: "links", Name: "delay line memory under a flood, peak vs idle", Value: float64(peakRSS) / float64(idle), Unit: "x", Target: 2,
		Detail: fmt.Sprintf("%d vs %d KiB; %d packets sent in %.1fs, at most %d held (the limit: %d, then dropped, as netem does; %d were)", peakRSS, idle, sent, seconds, peakHeld, linkshape.Limit, dropped)})
	r.add(&goal{Suite: "links", Name: "packets the kernel held for the delay line, at most", Value: float64(peakHeld), Unit: "", Target: linkshape.Limit,
		Detail: "its queue's maxlen bounds what a flood costs the kernel"})
	// Let the held packets go before the lab is taken down.
	_, err = lab.SetLink(ctx, l.name, "alice", linkcond.To(linkcond.Link{}))
	return err
}

// rssKiB is a process's resident memory.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// queueStats reads, in namespace ns, how many packets the delay line's
// queue holds and how many the kernel dropped for want of room
// (/proc/net/netfilter/nfnetlink_queue: queue, portid, waiting, copy
// mode, range, dropped, user dropped, last id, 1).
func queueStats(ns string) (held, dropped int, err error) {
	h, err := namedns.Open(ns)
	if err != nil {
		return 0, 0, err
	}
	defer h.Close()
	var data []byte
	err = namedns.Do(h, func() error {
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue")
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 7 && f[0] == strconv.Itoa(linkshape.QueueNum) {
			held, _ = strconv.Atoi(f[2])
			d, _ := strconv.Atoi(f[5])
			u, _ := strconv.Atoi(f[6])
			return held, d + u, nil
		}
	}
	return 0, 0, errors.New("no delay line queue")
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// upShaped times natlab up of a lab of 100 shaped links (10 NATs with 9
// hosts each, every one's link shaped) against the same lab unshaped.
func upShaped(ctx context.Context, cfg config, r *report, log io.Writer) error {
	dir, err := os.MkdirTemp("", "natlab-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	write := func(name, link string) (string, error) {
		var b strings.Builder
		b.WriteString("nodes:\n  stun: {kind: server, services: [stun]}\n")
		for i := range shapedLinks / 10 {
			fmt.Fprintf(&b, "  nat%d: {kind: nat, lan: 10.0.%d.0/24%s}\n", i, i, link)
			for j := range 9 {
				fmt.Fprintf(&b, "  h%d-%d: {kind: host, behind: nat%d%s}\n", i, j, i, link)
			}
		}
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, []byte(b.String()), 0o644)
	}
	plain, err := write("plain.yaml", "")
	if err != nil {
		return err
	}
	shapedFile, err := write("shaped.yaml", ", link: {delay: 10ms, jitter: 1ms, loss: 0.1%, rate: 100mbit}")
	if err != nil {
		return err
	}
	rounds := 7
	if cfg.quick {
		rounds = 1
	}
	var times [2]sample
	for range rounds {
		// Alternated, so that the machine's load falls on both alike.
		for i, file := range []string{plain, shapedFile} {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := uniqueName("u")
			d, _, err := runNatlab(ctx, cfg.natlab, "up", file, "--name", name)
			if err != nil {
				runNatlab(context.Background(), cfg.natlab, "down", name)
				return err
			}
			times[i] = append(times[i], d)
			if _, _, err := runNatlab(ctx, cfg.natlab, "down", name); err != nil {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Fprintf(log, "  up of %d links: unshaped %s; shaped %s\n", shapedLinks, times[0].spread(), times[1].spread())
	r.Measured["links_up"] = map[string]any{"unshaped_s": times[0].seconds(), "shaped_s": times[1].seconds()}
	r.add(&goal{Suite: "links", Name: fmt.Sprintf("up of %d shaped links vs the same lab unshaped", shapedLinks), Value: ratio(times[1].median(), times[0].median()), Unit: "x", Target: 1.3,
		Detail: fmt.Sprintf("%v vs %v (medians of %d; delay, jitter, loss and rate on every link)", round(times[1].median()), round(times[0].median()), rounds)})
	return nil
}
