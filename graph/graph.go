// Package graph draws a lab's topology: as Mermaid or Graphviz DOT text,
// or as a standalone SVG picture. The internet is the root; servers, NATs
// and hosts on it hang below it, and every NAT's LAN below the NAT.
package graph

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/natlab/natlab/topology"
)

// Formats lists what Write can produce.
var Formats = []string{"mermaid", "dot", "svg"}

// Write draws topo in format.
func Write(w io.Writer, topo *topology.Topology, format string) error {
	switch format {
	case "mermaid":
		return mermaid(w, topo)
	case "dot":
		return dot(w, topo)
	case "svg":
		return svg(w, topo)
	}
	return fmt.Errorf("unknown format %q; want %s", format, strings.Join(Formats, ", "))
}

// label is a node's text: name, what it is, its addresses.
func label(n *topology.Node) []string {
	lines := []string{n.Name}
	switch {
	case n.NAT != nil:
		kind := string(n.NAT.Type)
		if kind == "" {
			kind = "NAT"
		}
		lines = append(lines, kind, n.Addresses[0].String(), "LAN "+n.NAT.LAN.String())
	case n.Kind == topology.KindServer:
		var s []string
		for _, svc := range n.Services {
			s = append(s, string(svc))
		}
		kind := "server"
		if len(s) > 0 {
			kind += ": " + strings.Join(s, ", ")
		}
		lines = append(lines, kind)
		for _, a := range n.Addresses {
			lines = append(lines, a.String())
		}
	default:
		lines = append(lines, "host", n.Addresses[0].String())
	}
	return lines
}

func parent(n *topology.Node) string {
	if n.Behind == "" {
		return topology.Internet
	}
	return n.Behind
}

// id makes a node name safe as a Mermaid or DOT identifier.
func id(name string) string { return "n_" + strings.ReplaceAll(name, "-", "_") }

func mermaid(w io.Writer, topo *topology.Topology) error {
	var b strings.Builder
	b.WriteString("flowchart TB\n")
	fmt.Fprintf(&b, "  %s((\"internet<br/>%s\"))\n", id(topology.Internet), topo.Internet)
	for _, n := range topo.Nodes {
		text := strings.Join(label(n), "<br/>")
		switch n.Kind {
		case topology.KindNAT:
			fmt.Fprintf(&b, "  %s{{\"%s\"}}\n", id(n.Name), text)
		case topology.KindServer:
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", id(n.Name), text)
		default:
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", id(n.Name), text)
		}
	}
	for _, n := range topo.Nodes {
		fmt.Fprintf(&b, "  %s --- %s\n", id(parent(n)), id(n.Name))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dot(w io.Writer, topo *topology.Topology) error {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %q {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", topo.Name)
	fmt.Fprintf(&b, "  %s [label=\"internet\\n%s\", shape=ellipse];\n", id(topology.Internet), topo.Internet)
	shapes := map[topology.Kind]string{topology.KindNAT: "hexagon", topology.KindServer: "cylinder", topology.KindHost: "box"}
	for _, n := range topo.Nodes {
		fmt.Fprintf(&b, "  %s [label=%q, shape=%s];\n", id(n.Name), strings.Join(label(n), "\n"), shapes[n.Kind])
	}
	for _, n := range topo.Nodes {
		fmt.Fprintf(&b, "  %s -- %s;\n", id(parent(n)), id(n.Name))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// lineH is the SVG picture's line height, in pixels.
const lineH = 15

var fills = map[topology.Kind]string{
	"":                  "#e8f1fb",
	topology.KindNAT:    "#fdebd3",
	topology.KindServer: "#e3f4e1",
	topology.KindHost:   "#f3f3f3",
}

func svg(w io.Writer, topo *topology.Topology) error {
	l := Place(topo, DefaultSizes)
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n", l.Width, l.Height, l.Width, l.Height)
	fmt.Fprintf(&b, "  <title>natlab lab %s</title>\n", html.EscapeString(topo.Name))
	for _, box := range l.Boxes {
		if len(box.Up) == 0 {
			continue
		}
		var pts []string
		for _, p := range box.Up {
			pts = append(pts, fmt.Sprintf("%d,%d", p.X, p.Y))
		}
		fmt.Fprintf(&b, "  <polyline points=\"%s\" fill=\"none\" stroke=\"#888\" stroke-width=\"1.5\"/>\n", strings.Join(pts, " "))
	}
	for _, box := range l.Boxes {
		lines := []string{"internet", topo.Internet.String()}
		if n := topo.Node(box.Name); n != nil {
			lines = label(n)
		}
		rx := 6
		if box.Kind == "" {
			rx = 30
		}
		fmt.Fprintf(&b, "  <g><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"%d\" fill=\"%s\" stroke=\"#555\"/>\n", box.X, box.Y, box.W, box.H, rx, fills[box.Kind])
		top := box.Y + (box.H-len(lines)*lineH)/2 + lineH - 3
		for i, line := range lines {
			weight := ""
			if i == 0 {
				weight = " font-weight=\"bold\""
			}
			fmt.Fprintf(&b, "    <text x=\"%d\" y=\"%d\" text-anchor=\"middle\"%s>%s</text>\n", box.X+box.W/2, top+i*lineH, weight, html.EscapeString(line))
		}
		b.WriteString("  </g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
