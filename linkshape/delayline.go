package linkshape

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/nfqueue"
)

// Line, the delay line, holds the packets of a lab's queues, one per
// namespace that sends onto a link with a delay, and lets each go at its
// due time.
//
// A packet's due time is when the sender sent it plus the delay of each
// direction it is to cross (the sender's up if it leaves through the
// sender's uplink, the receiver's down if the receiver's is held), each
// with its jitter drawn evenly from ±jitter. Packets of one flow of
// directions (one sender to one receiver) leave in the order they came:
// a packet is never due before the one ahead of it, as on a wire. A
// reordered packet (drawn at the direction's reorder rate) skips that
// direction's delay and the order.
type Line struct {
	logf  func(string, ...any)
	start time.Time

	mu     sync.Mutex
	queues map[string]*nsQueue
	wg     sync.WaitGroup
}

// NewLine returns a delay line with no queues; logf reports what
// goes wrong with one.
func NewLine(logf func(string, ...any)) *Line {
	return &Line{logf: logf, start: time.Now(), queues: map[string]*nsQueue{}}
}

// Update binds the queue of each namespace of qs that has none yet and
// gives every queue its conditions. A namespace left out keeps its socket
// with no conditions: what still reaches it goes on at once. Packets held
// from a direction that is now cut are dropped.
func (d *Line) Update(qs map[string]*Queue) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for ns, q := range d.queues {
		if _, ok := qs[ns]; !ok {
			q.set(nil)
		}
	}
	for ns, cfg := range qs {
		q, ok := d.queues[ns]
		if !ok {
			var err error
			if q, err = d.bind(ns); err != nil {
				errs = append(errs, err)
				continue
			}
			d.queues[ns] = q
		}
		q.set(cfg)
	}
	return errors.Join(errs...)
}

