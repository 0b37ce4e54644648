package nat

import "fmt"

// Pooling is how a NAT with several public addresses picks the address of
// a new mapping (RFC 4787 section 4.1, "IP address pooling behavior").
type Pooling string

const (
	// PoolingPaired gives every mapping of one private address the same
	// public address, as RFC 4787 REQ-2 recommends: a host's peers all
	// see it at one address, which applications that compare the
	// addresses of several flows (RTP and RTCP, ICE) rely on.
	PoolingPaired Pooling = "paired"
	// PoolingArbitrary lets any mapping take any address of the pool, so
	// one host may appear at several public addresses at once.
	PoolingArbitrary Pooling = "arbitrary"
)

// Poolings lists the accepted values, the default first.
var Poolings = []Pooling{PoolingPaired, PoolingArbitrary}

// ParsePooling accepts paired or arbitrary.
func ParsePooling(s string) (Pooling, error) {
	for _, p := range Poolings {
		if s == string(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown value %q; want %s", s, joinQuoted(Poolings))
}
