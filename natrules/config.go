package natrules

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/natlab/natlab/nat"
)

// Config is everything the rules of one NAT depend on.
type Config struct {
	// Public is the NAT's address on its uplink, the source every
	// translated packet leaves with.
	Public netip.Addr
	// Pool, when the NAT has several public addresses, lists them all,
	// Public first; Pooling says how a mapping picks one (pool.go).
	// Forwards are on Public. Nil with one address.
	Pool    []netip.Addr
	Pooling nat.Pooling
	// WAN is the uplink interface (towards the internet or the next NAT).
	WAN string
	// LAN is the interface the private network is on.
	LAN string
	// Behaviour holds the RFC 4787 knobs.
	Behaviour nat.Behaviour
	// Forwards are static port forwards, applied whatever the filtering.
	Forwards []Forward
	// PortMapping adds the maps a port-mapping protocol (NAT-PMP) fills
	// at run time: hosts ask the NAT itself for forwards.
	PortMapping bool
	// OneToOne, when valid, makes the NAT a one-to-one NAT
	// (nat.OneToOne): this private address owns the public address,
	// every port of it. Of Behaviour only Hairpin counts then, and the
	// NAT has neither forwards nor port mapping.
	OneToOne netip.Addr
	// Blocks, when enabled, allocates ports in blocks (RFC 6888): each of
	// Subscribers holds its Blocks, and its mappings take ports of them
	// only (blocks.go).
	Blocks      nat.PortBlocks
	Subscribers []Subscriber
	// Offload hands established flows to the kernel's flowtable, with
	// mappings that live as long as conntrack's entries of their flows
	// (offload.go); the kernel must have one (HasFlowtable) and
	// OffloadProblem must have nothing to say.
	Offload bool
}

// Forward sends new connections to Port on the public address to To.
type Forward struct {
	Proto string // "tcp" or "udp"
	Port  uint16
	To    netip.AddrPort
	// Name says what is forwarded to, for the rule's comment (a node name).
	Name string
}

// maxIfName is IFNAMSIZ minus the terminating NUL.
const maxIfName = 15

func (c *Config) validate() error {
	var errs []error
	if !c.Public.Is4() {
		errs = append(errs, fmt.Errorf("public address %v is not IPv4", c.Public))
	}
	for _, ifc := range []struct{ role, name string }{{"WAN", c.WAN}, {"LAN", c.LAN}} {
		if ifc.name == "" || len(ifc.name) > maxIfName {
			errs = append(errs, fmt.Errorf("%s interface name %q must have 1 to %d bytes", ifc.role, ifc.name, maxIfName))
		}
	}
	if c.WAN == c.LAN {
		errs = append(errs, fmt.Errorf("WAN and LAN are both %q", c.WAN))
	}
	b := c.Behaviour
	if _, err := nat.ParseDependence(string(b.Mapping)); err != nil {
		errs = append(errs, fmt.Errorf("mapping: %w", err))
	}
	if _, err := nat.ParseDependence(string(b.Filtering)); err != nil {
		errs = append(errs, fmt.Errorf("filtering: %w", err))
	}
	if _, err := nat.ParsePortAllocation(string(b.Ports)); err != nil {
		errs = append(errs, fmt.Errorf("ports: %w", err))
	}
	if b.PortRange.First == 0 || b.PortRange.First > b.PortRange.Last {
		errs = append(errs, fmt.Errorf("port range %v is empty or starts at 0", b.PortRange))
	}
	if _, err := nat.ParseRefresh(string(b.Refresh)); err != nil {
		errs = append(errs, fmt.Errorf("refresh: %w", err))
	}
	// UDP's and TCP's timeouts are the rules' (the lifetimes of their
	// maps' elements); ICMP's is conntrack's alone, which the lab sets in
	// the NAT's namespace, as it sets TCP's there too.
	for _, t := range []struct {
		what string
		d    time.Duration
	}{{"UDP", b.Timeout.UDP}, {"TCP established", b.Timeout.TCPEstablished}, {"TCP transitory", b.Timeout.TCPTransitory}} {
		if t.d < time.Second || t.d%time.Millisecond != 0 {
			errs = append(errs, fmt.Errorf("%s timeout %v must be at least 1s, in whole milliseconds", t.what, t.d))
		}
	}
	if c.OneToOne.IsValid() {
		switch {
		case !c.OneToOne.Is4():
			errs = append(errs, fmt.Errorf("one-to-one: private address %v is not IPv4", c.OneToOne))
		case c.OneToOne == c.Public:
			errs = append(errs, fmt.Errorf("one-to-one: the private address is the public one, %v", c.OneToOne))
		}
		if len(c.Forwards) > 0 || c.PortMapping {
			errs = append(errs, errors.New("one-to-one: a one-to-one NAT has no forwards and no port mapping: every port is its host's"))
		}
	}
	if len(c.Pool) > 0 {
		errs = append(errs, c.validatePool()...)
	}
	if c.Offload {
		if problem := c.OffloadProblem(); problem != "" {
			errs = append(errs, fmt.Errorf("offload: %s", problem))
		}
	}
	if c.blocked() {
		errs = append(errs, c.validateBlocks()...)
	}
	seen := map[string]bool{}
	for _, f := range c.Forwards {
		key := fmt.Sprintf("%s/%d", f.Proto, f.Port)
		switch {
		case f.Proto != "tcp" && f.Proto != "udp":
			errs = append(errs, fmt.Errorf("forward %s: protocol must be tcp or udp", key))
		case f.Port == 0 || f.To.Port() == 0 || !f.To.Addr().Is4():
			errs = append(errs, fmt.Errorf("forward %s to %v: want nonzero ports and an IPv4 target", key, f.To))
		case seen[key]:
			errs = append(errs, fmt.Errorf("forward %s: given twice", key))
		}
		seen[key] = true
	}
	return errors.Join(errs...)
}

func (c *Config) validatePool() []error {
	var errs []error
	if len(c.Pool) < 2 || c.Pool[0] != c.Public {
		errs = append(errs, fmt.Errorf("pool %v: want two or more addresses, the public address first", c.Pool))
	}
	seen := map[netip.Addr]bool{}
	for _, a := range c.Pool {
		if !a.Is4() || seen[a] {
			errs = append(errs, fmt.Errorf("pool: %v is not IPv4, or listed twice", a))
		}
		seen[a] = true
	}
	if _, err := nat.ParsePooling(string(c.Pooling)); err != nil {
		errs = append(errs, fmt.Errorf("pooling: %w", err))
	}
	if c.OneToOne.IsValid() || c.PortMapping {
		errs = append(errs, errors.New("pool: a one-to-one NAT, or one with port mapping, has one public address"))
	}
	return errs
}
