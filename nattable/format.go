package nattable

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/natlab/natlab/nat"
)

// Write prints the table as the story draws it: one row per translated
// flow, private -> public -> remote, then natlab's UDP and TCP mappings
// and the NAT's port forwards.
func Write(w io.Writer, t *Table) error {
	err := section(w, "", "PROTO\tPRIVATE\t\tPUBLIC\t\tREMOTE\tSTATE\tEXPIRES\tPACKETS\tBYTES", func(tw io.Writer) {
		for _, f := range t.Flows {
			arrow := "->"
			if f.Inbound {
				arrow = "<-"
			}
			state := f.State
			if f.Hairpin {
				state += " hairpin"
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\t%v\t%s\t%v\t%s\t%s\t%d\t%d\n", f.Proto, f.Private, arrow, f.Public, arrow, f.Remote, state, expires(f.Expires, f.Offloaded), f.Packets, f.Bytes)
		}
		if len(t.Flows) == 0 {
			fmt.Fprintln(tw, "(no translated flows)")
		}
	})
	if err == nil && len(t.Mappings) > 0 {
		err = section(w, "UDP mappings (who owns each public port):", "PUBLIC\t\tPRIVATE\tEXPIRES", func(tw io.Writer) {
			for _, m := range t.Mappings {
				fmt.Fprintf(tw, "%v\t<-\t%v\t%s\n", m.Public, m.Private, expires(m.Expires, m.Offloaded))
			}
		})
	}
	if err == nil && len(t.TCPMappings) > 0 {
		err = section(w, "TCP mappings (who owns each public port):", "PUBLIC\t\tPRIVATE\tEXPIRES", func(tw io.Writer) {
			for _, m := range t.TCPMappings {
				fmt.Fprintf(tw, "%v\t<-\t%v\t%s\n", m.Public, m.Private, expires(m.Expires, m.Offloaded))
			}
		})
	}
	if err == nil && t.OneToOne != nil {
		err = section(w, "One-to-one (every port of the public address is the host's, anyone may send to it):", "PUBLIC\t\tPRIVATE\tHOST", func(tw io.Writer) {
			fmt.Fprintf(tw, "%v\t<->\t%v\t%s\n", t.OneToOne.Public, t.OneToOne.Private, t.OneToOne.Host)
		})
	}
	if err == nil && len(t.Subscribers) > 0 {
		err = section(w, "Port blocks (each subscriber's mappings take ports of its own blocks only):", "SUBSCRIBER	ADDRESS	BLOCKS	IN USE (UDP, TCP)	QUOTA", func(tw io.Writer) {
			for _, s := range t.Subscribers {
				fmt.Fprintf(tw, "%s\t%v\t%s\t%d, %d\t%d\n", s.Node, s.Address, strings.Join(s.Ranges, " "), s.InUse["udp"], s.InUse["tcp"], s.Quota)
			}
		})
	}
	if err == nil && len(t.Forwards) > 0 {
		err = section(w, "Port forwards (anyone may send to these):", "PROTO\tPUBLIC\t\tPRIVATE\tBY\tEXPIRES", func(tw io.Writer) {
			for _, f := range t.Forwards {
				fmt.Fprintf(tw, "%s\t%v\t->\t%v\t%s\t%s\n", f.Proto, f.Public, f.Private, f.By, secs(f.Expires))
			}
		})
	}
	return err
}

// section prints one part of the table: after a blank line, its title
// (none for the first), then its header and the rows rows writes, in
// aligned columns.
func section(w io.Writer, title, header string, rows func(io.Writer)) error {
	if title != "" {
		fmt.Fprintf(w, "\n%s\n", title)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

// expires is secs, or for what the kernel's flowtable carries (Flow's
// and Mapping's Offloaded) that it expires once idle.
func expires(d time.Duration, offloaded bool) string {
	if offloaded {
		return "when idle (offloaded)"
	}
	return secs(d)
}

// secs is the time an entry has left, to the second, written as natlab
// writes durations everywhere (2m30s, 1h); static entries never expire.
func secs(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return nat.FormatDuration(d.Round(time.Second))
}
