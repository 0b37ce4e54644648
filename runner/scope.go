package runner

import "net"

// scope is what one step opened: its sockets, closed when the step ends
// but for those it hands on to the session (a punched path's).
type scope struct {
	socks map[sockKey]*net.UDPConn
}

func newScope() *scope { return &scope{socks: map[sockKey]*net.UDPConn{}} }

// keep hands c on to the session, which closes it from then on.
func (sc *scope) keep(c *net.UDPConn) {
	for k, s := range sc.socks {
		if s == c {
			delete(sc.socks, k)
		}
	}
}

// close closes the sockets the step did not keep.
func (sc *scope) close() {
	for _, c := range sc.socks {
		c.Close()
	}
	clear(sc.socks)
}
