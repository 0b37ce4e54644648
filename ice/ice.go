// Package ice connects two lab nodes with real ICE agents (RFC 8445,
// pion/ice): each gathers host, server-reflexive and relayed candidates
// from the lab's STUN and TURN servers, they exchange candidates and
// credentials, check every pair and nominate one. Which kind of candidates
// the chosen pair has shows the ladder of the story's last act: directly
// (host), through punched NATs (server- or peer-reflexive), or through a
// relay.
package ice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	pionice "github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/transport/v3"
)

// Rung is how directly the selected pair connects.
type Rung string

const (
	Host  Rung = "host"  // both host candidates: same network, no NAT between
	Srflx Rung = "srflx" // through NATs, with server-reflexive candidates
	Prflx Rung = "prflx" // through NATs, with a peer-reflexive candidate
	Relay Rung = "relay" // through a TURN relay
)

// Server is a STUN or TURN server the agents use.
type Server struct {
	TURN           bool
	Addr           netip.AddrPort
	User, Password string
}

// Agent is one side: a name and a transport.Net that makes its sockets in
// its node (nodenet.Node.PionNet).
type Agent struct {
	Name string
	Net  transport.Net
}

// Config is one connection attempt.
type Config struct {
	Servers []Server
	Timeout time.Duration
}

// Candidate is one end of the selected pair.
type Candidate struct {
	Type    string         `json:"type"`
	Address netip.AddrPort `json:"address"`
	// Related is the address a reflexive or relayed candidate derives
	// from.
	Related string `json:"related,omitempty"`
}

// Result is the selected pair and how it was found.
type Result struct {
	// Local is A's end, Remote B's end, as A sees them.
	Local, Remote Candidate
	Rung          Rung
	// Gathered counts A's and B's candidates by type.
	Gathered [2]map[string]int
	// Connected is the time from the start of the checks to a connection.
	Connected time.Duration
	RTT       time.Duration
}

// ErrFailed means no candidate pair worked.
var ErrFailed = errors.New("ICE failed")

// Connect runs a controlling agent for a and a controlled one for b until
// they are connected, then measures the RTT over the chosen pair.
func Connect(ctx context.Context, cfg Config, a, b Agent) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var urls []*stun.URI
	for _, s := range cfg.Servers {
		u := &stun.URI{Scheme: stun.SchemeTypeSTUN, Host: s.Addr.Addr().String(), Port: int(s.Addr.Port()), Proto: stun.ProtoTypeUDP}
		if s.TURN {
			u.Scheme, u.Username, u.Password = stun.SchemeTypeTURN, s.User, s.Password
		}
		urls = append(urls, u)
	}
	agents := make([]*pionice.Agent, 2)
	res := &Result{Gathered: [2]map[string]int{{}, {}}}
	var mu sync.Mutex
	for i, side := range []Agent{a, b} {
		check := 50 * time.Millisecond
		failed := cfg.Timeout
		// pion gives a pair up after this many unanswered checks (7 by
		// default: 350 ms at this interval). A slow machine (make
		// vm-test's emulated one) answered the first checks of two hosts
		// on one LAN later than that, so the host pair failed and ICE
		// took the reflexive one; 40 (2 s) waits for it. Nomination does
		// not wait for pairs that never answer (it takes the best pair
		// that has, once its type's wait is over), but an ICE that finds
		// no pair at all gives up 2 s after its last pair's first check.
		maxChecks := uint16(40)
		// A controlling agent nominates the best pair that has answered
		// once the wait of its candidates' type is over: 0 for host
		// pairs, 500 ms by pion's default for reflexive ones. Two hosts
		// on one LAN were answered in 160-640 ms in make vm-test's
		// emulated machine, and in two of six CI runs not before 1.0 s and
		// 1.6 s, by which time their reflexive pair (hairpinned through
		// the NAT) had answered: ICE took that. A reflexive pair waits
		// 2 s here, as long as a relayed one; only where it is the best
		// that works does anyone wait for it.
		srflxWait := 2 * time.Second
		ag, err := pionice.NewAgent(&pionice.AgentConfig{
			Urls:                   urls,
			NetworkTypes:           []pionice.NetworkType{pionice.NetworkTypeUDP4},
			Net:                    side.Net,
			MulticastDNSMode:       pionice.MulticastDNSModeDisabled,
			CheckInterval:          &check,
			FailedTimeout:          &failed,
			MaxBindingRequests:     &maxChecks,
			SrflxAcceptanceMinWait: &srflxWait,
			LoggerFactory:          quiet{},
		})
		if err != nil {
			return nil, fmt.Errorf("%s: ICE agent: %w", side.Name, err)
		}
		defer ag.Close()
		agents[i] = ag
	}
	// Vanilla ICE: each agent gathers all its candidates, they are handed
	// to the other as text (the way signalling carries them), and only
	// then do the checks start. Trickling them instead races the peer's
	// checks: a check from a LAN address that arrives before that address
	// is signalled makes it a peer-reflexive candidate, and pion does not
	// upgrade it to host when the signal follows, so two devices on one
	// LAN would sometimes be reported as punched.
	gathered := [2][]string{}
	complete := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for i, ag := range agents {
		if err := ag.OnCandidate(func(c pionice.Candidate) {
			if c == nil {
				close(complete[i])
				return
			}
			mu.Lock()
			res.Gathered[i][c.Type().String()]++
			gathered[i] = append(gathered[i], c.Marshal())
			mu.Unlock()
		}); err != nil {
			return nil, err
		}
	}
	for i, ag := range agents {
		if err := ag.GatherCandidates(); err != nil {
			return nil, fmt.Errorf("%s: gather candidates: %w", []Agent{a, b}[i].Name, err)
		}
	}
	for i, side := range []Agent{a, b} {
		select {
		case <-complete[i]:
		case <-ctx.Done():
			return res, fmt.Errorf("%w: %s did not finish gathering candidates within %v", ErrFailed, side.Name, cfg.Timeout)
		}
	}
	for i, side := range []Agent{a, b} {
		other := agents[1-i]
		for _, text := range gathered[i] {
			c, err := pionice.UnmarshalCandidate(text)
			if err != nil {
				return res, fmt.Errorf("%s: candidate %q: %w", side.Name, text, err)
			}
			if err := other.AddRemoteCandidate(c); err != nil {
				return res, fmt.Errorf("%s: add remote candidate %s: %w", side.Name, c, err)
			}
		}
	}
	// AddRemoteCandidate hands the candidate to the agent's own goroutine;
	// the checks must not start before both agents hold all of them.
	for i, ag := range agents {
		for {
			have, err := ag.GetRemoteCandidates()
			if err != nil {
				return res, err
			}
			if len(have) >= len(gathered[1-i]) {
				break
			}
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	ufragA, pwdA, _ := agents[0].GetLocalUserCredentials()
	ufragB, pwdB, _ := agents[1].GetLocalUserCredentials()

	start := time.Now()
	type conn struct {
		c   *pionice.Conn
		err error
	}
	accepted := make(chan conn, 1)
	go func() {
		c, err := agents[1].Accept(ctx, ufragA, pwdA)
		accepted <- conn{c, err}
	}()
	ca, err := agents[0].Dial(ctx, ufragB, pwdB)
	cb := <-accepted
	if err == nil {
		err = cb.err
	}
	if err != nil {
		return res, fmt.Errorf("%w between %s and %s within %v (%s gathered %s; %s gathered %s)", ErrFailed, a.Name, b.Name, cfg.Timeout, a.Name, Candidates(res.Gathered[0]), b.Name, Candidates(res.Gathered[1]))
	}
	res.Connected = time.Since(start)
	pair, err := agents[0].GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return res, fmt.Errorf("no selected pair: %v", err)
	}
	res.Local, res.Remote = candidate(pair.Local), candidate(pair.Remote)
	res.Rung = rung(res.Local.Type, res.Remote.Type)

	rtt, err := roundTrip(ctx, ca, cb.c)
	if err != nil {
		return res, fmt.Errorf("%w: no round trip over the selected pair %s <-> %s: %v", ErrFailed, res.Local.Address, res.Remote.Address, err)
	}
	res.RTT = rtt
	return res, nil
}

