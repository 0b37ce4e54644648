package linkcond

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rate
		err  string
	}{
		{"10mbit", 10_000_000, ""},
		{"1.5mbit", 1_500_000, ""},
		{"500kbit", 500_000, ""},
		{"1gbit", 1_000_000_000, ""},
		{"64000bit", 64_000, ""},
		{" 10Mbit ", 10_000_000, ""},
		{"10mbps", 0, "invalid rate"},
		{"10MB", 0, "invalid rate"},
		{"10", 0, "invalid rate"},
		{"-1mbit", 0, "invalid rate"},
		{"mbit", 0, "invalid rate"},
		{"1000gbit", 0, "more than the maximum"},
	} {
		got, err := ParseRate(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRate(%q) = %v, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestRateString(t *testing.T) {
	for _, c := range []struct {
		in   Rate
		want string
	}{{10_000_000, "10mbit"}, {1_500_000, "1500kbit"}, {1_000_000_000, "1gbit"}, {64_001, "64001bit"}, {0, "0bit"}} {
		if got := c.in.String(); got != c.want {
			t.Errorf("Rate(%d).String() = %q, want %q", c.in, got, c.want)
		}
		if c.in != 0 {
			if back, err := ParseRate(c.want); err != nil || back != c.in {
				t.Errorf("ParseRate(%q) = %v, %v; want %v back", c.want, back, err, c.in)
			}
		}
	}
}

func TestParsePercent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1%", 1, true}, {"0.1%", 0.1, true}, {" 10 %", 10, true}, {"100%", 100, true},
		{"150%", 150, true}, // in range is Validate's to say
		{"1", 0, false}, {"0.01", 0, false}, {"%", 0, false}, {"NaN%", 0, false}, {"x%", 0, false},
	} {
		got, err := ParsePercent(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30ms", 30 * time.Millisecond, true}, {"1.5s", 1500 * time.Millisecond, true},
		{"250us", 250 * time.Microsecond, true}, {"0", 0, true}, {"-5ms", -5 * time.Millisecond, true},
		{"30", 0, false}, {"30ns", 0, false}, {"1h", 0, false}, {"2m", 0, false}, {"ms", 0, false},
	} {
		got, err := ParseDuration(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{{0, "0"}, {30 * time.Millisecond, "30ms"}, {2 * time.Second, "2s"}, {1500 * time.Millisecond, "1500ms"}, {250 * time.Microsecond, "250us"}, {1500 * time.Microsecond, "1.5ms"}} {
		if got := FormatDuration(c.in); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func both(d Direction) Link { return Link{Up: d, Down: d} }

func TestValidate(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		l    Link
		err  string
	}{
		{"perfect wire", Link{}, ""},
		{"everything", Link{Up: Direction{Delay: 30 * ms, Jitter: 5 * ms, Loss: 1, Duplicate: 0.1, Reorder: 1, Rate: 10_000_000}, Down: Direction{Rate: 20_000_000}, MTU: 1400}, ""},
		{"loss 100%", both(Direction{Loss: 100}), ""},
		{"loss over 100%", both(Direction{Loss: 100.5}), "loss 100.5% is outside 0-100%"},
		{"negative duplicate", both(Direction{Duplicate: -1}), "duplicate -1% is outside"},
		{"negative delay", both(Direction{Delay: -ms}), "delay -1ms is negative"},
		{"long delay", both(Direction{Delay: 11 * time.Second}), "longer than the maximum 10s"},
		{"jitter over delay", both(Direction{Delay: 5 * ms, Jitter: 6 * ms}), "jitter 6ms is more than the delay 5ms"},
		{"reorder without delay", both(Direction{Reorder: 1}), "reorder 1% needs a delay"},
		{"slow rate", both(Direction{Rate: 1000}), "rate 1kbit is outside 8kbit-100gbit"},
		{"small mtu", Link{MTU: 575}, "mtu 575 is outside 576-9000"},
		{"big mtu", Link{MTU: 9001}, "mtu 9001 is outside"},
		{"one direction named", Link{Down: Direction{Loss: 101}}, "down: loss 101%"},
	} {
		err := c.l.Validate()
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.err)
		}
	}
}

func TestString(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		l    Link
		want string
	}{
		{Link{}, "none"},
		{Link{MTU: 1400}, "mtu 1400"},
		{both(Direction{Delay: 30 * ms, Jitter: 5 * ms, Loss: 1, Duplicate: 0.1, Reorder: 1, Rate: 10_000_000}), "delay 30ms, jitter 5ms, loss 1%, duplicate 0.1%, reorder 1%, rate 10mbit"},
		{Link{Up: Direction{Rate: 1_000_000}, Down: Direction{Rate: 20_000_000}, MTU: 1400}, "up: rate 1mbit; down: rate 20mbit; mtu 1400"},
		{Link{Down: Direction{Loss: 2}}, "up: none; down: loss 2%"},
	} {
		if got := c.l.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestChangeApply(t *testing.T) {
	ms := time.Millisecond
	d := func(x time.Duration) *time.Duration { return &x }
	f := func(x float64) *float64 { return &x }
	r := func(x Rate) *Rate { return &x }
	mtu := 1400
	start := Link{Up: Direction{Delay: 30 * ms, Loss: 1}, Down: Direction{Delay: 30 * ms, Loss: 1}}
	for _, c := range []struct {
		name string
		c    Change
		from Link
		want Link
	}{
		{"nothing named keeps all", Change{}, start, start},
		{"both", Change{Both: Setting{Delay: d(100 * ms)}}, start, both(Direction{Delay: 100 * ms, Loss: 1})},
		{"a direction wins over both", Change{Both: Setting{Rate: r(10_000_000)}, Up: Setting{Rate: r(1_000_000)}}, Link{},
			Link{Up: Direction{Rate: 1_000_000}, Down: Direction{Rate: 10_000_000}}},
		{"one direction only", Change{Down: Setting{Loss: f(0)}}, start, Link{Up: start.Up, Down: Direction{Delay: 30 * ms}}},
		{"mtu", Change{MTU: &mtu}, Link{}, Link{MTU: 1400}},
		{"everything", Change{Both: Setting{Delay: d(ms), Jitter: d(ms), Loss: f(1), Duplicate: f(2), Reorder: f(3), Rate: r(8000)}}, Link{},
			both(Direction{Delay: ms, Jitter: ms, Loss: 1, Duplicate: 2, Reorder: 3, Rate: 8000})},
	} {
		if got := c.c.Apply(c.from); got != c.want {
			t.Errorf("%s: Apply = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestValidateNamesTheCondition checks that Validate's error names the
// condition at fault and the direction that has it, as a file writes
// them, which the parser points at.
func TestValidateNamesTheCondition(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		l        Link
		dir, key string
	}{
		{Link{MTU: 100}, "", "mtu"},
		{both(Direction{Loss: 101}), "", "loss"},
		{both(Direction{Duplicate: -1}), "", "duplicate"},
		{both(Direction{Delay: -ms}), "", "delay"},
		{both(Direction{Delay: ms, Jitter: 2 * ms}), "", "jitter"},
		{both(Direction{Reorder: 1}), "", "reorder"},
		{both(Direction{Rate: 1}), "", "rate"},
		{Link{Up: Direction{Loss: 1}, Down: Direction{Loss: 101}}, "down", "loss"},
		{Link{Up: Direction{Jitter: ms}, Down: Direction{Delay: ms, Jitter: ms}}, "up", "jitter"},
	} {
		var e *Error
		if err := c.l.Validate(); !errors.As(err, &e) {
			t.Errorf("%v: Validate() = %v, not an *Error", c.l, err)
			continue
		}
		if e.Direction != c.dir || e.Key != c.key {
			t.Errorf("%v: %q names direction %q and key %q, want %q and %q", c.l, e, e.Direction, e.Key, c.dir, c.key)
		}
	}
	if err := (Direction{Loss: 1}).Validate(); err != nil {
		t.Errorf("Direction.Validate of a good direction: %#v, want nil", err)
	}
}

// TestNewView checks the JSON the views show of a link: each direction
// always, conditions as a file writes them, nothing for a perfect wire.
func TestNewView(t *testing.T) {
	ms := time.Millisecond
	if v := NewView(Link{}); v != nil {
		t.Errorf("NewView of a perfect wire = %+v, want nil", v)
	}
	for _, c := range []struct {
		l    Link
		want string
	}{
		{Link{MTU: 1400}, `{"up":{},"down":{},"mtu":1400,"text":"mtu 1400"}`},
		{both(Direction{Delay: 30 * ms, Jitter: 5 * ms, Loss: 1, Duplicate: 0.1, Reorder: 1, Rate: 10_000_000}),
			`{"up":{"delay":"30ms","jitter":"5ms","loss":1,"duplicate":0.1,"reorder":1,"rate":"10mbit"},` +
				`"down":{"delay":"30ms","jitter":"5ms","loss":1,"duplicate":0.1,"reorder":1,"rate":"10mbit"},` +
				`"text":"delay 30ms, jitter 5ms, loss 1%, duplicate 0.1%, reorder 1%, rate 10mbit"}`},
		{Link{Up: Direction{Rate: 1_000_000}, Down: Direction{Rate: 20_000_000, Delay: 1500 * time.Microsecond}},
			`{"up":{"rate":"1mbit"},"down":{"delay":"1.5ms","rate":"20mbit"},"text":"up: rate 1mbit; down: delay 1.5ms, rate 20mbit"}`},
	} {
		data, err := json.Marshal(NewView(c.l))
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != c.want {
			t.Errorf("view of %v:\n got %s\nwant %s", c.l, data, c.want)
		}
	}
}

func TestChangeCleared(t *testing.T) {
	ms := time.Millisecond
	d := func(x time.Duration) *time.Duration { return &x }
	r := func(x Rate) *Rate { return &x }
	from := Link{Up: Direction{Delay: 30 * ms, Loss: 1, Rate: 8000}, Down: Direction{Jitter: ms, Delay: 2 * ms, Duplicate: 3, Reorder: 4}, MTU: 1400}
	for _, c := range []Change{
		{},
		{Both: Setting{Delay: d(5 * ms)}},
		{Up: Setting{Rate: r(1_000_000)}, Down: Setting{Delay: d(ms)}},
	} {
		if got, want := c.Cleared().Apply(from), c.Apply(Link{}); got != want {
			t.Errorf("%+v cleared over %v = %v, want %v", c, from, got, want)
		}
	}
}

func TestChangeString(t *testing.T) {
	d := func(x time.Duration) *time.Duration { return &x }
	f := func(x float64) *float64 { return &x }
	r := func(x Rate) *Rate { return &x }
	m := func(x int) *int { return &x }
	for _, c := range []struct {
		c    Change
		want string
	}{
		{Change{}, "nothing"},
		{Change{Both: Setting{Delay: d(100 * time.Millisecond), Loss: f(0)}}, "delay 100ms, loss 0%"},
		{Change{Up: Setting{Rate: r(1_000_000)}, Down: Setting{Rate: r(0)}, MTU: m(1400)}, "up: rate 1mbit; down: rate none; mtu 1400"},
		{Change{MTU: m(0)}, "mtu default"},
	} {
		if got := c.c.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestTo(t *testing.T) {
	l := Link{Up: Direction{Delay: time.Millisecond, Rate: 8000}, Down: Direction{Loss: 3}, MTU: 1400}
	from := Link{Up: Direction{Jitter: time.Microsecond, Duplicate: 1}, Down: Direction{Reorder: 2, Delay: time.Second}, MTU: 9000}
	if got := To(l).Apply(from); got != l {
		t.Errorf("To(%v) over %v = %v", l, from, got)
	}
}
