package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/natlab/natlab/goodput"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

var update = flag.Bool("update", false, "rewrite testdata goldens")

func sample() *runner.Report {
	return &runner.Report{
		Lab: "symmetric", Source: "scenarios/symmetric.yaml",
		Started:  time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC),
		Duration: 3500 * time.Millisecond,
		Steps: []step.Result{
			{Index: 0, Name: "stun from alice", Kind: "stun", Expect: "ok", Observed: "ok", Pass: true, Duration: 2 * time.Millisecond, Detail: "alice 192.168.1.2:40000 is 203.0.113.1:51234 to the STUN server"},
			{Index: 1, Name: "punch alice bob", Kind: "punch", Expect: "ok", Observed: "fail", Pass: false, Duration: 3 * time.Second, Detail: "alice and bob found no direct path within 3s", Reason: "alice: no direct path within 3s: alice sent 150 punches & heard <nothing>"},
			{Index: 2, Name: "relay alice bob", Kind: "relay", Expect: "ok", Observed: "ok", Pass: true, Duration: 20 * time.Millisecond,
				RTT: &step.RTT{Min: 180 * time.Millisecond, Median: 181 * time.Millisecond, Max: 183 * time.Millisecond, Samples: 5}},
			{Index: 3, Name: "send alice -> bob", Kind: "send", Expect: "delivered", Observed: "delivered", Pass: true, Duration: 1500 * time.Millisecond,
				Probes: &step.Probes{Sent: 50, Delivered: 45, Answered: 41},
				RTT:    &step.RTT{Min: 99 * time.Millisecond, Median: 100500 * time.Microsecond, Max: 102 * time.Millisecond, Samples: 41}},
			{Index: 4, Name: "upgrade alice bob", Kind: "upgrade", Expect: "direct", Observed: "direct", Pass: true, Duration: 1600 * time.Millisecond,
				RelayRTT: &step.RTT{Min: 161 * time.Millisecond, Median: 162 * time.Millisecond, Max: 170 * time.Millisecond, Samples: 26},
				RTT:      &step.RTT{Min: 40 * time.Millisecond, Median: 41 * time.Millisecond, Max: 42 * time.Millisecond, Samples: 16}},
			{Index: 5, Name: "throughput alice -> bob relay", Kind: "throughput", Expect: "ok", Observed: "ok", Pass: true, Duration: 2300 * time.Millisecond,
				Throughput: &goodput.Result{Offered: 15e6, Sent: 1091, Received: 272, Bytes: 326400, Span: 1377 * time.Millisecond, Goodput: 1.89e6}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		os.WriteFile(path, got, 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", path, got)
	}
}

func TestJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.junit.xml", b.Bytes())
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil || doc.Failures != 1 || len(doc.Suites[0].Cases) != 6 || doc.Suites[0].Cases[3].Properties == nil || doc.Suites[0].Cases[5].Properties == nil {
		t.Errorf("the JUnit does not read back: %v %+v", err, doc)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.json", b.Bytes())
}
