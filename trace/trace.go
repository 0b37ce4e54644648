// Package trace shows every packet that crosses a NAT node, before and
// after the NAT rewrote it, and every packet the NAT dropped with the rule
// that dropped it. It adds a small nftables table to the NAT's namespace
// that logs each packet as it enters (before any NAT), as it leaves (after
// all NAT) and as the NAT itself takes it in, to an NFLOG group, listens
// on that group, and pairs the logs of each packet by what NAT does not
// change in it. Drops come from the log statements of natlab's own wall
// rules.
package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/natrules"
)

// Kind says what happened to a packet at the NAT.
type Kind string

const (
	// Forwarded packets went through: Before is as it came in, After as
	// it left.
	Forwarded Kind = "forwarded"
	// Dropped packets met a rule that dropped them: Rule says which.
	Dropped Kind = "dropped"
	// Local packets were addressed to the NAT itself and taken in.
	Local Kind = "to the NAT"
	// NoRoute is the Rule of a packet that came in for another address
	// and never left: the NAT had no route for it (a private address of
	// another network, say), so the kernel dropped it.
	NoRoute = "no route: the NAT cannot forward to that address"
	// Sent packets came from the NAT itself.
	Sent Kind = "from the NAT"
)

// Event is one packet's passage.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"kind"`
	In     string    `json:"in,omitempty"`
	Out    string    `json:"out,omitempty"`
	Before Packet    `json:"before"`
	After  *Packet   `json:"after,omitempty"`
	Rule   string    `json:"rule,omitempty"`
}

// Rewritten says what the NAT changed: "source rewritten", "destination
// and ICMP id rewritten", "unchanged"... A source or destination is an
// address and port; ICMP has no ports, and an ICMP query's identifier,
// which a NAT may rewrite as it rewrites a port, is said apart.
func (e Event) Rewritten() string {
	if e.After == nil {
		return ""
	}
	b, a := e.Before, *e.After
	var changed []string
	if b.ICMP != "" {
		// decode gives both ends of an ICMP packet its identifier as
		// their port.
		if b.Src.Addr() != a.Src.Addr() {
			changed = append(changed, "source")
		}
		if b.Dst.Addr() != a.Dst.Addr() {
			changed = append(changed, "destination")
		}
		if b.Src.Port() != a.Src.Port() {
			changed = append(changed, "ICMP id")
		}
	} else {
		if b.Src != a.Src {
			changed = append(changed, "source")
		}
		if b.Dst != a.Dst {
			changed = append(changed, "destination")
		}
	}
	switch len(changed) {
	case 0:
		return "unchanged"
	case 1:
		return changed[0] + " rewritten"
	}
	return strings.Join(changed[:len(changed)-1], ", ") + " and " + changed[len(changed)-1] + " rewritten"
}

func (e Event) String() string {
	ts := e.Time.Format("15:04:05.000000")
	switch e.Kind {
	case Forwarded:
		if r := e.Rewritten(); r != "unchanged" {
			after := e.After.endpoints()
			if e.Before.ICMP != "" && e.Before.Src.Port() != e.After.Src.Port() {
				after = fmt.Sprintf("%v > %v (id %d, was %d)", e.After.Src.Addr(), e.After.Dst.Addr(), e.After.Src.Port(), e.Before.Src.Port())
			}
			return fmt.Sprintf("%s  %-5s -> %-5s %v  =>  %s  (%s)", ts, e.In, e.Out, e.Before, after, r)
		}
		return fmt.Sprintf("%s  %-5s -> %-5s %v", ts, e.In, e.Out, e.Before)
	case Dropped:
		return fmt.Sprintf("%s  %-5s DROP     %v  (%s)", ts, e.In, e.Before, e.Rule)
	case Local:
		return fmt.Sprintf("%s  %-5s -> NAT   %v", ts, e.In, e.Before)
	default:
		return fmt.Sprintf("%s  NAT   -> %-5s %v", ts, e.Out, e.Before)
	}
}

// Prefixes of the trace table's log rules.
const (
	prefixBefore = "natlab before"
	prefixAfter  = "natlab after"
	prefixLocal  = "natlab local"
)

// Tracer traces one NAT node.
type Tracer struct {
	nsFd int
	// local are the namespace's own addresses: a packet for one of them
	// that does not leave was taken in, any other was dropped.
	local  map[netip.Addr]bool
	log    *nflogConn
	ifname map[uint32]string
	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup

	stopOnce sync.Once
	stopErr  error // what Stop said
}

