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

// Layout of the SVG picture, in pixels.
const (
	boxW, boxH = 170, 74
	gapX, gapY = 20, 56
	margin     = 20
	lineH      = 15
)

type placed struct {
	name     string
	lines    []string
	kind     topology.Kind
	x, y     int // top-left corner
	children []*placed
}

// layout places a tree: leaves side by side, each parent centred over its
// children, one row per level.
func layout(topo *topology.Topology) (*placed, int, int) {
	byParent := map[string][]*topology.Node{}
	for _, n := range topo.Nodes {
		byParent[parent(n)] = append(byParent[parent(n)], n)
	}
	root := &placed{name: topology.Internet, lines: []string{"internet", topo.Internet.String()}}
	var build func(p *placed)
	build = func(p *placed) {
		for _, n := range byParent[p.name] {
			c := &placed{name: n.Name, lines: label(n), kind: n.Kind}
			p.children = append(p.children, c)
			build(c)
		}
	}
	build(root)
	nextX, maxY := margin, 0
	var place func(p *placed, depth int)
	place = func(p *placed, depth int) {
		p.y = margin + depth*(boxH+gapY)
		maxY = max(maxY, p.y+boxH)
		if len(p.children) == 0 {
			p.x = nextX
			nextX += boxW + gapX
			return
		}
		for _, c := range p.children {
			place(c, depth+1)
		}
		p.x = (p.children[0].x + p.children[len(p.children)-1].x) / 2
	}
	place(root, 0)
	return root, max(nextX-gapX+margin, boxW+2*margin), maxY + margin
}

var fills = map[topology.Kind]string{
	"":                  "#e8f1fb",
	topology.KindNAT:    "#fdebd3",
	topology.KindServer: "#e3f4e1",
	topology.KindHost:   "#f3f3f3",
}

func svg(w io.Writer, topo *topology.Topology) error {
	root, width, height := layout(topo)
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n", width, height, width, height)
	fmt.Fprintf(&b, "  <title>natlab lab %s</title>\n", html.EscapeString(topo.Name))
	var edges, boxes strings.Builder
	var draw func(p *placed)
	draw = func(p *placed) {
		for _, c := range p.children {
			fmt.Fprintf(&edges, "  <line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" stroke-width=\"1.5\"/>\n",
				p.x+boxW/2, p.y+boxH, c.x+boxW/2, c.y)
			draw(c)
		}
		rx := 6
		if p.kind == "" {
			rx = 30
		}
		fmt.Fprintf(&boxes, "  <g><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"%d\" fill=\"%s\" stroke=\"#555\"/>\n", p.x, p.y, boxW, boxH, rx, fills[p.kind])
		top := p.y + (boxH-len(p.lines)*lineH)/2 + lineH - 3
		for i, line := range p.lines {
			weight := ""
			if i == 0 {
				weight = " font-weight=\"bold\""
			}
			fmt.Fprintf(&boxes, "    <text x=\"%d\" y=\"%d\" text-anchor=\"middle\"%s>%s</text>\n", p.x+boxW/2, top+i*lineH, weight, html.EscapeString(line))
		}
		boxes.WriteString("  </g>\n")
	}
	draw(root)
	b.WriteString(edges.String())
	b.WriteString(boxes.String())
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
