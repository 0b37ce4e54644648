package step

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

// Punch has two hosts punch a hole for UDP to each other: STUN,
// rendezvous, simultaneous sends, answers to the observed source; or, with
// proto tcp, a TCP connection by simultaneous open.
type Punch struct {
	// The two hosts.
	Between [2]string `yaml:"between" format:"HostPair" schema:"required"`
	// The protocol to punch for: udp, or tcp, a TCP connection by
	// simultaneous open (both hosts connect to each other at once, each
	// also listening on its port), IPv4 only.
	Proto topology.Protocol `yaml:"proto" format:"ProtoName" default:"udp"`
	// The address family to punch over; ipv6 needs internet6.
	Family string `yaml:"family" format:"Family" default:"ipv4"`
	// The STUN server each host learns its public endpoint from.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with stun"`
	// The server that introduces the hosts to each other.
	Rendezvous string `yaml:"rendezvous" format:"NodeRef" default:"the first server with rendezvous; if none, natlab passes the endpoints on"`
	// How long the punch may take, 100ms to 5m.
	Timeout time.Duration `yaml:"timeout" format:"Duration" default:"5s"`
	// Predict the ports of a nat that allocates them sequentially.
	Predict bool `yaml:"predict" default:"false"`
	// Explain the outcome from what the nats on the way did.
	Explain bool `yaml:"explain" default:"false"`
	// Keep the punched path open for the rest of the run by sending over
	// it this often, 100ms to 10m.
	Keepalive time.Duration `yaml:"keepalive" format:"Duration" default:"none: the nats forget the path after their timeout"`
	// Which endpoints the hosts tell each other: public leaves out their
	// own addresses, so that hosts on one LAN go through their nat.
	Announce Announce `yaml:"announce" default:"all"`
	// Whether the hosts must end up talking directly.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"punch A B"`
}

// Announce is which endpoints the hosts of a punch tell each other: all
// (each host's public endpoint from STUN and its own address, which is
// what connects two hosts on one LAN) or public (the public endpoint
// only, so that two hosts behind one nat must reach each other through
// its public address: hairpinning).
type Announce string

// The endpoints a punch announces.
const (
	AnnounceAll    Announce = "all"
	AnnouncePublic Announce = "public"
)

// Values lists all and public.
func (Announce) Values() []string { return []string{string(AnnounceAll), string(AnnouncePublic)} }

func (s *Punch) read(f *topology.StepFields) string {
	s.Between = f.Between()
	s.Family = f.Family()
	s.Proto = f.Protocol("proto", topology.UDP)
	s.Server, _ = f.Server("server", topology.ServiceSTUN, true)
	s.Rendezvous, _ = f.Server("rendezvous", topology.ServiceRendezvous, false)
	s.Predict = f.Flag("predict")
	s.Explain = f.Flag("explain")
	s.Keepalive = f.Duration("keepalive", topology.MinStepTimeout, topology.MaxWait, 0)
	s.Announce = Announce(f.OneOf("announce", Announce("").Values(), string(AnnounceAll), "all or public"))
	s.Timeout = f.Timeout(5*time.Second, topology.MaxStepTimeout)
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	proto := ""
	if s.Proto == topology.TCP {
		proto = "tcp "
		// What a TCP punch has no use for: a sequential nat's next ports
		// (prediction punches many ports at once, a TCP punch one
		// connection at a time), a path kept for later sends (the
		// connection closes with the step), and IPv6.
		why := map[string]string{
			"predict":   "port prediction sends to many ports at once, and a tcp punch connects to the announced endpoints only",
			"keepalive": "the punched connection closes with the step, so there is no path to keep open",
		}
		for _, key := range []string{"predict", "keepalive"} {
			if f.Has(key) {
				f.Errorf(f.At(key), "%s.%s: %s; %s is for udp punches, so leave it out", f.Path(), key, why[key], key)
			}
		}
		if s.Family == topology.FamilyIPv6 && f.Has("family") {
			f.Errorf(f.At("family"), "%s.family: a tcp punch is over ipv4 only, where the nats translate; leave family out, or punch udp", f.Path())
		}
	}
	return fmt.Sprintf("punch %s%s%s %s", topology.FamilyWord(s.Family), proto, s.Between[0], s.Between[1])
}

