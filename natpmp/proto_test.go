package natpmp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		want   Request
		result uint16
		err    bool
	}{
		{"address", []byte{0, 0}, Request{}, ResultSuccess, false},
		{"map tcp", []byte{0, 2, 0, 0, 0x63, 0xdd, 0x63, 0xdd, 0, 0, 0x0e, 0x10}, Request{Proto: "tcp", Internal: 25565, Suggested: 25565, Lifetime: time.Hour}, ResultSuccess, false},
		{"map udp", []byte{0, 1, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0}, Request{Proto: "udp", Internal: 80}, ResultSuccess, false},
		{"version 1 (PCP)", []byte{2, 1}, Request{}, ResultUnsupportedVersion, false},
		{"opcode 9", []byte{0, 9}, Request{}, ResultUnsupportedOpcode, false},
		{"short", []byte{0}, Request{}, 0, true},
		{"long address", []byte{0, 0, 0}, Request{}, 0, true},
		{"short map", []byte{0, 1, 0, 0}, Request{}, 0, true},
	}
	for _, tc := range tests {
		got, res, err := ParseRequest(tc.in)
		if (err != nil) != tc.err || res != tc.result || got != tc.want {
			t.Errorf("%s: %+v %d %v; want %+v %d err=%v", tc.name, got, res, err, tc.want, tc.result, tc.err)
		}
	}
}

func TestReplies(t *testing.T) {
	if got, want := addressReply(0, 7, netip.MustParseAddr("203.0.113.1")), []byte{0, 128, 0, 0, 0, 0, 0, 7, 203, 0, 113, 1}; !bytes.Equal(got, want) {
		t.Errorf("address reply %v, want %v", got, want)
	}
	b := mapReply(opMapTCP, 0, 7, 25565, 40000, time.Hour)
	m, err := parseMapReply(b, opMapTCP)
	if err != nil || m.Internal != 25565 || m.External != 40000 || m.Lifetime != time.Hour {
		t.Errorf("map reply %+v %v", m, err)
	}
	if _, err := parseMapReply(mapReply(opMapUDP, ResultOutOfResources, 7, 0, 0, 0), opMapUDP); err == nil {
		t.Error("an error result parsed as success")
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 0x63, 0xdd, 0x63, 0xdd, 0, 0, 0x0e, 0x10})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := ParseRequest(b)
		if err == nil && r.Proto != "" && len(b) != 12 {
			t.Errorf("accepted a %d-byte mapping request", len(b))
		}
	})
}
