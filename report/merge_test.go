package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/shard"
	"github.com/natlab/natlab/matrix"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// runs are five scenario runs: three pass, one fails a step, one never
// got its lab up.
func runs() []Run {
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	result := func(i int, name string, pass bool) step.Result {
		s := step.Result{Index: i, Name: name, Kind: "stun", Expect: "ok", Observed: "ok", Pass: pass, Duration: 5 * time.Millisecond, Detail: name + " seen"}
		if !pass {
			s.Observed, s.Reason = "fail", "no answer within 1s"
		}
		return s
	}
	run := func(lab string, steps ...step.Result) Run {
		r := Run{Report: runner.Report{Lab: lab, Source: "builtin:" + lab, Started: at, Duration: time.Second, Steps: steps, Passed: true}}
		r.Passed = r.Failed() == 0
		return r
	}
	broken := run("e")
	broken.Steps, broken.Passed, broken.Error = []step.Result{}, false, "bringing lab e up: file exists"
	return []Run{
		run("a", result(0, "stun from alice", true)),
		run("b", result(0, "stun from alice", true), result(1, "stun from bob", false)),
		run("c", result(0, "stun from carol", true)),
		run("d", result(0, "stun from dave", true)),
		broken,
	}
}

func suiteJSON(t *testing.T, s *Suite) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSuiteJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func shardInputs(t *testing.T, n int, order ...int) []Input {
	t.Helper()
	var in []Input
	for _, i := range order {
		sh := shard.Shard{Index: i, Count: n}
		in = append(in, Input{Name: "shard" + sh.String(), Data: suiteJSON(t, NewSuite(sh, shard.Select(sh, runs())))})
	}
	return in
}

// Merging the shards of a run, in any order, gives back exactly the JSON
// of the same run unsplit, and the merged JUnit is one <testsuites>.
func TestMergeShards(t *testing.T) {
	whole := suiteJSON(t, NewSuite(shard.Shard{}, runs()))
	for _, in := range [][]Input{
		shardInputs(t, 2, 1, 2),
		shardInputs(t, 2, 2, 1),
		shardInputs(t, 3, 3, 1, 2),
		shardInputs(t, 7, 1, 2, 3, 4, 5, 6, 7), // two shards are empty
		shardInputs(t, 1, 1),
	} {
		m, err := Merge(in)
		if err != nil {
			t.Fatalf("%d shards: %v", len(in), err)
		}
		var b bytes.Buffer
		if err := m.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), whole) {
			t.Errorf("%d shards merged:\n%s\nwant the unsplit run:\n%s", len(in), b.Bytes(), whole)
		}
		if m.Passed() || m.Summary() != "5 scenarios (2 failed), 5 steps (1 failed)" {
			t.Errorf("%d shards: passed %v, summary %q", len(in), m.Passed(), m.Summary())
		}
	}
	m, err := Merge(shardInputs(t, 2, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "merged.junit.xml", b.Bytes())
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil || len(doc.Suites) != 5 || doc.Tests != 6 || doc.Failures != 1 || doc.Errors != 1 {
		t.Errorf("the merged JUnit does not read back as 5 suites, 6 tests, 1 failure, 1 error: %v %+v", err, doc)
	}
}

// Single-run JSON files (natlab run with one scenario) and JUnit files
// merge too, in the order given.
func TestMergeWholeRuns(t *testing.T) {
	var jsonIn, junitIn []Input
	for _, r := range runs()[:3] {
		var j, x bytes.Buffer
		if err := WriteJSON(&j, &r.Report); err != nil {
			t.Fatal(err)
		}
		if err := WriteJUnit(&x, &r.Report); err != nil {
			t.Fatal(err)
		}
		jsonIn = append(jsonIn, Input{r.Lab + ".json", j.Bytes()})
		junitIn = append(junitIn, Input{r.Lab + ".xml", x.Bytes()})
	}
	want := suiteJSON(t, NewSuite(shard.Shard{}, runs()[:3]))
	m, err := Merge(jsonIn)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	m.WriteJSON(&b)
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("merged single runs:\n%s\nwant:\n%s", b.Bytes(), want)
	}
	var fromJSON bytes.Buffer
	m.WriteJUnit(&fromJSON)

	m, err = Merge(junitIn)
	if err != nil {
		t.Fatal(err)
	}
	var fromJUnit bytes.Buffer
	m.WriteJUnit(&fromJUnit)
	if fromJUnit.String() != fromJSON.String() {
		t.Errorf("JUnit merged from JUnit:\n%s\ndiffers from JUnit merged from JSON:\n%s", fromJUnit.String(), fromJSON.String())
	}
	if err := m.WriteJSON(&b); err != ErrNoJSON {
		t.Errorf("JSON from JUnit inputs: %v, want ErrNoJSON", err)
	}
	if m.Passed() || !strings.Contains(m.Summary(), "3 test suites, 4 tests (1 failures") {
		t.Errorf("JUnit merge: passed %v, %s", m.Passed(), m.Summary())
	}
}