// Describe says who punches, with which servers, and how.
func (s *Punch) Describe() string {
	rendezvous := "by natlab"
	if s.Rendezvous != "" {
		rendezvous = "server " + s.Rendezvous
	}
	predict := "no port prediction"
	if s.Predict {
		predict = "port prediction"
	}
	explain := "no explanation"
	if s.Explain {
		explain = "explanation"
	}
	proto := ""
	if s.Proto == topology.TCP {
		proto = " tcp"
	}
	d := fmt.Sprintf("%s over %s between %s and %s, stun server %s, rendezvous %s, %s, %s, timeout %s",
		proto, s.Family, s.Between[0], s.Between[1], s.Server, rendezvous, predict, explain, topology.FormatDuration(s.Timeout))
	if s.Keepalive > 0 {
		d += fmt.Sprintf(", keepalive every %s", topology.FormatDuration(s.Keepalive))
	}
	if s.Announce == AnnouncePublic {
		d += ", public endpoints only"
	}
	return d + ", expect " + s.Expect
}

// Expected is ok or fail.
func (s *Punch) Expected() string { return s.Expect }

// Needs is the STUN server (IPv4 only: over IPv6 a host's address is its
// public one) and the rendezvous server.
func (s *Punch) Needs(Env) []Need {
	var ns []Need
	if s.Family == topology.FamilyIPv4 {
		ns = need(s.Server, topology.ServiceSTUN)
	}
	return append(ns, need(s.Rendezvous, topology.ServiceRendezvous)...)
}

// Run punches; a punched path is kept for later sends between the hosts,
// and kept open with keepalives when the step asks.
func (s *Punch) Run(ctx context.Context, env Env) (Result, error) {
	if s.Proto == topology.TCP {
		return s.runTCP(ctx, env)
	}
	a, b := s.Between[0], s.Between[1]
	peers, cfg, err := s.peers(env)
	if err != nil {
		return Result{}, err
	}
	out, res, drops, ok := s.attempt(ctx, env, "found no direct path", func() (*punch.Outcome, error) {
		return punch.Pair(ctx, cfg, peers[0], peers[1])
	})
	if !ok {
		return res, nil
	}
	rtt := out.A.MedianRTT()
	for _, p := range peers {
		env.Keep(p.Conn)
	}
	s.keepPath(env, [2]*net.UDPConn{peers[0].Conn, peers[1].Conn}, [2]netip.AddrPort{out.A.Seen, out.B.Seen})
	res.Detail = fmt.Sprintf("%s <-> %s direct: first packet after %v, both ways after %v, rtt %v; %s",
		a, b, Round(min(out.A.FirstPacket, out.B.FirstPacket)), Round(max(out.A.Confirmed, out.B.Confirmed)), Round(rtt), reflexive(out))
	if s.Keepalive > 0 {
		res.Detail += fmt.Sprintf("; kept alive every %v", s.Keepalive)
	}
	if s.Explain {
		res.Detail += "\n" + explain(out, drops, tablesOf(ctx, env, s.Between[:]))
	}
	return verdict(s, s.Expect, "ok", res), nil
}

// attempt runs pair, tracing the NATs when the step explains itself. A
// failure is the step's verdict (ok false), saying the hosts failed as
// what says; a success records the pair's RTT and returns the result to
// complete, with the drops the tracers saw.
func (s *Punch) attempt(ctx context.Context, env Env, what string, pair func() (*punch.Outcome, error)) (*punch.Outcome, Result, map[string][]string, bool) {
	var tracers map[string]*trace.Tracer
	if s.Explain {
		tracers = traceNATs(ctx, env, s.Between[:])
	}
	out, err := pair()
	drops := stopTracers(tracers)
	res := Result{Data: out}
	if err != nil {
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("%s and %s %s within %v", s.Between[0], s.Between[1], what, s.Timeout)
		if s.Explain {
			res.Detail += "\n" + explain(out, drops, nil)
		}
		return out, verdict(s, s.Expect, "fail", res), drops, false
	}
	res.RTT = NewRTT(out.A.RTTs)
	env.Memory().SetRTT(s.Between[0], s.Between[1], out.A.MedianRTT())
	return out, res, drops, true
}

// runTCP punches a TCP connection between the hosts (punch.PairTCP); the
// connection closes when the step ends.
func (s *Punch) runTCP(ctx context.Context, env Env) (Result, error) {
	a, b := s.Between[0], s.Between[1]
	peers, cfg, err := s.tcpPeers(env)
	if err != nil {
		return Result{}, err
	}
	out, res, drops, ok := s.attempt(ctx, env, "made no direct TCP connection", func() (*punch.Outcome, error) {
		return punch.PairTCP(ctx, cfg, peers[0], peers[1])
	})
	if !ok {
		return res, nil
	}
	rtt := out.A.MedianRTT()
	res.Detail = fmt.Sprintf("%s <-> %s direct over tcp: connected after %v, rtt %v; %s",
		a, b, Round(max(out.A.Confirmed, out.B.Confirmed)), Round(rtt), reflexive(out))
	if s.Explain {
		res.Detail += "\n" + explain(out, drops, tablesOf(ctx, env, s.Between[:]))
	}
	return verdict(s, s.Expect, "ok", res), nil
}

