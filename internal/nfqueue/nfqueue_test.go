package nfqueue

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// packetMsg builds a packet message as nfnetlink_queue sends it.
func packetMsg(queue uint16, id, outdev uint32, payload []byte) []byte {
	attr := func(typ uint16, v []byte) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	hdr := binary.BigEndian.AppendUint32(nil, id)
	hdr = append(hdr, 0x08, 0x00, 0) // hw_protocol, hook
	body := append(nfgen(queue), attr(attrPktHdr, hdr)...)
	body = append(body, attr(attrOutDev, binary.BigEndian.AppendUint32(nil, outdev))...)
	if payload != nil {
		body = append(body, attr(attrPayload, payload)...)
	}
	m := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	m = binary.NativeEndian.AppendUint16(m, subsysQueue<<8|msgPacket)
	m = append(m, make([]byte, 10)...)
	return append(m, body...)
}

func TestParse(t *testing.T) {
	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[12:], []byte{192, 168, 1, 2, 203, 0, 113, 10})
	v6 := make([]byte, 40)
	v6[0] = 0x60
	want6, src6 := netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8:0:1::2")
	copy(v6[8:], src6.AsSlice())
	copy(v6[24:], want6.AsSlice())
	b := append(packetMsg(0, 7, 2, v4), packetMsg(3, 8, 5, nil)...)
	b = append(b, packetMsg(0, 9, 0, v6)...)
	b = append(b, packetMsg(0, 10, 0, v6[:30])...)
	var got []Packet
	parse(b, func(p *Packet) { got = append(got, *p) })
	want := []Packet{
		{Queue: 0, ID: 7, OutDev: 2, Src: netip.MustParseAddr("192.168.1.2"), Dst: netip.MustParseAddr("203.0.113.10")},
		{Queue: 3, ID: 8, OutDev: 5},
		{Queue: 0, ID: 9, Src: src6, Dst: want6},
		{Queue: 0, ID: 10}, // a header cut short has no address
	}
	if !slices.Equal(got, want) {
		t.Errorf("parse = %+v, want %+v", got, want)
	}
	// A truncated message is not read past its end.
	parse(b[:30], func(p *Packet) { t.Errorf("a truncated message gave %+v", *p) })
}

func TestAppendVerdict(t *testing.T) {
	b := appendVerdict(nil, Verdict{Queue: 1, ID: 42, Accept: true})
	if len(b) != verdictLen || int(binary.NativeEndian.Uint32(b)) != verdictLen {
		t.Fatalf("verdict of %d bytes saying %d, want %d", len(b), binary.NativeEndian.Uint32(b), verdictLen)
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ != subsysQueue<<8|msgVerdict {
		t.Errorf("type %#x", typ)
	}
	if q := binary.BigEndian.Uint16(b[18:]); q != 1 {
		t.Errorf("queue %d", q)
	}
	if v, id := binary.BigEndian.Uint32(b[24:]), binary.BigEndian.Uint32(b[28:]); v != nfAccept || id != 42 {
		t.Errorf("verdict %d for %d, want accept for 42", v, id)
	}
	if v := binary.BigEndian.Uint32(appendVerdict(nil, Verdict{ID: 1})[24:]); v != nfDrop {
		t.Errorf("a drop says verdict %d", v)
	}
}
