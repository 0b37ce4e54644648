package trace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
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

// dialNFLOG binds group in the namespace open as nsFd; ctx's deadline
// bounds the binding.
func dialNFLOG(ctx context.Context, nsFd int, group uint16) (*nflogConn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("nflog: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
		// The trace's reads set deadlines of their own.
		defer c.SetDeadline(time.Time{})
	}
	n := &nflogConn{c: c, group: group}
	if err := n.config(attr(cfgCmd, []byte{cmdBind})); err != nil {
		c.Close()
		// The kernel refuses a group another socket is bound to with
		// EPERM (EBUSY if it is this one), as it refuses a process
		// without the privilege to bind: the group's listener tells
		// them apart.
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
			if holder, ok := groupHolder(nsFd, group); ok {
				busy := &BusyError{PID: holder}
				busy.Command = commandOf(holder)
				return nil, busy
			}
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

// ErrBusy means another tracer listens to the NAT already: the kernel
// gives a NAT's log group one listener at a time.
var ErrBusy = errors.New("another natlab trace or natlab ui is tracing this NAT")

// busyHint is what a person can do about ErrBusy.
const busyHint = "; a NAT's packets go to one tracer at a time: stop that one first"

// BusyError is the ErrBusy of one NAT, with the process that most likely
// holds its log.
type BusyError struct {
	// PID is the netlink address the kernel lists for the group's
	// listener, which is the process ID of the socket a process opens
	// first of its kind: most likely the tracer's. 0 if not known.
	PID int
	// Command is that process's command line, "" if there is none.
	Command string
}

func (e *BusyError) Error() string {
	if h := e.Holder(); h != "" {
		return ErrBusy.Error() + " (" + h + ")" + busyHint
	}
	return ErrBusy.Error() + busyHint
}

// Is makes errors.Is(err, ErrBusy) hold.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Holder names the process that most likely holds the NAT's log, as
// "process 1234: natlab trace LAB NODE", or "" if none is known.
func (e *BusyError) Holder() string {
	switch {
	case e.PID == 0:
		return ""
	case e.Command == "":
		return fmt.Sprintf("netlink address %d", e.PID)
	}
	return fmt.Sprintf("process %d: %s", e.PID, e.Command)
}

// groupHolder returns the netlink address of the listener bound to an
// NFLOG group in the namespace open as nsFd, from the kernel's list of
// them (/proc/net/netfilter/nfnetlink_log: group, address, queue length,
// copy mode, copy range, flush timeout, uses).
func groupHolder(nsFd int, group uint16) (portid int, ok bool) {
	namedns.DoFd(nsFd, func() error {
		// thread-self: /proc/self/net is the main thread's namespace.
		data, err := os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_log")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != strconv.Itoa(int(group)) {
				continue
			}
			if id, err := strconv.ParseUint(f[1], 10, 32); err == nil {
				portid, ok = int(int32(id)), true
			}
		}
		return nil
	})
	return portid, ok
}

// commandOf is the command line of process pid, "" if there is no such
// process (a netlink address is a process ID only for its first socket).
func commandOf(pid int) string {
	if pid <= 0 {
		return ""
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(string(data), "\x00", " ")), " ")
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
