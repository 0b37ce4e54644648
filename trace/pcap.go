package trace

import (
	"encoding/binary"
	"io"
	"time"
)

// linktypeRaw is LINKTYPE_RAW: each record is a bare IP packet.
const linktypeRaw = 101

// PcapWriter writes packets in the classic pcap format that tcpdump and
// Wireshark read.
type PcapWriter struct {
	w io.Writer
}

// NewPcapWriter writes the file header.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], linktypeRaw)
	_, err := w.Write(hdr)
	return &PcapWriter{w: w}, err
}

// Write adds one packet captured at t.
func (p *PcapWriter) Write(t time.Time, packet []byte) error {
	rec := make([]byte, 16, 16+len(packet))
	binary.LittleEndian.PutUint32(rec[0:], uint32(t.Unix()))
	binary.LittleEndian.PutUint32(rec[4:], uint32(t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(packet)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(packet)))
	_, err := p.w.Write(append(rec, packet...))
	return err
}
