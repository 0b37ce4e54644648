package main

import (
	"fmt"
	"regexp"
	"strings"
)

// results reads the guest's console as it passes, and tells per suite
// which tests passed, failed and skipped, with each skip's reason: the
// guest runs no go test to summarise for it, and a package whose tests
// all skip on the guest's kernel proved nothing there.
type results struct {
	suites []*suiteResult
	cur    *suiteResult
	last   string // the last message a test logged, a skip's reason
}

type suiteResult struct {
	name                 string
	passed, failed       []string
	skipped              []string // "TestX: reason"
	packageFailed, ended bool
}

var (
	runLine    = regexp.MustCompile(`^natlab-vmtest: run (\S+)`)
	resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)
	logLine    = regexp.MustCompile(`^    \S+\.go:\d+: (.*)$`)
	suiteEnd   = regexp.MustCompile(`^natlab-vmtest: (ok  |FAIL) (\S+)`)
)

// line takes one line of the console.
func (r *results) line(s string) {
	if m := runLine.FindStringSubmatch(s); m != nil {
		r.cur = &suiteResult{name: strings.TrimSuffix(m[1], ":")}
		r.suites = append(r.suites, r.cur)
		return
	}
	if r.cur == nil {
		return
	}
	if m := suiteEnd.FindStringSubmatch(s); m != nil {
		r.cur.ended = true
		r.cur.packageFailed = m[1] == "FAIL"
		r.cur = nil
		return
	}
	// Only top-level tests count: a subtest's result line is indented.
	if m := resultLine.FindStringSubmatch(s); m != nil {
		switch m[1] {
		case "PASS":
			r.cur.passed = append(r.cur.passed, m[2])
		case "FAIL":
			r.cur.failed = append(r.cur.failed, m[2])
		case "SKIP":
			r.cur.skipped = append(r.cur.skipped, m[2]+": "+r.last)
		}
		r.last = ""
		return
	}
	if m := logLine.FindStringSubmatch(s); m != nil {
		r.last = m[1]
	}
}

// summary says how each suite went, and whether every one ran at least
// one test that passed.
func (r *results) summary() (string, bool) {
	var b strings.Builder
	ok := true
	for _, s := range r.suites {
		verdict := "ok  "
		switch {
		case s.packageFailed || len(s.failed) > 0 || !s.ended:
			verdict, ok = "FAIL", false
		case len(s.passed) == 0:
			verdict, ok = "NONE", false
		}
		fmt.Fprintf(&b, "%s %s: %d passed, %d failed, %d skipped\n", verdict, s.name, len(s.passed), len(s.failed), len(s.skipped))
		for _, f := range s.failed {
			fmt.Fprintf(&b, "       failed %s\n", f)
		}
		for _, sk := range s.skipped {
			fmt.Fprintf(&b, "       skipped %s\n", sk)
		}
		if verdict == "NONE" {
			fmt.Fprintf(&b, "       no test of %s passed on this kernel: it proves nothing here\n", s.name)
		}
	}
	return b.String(), ok
}
