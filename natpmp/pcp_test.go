package natpmp_test

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/pcp"
	"github.com/natlab/natlab/service"
)

const bothScenario = `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: [nat-pmp, pcp]}
  console: {kind: host, behind: home}
`

// pcpClient is a PCP client on a socket of host's.
type pcpClient struct {
	natpmp.Client
	self netip.Addr
}

func newPCPClient(t *testing.T, l *labtest.Lab, host, nat string) *pcpClient {
	c, _ := l.ListenUDP(host, ":0")
	return &pcpClient{Client: natpmp.Client{Conn: c, Gateway: l.Topo.Node(nat).NAT.Gateway}, self: l.Addr(host, 0)}
}

func (c *pcpClient) do(t *testing.T, req pcp.Request) pcp.Response {
	t.Helper()
	if !req.Client.IsValid() {
		req.Client = c.self
	}
	resp, err := c.PCP(t.Context(), req)
	if err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
	return resp
}

func mapReq(proto uint8, internal, suggested uint16, lifetime time.Duration, nonce byte) pcp.Request {
	return pcp.Request{Opcode: pcp.OpMap, Lifetime: lifetime, Nonce: pcp.Nonce{nonce}, Protocol: proto, Internal: internal,
		Suggested: netip.AddrPortFrom(netip.IPv4Unspecified(), suggested)}
}

func table(t *testing.T, l *labtest.Lab, nat string) *nattable.Table {
	t.Helper()
	ns, err := namedns.Open(l.Namespace(nat))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tab, err := nattable.Read(t.Context(), ns.Fd(), l.Addr(nat, 0))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// A host maps a port by PCP: the friend outside reaches it, the same
// nonce renews and deletes it, another nonce may do neither, the lease
// is in the NAT's table as PCP's, and NAT-PMP sees the same lease.
func TestMapThroughPCP(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, bothScenario)
	c := newPCPClient(t, l, "console", "home")
	public := l.Addr("home", 0)

	if a := c.do(t, pcp.Request{Opcode: pcp.OpAnnounce}); a.Result != pcp.Success || a.Lifetime != 0 {
		t.Errorf("announce: %+v", a)
	}
	l.TCPListen("console", ":25565")
	to := netip.AddrPortFrom(public, 25565).String()
	if _, err := l.TCPDial("friend", to, 500*time.Millisecond); err == nil {
		t.Fatal("the friend reached the console before any mapping")
	}
	m := c.do(t, mapReq(pcp.ProtoTCP, 25565, 25565, time.Hour, 1))
	if m.Result != pcp.Success || m.External != netip.AddrPortFrom(public, 25565) || m.Lifetime != time.Hour || m.Internal != 25565 || m.Protocol != pcp.ProtoTCP {
		t.Fatalf("map: %+v", m)
	}
	if got, err := l.TCPDial("friend", to, 2*time.Second); err != nil || got != "hello from console" {
		t.Errorf("friend -> %v after the mapping: %q, %v", to, got, err)
	}
	// The same nonce renews, suggesting no port: the same mapping.
	if r := c.do(t, mapReq(pcp.ProtoTCP, 25565, 0, 2*time.Hour, 1)); r.Result != pcp.Success || r.External != m.External || r.Lifetime != 2*time.Hour {
		t.Errorf("renew: %+v", r)
	}
	// Another nonce is another client: it may neither take the mapping
	// nor delete it.
	for _, lifetime := range []time.Duration{time.Hour, 0} {
		if r := c.do(t, mapReq(pcp.ProtoTCP, 25565, 0, lifetime, 2)); r.Result != pcp.NotAuthorized || r.Lifetime == 0 {
			t.Errorf("another nonce, lifetime %v: %+v, want NOT_AUTHORIZED with the error's lifetime", lifetime, r)
		}
	}
	var lease *nattable.Forward
	for _, f := range table(t, l, "home").Forwards {
		if f.Public == m.External && f.Proto == "tcp" {
			lease = &f
		}
	}
	if lease == nil || lease.By != nattable.ByPCP || lease.Private != netip.AddrPortFrom(l.Addr("console", 0), 25565) {
		t.Errorf("the table's lease: %+v, want one by pcp", lease)
	}
	// NAT-PMP and PCP keep one store: NAT-PMP asking for the same
	// internal port gets PCP's lease.
	pm, err := c.Map(t.Context(), "tcp", 25565, 0, time.Hour)
	if err != nil || pm.External != 25565 {
		t.Errorf("NAT-PMP for the port PCP mapped: %+v, %v", pm, err)
	}
	if d := c.do(t, mapReq(pcp.ProtoTCP, 25565, 0, 0, 1)); d.Result != pcp.Success || d.Lifetime != 0 {
		t.Errorf("delete: %+v", d)
	}
	if _, err := l.TCPDial("friend", to, 500*time.Millisecond); err == nil {
		t.Error("the friend still reached the console after the mapping was deleted")
	}
	// UDP too, on a port the host already sends from: the mapping it has.
	game := l.UDP("console", ":41641")
	friend := l.UDP("friend", ":7000")
	game.Send(netip.AddrPortFrom(l.Addr("friend", 0), 7000), "first")
	before := friend.Expect("first", 2*time.Second)
	u := c.do(t, mapReq(pcp.ProtoUDP, 41641, 0, time.Minute, 3))
	if u.Result != pcp.Success || u.External != before {
		t.Errorf("map of a port with a mapping: %+v; the host's socket already has %v", u, before)
	}
	l.UDP("friend", "").Send(u.External, "udp through pcp")
	game.Expect("udp through pcp", 2*time.Second)
}

