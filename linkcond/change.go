package linkcond

import (
	"strconv"
	"strings"
	"time"
)

// Setting is a partial Direction: the conditions a file or a command
// names, each nil when not named.
type Setting struct {
	Delay, Jitter            *time.Duration
	Loss, Duplicate, Reorder *float64
	Rate                     *Rate
}

// apply sets on d the conditions s names.
func (s Setting) apply(d Direction) Direction {
	if s.Delay != nil {
		d.Delay = *s.Delay
	}
	if s.Jitter != nil {
		d.Jitter = *s.Jitter
	}
	if s.Loss != nil {
		d.Loss = *s.Loss
	}
	if s.Duplicate != nil {
		d.Duplicate = *s.Duplicate
	}
	if s.Reorder != nil {
		d.Reorder = *s.Reorder
	}
	if s.Rate != nil {
		d.Rate = *s.Rate
	}
	return d
}

// IsZero reports whether s names nothing.
func (s Setting) IsZero() bool { return s == Setting{} }

// Change is what a file's link: map, a link step or the link command
// says: conditions for both directions, then for one direction each
// (which win over Both), and the MTU.
type Change struct {
	Both, Up, Down Setting
	MTU            *int
}

// IsZero reports whether c names nothing.
func (c Change) IsZero() bool { return c == Change{} }

// Apply returns l with what c names changed and everything else kept: a
// change of the delay leaves the loss as it was. Applied to the zero Link
// it gives the conditions c describes.
func (c Change) Apply(l Link) Link {
	l.Up = c.Up.apply(c.Both.apply(l.Up))
	l.Down = c.Down.apply(c.Both.apply(l.Down))
	if c.MTU != nil {
		l.MTU = *c.MTU
	}
	return l
}

// Cleared returns c over a perfect wire: every condition c leaves out is
// set to none, so that applied to any link it gives what c applied to the
// zero Link gives (natlab link --clear, a link step's clear: true).
func (c Change) Cleared() Change {
	var zero time.Duration
	var none float64
	var noRate Rate
	noMTU := 0
	fill := func(p **time.Duration) {
		if *p == nil {
			*p = &zero
		}
	}
	fillF := func(p **float64) {
		if *p == nil {
			*p = &none
		}
	}
	fill(&c.Both.Delay)
	fill(&c.Both.Jitter)
	fillF(&c.Both.Loss)
	fillF(&c.Both.Duplicate)
	fillF(&c.Both.Reorder)
	if c.Both.Rate == nil {
		c.Both.Rate = &noRate
	}
	if c.MTU == nil {
		c.MTU = &noMTU
	}
	return c
}

// String writes what s names, in key order, as a file writes it:
// "delay 100ms, loss 0%"; "" when s names nothing.
func (s Setting) String() string {
	var parts []string
	for _, p := range []struct {
		key string
		d   *time.Duration
	}{{"delay", s.Delay}, {"jitter", s.Jitter}} {
		if p.d != nil {
			parts = append(parts, p.key+" "+FormatDuration(*p.d))
		}
	}
	for _, p := range []struct {
		key string
		v   *float64
	}{{"loss", s.Loss}, {"duplicate", s.Duplicate}, {"reorder", s.Reorder}} {
		if p.v != nil {
			parts = append(parts, p.key+" "+FormatPercent(*p.v))
		}
	}
	if s.Rate != nil {
		r := "none"
		if *s.Rate != 0 {
			r = s.Rate.String()
		}
		parts = append(parts, "rate "+r)
	}
	return strings.Join(parts, ", ")
}

// String writes what c names: the conditions of both directions, then
// each direction's, then the MTU, "; " between them: "delay 100ms; up:
// rate 1mbit; mtu 1400". It is "nothing" when c names nothing.
func (c Change) String() string {
	var parts []string
	if s := c.Both.String(); s != "" {
		parts = append(parts, s)
	}
	if s := c.Up.String(); s != "" {
		parts = append(parts, "up: "+s)
	}
	if s := c.Down.String(); s != "" {
		parts = append(parts, "down: "+s)
	}
	if c.MTU != nil {
		m := "default"
		if *c.MTU != 0 {
			m = strconv.Itoa(*c.MTU)
		}
		parts = append(parts, "mtu "+m)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// To is the change that makes any link l: every condition of both
// directions and the MTU named.
func To(l Link) Change {
	dir := func(d Direction) Setting {
		return Setting{Delay: &d.Delay, Jitter: &d.Jitter, Loss: &d.Loss, Duplicate: &d.Duplicate, Reorder: &d.Reorder, Rate: &d.Rate}
	}
	mtu := l.MTU
	return Change{Up: dir(l.Up), Down: dir(l.Down), MTU: &mtu}
}
