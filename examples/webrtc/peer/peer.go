// Package peer is one side of a WebRTC data channel, made with pion/webrtc
// as an application would make it, driven over its standard input and
// output so that a test (or a person with two terminals) can carry the
// signalling between two of them.
//
// The offerer and the answerer each print their session description as
// one line of JSON once they have gathered every candidate (vanilla ICE:
// the description holds them all), and read the other's as one line. When
// the channel is open and a ping has crossed it, each prints a Result as
// one more line, then waits for its input to close before it hangs up, so
// that whoever runs it can look at its sockets while the connection is up.
package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Role says which side a peer is.
type Role string

const (
	Offer  Role = "offer"  // creates the data channel and the offer
	Answer Role = "answer" // answers and accepts the channel
)

// Config is how a peer connects.
type Config struct {
	Role Role
	// ICEServers are STUN and TURN URLs (stun:IP:PORT, turn:IP:PORT,
	// turn:IP:PORT?transport=tcp); Username and Credential are for the
	// TURN ones.
	ICEServers           []string
	Username, Credential string
	// RelayOnly gathers relayed candidates only (ICETransportPolicyRelay),
	// as an application does that must not reveal its addresses.
	RelayOnly bool
	// Timeout bounds the whole exchange, signalling included.
	Timeout time.Duration
	// Log, if not nil, gets the outcome in a line for people (out gets
	// it for programs).
	Log io.Writer
}

// Candidate is one end of the selected candidate pair.
type Candidate struct {
	// Type is host, srflx, prflx or relay.
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	// RelayProtocol is how a local relayed candidate reaches its TURN
	// server: udp or tcp (tls for turns:). Empty for other candidates and
	// for remote ones, whose transport to their server is not known.
	RelayProtocol string `json:"relayProtocol,omitempty"`
}

// Result is what a peer saw once its channel was open.
type Result struct {
	Role Role `json:"role"`
	// Local and Remote are the selected pair as this peer sees it.
	Local  Candidate `json:"local"`
	Remote Candidate `json:"remote"`
	// Open is the time from the peer's start to the channel's opening:
	// gathering, signalling, ICE checks, DTLS and SCTP, what a user waits.
	Open time.Duration `json:"open"`
	// Connect is the time from having the other's description to the
	// channel's opening: ICE checks, DTLS and SCTP only.
	Connect time.Duration `json:"connect"`
}

// Direct reports whether the pair goes without a relay.
func (r Result) Direct() bool {
	return r.Local.Type != webrtc.ICECandidateTypeRelay.String() && r.Remote.Type != webrtc.ICECandidateTypeRelay.String()
}

// Main runs a peer with the command line args (without the program's
// name) over standard input and output, and returns its exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	var cfg Config
	role := fs.String("role", "", "offer or answer")
	servers := fs.String("ice", "", "comma-separated STUN and TURN URLs, e.g. stun:203.0.113.1:3478,turn:203.0.113.1:3478?transport=tcp")
	fs.StringVar(&cfg.Username, "user", "", "TURN username")
	fs.StringVar(&cfg.Credential, "password", "", "TURN password")
	fs.BoolVar(&cfg.RelayOnly, "relay-only", false, "gather relayed candidates only (ICETransportPolicyRelay)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Role, cfg.Log = Role(*role), os.Stderr
	if *servers != "" {
		cfg.ICEServers = strings.Split(*servers, ",")
	}
	if err := Run(context.Background(), cfg, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "peer %s: %v\n", cfg.Role, err)
		return 1
	}
	return 0
}

