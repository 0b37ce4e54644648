package topology

import (
	"fmt"
	"strings"

	"github.com/natlab/natlab/internal/suggest"
	"github.com/natlab/natlab/nat"
)

// Firewall is a host's own firewall, in its own namespace, apart from
// the NAT it may be behind.
type Firewall string

// The firewalls a host may have.
const (
	// FirewallNone lets everything in, as natlab's hosts always did.
	FirewallNone Firewall = ""
	// FirewallStateful lets in only what the host asked for, as ufw or
	// a laptop's own firewall does: replies to flows the host started
	// (conntrack's reply matching, which filters
	// address-and-port-dependent), the ICMP errors about them, its
	// loopback and, with IPv6, neighbour discovery; every other inbound
	// packet is dropped.
	FirewallStateful Firewall = "stateful"
)

// firewallNone is what a file writes for FirewallNone.
const firewallNone = "none"

// firewallWant is what firewall takes.
const firewallWant = "stateful or none"

// readFirewall reads host n's firewall: key.
func (p *parser) readFirewall(n *nodeSpec, v *value, path string) {
	if v.kind == kindBool {
		msg := fmt.Sprintf("%s: want %s, not %s", path, firewallWant, v.describe())
		if v.boolean {
			msg += "; write stateful for a firewall"
		} else {
			msg += "; write none, or leave firewall out, for no firewall"
		}
		p.errs.errorf(v.pos, "%s", msg)
		return
	}
	s, ok := p.str(v, path, firewallWant)
	if !ok {
		return
	}
	switch s {
	case string(FirewallStateful):
		n.node.Firewall = FirewallStateful
		return
	case firewallNone:
		return
	}
	msg := fmt.Sprintf("%s: unknown value %q; want %s", path, s, firewallWant)
	lower := strings.ToLower(s)
	if _, err := nat.ParseDependence(lower); err == nil || lower == "on" {
		msg += "; a host's stateful firewall lets in the replies to what it sent, which filters address-and-port-dependent"
	} else if lower == "off" {
		msg += "; write none for no firewall"
	} else if sug := suggest.Closest(lower, []string{string(FirewallStateful), firewallNone}); sug != "" {
		msg += "; did you mean " + sug + "?"
	}
	p.errs.errorf(v.pos, "%s", msg)
}

// firewallNotHere reports firewall: on node n, which is no host: a nat's
// wall is its filtering (and firewall6), and a server answers anyone.
func (p *parser) firewallNotHere(n *nodeSpec, f entry, path string) {
	why := "a server answers whoever asks its services; make it a host to firewall it"
	if n.node.Kind == KindNAT {
		why = "a nat's own wall is its filtering (and, for IPv6, its firewall6)"
	}
	p.errs.errorf(f.keyPos, "%s: firewall is a host's key: %s", path, why)
}
