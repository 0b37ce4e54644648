package stunserver

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/natlab/natlab/service"
)

var layout = service.STUNLayout{
	Addrs: [2]netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.11")},
	Ports: [2]uint16{3478, 3479},
}

var client = netip.MustParseAddrPort("198.51.100.7:40000")

func request(t *testing.T, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.BindingRequest, stun.TransactionID}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

type rawAttr struct {
	typ stun.AttrType
	val []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.typ, a.val); return nil }

func decode(t *testing.T, raw []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	if m.Type.Class != stun.ClassRequest {
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Errorf("response fingerprint: %v", err)
		}
	}
	return m
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		name       string
		layout     service.STUNLayout
		at         service.STUNEndpoint
		setters    []stun.Setter
		wantVia    service.STUNEndpoint
		wantTo     netip.AddrPort
		wantOther  string // "" for none
		wantErrors stun.ErrorCode
	}{
		{"plain", layout, service.STUNEndpoint{Addr: 0, Port: 0}, nil, service.STUNEndpoint{Addr: 0, Port: 0}, client, "203.0.113.11:3479", 0},
		{"on the alternate port", layout, service.STUNEndpoint{Addr: 0, Port: 1}, nil, service.STUNEndpoint{Addr: 0, Port: 1}, client, "203.0.113.11:3478", 0},
		{"change ip and port", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 6}}}, service.STUNEndpoint{Addr: 1, Port: 1}, client, "203.0.113.11:3479", 0},
		{"change port", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 2}}}, service.STUNEndpoint{Addr: 0, Port: 1}, client, "203.0.113.11:3479", 0},
		{"change ip", layout, service.STUNEndpoint{Addr: 1, Port: 1}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 4}}}, service.STUNEndpoint{Addr: 0, Port: 1}, client, "203.0.113.10:3478", 0},
		{"no change", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 0}}}, service.STUNEndpoint{Addr: 0, Port: 0}, client, "203.0.113.11:3479", 0},
		{"response port", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrResponsePort, []byte{0x9c, 0x41, 0, 0}}}, service.STUNEndpoint{Addr: 0, Port: 0}, netip.MustParseAddrPort("198.51.100.7:40001"), "203.0.113.11:3479", 0},
		{"one address: no other-address", service.STUNLayout{Addrs: [2]netip.Addr{layout.Addrs[0]}, Ports: layout.Ports}, service.STUNEndpoint{Addr: 0, Port: 0}, nil, service.STUNEndpoint{Addr: 0, Port: 0}, client, "", 0},
		{"one address: change ip refused", service.STUNLayout{Addrs: [2]netip.Addr{layout.Addrs[0]}, Ports: layout.Ports}, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 4}}}, service.STUNEndpoint{Addr: 0, Port: 0}, client, "", stun.CodeBadRequest},
		{"bad change-request length", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{stun.AttrChangeRequest, []byte{4}}}, service.STUNEndpoint{Addr: 0, Port: 0}, client, "", stun.CodeBadRequest},
		{"unknown required attribute", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{0x0031, []byte{1, 2, 3, 4}}}, service.STUNEndpoint{Addr: 0, Port: 0}, client, "", stun.CodeUnknownAttribute},
		{"unknown optional attribute is ignored", layout, service.STUNEndpoint{Addr: 0, Port: 0}, []stun.Setter{rawAttr{0x8031, []byte{1, 2, 3, 4}}}, service.STUNEndpoint{Addr: 0, Port: 0}, client, "203.0.113.11:3479", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, tc.setters...)
			reply, err := Answer(tc.layout, tc.at, client, req)
			if err != nil {
				t.Fatal(err)
			}
			if reply.Via != tc.wantVia || reply.To != tc.wantTo {
				t.Errorf("reply via %v to %v, want via %v to %v", reply.Via, reply.To, tc.wantVia, tc.wantTo)
			}
			m := decode(t, reply.Packet)
			reqMsg := decode(t, req)
			if m.TransactionID != reqMsg.TransactionID {
				t.Error("transaction ID not echoed")
			}
			if tc.wantErrors != 0 {
				var code stun.ErrorCodeAttribute
				if err := code.GetFrom(m); err != nil || code.Code != tc.wantErrors {
					t.Errorf("error code %v (%v), want %d", code.Code, err, tc.wantErrors)
				}
				if tc.wantErrors == stun.CodeUnknownAttribute {
					var u stun.UnknownAttributes
					if err := u.GetFrom(m); err != nil || len(u) != 1 || u[0] != 0x0031 {
						t.Errorf("UNKNOWN-ATTRIBUTES %v, %v", u, err)
					}
				}
				return
			}
			if m.Type != stun.BindingSuccess {
				t.Fatalf("type %v", m.Type)
			}
			var xor stun.XORMappedAddress
			if err := xor.GetFrom(m); err != nil || xor.String() != client.String() {
				t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want %v", xor, err, client)
			}
			var mapped stun.MappedAddress
			if err := mapped.GetFrom(m); err != nil || mapped.String() != client.String() {
				t.Errorf("MAPPED-ADDRESS %v (%v), want %v", mapped, err, client)
			}
			var origin stun.ResponseOrigin
			if err := origin.GetFrom(m); err != nil || (&stun.MappedAddress{IP: origin.IP, Port: origin.Port}).String() != tc.layout.At(tc.wantVia).String() {
				t.Errorf("RESPONSE-ORIGIN %v (%v), want %v", origin, err, tc.layout.At(tc.wantVia))
			}
			var other stun.OtherAddress
			err = other.GetFrom(m)
			got := ""
			if err == nil {
				got = (&stun.MappedAddress{IP: other.IP, Port: other.Port}).String()
			}
			if got != tc.wantOther {
				t.Errorf("OTHER-ADDRESS %q, want %q", got, tc.wantOther)
			}
		})
	}
}

