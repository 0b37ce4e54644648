package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/trace"
)

// packetView is one packet's passage through a NAT, as the page draws it.
type packetView struct {
	Seq  int64      `json:"seq"`
	Time time.Time  `json:"time"`
	NAT  string     `json:"nat"`
	Kind trace.Kind `json:"kind"`
	// Side is where the packet came in: "lan" (from behind the NAT),
	// "wan" (from outside) or "" (made by the NAT itself).
	Side  string `json:"side"`
	Proto string `json:"proto"`
	// What the packet is: "udp", "tcp [S]", "icmp echo-request".
	What   string `json:"what"`
	Before string `json:"before"`
	After  string `json:"after,omitempty"`
	// SrcChanged and DstChanged say what the NAT rewrote.
	SrcChanged bool   `json:"src_changed"`
	DstChanged bool   `json:"dst_changed"`
	Rewritten  string `json:"rewritten,omitempty"`
	// From and To are the nodes the packet travels between, as far as
	// the lab's addresses tell: the sender and the receiver (or the next
	// NAT on its way). Empty when the address is nobody's.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reason explains a drop.
	Reason string `json:"reason,omitempty"`
	// Earlier marks a drop of a flow that began before the action now
	// running: the reader did not cause it with this action (keepalives
	// of an earlier punch that a switched NAT now walls, say), and the
	// page shows it apart from the action's own.
	Earlier bool `json:"earlier,omitempty"`
}

// flowKey names a flow by its protocol and its two endpoints in either
// order, as one side of a NAT sees them: the private side before a
// rewrite, the public side after it.
type flowKey struct {
	proto  string
	lo, hi netip.AddrPort
}

func keyOf(p trace.Packet) flowKey {
	lo, hi := p.Src, p.Dst
	if hi.Compare(lo) < 0 {
		lo, hi = hi, lo
	}
	return flowKey{p.Proto, lo, hi}
}

// maxFlows bounds the flows a watcher remembers; past it, it forgets
// them all, and a drop of a flow it forgot counts as the action's.
const maxFlows = 1 << 14

// tableView is a NAT's translation table.
type tableView struct {
	NAT      string             `json:"nat"`
	Flows    []nattable.Flow    `json:"flows"`
	Mappings []nattable.Mapping `json:"mappings"`
	Forwards []nattable.Forward `json:"forwards"`
	// OneToOne is a one-to-one NAT's binding, which its rules hold.
	OneToOne *nattable.Binding `json:"one_to_one,omitempty"`
	// Subscribers are a carrier-grade NAT's subscribers and their port
	// blocks, with the ports their mappings hold.
	Subscribers []nattable.Subscriber `json:"subscribers,omitempty"`
	Error       string                `json:"error,omitempty"`
}

// watcher traces every NAT of the lab and reads their tables, publishing
// what it sees to the hub.
type watcher struct {
	lab  string
	hub  *hub
	mu   sync.Mutex
	topo *topology.Topology
	// owners maps every address in the lab to its node.
	owners map[netip.Addr]string
	seq    int64
	tables map[string]*tableView
	// warnings say what could not be watched (a NAT another trace holds).
	warnings []string
	// pokes have a NAT's table read soon.
	pokes map[string]chan struct{}
	// tracers and namespaces are closed by close, after the goroutines
	// that use them have stopped.
	tracers    []*trace.Tracer
	namespaces []*namedns.NS
	stop       context.CancelFunc
	wg         sync.WaitGroup
	// flows is when each flow was first seen; actionStart when the
	// action now running began (zero before the first).
	flows       map[flowKey]time.Time
	actionStart time.Time
}

// actionStarted marks the start of an action: drops of flows seen before
// it are marked Earlier.
func (w *watcher) actionStarted(at time.Time) {
	w.mu.Lock()
	w.actionStart = at
	w.mu.Unlock()
}

// firstSeen records the packet of e and returns when its flow was first
// seen, on either side of the NAT.
func (w *watcher) firstSeen(e trace.Event) time.Time {
	if w.flows == nil || len(w.flows) > maxFlows {
		w.flows = map[flowKey]time.Time{}
	}
	keys := []flowKey{keyOf(e.Before)}
	if e.After != nil {
		keys = append(keys, keyOf(*e.After))
	}
	first := e.Time
	for _, k := range keys {
		if t, ok := w.flows[k]; ok && t.Before(first) {
			first = t
		}
	}
	for _, k := range keys {
		w.flows[k] = first
	}
	return first
}

// tablePoll is how often tables are read when nothing happens, to show
// rows expiring; tableSettle is how long after a packet they are read,
// so that a burst of packets costs one read.
const (
	tablePoll   = time.Second
	tableSettle = 100 * time.Millisecond
)

// newWatcher starts watching the lab's NATs; ctx bounds starting their
// traces, and the watcher runs until close.
func newWatcher(ctx context.Context, labName string, topo *topology.Topology, h *hub) *watcher {
	life, stop := context.WithCancel(context.Background())
	w := &watcher{lab: labName, hub: h, tables: map[string]*tableView{}, pokes: map[string]chan struct{}{}, stop: stop}
	w.setTopology(topo)
	for _, n := range topo.Nodes {
		if n.NAT == nil {
			continue
		}
		ns, err := namedns.Open(lab.NamespaceName(labName, n.Name))
		if err != nil {
			w.warnings = append(w.warnings, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		w.namespaces = append(w.namespaces, ns)
		poke := make(chan struct{}, 1)
		w.pokes[n.Name] = poke
		tr, err := trace.Open(ctx, lab.NamespaceName(labName, n.Name))
		if err != nil {
			w.warnings = append(w.warnings, fmt.Sprintf("packets crossing %s cannot be shown: %v", n.Name, err))
		} else {
			w.tracers = append(w.tracers, tr)
			w.wg.Add(1)
			go w.packets(n.Name, tr, poke)
		}
		w.wg.Add(1)
		go w.table(life, n.Name, ns, poke)
	}
	return w
}

// setTopology takes a new topology (after a NAT switched type).
func (w *watcher) setTopology(topo *topology.Topology) {
	owners := map[netip.Addr]string{}
	for _, n := range topo.Nodes {
		for _, a := range n.Addresses {
			owners[a] = n.Name
		}
		if n.NAT != nil {
			owners[n.NAT.Gateway] = n.Name
		}
	}
	w.mu.Lock()
	w.topo, w.owners = topo, owners
	w.mu.Unlock()
}

// close stops the table readers and the traces (removing the trace
// tables from the NATs), then lets go of the namespaces.
func (w *watcher) close() {
	w.stop()
	for _, tr := range w.tracers {
		tr.Stop()
	}
	w.wg.Wait()
	for _, ns := range w.namespaces {
		ns.Close()
	}
}

// snapshot returns the tables as last read.
func (w *watcher) snapshot() map[string]*tableView {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]*tableView, len(w.tables))
	for k, v := range w.tables {
		out[k] = v
	}
	return out
}

// packets publishes nat's traced packets until the trace stops.
func (w *watcher) packets(nat string, tr *trace.Tracer, poke chan<- struct{}) {
	defer w.wg.Done()
	for e := range tr.Events() {
		w.hub.publish("packet", w.view(nat, e))
		select {
		case poke <- struct{}{}:
		default:
		}
	}
}

func (w *watcher) view(nat string, e trace.Event) packetView {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	v := packetView{Seq: w.seq, Time: e.Time, NAT: nat, Kind: e.Kind, Proto: e.Before.Proto, What: what(e.Before), Before: endpoints(e.Before)}
	switch e.In {
	case lab.NATLAN:
		v.Side = "lan"
	case lab.NATUplink:
		v.Side = "wan"
	}
	v.From = w.owners[e.Before.Src.Addr()]
	v.To = w.owners[e.Before.Dst.Addr()]
	if e.After != nil {
		v.After = endpoints(*e.After)
		v.SrcChanged = e.After.Src != e.Before.Src
		v.DstChanged = e.After.Dst != e.Before.Dst
		v.Rewritten = e.Rewritten()
		v.To = w.owners[e.After.Dst.Addr()]
	}
	first := w.firstSeen(e)
	if e.Kind == trace.Dropped {
		v.Reason = w.reason(nat, e.Rule)
		if !w.actionStart.IsZero() && first.Before(w.actionStart) {
			v.Earlier = true
			v.Reason = "A flow from before this step, not one it started. " + v.Reason
		}
	}
	if e.Kind == trace.Local {
		v.To = nat
	}
	return v
}

