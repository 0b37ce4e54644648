package lab_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/nattable"
)

// A nat's timeouts of TCP and ICMP are conntrack's in its namespace: an
// idle TCP connection's entry lives tcp-established, a closed one's
// (time-wait) tcp-transitory, an ICMP echo's icmp, then conntrack forgets
// them. (Linux's defaults, 5 days, 2 min and 30 s, would hold them far
// longer; natlab's, 2h4m, 4m and 60 s, too.)
func TestConntrackTimeouts(t *testing.T) {
	t.Parallel()
	l := labtest.Up(t, `
nodes:
  server: {kind: server}
  nat:    {kind: nat, type: port-restricted-cone, timeout: {tcp-established: 3s, tcp-transitory: 4s, icmp: 2s}}
  h:      {kind: host, behind: nat}
`)
	server := netip.AddrPortFrom(l.Addr("server", 0), 8000)
	// No TCP keepalives: the connection must be idle, and a keepalive
	// after the entry expired would make conntrack pick the connection up
	// again.
	var ln net.Listener
	l.Do("server", func() (err error) {
		ln, err = (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp4", server.String())
		return err
	})
	defer ln.Close()
	// The first connection stays open, idle; the second is closed by
	// both ends, the host's first, which leaves it in time-wait.
	accepted := make(chan net.Conn, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		for i := range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "x")
			if i == 0 {
				accepted <- c
				continue
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	dial := func() net.Conn {
		var c net.Conn
		l.Do("h", func() (err error) {
			c, err = (&net.Dialer{KeepAlive: -1, Timeout: arrival}).Dial("tcp4", server.String())
			return err
		})
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("the server's byte: %v", err)
		}
		return c
	}
	c := dial()
	defer c.Close()
	defer (<-accepted).Close()
	closed := dial()
	closed.Close()
	<-served
	l.Do("h", func() error { return ping(l.Addr("server", 0)) })

	table := func() *nattable.Table {
		ns, err := namedns.Open(l.Namespace("nat"))
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr("nat", 0))
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	// flow is a flow of proto to the server in state.
	flow := func(tab *nattable.Table, proto, state string) (nattable.Flow, bool) {
		for _, f := range tab.Flows {
			if f.Proto == proto && f.Remote.Addr() == server.Addr() && f.State == state {
				return f, true
			}
		}
		return nattable.Flow{}, false
	}
	wants := []struct {
		proto, state string
		timeout      time.Duration
	}{
		{"tcp", "assured established", 3 * time.Second},
		{"tcp", "assured time-wait", 4 * time.Second},
		{"icmp", "replied", 2 * time.Second},
	}
	tab := table()
	for _, want := range wants {
		f, ok := flow(tab, want.proto, want.state)
		switch {
		case !ok:
			t.Fatalf("no %s flow to %v %s in the nat's table: %+v", want.proto, server.Addr(), want.state, tab.Flows)
		case f.Expires > want.timeout:
			t.Errorf("%s flow %+v; want it to expire within its timeout %v", want.proto, f, want.timeout)
		}
	}
	// Idle, all expire: conntrack drops an entry from its table once
	// its time is up. Well within the 20 s a default timeout would
	// outlast.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		tab = table()
		var left []string
		for _, want := range wants {
			if _, ok := flow(tab, want.proto, want.state); ok {
				left = append(left, want.proto+" "+want.state)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s idle the nat still tracks %v: %+v", left, tab.Flows)
		}
	}
}

// ping sends one ICMP echo request to to and waits for its reply, from
// the namespace it runs in.
func ping(to netip.Addr) error {
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	// Type 8 (echo request), code 0, checksum, identifier, sequence.
	msg := []byte{8, 0, 0, 0, 0x4e, 0x4c, 0, 1, 'n', 'a', 't', 'l', 'a', 'b'}
	var sum uint32
	for i := 0; i < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	sum = (sum >> 16) + (sum & 0xffff)
	sum += sum >> 16
	msg[2], msg[3] = byte(^sum>>8), byte(^sum)
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(arrival))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %v: %w", to, err)
		}
		if a, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP); ok && a.Unmap() == to && n >= 8 && buf[0] == 0 {
			return nil
		}
	}
}
