package stunserver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunclient"
)

func TestAnswerStream(t *testing.T) {
	at := service.STUNEndpoint{Addr: 0, Port: 1}
	got, err := AnswerStream(layout, at, client, request(t))
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, got)
	var xor stun.XORMappedAddress
	if m.Type != stun.BindingSuccess || xor.GetFrom(m) != nil || xor.Port != int(client.Port()) {
		t.Errorf("a plain request got %v, mapped %v; want a success with %v", m.Type, xor, client)
	}
	for name, req := range map[string][]byte{
		"change ip":     request(t, rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, changeIP}}),
		"change port":   request(t, rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, changePort}}),
		"response port": request(t, rawAttr{stun.AttrResponsePort, []byte{0x9c, 0x41, 0, 0}}),
	} {
		got, err := AnswerStream(layout, at, client, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := decode(t, got)
		var code stun.ErrorCodeAttribute
		if m.Type != stun.BindingError || code.GetFrom(m) != nil || code.Code != stun.CodeBadRequest {
			t.Errorf("%s over TCP: %v %v, want 400: a connection is answered on itself", name, m.Type, code)
		}
	}
	// No change asked: the request is answered, with no error.
	if _, err := AnswerStream(layout, at, client, request(t, rawAttr{stun.AttrChangeRequest, []byte{0, 0, 0, 0}})); err != nil {
		t.Errorf("an empty change request: %v", err)
	}
}

// freePorts finds two ports of 127.0.0.1 free for both UDP and TCP.
func freePorts(t *testing.T) [2]uint16 {
	t.Helper()
	var ports [2]uint16
	for i := 0; i < 2; i++ {
		for tries := 0; ; tries++ {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}); err == nil {
				c.Close()
				if i == 0 || uint16(p) != ports[0] {
					ports[i] = uint16(p)
					break
				}
			}
			if tries > 20 {
				t.Fatal("no free port")
			}
		}
	}
	return ports
}

// TestServeTCP serves a one-address layout on loopback and asks it over
// TCP: each request on a connection is answered on it, with the
// connection's source as the mapped address; an endpoint skipped for
// another service has no listener.
func TestServeTCP(t *testing.T) {
	l := service.STUNLayout{Addrs: [2]netip.Addr{netip.MustParseAddr("127.0.0.1")}, Ports: freePorts(t)}
	s, err := Listen(l)
	if err != nil {
		t.Fatal(err)
	}
	skipped := service.STUNEndpoint{Addr: 0, Port: 1}
	if err := s.ListenTCP(skipped); err != nil {
		s.Close()
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		s.Serve(t.Logf)
		close(served)
	}()
	defer func() {
		s.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not end when the server closed")
		}
	}()

	c, err := net.DialTimeout("tcp4", l.At(service.STUNEndpoint{}).String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := stunclient.BindingStream(ctx, c)
		cancel()
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i+1, err)
		}
		if resp.Mapped != local {
			t.Errorf("request %d: mapped %v, want the connection's source %v", i+1, resp.Mapped, local)
		}
		if resp.Origin != l.At(service.STUNEndpoint{}) {
			t.Errorf("request %d: response origin %v, want %v", i+1, resp.Origin, l.At(service.STUNEndpoint{}))
		}
	}
	if c, err := net.DialTimeout("tcp4", l.At(skipped).String(), time.Second); err == nil {
		c.Close()
		t.Errorf("the skipped endpoint %v accepted a connection", l.At(skipped))
	} else if !strings.Contains(err.Error(), "refused") {
		t.Errorf("the skipped endpoint %v: %v, want the connection refused", l.At(skipped), err)
	}
}
