package nat

import (
	"slices"
	"testing"
	"time"
)

func TestPortBlocks(t *testing.T) {
	r := PortRange{First: 1024, Last: 1279} // 256 ports
	b := PortBlocks{Size: 32, Count: 2, Quota: 64, ReuseDelay: DefaultReuseDelay}
	if got := b.Total(r); got != 8 {
		t.Errorf("Total = %d, want 8", got)
	}
	if got := b.Subscribers(r); got != 4 {
		t.Errorf("Subscribers = %d, want 4", got)
	}
	for _, c := range []struct {
		i    int
		want []PortRange
	}{
		{0, []PortRange{{1024, 1055}, {1056, 1087}}},
		{1, []PortRange{{1088, 1119}, {1120, 1151}}},
		{3, []PortRange{{1216, 1247}, {1248, 1279}}},
		{4, nil},
		{-1, nil},
	} {
		if got := b.Blocks(c.i, r); !slices.Equal(got, c.want) {
			t.Errorf("Blocks(%d) = %v, want %v", c.i, got, c.want)
		}
	}
	blocks := b.Blocks(1, r)
	for _, c := range []struct {
		o    int
		port uint16
		ok   bool
	}{{0, 1088, true}, {31, 1119, true}, {32, 1120, true}, {63, 1151, true}, {64, 0, false}} {
		if p, ok := Port(blocks, c.o); p != c.port || ok != c.ok {
			t.Errorf("Port(%d) = %d, %v; want %d, %v", c.o, p, ok, c.port, c.ok)
		}
	}
	if (PortBlocks{}).Enabled() || (PortBlocks{}).Blocks(0, r) != nil {
		t.Error("the zero PortBlocks allocates blocks")
	}
}

func TestPortBlocksString(t *testing.T) {
	for _, c := range []struct {
		b    PortBlocks
		want string
	}{
		{PortBlocks{}, "no port blocks"},
		{PortBlocks{Size: 128, Count: 1, Quota: 128, ReuseDelay: DefaultReuseDelay}, "port blocks of 128"},
		{PortBlocks{Size: 32, Count: 2, Quota: 40, ICMP: true, ReuseDelay: 10 * time.Second}, "port blocks of 32, 2 a subscriber, quota 40, ICMP when exhausted, reuse after 10s"},
	} {
		if got := c.b.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.b, got, c.want)
		}
	}
}
