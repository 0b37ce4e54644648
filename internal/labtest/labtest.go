// Package labtest is natlab's own shorthand over the public package
// github.com/natlab/natlab/labtest, which brings the labs up and takes
// them down: helpers that fail the test instead of returning errors, and
// UDP assertions its tests share. Every lab gets a unique name and is
// removed when the test ends, pass or fail.
package labtest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/topology"
)

// Lab is a lab that is up for the length of one test.
type Lab struct {
	*labtest.Lab
	t     testing.TB
	Topo  *topology.Topology
	State *labstate.State
}

// Up parses scenario (YAML; its name: is replaced by a unique one), brings
// it up and registers its removal.
func Up(t testing.TB, scenario string) *Lab {
	t.Helper()
	l := labtest.Up(t, scenario)
	return &Lab{Lab: l, t: t, Topo: l.Topology, State: l.State}
}

// Namespace returns the name of node's namespace.
func (l *Lab) Namespace(node string) string { return l.Lab.Node(node).Namespace() }

// Do runs fn inside node's namespace, failing the test if it fails.
func (l *Lab) Do(node string, fn func() error) {
	l.t.Helper()
	if err := l.Lab.Node(node).Do(fn); err != nil {
		l.t.Fatalf("in %s: %v", node, err)
	}
}

// Addr returns node's i-th address.
func (l *Lab) Addr(node string, i int) netip.Addr {
	l.t.Helper()
	n := l.Topo.Node(node)
	if n == nil || i >= len(n.Addresses) {
		l.t.Fatalf("no address %d on node %s", i, node)
	}
	return n.Addresses[i]
}

// ListenUDP opens a UDP socket inside node bound to local, closed when
// the test ends.
func (l *Lab) ListenUDP(node, local string) (*net.UDPConn, error) {
	var c *net.UDPConn
	l.Do(node, func() error {
		addr, err := net.ResolveUDPAddr("udp4", local)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", addr)
		return err
	})
	if c != nil {
		l.t.Cleanup(func() { c.Close() })
	}
	return c, nil
}

// UDP opens a UDP socket inside node, bound to local ("" or ":0" for any
// address and a free port), closed when the test ends.
func (l *Lab) UDP(node, local string) *UDPConn {
	l.t.Helper()
	if local == "" {
		local = ":0"
	}
	c, _ := l.ListenUDP(node, local)
	return &UDPConn{t: l.t, c: c, node: node}
}

// TCPListen listens on TCP inside node and accepts connections, each of
// which it answers with one line: "hello from NODE", until the test ends.
func (l *Lab) TCPListen(node, local string) {
	l.t.Helper()
	var ln net.Listener
	l.Do(node, func() error {
		var err error
		ln, err = net.Listen("tcp4", local)
		return err
	})
	var accepting sync.WaitGroup
	l.t.Cleanup(func() {
		ln.Close()
		accepting.Wait()
	})
	accepting.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from " + node + "\n"))
			c.Close()
		}
	})
}

// TCPDial connects from node to addr and returns the first line it reads,
// or an error if the connection fails within timeout.
func (l *Lab) TCPDial(node, addr string, timeout time.Duration) (string, error) {
	l.t.Helper()
	var line string
	var dialErr error
	l.Do(node, func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			dialErr = err
			return nil
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 128)
		n, err := c.Read(buf)
		if err != nil {
			dialErr = err
			return nil
		}
		line = strings.TrimSpace(string(buf[:n]))
		return nil
	})
	return line, dialErr
}

// DialContext returns a dial function whose connections start in node,
// for an http.Transport.
func (l *Lab) DialContext(node string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.Lab.Node(node).DialContext
}

// UDPConn is a UDP socket inside a lab node.
type UDPConn struct {
	t    testing.TB
	c    *net.UDPConn
	node string
}

// LocalPort is the socket's port.
func (u *UDPConn) LocalPort() uint16 {
	return uint16(u.c.LocalAddr().(*net.UDPAddr).Port)
}

// Send sends payload to to.
func (u *UDPConn) Send(to netip.AddrPort, payload string) {
	u.t.Helper()
	if _, err := u.c.WriteToUDPAddrPort([]byte(payload), to); err != nil {
		u.t.Fatalf("%s: send to %v: %v", u.node, to, err)
	}
}

// Recv waits up to timeout for a datagram and returns its payload and the
// source it came from; ok is false if none came.
func (u *UDPConn) Recv(timeout time.Duration) (payload string, from netip.AddrPort, ok bool) {
	u.t.Helper()
	u.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2048)
	n, from, err := u.c.ReadFromUDPAddrPort(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", netip.AddrPort{}, false
	}
	if err != nil {
		u.t.Fatalf("%s: receive: %v", u.node, err)
	}
	return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
}

// Expect waits for payload and returns its source, failing the test if it
// does not arrive within timeout.
func (u *UDPConn) Expect(payload string, timeout time.Duration) netip.AddrPort {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			u.t.Fatalf("%s: %q did not arrive within %v", u.node, payload, timeout)
		}
		got, from, ok := u.Recv(left)
		if ok && got == payload {
			return from
		}
	}
}

// Arrives reports whether payload arrives within timeout.
func (u *UDPConn) Arrives(payload string, timeout time.Duration) bool {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		got, _, ok := u.Recv(left)
		if !ok {
			return false
		}
		if got == payload {
			return true
		}
	}
}

// UDP6 opens an IPv6 UDP socket inside node, bound to local ("" for any
// address and port), closed when the test ends.
func (l *Lab) UDP6(node, local string) *UDPConn {
	l.t.Helper()
	if local == "" {
		local = "[::]:0"
	}
	var c *net.UDPConn
	l.Do(node, func() error {
		addr, err := net.ResolveUDPAddr("udp6", local)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp6", addr)
		return err
	})
	l.t.Cleanup(func() { c.Close() })
	return &UDPConn{t: l.t, c: c, node: node}
}
