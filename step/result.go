package step

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/natlab/natlab/goodput"
)

// Result is what one step did.
type Result struct {
	Index    int           `json:"index"`
	Name     string        `json:"name"`
	Kind     string        `json:"kind"`
	Expect   string        `json:"expect"`
	Observed string        `json:"observed"`
	Pass     bool          `json:"pass"`
	Duration time.Duration `json:"duration_ns"`
	// Detail is a one-line summary of what was seen.
	Detail string `json:"detail"`
	// Reason says why the step failed its expectation, or why what it
	// observed happened (a punch's failure, for instance).
	Reason string `json:"reason,omitempty"`
	// RTT is the round-trip time of the path the step measured: a send's
	// probes, or the path a punch, relay, ice or upgrade found.
	RTT *RTT `json:"rtt,omitempty"`
	// RelayRTT is the RTT over the relay an upgrade started on, before it
	// moved the data to the direct path whose RTT is RTT.
	RelayRTT *RTT `json:"relay_rtt,omitempty"`
	// Probes counts a send's probes, when it sent more than one message.
	Probes *Probes `json:"probes,omitempty"`
	// Throughput is what a throughput step measured: the rate offered and
	// the goodput that arrived.
	Throughput *goodput.Result `json:"throughput,omitempty"`
	// Data holds the step's full findings (a punch outcome, a
	// classification, ...), for --json.
	Data any `json:"data,omitempty"`
}

// verdict fills in the pass or fail of a step whose expectation is one
// word, expected, from the word observed.
func verdict(u Unit, expected, observed string, res Result) Result {
	res.Expect = u.Expected()
	res.Observed = observed
	res.Pass = observed == expected
	return res
}

// Round shortens a duration for people: milliseconds above 10ms,
// microseconds above 10µs.
func Round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// okFail are the outcomes of a step that works or does not.
var okFail = []string{"ok", "fail"}

// RTT sums up the round trips measured over one path.
type RTT struct {
	Min    time.Duration `json:"min_ns"`
	Median time.Duration `json:"median_ns"`
	Max    time.Duration `json:"max_ns"`
	// Samples is how many round trips were measured.
	Samples int `json:"samples"`
}

// NewRTT sums up samples; nil when there are none.
func NewRTT(samples []time.Duration) *RTT {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return &RTT{Min: s[0], Median: s[len(s)/2], Max: s[len(s)-1], Samples: len(s)}
}

// String is "rtt 100ms" for one sample, else "rtt min/median/max
// 99ms/100ms/102ms".
func (r *RTT) String() string {
	if r.Samples == 1 {
		return fmt.Sprintf("rtt %v", Round(r.Median))
	}
	return fmt.Sprintf("rtt min/median/max %v/%v/%v", Round(r.Min), Round(r.Median), Round(r.Max))
}

// Probes counts the messages a send with a count sent: how many reached
// the receiver, and how many of those came back as its echo.
type Probes struct {
	Sent      int `json:"sent"`
	Delivered int `json:"delivered"`
	Answered  int `json:"answered"`
}

// Lost is how many round trips did not complete.
func (p *Probes) Lost() int { return p.Sent - p.Answered }

// String is "50 sent, 45 delivered, 41 answered, 9 lost (18%)".
func (p *Probes) String() string {
	return fmt.Sprintf("%d sent, %d delivered, %d answered, %d lost (%.0f%%)",
		p.Sent, p.Delivered, p.Answered, p.Lost(), 100*float64(p.Lost())/float64(max(p.Sent, 1)))
}

// Measured is what the step measured, on one line for reports: its
// probes and its RTT; "" when it measured nothing.
func (r Result) Measured() string {
	var parts []string
	if r.Probes != nil {
		parts = append(parts, r.Probes.String())
	}
	switch {
	case r.RelayRTT != nil && r.RTT != nil:
		parts = append(parts, "relay "+r.RelayRTT.String()+", then direct "+r.RTT.String())
	case r.RTT != nil:
		parts = append(parts, r.RTT.String())
	}
	if t := r.Throughput; t != nil {
		parts = append(parts, fmt.Sprintf("goodput %s of %s offered, %.0f%% lost", goodput.Mbps(t.Goodput), goodput.Mbps(float64(t.Offered)), 100*t.Lost()))
	}
	return strings.Join(parts, ", ")
}
