package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/spf13/cobra"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
)

func newTableCmd() *cobra.Command {
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "table LAB NODE",
		Short: "Show a NAT's live translation table",
		Long: `Show a NAT node's translation table as the story draws it: each translated
flow as private endpoint -> public endpoint -> remote endpoint, with its
protocol, conntrack state and the time it has left, then natlab's UDP
and TCP mappings (which private endpoint owns each public port), then its port
forwards: the scenario's static ones and the leases hosts asked for by
NAT-PMP, PCP or UPnP.
It is read from the kernel: conntrack and the NAT's nftables maps.

The columns of a flow:
  PROTO     udp, tcp or icmp (an ICMP echo's identifier stands for its ports)
  PRIVATE   the host's own address and port, behind the NAT
  PUBLIC    what the NAT rewrote it to: the address and port the world sees
  REMOTE    the other end; "->" a flow the host started, "<-" one from outside
            (a forward, or a packet the filtering let in)
  STATE     conntrack's: unreplied, replied or assured (TCP adds its state);
            "hairpin" for two hosts of this LAN talking through the NAT
  EXPIRES   the time the flow has left unless a packet refreshes it
  PACKETS   packets of the flow through the NAT, both ways
  BYTES     their bytes, IP headers included
A mapping row says which private endpoint owns a public UDP port (or, under
TCP mappings, a TCP port: tcp_mappings in --json), and for how long; a
forward row, where a public port is sent on, and who made it
(the scenario, or a host: by nat-pmp, by pcp, by upnp). A one-to-one NAT
has no mappings: its one row says whose private address owns its public
address, every port of it (one_to_one in --json). A carrier-grade NAT
with port blocks lists its subscribers (subscribers in --json): each node
behind it, its address, the blocks of public ports it holds, how many of
them its UDP and TCP mappings own now, and its quota, the most they may
own at once. --json gives the same fields.

With --watch the table is redrawn whenever a flow starts, changes or ends.`,
		Example: `  sudo natlab table symmetric nat-a
  sudo natlab table symmetric nat-a --watch
  sudo natlab table symmetric nat-b --json`,
		Args: labArgs(1, cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := requireRoot(cmd); err != nil {
				return err
			}
			_, topo, err := runningLab(a[0])
			if err != nil {
				return err
			}
			n := topo.Node(a[1])
			if n == nil {
				return usageError("lab %s has no node %s", a[0], a[1])
			}
			if n.NAT == nil {
				return usageError("%s is a %s: only NAT nodes have a translation table", a[1], n.Kind)
			}
			ns, err := namedns.Open(lab.NamespaceName(topo.Name, n.Name))
			if err != nil {
				return err
			}
			defer ns.Close()
			out := cmd.OutOrStdout()
			show := func() error {
				t, err := nattable.ReadNAT(cmd.Context(), ns.Fd(), n)
				if err != nil {
					return fmt.Errorf("%s: %w", n.Name, err)
				}
				t.AddStatic(n.Addresses[0], n.NAT.Forwards)
				t.AddOneToOne(topo, n)
				t.AddBlocks(topo, n)
				if asJSON {
					enc := json.NewEncoder(out)
					if !watch {
						enc.SetIndent("", "  ")
					}
					return enc.Encode(t)
				}
				if watch {
					fmt.Fprint(out, "\033[H\033[2J")
				}
				fmt.Fprintf(out, "%s (%s), %s, at %s\n\n", n.Name, publicOf(n), n.NAT.Behaviour, time.Now().Format("15:04:05"))
				return nattable.Write(out, t)
			}
			if !watch {
				return show()
			}
			// Redraw on every conntrack event in the NAT, and every second
			// for the countdowns.
			ct, err := conntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
			if err != nil {
				return err
			}
			defer ct.Close()
			events := make(chan conntrack.Event, 256)
			errs, err := ct.Listen(events, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTUpdate, netfilter.GroupCTDestroy})
			if err != nil {
				return fmt.Errorf("watch conntrack: %w", err)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if err := show(); err != nil {
					if cmd.Context().Err() != nil {
						// Ctrl-C while the table was read.
						return nil
					}
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case err := <-errs:
					return fmt.Errorf("watch conntrack: %w", err)
				case <-events:
					// Let a burst of events settle into one redraw.
					time.Sleep(50 * time.Millisecond)
					for len(events) > 0 {
						<-events
					}
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (one object per redraw with --watch)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw as the table changes, until Ctrl-C")
	return cmd
}

// publicOf is a NAT's public address, or its pool and how mappings pick
// from it: "203.0.113.1 203.0.113.2, pooling paired".
func publicOf(n *topology.Node) string {
	addrs := make([]string, len(n.Addresses))
	for i, a := range n.Addresses {
		addrs[i] = a.String()
	}
	s := strings.Join(addrs, " ")
	if n.NAT.Pooling != "" {
		s += ", pooling " + string(n.NAT.Pooling)
	}
	return s
}
