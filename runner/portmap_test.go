package runner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
)

// A portmap step asks by the protocol it names, each with its own client:
// of a NAT that speaks all three, the lease the NAT holds says who asked
// (NAT-PMP, PCP or UPnP), and a stranger's connection to the public port
// reaches the host. Left out, the protocol is the first the NAT speaks.
func TestPortmapByEachProtocol(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	l := labtest.Up(t, `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: [nat-pmp, pcp, upnp]}
  modern:  {kind: nat, type: port-restricted-cone, port-mapping: [pcp, upnp]}
  console: {kind: host, behind: home}
  phone:   {kind: host, behind: modern}
`)
	sess := runner.New(l.State, l.Topo)
	defer sess.Close()
	public := l.Addr("home", 0)
	runSteps(t, l, sess, []stepCase{
		{`{portmap: {from: console, port: 4001}}`, "ok", fmt.Sprintf("nat-pmp: home forwards tcp %v:4001 to console:4001 for 1h", public)},
		{`{portmap: {from: console, protocol: nat-pmp, proto: udp, port: 4002}}`, "ok", "nat-pmp: home forwards udp"},
		{`{portmap: {from: console, protocol: pcp, port: 4003, lifetime: 30m}}`, "ok", fmt.Sprintf("pcp: home forwards tcp %v:4003 to console:4003 for 30m", public)},
		{`{portmap: {from: console, protocol: pcp, proto: udp, port: 4004}}`, "ok", "pcp: home forwards udp"},
		{`{portmap: {from: console, protocol: upnp, port: 4005, lifetime: 10m}}`, "ok", fmt.Sprintf("upnp: home forwards tcp %v:4005 to console:4005", public)},
		{`{portmap: {from: console, protocol: upnp, proto: udp, port: 4006}}`, "ok", "upnp: home forwards udp"},
		{`{portmap: {from: phone, port: 4007}}`, "ok", "pcp: modern forwards tcp"},
		{`{send: {from: friend, to: console, proto: tcp, port: 4005}}`, "delivered", "console:4005 accepted a TCP connection"},
		{`{send: {from: friend, to: console, port: 4006}}`, "delivered", "reached console"},
	})
	one, err := step.ParseOne(l.State.ScenarioFile(), l.State.Scenario, "action", []byte(`{table: {node: home}}`))
	if err != nil {
		t.Fatal(err)
	}
	tab, ok := sess.Step(context.Background(), *one).Data.(*nattable.Table)
	if !ok {
		t.Fatal("the table step gave no table")
	}
	by := map[string]string{}
	for _, f := range tab.Forwards {
		by[fmt.Sprintf("%s %d", f.Proto, f.Public.Port())] = f.By
	}
	for key, want := range map[string]string{
		"tcp 4001": nattable.ByNATPMP, "udp 4002": nattable.ByNATPMP,
		"tcp 4003": nattable.ByPCP, "udp 4004": nattable.ByPCP,
		"tcp 4005": nattable.ByUPnP, "udp 4006": nattable.ByUPnP,
	} {
		if by[key] != want {
			t.Errorf("home's lease of %s is by %q; want %q (leases %v)", key, by[key], want, by)
		}
	}
}
