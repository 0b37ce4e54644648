package natpmp_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nattable"
)

// upnpc takes an IGD only if its public address is not reserved, and
// the lab's default internet is TEST-NET-3: this one is an ordinary
// public range, which no packet leaves the lab's namespaces for.
const upnpScenario = `
internet: 20.0.113.0/24
nodes:
  friend:  {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: [nat-pmp, pcp, upnp]}
  console: {kind: host, behind: home}
  laptop:  {kind: host, behind: home}
`

// upnpc runs miniupnpc's client inside node.
func upnpc(t *testing.T, l *labtest.Lab, node string, args ...string) string {
	t.Helper()
	out, err := upnpcMay(l, node, args...)
	if err != nil {
		t.Fatalf("upnpc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// upnpcMay runs upnpc and returns what it said, whether or not it failed.
func upnpcMay(l *labtest.Lab, node string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.Namespace(node), "upnpc"}, args...)...).CombinedOutput()
	return string(out), err
}

// miniupnpc's upnpc, a client nobody here wrote, finds the NAT by SSDP,
// reads its description, asks for a forward a friend outside can use,
// lists it beside a NAT-PMP lease (one store), and deletes it.
func TestUpnpc(t *testing.T) {
	testutil.CheckRoutines(t)
	testutil.RequireTool(t, "upnpc")
	l := labtest.Up(t, upnpScenario)
	console, public := l.Addr("console", 0).String(), l.Addr("home", 0).String()
	l.TCPListen("console", ":8080")
	to := public + ":8080"
	if _, err := l.TCPDial("friend", to, 500*time.Millisecond); err == nil {
		t.Fatal("the friend reached the console before any mapping")
	}
	out := upnpc(t, l, "console", "-a", console, "8080", "8080", "tcp", "600")
	if !strings.Contains(out, "external "+public+":8080 TCP is redirected to internal "+console+":8080") {
		t.Fatalf("upnpc -a:\n%s", out)
	}
	t.Logf("upnpc -a:\n%s", out)
	if got, err := l.TCPDial("friend", to, 2*time.Second); err != nil || got != "hello from console" {
		t.Errorf("friend through upnpc's mapping: %q, %v", got, err)
	}
	var lease *nattable.Forward
	for _, f := range table(t, l, "home").Forwards {
		if f.Public.Port() == 8080 && f.Proto == "tcp" {
			lease = &f
		}
	}
	if lease == nil || lease.By != nattable.ByUPnP || lease.Expires > 600*time.Second || lease.Expires <= 0 {
		t.Errorf("the table's lease: %+v, want one by upnp for at most 10m", lease)
	}
	// A NAT-PMP lease is in the same store: UPnP lists it.
	c := newPCPClient(t, l, "console", "home")
	if _, err := c.Map(t.Context(), "udp", 5000, 5001, time.Hour); err != nil {
		t.Fatal(err)
	}
	list := upnpc(t, l, "console", "-l")
	for _, want := range []string{"TCP  8080->" + console + ":8080", "UDP  5001->" + console + ":5000"} {
		if !strings.Contains(list, want) {
			t.Errorf("upnpc -l lists no %q:\n%s", want, list)
		}
	}
	// The IGD refuses a forward to another host than the one asking,
	// and a public port another host holds.
	laptop := l.Addr("laptop", 0).String()
	for _, tc := range []struct{ from, to, want string }{
		{"console", laptop, "606"},
		{"laptop", laptop, "718"},
	} {
		if out, _ := upnpcMay(l, tc.from, "-a", tc.to, "8080", "8080", "tcp", "600"); !strings.Contains(out, "failed with code "+tc.want) {
			t.Errorf("upnpc -a %s 8080 from %s: want error %s:\n%s", tc.to, tc.from, tc.want, out)
		}
	}
	out = upnpc(t, l, "console", "-d", "8080", "tcp")
	if _, err := l.TCPDial("friend", to, 500*time.Millisecond); err == nil {
		t.Errorf("the friend still reached the console after upnpc -d:\n%s", out)
	}
}
