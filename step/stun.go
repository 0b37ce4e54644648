package step

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/stunclient"
	"github.com/natlab/natlab/topology"
)

// STUN asks a STUN server for a node's public endpoint; asks several from
// one socket and compares what they saw; or, expecting a classification,
// runs RFC 5780 NAT behaviour discovery.
type STUN struct {
	// The node that asks: a host or a server.
	From string `yaml:"from" format:"NodeRef" schema:"required"`
	// The STUN server to ask.
	Server string `yaml:"server" format:"NodeRef" default:"the first server with stun"`
	// Two or more STUN servers to ask from one socket instead of server,
	// to compare the public endpoints they see.
	Servers []string `yaml:"servers" format:"NodeRef" schema:"minItems=2,uniqueItems"`
	// The local UDP port to send from.
	Port uint16 `yaml:"port" format:"Port" default:"any"`
	// ok or fail; with servers, same or different; or the classification
	// discovery must report, from a server with two addresses.
	Expect string   `yaml:"expect" format:"STUNExpect" default:"ok"`
	_      struct{} `name:"stun from FROM"`

	// Classification is what discovery must report, when Expect is not
	// a word.
	Classification *topology.Classification
}

// stunServersWant is what a stun step's expect takes with servers:.
const stunServersWant = "ok, fail, same or different"

func (s *STUN) read(f *topology.StepFields) string {
	from, fromOK := f.HostOrServer("from")
	s.From = from
	serverOK := false
	if f.Has("servers") {
		s.Servers = f.STUNServers("servers", from, fromOK)
	} else {
		s.Server, serverOK = f.Server("server", topology.ServiceSTUN, true)
	}
	s.Port = f.Port("port", 0)
	if fromOK && serverOK && from == s.Server {
		msg := "name another with server:"
		if f.Has("server") {
			msg = "choose another server:"
		}
		f.Errorf(f.At("from"), "%s.from: %s is this step's STUN server too; a node cannot find its public address by asking itself, so %s or run the step from a host", f.Path(), from, msg)
	}
	s.readExpect(f)
	if len(s.Servers) > 0 {
		return topology.Clip(fmt.Sprintf("stun from %s to %s", s.From, strings.Join(s.Servers, ", ")), topology.MaxStepNameLen)
	}
	return "stun from " + s.From
}

// readExpect reads expect:: ok or fail; with servers, same or different
// too; without, a classification.
func (s *STUN) readExpect(f *topology.StepFields) {
	s.Expect = "ok"
	if !f.Has("expect") {
		return
	}
	path := f.Path() + ".expect"
	servers := f.Has("servers")
	switch {
	case f.IsMap("expect") && servers:
		f.Errorf(f.At("expect"), "%s: a classification comes from one STUN server with two addresses (RFC 5780), not from servers:; with servers:, want %s", path, stunServersWant)
		return
	case f.IsMap("expect"):
		s.Classification = f.Classification("expect", s.Server)
		s.Expect = ""
		return
	}
	want := "ok, fail or a classification such as {type: symmetric}"
	words := okFail
	if servers {
		want, words = stunServersWant, topology.STUNOutcome("").Values()
	}
	word, ok := f.Word("expect", want)
	if !ok {
		return
	}
	if !servers && (word == "same" || word == "different") {
		f.Errorf(f.At("expect"), "%s: %s compares the public endpoints two or more STUN servers see from one socket; name them with servers: [stun1, stun2], or want %s", path, word, want)
		return
	}
	s.Expect = f.Outcome(words, "ok", want, nil)
}

// Describe says who asks whom, from which port.
func (s *STUN) Describe() string {
	port := "any"
	if s.Port != 0 {
		port = strconv.Itoa(int(s.Port))
	}
	server := "server " + s.Server
	if len(s.Servers) > 0 {
		server = "servers " + strings.Join(s.Servers, " ")
	}
	return fmt.Sprintf(" from %s, local port %s, %s, expect %s", s.From, port, server, s.Expected())
}

// Expected is ok, fail, same, different or the classification.
func (s *STUN) Expected() string {
	if s.Classification != nil {
		return s.Classification.String()
	}
	return s.Expect
}

// Needs is the STUN servers.
func (s *STUN) Needs(Env) []Need {
	ns := need(s.Server, topology.ServiceSTUN)
	for _, name := range s.Servers {
		ns = append(ns, need(name, topology.ServiceSTUN)...)
	}
	return ns
}

