package pcp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// A MAP request laid out byte by byte as RFC 6887's figures 2 and 9 draw
// it, as Tailscale's portmapper sends it: UDP, internal port 41641, no
// suggestion but the port 41641, the wildcard suggested address.
var mapRequest = []byte{
	2, 1, 0, 0, // version, R=0 opcode MAP, reserved
	0, 0, 0x1c, 0x20, // lifetime 7200
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 2, // client 192.168.1.2, IPv4-mapped
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // nonce
	17, 0, 0, 0, // protocol UDP, reserved
	0xa2, 0xa9, 0xa2, 0xa9, // internal port, suggested external port
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, // suggested external address 0.0.0.0
}

func TestParseMapRequest(t *testing.T) {
	r, err := ParseRequest(mapRequest)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Opcode: OpMap, Lifetime: 2 * time.Hour, Client: netip.MustParseAddr("192.168.1.2"),
		Nonce: Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Protocol: ProtoUDP, Internal: 41641,
		Suggested: netip.MustParseAddrPort("0.0.0.0:41641")}
	if r.Opcode != want.Opcode || r.Lifetime != want.Lifetime || r.Client != want.Client || r.Nonce != want.Nonce ||
		r.Protocol != want.Protocol || r.Internal != want.Internal || r.Suggested != want.Suggested || len(r.Options) != 0 {
		t.Errorf("parsed %+v, want %+v", r, want)
	}
	if got := r.Marshal(); !bytes.Equal(got, mapRequest) {
		t.Errorf("marshalled again:\n% x\nwant\n% x", got, mapRequest)
	}
}

// A MAP response has its fields where Tailscale's portmapper reads them:
// result at byte 3, lifetime at 4, epoch at 8, external port at 42 and
// the external address from 44.
func TestMapResponseLayout(t *testing.T) {
	b := Response{Opcode: OpMap, Result: Success, Lifetime: time.Hour, Epoch: 7, Nonce: Nonce{9}, Protocol: ProtoUDP,
		Internal: 41641, External: netip.MustParseAddrPort("203.0.113.1:5000")}.Marshal()
	if len(b) != 60 || b[0] != 2 || b[1] != 0x81 || b[3] != 0 || !bytes.Equal(b[4:12], []byte{0, 0, 0x0e, 0x10, 0, 0, 0, 7}) ||
		!bytes.Equal(b[42:44], []byte{0x13, 0x88}) || !bytes.Equal(b[54:60], []byte{0xff, 0xff, 203, 0, 113, 1}) {
		t.Errorf("response % x", b)
	}
	r, err := ParseResponse(b)
	if err != nil || r.External != netip.MustParseAddrPort("203.0.113.1:5000") || r.Nonce != (Nonce{9}) || r.Epoch != 7 {
		t.Errorf("parsed back %+v, %v", r, err)
	}
}

func TestPeerRoundTrip(t *testing.T) {
	req := Request{Opcode: OpPeer, Lifetime: time.Minute, Client: netip.MustParseAddr("192.168.1.2"), Nonce: Nonce{5},
		Protocol: ProtoTCP, Internal: 7000, Suggested: netip.MustParseAddrPort("0.0.0.0:0"), Peer: netip.MustParseAddrPort("203.0.113.9:9000"),
		Options: []Option{{Code: 200, Data: []byte{1, 2, 3}}}}
	b := req.Marshal()
	if len(b) != 24+56+8 {
		t.Fatalf("%d bytes: % x", len(b), b)
	}
	got, err := ParseRequest(b)
	if err != nil || got.Peer != req.Peer || got.Internal != 7000 || len(got.Options) != 1 || !bytes.Equal(got.Options[0].Data, []byte{1, 2, 3}) {
		t.Errorf("parsed %+v, %v", got, err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	short := append([]byte(nil), mapRequest[:40]...)
	odd := append(append([]byte(nil), mapRequest...), 0)
	long := make([]byte, MaxLen+4)
	long[0], long[1] = 2, 0
	badOption := append(append([]byte(nil), mapRequest...), 2, 0, 0, 8) // says 8 bytes, has none
	unknownOp := append([]byte{2, 9, 0, 0}, make([]byte, 20)...)
	for _, tc := range []struct {
		name string
		b    []byte
		want uint8
	}{
		{"header only", mapRequest[:20], MalformedRequest},
		{"MAP cut short", short, MalformedRequest},
		{"not a multiple of 4", odd, MalformedRequest},
		{"longer than 1100", long, MalformedRequest},
		{"option longer than the message", badOption, MalformedOption},
		{"opcode 9", unknownOp, UnsuppOpcode},
	} {
		_, err := ParseRequest(tc.b)
		var e *Error
		if !errors.As(err, &e) || e.Result != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, ResultText(tc.want))
		}
	}
}

// The header of an error to another version carries version 2 and, in
// the bytes NAT-PMP reads as its result, UNSUPP_VERSION.
func TestHeaderError(t *testing.T) {
	b := HeaderError([]byte{0, 1, 0, 0}, UnsuppVersion, 3)
	if len(b) != HeaderLen || b[0] != 2 || b[1] != 0x81 || b[2] != 0 || b[3] != 1 {
		t.Errorf("% x", b)
	}
	if r, err := ParseResponse(b); err != nil || r.Lifetime != LongErrorLifetime || r.Epoch != 3 {
		t.Errorf("%+v %v", r, err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(mapRequest)
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err == nil && (len(b) < HeaderLen || len(b)%4 != 0) {
			t.Errorf("accepted %d bytes", len(b))
		}
		if err == nil {
			if _, err := ParseRequest(r.Marshal()); err != nil {
				t.Errorf("its own encoding of %+v: %v", r, err)
			}
		}
	})
}
