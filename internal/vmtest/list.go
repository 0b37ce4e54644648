package main

import (
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// The packages whose tests run in the VM, and which of their tests: see
// the file's own comments.
//
//go:embed tests.txt
var defaultList string

// A suite is one package's test binary and the tests of it to run.
type suite struct {
	Pkg  string // "./lab", relative to the module's root
	Run  string // -test.run; "" runs all
	Skip string // -test.skip; "" skips none
}

// Binary is the test binary's name: go test -c -o DIR/ names it so.
func (s suite) Binary() string { return path.Base(s.Pkg) + ".test" }

// Args are the test binary's flags, as go test would pass them, but one
// test at a time: the guest's CPUs share one TCG thread, so tests run side
// by side only slow each other down, and the ones that measure delays
// (a link's 25 ms, a relay's extra 160 ms) read what the others cost.
func (s suite) Args() []string {
	args := []string{"-test.v", "-test.count=1", "-test.parallel=1"}
	if s.Run != "" {
		args = append(args, "-test.run="+s.Run)
	}
	if s.Skip != "" {
		args = append(args, "-test.skip="+s.Skip)
	}
	return args
}

func (s suite) String() string {
	out := s.Pkg
	if s.Run != "" {
		out += " -run " + s.Run
	}
	if s.Skip != "" {
		out += " -skip " + s.Skip
	}
	return out
}

// parseList reads the test list's format: one package a line, "./pkg"
// then optionally "-run PATTERN" and "-skip PATTERN"; "#" starts a
// comment.
func parseList(text string) ([]suite, error) {
	var suites []suite
	seen := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		s, err := parseSuite(f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if other, ok := seen[s.Binary()]; ok {
			return nil, fmt.Errorf("line %d: %s and %s both build %s; one line per package", i+1, other, s.Pkg, s.Binary())
		}
		seen[s.Binary()] = s.Pkg
		suites = append(suites, s)
	}
	if len(suites) == 0 {
		return nil, fmt.Errorf("no packages")
	}
	return suites, nil
}

// parseOverride reads VM_TESTS: "./pkg" or "./pkg:PATTERN" entries
// separated by spaces, for running other tests once.
func parseOverride(text string) ([]suite, error) {
	var lines []string
	for _, e := range strings.Fields(text) {
		pkg, run, ok := strings.Cut(e, ":")
		if ok {
			lines = append(lines, pkg+" -run "+run)
		} else {
			lines = append(lines, pkg)
		}
	}
	return parseList(strings.Join(lines, "\n"))
}

func parseSuite(f []string) (suite, error) {
	s := suite{Pkg: f[0]}
	if p := strings.TrimPrefix(s.Pkg, "./"); !strings.HasPrefix(s.Pkg, "./") || p == "" || path.Clean(p) != p || strings.HasPrefix(p, "..") {
		return suite{}, fmt.Errorf("%q: want a package path relative to the module, like ./lab", s.Pkg)
	}
	for rest := f[1:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			return suite{}, fmt.Errorf("%s: %s needs a pattern", s.Pkg, rest[0])
		}
		var dst *string
		switch rest[0] {
		case "-run":
			dst = &s.Run
		case "-skip":
			dst = &s.Skip
		default:
			return suite{}, fmt.Errorf("%s: %q: want -run PATTERN or -skip PATTERN", s.Pkg, rest[0])
		}
		if *dst != "" {
			return suite{}, fmt.Errorf("%s: %s twice", s.Pkg, rest[0])
		}
		// The test binary checks each slash-separated part; the whole
		// must at least be a regular expression.
		if _, err := regexp.Compile(rest[1]); err != nil {
			return suite{}, fmt.Errorf("%s: %s %q: %w", s.Pkg, rest[0], rest[1], err)
		}
		*dst = rest[1]
	}
	return s, nil
}
