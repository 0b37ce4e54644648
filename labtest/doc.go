// Package labtest brings natlab labs up inside Go tests, so that another
// project can check its own networking code through real NATs: virtual
// routers in Linux network namespaces with real nftables NAT rules of
// every RFC 4787 type.
//
// A test brings a lab up from YAML (Up), a scenario file (UpFile), one of
// natlab's built-in scenarios (UpBuiltin) or a Go value (UpSpec), and
// reaches its machines through Lab.Node:
//
//	func TestThroughSymmetricNAT(t *testing.T) {
//		lb := labtest.Up(t, `
//	nodes:
//	  server: {kind: server}
//	  home:   {kind: nat, type: symmetric}
//	  alice:  {kind: host, behind: home}
//	`)
//		srv, err := lb.Node("server").ListenUDP("udp4", ":9000")
//		...
//		c, err := lb.Node("alice").Dial("udp4", lb.Node("server").Addr().String()+":9000")
//		...
//		out, err := lb.Node("alice").Command("ping", "-c1", "203.0.113.1").CombinedOutput()
//	}
//
// A socket belongs to the namespace it was created in for its whole life,
// so the sockets Node opens (ListenUDP, Listen, Dial, ...) can be used from
// any goroutine afterwards. Node.Do runs any function inside the node, on
// an OS thread of its own that is thrown away afterwards, and Node.Command
// runs a program there.
//
// Everything is removed when the test ends, pass or fail: each lab gets a
// unique name (its namespaces are natlab-LAB-NODE) and a t.Cleanup that
// takes it down, and the sockets opened through it are closed first. If
// the test binary is killed, `natlab down --all` removes what is left.
//
// Labs need root: creating namespaces, veth pairs and nftables rules takes
// CAP_NET_ADMIN and CAP_SYS_ADMIN. Without them, or on a kernel without
// veth or nftables, every Up skips the test with a one-line reason instead
// of failing it, so the tests can live beside ordinary ones and run for
// real with
//
//	go test -exec sudo ./...
//
// Grid runs one test function across every pair of a list of NAT types
// (or NATs of other knobs, as named presets), each pair in a lab of its
// own and in parallel, and writes the outcome as a markdown and an HTML
// table whose rows and columns are the presets: "which pairs does my
// stack get through, and how fast?" in one test.
//
// Servers with services (stun, turn, rendezvous, tunnel, derp), and NATs
// with port-mapping, run them in a process started from the test binary
// itself, which the package's TestMain hands to natlab's services:
//
//	func TestMain(m *testing.M) { labtest.Main(m) }
package labtest
