package lab_test

import (
	"net/netip"
	"testing"

	"github.com/natlab/natlab/internal/labtest"
)

// Nodes may be called all and default, names the kernel refuses to an
// interface: their ports on the bridges get other names.
func TestNodesNamedAllAndDefault(t *testing.T) {
	l := labtest.Up(t, `
nodes:
  all:     {kind: server}
  nat:     {kind: nat, type: full-cone}
  default: {kind: host, behind: nat}
`)
	srv := l.UDP("all", ":3478")
	h := l.UDP("default", "")
	h.Send(netip.AddrPortFrom(l.Addr("all", 0), 3478), "hello")
	from := srv.Expect("hello", arrival)
	srv.Send(from, "back")
	h.Expect("back", arrival)
}
