package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/matrix"
)

// Input is one file for Merge: its name, for messages, and its contents.
type Input struct {
	Name string
	Data []byte
}

// Merged is what Merge made of its inputs: scenario runs (from run
// --json, single or several), matrix cells (from matrix --json), or, from
// JUnit files, JUnit only.
type Merged struct {
	Suite  *Suite
	Matrix *Matrix
	junit  *junitSuites
}

// Passed reports whether every run, cell or test case passed.
func (m *Merged) Passed() bool {
	switch {
	case m.Suite != nil:
		return m.Suite.Passed
	case m.Matrix != nil:
		return m.Matrix.Unexpected == 0
	default:
		return m.junit.Failures+m.junit.Errors == 0
	}
}

// Summary says in a line what was merged and how it went.
func (m *Merged) Summary() string {
	switch {
	case m.Suite != nil:
		steps, failed := 0, 0
		for _, r := range m.Suite.Runs {
			steps += len(r.Steps)
			failed += r.Failed()
		}
		return fmt.Sprintf("%d scenarios (%d failed), %d steps (%d failed)", len(m.Suite.Runs), m.Suite.Failed(), steps, failed)
	case m.Matrix != nil:
		return fmt.Sprintf("%d matrix cells, %d unexpected", len(m.Matrix.Cells), m.Matrix.Unexpected)
	default:
		return fmt.Sprintf("%d test suites, %d tests (%d failures, %d errors)", len(m.junit.Suites), m.junit.Tests, m.junit.Failures, m.junit.Errors)
	}
}

// ErrNoJSON is WriteJSON's answer for merged JUnit files, from which no
// natlab JSON can be rebuilt.
var ErrNoJSON = errors.New("JUnit inputs merge into JUnit only: merge the shards' --json files to get JSON")

// WriteJSON writes the merged runs or cells in the format they came in.
func (m *Merged) WriteJSON(w io.Writer) error {
	switch {
	case m.Suite != nil:
		return WriteSuiteJSON(w, m.Suite)
	case m.Matrix != nil:
		return WriteMatrixJSON(w, m.Matrix)
	default:
		return ErrNoJSON
	}
}

// WriteJUnit writes everything merged as one <testsuites>.
func (m *Merged) WriteJUnit(w io.Writer) error {
	switch {
	case m.Suite != nil:
		return WriteSuiteJUnit(w, m.Suite)
	case m.Matrix != nil:
		return WriteMatrixJUnit(w, m.Matrix)
	default:
		return writeJUnit(w, *m.junit)
	}
}

// doc is one parsed input.
type doc struct {
	name   string
	shard  *shard.Shard
	suite  *Suite
	matrix *Matrix
	junit  *junitSuites
}

func (d *doc) kind() string {
	switch {
	case d.suite != nil:
		return "natlab run JSON"
	case d.matrix != nil:
		return "natlab matrix JSON"
	default:
		return "JUnit XML"
	}
}

// Merge puts the results of several runs together: the shards of one
// split run (each shard exactly once, and the result in the order of the
// list the shards split), or unrelated runs, in the order given.
// Inputs must all be of one kind; a scenario (by lab name), a matrix cell
// or a JUnit test suite may appear only once.
func Merge(inputs []Input) (*Merged, error) {
	if len(inputs) == 0 {
		return nil, errors.New("merge: no files")
	}
	docs := make([]*doc, len(inputs))
	for i, in := range inputs {
		d, err := parse(in)
		if err != nil {
			return nil, err
		}
		if i > 0 && d.kind() != docs[0].kind() {
			return nil, fmt.Errorf("merge: %s is %s but %s is %s: merge files of one kind", in.Name, d.kind(), docs[0].name, docs[0].kind())
		}
		docs[i] = d
	}
	order, err := shardOrder(docs)
	if err != nil {
		return nil, err
	}
	switch {
	case docs[0].suite != nil:
		runs, err := combine(docs, order, func(d *doc) []Run { return d.suite.Runs }, func(r Run) string { return "scenario " + r.Lab })
		if err != nil {
			return nil, err
		}
		return &Merged{Suite: NewSuite(shard.Shard{}, runs)}, nil
	case docs[0].matrix != nil:
		cells, err := combine(docs, order, func(d *doc) []matrix.Cell { return d.matrix.Cells }, func(c matrix.Cell) string {
			return fmt.Sprintf("matrix cell %s vs %s", c.Row, c.Column)
		})
		if err != nil {
			return nil, err
		}
		m := NewMatrix(shard.Shard{}, cells, 0)
		for _, d := range docs {
			// The shards ran side by side: the matrix took as long as
			// the slowest.
			m.Seconds = max(m.Seconds, d.matrix.Seconds)
		}
		return &Merged{Matrix: m}, nil
	default:
		suites, err := combine(docs, nil, func(d *doc) []junitSuite { return d.junit.Suites }, func(s junitSuite) string { return "test suite " + strconv.Quote(s.Name) })
		if err != nil {
			return nil, err
		}
		out := &junitSuites{Suites: []junitSuite{}}
		total := 0.0
		for _, d := range docs {
			t, _ := strconv.ParseFloat(d.junit.Time, 64)
			total += t
		}
		for _, s := range suites {
			out.add(s)
		}
		out.Time = seconds(total)
		return &Merged{junit: out}, nil
	}
}

