// Package classify discovers a NAT's behaviour from behind it, as RFC 5780
// describes, against a STUN server with two addresses and two ports:
// mapping (section 4.3), filtering (4.4), hairpinning (4.5) and the
// mapping lifetime (4.6), plus how new public ports are allocated,
// whether a packet to a public port nothing sent from gets in, and how a
// NAT with several public addresses pools them (RFC 4787 section 4.1). It
// names what it finds in the words of RFC 4787 that scenario files use,
// so a result can be compared with the NAT natlab was asked to build.
package classify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/stunclient"
)

// Options says where to probe from and to.
type Options struct {
	// Server is the STUN server's primary address and port.
	Server netip.AddrPort
	// Local is the probing machine's address: if the server sees it, there
	// is no NAT in between.
	Local netip.Addr
	// Listen opens a UDP socket on the machine being classified, bound to
	// local (":0" for a free port).
	Listen func(local string) (*net.UDPConn, error)
	// Lifetime estimates the mapping lifetime too, which takes as long as
	// the lifetime (up to LifetimeMax).
	Lifetime    bool
	LifetimeMax time.Duration
	// Log, if set, is told every test as it runs.
	Log func(Test)
}

// Result is what discovery found.
type Result struct {
	// Local is the address the first probe was sent from, Public the
	// address the server saw it come from.
	Local  netip.AddrPort `json:"local"`
	Public netip.AddrPort `json:"public"`
	// Behind is false when the server saw the local address: no NAT.
	Behind    bool               `json:"behind_nat"`
	Mapping   nat.Dependence     `json:"mapping"`
	Filtering nat.Dependence     `json:"filtering"`
	Ports     nat.PortAllocation `json:"ports"`
	// PortsSeen are the public ports of the port-allocation probes, with
	// the local ports they were sent from.
	PortsSeen []PortPair `json:"ports_seen"`
	Hairpin   bool       `json:"hairpin"`
	// Unsolicited is true when a packet from outside to a public port
	// that no socket of the machine has sent from reaches the machine:
	// every port of the public address is forwarded to it, as a
	// one-to-one NAT (nat.OneToOne) does, where RFC 5780's tests see a
	// full cone. On the open internet nothing is in the way, and it is
	// true too.
	Unsolicited bool `json:"unsolicited_inbound"`
	// Publics are the public addresses the machine's mappings were seen
	// at, in the order first seen, and Pooling what they show (RFC 4787
	// section 4.1): arbitrary when one machine's mappings have more than
	// one; paired when they all share one, which a NAT with one public
	// address shows too (from one machine the two cannot be told apart).
	// Both are empty when there is no NAT.
	Publics []netip.Addr `json:"public_addresses,omitempty"`
	Pooling nat.Pooling  `json:"pooling,omitempty"`
	// PortsWithin is set when the machine's random public ports all fell
	// in a range far narrower than chance allows: a carrier-grade NAT's
	// port blocks (RFC 6888 section 5), or a NAT given a small port
	// range; from one machine the two cannot be told apart. It is the
	// range from the lowest port seen to the highest.
	PortsWithin *nat.PortRange `json:"ports_within,omitempty"`
	// Quota is how many mappings the machine held when the NAT refused it
	// a new one (a carrier-grade NAT's port quota, RFC 6888 REQ-3), or 0
	// when it refused none of the blocks test's. It counts the mappings
	// every test's requests made, as the mapping behaviour found says
	// they are made, so it is not measured with Options.Lifetime, whose
	// waits let earlier mappings expire.
	Quota int `json:"quota,omitempty"`
	// Type is the classic name of the mapping and filtering, if one fits.
	Type nat.Type `json:"type,omitempty"`
	// Lifetime is set when asked for.
	Lifetime *Lifetime `json:"lifetime,omitempty"`
	// Refresh is which traffic keeps an idle mapping alive (RFC 4787
	// section 4.3), found with the lifetime once it is bracketed: both
	// when packets from outside alone keep it alive, outbound when they
	// do not; "" when not tested.
	Refresh nat.Refresh `json:"refresh,omitempty"`
	Tests   []Test      `json:"tests"`
}

