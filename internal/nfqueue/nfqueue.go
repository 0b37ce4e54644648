// Package nfqueue is a small client of the kernel's nfnetlink_queue: the
// packets an nftables rule hands to a queue (the xt NFQUEUE target) wait
// in the kernel until a process bound to the queue gives each its
// verdict. natlab's delay line holds them that way and lets each go at
// its due time.
//
// It is written on github.com/mdlayher/netlink, which natlab uses for
// every other netfilter socket: github.com/florianl/go-nfqueue, the
// well-kept client, is not to be had here, and natlab needs little of
// it. A Conn reads packets' metadata and the first bytes of
// their network header (enough for their addresses, as Bind asks) and sends many verdicts in one
// write, each a message of its own, so that releasing a burst costs one
// system call.
package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The protocol's numbers (include/uapi/linux/netfilter/nfnetlink_queue.h).
const (
	subsysQueue = 3 // NFNL_SUBSYS_QUEUE

	msgPacket  = 0 // NFQNL_MSG_PACKET
	msgVerdict = 1 // NFQNL_MSG_VERDICT
	msgConfig  = 2 // NFQNL_MSG_CONFIG

	cfgCmd      = 1  // NFQA_CFG_CMD
	cfgParams   = 2  // NFQA_CFG_PARAMS
	cfgMaxLen   = 3  // NFQA_CFG_QUEUE_MAXLEN
	cmdBind     = 1  // NFQNL_CFG_CMD_BIND
	copyMeta    = 1  // NFQNL_COPY_META
	copyPacket  = 2  // NFQNL_COPY_PACKET
	attrPktHdr  = 1  // NFQA_PACKET_HDR
	attrVerdict = 2  // NFQA_VERDICT_HDR
	attrInDev   = 5  // NFQA_IFINDEX_INDEV
	attrOutDev  = 6  // NFQA_IFINDEX_OUTDEV
	attrPayload = 10 // NFQA_PAYLOAD

	nfAccept = 1 // NF_ACCEPT
	nfDrop   = 0 // NF_DROP
)

// verdictLen is the length of one verdict message: the netlink header,
// nfgenmsg and one NFQA_VERDICT_HDR attribute.
const verdictLen = unix.NLMSG_HDRLEN + 4 + 4 + 8

// Packet is what the kernel says of a queued packet.
type Packet struct {
	// Queue is the queue it waits in, ID its number there.
	Queue uint16
	ID    uint32
	// InDev is the index of the interface it arrived on, OutDev the one
	// it leaves by, 0 if none (yet: at prerouting no route is chosen).
	InDev, OutDev uint32
	// Src and Dst are its IPv4 or IPv6 source and destination addresses,
	// read from its network header when the queue copies enough of it
	// (Bind); invalid if not.
	Src, Dst netip.Addr
}

// AddrCopy is the copy range that gives a packet's addresses: the IPv6
// header's first 40 bytes hold them, the IPv4 header's first 20.
const AddrCopy = 40

// Verdict lets a queued packet go on (Accept) or drops it.
type Verdict struct {
	Queue  uint16
	ID     uint32
	Accept bool
}

// Conn is a socket bound to queues of one network namespace.
type Conn struct {
	nl *netlink.Conn
	rc syscall.RawConn
	// wmu serialises writes, which build their messages in wbuf.
	wmu  sync.Mutex
	wbuf []byte
	rbuf []byte
}

// readBuffer is the socket's receive buffer: room for the metadata of
// tens of thousands of packets, so that a burst is queued rather than
// dropped while the reader is not scheduled.
const readBuffer = 16 << 20

// Open opens a socket in the namespace open as nsFd.
func Open(nsFd int) (*Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("nfqueue: %w", err)
	}
	c := &Conn{nl: nl, rbuf: make([]byte, 64<<10)}
	if c.rc, err = nl.SyscallConn(); err != nil {
		nl.Close()
		return nil, fmt.Errorf("nfqueue: %w", err)
	}
	// Past a full buffer the kernel drops the packet it could not
	// announce; the socket must not fail for it (ENOBUFS) as well.
	nl.SetOption(netlink.NoENOBUFS, true)
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer)
	}); err == nil && serr != nil {
		nl.SetReadBuffer(readBuffer)
	}
	return c, nil
}

// Close closes the socket; a Read in progress returns. The kernel drops
// the packets that still wait in the queues it was bound to.
func (c *Conn) Close() error { return c.nl.Close() }

