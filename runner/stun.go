package runner

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
	"github.com/natlab/natlab/topology"
)

func (r *Session) plan(server string) service.Plan { return service.PlanFor(r.topo.Node(server)) }

// stun asks the STUN server for the sender's public endpoint; asks several
// servers from one socket and compares what they saw; or, when the step
// expects a classification, runs RFC 5780 discovery.
func (r *Session) stun(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	if c := s.Expect.Classification; c != nil {
		return r.classify(ctx, s, c)
	}
	var conn *net.UDPConn
	var err error
	if s.Port != 0 {
		conn, err = r.socket(sc, s.From, s.Port, topology.FamilyIPv4)
	} else {
		conn, err = r.fresh(sc, s.From, topology.FamilyIPv4)
	}
	if err != nil {
		return StepResult{}, err
	}
	local := netip.AddrPortFrom(r.address(s.From, topology.FamilyIPv4), localPort(conn))
	servers := s.Servers
	if len(servers) == 0 {
		servers = []string{s.Server}
	}
	var seen []string
	var publics []netip.AddrPort
	for _, name := range servers {
		server := r.plan(name).STUNServer()
		resp, err := stunclient.Binding(ctx, conn, server, stunclient.Request{})
		if err != nil {
			return verdict(s, "fail", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("no answer from %s at %v", name, server)}), nil
		}
		r.remember(name, s.From, resp.Mapped)
		publics = append(publics, resp.Mapped)
		seen = append(seen, fmt.Sprintf("%s sees %v", name, resp.Mapped))
	}
	if len(servers) == 1 {
		detail := fmt.Sprintf("%s %v is %v to the STUN server", s.From, local, publics[0])
		if publics[0] == local {
			detail = fmt.Sprintf("%s %v: no NAT between it and the STUN server", s.From, local)
		}
		return verdict(s, "ok", StepResult{Detail: detail, Data: publics[0]}), nil
	}
	observed := "same"
	for _, p := range publics[1:] {
		if p != publics[0] {
			observed = "different"
		}
	}
	detail := fmt.Sprintf("from %v: %s", local, strings.Join(seen, ", "))
	res := StepResult{Detail: detail, Data: publics}
	if s.Expect.Outcome == "ok" {
		// Asked only that every server answers.
		return verdict(s, "ok", res), nil
	}
	return verdict(s, observed, res), nil
}

func (r *Session) classify(ctx context.Context, s topology.Step, c *topology.Classification) (StepResult, error) {
	n, err := r.node(s.From)
	if err != nil {
		return StepResult{}, err
	}
	res, err := classify.Discover(ctx, classify.Options{Server: r.plan(s.Server).STUNServer(), Local: r.address(s.From, topology.FamilyIPv4), Listen: n.ListenUDP})
	if err != nil {
		return StepResult{Expect: c.String(), Observed: "error", Reason: err.Error()}, nil
	}
	observed := res.Summary()
	pass, why := matchClassification(c, res)
	return StepResult{Expect: c.String(), Observed: observed, Pass: pass, Reason: why,
		Detail: fmt.Sprintf("%s is %v behind its NAT(s): %s", s.From, res.Public, observed), Data: res}, nil
}

func matchClassification(want *topology.Classification, got *classify.Result) (bool, string) {
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
	if want.Hairpin != nil && *want.Hairpin != got.Hairpin {
		wrong = append(wrong, fmt.Sprintf("hairpin is %v, not %v", got.Hairpin, *want.Hairpin))
	}
	return len(wrong) == 0, strings.Join(wrong, "; ")
}

func (r *Session) remember(at, from string, addr netip.AddrPort) {
	r.mu.Lock()
	r.seen[[2]string{at, from}] = addr
	r.mu.Unlock()
}
