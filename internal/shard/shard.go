// Package shard splits a list of work (scenarios, matrix cells) across
// several machines, each told only "i/n", and puts the pieces back
// together in the original order afterwards.
//
// Item k of the list (from 0) belongs to shard k mod n + 1: round robin
// rather than contiguous blocks, so that a list sorted by name, where
// related (and similarly slow) items sit next to each other, spreads
// evenly, and rather than hashing, so that n shards of m items differ in
// size by at most one.
package shard

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Shard is shard Index of Count, counted from 1. The zero Shard is the
// whole list, unsplit.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Parse reads "i/n" with 1 <= i <= n. It is strict (no spaces, signs or
// leading zeros) because a CI matrix that writes a shard wrongly should
// fail loudly, not silently run the wrong subset.
func Parse(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/n, such as 1/4", s)
	}
	i, err := number(is)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: index: %w", s, err)
	}
	n, err := number(ns)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: count: %w", s, err)
	}
	if i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: the index must be from 1 to %d", s, n)
	}
	return Shard{Index: i, Count: n}, nil
}

func number(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	if n < 1 {
		return 0, fmt.Errorf("%q is less than 1", s)
	}
	return n, nil
}

// Whole reports whether s is the unsplit list.
func (s Shard) Whole() bool { return s.Count == 0 }

func (s Shard) String() string {
	if s.Whole() {
		return "whole"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Has reports whether item k (from 0) of the list belongs to s.
func (s Shard) Has(k int) bool {
	return s.Whole() || k%s.Count == s.Index-1
}

// Select returns the items of list that belong to s, in list order.
func Select[T any](s Shard, list []T) []T {
	var out []T
	for k, item := range list {
		if s.Has(k) {
			out = append(out, item)
		}
	}
	return out
}

// Interleave undoes Select: parts[j] is what Select returned for shard
// j+1 of len(parts), and the result is the list it came from. It fails if
// the parts' sizes cannot have come from one list, which means a shard
// ran over a different list than the others.
func Interleave[T any](parts [][]T) ([]T, error) {
	n := len(parts)
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	for j, p := range parts {
		// Shard j+1 of a list of total items holds the items j, j+n, ...
		if want := (total - j + n - 1) / n; len(p) != want {
			return nil, fmt.Errorf("shard %d/%d has %d items where a list of %d split %d ways gives it %d: the shards did not run over the same list", j+1, n, len(p), total, n, want)
		}
	}
	out := make([]T, 0, total)
	for k := range total {
		out = append(out, parts[k%n][k/n])
	}
	return out, nil
}

// UnmarshalJSON refuses a shard that Parse would refuse, so that a
// report file carries only shards natlab could have run.
func (s *Shard) UnmarshalJSON(b []byte) error {
	var v struct{ Index, Count int }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Count < 1 || v.Index < 1 || v.Index > v.Count {
		return fmt.Errorf("shard %d/%d: the index must be from 1 to the count", v.Index, v.Count)
	}
	*s = Shard{Index: v.Index, Count: v.Count}
	return nil
}
