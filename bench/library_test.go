package main

import (
	"testing"
	"time"

	"github.com/natlab/natlab/matrix"
	natreport "github.com/natlab/natlab/report"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

func TestStepPart(t *testing.T) {
	for _, c := range []struct{ kind, observed, want string }{
		{"send", "dropped", partSilence},
		{"send", "lost", partSilence},
		{"send", "delivered", partOther},
		{"stun", "symmetric", partSTUN},
		{"punch", "ok", partPunchOK},
		{"punch", "fail", partPunchNo},
		{"ice", "relay", partConnect},
		{"upgrade", "direct", partConnect},
		{"wait", "ok", partWait},
		{"throughput", "ok", partSending},
		{"table", "{mappings 4}", partOther},
	} {
		if got := stepPart(c.kind, c.observed); got != c.want {
			t.Errorf("stepPart(%q, %q) = %q, want %q", c.kind, c.observed, got, c.want)
		}
	}
}

func TestSplitRuns(t *testing.T) {
	s := time.Second
	runs := []natreport.Run{
		{Report: runner.Report{Up: 100 * time.Millisecond, Down: 50 * time.Millisecond, Steps: []step.Result{
			{Kind: "send", Observed: "dropped", Duration: s},
			{Kind: "punch", Observed: "fail", Duration: 2 * s},
		}}},
		{Report: runner.Report{Up: 100 * time.Millisecond, Down: 50 * time.Millisecond, Steps: []step.Result{
			{Kind: "send", Observed: "dropped", Duration: s},
		}}},
	}
	got := splitRuns(runs, 5*s)
	want := []part{
		{partPunchNo, 2 * s, 1},
		{partSilence, 2 * s, 2},
		// 5s of wall less 4s of steps and 0.3s of up and down.
		{partProcess, 700 * time.Millisecond, 1},
		{partUp, 200 * time.Millisecond, 2},
		{partDown, 100 * time.Millisecond, 2},
	}
	checkParts(t, got, want)
}

func TestSplitCells(t *testing.T) {
	ms := time.Millisecond
	got := splitCells([]matrix.Cell{
		{Punched: true, Up: 40 * ms, Punch: 5 * ms, Down: 20 * ms},
		{Punched: false, Up: 40 * ms, Punch: 2000 * ms, Relay: 30 * ms, Down: 20 * ms},
	})
	want := []part{
		{partPunchNo, 2000 * ms, 1},
		{partUp, 80 * ms, 2},
		{partDown, 40 * ms, 2},
		{partRelay, 30 * ms, 1},
		{partPunchOK, 5 * ms, 1},
	}
	checkParts(t, got, want)
}

func checkParts(t *testing.T, got, want []part) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("parts = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("part %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