// PortPair is one probe's local port and the public port it got.
type PortPair struct {
	Local  uint16 `json:"local"`
	Public uint16 `json:"public"`
}

// Lifetime brackets the mapping lifetime: alive after Alive, gone after
// Gone (zero if it outlived every probe).
type Lifetime struct {
	Alive time.Duration `json:"alive_after"`
	Gone  time.Duration `json:"gone_after,omitempty"`
}

// Test is one request of the discovery and what came of it.
type Test struct {
	Name     string         `json:"name"`
	From     netip.AddrPort `json:"from"`
	To       netip.AddrPort `json:"to"`
	Answered bool           `json:"answered"`
	Mapped   netip.AddrPort `json:"mapped,omitempty"`
	Source   netip.AddrPort `json:"source,omitempty"`
}

// ErrNoServer means the STUN server did not answer a plain request, so
// nothing can be learnt.
var ErrNoServer = errors.New("no answer from the STUN server")

// noAnswer explains a request that should have been answered and was not:
// either the server is not there, or the NAT refused to make a mapping
// for it (a full port range) or dropped the answer.
func (d *discovery) noAnswer(to netip.AddrPort, err error) error {
	if err != nil && !errors.Is(err, stunclient.ErrNoResponse) {
		return fmt.Errorf("request to %v: %w", to, err)
	}
	if held := d.held(); held > 0 {
		return fmt.Errorf("%w at %v to a request it must answer, after %d mappings of this machine were made: is the NAT out of ports, or has this machine used its port quota (RFC 6888)?", ErrNoServer, to, held)
	}
	return fmt.Errorf("%w at %v to a request it must answer: is the stun service running there, or is the NAT out of ports?", ErrNoServer, to)
}

// held counts the mappings the tests' requests have made: one for each
// socket that sent out, behind an endpoint-independent mapping; one for
// each socket and address it sent to behind an address-dependent one; one
// for each socket and address and port behind an address-and-port-
// dependent one (RFC 4787 section 4.1). Hairpinned packets count too:
// the NAT maps them as it maps any (REQ-9).
func (d *discovery) held() int {
	seen := map[flow]bool{}
	for _, f := range d.flows {
		switch d.res.Mapping {
		case nat.EndpointIndependent:
			f.to = netip.AddrPort{}
		case nat.AddressDependent:
			f.to = netip.AddrPortFrom(f.to.Addr(), 0)
		}
		seen[f] = true
	}
	return len(seen)
}

// flow is a socket's sending to a remote endpoint, which made or used a
// mapping.
type flow struct{ from, to netip.AddrPort }

// ErrNoAlternate means the server has one address, which RFC 5780
// discovery needs two of.
var ErrNoAlternate = errors.New("the STUN server has no alternate address (RFC 5780 needs two addresses)")

type discovery struct {
	opts Options
	res  *Result
	// alternate is the server's alternate address with its primary
	// port, once the mapping test has learnt it.
	alternate netip.AddrPort
	// flows are where the tests' sockets have sent, each a mapping the
	// NAT made or used (held).
	flows []flow
}

// Discover runs the tests and returns the behaviour they show.
func Discover(ctx context.Context, opts Options) (*Result, error) {
	d := &discovery{opts: opts, res: &Result{}}
	if err := d.mapping(ctx); err != nil {
		return d.res, err
	}
	if err := d.filtering(ctx); err != nil {
		return d.res, err
	}
	if err := d.ports(ctx); err != nil {
		return d.res, err
	}
	if err := d.hairpin(ctx); err != nil {
		return d.res, err
	}
	if err := d.unsolicited(ctx); err != nil {
		return d.res, err
	}
	if err := d.pooling(ctx); err != nil {
		return d.res, err
	}
	if err := d.blocks(ctx); err != nil {
		return d.res, err
	}
	if opts.Lifetime {
		if err := d.lifetime(ctx); err != nil {
			return d.res, err
		}
		if err := d.refresh(ctx); err != nil {
			return d.res, err
		}
	}
	if t, ok := nat.TypeOf(d.res.Mapping, d.res.Filtering); ok && d.res.Behind {
		d.res.Type = t
	}
	return d.res, nil
}

