package classify

import (
	"testing"

	"github.com/natlab/natlab/nat"
)

// Ports fall in a narrow range only when enough distinct ones do, within
// an eighth of the ports above 1023.
func TestNarrow(t *testing.T) {
	seq := func(first, n, step int) []uint16 {
		var p []uint16
		for i := range n {
			p = append(p, uint16(first+i*step))
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		ports []uint16
		want  *nat.PortRange
	}{
		{"none", nil, nil},
		{"seven in a block of 128", seq(2048, 7, 9), nil},
		{"eight in a block of 128", seq(2048, 8, 9), &nat.PortRange{First: 2048, Last: 2111}},
		{"eight with repeats count once", append(seq(2048, 7, 9), 2048, 2048), nil},
		{"an eighth of the range", seq(1024, 8, 1151), &nat.PortRange{First: 1024, Last: 9081}},
		{"just wider", seq(1024, 8, 1152), nil},
		{"across the range", seq(1100, 30, 2100), nil},
		{"unsorted", []uint16{40100, 40003, 40050, 40001, 40077, 40020, 40090, 40010}, &nat.PortRange{First: 40001, Last: 40100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := narrow(tc.ports)
			if ok != (tc.want != nil) || ok && r != *tc.want {
				t.Errorf("narrow(%v) = %v, %v; want %v", tc.ports, r, ok, tc.want)
			}
		})
	}
}
