package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFLOG over netfilter netlink (linux/netfilter/nfnetlink_log.h), the
// kernel side of nftables' "log group" statement.
const (
	subsysULOG = 4
	msgPacket  = 0
	msgConfig  = 1

	attrPacketHdr = 1
	attrTimestamp = 3
	attrInDev     = 4
	attrOutDev    = 5
	attrPayload   = 9
	attrPrefix    = 10

	cfgCmd     = 1
	cfgMode    = 2
	cfgTimeout = 4
	cfgQThresh = 5

	cmdBind   = 1
	cmdUnbind = 2

	copyPacket = 2
)

// logged is one packet the kernel logged.
type logged struct {
	time    time.Time
	prefix  string
	hook    uint8  // NF_INET_PRE_ROUTING (0) ... NF_INET_POST_ROUTING (4)
	in, out uint32 // interface indexes, 0 if none
	payload []byte // from the IP header on
}

// nflogConn receives the packets logged to one group in one namespace.
type nflogConn struct {
	c     *netlink.Conn
	group uint16
}

func dialNFLOG(nsFd int, group uint16) (*nflogConn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("nflog: %w", err)
	}
	n := &nflogConn{c: c, group: group}
	if err := n.config(attr(cfgCmd, []byte{cmdBind})); err != nil {
		c.Close()
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("another natlab trace is listening on this NAT already")
		}
		return nil, fmt.Errorf("nflog: bind group %d: %w", group, err)
	}
	mode := binary.BigEndian.AppendUint32(nil, 0xffff)
	mode = append(mode, copyPacket, 0)
	// Deliver every packet at once rather than batched once a second: a
	// trace is read by a person watching the packets go by.
	err = n.config(attr(cfgMode, mode),
		attr(cfgQThresh, binary.BigEndian.AppendUint32(nil, 1)),
		attr(cfgTimeout, binary.BigEndian.AppendUint32(nil, 0)))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("nflog: copy mode: %w", err)
	}
	return n, nil
}

func attr(typ uint16, data []byte) netlink.Attribute { return netlink.Attribute{Type: typ, Data: data} }

func (n *nflogConn) config(attrs ...netlink.Attribute) error {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	// nfgenmsg: family, version, resource id (the group), big-endian.
	hdr := []byte{unix.AF_UNSPEC, 0, byte(n.group >> 8), byte(n.group)}
	_, err = n.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(subsysULOG<<8 | msgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(hdr, data...),
	})
	return err
}

// receive returns the next batch of logged packets.
func (n *nflogConn) receive() ([]logged, error) {
	msgs, err := n.c.Receive()
	if err != nil {
		return nil, err
	}
	var out []logged
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(subsysULOG<<8|msgPacket) || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.BigEndian
		l := logged{time: time.Now()}
		for ad.Next() {
			switch ad.Type() {
			case attrPacketHdr:
				if b := ad.Bytes(); len(b) >= 3 {
					l.hook = b[2]
				}
			case attrTimestamp:
				if b := ad.Bytes(); len(b) == 16 {
					l.time = time.Unix(int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))*1000)
				}
			case attrInDev:
				l.in = ad.Uint32()
			case attrOutDev:
				l.out = ad.Uint32()
			case attrPayload:
				l.payload = append([]byte(nil), ad.Bytes()...)
			case attrPrefix:
				l.prefix = ad.String()
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func (n *nflogConn) close() error {
	n.config(attr(cfgCmd, []byte{cmdUnbind}))
	return n.c.Close()
}