func TestMergeMatrixShards(t *testing.T) {
	relayed := true
	var cells []matrix.Cell
	for _, r := range nat.Types {
		for _, c := range nat.Types {
			cells = append(cells, matrix.Cell{Row: string(r), Column: c, Expected: true, Punched: r != c, Relayed: &relayed, Done: true})
		}
	}
	var in []Input
	for i := 1; i <= 3; i++ {
		sh := shard.Shard{Index: i, Count: 3}
		var b bytes.Buffer
		WriteMatrixJSON(&b, NewMatrix(sh, shard.Select(sh, cells), time.Duration(i)*time.Second))
		in = append(in, Input{sh.String(), b.Bytes()})
	}
	m, err := Merge(in)
	if err != nil {
		t.Fatal(err)
	}
	var got, want bytes.Buffer
	m.WriteJSON(&got)
	WriteMatrixJSON(&want, NewMatrix(shard.Shard{}, cells, 3*time.Second))
	if got.String() != want.String() {
		t.Errorf("merged matrix:\n%s\nwant:\n%s", got.String(), want.String())
	}
	var b bytes.Buffer
	if err := m.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "matrix.junit.xml", b.Bytes())
	if m.Passed() || m.Summary() != "16 matrix cells, 4 unexpected" {
		t.Errorf("matrix merge: passed %v, %s", m.Passed(), m.Summary())
	}
}

func TestMergeRefuses(t *testing.T) {
	one := func(name string, sh shard.Shard, rs []Run) Input {
		return Input{name, suiteJSON(t, NewSuite(sh, rs))}
	}
	all := runs()
	var single bytes.Buffer
	WriteJSON(&single, &all[0].Report)
	var junit bytes.Buffer
	WriteJUnit(&junit, &all[0].Report)
	for _, tc := range []struct {
		name string
		in   []Input
		want string
	}{
		{"nothing", nil, "no files"},
		{"a missing shard", shardInputs(t, 3, 1, 3), "shard 2/3 is missing"},
		{"a shard twice", append(shardInputs(t, 2, 1, 2), shardInputs(t, 2, 2)...), "shard2/2 and shard2/2 are both shard 2/2"},
		{"different counts", append(shardInputs(t, 2, 1), shardInputs(t, 3, 2)...), "shards of one run share their count"},
		{"shards of different lists", []Input{
			one("x", shard.Shard{Index: 1, Count: 2}, all[:1]),
			one("y", shard.Shard{Index: 2, Count: 2}, all[1:4]),
		}, "did not run over the same list"},
		{"shards and a whole run", append(shardInputs(t, 2, 1, 2), one("whole", shard.Shard{}, all[:1])), "whole is not a shard but shard1/2 is"},
		{"a scenario twice", []Input{one("x", shard.Shard{}, all[:2]), {"y", single.Bytes()}}, "scenario a is in both x and y"},
		{"JSON and JUnit", []Input{{"r.json", single.Bytes()}, {"r.xml", junit.Bytes()}}, "r.xml is JUnit XML but r.json is natlab run JSON"},
		{"a JUnit suite twice", []Input{{"x.xml", junit.Bytes()}, {"y.xml", junit.Bytes()}}, `test suite "natlab a" is in both x.xml and y.xml`},
		{"a newer format", []Input{{"new.json", []byte(`{"format": "natlab-suite/2", "runs": []}`)}}, `new.json is in format "natlab-suite/2"`},
		{"other JSON", []Input{{"o.json", []byte(`{"name": "x"}`)}}, "o.json is JSON but not a natlab run or matrix report"},
		{"not JSON", []Input{{"t.txt", []byte("PASS")}}, "t.txt is neither natlab's JSON nor JUnit XML"},
		{"broken XML", []Input{{"b.xml", []byte("<testsuites><testsuite>")}}, "reading b.xml as JUnit"},
		{"a bad shard", []Input{{"s.json", []byte(`{"format": "natlab-suite/1", "shard": {"index": 3, "count": 2}, "runs": []}`)}}, "reading s.json: shard 3/2"},
	} {
		m, err := Merge(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Merge = %v, %v; want an error saying %q", tc.name, m, err, tc.want)
		}
	}
}