// reason explains a drop rule to people, with the NAT's filtering where
// it decided.
func (w *watcher) reason(nat, rule string) string {
	n := w.topo.Node(nat)
	switch rule {
	case natrules.DropInput:
		return "The wall: nothing in " + nat + "'s table matches this packet, so there is nobody behind the NAT to give it to."
	case natrules.DropForward:
		f := n.NAT.Behaviour.Filtering
		return fmt.Sprintf("The wall: %s's filtering (%s) does not let this sender in: %s.", nat, f, filteringRule(string(f)))
	case natrules.DropNoPort:
		return "No public port was free for a new mapping."
	case natrules.DropQuota:
		return fmt.Sprintf("Carrier-grade NAT: every port of this subscriber's blocks at %s is taken (its quota of %d), so the new flow gets no mapping; other subscribers' ports are theirs alone.", nat, n.NAT.Blocks.Quota)
	case natrules.DropHairpin:
		f := n.NAT.Behaviour.Filtering
		return fmt.Sprintf("Hairpinned: %s filters a packet from inside to its public address as one from outside, from the sender's public endpoint, and its filtering (%s) does not let that in: %s.", nat, f, filteringRule(string(f)))
	case natrules.DropPool:
		return "The wall: this public port is mapped, but on another of " + nat + "'s public addresses; to this one nobody is behind it."
	case natrules.DropClash:
		return "The host already talks to this remote endpoint through another mapping."
	case trace.NoRoute:
		return "Not routed: " + nat + " has no route to that address. A private address of another network means nothing on the internet."
	}
	return rule
}

func filteringRule(f string) string {
	switch f {
	case "endpoint-independent":
		return "anyone may answer once the host has sent out"
	case "address-dependent":
		return "only addresses the host has sent to may answer"
	default:
		return "only the exact address and port the host sent to may answer"
	}
}

func what(p trace.Packet) string {
	switch {
	case p.ICMP != "":
		return "icmp " + p.ICMP
	case p.TCPFlags != "":
		return p.Proto + " [" + p.TCPFlags + "]"
	}
	return p.Proto
}

func endpoints(p trace.Packet) string {
	if p.ICMP != "" {
		return fmt.Sprintf("%v → %v", p.Src.Addr(), p.Dst.Addr())
	}
	return fmt.Sprintf("%v → %v", p.Src, p.Dst)
}

// table reads nat's table when poked (after tableSettle) and every
// tablePoll, and publishes it when it changed.
func (w *watcher) table(ctx context.Context, nat string, ns *namedns.NS, poke <-chan struct{}) {
	defer w.wg.Done()
	var last []byte
	tick := time.NewTicker(tablePoll)
	defer tick.Stop()
	for {
		// The NAT as it is now: renumbered or rebooted with a new
		// address, its table is of that address.
		w.mu.Lock()
		n := w.topo.Node(nat)
		w.mu.Unlock()
		v := &tableView{NAT: n.Name, Flows: []nattable.Flow{}, Mappings: []nattable.Mapping{}, Forwards: []nattable.Forward{}}
		if t, err := nattable.ReadNAT(ctx, ns.Fd(), n); ctx.Err() != nil {
			// The server is closing: what was read is of no use.
			return
		} else if err != nil {
			v.Error = err.Error()
		} else {
			t.AddStatic(n.Addresses[0], n.NAT.Forwards)
			// The lab as it is now: the page may have switched the NAT.
			w.mu.Lock()
			topo := w.topo
			w.mu.Unlock()
			if now := topo.Node(n.Name); now != nil {
				t.AddOneToOne(topo, now)
				t.AddBlocks(topo, now)
			}
			v.Flows, v.Mappings, v.Forwards = append(v.Flows, t.Flows...), append(v.Mappings, t.Mappings...), append(v.Forwards, t.Forwards...)
			v.OneToOne, v.Subscribers = t.OneToOne, t.Subscribers
		}
		data, _ := json.Marshal(v)
		if !bytes.Equal(data, last) {
			last = data
			w.mu.Lock()
			w.tables[n.Name] = v
			w.mu.Unlock()
			w.hub.publish("table", v)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-poke:
			select {
			case <-time.After(tableSettle):
			case <-ctx.Done():
				return
			}
		}
	}
}

// pokeAll has every table read now, as after a NAT switched type and
// its table was emptied.
func (w *watcher) pokeAll() {
	for _, p := range w.pokes {
		select {
		case p <- struct{}{}:
		default:
		}
	}
}
