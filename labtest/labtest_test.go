package labtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

const homeLab = `
name: ignored    # Up gives every lab a unique name
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  home:   {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  alice:  {kind: host, behind: home}
`

// TestUpAndCleanup brings a lab up in a subtest and checks that it is
// there while the subtest runs and gone, namespaces and record, after.
func TestUpAndCleanup(t *testing.T) {
	testutil.CheckRoutines(t)
	var name string
	var namespaces []string
	t.Run("up", func(t *testing.T) {
		lb := Up(t, homeLab)
		name = lb.Name
		if name == "ignored" || !strings.HasPrefix(name, "t") {
			t.Fatalf("lab name %q", name)
		}
		if _, err := labstate.Load(name); err != nil {
			t.Fatalf("record: %v", err)
		}
		for _, n := range []string{"server", "home", "alice", topology.Internet} {
			ns := lb.Node(n).Namespace()
			if ns != "natlab-"+name+"-"+n {
				t.Errorf("node %s: namespace %s", n, ns)
			}
			if _, err := os.Stat(namedns.Path(ns)); err != nil {
				t.Errorf("node %s: %v", n, err)
			}
			namespaces = append(namespaces, ns)
		}
		// A socket left open must not keep the lab from going.
		if _, err := lb.Node("alice").ListenUDP("udp4", ":0"); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Fatal("the lab did not come up")
	}
	if _, err := labstate.Load(name); !errors.Is(err, labstate.ErrNotFound) {
		t.Errorf("record after the test: %v", err)
	}
	for _, ns := range namespaces {
		if _, err := os.Stat(namedns.Path(ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after the test: %v", ns, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10, 203.0.113.11]}
  cgn:    {kind: nat, type: symmetric, public: 203.0.113.1, lan: 100.64.0.0/24}
  home:   {kind: nat, type: full-cone, behind: cgn, public: 100.64.0.2, lan: 192.168.7.0/24}
  alice:  {kind: host, behind: home, address: 192.168.7.20}
`)
	tests := []struct {
		node         string
		addr, public string
		addrs, lan   string
	}{
		{node: "server", addr: "203.0.113.10", public: "203.0.113.10", addrs: "[203.0.113.10 203.0.113.11]"},
		{node: "cgn", addr: "203.0.113.1", public: "203.0.113.1", addrs: "[203.0.113.1]", lan: "100.64.0.0/24"},
		{node: "home", addr: "100.64.0.2", public: "203.0.113.1", addrs: "[100.64.0.2]", lan: "192.168.7.0/24"},
		{node: "alice", addr: "192.168.7.20", public: "203.0.113.1", addrs: "[192.168.7.20]"},
		{node: topology.Internet, addr: "invalid IP", public: "invalid IP", addrs: "[]"},
	}
	for _, tc := range tests {
		n := lb.Node(tc.node)
		lan := ""
		if n.LAN().IsValid() {
			lan = n.LAN().String()
		}
		if n.Addr().String() != tc.addr || n.PublicAddr().String() != tc.public || fmt.Sprint(n.Addrs()) != tc.addrs || lan != tc.lan {
			t.Errorf("%s: Addr %v, PublicAddr %v, Addrs %v, LAN %q; want %s, %s, %s, %q", tc.node, n.Addr(), n.PublicAddr(), n.Addrs(), lan, tc.addr, tc.public, tc.addrs, tc.lan)
		}
	}
	// The addresses are the kernel's, not only the topology's.
	var got []string
	if err := lb.Node("alice").Do(func() error {
		addrs, err := net.InterfaceAddrs()
		for _, a := range addrs {
			got = append(got, a.String())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(got, " "), "192.168.7.20/24") {
		t.Fatalf("alice's interfaces have %v", got)
	}
}

// TestDo checks that Do runs inside the node, returns fn's error, and
// leaves the test's own goroutine where it was.
func TestDo(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, homeLab)
	before := interfaces(t)
	var inside string
	err := lb.Node("alice").Do(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			inside += i.Name + ","
		}
		return errors.New("from fn")
	})
	if err == nil || err.Error() != "from fn" {
		t.Fatalf("Do returned %v, want fn's error", err)
	}
	if inside == before+"," || !strings.Contains(inside, "lo,") {
		t.Fatalf("interfaces inside alice %q, outside %q", inside, before)
	}
	for range 20 {
		// Any thread the test runs on next must still be in its own
		// namespace.
		if after := interfaces(t); after != before {
			t.Fatalf("after Do the test sees %s, before %s", after, before)
		}
	}
}

// TestUDPThroughNAT dials from behind the NAT to a server, which sees the
// NAT's public address; the answer comes back through the NAT.
func TestUDPThroughNAT(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, homeLab)
	srv, err := lb.Node("server").ListenUDP("udp4", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	c, err := lb.Node("alice").Dial("udp4", "203.0.113.10:9000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	if string(buf[:n]) != "ping" || from.Addr() != lb.Node("alice").PublicAddr() || from.Addr() != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("server got %q from %v", buf[:n], from)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("alice got %q, %v", buf[:n], err)
	}
}

// TestHTTPThroughNAT runs an HTTP server in one node and a client in
// another, through DialContext in an http.Transport, and a TCP connection
// into the NAT's LAN that the NAT refuses.
func TestHTTPThroughNAT(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, homeLab)
	ln, err := lb.Node("server").ListenTCP("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}))
	client := &http.Client{Transport: &http.Transport{DialContext: lb.Node("alice").DialContext}, Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("http://203.0.113.10:8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen, err := netip.ParseAddrPort(string(body))
	if err != nil || seen.Addr() != lb.Node("alice").PublicAddr() {
		t.Fatalf("the server saw %q (%v), want the NAT's public address %v", body, err, lb.Node("alice").PublicAddr())
	}

	// The other way the NAT is a wall.
	if _, err := lb.Node("alice").ListenTCP("tcp4", ":8081"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if c, err := lb.Node("server").DialContext(ctx, "tcp4", "203.0.113.1:8081"); err == nil {
		c.Close()
		t.Fatal("the server reached a port behind the NAT")
	}
}

func TestCommand(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, homeLab)
	alice := lb.Node("alice")
	var inside []string
	if err := alice.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			inside = append(inside, i.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// /proc/net is the reading process's namespace: the command's.
	out, err := alice.Command("cat", "/proc/net/dev").Output()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(string(out), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			listed = append(listed, name)
		}
	}
	slices.Sort(listed)
	slices.Sort(inside)
	if !slices.Equal(listed, inside) {
		t.Fatalf("the command saw interfaces %v, alice has %v", listed, inside)
	}

	// Its network is alice's: the server is reachable through the NAT.
	srv, err := lb.Node("server").ListenUDP("udp4", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	// This test binary is the command here: TestHelperSend sends one
	// datagram.
	send := alice.Command(os.Args[0], "-test.run=^TestHelperSend$")
	send.Env = append(os.Environ(), "LABTEST_SEND_TO=203.0.113.10:9000")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "from a command" || from.Addr() != alice.PublicAddr() {
		t.Fatalf("the server got %q, %v from %v", buf[:n], err, from)
	}

	// Output keeps standard error for a failing command, as exec's does.
	_, err = alice.Command("sh", "-c", "echo oops >&2; exit 3").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || strings.TrimSpace(string(ee.Stderr)) != "oops" {
		t.Fatalf("Output of a failing command: %v", err)
	}
	// A program that does not exist says so, with the node.
	if err := alice.Command("no-such-program-here").Run(); err == nil || !strings.Contains(err.Error(), "node alice") || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("Run of a missing program: %v", err)
	}
	// CommandContext kills with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := alice.CommandContext(ctx, "sleep", "10").Run(); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("CommandContext: %v after %v", err, time.Since(start))
	}
	// Start and Wait, with the command's output where the test says.
	var b strings.Builder
	cmd := alice.Command("sh", "-c", "cat /proc/net/dev | wc -l")
	cmd.Stdout = &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(b.String()) != fmt.Sprint(len(inside)+2) {
		t.Fatalf("wc -l of /proc/net/dev in alice: %q, want %d", b.String(), len(inside)+2)
	}
}

// TestUpBuiltin brings up a built-in scenario; its STUN and TURN server
// runs in a process started from this test binary.
func TestUpBuiltin(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := UpBuiltin(t, "full-cone")
	if lb.Node("alice").PublicAddr() != lb.Node("nat-a").Addr() {
		t.Fatalf("alice's public address %v, nat-a's %v", lb.Node("alice").PublicAddr(), lb.Node("nat-a").Addr())
	}
	if lb.State.TURN.Password == "" {
		t.Fatal("no TURN credentials in the lab's record")
	}
	stun := netip.AddrPortFrom(lb.Node("stun").Addr(), 3478)
	c, err := lb.Node("alice").Dial("tcp4", stun.String())
	if err != nil {
		t.Fatalf("the TURN server is not listening: %v", err)
	}
	c.Close()
}

func TestUpFile(t *testing.T) {
	testutil.CheckRoutines(t)
	path := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(path, []byte(homeLab), 0o644); err != nil {
		t.Fatal(err)
	}
	lb := UpFile(t, path)
	if lb.Node("home").Topology.NAT.Type != nat.PortRestrictedCone || lb.State.Source != "test:"+t.Name() {
		t.Fatalf("home %v, source %q", lb.Node("home").Topology, lb.State.Source)
	}
}

func TestUpSpec(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := UpSpec(t, Spec{Nodes: []NodeSpec{
		Server("server"),
		NAT("home", nat.Symmetric),
		Host("alice", "home"),
	}})
	if typ := lb.Node("home").Topology.NAT.Type; typ != nat.Symmetric {
		t.Fatalf("home is %s", typ)
	}
	srv, err := lb.Node("server").ListenUDP("udp4", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	c, err := lb.Node("alice").ListenUDP("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(lb.Node("server").Addr(), 9000)); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, from, err := srv.ReadFromUDPAddrPort(make([]byte, 8))
	if err != nil || from.Addr() != lb.Node("alice").PublicAddr() {
		t.Fatalf("server: %v from %v", err, from)
	}
}

// TestHelperSend is TestCommand's command.
func TestHelperSend(t *testing.T) {
	testutil.CheckRoutines(t)
	to := os.Getenv("LABTEST_SEND_TO")
	if to == "" {
		t.Skip("run by TestCommand")
	}
	c, err := net.Dial("udp4", to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("from a command")); err != nil {
		t.Fatal(err)
	}
}

// seenBy opens a socket in host, one socket on port 9000 of server, and
// returns a function that sends from the first to the second and returns
// the source the server saw.
func seenBy(t *testing.T, lb *Lab, host, server string) func() netip.AddrPort {
	srv, err := lb.Node(server).ListenUDP("udp4", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	c, err := lb.Node(host).ListenUDP("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(lb.Node(server).Addr(), 9000)
	return func() netip.AddrPort {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: %v", server, err)
		}
		return from
	}
}

// Reboot and Renumber change the running lab: after the renumber the
// server sees alice's packets come from the new address, which the
// lab's nodes report, and a host cannot be rebooted.
func TestRebootRenumber(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, homeLab)
	alice := lb.Node("alice")
	seen := seenBy(t, lb, "alice", "server")
	seen()
	home := lb.Node("home")
	if err := home.Reboot(); err != nil {
		t.Fatal(err)
	}
	public := netip.MustParseAddr("203.0.113.77")
	if err := home.Renumber(public); err != nil {
		t.Fatal(err)
	}
	if home.Addr() != public || alice.PublicAddr() != public || lb.Topology.Node("home").Addresses[0] != public {
		t.Errorf("after the renumber home is at %v, alice's public address %v, the topology's %v; want %v",
			home.Addr(), alice.PublicAddr(), lb.Topology.Node("home").Addresses[0], public)
	}
	if from := seen(); from.Addr() != public {
		t.Errorf("after the renumber the server sees alice at %v, want %v", from, public)
	}
	if err := alice.Reboot(); !errors.Is(err, lab.ErrBadChange) {
		t.Errorf("reboot of a host: %v, want lab.ErrBadChange", err)
	}
	if err := home.Renumber(netip.MustParseAddr("203.0.113.10")); !errors.Is(err, lab.ErrBadChange) {
		t.Errorf("renumber to the server's address: %v, want lab.ErrBadChange", err)
	}
}

// Move roams a host: its address and public address follow it, and the
// server sees it come from the other NAT.
func TestMove(t *testing.T) {
	testutil.CheckRoutines(t)
	lb := Up(t, `
nodes:
  server: {kind: server, addresses: [203.0.113.10]}
  home:   {kind: nat, type: port-restricted-cone, public: 203.0.113.1}
  cell:   {kind: nat, type: symmetric, public: 203.0.113.2, lan: 10.20.0.0/24}
  alice:  {kind: host, behind: home}
`)
	alice := lb.Node("alice")
	seen := seenBy(t, lb, "alice", "server")
	if err := alice.Move("cell"); err != nil {
		t.Fatal(err)
	}
	if alice.Addr() != netip.MustParseAddr("10.20.0.2") || alice.PublicAddr() != netip.MustParseAddr("203.0.113.2") || alice.Topology.Behind != "cell" {
		t.Errorf("after the move alice is at %v behind %s, public %v; want 10.20.0.2 behind cell, public 203.0.113.2", alice.Addr(), alice.Topology.Behind, alice.PublicAddr())
	}
	if from := seen(); from.Addr() != alice.PublicAddr() {
		t.Errorf("after the move the server sees alice at %v, want %v", from, alice.PublicAddr())
	}
	if err := lb.Node("home").Move("cell"); !errors.Is(err, lab.ErrBadChange) {
		t.Errorf("move of a NAT: %v, want lab.ErrBadChange", err)
	}
}
