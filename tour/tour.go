// Package tour is the story natlab tells, act by act: what each act is
// about, in a few sentences, and the built-in scenario that shows it on
// the real kernel. `natlab tour` walks it.
package tour

import (
	"slices"
	"strconv"
	"strings"

	"github.com/natlab/natlab/internal/suggest"
)

// Act is one part of the story.
type Act struct {
	Number string
	Title  string
	// Text explains, in a few short paragraphs, what the scenario shows.
	Text []string
	// Scenario is the built-in scenario that shows it.
	Scenario string
	// Trace is the NAT whose packets the tour shows as the steps run
	// ("" for none).
	Trace string
}

// Acts are the seven acts, some in several scenes.
var Acts = []Act{
	{"I", "The address problem", []string{
		"There are not enough IPv4 addresses for every device. A home gets one public address, and its router gives the devices private ones (192.168.1.x) that mean nothing on the internet.",
		"The router is a NAT: it rewrites the source of every packet going out to its public address, and keeps the devices' conversations apart by port. Watch the trace: each packet leaves with 203.0.113.50 as its source.",
	}, "act1-address-problem", "home"},
	{"II", "The translation table", []string{
		"To send answers back to the right device, the NAT keeps a table: private ip:port -> public ip:port -> destination. Every new conversation adds a row.",
		"How the public port is chosen differs: this NAT hands them out in order (48721, 48722, ...); others keep the device's own port, or pick one at random.",
	}, "act2-translation-table", "home"},
	{"III", "The wall", []string{
		"A packet from the internet that matches no row of the table has nowhere to go: the NAT drops it. Nobody outside can start a conversation with a device behind a NAT.",
		"Once the device has sent out, answers from where it sent get in. Whether anyone else may use that opening depends on the NAT's filtering. And the friend who wants to join a game server behind the NAT is stuck.",
	}, "act3-the-wall", "strict"},
	{"IV", "The mirror", []string{
		"A device cannot see its own public address: the NAT changes it on the way out. A STUN server on the internet is a mirror that says \"I see you as 203.0.113.x:port\".",
		"Behind a cone NAT every STUN server sees the same endpoint. Behind a symmetric NAT every destination gets a new port, so what one server sees is useless to anyone else.",
	}, "act4-the-mirror", ""},
	{"V", "The trick", []string{
		"Two devices behind NATs cannot reach each other cold. The hole punch: both learn their public endpoints by STUN, swap them through a rendezvous server, and send to each other at the same time.",
		"Each packet going out opens its sender's own NAT for answers from where it went. The first ones may hit the other NAT's wall; then one gets through, is answered, and the path works both ways.",
	}, "act5-the-trick", "nat-a"},
	{"VI", "When it breaks", []string{
		"Symmetric NATs give every destination a new port, so a peer cannot know where to send: punching between two of them fails. A TURN relay on the internet still connects them, at the cost of every packet taking a detour.",
		"natlab matrix punches every NAT type against every other; this act shows the worst case.",
	}, "turn-fallback", ""},
	{"VI", "When it breaks: relay costs", []string{
		"The relay is a detour, and the links here have length: alice and bob are 10ms from their NATs, the TURN server 40ms down its link. The direct path's round trip is 40ms.",
		"Every relayed packet climbs to the server and back down, both ways: 200ms, five times the direct path. Each step shows the RTT of the path it found; the upgrade shows it drop as the data leaves the relay.",
	}, "act6-relay-costs", ""},
	{"VII", "The real world: ICE", []string{
		"Real applications do not guess: ICE agents gather every way to be reached (their own addresses, what STUN sees, a relay) and try them all, keeping the most direct that works.",
	}, "act7-ice-ladder", ""},
	{"VII", "The real world: relay first, then direct", []string{
		"Tailscale does not wait for a punch: traffic starts through its relay (DERP) at once, a punch runs beside it, and the traffic moves to the direct path the moment one works.",
	}, "act7-relay-then-direct", ""},
	{"VII", "The real world: port forwarding", []string{
		"The old fix for the game server: tell the router to forward a port. Better, let the console ask the router itself, with NAT-PMP.",
	}, "act7-nat-pmp", "home"},
	{"VII", "The real world: a reverse tunnel", []string{
		"Behind carrier-grade NAT there is no router to configure. ngrok and playit keep a connection open from the device to a relay on the internet, which passes visitors down it.",
	}, "act7-reverse-tunnel", ""},
	{"VII", "The real world: IPv6", []string{
		"With IPv6 every device has a public address and needs no NAT and no STUN. Routers still run stateful firewalls that drop unsolicited packets, so two devices behind them may still need to punch.",
	}, "act7-ipv6", ""},
}

// Select is the acts --act arg picks: by roman (VII) or arabic (7)
// number, or by name, written in any case with spaces or hyphens: the
// title (the wall, or wall), the part of a scene's title either side of
// its colon (the real world: every scene of act VII; ipv6: that one), or
// the scenario (act3-the-wall). Several scenes share a number; a name
// picks one scene or, like the number, all of them. None matches: nil.
func Select(arg string) []Act {
	want := normalise(arg)
	if want == "" {
		return nil
	}
	var acts []Act
	for _, a := range Acts {
		if want == a.arabic() || slices.Contains(a.names(), want) {
			acts = append(acts, a)
		}
	}
	return acts
}

// Suggest is the act name closest to a mistyped arg, or "".
func Suggest(arg string) string {
	var names []string
	for _, a := range Acts {
		names = append(names, a.names()...)
	}
	return suggest.Closest(normalise(arg), names)
}

// arabic is the act's number in arabic numerals, counting acts (not
// scenes) from 1.
func (a Act) arabic() string {
	n := 0
	for i, b := range Acts {
		if i == 0 || b.Number != Acts[i-1].Number {
			n++
		}
		if b.Number == a.Number {
			return strconv.Itoa(n)
		}
	}
	return ""
}

// names are what --act takes for this act, normalised.
func (a Act) names() []string {
	names := []string{strings.ToLower(a.Number)}
	add := func(s string) {
		s = normalise(s)
		names = append(names, s)
		for _, article := range []string{"the-", "a-"} {
			if rest, ok := strings.CutPrefix(s, article); ok {
				names = append(names, rest)
			}
		}
	}
	add(a.Title)
	if before, after, ok := strings.Cut(a.Title, ":"); ok {
		add(before)
		add(after)
	}
	add(a.Scenario)
	if _, rest, ok := strings.Cut(a.Scenario, "-"); ok && strings.HasPrefix(a.Scenario, "act") {
		add(rest)
	}
	return names
}

// normalise writes s the way names compare: lower case, every run of
// other characters than letters and digits one hyphen, none at the ends.
func normalise(s string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			hyphen = false
		} else {
			hyphen = true
		}
	}
	return b.String()
}
