package cli

import (
	"bytes"
	"io"
	"strings"

	"golang.org/x/term"
)

// defaultWidth is the width output is wrapped to when it does not go to a
// terminal, whose width is not known.
const defaultWidth = 80

// outputWidth is the width of the terminal w writes to, or defaultWidth.
func outputWidth(w io.Writer) int {
	if f, ok := fileOf(w); ok && term.IsTerminal(int(f.Fd())) {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width >= 40 {
			return width
		}
	}
	return defaultWidth
}

// lineWrapper writes what is written to it to w with every line wider
// than width broken at spaces, each continuation indented four columns
// more than the line it continues, so that tables, traces and step
// details stay readable in a terminal of any width. A line without a
// space to break at stays as it is. Colour escapes take no columns.
// Complete lines are written at once; Flush writes the rest, such as a
// prompt.
type lineWrapper struct {
	w     io.Writer
	width int
	buf   []byte
}

func newLineWrapper(w io.Writer, width int) *lineWrapper {
	return &lineWrapper{w: w, width: width}
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := wrapLine(string(l.buf[:i]), l.width)
		l.buf = l.buf[i+1:]
		if _, err := io.WriteString(l.w, line+"\n"); err != nil {
			return len(p), err
		}
	}
}

// Flush writes what is left of an unfinished line.
func (l *lineWrapper) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}

// proseWidth is the width to wrap paragraphs to for w: 76 columns, or
// less if w wraps lines narrower.
func proseWidth(w io.Writer) int {
	if l, ok := w.(*lineWrapper); ok {
		return min(76, l.width)
	}
	return 76
}

// wrapLine breaks one line as lineWrapper does.
func wrapLine(line string, width int) string {
	if columns(line) <= width {
		return line
	}
	indent := len(line) - len(strings.TrimLeft(line, " "))
	more := strings.Repeat(" ", min(indent+4, width/2))
	var b strings.Builder
	for first := true; columns(line) > width; first = false {
		start := indent
		if !first {
			start = len(more)
		}
		cut := breakAt(line, start, width)
		if cut < 0 {
			break
		}
		b.WriteString(strings.TrimRight(line[:cut], " "))
		b.WriteByte('\n')
		line = more + strings.TrimLeft(line[cut:], " ")
	}
	b.WriteString(line)
	return b.String()
}

// breakAt is the byte offset of the last space after byte start before
// which line fits in width columns, or where nothing does, of the first
// space after start; -1 if there is none.
func breakAt(line string, start, width int) int {
	col, last, esc := 0, -1, false
	for i, r := range line {
		switch {
		case esc:
			esc = r < '@' || r > '~' || r == '['
			continue
		case r == '\033':
			esc = true
			continue
		}
		if r == ' ' && i > start {
			if col > width {
				if last >= 0 {
					return last
				}
				return i
			}
			last = i
		}
		col++
	}
	return last
}

// columns is how many columns line takes in a terminal: its characters
// without colour escapes (ESC [ ... letter).
func columns(line string) int {
	n, esc := 0, false
	for _, r := range line {
		switch {
		case esc:
			esc = r < '@' || r > '~' || r == '['
		case r == '\033':
			esc = true
		default:
			n++
		}
	}
	return n
}
