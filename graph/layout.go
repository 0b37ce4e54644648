package graph

import (
	"github.com/natlab/natlab/topology"
)

// Sizes are the measures of a layout, in pixels.
type Sizes struct {
	BoxW, BoxH int
	// GapX is the space between boxes side by side, GapY between a box
	// and the row below it.
	GapX, GapY int
	Margin     int
	// MaxWidth is the width past which a segment's nodes wrap into
	// another row, so that large labs grow down rather than sideways.
	MaxWidth int
}

// DefaultSizes are the SVG picture's.
var DefaultSizes = Sizes{BoxW: 170, BoxH: 74, GapX: 20, GapY: 56, Margin: 20, MaxWidth: 1600}

// laneW is the room left of a wrapped segment for the line that joins
// its rows.
const laneW = 16

// Point is a position in the picture.
type Point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// Box is one node's place: the internet's (Name topology.Internet, Kind
// "") or a node's.
type Box struct {
	Name string        `json:"name"`
	Kind topology.Kind `json:"kind"`
	// Parent is the box above, "" for the internet.
	Parent string `json:"parent,omitempty"`
	X      int    `json:"x"`
	Y      int    `json:"y"`
	W      int    `json:"w"`
	H      int    `json:"h"`
	// Up is the wire from the middle of the box's top edge to the middle
	// of its parent's bottom edge: down from the parent, along the
	// segment's line, up to the box.
	Up []Point `json:"up,omitempty"`
}

// Layout is a picture of a lab: each node a box under the segment it is
// on, the internet at the top. A segment's nodes sit side by side on one
// line, as a LAN is drawn, wrapping into more rows past MaxWidth.
type Layout struct {
	Width  int   `json:"width"`
	Height int   `json:"height"`
	Boxes  []Box `json:"boxes"`
}

// Box returns the box of name.
func (l *Layout) Box(name string) *Box {
	for i := range l.Boxes {
		if l.Boxes[i].Name == name {
			return &l.Boxes[i]
		}
	}
	return nil
}

// block is a subtree being laid out, with positions relative to its
// top-left corner until it is placed.
type block struct {
	name     string
	kind     topology.Kind
	w, h     int
	box      Point // the node's own box
	children []*block
	at       []Point // each child's offset
	// rows[i] is the y of row i's segment line; wrapped says the rows
	// are joined by a lane at the left.
	rows    []int
	rowOf   []int
	wrapped bool
}

// Place lays topo out.
func Place(topo *topology.Topology, s Sizes) *Layout {
	byParent := map[string][]*topology.Node{}
	for _, n := range topo.Nodes {
		byParent[parent(n)] = append(byParent[parent(n)], n)
	}
	var build func(name string, kind topology.Kind) *block
	build = func(name string, kind topology.Kind) *block {
		b := &block{name: name, kind: kind}
		for _, n := range byParent[name] {
			b.children = append(b.children, build(n.Name, n.Kind))
		}
		b.arrange(s)
		return b
	}
	root := build(topology.Internet, "")
	l := &Layout{Width: root.w + 2*s.Margin, Height: root.h + 2*s.Margin}
	root.emit(l, "", Point{s.Margin, s.Margin}, s)
	return l
}

// arrange sizes b from its children's sizes: the node's box on top, then
// rows of children, each row below its segment line.
func (b *block) arrange(s Sizes) {
	if len(b.children) == 0 {
		b.w, b.h = s.BoxW, s.BoxH
		return
	}
	// Fill rows greedily up to MaxWidth.
	var rows [][]int
	width := 0
	for i, c := range b.children {
		if len(rows) == 0 || (width+s.GapX+c.w > s.MaxWidth && width > 0) {
			rows = append(rows, nil)
			width = -s.GapX
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		width += s.GapX + c.w
	}
	b.wrapped = len(rows) > 1
	left := 0
	if b.wrapped {
		left = laneW
	}
	b.at = make([]Point, len(b.children))
	b.rowOf = make([]int, len(b.children))
	y := s.BoxH
	maxW := s.BoxW
	for r, row := range rows {
		y += s.GapY
		b.rows = append(b.rows, y-s.GapY/2)
		x, rowH := left, 0
		for _, i := range row {
			c := b.children[i]
			b.at[i] = Point{x, y}
			b.rowOf[i] = r
			x += c.w + s.GapX
			rowH = max(rowH, c.h)
		}
		maxW = max(maxW, x-s.GapX)
		y += rowH
	}
	b.w, b.h = maxW, y
	// A single row centres its parent over it; wrapped rows keep it at
	// the left, over the lane.
	if b.wrapped {
		b.box = Point{left, 0}
	} else {
		first := b.at[0].X + b.children[0].box.X
		lastC := b.children[len(b.children)-1]
		last := b.at[len(b.children)-1].X + lastC.box.X + s.BoxW
		b.box = Point{(first + last - s.BoxW) / 2, 0}
	}
}

// emit places b at origin and appends its boxes to l.
func (b *block) emit(l *Layout, parentName string, origin Point, s Sizes) {
	box := Box{Name: b.name, Kind: b.kind, Parent: parentName, X: origin.X + b.box.X, Y: origin.Y + b.box.Y, W: s.BoxW, H: s.BoxH}
	l.Boxes = append(l.Boxes, box)
	cx, bottom := box.X+s.BoxW/2, box.Y+s.BoxH
	laneX := origin.X + laneW/2
	firstLine := origin.Y + b.rows0()
	for i, c := range b.children {
		at := Point{origin.X + b.at[i].X, origin.Y + b.at[i].Y}
		top := Point{at.X + c.box.X + s.BoxW/2, at.Y + c.box.Y}
		line := origin.Y + b.rows[b.rowOf[i]]
		var up []Point
		if b.wrapped {
			up = []Point{top, {top.X, line}, {laneX, line}, {laneX, firstLine}, {cx, firstLine}, {cx, bottom}}
		} else {
			up = []Point{top, {top.X, line}, {cx, line}, {cx, bottom}}
		}
		n := len(l.Boxes)
		c.emit(l, b.name, at, s)
		l.Boxes[n].Up = simplify(up)
	}
}

func (b *block) rows0() int {
	if len(b.rows) == 0 {
		return 0
	}
	return b.rows[0]
}

// simplify drops points that repeat the one before.
func simplify(ps []Point) []Point {
	out := ps[:1]
	for _, p := range ps[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return out
}
