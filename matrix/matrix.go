// Package matrix punches every NAT type against every other, each pair in
// a lab of its own, and compares what happens with what RFC 4787 theory
// predicts (nat.PunchWorks). Where punching fails, the pair is connected
// through a TURN relay instead, which must always work.
package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/relay"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// Row is one row of the matrix: what is in front of alice.
type Row struct {
	Name string
	// NAT is alice's NAT's knobs, as in a scenario file.
	NAT string
	// Carrier, if set, puts alice's NAT behind a carrier-grade NAT with
	// these knobs.
	Carrier string
	// SameNAT puts bob behind alice's NAT instead of his column's, to
	// show hairpinning; the column then sets that shared NAT's type.
	SameNAT bool
	// Predict punches with port prediction.
	Predict bool
}

// Rows are the classic types; Variants the knob variants of the story.
func Rows(types []nat.Type) []Row {
	var rows []Row
	for _, t := range types {
		rows = append(rows, Row{Name: string(t), NAT: "type: " + string(t)})
	}
	return rows
}

// Variants are extra rows: port prediction against a sequential-port
// symmetric NAT, hairpinning through one shared NAT, carrier-grade NAT in
// front of a cone NAT, and a knob combination no classic name covers.
var Variants = []Row{
	{Name: "symmetric, sequential ports, prediction", NAT: "type: symmetric, ports: sequential", Predict: true},
	{Name: "same NAT, hairpin", SameNAT: true, NAT: "hairpin: true"},
	{Name: "same NAT, no hairpin", SameNAT: true, NAT: "hairpin: false"},
	{Name: "full cone behind a port-restricted CGNAT", NAT: "type: full-cone", Carrier: "type: port-restricted-cone"},
	{Name: "address-dependent mapping and filtering", NAT: "mapping: address-dependent, filtering: address-dependent"},
}