// Run connects a peer, signalling over in and out, reports its Result
// on out and returns once in is closed (or at an error).
func Run(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	if cfg.Role != Offer && cfg.Role != Answer {
		return fmt.Errorf("role %q: want %s or %s", cfg.Role, Offer, Answer)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// The lines of in, read by one goroutine, which ends when in closes
	// (or, having a line nobody takes, when ctx ends). in is closed by
	// its writer; Run waits for that only at the end, so a failing peer
	// returns at once and its writer sees its output end.
	lines := make(chan string)
	readDone := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				readDone <- ctx.Err()
				return
			}
		}
		readDone <- sc.Err()
	}()
	pc, err := newPeerConnection(cfg)
	if err != nil {
		return err
	}
	defer pc.Close()

	// pion calls the handlers below from goroutines of its own: they only
	// send, without blocking, on these.
	opened := make(chan struct{}, 1)
	failed := make(chan error, 1)
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	// openAt is when the channel opened, whichever handler sees it first
	// (the answerer may get the ping before its OnOpen has run).
	openAt := sync.OnceValue(time.Now)
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateFailed {
			fail(errors.New("ICE failed: no candidate pair worked"))
		}
	})
	var remoteSet time.Time
	switch cfg.Role {
	case Offer:
		dc, err := pc.CreateDataChannel("natlab", nil)
		if err != nil {
			return fmt.Errorf("data channel: %w", err)
		}
		dc.OnOpen(func() {
			openAt()
			if err := dc.SendText("ping"); err != nil {
				fail(fmt.Errorf("send ping: %w", err))
			}
		})
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if string(m.Data) == "pong" {
				signal(opened)
			}
		})
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return fmt.Errorf("create offer: %w", err)
		}
		if err := describe(ctx, pc, offer, out); err != nil {
			return err
		}
		answer, err := readDescription(ctx, lines)
		if err != nil {
			return err
		}
		remoteSet = time.Now()
		if err := pc.SetRemoteDescription(answer); err != nil {
			return fmt.Errorf("set answer: %w", err)
		}
	case Answer:
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			dc.OnOpen(func() { openAt() })
			dc.OnMessage(func(m webrtc.DataChannelMessage) {
				if string(m.Data) != "ping" {
					return
				}
				openAt()
				if err := dc.SendText("pong"); err != nil {
					fail(fmt.Errorf("send pong: %w", err))
					return
				}
				signal(opened)
			})
		})
		offer, err := readDescription(ctx, lines)
		if err != nil {
			return err
		}
		remoteSet = time.Now()
		if err := pc.SetRemoteDescription(offer); err != nil {
			return fmt.Errorf("set offer: %w", err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("create answer: %w", err)
		}
		if err := describe(ctx, pc, answer, out); err != nil {
			return err
		}
	}

	select {
	case <-opened:
	case err := <-failed:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no open data channel within %v", cfg.Timeout)
	}
	res, err := selected(pc)
	if err != nil {
		return err
	}
	res.Role, res.Open, res.Connect = cfg.Role, openAt().Sub(start), openAt().Sub(remoteSet)
	if err := json.NewEncoder(out).Encode(res); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "peer %s: data channel open after %v, pair %s %s <-> %s %s\n",
			cfg.Role, res.Open.Round(time.Millisecond), res.Local.Type, res.Local.Address, res.Remote.Type, res.Remote.Address)
	}
	// Stay connected until the other end of in is done with us.
	for range lines {
	}
	return <-readDone
}

// newPeerConnection is a PeerConnection as an application makes one, with
// two choices a lab needs: IPv4 UDP candidates only (the lab's hosts have
// no IPv6, and TURN over TCP still works: it is the relay's transport, not
// the candidates'), and no mDNS, which would hide host addresses behind
// names no other LAN resolves.
func newPeerConnection(cfg Config) (*webrtc.PeerConnection, error) {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE gives up after 15 s without a working pair (pion's checking
	// timeout is the disconnected and the failed timeouts together), so
	// that a pair of NATs nothing gets through says "ICE failed" well
	// within Timeout.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	var servers []webrtc.ICEServer
	for _, u := range cfg.ICEServers {
		s := webrtc.ICEServer{URLs: []string{u}}
		if strings.HasPrefix(u, "turn") {
			s.Username, s.Credential = cfg.Username, cfg.Credential
		}
		servers = append(servers, s)
	}
	conf := webrtc.Configuration{ICEServers: servers}
	if cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return nil, fmt.Errorf("peer connection: %w", err)
	}
	return pc, nil
}

// describe sets d as the local description, waits until every candidate
// is gathered and writes the description, candidates included, as a line.
func describe(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription, out io.Writer) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return fmt.Errorf("set local %s: %w", d.Type, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	if err := json.NewEncoder(out).Encode(pc.LocalDescription()); err != nil {
		return fmt.Errorf("write %s: %w", d.Type, err)
	}
	return nil
}

// readDescription reads the other peer's description, a line of JSON.
func readDescription(ctx context.Context, lines <-chan string) (webrtc.SessionDescription, error) {
	var d webrtc.SessionDescription
	select {
	case line, ok := <-lines:
		if !ok {
			return d, errors.New("input closed before the other's description")
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return d, fmt.Errorf("the other's description: %w", err)
		}
		return d, nil
	case <-ctx.Done():
		return d, fmt.Errorf("waiting for the other's description: %w", ctx.Err())
	}
}

// selected is the pair the connection uses, with the local candidate's
// transport to its TURN server from the stats.
func selected(pc *webrtc.PeerConnection) (Result, error) {
	t := pc.SCTP().Transport().ICETransport()
	pair, err := t.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return Result{}, fmt.Errorf("no selected candidate pair: %v", err)
	}
	cand := func(c *webrtc.ICECandidate) Candidate {
		return Candidate{Type: c.Typ.String(), Protocol: c.Protocol.String(), Address: fmt.Sprintf("%s:%d", c.Address, c.Port)}
	}
	res := Result{Local: cand(pair.Local), Remote: cand(pair.Remote)}
	if ps, ok := t.GetSelectedCandidatePairStats(); ok {
		if cs, ok := pc.GetStats()[ps.LocalCandidateID].(webrtc.ICECandidateStats); ok {
			res.Local.RelayProtocol = cs.RelayProtocol
		}
	}
	return res, nil
}
