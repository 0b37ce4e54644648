package punch

import (
	"net/netip"
	"testing"
)

// A port-predicting punch sends to dozens of endpoints: the message says
// how many and their ranges, not every one of them.
func TestEndpointsSummary(t *testing.T) {
	ap := netip.MustParseAddrPort
	predicted := []netip.AddrPort{ap("203.0.113.5:55730"), ap("192.168.3.2:55730")}
	for i := 1; i <= 16; i++ {
		predicted = append(predicted, netip.AddrPortFrom(ap("203.0.113.5:55730").Addr(), uint16(55730+i)))
	}
	for i := 1; i <= 16; i++ {
		predicted = append(predicted, netip.AddrPortFrom(ap("192.168.3.2:55730").Addr(), uint16(55730+i)))
	}
	for _, tc := range []struct {
		targets []netip.AddrPort
		want    string
	}{
		{[]netip.AddrPort{ap("203.0.113.5:60526"), ap("192.168.3.2:60526")}, "[203.0.113.5:60526 192.168.3.2:60526]"},
		{predicted, "34 endpoints: 203.0.113.5:55730-55746 (17), 192.168.3.2:55730-55746 (17)"},
		{[]netip.AddrPort{ap("1.2.3.4:1"), ap("1.2.3.4:9"), ap("1.2.3.4:5"), ap("1.2.3.4:7"), ap("5.6.7.8:2")}, "5 endpoints: 1.2.3.4:1-9 (4), 5.6.7.8:2"},
	} {
		if got := endpoints(tc.targets); got != tc.want {
			t.Errorf("endpoints(%v) = %q, want %q", tc.targets, got, tc.want)
		}
	}
}