// Cell is one punch between alice (row) and bob (column).
type Cell struct {
	Row    string   `json:"row"`
	Column nat.Type `json:"column"`
	// Expected and Punched say whether a direct path should and did work.
	Expected bool `json:"expected"`
	Punched  bool `json:"punched"`
	// Relayed is set when punching failed and the relay was tried.
	Relayed *bool  `json:"relayed,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// FirstPacket is the punch's time to the first direct packet.
	FirstPacket time.Duration `json:"first_packet_ns,omitempty"`
	Err         string        `json:"error,omitempty"`
	// Done is false for cells an interrupted run did not get to.
	Done bool `json:"done"`
}

// OK reports whether the cell matches theory and, where it cannot
// punch, the relay saved it.
func (c Cell) OK() bool {
	return c.Err == "" && c.Punched == c.Expected && (c.Punched || (c.Relayed != nil && *c.Relayed))
}

// Options are a matrix run.
type Options struct {
	Rows    []Row
	Columns []nat.Type
	// Parallel bounds how many labs are up at once (default 8).
	Parallel int
	// Timeout is each punch's timeout (default 2s: in a lab, a punch
	// that can work works in milliseconds).
	Timeout time.Duration
	// Done is called as each cell finishes.
	Done func(Cell)
	// Shard, if set, runs only its share of the cells, counted row by
	// row; the others are left to other machines.
	Shard shard.Shard
}

// Run fills the matrix, or, with a Shard, returns only the shard's cells.
func Run(ctx context.Context, opts Options) ([]Cell, error) {
	if opts.Parallel == 0 {
		opts.Parallel = 8
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	id := make([]byte, 3)
	rand.Read(id)
	prefix := "mx" + hex.EncodeToString(id)
	var cells []Cell
	var jobs []func() Cell
	k := -1
	for ri, row := range opts.Rows {
		for ci, col := range opts.Columns {
			if k++; !opts.Shard.Has(k) {
				continue
			}
			cells = append(cells, Cell{Row: row.Name, Column: col})
			name := fmt.Sprintf("%s-%d-%d", prefix, ri, ci)
			jobs = append(jobs, func() Cell { return runCell(ctx, name, row, col, opts.Timeout) })
		}
	}
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			c := job()
			if ctx.Err() != nil {
				return // interrupted half way: not a result
			}
			mu.Lock()
			cells[i] = c
			mu.Unlock()
			if opts.Done != nil {
				opts.Done(c)
			}
		}()
	}
	wg.Wait()
	return cells, ctx.Err()
}

// Scenario is the lab of one cell.
func Scenario(row Row, col nat.Type) string {
	var b strings.Builder
	b.WriteString("nodes:\n  servers: {kind: server, services: [stun, turn]}\n")
	switch {
	case row.SameNAT:
		fmt.Fprintf(&b, "  home: {kind: nat, type: %s, %s}\n  alice: {kind: host, behind: home}\n  bob: {kind: host, behind: home}\n", col, row.NAT)
	case row.Carrier != "":
		fmt.Fprintf(&b, "  carrier: {kind: nat, lan: 100.64.0.0/10, %s}\n  nat-a: {kind: nat, behind: carrier, %s}\n", row.Carrier, row.NAT)
		fmt.Fprintf(&b, "  nat-b: {kind: nat, type: %s}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n", col)
	default:
		fmt.Fprintf(&b, "  nat-a: {kind: nat, %s}\n  nat-b: {kind: nat, type: %s}\n  alice: {kind: host, behind: nat-a}\n  bob: {kind: host, behind: nat-b}\n", row.NAT, col)
	}
	return b.String()
}

// Expected is what theory says about a cell of topo.
func Expected(topo *topology.Topology, row Row) bool {
	if row.SameNAT {
		return topo.Node("home").NAT.Behaviour.Hairpin
	}
	a := topo.Node("nat-a").NAT.Behaviour
	if row.Carrier != "" {
		a = nat.Compose(a, topo.Node("carrier").NAT.Behaviour)
	}
	return nat.PunchWorks(a, topo.Node("nat-b").NAT.Behaviour, row.Predict)
}

func runCell(ctx context.Context, name string, row Row, col nat.Type, timeout time.Duration) Cell {
	cell := Cell{Row: row.Name, Column: col, Done: true}
	scenario := Scenario(row, col)
	topo, err := topology.Parse(name+".yaml", []byte(scenario), nil)
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	cell.Expected = Expected(topo, row)
	st, err := lab.Up(ctx, topo, lab.Options{Source: "matrix", Scenario: []byte(scenario)})
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	defer lab.Down(context.Background(), name, nil)
	peers, closeAll, err := open(st, topo, !row.SameNAT)
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	defer closeAll()
	plan := service.PlanFor(topo.Node("servers"))
	out, err := punch.Pair(ctx, punch.Config{STUN: plan.STUNServer(), Session: name, Timeout: timeout, Predict: row.Predict}, peers[0], peers[1])
	if err == nil {
		cell.Punched = true
		cell.FirstPacket = min(out.A.FirstPacket, out.B.FirstPacket)
		return cell
	}
	cell.Reason = err.Error()
	// Punching failed: the relay must connect them.
	a, b := peers[0], peers[1]
	_, rerr := relay.Connect(ctx, relay.Config{Server: plan.TURN, Realm: st.TURN.Realm, User: st.TURN.User, Password: st.TURN.Password, Timeout: 3 * time.Second},
		relay.Peer{Name: a.Name, Conn: a.Conn}, relay.Peer{Name: b.Name, Conn: b.Conn})
	ok := rerr == nil
	cell.Relayed = &ok
	if rerr != nil {
		cell.Reason += "; relay: " + rerr.Error()
	}
	return cell
}

// open makes alice's and bob's sockets. Without withHost the peers
// announce only their public endpoints, so two peers on one LAN must go
// through their NAT (hairpinning).
func open(st *labstate.State, topo *topology.Topology, withHost bool) ([2]punch.Peer, func(), error) {
	var peers [2]punch.Peer
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	board := punch.NewBoard()
	for i, name := range []string{"alice", "bob"} {
		n, err := nodenet.Open(lab.NamespaceName(st.Name, name), name)
		if err != nil {
			closeAll()
			return peers, nil, err
		}
		c, err := n.ListenUDP(":0")
		n.Close()
		if err != nil {
			closeAll()
			return peers, nil, err
		}
		conns = append(conns, c)
		peers[i] = punch.Peer{Name: name, Conn: c, Exchange: board}
		if withHost {
			peers[i].Local = netip.AddrPortFrom(topo.Node(name).Addresses[0], c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		}
	}
	return peers, closeAll, nil
}

// Markdown draws the matrix: rows alice's NAT, columns bob's. A cell shows
// the punch result ("ok" or "no", then "relay ok" where the relay
// connected instead), flagged with "UNEXPECTED" where it differs from
// theory. A cell missing from cells (another shard's) is left blank.
func Markdown(cells []Cell, rows []Row, cols []nat.Type) string {
	var b strings.Builder
	b.WriteString("| alice \\ bob |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	type at struct {
		row string
		col nat.Type
	}
	byPlace := map[at]Cell{}
	for _, c := range cells {
		byPlace[at{c.Row, c.Column}] = c
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", r.Name)
		for _, col := range cols {
			if c, ok := byPlace[at{r.Name, col}]; ok {
				fmt.Fprintf(&b, " %s |", c)
			} else {
				// Left to another shard.
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// String is the cell as the matrix shows it.
func (c Cell) String() string {
	var s string
	switch {
	case !c.Done:
		return "(not run)"
	case c.Err != "":
		return "ERROR"
	case c.Punched:
		s = "ok"
	case c.Relayed != nil && *c.Relayed:
		s = "no, relay ok"
	default:
		s = "no, relay FAILED"
	}
	if c.Punched != c.Expected {
		want := "no"
		if c.Expected {
			want = "ok"
		}
		s += " (UNEXPECTED: theory says " + want + ")"
	}
	return s
}
