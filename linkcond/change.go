package linkcond

import "time"

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
