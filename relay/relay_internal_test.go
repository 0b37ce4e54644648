package relay

import "testing"

func TestIsRefreshAnswer(t *testing.T) {
	cookie := []byte{0x21, 0x12, 0xa4, 0x42}
	msg := func(typ0, typ1 byte) []byte {
		return append(append([]byte{typ0, typ1, 0, 0}, cookie...), make([]byte, 12)...)
	}
	for _, tc := range []struct {
		p    []byte
		want bool
	}{
		{msg(0x01, 0x04), true},  // Refresh success
		{msg(0x01, 0x14), true},  // Refresh error
		{msg(0x01, 0x01), false}, // Binding success
		{msg(0x01, 0x08), false}, // CreatePermission success
		{msg(0x00, 0x04), false}, // a Refresh request
		{[]byte("mine 1"), false},
		{append([]byte{0x01, 0x04, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), false}, // no magic cookie
	} {
		if got := isRefreshAnswer(tc.p); got != tc.want {
			t.Errorf("% x: %v, want %v", tc.p[:4], got, tc.want)
		}
	}
}
