package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/classify"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/nodenet"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

func newClassifyCmd() *cobra.Command {
	var server string
	var asJSON, lifetime, verbose bool
	var lifetimeMax time.Duration
	cmd := &cobra.Command{
		Use:   "classify LAB NODE",
		Short: "Discover the NAT behaviour in front of a node, as RFC 5780 does",
		Long: `Run RFC 5780 NAT behaviour discovery from a node of a running lab against the
lab's STUN server (which needs two addresses): mapping, filtering, how new
public ports are allocated, and hairpinning, named in the scenario file's
words; and whether a packet from outside to a public port the node never
sent from gets in (RESPONSE-PORT), as through a one-to-one NAT, which RFC
5780's tests take for a full cone. With --lifetime it also estimates how long an idle mapping lives,
which takes that long (up to --lifetime-max), and then, in as long again,
which traffic keeps a mapping alive (refresh: both, when packets from outside
alone do, or outbound; RFC 4787 section 4.3).

Last it asks for 24 mappings at once from fresh sockets: a carrier-grade
NAT's port quota (RFC 6888) refuses the node a mapping beyond it, and the
ports of a node's port blocks all fall in a narrow range; both show as
"port range" and "quota" when found (the quota not with --lifetime).

natlab builds its NATs from these words, so for every NAT it builds this
reports what the scenario configured.`,
		Example: `  sudo natlab classify symmetric alice
  sudo natlab classify symmetric bob --json
  sudo natlab classify my-lab alice --lifetime --lifetime-max 5m`,
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
			srv, err := stunServer(topo, server)
			if err != nil {
				return err
			}
			node, err := nodenet.Open(lab.NamespaceName(topo.Name, n.Name), n.Name)
			if err != nil {
				return err
			}
			defer node.Close()
			out := cmd.OutOrStdout()
			opts := classify.Options{
				Server:      service.PlanFor(srv).STUNServer(),
				Local:       n.Addresses[0],
				Listen:      node.ListenUDP,
				Lifetime:    lifetime,
				LifetimeMax: lifetimeMax,
			}
			if verbose && !asJSON {
				opts.Log = func(t classify.Test) { fmt.Fprintf(out, "  %s\n", describeTest(t)) }
			}
			if lifetime && !asJSON {
				fmt.Fprintf(out, "estimating the mapping lifetime takes up to %v...\n", lifetimeMax)
			}
			res, err := classify.Discover(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("classify %s from %s: %w", a[0], a[1], err)
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printClassification(out, n, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the server node whose STUN service to use (default: the first with stun)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show every test as it runs")
	cmd.Flags().BoolVar(&lifetime, "lifetime", false, "also estimate the mapping lifetime (slow)")
	cmd.Flags().DurationVar(&lifetimeMax, "lifetime-max", 3*time.Minute, "longest lifetime to test for")
	return cmd
}

func stunServer(topo *topology.Topology, name string) (*topology.Node, error) {
	for _, n := range topo.Nodes {
		if (name == "" || n.Name == name) && slices.Contains(n.Services, topology.ServiceSTUN) {
			return n, nil
		}
	}
	if name != "" {
		return nil, usageError("lab %s has no server %s running stun", topo.Name, name)
	}
	return nil, usageError("lab %s has no server running stun (add services: [stun] to a server)", topo.Name)
}

func describeTest(t classify.Test) string {
	if !t.Answered {
		return fmt.Sprintf("%-58s no answer", t.Name)
	}
	if !t.Mapped.IsValid() {
		return fmt.Sprintf("%-58s arrived", t.Name)
	}
	return fmt.Sprintf("%-58s mapped %v, answer from %v", t.Name, t.Mapped, t.Source)
}

func printClassification(w interface{ Write([]byte) (int, error) }, n *topology.Node, res *classify.Result) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s, %v\n", n.Name, res.Local)
	if !res.Behind {
		fmt.Fprintf(tw, "NAT\tnone: the STUN server sees %v itself\n", res.Public)
	} else {
		name := string(res.Type)
		if name == "" {
			name = "(no classic name)"
		}
		fmt.Fprintf(tw, "public\t%v\n", res.Public)
		fmt.Fprintf(tw, "type\t%s\n", name)
	}
	fmt.Fprintf(tw, "mapping\t%s\n", res.Mapping)
	fmt.Fprintf(tw, "filtering\t%s\n", res.Filtering)
	var seen []string
	for _, p := range res.PortsSeen {
		seen = append(seen, fmt.Sprintf("%d->%d", p.Local, p.Public))
	}
	fmt.Fprintf(tw, "ports\t%s (%s)\n", res.Ports, strings.Join(seen, ", "))
	if r := res.PortsWithin; r != nil {
		fmt.Fprintf(tw, "port range\t%v: every mapping's port fell in it, far narrower than chance (a carrier-grade NAT's port blocks, RFC 6888, or a small port range)\n", *r)
	}
	if res.Quota > 0 {
		fmt.Fprintf(tw, "quota\ta new mapping was refused when the node held %d: a port quota (RFC 6888 REQ-3), or the NAT is out of ports\n", res.Quota)
	}
	fmt.Fprintf(tw, "hairpin\t%v\n", res.Hairpin)
	if res.Behind {
		unsolicited := "dropped: only what the node's mappings let in gets in"
		if res.Unsolicited {
			unsolicited = "gets in: a packet to a public port the node never sent from reaches it (every port is forwarded to it, as by a one-to-one NAT)"
		}
		fmt.Fprintf(tw, "unsolicited\t%s\n", unsolicited)
	}
	if lt := res.Lifetime; lt != nil {
		switch {
		case lt.Gone == 0:
			fmt.Fprintf(tw, "lifetime\tlonger than %v\n", lt.Alive)
		case lt.Alive == 0:
			fmt.Fprintf(tw, "lifetime\tshorter than %v\n", lt.Gone)
		default:
			fmt.Fprintf(tw, "lifetime\tbetween %v and %v\n", lt.Alive, lt.Gone)
		}
	}
	switch res.Refresh {
	case nat.RefreshBoth:
		fmt.Fprintf(tw, "refresh\tboth: packets from outside alone keep a mapping alive\n")
	case nat.RefreshOutbound:
		fmt.Fprintf(tw, "refresh\toutbound: only packets from inside keep a mapping alive\n")
	}
	tw.Flush()
}