// Run asks the server (or each of the servers, from one socket) for the
// node's public endpoint, or classifies the NATs in front of it.
func (s *STUN) Run(ctx context.Context, env Env) (Result, error) {
	if s.Classification != nil {
		return s.classify(ctx, env)
	}
	var conn *net.UDPConn
	var err error
	if s.Port != 0 {
		conn, err = env.Socket(s.From, s.Port, topology.FamilyIPv4)
	} else {
		conn, err = env.Fresh(s.From, topology.FamilyIPv4)
	}
	if err != nil {
		return Result{}, err
	}
	local := netip.AddrPortFrom(address(env.Topology(), s.From, topology.FamilyIPv4), LocalPort(conn))
	servers := s.Servers
	if len(servers) == 0 {
		servers = []string{s.Server}
	}
	var seen []string
	var publics []netip.AddrPort
	for _, name := range servers {
		server := env.Plan(name).STUNServer()
		resp, err := stunclient.Binding(ctx, conn, server, stunclient.Request{})
		if err != nil {
			return verdict(s, s.Expect, "fail", Result{Reason: err.Error(), Detail: fmt.Sprintf("no answer from %s at %v", name, server)}), nil
		}
		env.Memory().Saw(name, s.From, resp.Mapped)
		publics = append(publics, resp.Mapped)
		seen = append(seen, fmt.Sprintf("%s sees %v", name, resp.Mapped))
	}
	if len(servers) == 1 {
		// The server that answered is named: a page asking several in
		// turn shows which saw what.
		detail := fmt.Sprintf("%s %v is %v to the STUN server %s", s.From, local, publics[0], servers[0])
		if publics[0] == local {
			detail = fmt.Sprintf("%s %v: no NAT between it and the STUN server %s", s.From, local, servers[0])
		}
		return verdict(s, s.Expect, "ok", Result{Detail: detail, Data: publics[0]}), nil
	}
	res := Result{Detail: fmt.Sprintf("from %v: %s", local, strings.Join(seen, ", ")), Data: publics}
	if s.Expect == "ok" {
		// Asked only that every server answers.
		return verdict(s, s.Expect, "ok", res), nil
	}
	return verdict(s, s.Expect, SameOrDifferent(publics), res), nil
}

// SameOrDifferent says whether every server saw the first's endpoint.
func SameOrDifferent(publics []netip.AddrPort) string {
	for _, p := range publics[1:] {
		if p != publics[0] {
			return "different"
		}
	}
	return "same"
}

func (s *STUN) classify(ctx context.Context, env Env) (Result, error) {
	n, err := env.Node(s.From)
	if err != nil {
		return Result{}, err
	}
	c := s.Classification
	res, err := classify.Discover(ctx, classify.Options{Server: env.Plan(s.Server).STUNServer(), Local: address(env.Topology(), s.From, topology.FamilyIPv4), Listen: n.ListenUDP})
	if err != nil {
		return Result{Expect: c.String(), Observed: "error", Reason: err.Error()}, nil
	}
	observed := res.Summary()
	pass, why := MatchClassification(c, res)
	return Result{Expect: c.String(), Observed: observed, Pass: pass, Reason: why,
		Detail: fmt.Sprintf("%s is %v behind its NAT(s): %s", s.From, res.Public, observed), Data: res}, nil
}

// MatchClassification checks what discovery found against what a step
// expects, saying what differs.
func MatchClassification(want *topology.Classification, got *classify.Result) (bool, string) {
	var wrong []string
	check := func(what, want, got string) {
		if want != "" && want != got {
			wrong = append(wrong, fmt.Sprintf("%s is %s, not %s", what, got, want))
		}
	}
	check("type", string(want.Type), string(got.Type))
	check("mapping", string(want.Mapping), string(got.Mapping))
	check("filtering", string(want.Filtering), string(got.Filtering))
	check("port allocation", string(want.Ports), string(got.Ports))
	check("pooling", string(want.Pooling), string(got.Pooling))
	if want.Hairpin != nil && *want.Hairpin != got.Hairpin {
		wrong = append(wrong, fmt.Sprintf("hairpin is %v, not %v", got.Hairpin, *want.Hairpin))
	}
	return len(wrong) == 0, strings.Join(wrong, "; ")
}