func (d *discovery) open() (*net.UDPConn, error) {
	c, err := d.opts.Listen(":0")
	if err != nil {
		return nil, fmt.Errorf("open a socket: %w", err)
	}
	return c, nil
}

// probe sends one request and records the test.
func (d *discovery) probe(ctx context.Context, name string, c *net.UDPConn, to netip.AddrPort, req stunclient.Request) (stunclient.Response, bool, error) {
	resp, err := stunclient.Binding(ctx, c, to, req)
	d.sent(c, to)
	return d.record(name, c, to, resp, err)
}

// sent notes that c sent to to.
func (d *discovery) sent(c *net.UDPConn, to netip.AddrPort) {
	d.flows = append(d.flows, flow{localAddr(c), to})
}

// record keeps the test of a request sent from c to to, and says whether
// it was answered: an error is one other than the lack of an answer.
func (d *discovery) record(name string, c *net.UDPConn, to netip.AddrPort, resp stunclient.Response, err error) (stunclient.Response, bool, error) {
	t := Test{Name: name, From: localAddr(c), To: to}
	if err == nil {
		t.Answered, t.Mapped, t.Source = true, resp.Mapped, resp.Source
	}
	d.res.Tests = append(d.res.Tests, t)
	if d.opts.Log != nil {
		d.opts.Log(t)
	}
	if errors.Is(err, stunclient.ErrNoResponse) {
		return resp, false, nil
	}
	return resp, err == nil, err
}

func localAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// mapping is RFC 5780 section 4.3: the same socket to the primary address,
// the alternate address, and the alternate address and port.
func (d *discovery) mapping(ctx context.Context) error {
	c, err := d.open()
	if err != nil {
		return err
	}
	defer c.Close()
	r1, ok, err := d.probe(ctx, "mapping I: primary address and port", c, d.opts.Server, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(d.opts.Server, err)
	}
	if !r1.Other.IsValid() {
		return ErrNoAlternate
	}
	d.res.Public = r1.Mapped
	d.res.Local = netip.AddrPortFrom(d.opts.Local, localAddr(c).Port())
	d.res.Behind = r1.Mapped != d.res.Local
	alternateAddr := netip.AddrPortFrom(r1.Other.Addr(), d.opts.Server.Port())
	d.alternate = alternateAddr
	r2, ok, err := d.probe(ctx, "mapping II: alternate address, primary port", c, alternateAddr, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(alternateAddr, err)
	}
	if r2.Mapped == r1.Mapped {
		d.res.Mapping = nat.EndpointIndependent
		return nil
	}
	r3, ok, err := d.probe(ctx, "mapping III: alternate address and port", c, r1.Other, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(r1.Other, err)
	}
	if r3.Mapped == r2.Mapped {
		d.res.Mapping = nat.AddressDependent
	} else {
		d.res.Mapping = nat.AddressAndPortDependent
	}
	return nil
}

// filtering is RFC 5780 section 4.4, from a fresh socket that has only
// talked to the primary endpoint: may the server answer from its other
// address (endpoint-independent), or its other port (address-dependent)?
func (d *discovery) filtering(ctx context.Context) error {
	c, err := d.open()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, ok, err := d.probe(ctx, "filtering I: primary address and port", c, d.opts.Server, stunclient.Request{}); err != nil || !ok {
		return d.noAnswer(d.opts.Server, err)
	}
	_, ok, err := d.probe(ctx, "filtering II: answer from the alternate address and port", c, d.opts.Server, stunclient.Request{ChangeIP: true, ChangePort: true, Waits: stunclient.Probes})
	if err != nil {
		return err
	}
	if ok {
		d.res.Filtering = nat.EndpointIndependent
		return nil
	}
	_, ok, err = d.probe(ctx, "filtering III: answer from the alternate port", c, d.opts.Server, stunclient.Request{ChangePort: true, Waits: stunclient.Probes})
	if err != nil {
		return err
	}
	if ok {
		d.res.Filtering = nat.AddressDependent
	} else {
		d.res.Filtering = nat.AddressAndPortDependent
	}
	return nil
}