// bind opens and binds the queue of namespace ns and starts its two
// goroutines: one reads what the kernel hands over, one lets it go.
func (d *Line) bind(ns string) (*nsQueue, error) {
	h, err := namedns.Open(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	conn, err := nfqueue.Open(h.Fd())
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	// The addresses tell which neighbour a packet comes from or goes to.
	if err := conn.Bind(QueueNum, Limit, nfqueue.AddrCopy); err != nil {
		conn.Close()
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	timer, err := newTimer(d.start)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	q := &nsQueue{ns: ns, conn: conn, timer: timer, start: d.start, logf: d.logf, last: map[flowKey]time.Duration{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	d.wg.Go(q.read)
	d.wg.Go(q.release)
	return q, nil
}

// Held is how many packets the delay line holds.
func (d *Line) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.queues {
		q.mu.Lock()
		n += len(q.held)
		q.mu.Unlock()
	}
	return n
}

// Close unbinds every queue (the kernel drops what they hold) and waits
// for the goroutines.
func (d *Line) Close() {
	d.mu.Lock()
	for _, q := range d.queues {
		q.timer.close()
		q.conn.Close()
	}
	d.queues = map[string]*nsQueue{}
	d.mu.Unlock()
	d.wg.Wait()
}

// flowKey is a flow of directions within one namespace's queue: where
// the packet was taken (its way), and the neighbours it comes from and
// goes to whose directions are held ("" for none).
type flowKey struct {
	way      way
	from, to string
}

// way is where in the namespace a packet was taken.
type way uint8

const (
	// arrived through the uplink, at prerouting (a router's)
	inUplink way = iota
	// arrived from the LAN, at prerouting (a router's)
	inLAN
	// leaving through the uplink, at output or forward
	outUplink
	// leaving onto the LAN, at output or forward
	outLAN
)

// held is a packet waiting for its due time.
type held struct {
	due time.Duration // since the delay line started
	seq uint64        // arrival order, for packets due at once
	id  uint32
	key flowKey
}

// nsQueue is one namespace's queue.
type nsQueue struct {
	ns    string
	conn  *nfqueue.Conn
	start time.Time
	logf  func(string, ...any)
	cfg   atomic.Pointer[config]
	rng   *rand.Rand // the reader's alone
	timer *timer

	mu   sync.Mutex
	held []held // a min-heap by (due, seq)
	last map[flowKey]time.Duration
	seq  uint64
}

// config is a Queue with its neighbours by address and by prefix.
type config struct {
	*Queue
	peers, lan, fromPeers, fromLAN neighbours
}

// neighbours find the node an address belongs to.
type neighbours struct {
	byAddr   map[netip.Addr]string
	prefixes []netip.Prefix // longest first
	byPrefix map[netip.Prefix]string
}

func compile(q *Queue) *config {
	return &config{Queue: q, peers: index(q.Peers), lan: index(q.LAN), fromPeers: index(q.FromPeers), fromLAN: index(q.FromLAN)}
}

func index(ns map[string]Neighbour) neighbours {
	x := neighbours{byAddr: map[netip.Addr]string{}, byPrefix: map[netip.Prefix]string{}}
	for node, n := range ns {
		for _, a := range n.Addrs {
			x.byAddr[a] = node
		}
		for _, p := range n.Prefixes {
			x.byPrefix[p.Masked()] = node
			x.prefixes = append(x.prefixes, p.Masked())
		}
	}
	slices.SortFunc(x.prefixes, func(a, b netip.Prefix) int { return b.Bits() - a.Bits() })
	return x
}

func (x neighbours) find(a netip.Addr) string {
	if node, ok := x.byAddr[a]; ok {
		return node
	}
	for _, p := range x.prefixes {
		if p.Contains(a) {
			return x.byPrefix[p]
		}
	}
	return ""
}

// classify says where packet p was taken and which neighbours it comes
// from and goes to. At prerouting (a router's) no route is chosen yet:
// there is no output device.
func (c *config) classify(p *nfqueue.Packet) flowKey {
	uplink := uint32(c.UplinkIndex)
	switch {
	case p.OutDev == 0 && p.InDev == uplink:
		return flowKey{way: inUplink, from: c.fromPeers.find(p.Src)}
	case p.OutDev == 0:
		// What a NAT forwards up to an endpoint is held here, before
		// its conntrack.
		return flowKey{way: inLAN, from: c.fromLAN.find(p.Src), to: c.peers.find(p.Dst)}
	case p.OutDev == uplink:
		return flowKey{way: outUplink, to: c.peers.find(p.Dst)}
	}
	return flowKey{way: outLAN, to: c.lan.find(p.Dst)}
}

// stages are the holds of the directions a packet of flow k crosses
// here, at most four.
func (c *config) stages(k flowKey, buf *[4]Hold) []Hold {
	st := buf[:0]
	switch k.way {
	case inUplink:
		if k.from != "" {
			st = append(st, c.FromPeers[k.from].Hold)
		}
		st = append(st, c.Down)
	case inLAN:
		if k.from != "" {
			st = append(st, c.FromLAN[k.from].Hold)
		}
		if k.to != "" {
			st = append(st, c.Up, c.Peers[k.to].Hold)
		}
	case outUplink:
		if k.to != "" {
			st = append(st, c.Up, c.Peers[k.to].Hold)
		}
	case outLAN:
		if k.to != "" {
			st = append(st, c.LAN[k.to].Hold)
		}
	}
	return st
}

// cut reports whether a packet of flow k crosses a direction that is cut.
func (c *config) cut(k flowKey) bool {
	var buf [4]Hold
	return slices.ContainsFunc(c.stages(k, &buf), func(h Hold) bool { return h.Cut })
}

// set gives q its conditions, dropping what it holds from a cut
// direction.
func (q *nsQueue) set(qc *Queue) {
	if qc == nil {
		q.cfg.Store(nil)
		return
	}
	cfg := compile(qc)
	q.cfg.Store(cfg)
	cut := cfg.cut
	var drops []nfqueue.Verdict
	q.mu.Lock()
	kept := q.held[:0]
	for _, p := range q.held {
		if cut(p.key) {
			drops = append(drops, nfqueue.Verdict{Queue: QueueNum, ID: p.id})
		} else {
			kept = append(kept, p)
		}
	}
	q.held = kept
	heapInit(q.held)
	q.mu.Unlock()
	if len(drops) > 0 {
		q.conn.Verdicts(drops)
	}
}

// read takes each packet the kernel hands over and either lets it go at
// once or holds it.
func (q *nsQueue) read() {
	var now []nfqueue.Verdict
	for {
		now = now[:0]
		err := q.conn.Read(func(p *nfqueue.Packet) {
			if v, hold := q.arrive(p); !hold {
				now = append(now, v)
			}
		})
		if errors.Is(err, nfqueue.ErrClosed) {
			return
		}
		if err != nil {
			q.logf("delay line: namespace %s: %v", q.ns, err)
			time.Sleep(10 * time.Millisecond)
		}
		if len(now) > 0 {
			if err := q.conn.Verdicts(now); err != nil && !errors.Is(err, nfqueue.ErrClosed) {
				q.logf("delay line: namespace %s: %v", q.ns, err)
			}
		}
	}
}

// arrive works out what becomes of packet p: the verdict to give now, or
// hold true if it is held.
func (q *nsQueue) arrive(p *nfqueue.Packet) (v nfqueue.Verdict, hold bool) {
	v = nfqueue.Verdict{Queue: p.Queue, ID: p.ID, Accept: true}
	cfg := q.cfg.Load()
	if cfg == nil {
		return v, false
	}
	key := cfg.classify(p)
	var buf [4]Hold
	stages := cfg.stages(key, &buf)
	var delay time.Duration
	reordered := false
	for _, h := range stages {
		if h.Cut {
			v.Accept = false
			return v, false
		}
		if h.Reorder > 0 && q.rng.Float64()*100 < h.Reorder {
			reordered = true
			continue
		}
		delay += h.Delay
		if h.Jitter > 0 {
			delay += time.Duration((q.rng.Float64()*2 - 1) * float64(h.Jitter))
		}
	}
	now := time.Since(q.start)
	due := now + max(delay, 0)
	q.mu.Lock()
	if !reordered {
		if last := q.last[key]; last > due {
			due = last
		}
		q.last[key] = due
	}
	if due <= now {
		q.mu.Unlock()
		return v, false
	}
	q.seq++
	if len(q.held) == 0 || less(held{due: due, seq: q.seq}, q.held[0]) {
		q.timer.at(due)
	}
	q.held = heapPush(q.held, held{due: due, seq: q.seq, id: p.ID, key: key})
	q.mu.Unlock()
	return v, true
}

// release lets each held packet go at its due time, all that are due in
// one write.
func (q *nsQueue) release() {
	var due []nfqueue.Verdict
	for {
		if !q.timer.wait() {
			return
		}
		due = due[:0]
		q.mu.Lock()
		now := time.Since(q.start)
		for len(q.held) > 0 && q.held[0].due <= now {
			var p held
			q.held, p = heapPop(q.held)
			due = append(due, nfqueue.Verdict{Queue: QueueNum, ID: p.id, Accept: true})
		}
		if len(q.held) > 0 {
			q.timer.at(q.held[0].due)
		}
		q.mu.Unlock()
		if len(due) > 0 {
			if err := q.conn.Verdicts(due); err != nil {
				if errors.Is(err, nfqueue.ErrClosed) {
					return
				}
				q.logf("delay line: namespace %s: %v", q.ns, err)
			}
		}
	}
}

// The heap of held packets, by due time then arrival: container/heap
// would box every packet in an interface.

func less(a, b held) bool { return a.due < b.due || (a.due == b.due && a.seq < b.seq) }

func heapPush(h []held, p held) []held {
	h = append(h, p)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !less(h[i], h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	return h
}

func heapPop(h []held) ([]held, held) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	down(h, 0)
	return h, top
}

func down(h []held, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func heapInit(h []held) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(h, i)
	}
}
