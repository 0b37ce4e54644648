package nodenet

import (
	"net"

	"github.com/pion/transport/v3"
	"github.com/pion/transport/v3/stdnet"
)

// PionNet returns a pion transport.Net whose sockets are created inside
// the node and whose interfaces are the node's, so pion's ICE agent and
// TURN client gather and connect from the node.
func (n *Node) PionNet() (transport.Net, error) {
	var std *stdnet.Net
	// stdnet reads the interfaces when it is made: make it inside.
	err := n.Do(func() error {
		var err error
		std, err = stdnet.NewNet()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pionNet{Net: std, node: n}, nil
}

type pionNet struct {
	*stdnet.Net
	node *Node
}

func (p *pionNet) ListenPacket(network, address string) (c net.PacketConn, err error) {
	err = p.node.Do(func() error { c, err = p.Net.ListenPacket(network, address); return err })
	return c, err
}

func (p *pionNet) ListenUDP(network string, laddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = p.node.Do(func() error { c, err = p.Net.ListenUDP(network, laddr); return err })
	return c, err
}

func (p *pionNet) ListenTCP(network string, laddr *net.TCPAddr) (l transport.TCPListener, err error) {
	err = p.node.Do(func() error { l, err = p.Net.ListenTCP(network, laddr); return err })
	return l, err
}

func (p *pionNet) Dial(network, address string) (c net.Conn, err error) {
	err = p.node.Do(func() error { c, err = p.Net.Dial(network, address); return err })
	return c, err
}

func (p *pionNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = p.node.Do(func() error { c, err = p.Net.DialUDP(network, laddr, raddr); return err })
	return c, err
}

func (p *pionNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (c transport.TCPConn, err error) {
	err = p.node.Do(func() error { c, err = p.Net.DialTCP(network, laddr, raddr); return err })
	return c, err
}

func (p *pionNet) CreateDialer(d *net.Dialer) transport.Dialer {
	return dialer{d: d, node: p.node}
}

type dialer struct {
	d    *net.Dialer
	node *Node
}

func (d dialer) Dial(network, address string) (c net.Conn, err error) {
	err = d.node.Do(func() error { c, err = d.d.Dial(network, address); return err })
	return c, err
}
