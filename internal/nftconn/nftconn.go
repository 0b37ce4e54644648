// Package nftconn opens google/nftables connections to a namespace that
// send the kernel what its netlink policies expect.
//
// google/nftables v0.3.0 sends the direction of a ct expression
// (NFTA_CT_DIRECTION, "ct original" or "ct reply") as four bytes, where
// the kernel's policy has one (NLA_U8, nft_ct_policy in
// net/netfilter/nft_ct.c). The kernel reads the first byte and accepts
// the rule, but logs "netlink: 'natlab': attribute type 3 has an invalid
// length." for each such expression: 8 lines each time a NAT's table was
// loaded. (Upstream sends one byte since v0.3.0, in commits no release has
// yet.) A Conn sends its batches through a socket of its own and shortens
// each ct direction on the way to the byte the kernel reads, so the rules
// the kernel holds are the same and nothing is logged.
package nftconn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// Conn is an nftables connection to one namespace, for batches (Flush).
// Close it when done. Reads (GetSetElements, the List methods) wait for
// answers the relay does not hand back, until answerWait: read with
// google/nftables's own connection (nftables.New with WithNetNSFd), as
// nattable does.
type Conn struct {
	*nftables.Conn
	sock socket
	// sent is the error of the last send: google/nftables's test dial,
	// through which the relay works, keeps it from google/nftables, which
	// then waits for the acknowledgements of a batch the kernel never
	// got; the relay gives it to that wait instead.
	sent error
}

// socket is the kernel's side of a Conn: a netlink socket, or a test's
// stand-in.
type socket interface {
	SendMessages([]netlink.Message) ([]netlink.Message, error)
	Receive() ([]netlink.Message, error)
	SetReadDeadline(time.Time) error
	Close() error
}

// sendBuffer is the largest batch a Conn can send: the kernel refuses a
// netlink message longer than the socket's send buffer (EMSGSIZE), and
// a batch is one message; the default 208 KiB held the table of a
// carrier-grade NAT with a quota of about 100 ports, not 256.
const sendBuffer = 16 << 20

// receiveBuffer is what a Conn's socket may hold of the kernel's
// answers. google/nftables asks the kernel to acknowledge every message
// of a batch, and reads the acknowledgements only once the whole batch is
// sent: the table of a carrier-grade NAT with a quota of 256 ports is
// about 1,100 rules, whose acknowledgements (each a buffer of its own,
// most of a kilobyte to the socket's account) overflowed the default 208
// KiB, so the kernel dropped some (ENOBUFS) and the reader then waited
// for them for ever. Acknowledgements without a copy of the request
// (NETLINK_CAP_ACK) and this much room hold those of the largest table
// natlab makes (a quota of 1,024, about 4,300 rules) several times over.
const receiveBuffer = 16 << 20

// answerWait is how long a Conn waits for the kernel's next answer
// before it calls the kernel silent: a batch of thousands of rules is
// done in well under a second, on an emulated machine in a few.
const answerWait = time.Minute

// Dial opens a connection to the namespace open as nsFd.
func Dial(nsFd int) (*Conn, error) {
	sock, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	if err := roomForAnswers(sock); err != nil {
		sock.Close()
		return nil, err
	}
	c, err := over(sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	return c, nil
}

// roomForAnswers makes sock's acknowledgements short, its send buffer
// sendBuffer and its receive buffer receiveBuffer: forced
// (SO_SNDBUFFORCE, SO_RCVBUFFORCE) where natlab may, as root or in a
// user namespace that owns the network namespace, else as large as
// net.core.wmem_max and rmem_max let them be.
func roomForAnswers(sock *netlink.Conn) error {
	if err := sock.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("nftables: short acknowledgements (NETLINK_CAP_ACK): %w", err)
	}
	raw, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	var forcedSend, forcedReceive error
	if err := raw.Control(func(fd uintptr) {
		forcedSend = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer)
		forcedReceive = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer)
	}); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if forcedSend != nil {
		if err := sock.SetWriteBuffer(sendBuffer); err != nil {
			return fmt.Errorf("nftables: send buffer: %w", err)
		}
	}
	if forcedReceive != nil {
		if err := sock.SetReadBuffer(receiveBuffer); err != nil {
			return fmt.Errorf("nftables: receive buffer: %w", err)
		}
	}
	return nil
}

// over makes a Conn whose messages go through sock.
func over(sock socket) (*Conn, error) {
	c := &Conn{sock: sock}
	// google/nftables takes its socket from a dial function only for
	// tests (nltest.Func): given one, it hands every request to it and
	// reads the answers from it, which is all a relay needs.
	conn, err := nftables.New(nftables.AsLasting(), nftables.WithTestDial(c.relay))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	c.Conn = conn
	return c, nil
}

