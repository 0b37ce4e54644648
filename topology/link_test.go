package topology

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/linkcond"
)

// linkSample is a valid value of each format a condition takes.
var linkSample = map[reflect.Type]string{
	reflect.TypeFor[LinkDuration](): "7ms",
	reflect.TypeFor[Percent]():      "3%",
	reflect.TypeFor[Rate]():         "2mbit",
	reflect.TypeFor[MTU]():          "1400",
}

// TestLinkConditionsCoverLink checks that every field of linkcond.Link,
// and of each of its directions, is set by exactly one condition of
// LinkConditions, and that a condition of a direction sets it in that
// direction alone: a field added to linkcond without a key, which no file
// could set, fails here.
func TestLinkConditionsCoverLink(t *testing.T) {
	setBy := make(map[string][]string)
	for i := range LinkConditions {
		k := &LinkConditions[i]
		sample, ok := linkSample[k.Format]
		if !ok {
			t.Fatalf("%s: no sample value of %s", k.Key, k.Format)
		}
		var c linkcond.Change
		if err := k.Set(&c, "", sample); err != nil {
			t.Fatalf("%s: Set(%q): %v", k.Key, sample, err)
		}
		l := c.Apply(linkcond.Link{})
		for _, f := range changedFields(reflect.ValueOf(l), "") {
			setBy[f] = append(setBy[f], k.Key)
		}
		if k.Whole {
			if err := k.Set(&c, LinkUp, sample); err == nil {
				t.Errorf("%s is the whole link's, and Set takes it for up", k.Key)
			}
			continue
		}
		for _, dir := range []string{LinkUp, LinkDown} {
			var c linkcond.Change
			if err := k.Set(&c, dir, sample); err != nil {
				t.Fatalf("%s: Set(%s, %q): %v", k.Key, dir, sample, err)
			}
			got := changedFields(reflect.ValueOf(c.Apply(linkcond.Link{})), "")
			want := []string{strings.ToUpper(dir[:1]) + dir[1:] + "." + knobFieldName(k.Key)}
			if !slices.Equal(got, want) {
				t.Errorf("%s for %s sets %v, want %v", k.Key, dir, got, want)
			}
		}
	}
	for _, f := range changedFields(reflect.ValueOf(allSet()), "") {
		if len(setBy[f]) != 1 {
			t.Errorf("linkcond.Link's %s is set by the conditions %v, want exactly one", f, setBy[f])
		}
	}
}

// allSet is a Link with every field set, so that changedFields lists them
// all.
func allSet() linkcond.Link {
	d := linkcond.Direction{Delay: 1, Jitter: 1, Loss: 1, Duplicate: 1, Reorder: 1, Rate: 1}
	l := linkcond.Link{Up: d, Down: d, MTU: 1}
	// A field added to Direction or Link without being set here is zero,
	// and would be missed: count them.
	for _, v := range []reflect.Value{reflect.ValueOf(d), reflect.ValueOf(l)} {
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				panic("allSet leaves " + v.Type().Field(i).Name + " unset")
			}
		}
	}
	return l
}

// changedFields names the fields of struct v that are not zero, those of
// nested structs as Up.Delay.
func changedFields(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f, name := v.Field(i), prefix+v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.Struct:
			out = append(out, changedFields(f, name+".")...)
		case !f.IsZero():
			out = append(out, name)
		}
	}
	return out
}

// TestLinkInTheFormat checks that link: takes the keys of LinkConditions
// in order, then up and down, which take those of a direction.
func TestLinkInTheFormat(t *testing.T) {
	var all, dir []string
	for _, k := range LinkConditions {
		all = append(all, k.Key)
		if !k.Whole {
			dir = append(dir, k.Key)
		}
		if LinkConditionNamed(k.Key) != &LinkConditions[slices.Index(all, k.Key)] {
			t.Errorf("LinkConditionNamed(%q) does not find it", k.Key)
		}
	}
	if got, want := formatKeys[LinkEntry](), append(all, LinkUp, LinkDown); !slices.Equal(got, want) {
		t.Errorf("link: takes %v, want %v", got, want)
	}
	if got := formatKeys[LinkDirection](); !slices.Equal(got, dir) {
		t.Errorf("up: and down: take %v, want %v", got, dir)
	}
	for _, kind := range []any{ServerNode{}, NATNode{}, HostNode{}} {
		f, ok := reflect.TypeOf(kind).FieldByName("Link")
		if !ok || f.Tag.Get("yaml") != "link" || f.Type != reflect.TypeFor[LinkEntry]() {
			t.Errorf("%T has no link: of LinkEntry", kind)
		}
	}
}

