package topology

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a scenario file.
type Error struct {
	// Pos is where the problem is; Line is 0 when it concerns the whole
	// file, such as an empty file or a missing top-level key.
	Pos Position
	// Msg names the offending thing by its path in the file and says what
	// would be accepted.
	Msg string

	// err is the underlying cause, such as an *fs.PathError, so that callers
	// can still test for fs.ErrNotExist.
	err error
}

// Error formats the problem as FILE:LINE:COL: MSG, the form editors and
// terminals turn into links.
func (e *Error) Error() string {
	if pos := e.Pos.String(); pos != "" {
		return pos + ": " + e.Msg
	}
	return e.Msg
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// String formats the position as FILE:LINE:COL, leaving out what is unknown.
func (p Position) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Column))
	}
	return b.String()
}

// ErrorList is every problem found in one scenario file, sorted by position.
type ErrorList []*Error

// Error formats one problem per line.
func (l ErrorList) Error() string {
	if len(l) == 0 {
		return "no errors"
	}
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.As finds an *Error in an
// ErrorList.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Err returns the list sorted by line then column without duplicates, or
// nil when it is empty. It returns a nil error, not an empty list, so that
// callers can compare with nil.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l.sorted()
}

// sorted returns a sorted copy without duplicates. Duplicates arise when an
// alias or merge key repeats the same bad value in several places.
func (l ErrorList) sorted() ErrorList {
	out := slices.Clone(l)
	slices.SortStableFunc(out, func(a, b *Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Column - b.Pos.Column
	})
	type key struct {
		pos Position
		msg string
	}
	seen := make(map[key]bool, len(out))
	kept := out[:0]
	for _, e := range out {
		k := key{e.Pos, e.Msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		kept = append(kept, e)
	}
	return kept
}

// errorf adds a problem at pos. Messages quote what the file says, which
// may hold any character; control characters are escaped so that each
// problem stays on one line of a terminal.
func (l *ErrorList) errorf(pos Position, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: escapeControls(fmt.Sprintf(format, args...))})
}

// warnf adds a warning at pos: the file is fine, but natlab says how it
// read something its author may not have meant.
func (l *ErrorList) warnf(pos Position, format string, args ...any) {
	l.errorf(pos, "warning: "+format, args...)
}

// escapeControls writes control characters the way Go source would.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !isControl(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func isControl(r rune) bool {
	return r < 0x20 || 0x7f <= r && r < 0xa0 || r == '\u2028' || r == '\u2029'
}
