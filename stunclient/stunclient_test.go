package stunclient

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunserver"
)

func TestParseServerAnswer(t *testing.T) {
	layout := service.STUNLayout{Addrs: [2]netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.11")}, Ports: [2]uint16{3478, 3479}}
	req, err := Build(Request{ChangeIP: true, ChangePort: true})
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("198.51.100.1:4000")
	reply, err := stunserver.Answer(layout, service.STUNEndpoint{}, client, req.Raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok, err := Parse(reply.Packet, req.TransactionID)
	if !ok || err != nil {
		t.Fatalf("Parse: ok=%v err=%v", ok, err)
	}
	if resp.Mapped != client || resp.Origin.String() != "203.0.113.11:3479" || resp.Other.String() != "203.0.113.11:3479" {
		t.Errorf("parsed %+v", resp)
	}
	if _, ok, _ := Parse(reply.Packet, [stun.TransactionIDSize]byte{1}); ok {
		t.Error("a response to another transaction was taken")
	}
}

func FuzzParse(f *testing.F) {
	req, _ := Build(Request{})
	reply, _ := stunserver.Answer(service.STUNLayout{Addrs: [2]netip.Addr{netip.MustParseAddr("203.0.113.10")}, Ports: [2]uint16{3478, 3479}},
		service.STUNEndpoint{}, netip.MustParseAddrPort("198.51.100.1:4000"), req.Raw)
	f.Add(reply.Packet)
	f.Add(req.Raw)
	f.Fuzz(func(t *testing.T, packet []byte) {
		var id [stun.TransactionIDSize]byte
		if len(packet) >= 20 {
			copy(id[:], packet[8:20])
		}
		resp, ok, err := Parse(packet, id)
		if ok && err == nil && !resp.Mapped.IsValid() {
			t.Errorf("a success without a mapped address: %x", packet)
		}
	})
}