// What a PCP server refuses, with the result RFC 6887 gives.
func TestPCPErrors(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, bothScenario)
	c := newPCPClient(t, l, "console", "home")
	other := netip.MustParseAddr("192.168.77.7")
	withOption := func(r pcp.Request, code uint8) pcp.Request {
		r.Options = []pcp.Option{{Code: code, Data: make([]byte, 20)}}
		return r
	}
	for _, tc := range []struct {
		name string
		req  pcp.Request
		want uint8
	}{
		{"a client address not the sender's", pcp.Request{Opcode: pcp.OpAnnounce, Client: other}, pcp.AddressMismatch},
		{"all protocols", mapReq(0, 0, 0, time.Hour, 1), pcp.UnsuppProtocol},
		{"sctp", mapReq(132, 5000, 0, time.Hour, 1), pcp.UnsuppProtocol},
		{"internal port 0", mapReq(pcp.ProtoUDP, 0, 0, time.Hour, 1), pcp.MalformedRequest},
		{"third party", withOption(mapReq(pcp.ProtoUDP, 5000, 0, time.Hour, 1), pcp.OptThirdParty), pcp.UnsuppOption},
		{"an unknown optional option", withOption(mapReq(pcp.ProtoUDP, 5001, 0, time.Hour, 1), 200), pcp.Success},
		{"prefer failure, port free", withOption(mapReq(pcp.ProtoUDP, 5002, 5002, time.Hour, 1), pcp.OptPreferFailure), pcp.Success},
		{"prefer failure, port taken", withOption(mapReq(pcp.ProtoUDP, 5003, 5002, time.Hour, 1), pcp.OptPreferFailure), pcp.CannotProvideExt},
		{"peer to no one", pcp.Request{Opcode: pcp.OpPeer, Protocol: pcp.ProtoUDP, Internal: 5000, Lifetime: time.Minute}, pcp.MalformedRequest},
	} {
		if tc.req.Options != nil && tc.req.Options[0].Code == pcp.OptPreferFailure {
			tc.req.Options[0].Data = nil
		}
		r := c.do(t, tc.req)
		if r.Result != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, pcp.ResultText(r.Result), pcp.ResultText(tc.want))
		}
		if tc.want != pcp.Success && (r.Lifetime != pcp.LongErrorLifetime || r.Nonce != tc.req.Nonce) {
			t.Errorf("%s: %+v, want the request's nonce and the long error lifetime", tc.name, r)
		}
	}
	// An opcode PCP does not define: the header alone comes back.
	raw := exchange(t, l, "console", append([]byte{pcp.Version, 9, 0, 0, 0, 0, 0, 0}, addr16(l.Addr("console", 0))...))
	if r, err := pcp.ParseResponse(raw); err != nil || r.Result != pcp.UnsuppOpcode || r.Opcode != 9 {
		t.Errorf("opcode 9: %+v %v (% x)", r, err, raw)
	}
}

func addr16(a netip.Addr) []byte {
	b := a.As16() // an IPv4 address is IPv4-mapped, as PCP carries it
	return b[:]
}

