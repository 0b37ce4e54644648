package runner

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

func (r *Session) punch(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	a, b := s.Between[0], s.Between[1]
	peers, cfg, err := r.punchPeers(sc, s)
	if err != nil {
		return StepResult{}, err
	}
	var tracers map[string]*trace.Tracer
	if s.Explain {
		tracers = r.traceNATs(s.Between[:])
	}
	out, err := punch.Pair(ctx, cfg, peers[0], peers[1])
	drops := stopTracers(tracers)
	res := StepResult{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("%s and %s found no direct path within %v", a, b, s.Timeout)
		if s.Explain {
			res.Detail += "\n" + explain(out, drops, nil)
		}
		return verdict(s, "fail", res), nil
	}
	rtt := out.A.MedianRTT()
	r.mu.Lock()
	r.directRTT[[2]string{a, b}], r.directRTT[[2]string{b, a}] = rtt, rtt
	r.keepPath(sc, [3]string{a, b, s.Family}, path{peers[0].Conn, out.A.Seen})
	r.keepPath(sc, [3]string{b, a, s.Family}, path{peers[1].Conn, out.B.Seen})
	r.mu.Unlock()
	r.remember(a, b, out.A.Seen)
	r.remember(b, a, out.B.Seen)
	if s.Keepalive > 0 {
		// Each ends with the session, or when a new punch between the
		// hosts closes the socket it keeps alive.
		for i, seen := range []netip.AddrPort{out.A.Seen, out.B.Seen} {
			r.bgDone.Add(1)
			go func() {
				defer r.bgDone.Done()
				punch.KeepAlive(r.bg, peers[i].Conn, seen, s.Keepalive)
			}()
		}
	}
	res.Detail = fmt.Sprintf("%s <-> %s direct: first packet after %v, both ways after %v, rtt %v; %s",
		a, b, Round(min(out.A.FirstPacket, out.B.FirstPacket)), Round(max(out.A.Confirmed, out.B.Confirmed)), Round(rtt), reflexive(out))
	if s.Keepalive > 0 {
		res.Detail += fmt.Sprintf("; kept alive every %v", s.Keepalive)
	}
	if s.Explain {
		res.Detail += "\n" + explain(out, drops, r.tablesOf(s.Between[:]))
	}
	return verdict(s, "ok", res), nil
}

func reflexive(out *punch.Outcome) string {
	var parts []string
	for _, p := range []struct {
		by, of string
		r      *punch.Result
	}{{out.A.Peer, out.B.Peer, out.A}, {out.B.Peer, out.A.Peer, out.B}} {
		kind := "as announced"
		if p.r.Reflexive {
			kind = "peer-reflexive"
		}
		parts = append(parts, fmt.Sprintf("%s saw %s at %v (%s)", p.by, p.of, p.r.Seen, kind))
	}
	return strings.Join(parts, ", ")
}

// punchPeers opens a fresh socket for each host of a punch step, in sc,
// and gives each a way to exchange endpoints: the step's rendezvous
// server, reached from the host's node, or a board natlab passes them on
// with.
func (r *Session) punchPeers(sc *scope, s topology.Step) ([2]punch.Peer, punch.Config, error) {
	var peers [2]punch.Peer
	board := punch.NewBoard()
	for i, name := range s.Between {
		c, err := r.fresh(sc, name, s.Family)
		if err != nil {
			return peers, punch.Config{}, err
		}
		p := punch.Peer{Name: name, Conn: c, Local: netip.AddrPortFrom(r.address(name, s.Family), localPort(c)), Exchange: board}
		if s.Rendezvous != "" {
			hc, err := r.httpClient(name)
			if err != nil {
				return peers, punch.Config{}, err
			}
			p.Exchange = &rendezvous.Client{HTTP: hc, Base: r.plan(s.Rendezvous).RendezvousURL()}
		}
		peers[i] = p
	}
	cfg := punch.Config{
		Session: fmt.Sprintf("%s-%d", r.st.Name, time.Now().UnixNano()),
		Timeout: s.Timeout,
		Predict: s.Predict,
	}
	// IPv6 needs no STUN: a host's own address is its public one.
	if s.Family == topology.FamilyIPv4 {
		cfg.STUN = r.plan(s.Server).STUNServer()
	}
	return peers, cfg, nil
}

