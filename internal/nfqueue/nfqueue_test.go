package nfqueue

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// packetMsg builds a packet message as nfnetlink_queue sends it.
func packetMsg(queue uint16, id, indev uint32, mac []byte) []byte {
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
	body = append(body, attr(attrInDev, binary.BigEndian.AppendUint32(nil, indev))...)
	if mac != nil {
		hw := append([]byte{0, 6, 0, 0}, mac...)
		body = append(body, attr(attrHWAddr, append(hw, 0, 0))...)
	}
	m := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	m = binary.NativeEndian.AppendUint16(m, subsysQueue<<8|msgPacket)
	m = append(m, make([]byte, 10)...)
	return append(m, body...)
}

func TestParse(t *testing.T) {
	mac := []byte{2, 0, 0, 0, 0, 9}
	b := append(packetMsg(0, 7, 2, mac), packetMsg(3, 8, 5, nil)...)
	var got []Packet
	parse(b, func(p *Packet) { got = append(got, *p) })
	want := []Packet{{Queue: 0, ID: 7, InDev: 2, Src: [6]byte(mac), HasSrc: true}, {Queue: 3, ID: 8, InDev: 5}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
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
