package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// punchLab is two homes behind port-restricted cone NATs, the usual
// case a punch is for, and a STUN server.
const punchLab = `
nodes:
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat, type: port-restricted-cone}
  nat-b: {kind: nat, type: port-restricted-cone}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`

func traversal(ctx context.Context, cfg config, r *report, log io.Writer) error {
	dir, err := os.MkdirTemp("", "natlab-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "matrix.json")
	start := time.Now()
	if err := runNatlabTo(ctx, cfg.natlab, out, "matrix", "--json"); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(log, "  natlab matrix: %v\n", round(took))
	r.add(&goal{Suite: "traversal", Name: "natlab matrix of the 4 classic types", Value: took.Seconds(), Unit: "s", Target: 10, Detail: "16 cells, each its own lab, punch and relay"})
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var m struct {
		Cells []matrix.Cell `json:"cells"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("read natlab matrix's JSON: %w", err)
	}
	parts := splitCells(m.Cells)
	fmt.Fprintf(log, "  where its time goes, in lab-seconds (%d cells, several at once):\n", len(m.Cells))
	for _, p := range parts {
		fmt.Fprintf(log, "    %-62s %7v  %d\n", p.What, round(p.Took), p.Count)
	}
	r.Measured["matrix_parts"] = parts
	r.add(&goal{Suite: "traversal", Name: "where natlab matrix's time goes", Value: took.Seconds(), Unit: "s", Info: true,
		Detail: fmt.Sprintf("lab-seconds, cells in parallel: %s", summary(parts, 4))})

	punches := 100
	if cfg.quick {
		punches = 10
	}
	heard, err := punchTimes(ctx, punches)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "  first direct packet after the agents start: %s\n", heard.spread())
	r.Measured["punch_first_packet_s"] = heard.seconds()
	r.add(&goal{Suite: "traversal", Name: "punch: agents start to first direct packet, median", Value: float64(heard.median()) / 1e6, Unit: "ms",
		Info: true, Detail: fmt.Sprintf("p99 %v over %d punches (STUN, exchange and punching)", round(heard.quantile(0.99)), len(heard))})
	return nil
}

// punchTimes brings punchLab up and punches n times between alice and
// bob, each time from new sockets, and returns when each first heard the
// other.
func punchTimes(ctx context.Context, n int) (_ sample, err error) {
	topo, err := topology.Parse("punch.yaml", []byte(punchLab), nil)
	if err != nil {
		return nil, err
	}
	topo.Name = uniqueName("p")
	st, err := lab.Up(ctx, topo, lab.Options{Source: "natlab-bench", Scenario: []byte(punchLab)})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, downLab(st.Name)) }()
	stun := service.PlanFor(topo.Node("stun")).STUNServer()
	var nodes [2]*nodenet.Node
	for i, name := range []string{"alice", "bob"} {
		if nodes[i], err = nodenet.Open(lab.NamespaceName(st.Name, name), name); err != nil {
			return nil, err
		}
		defer nodes[i].Close()
	}
	var heard sample
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		board := punch.NewBoard()
		var peers [2]punch.Peer
		for j, name := range []string{"alice", "bob"} {
			c, err := nodes[j].ListenUDP(":0")
			if err != nil {
				return nil, err
			}
			defer c.Close()
			local := netip.AddrPortFrom(topo.Node(name).Addresses[0], c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			peers[j] = punch.Peer{Name: name, Conn: c, Local: local, Exchange: board}
		}
		out, err := punch.Pair(ctx, punch.Config{STUN: stun, Session: fmt.Sprint("bench-", i), Timeout: 5 * time.Second, Pings: 1}, peers[0], peers[1])
		if err != nil {
			return nil, fmt.Errorf("punch %d: %w", i+1, err)
		}
		heard = append(heard, min(out.A.Heard, out.B.Heard))
		peers[0].Conn.Close()
		peers[1].Conn.Close()
	}
	return heard, nil
}
