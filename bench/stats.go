package main

import (
	"fmt"
	"slices"
	"time"
)

// sample is repeated measurements of one thing.
type sample []time.Duration

func (s sample) sorted() sample {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// quantile is the q-quantile (0 to 1) by the nearest rank.
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	i := int(q*float64(len(c)-1) + 0.5)
	return c[i]
}

func (s sample) median() time.Duration { return s.quantile(0.5) }

// spread says the median and the range most runs fell in.
func (s sample) spread() string {
	return fmt.Sprintf("median %v (p10 %v, p90 %v, n=%d)", round(s.median()), round(s.quantile(0.1)), round(s.quantile(0.9)), len(s))
}

func (s sample) seconds() []float64 {
	out := make([]float64, len(s))
	for i, d := range s {
		out[i] = d.Seconds()
	}
	return out
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