// portProbes is how many fresh sockets show how ports are allocated.
const portProbes = 4

// ports opens fresh sockets one after another: a NAT that preserves ports
// shows the local ports; one that allocates sequentially shows
// consecutive ports; anything else counts as random.
func (d *discovery) ports(ctx context.Context) error {
	var pairs []PortPair
	for i := 0; i < portProbes; i++ {
		c, err := d.open()
		if err != nil {
			return err
		}
		r, ok, err := d.probe(ctx, fmt.Sprintf("ports %d: a new mapping", i+1), c, d.opts.Server, stunclient.Request{})
		c.Close()
		if err != nil || !ok {
			return d.noAnswer(d.opts.Server, err)
		}
		pairs = append(pairs, PortPair{Local: localAddr(c).Port(), Public: r.Mapped.Port()})
	}
	d.res.PortsSeen = pairs
	d.res.Ports = allocation(pairs)
	return nil
}

// allocation names the pattern of a series of new mappings' ports.
func allocation(pairs []PortPair) nat.PortAllocation {
	preserved, consecutive := true, true
	for i, p := range pairs {
		preserved = preserved && p.Public == p.Local
		if i > 0 {
			consecutive = consecutive && p.Public == pairs[i-1].Public+1
		}
	}
	switch {
	case preserved:
		return nat.PortPreserve
	case consecutive:
		return nat.PortSequential
	default:
		return nat.PortRandom
	}
}

// hairpin is RFC 5780 section 4.5: a request from a second socket to the
// first socket's public endpoint must come back in to the first. A NAT
// filters a hairpinned packet as one from outside (RFC 4787 REQ-9), from
// the second socket's public endpoint, so the first socket sends there
// first, as a hole punch does: then any filtering of an
// endpoint-independent mapping lets the request in. Behind
// address-dependent mappings both sockets reach the public address through
// mappings nobody can learn, and the test sees no hairpinning even where
// the NAT has it.
func (d *discovery) hairpin(ctx context.Context) error {
	a, err := d.open()
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := d.open()
	if err != nil {
		return err
	}
	defer b.Close()
	r, ok, err := d.probe(ctx, "hairpin: learn a public endpoint", a, d.opts.Server, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(d.opts.Server, err)
	}
	rb, ok, err := d.probe(ctx, "hairpin: learn the second socket's public endpoint", b, d.opts.Server, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(d.opts.Server, err)
	}
	m, err := stunclient.Build(stunclient.Request{})
	if err != nil {
		return err
	}
	// The first socket's packet to the second is only there to open its
	// mapping's filter; it is not a STUN message, so nobody answers it.
	open := []byte("natlab classify: hairpin, opening the filter")
	d.sent(a, rb.Mapped)
	d.sent(b, r.Mapped)
	got := false
	for _, wait := range stunclient.Probes {
		if _, err := a.WriteToUDPAddrPort(open, rb.Mapped); err != nil {
			break // hairpin-less NATs may answer with an error
		}
		if _, err := b.WriteToUDPAddrPort(m.Raw, r.Mapped); err != nil {
			break
		}
		if arrived(a, m.Raw, time.Now().Add(wait)) {
			got = true
			break
		}
	}
	t := Test{Name: "hairpin: from the second socket, after one the other way", From: localAddr(b), To: r.Mapped, Answered: got}
	d.res.Tests = append(d.res.Tests, t)
	if d.opts.Log != nil {
		d.opts.Log(t)
	}
	d.res.Hairpin = got
	return nil
}