// exchange sends a raw request from host to its NAT's port-mapping port
// and returns the answer, nil if none comes within a second.
func exchange(t *testing.T, l *labtest.Lab, host string, req []byte) []byte {
	t.Helper()
	c, _ := l.ListenUDP(host, ":0")
	gw := netip.AddrPortFrom(l.Topo.Node(l.Topo.Node(host).Behind).NAT.Gateway, service.NATPMPPort)
	if _, err := c.WriteToUDPAddrPort(req, gw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// RFC 6887 appendix A: NAT-PMP and PCP share the port, told apart by the
// version byte, and a server that speaks one answers the other's
// requests with UNSUPP_VERSION, in the format of the version it speaks.
func TestVersionNegotiation(t *testing.T) {
	testutil.CheckRoutines(t)
	natpmpAddress := []byte{0, 0}
	for _, tc := range []struct {
		mapping      string
		pmpOK, pcpOK bool
	}{
		{"nat-pmp", true, false},
		{"pcp", false, true},
		{"[nat-pmp, pcp]", true, true},
		{"[pcp, nat-pmp]", true, true},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  home:    {kind: nat, port-mapping: `+tc.mapping+`}
  console: {kind: host, behind: home}
`)
			announce := pcp.Request{Opcode: pcp.OpAnnounce, Client: l.Addr("console", 0)}.Marshal()
			pmp := exchange(t, l, "console", natpmpAddress)
			switch {
			case tc.pmpOK && (len(pmp) != 12 || pmp[0] != 0 || pmp[3] != natpmp.ResultSuccess):
				t.Errorf("NAT-PMP address request: % x, want a NAT-PMP success", pmp)
			case !tc.pmpOK:
				// A PCP header: version 2, and bytes 2-3, NAT-PMP's
				// result field, hold UNSUPP_VERSION.
				r, err := pcp.ParseResponse(pmp)
				if err != nil || r.Result != pcp.UnsuppVersion || pmp[2] != 0 || pmp[3] != natpmp.ResultUnsupportedVersion {
					t.Errorf("NAT-PMP request to a PCP-only server: % x (%+v, %v), want a PCP UNSUPP_VERSION", pmp, r, err)
				}
			}
			resp := exchange(t, l, "console", announce)
			switch {
			case tc.pcpOK:
				if r, err := pcp.ParseResponse(resp); err != nil || r.Result != pcp.Success {
					t.Errorf("PCP announce: % x (%+v, %v), want success", resp, r, err)
				}
			case len(resp) < 4 || resp[0] != 0 || resp[3] != natpmp.ResultUnsupportedVersion:
				t.Errorf("PCP request to a NAT-PMP-only server: % x, want NAT-PMP's UNSUPPORTED_VERSION", resp)
			}
		})
	}
}

// PEER gives the mapping of a 5-tuple: the one a flow has, or the one
// the host's endpoint has under endpoint-independent mapping, or a new
// one its first packet to the peer then leaves by.
func TestPCPPeer(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, tc := range []struct {
		name, knobs string
		// ahead says PEER makes a mapping before any traffic.
		ahead bool
	}{
		{"endpoint-independent", "type: port-restricted-cone", true},
		{"address-dependent", "mapping: address-dependent, filtering: address-dependent", true},
		{"address-and-port-dependent", "type: symmetric", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, `+tc.knobs+`, port-mapping: pcp}
  console: {kind: host, behind: home}
`)
			c := newPCPClient(t, l, "console", "home")
			friend := l.UDP("friend", ":9000")
			peer := netip.AddrPortFrom(l.Addr("friend", 0), 9000)
			game := l.UDP("console", ":7000")
			req := pcp.Request{Opcode: pcp.OpPeer, Lifetime: time.Minute, Nonce: pcp.Nonce{7}, Protocol: pcp.ProtoUDP, Internal: 7000, Peer: peer}
			r := c.do(t, req)
			if !tc.ahead {
				if r.Result != pcp.NoResources || r.Lifetime != pcp.ShortErrorLifetime {
					t.Errorf("peer before any traffic: %+v, want NO_RESOURCES", r)
				}
				game.Send(peer, "first")
				seen := friend.Expect("first", 2*time.Second)
				if r := c.do(t, req); r.Result != pcp.Success || r.External != seen || r.Peer != peer {
					t.Errorf("peer of a flow seen as %v: %+v", seen, r)
				}
				return
			}
			if r.Result != pcp.Success || r.External.Addr() != l.Addr("home", 0) || r.Peer != peer || r.Lifetime != time.Minute {
				t.Fatalf("peer: %+v", r)
			}
			// Another nonce is another client's; the same one gives the
			// mapping up, and what the server made for it is gone.
			other := req
			other.Nonce = pcp.Nonce{8}
			if o := c.do(t, other); o.Result != pcp.NotAuthorized {
				t.Errorf("peer with another nonce: %+v, want NOT_AUTHORIZED", o)
			}
			del := req
			del.Lifetime = 0
			if d := c.do(t, del); d.Result != pcp.Success || d.Lifetime != 0 {
				t.Errorf("peer with lifetime 0: %+v", d)
			}
			for _, m := range table(t, l, "home").Mappings {
				if m.Private == netip.AddrPortFrom(l.Addr("console", 0), 7000) {
					t.Errorf("the mapping PEER made is still there after it was given up: %+v", m)
				}
			}
			if r = c.do(t, req); r.Result != pcp.Success {
				t.Fatalf("peer after giving it up: %+v", r)
			}
			game.Send(peer, "first")
			if seen := friend.Expect("first", 2*time.Second); seen != r.External {
				t.Errorf("the friend sees %v; PEER said %v", seen, r.External)
			}
			// Asked again, with the flow there: the same.
			if again := c.do(t, req); again.Result != pcp.Success || again.External != r.External {
				t.Errorf("peer again: %+v, want %v", again, r.External)
			}
		})
	}
}

