// Package report writes a scenario run's results for machines: JSON, and
// JUnit XML so CI systems show every step as a test case.
package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"time"

	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// WriteJSON writes the whole report, with each step's full findings.
func WriteJSON(w io.Writer, r *runner.Report) error {
	return writeJSON(w, r)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr,omitempty"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr,omitempty"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Time      string `xml:"time,attr,omitempty"`
	// Properties hold what the step measured: round trips and RTT.
	Properties *junitProperties `xml:"properties,omitempty"`
	Failure    *junitFailure    `xml:"failure,omitempty"`
	Error      *junitFailure    `xml:"error,omitempty"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// measured lists what a step measured as JUnit properties: its probes'
// counts, its RTT in milliseconds (an upgrade's over the relay too) and
// a throughput step's rates; nil when it measured nothing.
func measured(s step.Result) *junitProperties {
	var ps []junitProperty
	add := func(name string, v any) { ps = append(ps, junitProperty{name, fmt.Sprint(v)}) }
	if p := s.Probes; p != nil {
		add("sent", p.Sent)
		add("delivered", p.Delivered)
		add("answered", p.Answered)
		add("lost", p.Lost())
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1000) }
	if r := s.RelayRTT; r != nil {
		add("relay_rtt_median_ms", ms(r.Median))
	}
	if r := s.RTT; r != nil {
		add("rtt_min_ms", ms(r.Min))
		add("rtt_median_ms", ms(r.Median))
		add("rtt_max_ms", ms(r.Max))
		add("rtt_samples", r.Samples)
	}
	if g := s.Throughput; g != nil {
		add("offered_mbps", fmt.Sprintf("%.3f", float64(g.Offered)/1e6))
		add("goodput_mbps", fmt.Sprintf("%.3f", g.Goodput/1e6))
		add("datagrams_sent", g.Sent)
		add("datagrams_received", g.Received)
	}
	if ps == nil {
		return nil
	}
	return &junitProperties{ps}
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one test suite for the run, one test case per step.
func WriteJUnit(w io.Writer, r *runner.Report) error {
	suite := runSuite(r)
	doc := junitSuites{Time: suite.Time}
	doc.add(suite)
	return writeJUnit(w, doc)
}

func runSuite(r *runner.Report) junitSuite {
	suite := junitSuite{
		Name:      "natlab " + r.Lab,
		Tests:     len(r.Steps),
		Failures:  r.Failed(),
		Time:      seconds(r.Duration.Seconds()),
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	for _, s := range r.Steps {
		c := junitCase{
			Classname:  "natlab." + r.Lab,
			Name:       fmt.Sprintf("%02d %s", s.Index+1, s.Name),
			Time:       seconds(s.Duration.Seconds()),
			SystemOut:  s.Detail,
			Properties: measured(s),
		}
		if !s.Pass {
			c.Failure = &junitFailure{
				Message: fmt.Sprintf("expected %s, observed %s", s.Expect, s.Observed),
				Type:    string(s.Kind),
				Text:    s.Reason,
			}
		}
		suite.Cases = append(suite.Cases, c)
	}
	return suite
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }
