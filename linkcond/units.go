package linkcond

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is a number of bits per second.
type Rate uint64

// rateUnits are the units a rate is written in, as tc writes them:
// "bit" is bits, not bytes (tc's "bps" means bytes per second, a trap
// natlab does not set).
var rateUnits = []struct {
	suffix string
	scale  uint64
}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

// RateWant says what ParseRate takes, for error messages.
const RateWant = "a rate such as 500kbit, 10mbit or 1gbit"

// ParseRate reads a rate: a number and one of the units bit, kbit, mbit,
// gbit (powers of 1000, as tc and Mininet count).
func ParseRate(s string) (Rate, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			break
		}
		bits := f * float64(u.scale)
		if bits > float64(MaxRate) {
			return 0, fmt.Errorf("rate %s is more than the maximum %s", s, MaxRate)
		}
		return Rate(math.Round(bits)), nil
	}
	return 0, fmt.Errorf("invalid rate %q; want %s", s, RateWant)
}

// String writes r in the largest unit that keeps it whole: 10mbit, 1500kbit.
func (r Rate) String() string {
	for _, u := range rateUnits {
		if uint64(r)%u.scale == 0 && uint64(r) >= u.scale {
			return strconv.FormatUint(uint64(r)/u.scale, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(r), 10) + "bit"
}

// PercentWant says what ParsePercent takes.
const PercentWant = "a percentage such as 1% or 0.5%"

// ParsePercent reads a percentage written with its sign: "1%", "0.1%".
// The sign is required, so that 0.01 is not mistaken for 1%.
func ParsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(num), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("invalid percentage %q; want %s", s, PercentWant)
}

// FormatPercent writes p as the file does: 1%, 0.1%.
func FormatPercent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

// DurationWant says what ParseDuration takes.
const DurationWant = "a duration such as 30ms or 1.5s"

// ParseDuration reads a delay or jitter: a number and a unit (us, ms, s),
// or 0.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || !(strings.HasSuffix(t, "ms") || strings.HasSuffix(t, "us") || strings.HasSuffix(t, "µs") || strings.HasSuffix(t, "s")) || strings.HasSuffix(t, "ns") {
		return 0, fmt.Errorf("invalid duration %q; want %s", s, DurationWant)
	}
	return d, nil
}

// FormatDuration writes d the short way: 30ms, 1.5s, 250us.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d%time.Microsecond == 0 && d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return d.String()
}