// unsolicited asks the server, from a socket with a mapping, to answer
// to the same public address at the port of a second socket that has sent
// nothing (RESPONSE-PORT, RFC 5780 section 7.5): no mapping of the second
// socket's can let the answer in, so it arrives only where the NAT
// forwards every port to this machine, keeping the port, as a one-to-one
// NAT does. Behind any other NAT the port is nobody's, or another
// mapping's, and the answer does not reach the second socket.
func (d *discovery) unsolicited(ctx context.Context) error {
	q, err := d.open()
	if err != nil {
		return err
	}
	defer q.Close()
	u, err := d.open()
	if err != nil {
		return err
	}
	defer u.Close()
	port := localAddr(u).Port()
	req, err := stunclient.Build(stunclient.Request{ResponsePort: port})
	if err != nil {
		return err
	}
	d.sent(q, d.opts.Server)
	got := false
	for _, wait := range stunclient.Probes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := q.WriteToUDPAddrPort(req.Raw, d.opts.Server); err != nil {
			return fmt.Errorf("request to %v: %w", d.opts.Server, err)
		}
		if _, err := stunclient.Await(u, req.TransactionID, time.Now().Add(wait)); err == nil {
			got = true
			break
		}
	}
	t := Test{Name: fmt.Sprintf("unsolicited: an answer to port %d, which sent nothing", port), From: localAddr(q), To: d.opts.Server, Answered: got}
	d.res.Tests = append(d.res.Tests, t)
	if d.opts.Log != nil {
		d.opts.Log(t)
	}
	d.res.Unsolicited = got
	return nil
}

// poolingProbes is how many fresh sockets, beside those of the other
// tests, look for a second public address. A NAT that gives each of a
// machine's sockets any of two addresses at random shows only one to all
// of them, the other tests' included, about once in 30000 runs.
const poolingProbes = 8

// pooling asks from fresh sockets, each to both of the server's
// addresses, as from two STUN servers, and names the public addresses
// every test's mappings were seen at: one for all of them is paired
// pooling (or one address), more is arbitrary. The mapping test has
// shown already whether one socket keeps its address towards the
// server's second address.
func (d *discovery) pooling(ctx context.Context) error {
	for i := range poolingProbes {
		c, err := d.open()
		if err != nil {
			return err
		}
		for _, to := range []netip.AddrPort{d.opts.Server, d.alternate} {
			if _, ok, err := d.probe(ctx, fmt.Sprintf("pooling %d: a new mapping's public address", i+1), c, to, stunclient.Request{}); err != nil || !ok {
				c.Close()
				return d.noAnswer(to, err)
			}
		}
		c.Close()
	}
	if !d.res.Behind {
		return nil
	}
	for _, t := range d.res.Tests {
		if t.Answered && t.Mapped.IsValid() && !slices.Contains(d.res.Publics, t.Mapped.Addr()) {
			d.res.Publics = append(d.res.Publics, t.Mapped.Addr())
		}
	}
	d.res.Pooling = nat.PoolingPaired
	if len(d.res.Publics) > 1 {
		d.res.Pooling = nat.PoolingArbitrary
	}
	return nil
}

// blockProbes is how many mappings the blocks test asks for at once.
const blockProbes = 24

// blocks asks for blockProbes new mappings at once, from fresh sockets
// all kept open until every answer is in (one round trip; silence, which
// is the finding, takes stunclient.Probes). A carrier-grade NAT refuses a
// machine a mapping beyond its port quota (RFC 6888 REQ-3 and REQ-4: it
// takes no mapping away to make room), and the machine's ports come from
// its own blocks (section 5), which the ports of every test's mappings
// show when they are random.
func (d *discovery) blocks(ctx context.Context) error {
	if !d.res.Behind {
		return nil
	}
	type answer struct {
		c    *net.UDPConn
		resp stunclient.Response
		err  error
	}
	answers := make([]answer, blockProbes)
	defer func() {
		for _, a := range answers {
			if a.c != nil {
				a.c.Close()
			}
		}
	}()
	for i := range answers {
		c, err := d.open()
		if err != nil {
			return err
		}
		answers[i].c = c
	}
	var wg sync.WaitGroup
	for i := range answers {
		a := &answers[i]
		wg.Go(func() {
			a.resp, a.err = stunclient.Binding(ctx, a.c, d.opts.Server, stunclient.Request{Waits: stunclient.Probes})
		})
	}
	wg.Wait()
	refused := false
	for i, a := range answers {
		_, ok, err := d.record(fmt.Sprintf("blocks %d: a new mapping, %d held at once", i+1, blockProbes), a.c, d.opts.Server, a.resp, a.err)
		if err != nil {
			return fmt.Errorf("request to %v: %w", d.opts.Server, err)
		}
		if ok {
			// An unanswered request's mapping was refused.
			d.sent(a.c, d.opts.Server)
		}
		refused = refused || !ok
	}
	if refused && !d.opts.Lifetime {
		d.res.Quota = d.held()
	}
	if d.res.Ports == nat.PortRandom {
		var ports []uint16
		for _, t := range d.res.Tests {
			if t.Answered && t.Mapped.IsValid() {
				ports = append(ports, t.Mapped.Port())
			}
		}
		if r, ok := narrow(ports); ok {
			d.res.PortsWithin = &r
		}
	}
	return nil
}

