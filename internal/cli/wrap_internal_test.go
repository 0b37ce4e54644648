package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestLineWrapper(t *testing.T) {
	trace := "           home: 17:35:08.940554  lan0  -> wan0  udp 192.168.1.2:5000 > 203.0.113.10:5000  =>  203.0.113.50:5000 > 203.0.113.10:5000  (source rewritten)"
	var b bytes.Buffer
	w := newLineWrapper(&b, 80)
	w.Write([]byte("short line\n" + trace + "\n\033[1mAct I: The address problem\033[0m\n"))
	w.Write([]byte(strings.Repeat("x", 100) + "\n[Enter: the next act] "))
	if strings.HasSuffix(b.String(), "[Enter: the next act] ") {
		t.Errorf("an unfinished line was written before Flush")
	}
	w.Flush()
	lines := strings.Split(b.String(), "\n")
	want := []string{
		"short line",
		"           home: 17:35:08.940554  lan0  -> wan0  udp 192.168.1.2:5000 >",
		"               203.0.113.10:5000  =>  203.0.113.50:5000 > 203.0.113.10:5000",
		"               (source rewritten)",
		"\033[1mAct I: The address problem\033[0m",
		strings.Repeat("x", 100), // nowhere to break
		"[Enter: the next act] ",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range lines[:5] {
		if columns(l) > 80 {
			t.Errorf("%d columns: %q", columns(l), l)
		}
	}
	if got := columns("\033[2m[Enter]\033[0m µs"); got != 10 {
		t.Errorf("columns = %d, want 10", got)
	}
}