// pairWindow is how long a packet that came in may take to leave, or be
// taken in by the NAT, before it counts as dropped by the kernel.
const pairWindow = 300 * time.Millisecond

// Open begins tracing the NAT in the network namespace called namespace
// (lab.NamespaceName of the lab and the NAT): the one way the tour, the
// page, the runner and natlab trace start a trace. See Start.
func Open(ctx context.Context, namespace string) (*Tracer, error) {
	ns, err := namedns.Open(namespace)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return Start(ctx, ns.Fd())
}

// Start begins tracing the NAT whose namespace is open as nsFd. The tracer
// keeps a descriptor of its own, so the caller may close nsFd once Start
// returns: Stop removes the trace table from that namespace and no other,
// even if the number nsFd has been given to another file since. ctx bounds
// setting the trace up, as it bounds net.ListenConfig.Listen: once Start
// returns, the trace runs until Stop.
func Start(ctx context.Context, nsFd int) (t *Tracer, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start a trace: %w", err)
	}
	own, err := unix.FcntlInt(uintptr(nsFd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start a trace: hold the namespace: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(own)
		}
	}()
	nsFd = own
	t = &Tracer{nsFd: nsFd, ifname: map[uint32]string{}, local: map[netip.Addr]bool{}, events: make(chan Event, 1024), done: make(chan struct{})}
	h, err := namedns.Netlink(nsFd)
	if err != nil {
		return nil, err
	}
	links, err := h.LinkList()
	if err != nil {
		h.Close()
		return nil, err
	}
	for _, l := range links {
		t.ifname[uint32(l.Attrs().Index)] = l.Attrs().Name
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	h.Close()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			t.local[ip] = true
		}
	}
	if t.log, err = dialNFLOG(ctx, nsFd, natrules.LogGroup); err != nil {
		return nil, err
	}
	if err := t.addTable(ctx); err != nil {
		t.log.close()
		return nil, err
	}
	t.wg.Add(1)
	go t.loop()
	return t, nil
}

// Events delivers each traced packet once its passage is known (a packet
// that stays in the NAT is known only after pairWindow), until Stop.
func (t *Tracer) Events() <-chan Event { return t.events }

// Drain returns the events that arrive until none has come for quiet, or
// the trace or ctx ends: the kernel delivers its logs a little after the
// packets, so what a moment of traffic caused is in once the NAT is quiet.
func (t *Tracer) Drain(ctx context.Context, quiet time.Duration) []Event {
	var evs []Event
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-t.events:
			if !ok {
				return evs
			}
			evs = append(evs, e)
			timer.Reset(quiet)
		case <-timer.C:
			return evs
		case <-ctx.Done():
			return evs
		}
	}
}

// Stop removes the trace table and stops listening. It returns once the
// goroutine that reads the kernel's logs has ended, within pairWindow.
// Calling it again does nothing and returns what the first call returned:
// a tracer may be stopped by its owner and by a deferred Stop both.
func (t *Tracer) Stop() error {
	t.stopOnce.Do(func() {
		t.stopErr = t.delTable()
		close(t.done)
		t.log.c.SetReadDeadline(time.Now())
		t.wg.Wait()
		t.log.close()
		unix.Close(t.nsFd)
	})
	return t.stopErr
}

func (t *Tracer) addTable(ctx context.Context) error {
	opts := []nftables.ConnOption{nftables.WithNetNSFd(t.nsFd)}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nftables.WithSockOptions(func(c *mdnetlink.Conn) error { return c.SetDeadline(d) }))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	// The trace table (natrules.TraceTable) exists only while a trace runs.
	tab := natrules.TraceTable()
	// A trace that was killed may have left its table: start afresh.
	conn.AddTable(tab)
	conn.DelTable(tab)
	conn.AddTable(tab)
	for _, c := range []struct {
		name   string
		hook   *nftables.ChainHook
		prio   nftables.ChainPriority
		prefix string
	}{
		// Before conntrack and any NAT, and after all of it; and taken
		// in by the NAT itself, after natlab's wall let it in, so that
		// such a packet is known at once, not only once it did not
		// leave within pairWindow (which would hold back every event
		// after it).
		{"before", nftables.ChainHookPrerouting, *nftables.ChainPriorityRaw, prefixBefore},
		{"after", nftables.ChainHookPostrouting, 300, prefixAfter},
		{"local", nftables.ChainHookInput, 300, prefixLocal},
	} {
		prio := c.prio
		policy := nftables.ChainPolicyAccept
		ch := conn.AddChain(&nftables.Chain{Name: c.name, Table: tab, Hooknum: c.hook, Priority: &prio, Type: nftables.ChainTypeFilter, Policy: &policy})
		exprs := []expr.Any{&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: natrules.LogGroup, Data: []byte(c.prefix)}}
		if c.name == "before" {
			// Marked, a packet keeps its flow from being offloaded
			// (natrules.TraceMark): the trace sees all of it.
			exprs = append(exprs, setMarkBit(natrules.TraceMark)...)
		}
		conn.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: exprs})
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add the trace table: %w", err)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("add the trace table: %w", err)
	}
	return nil
}

