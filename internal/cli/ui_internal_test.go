package cli

import (
	"net"
	"testing"
)

// A second natlab ui, whose default port the first holds, takes the next
// free port after it, as the README says, not any port.
func TestUIPortNextFree(t *testing.T) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	taken := first.Addr().(*net.TCPAddr).Port
	if taken > 65535-maxUIPorts {
		t.Skipf("port %d is too near the top to test the next ones", taken)
	}
	l, err := listenUI(first.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The very next port may be someone else's: any of the next few.
	if got := l.Addr().(*net.TCPAddr).Port; got <= taken || got > taken+maxUIPorts {
		t.Errorf("port %d is taken; natlab ui took %d, want one of the %d after it", taken, got, maxUIPorts)
	}
	// A port asked for is that port or an error.
	if l, err := listenUI(first.Addr().String(), true); err == nil {
		l.Close()
		t.Errorf("--listen on a port in use did not fail")
	}
}
