package nftconn

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
)

// kernel stands in for the kernel's side of a Conn: it keeps what it is
// sent and acknowledges each message that asks for it.
type kernel struct {
	sent []netlink.Message
	acks []netlink.Message
}

func (k *kernel) SendMessages(msgs []netlink.Message) ([]netlink.Message, error) {
	for _, m := range msgs {
		k.sent = append(k.sent, m)
		if m.Header.Flags&netlink.Acknowledge != 0 {
			ack := netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: 4242}}
			ack.Data = make([]byte, 4) // errno 0
			k.acks = append(k.acks, ack)
		}
	}
	return msgs, nil
}

func (k *kernel) SetReadDeadline(time.Time) error { return nil }

func (k *kernel) Receive() ([]netlink.Message, error) {
	if len(k.acks) == 0 {
		return nil, nil
	}
	ack := k.acks[0]
	k.acks = k.acks[1:]
	return []netlink.Message{ack}, nil
}

func (k *kernel) Close() error { return nil }

// ctDirections returns the NFTA_CT_DIRECTION attribute of every ct
// expression of the rules in msgs, in order.
func ctDirections(t *testing.T, msgs []netlink.Message) [][]byte {
	t.Helper()
	var dirs [][]byte
	walk := func(b []byte) []netlink.Attribute {
		attrs, err := netlink.UnmarshalAttributes(b)
		if err != nil {
			t.Fatal(err)
		}
		return attrs
	}
	for _, m := range msgs {
		if m.Header.Type != newRule {
			continue
		}
		for _, a := range walk(m.Data[4:]) {
			if attrType(a) != unix.NFTA_RULE_EXPRESSIONS {
				continue
			}
			for _, elem := range walk(a.Data) {
				expr := walk(elem.Data)
				if !slices.ContainsFunc(expr, func(a netlink.Attribute) bool {
					return attrType(a) == unix.NFTA_EXPR_NAME && bytes.Equal(a.Data, []byte("ct\x00"))
				}) {
					continue
				}
				for _, d := range expr {
					if attrType(d) != unix.NFTA_EXPR_DATA {
						continue
					}
					for _, c := range walk(d.Data) {
						if attrType(c) == unix.NFTA_CT_DIRECTION {
							dirs = append(dirs, c.Data)
						}
					}
				}
			}
		}
	}
	return dirs
}

// Every ct direction reaches the kernel as the one byte its policy wants,
// holding the direction the rule's text says, and the rest of the batch
// as google/nftables made it.
func TestCtDirectionIsOneByte(t *testing.T) {
	for _, typ := range []nat.Type{nat.Symmetric, nat.FullCone, nat.AddressRestrictedCone} {
		t.Run(string(typ), func(t *testing.T) {
			b := nat.Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: typ.DefaultPorts(), PortRange: nat.DefaultPortRange, Timeout: nat.DefaultTimeouts, Refresh: nat.RefreshBoth}
			rs, err := natrules.Build(natrules.Config{Public: netip.MustParseAddr("203.0.113.1"), WAN: "wan0", LAN: "lan0", Behaviour: b})
			if err != nil {
				t.Fatal(err)
			}
			k := &kernel{}
			c, err := over(k)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := rs.AddTo(c.Conn); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			var want [][]byte
			for _, word := range strings.Fields(rs.String()) {
				switch word {
				case "original":
					want = append(want, []byte{0})
				case "reply":
					want = append(want, []byte{1})
				}
			}
			if len(want) == 0 {
				t.Fatal("the ruleset has no ct direction")
			}
			if got := ctDirections(t, k.sent); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("ct directions sent: %v, want %v (one byte each, as the rules' text says)", got, want)
			}

			// The same batch from google/nftables alone differs in the
			// directions only.
			plain := &kernel{}
			pc, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
				if req == nil {
					return plain.Receive()
				}
				_, err := plain.SendMessages(req)
				return nil, err
			}))
			if err != nil {
				t.Fatal(err)
			}
			if err := rs.AddTo(pc); err != nil {
				t.Fatal(err)
			}
			if err := pc.Flush(); err != nil {
				t.Fatal(err)
			}
			if len(plain.sent) != len(k.sent) {
				t.Fatalf("%d messages sent, google/nftables sends %d", len(k.sent), len(plain.sent))
			}
			for i := range k.sent {
				fixed, err := fixMessage(plain.sent[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fixed.Data, k.sent[i].Data) || fixed.Header.Type != k.sent[i].Header.Type || fixed.Header.Flags != k.sent[i].Header.Flags {
					t.Errorf("message %d differs from google/nftables' own", i)
				}
				if ctDirections(t, []netlink.Message{plain.sent[i]}) == nil && !bytes.Equal(plain.sent[i].Data, k.sent[i].Data) {
					t.Errorf("message %d has no ct direction, and changed", i)
				}
			}
		})
	}
}
