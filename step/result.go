package step

import "time"

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