// The request of RFC 5769 section 2.1 (sample request), which carries
// USERNAME, MESSAGE-INTEGRITY, PRIORITY, ICE-CONTROLLED and a FINGERPRINT.
const rfc5769Request = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"

func TestAnswerRFC5769Request(t *testing.T) {
	raw, _ := hex.DecodeString(rfc5769Request)
	reply, err := Answer(layout, service.STUNEndpoint{Addr: 0, Port: 0}, client, raw)
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, reply.Packet)
	if m.Type != stun.BindingSuccess {
		t.Errorf("type %v, want a success response", m.Type)
	}
	if hex.EncodeToString(m.TransactionID[:]) != "b7e7a701bc34d686fa87dfae" {
		t.Errorf("transaction ID %x", m.TransactionID)
	}
}

func TestAnswerIgnores(t *testing.T) {
	resp, _ := stun.Build(stun.BindingSuccess, stun.TransactionID)
	allocate, _ := stun.Build(stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.TransactionID)
	badFingerprint := request(t, stun.Fingerprint)
	badFingerprint[len(badFingerprint)-1] ^= 0xff
	for name, tc := range map[string]struct {
		packet    []byte
		notBindig bool
	}{
		"not stun":        {[]byte("hello"), true},
		"empty":           {nil, true},
		"turn allocate":   {allocate.Raw, true},
		"a response":      {resp.Raw, false},
		"bad fingerprint": {badFingerprint, false},
		"truncated":       {request(t, stun.Fingerprint)[:24], false},
		"trailing bytes":  {append(request(t), 0), false},
	} {
		_, err := Answer(layout, service.STUNEndpoint{Addr: 0, Port: 0}, client, tc.packet)
		if err == nil || errors.Is(err, ErrNotBinding) != tc.notBindig {
			t.Errorf("%s: err=%v, want an error (not binding: %v)", name, err, tc.notBindig)
		}
	}
}

func FuzzAnswer(f *testing.F) {
	raw, _ := hex.DecodeString(rfc5769Request)
	f.Add(raw)
	m, _ := stun.Build(stun.BindingRequest, stun.TransactionID, rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 6}}, stun.Fingerprint)
	f.Add(m.Raw)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, packet []byte) {
		reply, err := Answer(layout, service.STUNEndpoint{Addr: 0, Port: 1}, client, packet)
		if err != nil {
			return
		}
		if !stun.IsMessage(reply.Packet) {
			t.Fatalf("reply is not STUN: %x", reply.Packet)
		}
		if reply.Via.Addr < 0 || reply.Via.Addr > 1 || reply.Via.Port < 0 || reply.Via.Port > 1 {
			t.Fatalf("reply via %v", reply.Via)
		}
	})
}