// TestParseLink reads link: maps into the conditions they give, and
// refuses bad ones at the value at fault.
func TestParseLink(t *testing.T) {
	ms := time.Millisecond
	both := func(d linkcond.Direction) linkcond.Link { return linkcond.Link{Up: d, Down: d} }
	for _, tc := range []struct {
		name, link string
		want       linkcond.Link
		// err is the message; at is what the file holds where it points.
		err, at string
	}{
		{"none", `{}`, linkcond.Link{}, "", ""},
		{"every condition", `{delay: 30ms, jitter: 5ms, loss: 1%, duplicate: 0.1%, reorder: 1%, rate: 10mbit, mtu: 1400}`,
			linkcond.Link{
				Up:   linkcond.Direction{Delay: 30 * ms, Jitter: 5 * ms, Loss: 1, Duplicate: 0.1, Reorder: 1, Rate: 10_000_000},
				Down: linkcond.Direction{Delay: 30 * ms, Jitter: 5 * ms, Loss: 1, Duplicate: 0.1, Reorder: 1, Rate: 10_000_000},
				MTU:  1400}, "", ""},
		{"units as linkcond has them", `{delay: 1.5s, jitter: 250us, rate: 1.5Mbit, loss: " 2 %"}`,
			both(linkcond.Direction{Delay: 1500 * ms, Jitter: 250 * time.Microsecond, Rate: 1_500_000, Loss: 2}), "", ""},
		{"zero", `{delay: 0, loss: 0%}`, linkcond.Link{}, "", ""},
		{"quoted mtu", `{mtu: "9000"}`, linkcond.Link{MTU: 9000}, "", ""},
		// IPv6 would not take it; an IPv4-only lab may (mtu6.yaml refuses it in a dual-stack one).
		{"mtu below IPv6's least", `{mtu: 1000}`, linkcond.Link{MTU: 1000}, "", ""},
		{"one direction over both", `{rate: 10mbit, up: {rate: 1mbit}}`,
			linkcond.Link{Up: linkcond.Direction{Rate: 1_000_000}, Down: linkcond.Direction{Rate: 10_000_000}}, "", ""},
		{"one direction only", `{down: {loss: 2%, delay: 10ms, reorder: 1%}}`,
			linkcond.Link{Down: linkcond.Direction{Loss: 2, Delay: 10 * ms, Reorder: 1}}, "", ""},
		{"asymmetric delays", `{delay: 10ms, jitter: 2ms, down: {delay: 40ms}}`,
			linkcond.Link{Up: linkcond.Direction{Delay: 10 * ms, Jitter: 2 * ms}, Down: linkcond.Direction{Delay: 40 * ms, Jitter: 2 * ms}}, "", ""},

		{"bytes per second", `{rate: 10mbps}`, linkcond.Link{},
			`nodes.alice.link.rate: invalid rate "10mbps"; want a rate such as 500kbit, 10mbit or 1gbit; for 10 megabits per second, write 10mbit`, "10mbps"},
		{"a delay without unit", `{delay: 30}`, linkcond.Link{}, "nodes.alice.link.delay: 30 has no unit; want " + linkcond.DurationWant, "30"},
		{"a loss without sign", `{loss: 0.5}`, linkcond.Link{}, "nodes.alice.link.loss: 0.5 has no unit; want " + linkcond.PercentWant, "0.5"},
		{"minutes", `{delay: 1m}`, linkcond.Link{}, `nodes.alice.link.delay: invalid duration "1m"; want ` + linkcond.DurationWant, "1m"},
		{"loss over 100%", `{delay: 1ms, loss: 101%}`, linkcond.Link{}, "nodes.alice.link: loss 101% is outside 0-100%", "101%"},
		{"negative delay", `{delay: -5ms}`, linkcond.Link{}, "nodes.alice.link: delay -5ms is negative", "-5ms"},
		{"jitter over delay", `{jitter: 6ms, delay: 5ms}`, linkcond.Link{}, "nodes.alice.link: jitter 6ms is more than the delay 5ms", "6ms"},
		{"jitter over one direction's delay", `{jitter: 6ms, delay: 5ms, down: {delay: 10ms}}`, linkcond.Link{},
			"nodes.alice.link.up: jitter 6ms is more than the delay 5ms", "6ms"},
		{"one direction's own jitter", `{delay: 5ms, down: {jitter: 6ms}}`, linkcond.Link{},
			"nodes.alice.link.down: jitter 6ms is more than the delay 5ms", "6ms}"},
		{"one direction's loss", `{loss: 1%, up: {loss: 200%}}`, linkcond.Link{}, "nodes.alice.link.up: loss 200% is outside 0-100%", "200%"},
		{"reorder without delay", `{reorder: 1%}`, linkcond.Link{}, "nodes.alice.link: reorder 1% needs a delay", "1%"},
		{"small mtu", `{mtu: 500}`, linkcond.Link{}, "nodes.alice.link: mtu 500 is outside 576-9000", "500"},
		{"big mtu", `{mtu: 9001}`, linkcond.Link{}, "nodes.alice.link: mtu 9001 is outside 576-9000", "9001"},
		{"mtu of a direction", `{up: {mtu: 1400}}`, linkcond.Link{},
			"nodes.alice.link.up.mtu: mtu is the whole link's, both directions'; write it beside up:, as in {mtu: 1400, up: {...}}", "mtu"},
		{"typo", `{jiter: 5ms}`, linkcond.Link{}, "nodes.alice.link.jiter: unknown key; a link takes " + strings.Join(linkKeys, ", ") + "; did you mean jitter?", "jiter"},
		{"typo in a direction", `{down: {dealy: 5ms}}`, linkcond.Link{}, "nodes.alice.link.down.dealy: unknown key; a link's down: takes " + strings.Join(directionKeys, ", ") + "; did you mean delay?", "dealy"},
		// With the delay misspelt, the jitter beside it is not reported
		// as more than a delay of 0.
		{"one problem, one message", `{delai: 30ms, jitter: 5ms}`, linkcond.Link{}, "nodes.alice.link.delai: unknown key", "delai"},
		{"not a mapping", `10mbit`, linkcond.Link{}, "nodes.alice.link: want a mapping of conditions such as", "10mbit"},
		{"a direction not a mapping", `{up: 1mbit}`, linkcond.Link{}, "nodes.alice.link.up: want a mapping of conditions such as {rate: 1mbit}", "1mbit"},
		{"a list", `{delay: [1ms]}`, linkcond.Link{}, "nodes.alice.link.delay: want " + linkcond.DurationWant + ", not a list", "[1ms]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "nodes:\n  home: {kind: nat}\n  alice: {kind: host, behind: home, link: " + tc.link + "}\n"
			topo, err := Parse("link.yaml", []byte(file), nil)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := topo.Node("alice").Link; got != tc.want {
					t.Errorf("link %s:\n got %+v\nwant %+v", tc.link, got, tc.want)
				}
				return
			}
			list, _ := err.(ErrorList)
			if len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			e := list[0]
			if !strings.HasPrefix(e.Msg, tc.err) {
				t.Errorf("error %q, want %q", e.Msg, tc.err)
			}
			line := strings.Split(file, "\n")[e.Pos.Line-1]
			if at := line[e.Pos.Column-1:]; !strings.HasPrefix(at, tc.at) {
				t.Errorf("error at %d:%d, %q; want it at %q", e.Pos.Line, e.Pos.Column, at, tc.at)
			}
		})
	}
}

// TestLinkOnEveryKind checks that a server, a nat and a host each take a
// link, and that a nat behind another has one too.
func TestLinkOnEveryKind(t *testing.T) {
	topo, err := Parse("kinds.yaml", []byte(`
nodes:
  srv:  {kind: server, link: {delay: 1ms}}
  isp:  {kind: nat, link: {delay: 2ms}}
  home: {kind: nat, behind: isp, link: {delay: 3ms}}
  pc:   {kind: host, behind: home, link: {delay: 4ms}}
  out:  {kind: host, link: {delay: 5ms}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range topo.Nodes {
		if want := time.Duration(i+1) * time.Millisecond; n.Link.Up.Delay != want || n.Link.Down.Delay != want {
			t.Errorf("%s: link %v, want delay %v", n.Name, n.Link, want)
		}
	}
}
