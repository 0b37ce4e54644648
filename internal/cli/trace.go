package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/trace"
)

func newTraceCmd() *cobra.Command {
	var pcapPath string
	var count int
	var duration time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trace LAB NODE",
		Short: "Show every packet crossing a NAT, before and after the rewrite, and the drops",
		Long: `Trace a NAT node: one line per packet that crosses it, with its addresses as
it came in and as it left (the NAT's rewrite), and one line per packet the NAT
dropped, with the rule that dropped it (the wall). Packets addressed to the NAT
itself, or sent by it, are shown too. Lines come in the order the kernel saw
the packets; one may wait a moment (0.3 s at most) for an earlier packet whose
fate is not known yet, such as one the NAT had no route for.

A NAT is traced by one natlab trace or natlab ui at a time.

It runs until Ctrl-C, --count packets or --duration. With --pcap, every packet
is also written, before and after its rewrite, to a pcap file that tcpdump and
Wireshark read.`,
		Example: `  sudo natlab trace symmetric nat-a
  sudo natlab trace symmetric nat-b --pcap nat-b.pcap --duration 30s
  tcpdump -n -r nat-b.pcap`,
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
				return usageError("%s is a %s: natlab traces NAT nodes (tcpdump works in any node: natlab exec %s %s -- tcpdump -ni any)", a[1], n.Kind, a[0], a[1])
			}
			var pcap *trace.PcapWriter
			if pcapPath != "" {
				f, err := os.Create(pcapPath)
				if err != nil {
					return err
				}
				defer f.Close()
				if pcap, err = trace.NewPcapWriter(f); err != nil {
					return err
				}
			}
			tr, err := trace.Open(cmd.Context(), lab.NamespaceName(topo.Name, n.Name))
			if err != nil {
				return fmt.Errorf("trace NAT %s of lab %s: %w", n.Name, topo.Name, err)
			}
			defer tr.Stop()
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			if !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "tracing %s (%s); Ctrl-C stops\n", n.Name, n.NAT.Behaviour)
			}
			var timeout <-chan time.Time
			if duration > 0 {
				timeout = time.After(duration)
			}
			for seen := 0; count == 0 || seen < count; seen++ {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-timeout:
					return nil
				case e, ok := <-tr.Events():
					if !ok {
						return fmt.Errorf("trace %s: the kernel stopped delivering packets", n.Name)
					}
					if pcap != nil {
						pcap.Write(e.Time, e.Before.Raw)
						if e.After != nil {
							pcap.Write(e.Time, e.After.Raw)
						}
					}
					if asJSON {
						enc.Encode(e)
					} else {
						fmt.Fprintln(out, e)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pcapPath, "pcap", "", "also write the packets to this pcap file")
	cmd.Flags().IntVarP(&count, "count", "c", 0, "stop after this many packets")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per packet")
	return cmd
}
