package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/scenarios"
)

// hostState records what natlab must never change in the root namespace,
// read with independent tools: links, addresses, routes and rules of both
// families, the nftables ruleset, the sysctls natlab sets inside its
// namespaces, the named namespaces that are not natlab's, and the mounts
// that are not of natlab's namespaces.
func hostState(t *testing.T) map[string]string {
	t.Helper()
	state := map[string]string{}
	// Values that change by themselves: address lifetimes count down,
	// counters count.
	volatile := regexp.MustCompile(`"(valid|preferred)_life_time":\d+|expires \d+sec|counter packets \d+ bytes \d+`)
	for key, argv := range map[string][]string{
		"links":     {"ip", "-d", "link", "show"},
		"addresses": {"ip", "addr", "show"},
		"routes4":   {"ip", "-4", "route", "show", "table", "all"},
		"routes6":   {"ip", "-6", "route", "show", "table", "all"},
		"rules4":    {"ip", "-4", "rule", "show"},
		"rules6":    {"ip", "-6", "rule", "show"},
		"nftables":  {"nft", "list", "ruleset"},
	} {
		out, err := exec.Command(testutil.RequireTool(t, argv[0]), argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		state[key] = volatile.ReplaceAllString(string(out), "")
	}
	var sysctls []string
	for _, name := range []string{
		"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding",
		"net.ipv4.ip_nonlocal_bind", "net.ipv6.ip_nonlocal_bind",
		"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6",
		"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad",
		"net.ipv6.conf.all.accept_ra", "net.ipv6.conf.default.accept_ra",
		"net.ipv6.conf.all.autoconf", "net.ipv6.conf.default.autoconf",
		"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream",
		"net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter",
	} {
		v, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			v = []byte("(absent)") // a module natlab loads may add it: compared below
		}
		sysctls = append(sysctls, name+" = "+strings.TrimSpace(string(v)))
	}
	state["sysctls"] = strings.Join(sysctls, "\n")
	entries, _ := os.ReadDir("/run/netns")
	var foreign []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "natlab-") {
			foreign = append(foreign, e.Name())
		}
	}
	state["other namespaces"] = strings.Join(foreign, "\n")
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []string
	for _, l := range strings.Split(string(mi), "\n") {
		// Drop the mount IDs, which a remount renumbers; keep what and where.
		if f := strings.Fields(l); len(f) > 4 && !strings.Contains(l, "/natlab-") {
			mounts = append(mounts, strings.Join(f[3:], " "))
		}
	}
	sort.Strings(mounts)
	state["mounts"] = strings.Join(mounts, "\n")
	return state
}

// diffHost names what changed between two records, a few lines each. A
// sysctl that was absent before may appear (its module got loaded), but
// none may change its value.
func diffHost(before, after map[string]string) []string {
	var diffs []string
	for key, b := range before {
		a := after[key]
		if a == b {
			continue
		}
		bl, al := strings.Split(b, "\n"), strings.Split(a, "\n")
		in := func(l string, ls []string) bool {
			for _, x := range ls {
				if x == l {
					return true
				}
			}
			return false
		}
		var lines []string
		for _, l := range bl {
			if !in(l, al) && !(key == "sysctls" && strings.HasSuffix(l, "(absent)")) {
				lines = append(lines, "  - "+l)
			}
		}
		for _, l := range al {
			if !in(l, bl) && !(key == "sysctls" && in(strings.SplitN(l, " = ", 2)[0]+" = (absent)", bl)) {
				lines = append(lines, "  + "+l)
			}
		}
		if len(lines) > 0 {
			diffs = append(diffs, key+":\n"+strings.Join(lines, "\n"))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// Every built-in scenario run (up, steps, down), one that fails its
// expectations, bring-ups interrupted and killed half way, and every bad
// file of the corpus leave the root namespace exactly as they found it.
func TestHostUntouched(t *testing.T) {
	testutil.RequireRoot(t)
	before := hostState(t)
	names := scenarios.Names()
	failing := filepath.Join(t.TempDir(), "failing.yaml")
	os.WriteFile(failing, []byte(`name: failing
nodes:
  stun:  {kind: server, services: [stun]}
  home:  {kind: nat, type: full-cone}
  alice: {kind: host, behind: home}
  bob:   {kind: host}
steps:
  - send: {from: bob, to: alice, expect: ok}
`), 0o644)
	jobs := [][]string{{"run", failing}}
	for _, n := range names {
		jobs = append(jobs, []string{"run", n})
	}
	var mu sync.Mutex
	var failures []string
	work := make(chan []string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for args := range work {
				lab := testutil.UniqueName(t)
				r := run(t, append(args, "--name", lab)...)
				wantFail := args[1] == failing
				if (r.code != 0) != wantFail {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("natlab %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr))
					mu.Unlock()
				}
				if left := leftovers(t, lab); len(left) > 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("natlab %s left behind: %v", strings.Join(args, " "), left))
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	// Bring-ups that die half way: interrupted (Ctrl-C) and killed, then
	// taken down without their file.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		lab := testutil.UniqueName(t)
		cmd := exec.Command(natlab, "up", "symmetric", "--name", lab)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond)
		cmd.Process.Signal(sig)
		cmd.Wait()
		if r := run(t, "down", lab); r.code != 0 {
			t.Errorf("down after %v: exit %d\n%s", sig, r.code, r.stderr)
		}
	}
	bad, _ := filepath.Glob("../../topology/testdata/invalid/*.yaml")
	for _, f := range bad {
		if r := run(t, "up", f); r.code != 2 {
			t.Errorf("up %s: exit %d, want 2", f, r.code)
		}
	}
	if diffs := diffHost(before, hostState(t)); len(diffs) > 0 {
		t.Errorf("the root namespace changed:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestDiffHost(t *testing.T) {
	before := map[string]string{
		"sysctls": "net.ipv4.ip_forward = 0\nnet.netfilter.nf_conntrack_udp_timeout = (absent)",
		"links":   "1: lo\n2: eth0",
	}
	for _, tc := range []struct {
		name  string
		after map[string]string
		want  string
	}{
		{"same", before, ""},
		{"module loaded", map[string]string{"sysctls": "net.ipv4.ip_forward = 0\nnet.netfilter.nf_conntrack_udp_timeout = 30", "links": before["links"]}, ""},
		{"sysctl changed", map[string]string{"sysctls": "net.ipv4.ip_forward = 1\nnet.netfilter.nf_conntrack_udp_timeout = (absent)", "links": before["links"]},
			"sysctls:\n  - net.ipv4.ip_forward = 0\n  + net.ipv4.ip_forward = 1"},
		{"link added", map[string]string{"sysctls": before["sysctls"], "links": "1: lo\n2: eth0\n3: veth0"}, "links:\n  + 3: veth0"},
		{"link gone", map[string]string{"sysctls": before["sysctls"], "links": "1: lo"}, "links:\n  - 2: eth0"},
	} {
		if got := strings.Join(diffHost(before, tc.after), "\n"); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}