// narrow says whether random public ports fell in a range too narrow for
// chance, and which: at least narrowPorts distinct ones within an eighth
// of the ports above 1023, where k random ports of that range fall with
// a chance of about k/8^(k-1) (5e-6 for eight of them).
func narrow(ports []uint16) (nat.PortRange, bool) {
	const narrowPorts = 8
	distinct := slices.Compact(slices.Sorted(slices.Values(ports)))
	if len(distinct) < narrowPorts {
		return nat.PortRange{}, false
	}
	r := nat.PortRange{First: distinct[0], Last: distinct[len(distinct)-1]}
	return r, r.Size()*8 <= nat.DefaultPortRange.Size()
}

// arrived reads c until want arrives or the deadline passes.
func arrived(c *net.UDPConn, want []byte, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		if slices.Equal(buf[:n], want) {
			return true
		}
	}
}

// lifetimeProbes are the idle times after which a mapping is checked.
var lifetimeProbes = []time.Duration{
	time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 30 * time.Second,
	45 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute, 150 * time.Second, 3 * time.Minute,
	4 * time.Minute, 5 * time.Minute, 10 * time.Minute,
}

// lifetime is RFC 5780 section 4.6, run in parallel: one mapping per
// probe time, created together; after its idle time each is asked about
// from another socket with RESPONSE-PORT, so that the question does not
// refresh it. The answer comes back to the mapping only if it is alive.
func (d *discovery) lifetime(ctx context.Context) error {
	max := d.opts.LifetimeMax
	if max == 0 {
		max = 3 * time.Minute
	}
	type mapping struct {
		idle   time.Duration
		conn   *net.UDPConn
		public netip.AddrPort
	}
	var maps []mapping
	defer func() {
		for _, m := range maps {
			m.conn.Close()
		}
	}()
	for _, idle := range lifetimeProbes {
		if idle > max {
			break
		}
		c, err := d.open()
		if err != nil {
			return err
		}
		r, ok, err := d.probe(ctx, fmt.Sprintf("lifetime: a mapping to check after %v", idle), c, d.opts.Server, stunclient.Request{})
		if err != nil || !ok {
			c.Close()
			return d.noAnswer(d.opts.Server, err)
		}
		maps = append(maps, mapping{idle, c, r.Mapped})
	}
	start := time.Now()
	lt := &Lifetime{}
	d.res.Lifetime = lt
	for _, m := range maps {
		select {
		case <-time.After(time.Until(start.Add(m.idle))):
		case <-ctx.Done():
			return ctx.Err()
		}
		alive, from, err := d.inbound(m.conn, m.public)
		if err != nil {
			return err
		}
		t := Test{Name: fmt.Sprintf("lifetime: is the mapping alive after %v idle?", m.idle), From: from, To: d.opts.Server, Answered: alive, Mapped: m.public}
		d.res.Tests = append(d.res.Tests, t)
		if d.opts.Log != nil {
			d.opts.Log(t)
		}
		if !alive {
			lt.Gone = m.idle
			return nil
		}
		lt.Alive = m.idle
	}
	return nil
}

