// Package linkcond describes the conditions of a link between two nodes:
// delay, jitter, loss, duplication, reordering, rate and MTU, in each of
// its two directions. It is pure: it parses, checks and prints conditions;
// the kernel layer makes a link behave as they say.
//
// The semantics are Mininet's TCLink's and netem's: a condition applies to
// each direction of the link on its own, so a delay of 30ms adds 60 ms to
// a round trip and a loss of 1% loses about 2% of round trips.
package linkcond

import (
	"fmt"
	"strings"
	"time"
)

// Limits of what a link may be given. They are what the kernel's netem
// and tbf take, narrowed to what makes sense for a lab.
const (
	// MaxDelay is the longest delay or jitter: longer than any real path,
	// short enough that a held packet is not forgotten.
	MaxDelay = 10 * time.Second
	// MinMTU is the least MTU an IPv4 host must accept (RFC 791, 576
	// octets); MaxMTU is a jumbo frame.
	MinMTU = 576
	MaxMTU = 9000
	// MinMTU6 is the least MTU IPv6 takes (RFC 8200, 1280 octets): the
	// kernel takes IPv6 off a device whose MTU is set below it.
	MinMTU6 = 1280
	// MinRate is the slowest rate, 8 kbit/s: slower would hold a 1500-byte
	// packet for more than a second and a half.
	MinRate Rate = 8_000
	// MaxRate is 100 Gbit/s, beyond what a veth carries.
	MaxRate Rate = 100_000_000_000
)

// Direction is what one direction of a link does to the packets that
// cross it. The zero value is a perfect wire.
type Direction struct {
	// Delay is added to every packet; Jitter spreads it evenly over
	// Delay±Jitter. Jitter alone does not reorder packets.
	Delay  time.Duration `json:"delay_ns,omitempty"`
	Jitter time.Duration `json:"jitter_ns,omitempty"`
	// Loss, Duplicate and Reorder are the percentages (0 to 100) of
	// packets dropped, sent twice, and sent at once without the delay
	// (so that they overtake the ones before them).
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
	// Rate is the most bits per second the direction carries; 0 is no
	// limit.
	Rate Rate `json:"rate_bps,omitempty"`
}

// IsZero reports whether d leaves packets alone.
func (d Direction) IsZero() bool { return d == Direction{} }

// Link is the conditions of both directions of a link. Up is from the
// node toward what it is behind (or the internet), Down toward the node.
type Link struct {
	Up   Direction `json:"up"`
	Down Direction `json:"down"`
	// MTU is the largest packet both ends send, 0 for the default (1500).
	MTU int `json:"mtu,omitempty"`
}

// IsZero reports whether l is a perfect wire.
func (l Link) IsZero() bool { return l == Link{} }

// Symmetric reports whether both directions have the same conditions.
func (l Link) Symmetric() bool { return l.Up == l.Down }

// Error is what Validate reports: a condition out of range, or one that
// contradicts another. It names the condition, so that a file's parser can
// point at the value that set it.
type Error struct {
	// Direction is "up" or "down" when only that direction of a link has
	// the problem; "" when both do, or the problem is the MTU's.
	Direction string
	// Key is the condition's key as a file writes it: "loss", "mtu". When
	// two conditions contradict each other, it is the one that must give
	// way: jitter to the delay, reorder to a missing delay.
	Key string
	// Problem says what is wrong: "loss 101% is outside 0-100%".
	Problem string
}

func (e *Error) Error() string {
	if e.Direction != "" {
		return e.Direction + ": " + e.Problem
	}
	return e.Problem
}

