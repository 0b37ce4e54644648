package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"time"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/runner"
)

// SuiteFormat names the JSON of several runs. A single run keeps the
// plain Report format it always had; the version in the name changes only
// if a field changes meaning or goes away.
const SuiteFormat = "natlab-suite/1"

// Suite is several scenario runs: natlab run with more than one scenario,
// --all or --shard, or natlab report merge of such results.
type Suite struct {
	Format string `json:"format"`
	// Shard is set when the runs are one shard of a larger list.
	Shard  *shard.Shard `json:"shard,omitempty"`
	Runs   []Run        `json:"runs"`
	Passed bool         `json:"passed"`
}

// Run is one scenario's report, in the same fields as a single run's
// JSON, with the error that stopped it before its steps (its lab would
// not come up, say), if any.
type Run struct {
	runner.Report
	Error string `json:"error,omitempty"`
}

// NewSuite collects runs; sh is the shard they are, or the zero Shard.
func NewSuite(sh shard.Shard, runs []Run) *Suite {
	s := &Suite{Format: SuiteFormat, Runs: runs, Passed: true}
	if runs == nil {
		// An empty shard is still a list, for whoever reads the JSON.
		s.Runs = []Run{}
	}
	if !sh.Whole() {
		s.Shard = &sh
	}
	for _, r := range runs {
		if !r.Passed || r.Error != "" {
			s.Passed = false
		}
	}
	return s
}

// Failed counts the runs that did not pass.
func (s *Suite) Failed() int {
	n := 0
	for _, r := range s.Runs {
		if !r.Passed || r.Error != "" {
			n++
		}
	}
	return n
}

// WriteSuiteJSON writes the suite with every step's full findings.
func WriteSuiteJSON(w io.Writer, s *Suite) error {
	return writeJSON(w, s)
}

// WriteSuiteJUnit writes one test suite per run, one test case per step,
// in one <testsuites>. A run stopped by an error before its steps is a
// test suite with a single errored test case, so that CI shows it.
func WriteSuiteJUnit(w io.Writer, s *Suite) error {
	doc := junitSuites{Suites: []junitSuite{}}
	var total time.Duration
	for _, r := range s.Runs {
		suite := runSuite(&r.Report)
		if r.Error != "" {
			suite.Tests++
			suite.Errors++
			suite.Cases = append(suite.Cases, junitCase{
				Classname: "natlab." + r.Lab,
				Name:      "lab up",
				Time:      seconds(0),
				Error:     &junitFailure{Message: r.Error, Type: "error"},
			})
		}
		doc.add(suite)
		total += r.Duration
	}
	doc.Time = seconds(total.Seconds())
	return writeJUnit(w, doc)
}

// Matrix is natlab matrix --json: the cells, and the shard they are if
// the matrix was split.
type Matrix struct {
	Cells      []matrix.Cell `json:"cells"`
	Seconds    float64       `json:"seconds"`
	Unexpected int           `json:"unexpected"`
	Shard      *shard.Shard  `json:"shard,omitempty"`
}

// NewMatrix collects a matrix run's cells.
func NewMatrix(sh shard.Shard, cells []matrix.Cell, took time.Duration) *Matrix {
	m := &Matrix{Cells: cells, Seconds: took.Seconds()}
	if cells == nil {
		m.Cells = []matrix.Cell{}
	}
	if !sh.Whole() {
		m.Shard = &sh
	}
	for _, c := range cells {
		if !c.OK() {
			m.Unexpected++
		}
	}
	return m
}

// WriteMatrixJSON writes the cells as JSON.
func WriteMatrixJSON(w io.Writer, m *Matrix) error { return writeJSON(w, m) }

// WriteMatrixJUnit writes one test case per cell: a cell fails where it
// differs from theory or the relay could not connect it.
func WriteMatrixJUnit(w io.Writer, m *Matrix) error {
	suite := junitSuite{Name: "natlab matrix", Time: seconds(m.Seconds)}
	for _, c := range m.Cells {
		jc := junitCase{
			Classname: "natlab.matrix",
			Name:      fmt.Sprintf("%s vs %s", c.Row, c.Column),
			SystemOut: c.String(),
		}
		switch {
		case c.Err != "":
			jc.Error = &junitFailure{Message: c.Err, Type: "error"}
			suite.Errors++
		case !c.OK():
			jc.Failure = &junitFailure{Message: c.String(), Type: "matrix", Text: c.Reason}
			suite.Failures++
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, jc)
	}
	doc := junitSuites{Time: suite.Time}
	doc.add(suite)
	return writeJUnit(w, doc)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (d *junitSuites) add(s junitSuite) {
	d.Tests += s.Tests
	d.Failures += s.Failures
	d.Errors += s.Errors
	d.Suites = append(d.Suites, s)
}

func writeJUnit(w io.Writer, doc junitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
