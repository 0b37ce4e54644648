package tunnel

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// On loopback: a relay, a "host" service, a tunnel, a visitor.
func TestTunnelLoopback(t *testing.T) {
	s, err := Listen(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Skip(err) // the control port is taken on this machine
	}
	defer s.Close()
	go s.Serve(t.Logf)
	svc, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "echo: "+line)
			c.Close()
		}
	}()
	var d net.Dialer
	cl, err := Open(context.Background(), d.DialContext, netip.MustParseAddr("127.0.0.1"), 0, svc.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		v, err := net.DialTimeout("tcp4", cl.Public.String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(v, "hello\n")
		v.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := bufio.NewReader(v).ReadString('\n')
		v.Close()
		if got != "echo: hello\n" {
			t.Fatalf("visitor %d got %q, %v", i, got, err)
		}
	}
	cl.Close()
	time.Sleep(50 * time.Millisecond)
	if _, err := net.DialTimeout("tcp4", cl.Public.String(), time.Second); err == nil {
		t.Error("the public port still accepts after the tunnel closed")
	}
	if _, err := Open(context.Background(), d.DialContext, netip.MustParseAddr("127.0.0.1"), 80, "127.0.0.1:1"); err == nil {
		t.Error("a tunnel on a privileged public port was granted")
	}
}
