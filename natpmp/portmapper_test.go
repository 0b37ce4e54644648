package natpmp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"tailscale.com/net/netmon"
	"tailscale.com/net/netns"
	"tailscale.com/net/portmapper"
	"tailscale.com/net/portmapper/portmappertype"
	"tailscale.com/util/eventbus"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/testutil"
)

// Environment of the portmapper helper process.
const (
	helperEnv    = "NATLAB_PORTMAPPER_HELPER" // the local port to map
	helperNoPMP  = "NATLAB_PORTMAPPER_NO_PMP" // set: no NAT-PMP
	helperUPnP   = "NATLAB_PORTMAPPER_UPNP"   // set: UPnP too
	helperResult = "portmapper result: "
)

// portmapperResult is what the helper saw.
type portmapperResult struct {
	Probe    portmappertype.ProbeResult
	Type     string
	External netip.AddrPort
	Err      string
}

// TestPortmapperHelper is no test of its own: it is the process the
// portmapper tests start inside a host, where Tailscale's portmapper
// finds the gateway and opens its sockets as tailscaled would, probes,
// and creates a mapping of the port the environment names, printing what
// it got. It exits without releasing the mapping, so that the test can
// use it.
func TestPortmapperHelper(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv(helperEnv))
	if err != nil {
		t.Skip("started by TestTailscalePortmapper inside a host, not on its own")
	}
	// Sockets bound to the default route's device, as netns does, need a
	// monitor that knows it; the namespace's routes are all there is.
	netns.SetEnabled(false)
	res := portmapperResult{}
	defer func() { fmt.Printf("%s%s\n", helperResult, must(json.Marshal(res))) }()
	bus := eventbus.New()
	knobs := &portmapper.DebugKnobs{VerboseLogs: true}
	if os.Getenv(helperUPnP) == "" {
		// Without UPnP its probe waits for SSDP answers only as long
		// as for the others'.
		knobs.DisableUPnPFunc = func() bool { return true }
	}
	if os.Getenv(helperNoPMP) != "" {
		knobs.DisablePMPFunc = func() bool { return true }
	}
	c := portmapper.NewClient(portmapper.Config{EventBus: bus, NetMon: netmon.NewStatic(), Logf: t.Logf, DebugKnobs: knobs})
	mappings := eventbus.Subscribe[portmappertype.Mapping](bus.Client("natlab"))
	c.SetLocalPort(uint16(port))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res.Probe, err = c.Probe(ctx); err != nil {
		res.Err = "probe: " + err.Error()
		return
	}
	if _, ok := c.GetCachedMappingOrStartCreatingOne(); ok {
		res.Err = "a mapping before any was made"
		return
	}
	// The portmapper gives the NAT 250 ms to answer, and a try that
	// gets no answer in time makes no mapping: tailscaled asks again
	// whenever it looks for its endpoints, and so does this, every
	// second (make vm-test's emulated machine is slow enough to need it).
	again := time.NewTicker(time.Second)
	defer again.Stop()
	for {
		select {
		case m := <-mappings.Events():
			res.Type, res.External = m.Type, m.External
			return
		case <-again.C:
			c.GetCachedMappingOrStartCreatingOne()
		case <-ctx.Done():
			res.Err = "no mapping was made"
			return
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Tailscale's portmapper, a client nobody here wrote, run inside a host
// as tailscaled runs it: its probe finds what the NAT speaks, it makes a
// mapping with the protocol it prefers of those, and a packet from the
// internet to the public port it was given reaches the host.
func TestTailscalePortmapper(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, tc := range []struct {
		mapping  string
		noPMP    bool
		probe    portmappertype.ProbeResult
		wantType string
	}{
		{"pcp", false, portmappertype.ProbeResult{PCP: true}, "pcp"},
		{"nat-pmp", false, portmappertype.ProbeResult{PMP: true}, "pmp"},
		// Offered both, the portmapper maps by NAT-PMP, and by PCP once
		// told not to use NAT-PMP (its probe then asks by PCP only).
		{"[nat-pmp, pcp]", false, portmappertype.ProbeResult{PCP: true, PMP: true}, "pmp"},
		{"[nat-pmp, pcp]", true, portmappertype.ProbeResult{PCP: true}, "pcp"},
		// UPnP is found by SSDP and used when nothing else is there.
		{"[nat-pmp, pcp, upnp]", false, portmappertype.ProbeResult{PCP: true, PMP: true, UPnP: true}, "pmp"},
		{"upnp", false, portmappertype.ProbeResult{UPnP: true}, "upnp"},
	} {
		t.Run(fmt.Sprintf("%s, no pmp %v", tc.mapping, tc.noPMP), func(t *testing.T) {
			l := labtest.Up(t, `
nodes:
  friend:  {kind: host}
  home:    {kind: nat, type: port-restricted-cone, port-mapping: `+tc.mapping+`}
  console: {kind: host, behind: home}
`)
			game := l.UDP("console", ":0")
			cmd := l.Lab.Node("console").Command(os.Args[0], "-test.run=^TestPortmapperHelper$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(int(game.LocalPort())))
			if tc.noPMP {
				cmd.Env = append(cmd.Env, helperNoPMP+"=1")
			}
			if tc.probe.UPnP {
				cmd.Env = append(cmd.Env, helperUPnP+"=1")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("portmapper helper: %v\n%s", err, out)
			}
			var res portmapperResult
			if i := indexOf(out, helperResult); i < 0 || json.Unmarshal(lineAt(out, i+len(helperResult)), &res) != nil {
				t.Fatalf("portmapper helper said nothing:\n%s", out)
			}
			if res.Err != "" || res.Probe != tc.probe || res.Type != tc.wantType || res.External.Addr() != l.Addr("home", 0) {
				t.Fatalf("portmapper: %+v; want probe %+v and a %s mapping on %v\n%s", res, tc.probe, tc.wantType, l.Addr("home", 0), out)
			}
			l.UDP("friend", "").Send(res.External, "through the portmapper's mapping")
			game.Expect("through the portmapper's mapping", 2*time.Second)
		})
	}
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

func lineAt(b []byte, i int) []byte {
	j := i
	for j < len(b) && b[j] != '\n' {
		j++
	}
	return b[i:j]
}
