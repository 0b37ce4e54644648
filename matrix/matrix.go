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
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// Row is one row of the matrix: what is in front of alice.
type Row struct {
	Name string
	// NAT is alice's NAT's knobs, keyed as in a scenario file.
	NAT Knobs
	// Carrier, if set, puts alice's NAT behind a carrier-grade NAT with
	// these knobs.
	Carrier Knobs
	// SameNAT puts bob behind alice's NAT instead of his column's, to
	// show hairpinning; the column then sets that shared NAT's type.
	SameNAT bool
	// Predict punches with port prediction.
	Predict bool
}

// Knobs are a NAT's knobs by their keys in a scenario file (type,
// mapping, filtering, ports, hairpin...), each with its value.
type Knobs map[string]any

// Rows are the classic types; Variants the knob variants of the story.
func Rows(types []nat.Type) []Row {
	var rows []Row
	for _, t := range types {
		rows = append(rows, Row{Name: string(t), NAT: Knobs{"type": t}})
	}
	return rows
}

// Variants are extra rows: port prediction against a sequential-port
// symmetric NAT, hairpinning through one shared NAT, carrier-grade NAT in
// front of a cone NAT, and a knob combination no classic name covers.
var Variants = []Row{
	{Name: "symmetric, sequential ports, prediction", NAT: Knobs{"type": nat.Symmetric, "ports": "sequential"}, Predict: true},
	{Name: "same NAT, hairpin", SameNAT: true, NAT: Knobs{"hairpin": true}},
	{Name: "same NAT, no hairpin", SameNAT: true, NAT: Knobs{"hairpin": false}},
	{Name: "full cone behind a port-restricted CGNAT", NAT: Knobs{"type": nat.FullCone}, Carrier: Knobs{"type": nat.PortRestrictedCone}},
	{Name: "address-dependent mapping and filtering", NAT: Knobs{"mapping": "address-dependent", "filtering": "address-dependent"}},
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
	// Where the cell's time went: bringing its lab up, the punch (a
	// punch that cannot work takes its whole timeout), the relay, and
	// taking the lab down.
	Up    time.Duration `json:"up_ns,omitempty"`
	Punch time.Duration `json:"punch_ns,omitempty"`
	Relay time.Duration `json:"relay_ns,omitempty"`
	Down  time.Duration `json:"down_ns,omitempty"`
	Err   string        `json:"error,omitempty"`
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

// Scenario is the lab of one cell, as a scenario file: servers with STUN
// and TURN, alice behind the row's NAT (behind a carrier-grade NAT if the
// row has one) and bob behind the column's, or both behind one NAT of
// the column's type with the row's knobs.
func Scenario(row Row, col nat.Type) ([]byte, error) {
	nodes := yaml.MapSlice{{Key: "servers", Value: yaml.MapSlice{{Key: "kind", Value: "server"}, {Key: "services", Value: []string{string(topology.ServiceSTUN), string(topology.ServiceTURN)}}}}}
	add := func(name string, n yaml.MapSlice) { nodes = append(nodes, yaml.MapItem{Key: name, Value: n}) }
	switch {
	case row.SameNAT:
		add("home", node("nat", "", Knobs{"type": col}, row.NAT))
		add("alice", node("host", "home"))
		add("bob", node("host", "home"))
	case row.Carrier != nil:
		add("carrier", node("nat", "", Knobs{"lan": "100.64.0.0/10"}, row.Carrier))
		add("nat-a", node("nat", "carrier", row.NAT))
		add("nat-b", node("nat", "", Knobs{"type": col}))
		add("alice", node("host", "nat-a"))
		add("bob", node("host", "nat-b"))
	default:
		add("nat-a", node("nat", "", row.NAT))
		add("nat-b", node("nat", "", Knobs{"type": col}))
		add("alice", node("host", "nat-a"))
		add("bob", node("host", "nat-b"))
	}
	return yaml.Marshal(yaml.MapSlice{{Key: "nodes", Value: nodes}})
}

// node is a node of kind behind the nat behind ("" for the internet), with
// the keys of each of keys, sorted.
func node(kind, behind string, keys ...Knobs) yaml.MapSlice {
	n := yaml.MapSlice{{Key: "kind", Value: kind}}
	if behind != "" {
		n = append(n, yaml.MapItem{Key: "behind", Value: behind})
	}
	for _, k := range keys {
		for _, key := range slices.Sorted(maps.Keys(k)) {
			n = append(n, yaml.MapItem{Key: key, Value: k[key]})
		}
	}
	return n
}

// Expected is what theory says about a cell of topo.
func Expected(topo *topology.Topology, row Row) bool {
	if row.SameNAT {
		// Through one hairpinning NAT each host's punch leaves by its
		// mapping and arrives at the other's from the NAT's public
		// address, filtered as if from outside (RFC 4787 REQ-9): the same
		// as two hosts behind two NATs of that kind.
		h := topo.Node("home").NAT.Behaviour
		return h.Hairpin && nat.PunchWorks(h, h, row.Predict)
	}
	a := topo.Node("nat-a").NAT.Behaviour
	if row.Carrier != nil {
		a = nat.Compose(a, topo.Node("carrier").NAT.Behaviour)
	}
	return nat.PunchWorks(a, topo.Node("nat-b").NAT.Behaviour, row.Predict)
}

// relayTimeout bounds the relay of a cell punching could not connect.
const relayTimeout = 3 * time.Second

func runCell(ctx context.Context, name string, row Row, col nat.Type, timeout time.Duration) (cell Cell) {
	cell = Cell{Row: row.Name, Column: col, Done: true}
	scenario, err := Scenario(row, col)
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	topo, err := step.Parse(name+".yaml", scenario)
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	cell.Expected = Expected(topo, row)
	start := time.Now()
	st, err := lab.Up(ctx, topo, lab.Options{Source: "matrix", Scenario: scenario})
	cell.Up = time.Since(start)
	if err != nil {
		cell.Err = err.Error()
		return cell
	}
	defer func() {
		// A lab left up is a failure of the cell, whatever it showed.
		start := time.Now()
		if _, err := lab.Down(context.Background(), name, nil); err != nil {
			cell.Err = strings.TrimPrefix(cell.Err+"; taking the lab down: "+err.Error(), "; ")
		}
		cell.Down = time.Since(start)
	}()
	sess := runner.New(st, topo)
	defer sess.Close()
	pair := [2]string{"alice", "bob"}
	p := &step.Punch{Between: pair, Family: topology.FamilyIPv4, Server: "servers", Timeout: timeout, Predict: row.Predict, Expect: "ok"}
	if row.SameNAT {
		// Both on one LAN, where their own addresses would connect them
		// whatever the NAT does: announcing only their public endpoints
		// makes the punch go through the NAT (hairpinning).
		p.Announce = step.AnnouncePublic
	}
	res := sess.Step(ctx, topology.Step{Kind: "punch", Name: "punch alice bob", Spec: p})
	cell.Punch = res.Duration
	switch res.Observed {
	case "ok":
		cell.Punched = true
		if out, ok := res.Data.(*punch.Outcome); ok {
			cell.FirstPacket = min(out.A.FirstPacket, out.B.FirstPacket)
		}
		return cell
	case "error":
		// The punch could not be carried out at all: no sockets.
		cell.Err = res.Reason
		return cell
	}
	cell.Reason = res.Reason
	// Punching failed: the relay must connect them.
	res = sess.Step(ctx, topology.Step{Kind: "relay", Name: "relay alice bob", Spec: &step.Relay{
		Between: pair, Server: "servers", Timeout: relayTimeout, Expect: "ok"}})
	cell.Relay = res.Duration
	ok := res.Observed == "ok"
	cell.Relayed = &ok
	if !ok {
		cell.Reason += "; relay: " + res.Reason
	}
	return cell
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
