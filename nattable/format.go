package nattable

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Write prints the table as the story draws it: one row per translated
// flow, private -> public -> remote, then natlab's UDP mappings and the
// NAT's port forwards.
func Write(w io.Writer, t *Table) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tPRIVATE\t\tPUBLIC\t\tREMOTE\tSTATE\tEXPIRES")
	for _, f := range t.Flows {
		arrow := "->"
		if f.Inbound {
			arrow = "<-"
		}
		state := f.State
		if f.Hairpin {
			state += " hairpin"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%v\t%s\t%v\t%s\t%s\n", f.Proto, f.Private, arrow, f.Public, arrow, f.Remote, state, secs(f.Expires))
	}
	if len(t.Flows) == 0 {
		fmt.Fprintln(tw, "(no translated flows)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(t.Mappings) > 0 {
		fmt.Fprintf(w, "\nUDP mappings (who owns each public port):\n")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "PUBLIC\t\tPRIVATE\tEXPIRES")
		for _, m := range t.Mappings {
			fmt.Fprintf(tw, "%v\t<-\t%v\t%s\n", m.Public, m.Private, secs(m.Expires))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(t.Forwards) > 0 {
		fmt.Fprintf(w, "\nPort forwards (anyone may send to these):\n")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "PROTO\tPUBLIC\t\tPRIVATE\tBY\tEXPIRES")
		for _, f := range t.Forwards {
			fmt.Fprintf(tw, "%s\t%v\t->\t%v\t%s\t%s\n", f.Proto, f.Public, f.Private, f.By, secs(f.Expires))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func secs(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
}
