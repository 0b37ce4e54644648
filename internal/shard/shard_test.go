package shard

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		err  string // a part of the error, "" for none
	}{
		{"1/1", Shard{1, 1}, ""},
		{"1/4", Shard{1, 4}, ""},
		{"4/4", Shard{4, 4}, ""},
		{"10/12", Shard{10, 12}, ""},
		{"0/4", Shard{}, "less than 1"},
		{"5/4", Shard{}, "from 1 to 4"},
		{"1/0", Shard{}, "less than 1"},
		{"-1/4", Shard{}, "not a whole number"},
		{"+1/4", Shard{}, "not a whole number"},
		{"1 /4", Shard{}, "not a whole number"},
		{"01/4", Shard{}, "leading zero"},
		{"1/4/2", Shard{}, "not a whole number"},
		{"1", Shard{}, "want i/n"},
		{"", Shard{}, "want i/n"},
		{"/4", Shard{}, "not a whole number"},
		{"1/", Shard{}, "not a whole number"},
		{"a/b", Shard{}, "not a whole number"},
		{"1/99999999999999999999", Shard{}, "out of range"},
	} {
		got, err := Parse(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
			t.Errorf("Parse(%q) = %v, %v; want an error naming the input and saying %q", tc.in, got, err, tc.err)
		}
	}
}

func TestSelect(t *testing.T) {
	list := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, tc := range []struct {
		shard Shard
		want  []string
	}{
		{Shard{}, list},
		{Shard{1, 1}, list},
		{Shard{1, 2}, []string{"a", "c", "e", "g"}},
		{Shard{2, 2}, []string{"b", "d", "f"}},
		{Shard{1, 3}, []string{"a", "d", "g"}},
		{Shard{3, 3}, []string{"c", "f"}},
		{Shard{7, 7}, []string{"g"}},
		{Shard{8, 9}, nil},
	} {
		if got := Select(tc.shard, list); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Select(%v) = %v, want %v", tc.shard, got, tc.want)
		}
	}
}

// Every item lands in exactly one shard, and Interleave puts the shards
// back in the original order, whatever the sizes.
func TestSelectInterleaveRoundTrip(t *testing.T) {
	for m := 0; m <= 9; m++ {
		list := make([]int, m)
		for k := range list {
			list[k] = k * 10
		}
		for n := 1; n <= 11; n++ {
			parts := make([][]int, n)
			for i := 1; i <= n; i++ {
				parts[i-1] = Select(Shard{i, n}, list)
				if d := len(parts[i-1]) - len(parts[0]); d > 0 || d < -1 {
					t.Errorf("%d items in %d shards: shard %d has %d, shard 1 %d", m, n, i, len(parts[i-1]), len(parts[0]))
				}
			}
			got, err := Interleave(parts)
			if err != nil || !reflect.DeepEqual(got, list) {
				t.Errorf("%d items in %d shards: Interleave = %v, %v; want %v", m, n, got, err, list)
			}
		}
	}
}

func TestInterleaveRefusesMismatchedShards(t *testing.T) {
	for _, parts := range [][][]string{
		{{"a"}, {"b", "c"}},      // shard 2 larger than shard 1
		{{"a", "c", "e"}, {"b"}}, // shard 1 two larger
		{{}, {"b"}},
	} {
		if got, err := Interleave(parts); err == nil {
			t.Errorf("Interleave(%v) = %v, want an error", parts, got)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Shard{2, 4})
	if err != nil || string(b) != `{"index":2,"count":4}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	var s Shard
	if err := json.Unmarshal(b, &s); err != nil || s != (Shard{2, 4}) {
		t.Errorf("Unmarshal = %v, %v", s, err)
	}
	for _, bad := range []string{`{"index":0,"count":4}`, `{"index":5,"count":4}`, `{"index":1,"count":0}`, `"1/4"`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, s)
		}
	}
}