// roundTrip measures the RTT over a connected pair: A sends a numbered
// ping every 200ms until B's echo of one comes back, since a datagram may
// be lost. pion's Conn ignores deadlines, so ctx ends the reads by closing
// the connections; roundTrip closes them when it returns too (nothing
// uses them after it), and waits for its echo and its pings to end.
func roundTrip(ctx context.Context, a, b net.Conn) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		a.Close()
		b.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	// B echoes what it gets.
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			if _, err := b.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			msg := fmt.Sprintf("natlab ice ping %d", seq)
			mu.Lock()
			sentAt[msg] = time.Now()
			mu.Unlock()
			if _, err := a.Write([]byte(msg)); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	buf := make([]byte, 1500)
	for {
		n, err := a.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, err
		}
		mu.Lock()
		at, ok := sentAt[string(buf[:n])]
		mu.Unlock()
		if ok {
			return time.Since(at), nil
		}
	}
}

func candidate(c pionice.Candidate) Candidate {
	addr, _ := netip.ParseAddr(c.Address())
	out := Candidate{Type: c.Type().String(), Address: netip.AddrPortFrom(addr, uint16(c.Port()))}
	if r := c.RelatedAddress(); r != nil && r.Address != "" {
		out.Related = fmt.Sprintf("%s:%d", r.Address, r.Port)
	}
	return out
}

// rung names a pair by its least direct candidate.
func rung(local, remote string) Rung {
	rank := map[string]int{"host": 0, "srflx": 1, "prflx": 2, "relay": 3}
	worst := local
	if rank[remote] > rank[worst] {
		worst = remote
	}
	return Rung(worst)
}

type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}

// Candidates says how many candidates of each type were gathered, in
// the ladder's order ("1 host, 1 srflx, 1 relay"), as people read it
// rather than as Go prints a map; "none" for none.
func Candidates(gathered map[string]int) string {
	order := []string{"host", "srflx", "prflx", "relay"}
	for t := range gathered {
		if !slices.Contains(order, t) {
			order = append(order, t)
		}
	}
	slices.Sort(order[4:])
	var parts []string
	for _, t := range order {
		if n := gathered[t]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