// Close closes the connection and its socket.
func (c *Conn) Close() error {
	c.Conn.CloseLasting()
	return c.sock.Close()
}

// relay sends requests to the kernel with every ct direction one byte; a
// nil request asks for the kernel's next answers.
func (c *Conn) relay(req []netlink.Message) ([]netlink.Message, error) {
	if req == nil {
		if err := c.sent; err != nil {
			c.sent = nil
			return nil, err
		}
		if err := c.sock.SetReadDeadline(time.Now().Add(answerWait)); err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
		replies, err := c.sock.Receive()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("nftables: no answer from the kernel in %v: %w", answerWait, err)
		}
		for i := range replies {
			// Answers are addressed to the relay's socket; google/nftables
			// checks them against the address its own side has.
			if replies[i].Header.PID != 0 {
				replies[i].Header.PID = nltest.PID
			}
		}
		return replies, err
	}
	out := make([]netlink.Message, len(req))
	for i, m := range req {
		fixed, err := fixMessage(m)
		if err != nil {
			return nil, err
		}
		// The sending socket fills in the length and its own address.
		fixed.Header.Length, fixed.Header.PID = 0, 0
		out[i] = fixed
	}
	_, c.sent = c.sock.SendMessages(out)
	if c.sent != nil {
		c.sent = fmt.Errorf("nftables: send a batch of %d messages: %w", len(out), c.sent)
	}
	return nil, c.sent
}

// newRule is the message type that adds a rule.
const newRule = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE)

// attrType is an attribute's type without its flags.
func attrType(a netlink.Attribute) uint16 {
	return a.Type &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
}

// fixMessage returns m with each ct expression's direction one byte long:
// the first of the four google/nftables sends, the one the kernel reads.
// Messages other than new rules, and rules without a ct direction, are
// returned as they are.
func fixMessage(m netlink.Message) (netlink.Message, error) {
	if m.Header.Type != newRule || len(m.Data) < 4 {
		return m, nil
	}
	// The rule's attributes follow the 4-byte nfgenmsg.
	attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
	if err != nil {
		return m, fmt.Errorf("nftables: a rule message that does not parse: %w", err)
	}
	changed := false
	for i, a := range attrs {
		if attrType(a) != unix.NFTA_RULE_EXPRESSIONS {
			continue
		}
		data, ok, err := fixExpressions(a.Data)
		if err != nil {
			return m, err
		}
		if ok {
			setData(&attrs[i], data)
			changed = true
		}
	}
	if !changed {
		return m, nil
	}
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return m, err
	}
	m.Data = append(m.Data[:4:4], data...)
	return m, nil
}

// setData gives a new value to an attribute read from a message, and
// lets MarshalAttributes work out its length again.
func setData(a *netlink.Attribute, data []byte) {
	a.Data, a.Length = data, 0
}

// fixExpressions fixes a rule's list of expressions; ok says whether it
// changed anything.
func fixExpressions(list []byte) (data []byte, ok bool, err error) {
	elems, err := netlink.UnmarshalAttributes(list)
	if err != nil {
		return nil, false, fmt.Errorf("nftables: a rule's expressions do not parse: %w", err)
	}
	for i, elem := range elems {
		if attrType(elem) != unix.NFTA_LIST_ELEM {
			continue
		}
		expr, err := netlink.UnmarshalAttributes(elem.Data)
		if err != nil {
			return nil, false, fmt.Errorf("nftables: an expression does not parse: %w", err)
		}
		isCt := false
		for _, a := range expr {
			if attrType(a) == unix.NFTA_EXPR_NAME && bytes.Equal(a.Data, []byte("ct\x00")) {
				isCt = true
			}
		}
		if !isCt {
			continue
		}
		for j, a := range expr {
			if attrType(a) != unix.NFTA_EXPR_DATA {
				continue
			}
			ct, err := netlink.UnmarshalAttributes(a.Data)
			if err != nil {
				return nil, false, fmt.Errorf("nftables: a ct expression does not parse: %w", err)
			}
			shortened := false
			for k, c := range ct {
				if attrType(c) == unix.NFTA_CT_DIRECTION && len(c.Data) > 1 {
					setData(&ct[k], c.Data[:1])
					shortened = true
				}
			}
			if !shortened {
				continue
			}
			b, err := netlink.MarshalAttributes(ct)
			if err != nil {
				return nil, false, err
			}
			setData(&expr[j], b)
			if b, err = netlink.MarshalAttributes(expr); err != nil {
				return nil, false, err
			}
			setData(&elems[i], b)
			ok = true
		}
	}
	if !ok {
		return list, false, nil
	}
	data, err = netlink.MarshalAttributes(elems)
	return data, err == nil, err
}