// Walk prepares the punch of step s to be taken one step at a time
// (punch.Walk), with the sockets and rendezvous the step would use. The
// walk owns its sockets: Walk.Close closes them.
func (r *Session) Walk(s topology.Step) (*punch.Walk, error) {
	if s.Kind != topology.StepPunch {
		return nil, fmt.Errorf("a walk is a punch step taken slowly, not a %s step", s.Kind)
	}
	sc := newScope()
	peers, cfg, err := r.punchPeers(sc, s)
	if err != nil {
		sc.close()
		return nil, err
	}
	return punch.NewWalk(cfg, peers[0], peers[1]), nil
}

// keepPath makes p the path key names, taking its socket from the step sc,
// and closes the socket of the path it replaces. r.mu is held.
func (r *Session) keepPath(sc *scope, key [3]string, p path) {
	if old, ok := r.paths[key]; ok && old.conn != p.conn {
		old.conn.Close()
	}
	sc.keep(p.conn)
	r.paths[key] = p
}

// natsOf lists the NATs in front of the hosts, nearest first.
func (r *Session) natsOf(hosts []string) []string {
	var nats []string
	seen := map[string]bool{}
	for _, h := range hosts {
		for n := r.topo.Node(h); n.Behind != ""; n = r.topo.Node(n.Behind) {
			if !seen[n.Behind] {
				seen[n.Behind] = true
				nats = append(nats, n.Behind)
			}
		}
	}
	return nats
}

// traceNATs starts a trace on every NAT in front of the hosts.
func (r *Session) traceNATs(hosts []string) map[string]*trace.Tracer {
	tracers := map[string]*trace.Tracer{}
	for _, nat := range r.natsOf(hosts) {
		ns, err := namedns.Open(lab.NamespaceName(r.st.Name, nat))
		if err != nil {
			continue
		}
		tr, err := trace.Start(ns.Fd())
		ns.Close()
		if err == nil {
			tracers[nat] = tr
		}
	}
	return tracers
}

// stopTracers ends the traces and sums up what each NAT dropped: per NAT,
// "N packets from X to Y (rule)".
func stopTracers(tracers map[string]*trace.Tracer) map[string][]string {
	drops := map[string][]string{}
	for nat, tr := range tracers {
		counts := map[string]int{}
		// Collect what is already there, then stop.
		deadline := time.After(100 * time.Millisecond)
	collect:
		for {
			select {
			case e, ok := <-tr.Events():
				if !ok {
					break collect
				}
				if e.Kind == trace.Dropped {
					counts[fmt.Sprintf("from %v to %v (%s)", e.Before.Src, e.Before.Dst, e.Rule)]++
				}
			case <-deadline:
				break collect
			}
		}
		tr.Stop()
		for what, n := range counts {
			noun := "packets"
			if n == 1 {
				noun = "packet"
			}
			drops[nat] = append(drops[nat], fmt.Sprintf("%d %s %s", n, noun, what))
		}
		sort.Strings(drops[nat])
	}
	return drops
}

// tablesOf reads the tables of the NATs in front of the hosts.
func (r *Session) tablesOf(hosts []string) map[string]*nattable.Table {
	tables := map[string]*nattable.Table{}
	for _, nat := range r.natsOf(hosts) {
		ns, err := namedns.Open(lab.NamespaceName(r.st.Name, nat))
		if err != nil {
			continue
		}
		if t, err := nattable.Read(ns.Fd(), r.topo.Node(nat).Addresses[0]); err == nil {
			tables[nat] = t
		}
		ns.Close()
	}
	return tables
}

// explain tells the punch as the story's five steps, then what the NATs
// dropped and what their tables hold.
func explain(out *punch.Outcome, drops map[string][]string, tables map[string]*nattable.Table) string {
	var b strings.Builder
	if out != nil {
		for i, e := range out.Events {
			fmt.Fprintf(&b, "%2d. +%-9v %s\n", i+1, Round(e.At), e.What)
		}
	}
	var nats []string
	for nat := range drops {
		nats = append(nats, nat)
	}
	sort.Strings(nats)
	for _, nat := range nats {
		for _, d := range drops[nat] {
			fmt.Fprintf(&b, "%s dropped %s\n", nat, d)
		}
	}
	var names []string
	for nat := range tables {
		names = append(names, nat)
	}
	sort.Strings(names)
	for _, nat := range names {
		fmt.Fprintf(&b, "%s's table:\n", nat)
		var t strings.Builder
		nattable.Write(&t, tables[nat])
		for _, line := range strings.Split(strings.TrimRight(t.String(), "\n"), "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Round shortens a duration for people: milliseconds above 10ms,
// microseconds above 10µs.
func Round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
