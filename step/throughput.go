package step

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/natlab/natlab/goodput"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/stunclient"
	"github.com/natlab/natlab/topology"
)

// Throughput measures how fast data goes from one host to another, over
// the path a punch between them kept or through a TURN relay: the sender
// offers UDP datagrams at a rate for a while, and the goodput is the
// payload that arrives over the time it took (package goodput).
type Throughput struct {
	// The sender.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The receiver.
	To string `yaml:"to" format:"NodeRef" schema:"required"`
	// The path: direct is the one an earlier punch between the hosts
	// kept; relay goes through a TURN server.
	Via Via `yaml:"via" default:"direct"`
	// The TURN server, with via: relay.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with turn"`
	// How long the sender sends, 100ms to 1m.
	For time.Duration `yaml:"for" format:"Duration" default:"1s"`
	// The rate the sender offers, in bits of payload per second; a path
	// that carries more measures as this.
	Offer linkcond.Rate `yaml:"offer" format:"Rate" default:"100mbit"`
	// Whether data must get through.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"throughput FROM -> TO VIA"`
}

// Via is the path a throughput step measures: direct (the path a punch
// kept) or relay (through a TURN server).
type Via string

// The paths a throughput step measures.
const (
	ViaDirect Via = "direct"
	ViaRelay  Via = "relay"
)

// Values lists direct and relay.
func (Via) Values() []string { return []string{string(ViaDirect), string(ViaRelay)} }

// Limits of a throughput step.
const (
	minThroughputFor = 100 * time.Millisecond
	maxThroughputFor = time.Minute
	defaultOffer     = 100 * linkcond.Rate(1e6)
	maxOffer         = linkcond.Rate(1e9)
)

func (s *Throughput) read(f *topology.StepFields) string {
	s.From, _ = f.Host("from")
	s.To, _ = f.Host("to")
	if s.From != "" && s.From == s.To {
		f.Errorf(f.At("to"), "%s.to: %s is the sender too; measure between two hosts", f.Path(), s.To)
	}
	s.Via = Via(f.OneOf("via", Via("").Values(), string(ViaDirect), "direct or relay"))
	if s.Via == ViaRelay || f.Has("server") {
		s.Server, _ = f.Server("server", topology.ServiceTURN, s.Via == ViaRelay)
		if s.Via != ViaRelay && f.Has("server") {
			f.Errorf(f.At("server"), "%s.server: a server is for via: relay; the direct path goes through none", f.Path())
		}
	}
	s.For = f.Duration("for", minThroughputFor, maxThroughputFor, time.Second)
	s.Offer = f.Rate("offer", linkcond.MinRate, maxOffer, defaultOffer)
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	return fmt.Sprintf("throughput %s -> %s %s", s.From, s.To, s.Via)
}

// Describe says who sends to whom over which path, how fast and how long.
func (s *Throughput) Describe() string {
	path := "the direct path"
	if s.Via == ViaRelay {
		path = "turn server " + s.Server
	}
	return fmt.Sprintf(" from %s to %s over %s, %s offered for %s, expect %s",
		s.From, s.To, path, s.Offer, topology.FormatDuration(s.For), s.Expect)
}

// Expected is ok or fail.
func (s *Throughput) Expected() string { return s.Expect }

// Needs is the TURN server, via the relay.
func (s *Throughput) Needs(Env) []Need {
	if s.Via == ViaRelay {
		return need(s.Server, topology.ServiceTURN)
	}
	return nil
}