// setMarkBit sets bit in the packet's mark: mark & ^bit ^ bit.
func setMarkBit(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^bit), Xor: binary.NativeEndian.AppendUint32(nil, bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

func (t *Tracer) delTable() error {
	conn, err := nftables.New(nftables.WithNetNSFd(t.nsFd))
	if err != nil {
		return err
	}
	conn.DelTable(natrules.TraceTable())
	return conn.Flush()
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

type pending struct {
	at  logged
	pkt Packet
}

// loop pairs the logs of each packet into events and delivers them in
// the order of their times: the kernel's timestamp of the packet's
// arrival (the log of a packet the NAT sent has none: the time it was
// read). An event waits while a packet that came in before it is still
// on its way, since that one's event comes first: without this the NAT's
// ICMP error for a packet that went nowhere came before the packet, which
// is known to have gone nowhere only pairWindow later.
func (t *Tracer) loop() {
	defer t.wg.Done()
	defer close(t.events)
	waiting := map[uint64]pending{}
	var order []uint64
	var ready []Event // sorted by time
	emit := func(e Event) {
		i := sort.Search(len(ready), func(i int) bool { return ready[i].Time.After(e.Time) })
		ready = slices.Insert(ready, i, e)
	}
	// release delivers the events older than every packet still waiting.
	release := func() {
		n := len(ready)
		for len(order) > 0 {
			p, ok := waiting[order[0]]
			if ok {
				n = sort.Search(len(ready), func(i int) bool { return !ready[i].Time.Before(p.at.time) })
				break
			}
			order = order[1:]
		}
		for _, e := range ready[:n] {
			select {
			case t.events <- e:
			case <-t.done:
				return
			}
		}
		ready = slices.Delete(ready, 0, n)
	}
	expire := func(now time.Time) {
		for len(order) > 0 {
			p, ok := waiting[order[0]]
			if ok && now.Sub(p.at.time) < pairWindow {
				return
			}
			if ok {
				e := Event{Time: p.at.time, Kind: Local, In: t.ifname[p.at.in], Before: p.pkt}
				if dst := p.pkt.Dst.Addr(); !t.local[dst] && !dst.IsMulticast() && dst != netip.IPv4Unspecified() && dst != broadcast {
					e.Kind, e.Rule = Dropped, NoRoute
				}
				emit(e)
				delete(waiting, order[0])
			}
			order = order[1:]
		}
	}
	for {
		t.log.c.SetReadDeadline(time.Now().Add(pairWindow))
		batch, err := t.log.receive()
		select {
		case <-t.done:
			return
		default:
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		for _, l := range batch {
			pkt, ok := decode(l.payload)
			if !ok || pkt.Dst.Addr().IsMulticast() {
				// Not IPv4, or the bridge's own multicast chatter.
				continue
			}
			key := identity(l.payload)
			switch {
			case l.prefix == prefixBefore:
				waiting[key] = pending{l, pkt}
				order = append(order, key)
			case l.prefix == prefixLocal:
				if p, ok := waiting[key]; ok {
					delete(waiting, key)
					emit(Event{Time: p.at.time, Kind: Local, In: t.ifname[p.at.in], Before: p.pkt})
				}
			case l.prefix == prefixAfter:
				if p, ok := waiting[key]; ok {
					delete(waiting, key)
					after := pkt
					emit(Event{Time: p.at.time, Kind: Forwarded, In: t.ifname[p.at.in], Out: t.ifname[l.out], Before: p.pkt, After: &after})
				} else {
					emit(Event{Time: l.time, Kind: Sent, Out: t.ifname[l.out], Before: pkt})
				}
			default: // a drop rule's prefix
				before, in := pkt, t.ifname[l.in]
				if p, ok := waiting[key]; ok {
					delete(waiting, key)
					before = p.pkt
				}
				emit(Event{Time: l.time, Kind: Dropped, In: in, Before: before, Rule: l.prefix})
			}
		}
		expire(time.Now())
		release()
	}
}