// refresh finds whether packets from outside alone keep a mapping alive
// (RFC 4787 section 4.3: outbound refresh is required, inbound refresh
// allowed). Once the lifetime is bracketed (alive after Alive, gone after
// Gone), a new mapping stays silent while the server sends it an answer
// every half Alive, asked for from another socket with RESPONSE-PORT (RFC
// 5780), for Gone and a second more: if the answers still arrive at the
// end, inbound traffic refreshed the mapping; if they stop, only
// outbound traffic does.
func (d *discovery) refresh(ctx context.Context) error {
	lt := d.res.Lifetime
	if lt == nil || lt.Gone == 0 || !d.res.Behind {
		return nil
	}
	c, err := d.open()
	if err != nil {
		return err
	}
	defer c.Close()
	r, ok, err := d.probe(ctx, "refresh: a mapping that will only hear from outside", c, d.opts.Server, stunclient.Request{})
	if err != nil || !ok {
		return d.noAnswer(d.opts.Server, err)
	}
	every := max(lt.Alive/2, 250*time.Millisecond)
	until := time.Now().Add(lt.Gone + time.Second)
	heard := true
	for heard && time.Now().Before(until) {
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return ctx.Err()
		}
		heard, _, err = d.inbound(c, r.Mapped)
		if err != nil {
			return err
		}
	}
	t := Test{Name: fmt.Sprintf("refresh: is a mapping that only heard from outside, every %v, alive after %v?", every, lt.Gone+time.Second),
		From: localAddr(c), To: d.opts.Server, Answered: heard, Mapped: r.Mapped}
	d.res.Tests = append(d.res.Tests, t)
	if d.opts.Log != nil {
		d.opts.Log(t)
	}
	d.res.Refresh = nat.RefreshOutbound
	if heard {
		d.res.Refresh = nat.RefreshBoth
	}
	return nil
}

// inbound has the server send to the public endpoint of mapping c (from
// the server endpoint c sent to), asked for with RESPONSE-PORT from
// another socket, whose address it returns, and reports whether c heard
// it: whether the mapping is alive.
func (d *discovery) inbound(c *net.UDPConn, public netip.AddrPort) (bool, netip.AddrPort, error) {
	q, err := d.open()
	if err != nil {
		return false, netip.AddrPort{}, err
	}
	defer q.Close()
	req, err := stunclient.Build(stunclient.Request{ResponsePort: public.Port()})
	if err != nil {
		return false, netip.AddrPort{}, err
	}
	for _, wait := range stunclient.Probes {
		q.WriteToUDPAddrPort(req.Raw, d.opts.Server)
		if _, err := stunclient.Await(c, req.TransactionID, time.Now().Add(wait)); err == nil {
			return true, localAddr(q), nil
		}
	}
	return false, localAddr(q), nil
}

// Summary names the behaviour in one line: "symmetric, ports random,
// hairpin", or the two dependences where no classic name fits, or "no
// NAT"; and says so when one machine's mappings have several public
// addresses (arbitrary pooling) and when unsolicited inbound packets get
// in.
func (r *Result) Summary() string {
	if !r.Behind {
		return "no NAT"
	}
	name := string(r.Type)
	if name == "" {
		name = fmt.Sprintf("mapping %s, filtering %s", r.Mapping, r.Filtering)
	}
	hairpin := "no hairpin"
	if r.Hairpin {
		hairpin = "hairpin"
	}
	s := fmt.Sprintf("%s, ports %s, %s", name, r.Ports, hairpin)
	if r.Pooling == nat.PoolingArbitrary {
		s += fmt.Sprintf(", pooling arbitrary (%d public addresses seen)", len(r.Publics))
	}
	if r.PortsWithin != nil {
		s += fmt.Sprintf(", ports within %v (port blocks?)", *r.PortsWithin)
	}
	if r.Quota > 0 {
		s += fmt.Sprintf(", a new mapping refused after %d (a port quota)", r.Quota)
	}
	if r.Unsolicited {
		s += ", unsolicited inbound gets in (every port forwarded, as by a one-to-one NAT)"
	}
	return s
}