// Run sends over the path and counts what arrives.
func (s *Throughput) Run(ctx context.Context, env Env) (Result, error) {
	cfg := goodput.Config{Offer: uint64(s.Offer), For: s.For,
		Session: fmt.Sprintf("%s-%d", env.Lab(), time.Now().UnixNano())}
	var (
		send  func([]byte) error
		recv  net.PacketConn
		where string
	)
	switch s.Via {
	case ViaRelay:
		alloc, sender, err := s.relayed(ctx, env)
		if err != nil {
			res := Result{Reason: err.Error(), Detail: fmt.Sprintf("no relayed path from %s to %s", s.From, s.To)}
			return verdict(s, s.Expect, "fail", res), nil
		}
		defer alloc.Close()
		to := alloc.Relayed()
		send = func(b []byte) error { _, err := sender.WriteToUDPAddrPort(b, to); return err }
		recv, where = alloc, fmt.Sprintf("through the relay at %v", to)
	default:
		out, okOut := env.Memory().Path(s.From, s.To, topology.FamilyIPv4)
		in, okIn := env.Memory().Path(s.To, s.From, topology.FamilyIPv4)
		if !okOut || !okIn {
			return Result{}, fmt.Errorf("throughput %s -> %s: no punch between them kept a direct path; punch first, or measure via: relay", s.From, s.To)
		}
		send = func(b []byte) error { _, err := out.Conn.WriteToUDPAddrPort(b, out.To); return err }
		recv, where = in.Conn, fmt.Sprintf("direct to %v", out.To)
	}
	out, err := goodput.Measure(ctx, cfg, send, recv)
	if out == nil {
		return Result{}, fmt.Errorf("throughput %s -> %s: %w", s.From, s.To, err)
	}
	res := Result{Throughput: out}
	offered := fmt.Sprintf("%s offered for %v", goodput.Mbps(float64(s.Offer)), topology.FormatDuration(s.For))
	switch {
	case errors.Is(err, goodput.ErrNothing):
		res.Reason = err.Error()
		res.Detail = fmt.Sprintf("%s -> %s %s: %s, and nothing arrived", s.From, s.To, where, offered)
		return verdict(s, s.Expect, "fail", res), nil
	case err != nil:
		return Result{}, fmt.Errorf("throughput %s -> %s: %w", s.From, s.To, err)
	}
	res.Detail = fmt.Sprintf("%s -> %s %s: %s; %d of %d datagrams (%.1f MB) arrived over %v",
		s.From, s.To, where, offered, out.Received, out.Sent, float64(out.Bytes)/1e6, Round(out.Span))
	if out.Goodput >= 0.97*float64(s.Offer) {
		res.Detail += "; the path carried all that was offered, and may carry more"
	}
	if s.Via == ViaDirect {
		env.Memory().SetGoodput(s.From, s.To, out.Goodput)
	} else if direct, ok := env.Memory().Goodput(s.From, s.To); ok && direct > 0 {
		res.Detail += fmt.Sprintf("; %.2fx the direct path's %s", out.Goodput/direct, goodput.Mbps(direct))
	}
	if out.Goodput == 0 {
		return verdict(s, s.Expect, "fail", res), nil
	}
	return verdict(s, s.Expect, "ok", res), nil
}

// relayed gives the receiver an allocation on the TURN server that lets
// the sender's public address in, and the sender a socket to send to the
// relayed address from.
func (s *Throughput) relayed(ctx context.Context, env Env) (*relay.Allocation, *net.UDPConn, error) {
	cfg := relayConfig(env, s.Server, 5*time.Second)
	sender, err := env.Fresh(s.From, topology.FamilyIPv4)
	if err != nil {
		return nil, nil, err
	}
	recv, err := env.Fresh(s.To, topology.FamilyIPv4)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// The permission names the sender's public address, which its STUN
	// request to the relay shows.
	seen, err := stunclient.Binding(ctx, sender, cfg.Server, stunclient.Request{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: learn its public address from %v: %w", s.From, cfg.Server, err)
	}
	alloc, err := relay.Allocate(cfg, recv, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.To, err)
	}
	if _, err := alloc.WriteTo([]byte("natlab throughput: open"), net.UDPAddrFromAddrPort(seen.Mapped)); err != nil {
		alloc.Close()
		return nil, nil, fmt.Errorf("%s: permission for %v: %w", s.To, seen.Mapped, err)
	}
	return alloc, sender, nil
}
