package nattable

import (
	"net/netip"
	"testing"
	"time"
)

// An offloaded NAT's mapping, kept by conntrack's entries of its flows,
// lives as long as its longest-lived flow, or until an offloaded one goes
// idle; a static forward and a mapping with a timeout of its own stay as
// the kernel listed them.
func TestHeldFor(t *testing.T) {
	ap := netip.MustParseAddrPort
	pub, other := ap("203.0.113.1:4000"), ap("203.0.113.1:4001")
	flows := []Flow{
		{Proto: "udp", Public: pub, Expires: 10 * time.Second},
		{Proto: "udp", Public: pub, Expires: 90 * time.Second},
		{Proto: "tcp", Public: pub, Expires: 500 * time.Second},
		{Proto: "udp", Public: other, Offloaded: true},
	}
	for _, tc := range []struct {
		name      string
		m         Mapping
		static    map[string]bool
		want      time.Duration
		offloaded bool
	}{
		{"held: its longest flow of the protocol", Mapping{Public: pub, held: true}, nil, 90 * time.Second, false},
		{"held, an offloaded flow", Mapping{Public: other, held: true}, nil, 0, true},
		{"held, no flow left", Mapping{Public: ap("203.0.113.1:4002"), held: true}, nil, 0, false},
		{"a static forward", Mapping{Public: pub, held: true}, map[string]bool{"udp/4000": true}, 0, false},
		{"a timeout of its own", Mapping{Public: pub, Expires: 5 * time.Second}, nil, 5 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maps := []Mapping{tc.m}
			heldFor(maps, "udp", flows, tc.static)
			if maps[0].Expires != tc.want || maps[0].Offloaded != tc.offloaded {
				t.Errorf("expires %v, offloaded %v; want %v, %v", maps[0].Expires, maps[0].Offloaded, tc.want, tc.offloaded)
			}
		})
	}
}
