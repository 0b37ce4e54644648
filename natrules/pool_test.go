package natrules

import (
	"net/netip"
	"testing"

	"github.com/natlab/natlab/nat"
)

// PoolIndex must pick what the kernel's jhash picks: the lab's pool tests
// check it on real namespaces (lab/pool_test.go); these are indices the
// kernel gave there, so a change to the Go hash shows without root too.
func TestPoolIndex(t *testing.T) {
	for _, tc := range []struct {
		pooling nat.Pooling
		priv    string
		n, want int
	}{
		// scenarios/pooling: alice and bob behind isp's three addresses.
		{nat.PoolingPaired, "192.168.1.2:55916", 3, 0},
		{nat.PoolingPaired, "192.168.1.3:51187", 3, 1},
		// Paired ignores the port.
		{nat.PoolingPaired, "192.168.1.2:1", 3, 0},
		{nat.PoolingPaired, "192.168.1.3:65535", 3, 1},
	} {
		if got := PoolIndex(tc.pooling, netip.MustParseAddrPort(tc.priv), tc.n); got != tc.want {
			t.Errorf("PoolIndex(%s, %s, %d) = %d, want %d", tc.pooling, tc.priv, tc.n, got, tc.want)
		}
	}
	// Arbitrary pooling hashes the port too: one host's sockets spread
	// over the pool, every index in range.
	seen := map[int]bool{}
	for port := uint16(40000); port < 40016; port++ {
		i := PoolIndex(nat.PoolingArbitrary, netip.AddrPortFrom(netip.MustParseAddr("192.168.1.2"), port), 3)
		if i < 0 || i >= 3 {
			t.Fatalf("index %d out of a pool of 3", i)
		}
		seen[i] = true
	}
	if len(seen) != 3 {
		t.Errorf("16 sockets of one host took indices %v of a pool of 3, want all three", seen)
	}
	if a := PoolAddr(nat.PoolingPaired, []netip.Addr{netip.MustParseAddr("203.0.113.9")}, netip.MustParseAddrPort("192.168.1.2:1")); a != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("the one address of a NAT without a pool: %v", a)
	}
}