// tcpPeers gives each host what a TCP punch needs: its node, where the
// punch opens its sockets, its address, and the exchange peers uses.
func (s *Punch) tcpPeers(env Env) ([2]punch.TCPPeer, punch.Config, error) {
	var peers [2]punch.TCPPeer
	board := punch.NewBoard()
	for i, name := range s.Between {
		n, err := env.Node(name)
		if err != nil {
			return peers, punch.Config{}, err
		}
		p := punch.TCPPeer{Name: name, Do: n.Do, Local: address(env.Topology(), name, topology.FamilyIPv4), Exchange: board}
		if s.Rendezvous != "" {
			hc, err := env.HTTPClient(name)
			if err != nil {
				return peers, punch.Config{}, err
			}
			p.Exchange = &rendezvous.Client{HTTP: hc, Base: env.Plan(s.Rendezvous).RendezvousURL()}
		}
		peers[i] = p
	}
	cfg := punch.Config{
		Session:    fmt.Sprintf("%s-tcp-%d", env.Lab(), time.Now().UnixNano()),
		Timeout:    s.Timeout,
		PublicOnly: s.Announce == AnnouncePublic,
		STUN:       env.Plan(s.Server).STUNServer(),
	}
	return peers, cfg, nil
}

// keepPath makes the path a punch opened the hosts' for later steps:
// each host's socket, which the session owns, and where it saw the
// other; with keepalive, each sends over it until the session ends or a
// new punch between the hosts closes the socket.
func (s *Punch) keepPath(env Env, conns [2]*net.UDPConn, seen [2]netip.AddrPort) {
	mem := env.Memory()
	for i := range conns {
		from, to := s.Between[i], s.Between[1-i]
		mem.KeepPath(from, to, s.Family, Path{conns[i], seen[i]})
		mem.Saw(from, to, seen[i])
		if s.Keepalive > 0 {
			conn, at := conns[i], seen[i]
			env.Go(func(ctx context.Context) { punch.KeepAlive(ctx, conn, at, s.Keepalive) })
		}
	}
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

// peers opens a fresh socket for each host and gives each a way to
// exchange endpoints: the step's rendezvous server, reached from the
// host's node, or a board natlab passes them on with.
func (s *Punch) peers(env Env) ([2]punch.Peer, punch.Config, error) {
	var peers [2]punch.Peer
	board := punch.NewBoard()
	for i, name := range s.Between {
		c, err := env.Fresh(name, s.Family)
		if err != nil {
			return peers, punch.Config{}, err
		}
		p := punch.Peer{Name: name, Conn: c, Local: netip.AddrPortFrom(address(env.Topology(), name, s.Family), LocalPort(c)), Exchange: board}
		if s.Rendezvous != "" {
			hc, err := env.HTTPClient(name)
			if err != nil {
				return peers, punch.Config{}, err
			}
			p.Exchange = &rendezvous.Client{HTTP: hc, Base: env.Plan(s.Rendezvous).RendezvousURL()}
		}
		peers[i] = p
	}
	cfg := punch.Config{
		Session:    fmt.Sprintf("%s-%d", env.Lab(), time.Now().UnixNano()),
		Timeout:    s.Timeout,
		Predict:    s.Predict,
		PublicOnly: s.Announce == AnnouncePublic,
	}
	// IPv6 needs no STUN: a host's own address is its public one.
	if s.Family == topology.FamilyIPv4 {
		cfg.STUN = env.Plan(s.Server).STUNServer()
	}
	return peers, cfg, nil
}

// traceNATs starts a trace on every NAT in front of the hosts.
func traceNATs(ctx context.Context, env Env, hosts []string) map[string]*trace.Tracer {
	tracers := map[string]*trace.Tracer{}
	for _, nat := range natsOf(env.Topology(), hosts) {
		if tr, err := env.Trace(ctx, nat); err == nil {
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
		deadline := time.NewTimer(100 * time.Millisecond)
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
			case <-deadline.C:
				break collect
			}
		}
		deadline.Stop()
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
func tablesOf(ctx context.Context, env Env, hosts []string) map[string]*nattable.Table {
	tables := map[string]*nattable.Table{}
	for _, nat := range natsOf(env.Topology(), hosts) {
		if t, err := env.Table(ctx, nat); err == nil {
			tables[nat] = t
		}
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