// parse reads one input: JUnit XML if it starts with "<", else one of
// natlab's JSON documents, told apart by their fields.
func parse(in Input) (*doc, error) {
	d := &doc{name: in.Name}
	data := bytes.TrimSpace(in.Data)
	if bytes.HasPrefix(data, []byte("<")) {
		d.junit = &junitSuites{}
		if err := xml.Unmarshal(data, d.junit); err != nil {
			return nil, fmt.Errorf("merge: reading %s as JUnit: %w", in.Name, err)
		}
		return d, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("merge: %s is neither natlab's JSON nor JUnit XML: %w", in.Name, err)
	}
	var err error
	switch {
	case probe["format"] != nil:
		var format string
		json.Unmarshal(probe["format"], &format)
		if format != SuiteFormat {
			return nil, fmt.Errorf("merge: %s is in format %q; this natlab reads %q", in.Name, format, SuiteFormat)
		}
		d.suite = &Suite{}
		err = json.Unmarshal(data, d.suite)
		d.shard = d.suite.Shard
	case probe["cells"] != nil:
		d.matrix = &Matrix{}
		err = json.Unmarshal(data, d.matrix)
		d.shard = d.matrix.Shard
	case probe["lab"] != nil && probe["steps"] != nil:
		var r Run
		err = json.Unmarshal(data, &r.Report)
		d.suite = NewSuite(shard.Shard{}, []Run{r})
	default:
		return nil, fmt.Errorf("merge: %s is JSON but not a natlab run or matrix report", in.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("merge: reading %s: %w", in.Name, err)
	}
	return d, nil
}

// shardOrder returns, for shards, the inputs' indexes in shard order
// (nil for unsharded inputs) after checking that they are every shard of
// one split exactly once: a shard whose runner died without leaving its
// file would otherwise go unnoticed, and its tests with it.
func shardOrder(docs []*doc) ([]int, error) {
	sharded := 0
	for _, d := range docs {
		if d.shard != nil {
			sharded++
		}
	}
	if sharded == 0 {
		return nil, nil
	}
	if sharded < len(docs) {
		for _, d := range docs {
			if d.shard == nil {
				return nil, fmt.Errorf("merge: %s is not a shard but %s is: merge either the shards of one run or whole runs", d.name, firstShard(docs).name)
			}
		}
	}
	n := docs[0].shard.Count
	order := make([]int, n)
	seen := make([]string, n)
	for i, d := range docs {
		if d.shard.Count != n {
			return nil, fmt.Errorf("merge: %s is shard %v but %s is shard %v: the shards of one run share their count", d.name, d.shard, docs[0].name, docs[0].shard)
		}
		j := d.shard.Index - 1
		if seen[j] != "" {
			return nil, fmt.Errorf("merge: %s and %s are both shard %v", seen[j], d.name, d.shard)
		}
		seen[j] = d.name
		order[j] = i
	}
	for j, name := range seen {
		if name == "" {
			return nil, fmt.Errorf("merge: shard %d/%d is missing (%d files for %d shards)", j+1, n, len(docs), n)
		}
	}
	return order, nil
}

func firstShard(docs []*doc) *doc {
	for _, d := range docs {
		if d.shard != nil {
			return d
		}
	}
	return nil
}

// combine joins the docs' items: interleaved back into one list for
// shards (order non-nil), concatenated otherwise; an item whose key
// appears twice is an error.
func combine[T any](docs []*doc, order []int, items func(*doc) []T, key func(T) string) ([]T, error) {
	type item struct {
		v    T
		from string
	}
	of := func(d *doc) []item {
		var out []item
		for _, v := range items(d) {
			out = append(out, item{v, d.name})
		}
		return out
	}
	var all []item
	if order != nil {
		parts := make([][]item, len(order))
		for j, i := range order {
			parts[j] = of(docs[i])
		}
		var err error
		if all, err = shard.Interleave(parts); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
	} else {
		for _, d := range docs {
			all = append(all, of(d)...)
		}
	}
	seen := map[string]string{}
	out := make([]T, 0, len(all))
	for _, it := range all {
		k := key(it.v)
		if from, ok := seen[k]; ok {
			return nil, fmt.Errorf("merge: %s is in both %s and %s", k, from, it.from)
		}
		seen[k] = it.from
		out = append(out, it.v)
	}
	return out, nil
}