// Bind binds queue to the socket, asking for packets' metadata and the
// first copy bytes of each (0: metadata only; AddrCopy: enough for its
// addresses) and for at most maxLen packets waiting at once:
// past that the kernel drops new ones, as a full netem queue does. Bind
// every queue before the first Read.
func (c *Conn) Bind(queue uint16, maxLen, copy uint32) error {
	// struct nfqnl_msg_config_params: __be32 copy_range, __u8 copy_mode.
	params := binary.BigEndian.AppendUint32(nil, copy)
	params = append(params, copyMeta)
	if copy > 0 {
		params[4] = copyPacket
	}
	ml := binary.BigEndian.AppendUint32(nil, maxLen)
	for _, attrs := range [][]netlink.Attribute{
		{{Type: cfgCmd, Data: []byte{cmdBind, 0, 0, 0}}},
		{{Type: cfgParams, Data: params}},
		{{Type: cfgMaxLen, Data: ml}},
	} {
		data, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return err
		}
		m := netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(subsysQueue<<8 | msgConfig), Flags: netlink.Request | netlink.Acknowledge},
			Data:   append(nfgen(queue), data...),
		}
		if _, err := c.nl.Execute(m); err != nil {
			return fmt.Errorf("nfqueue: bind queue %d: %w", queue, err)
		}
	}
	return nil
}

// nfgen is the nfgenmsg header for queue.
func nfgen(queue uint16) []byte {
	return []byte{unix.AF_UNSPEC, 0, byte(queue >> 8), byte(queue)}
}

// ErrClosed is what Read returns once the Conn is closed.
var ErrClosed = errors.New("nfqueue: closed")

// Read waits for the kernel's next message and calls fn for each packet
// it announces. The Packet is only valid during the call. Messages that
// are not packets (the kernel's answer to a verdict for a packet that is
// gone) are skipped.
func (c *Conn) Read(fn func(*Packet)) error {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), c.rbuf, unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err != nil {
		return ErrClosed
	}
	if errors.Is(rerr, unix.ENOBUFS) {
		// Packets were dropped for want of room; the socket goes on.
		return nil
	}
	if rerr != nil {
		return fmt.Errorf("nfqueue: read: %w", rerr)
	}
	parse(c.rbuf[:n], fn)
	return nil
}

// parse walks the netlink messages in b.
func parse(b []byte, fn func(*Packet)) {
	var p Packet
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		if typ == subsysQueue<<8|msgPacket && len(msg) >= 4 {
			p = Packet{Queue: binary.BigEndian.Uint16(msg[2:4])}
			if parseAttrs(msg[4:], &p) {
				fn(&p)
			}
		}
		b = b[min(align(l), len(b)):]
	}
}

// parseAttrs reads the attributes of a packet message; it reports
// whether the packet header was among them.
func parseAttrs(b []byte, p *Packet) bool {
	found := false
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			break
		}
		v := b[4:l]
		switch typ {
		case attrPktHdr:
			if len(v) >= 4 {
				p.ID = binary.BigEndian.Uint32(v[0:4])
				found = true
			}
		case attrInDev:
			if len(v) >= 4 {
				p.InDev = binary.BigEndian.Uint32(v[0:4])
			}
		case attrOutDev:
			if len(v) >= 4 {
				p.OutDev = binary.BigEndian.Uint32(v[0:4])
			}
		case attrPayload:
			p.Src, p.Dst = addrs(v)
		}
		b = b[min(align(l), len(b)):]
	}
	return found
}

// addrs reads the source and destination addresses of the IPv4 or IPv6
// header that b starts with.
func addrs(b []byte) (src, dst netip.Addr) {
	if len(b) == 0 {
		return
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) >= 20 {
			return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		}
	case 6:
		if len(b) >= 40 {
			return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		}
	}
	return
}

func align(n int) int { return (n + 3) &^ 3 }

// Verdicts sends the verdicts, as many as fit, in one write each.
func (c *Conn) Verdicts(vs []Verdict) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A write of up to 64 KiB: the kernel handles the messages in turn.
	const perWrite = (64 << 10) / verdictLen
	for len(vs) > 0 {
		batch := vs[:min(len(vs), perWrite)]
		vs = vs[len(batch):]
		c.wbuf = c.wbuf[:0]
		for _, v := range batch {
			c.wbuf = appendVerdict(c.wbuf, v)
		}
		var werr error
		err := c.rc.Write(func(fd uintptr) bool {
			werr = unix.Sendto(int(fd), c.wbuf, unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
			return !errors.Is(werr, unix.EAGAIN)
		})
		if err != nil {
			return ErrClosed
		}
		if werr != nil {
			return fmt.Errorf("nfqueue: verdicts: %w", werr)
		}
	}
	return nil
}

// appendVerdict appends one NFQNL_MSG_VERDICT message.
func appendVerdict(b []byte, v Verdict) []byte {
	b = binary.NativeEndian.AppendUint32(b, verdictLen)
	b = binary.NativeEndian.AppendUint16(b, subsysQueue<<8|msgVerdict)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST)
	b = binary.NativeEndian.AppendUint32(b, 0) // sequence
	b = binary.NativeEndian.AppendUint32(b, 0) // port: the kernel's
	b = append(b, nfgen(v.Queue)...)
	b = binary.NativeEndian.AppendUint16(b, 4+8)
	b = binary.NativeEndian.AppendUint16(b, attrVerdict)
	verdict := uint32(nfDrop)
	if v.Accept {
		verdict = nfAccept
	}
	b = binary.BigEndian.AppendUint32(b, verdict)
	return binary.BigEndian.AppendUint32(b, v.ID)
}