// A NAT that reboots tells its LAN: a PCP ANNOUNCE and a NAT-PMP address
// answer arrive at 224.0.0.1:5350, from the gateway's port 5351, so that
// clients know at once that their mappings are gone.
func TestAnnounceOnReboot(t *testing.T) {
	testutil.CheckRoutines(t)
	l := labtest.Up(t, bothScenario)
	c, _ := l.ListenUDP("console", ":"+strconv.Itoa(natpmp.AnnouncePort))
	if err := l.Lab.Node("home").Reboot(); err != nil {
		t.Fatal(err)
	}
	gw := netip.AddrPortFrom(l.Topo.Node("home").NAT.Gateway, service.NATPMPPort)
	var sawPCP, sawPMP bool
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !sawPCP || !sawPMP {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("announcements heard: pcp %v, nat-pmp %v: %v", sawPCP, sawPMP, err)
		}
		if from != gw {
			continue
		}
		if r, err := pcp.ParseResponse(buf[:n]); err == nil && r.Opcode == pcp.OpAnnounce && r.Result == pcp.Success {
			sawPCP = true
		}
		if n == 12 && buf[0] == 0 && buf[1] == 128 && netip.AddrFrom4([4]byte(buf[8:12])) == l.Addr("home", 0) {
			sawPMP = true
		}
	}
}

// PEER makes a TCP mapping ahead of the connection too, under the
// mappings that allow it: the console's SYN from the internal port then
// leaves by the external port the answer named.
func TestPCPPeerTCP(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, knobs := range []string{"type: port-restricted-cone", "mapping: address-dependent, filtering: address-dependent"} {
		t.Run(knobs, func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, `+knobs+`, port-mapping: pcp}
  console: {kind: host, behind: home}
`)
			c := newPCPClient(t, l, "console", "home")
			ln, err := l.Lab.Node("friend").Listen("tcp4", ":9001")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			peer := netip.AddrPortFrom(l.Addr("friend", 0), 9001)
			r := c.do(t, pcp.Request{Opcode: pcp.OpPeer, Lifetime: time.Minute, Nonce: pcp.Nonce{9}, Protocol: pcp.ProtoTCP, Internal: 7001, Peer: peer})
			if r.Result != pcp.Success || r.External.Addr() != l.Addr("home", 0) || r.Peer != peer {
				t.Fatalf("peer: %+v", r)
			}
			var out net.Conn
			if err := l.Lab.Node("console").Do(func() (err error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{Port: 7001}, Timeout: 2 * time.Second}
				out, err = d.Dial("tcp4", peer.String())
				return err
			}); err != nil {
				t.Fatalf("the console connects from port 7001: %v", err)
			}
			defer out.Close()
			in, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if seen := netip.MustParseAddrPort(in.RemoteAddr().String()); seen != r.External {
				t.Errorf("the friend sees the connection from %v; PEER said %v", seen, r.External)
			}
		})
	}
}