func problem(key, format string, args ...any) *Error {
	return &Error{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// ValidateDualStack reports, as an *Error, an MTU too small for IPv6, for
// a link of a dual-stack lab: the kernel would silently take the link's
// IPv6 addresses away, and every IPv6 step across it would fail for no
// reason a user could see. Validate passes it; an IPv4-only lab may have it.
func (l Link) ValidateDualStack() error {
	if l.MTU != 0 && l.MTU < MinMTU6 {
		return problem("mtu", "mtu %d is below %d, the least IPv6 takes (RFC 8200); in a dual-stack lab the kernel would take IPv6 off the link", l.MTU, MinMTU6)
	}
	return nil
}

// Validate reports the first condition of l that is out of range, or that
// contradicts another, as an *Error.
func (l Link) Validate() error {
	if l.MTU != 0 && (l.MTU < MinMTU || l.MTU > MaxMTU) {
		return problem("mtu", "mtu %d is outside %d-%d", l.MTU, MinMTU, MaxMTU)
	}
	for _, d := range []struct {
		name string
		dir  Direction
	}{{"up", l.Up}, {"down", l.Down}} {
		if err := d.dir.validate(); err != nil {
			if !l.Symmetric() {
				err.Direction = d.name
			}
			return err
		}
	}
	return nil
}

// Validate reports the first condition of d that is out of range, or that
// contradicts another, as an *Error.
func (d Direction) Validate() error {
	if err := d.validate(); err != nil {
		return err
	}
	return nil
}

func (d Direction) validate() *Error {
	for _, p := range []struct {
		key string
		v   float64
	}{{"loss", d.Loss}, {"duplicate", d.Duplicate}, {"reorder", d.Reorder}} {
		if p.v < 0 || p.v > 100 || p.v != p.v {
			return problem(p.key, "%s %s is outside 0-100%%", p.key, FormatPercent(p.v))
		}
	}
	for _, t := range []struct {
		key string
		v   time.Duration
	}{{"delay", d.Delay}, {"jitter", d.Jitter}} {
		if t.v < 0 {
			return problem(t.key, "%s %s is negative", t.key, FormatDuration(t.v))
		}
		if t.v > MaxDelay {
			return problem(t.key, "%s %s is longer than the maximum %s", t.key, FormatDuration(t.v), FormatDuration(MaxDelay))
		}
	}
	if d.Jitter > d.Delay {
		return problem("jitter", "jitter %s is more than the delay %s: a packet cannot arrive before it was sent", FormatDuration(d.Jitter), FormatDuration(d.Delay))
	}
	if d.Reorder > 0 && d.Delay == 0 {
		return problem("reorder", "reorder %s needs a delay: reordered packets are the ones sent without it", FormatPercent(d.Reorder))
	}
	if d.Rate != 0 && (d.Rate < MinRate || d.Rate > MaxRate) {
		return problem("rate", "rate %s is outside %s-%s", d.Rate, MinRate, MaxRate)
	}
	return nil
}

// String writes l as a scenario file would, in key order:
// "delay 30ms, loss 1%, mtu 1400", or "up: rate 1mbit; down: rate 20mbit"
// when the directions differ. A perfect wire is "none".
func (l Link) String() string {
	if l.IsZero() {
		return "none"
	}
	var parts []string
	if l.Symmetric() {
		if !l.Up.IsZero() {
			parts = append(parts, l.Up.String())
		}
	} else {
		parts = append(parts, "up: "+l.Up.String(), "down: "+l.Down.String())
	}
	if l.MTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", l.MTU))
	}
	return strings.Join(parts, "; ")
}

// String writes d's conditions, "none" when there are none.
func (d Direction) String() string {
	var parts []string
	if d.Delay != 0 {
		parts = append(parts, "delay "+FormatDuration(d.Delay))
	}
	if d.Jitter != 0 {
		parts = append(parts, "jitter "+FormatDuration(d.Jitter))
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"loss", d.Loss}, {"duplicate", d.Duplicate}, {"reorder", d.Reorder}} {
		if p.v != 0 {
			parts = append(parts, p.key+" "+FormatPercent(p.v))
		}
	}
	if d.Rate != 0 {
		parts = append(parts, "rate "+d.Rate.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
