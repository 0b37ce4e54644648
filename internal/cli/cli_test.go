package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/natrules"
)

// The CLI is tested as a user runs it: the natlab binary, built once.
var natlab string

func TestMain(m *testing.M) {
	var remove func()
	natlab, remove = testutil.BuildNatlab("cli-test")
	code := m.Run()
	remove()
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, nil, args...)
}

func runAs(t *testing.T, prefix []string, args ...string) result {
	t.Helper()
	argv := append(append([]string{}, prefix...), natlab)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = repoRoot(t)
	return runCmd(t, cmd)
}

// runCmd runs cmd to its end and returns what it printed and its exit
// code; only a failure to start it fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidate(t *testing.T) {
	r := run(t, "validate", "scenarios/symmetric.yaml", "full-cone")
	if r.code != 0 || !strings.Contains(r.stdout, "scenarios/symmetric.yaml: ok: lab symmetric, 2 NATs, 2 hosts, 1 server") {
		t.Errorf("validate good files: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("nodes:\n  a: {kind: nat, type: cone}\n  b: {kind: host, behind: c}\n"), 0o644)
	r = run(t, "validate", bad)
	if r.code != 2 {
		t.Errorf("validate a bad file: exit %d, want 2", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":2:") || !strings.HasPrefix(lines[1], bad+":3:") {
		t.Errorf("want one FILE:LINE:COL line per problem, got:\n%s", r.stderr)
	}
	r = run(t, "validate", "no-such-file.yaml")
	if r.code != 2 || !strings.Contains(r.stderr, "no-such-file.yaml") {
		t.Errorf("missing file: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, "validate", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "directory") {
		t.Errorf("a directory: exit %d, %s", r.code, r.stderr)
	}
}

func TestList(t *testing.T) {
	r := run(t, "list")
	for _, name := range []string{"symmetric", "full-cone", "restricted-cone", "port-restricted-cone"} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("list does not show %s:\n%s", name, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "does not parse") {
		t.Errorf("a built-in scenario does not parse:\n%s", r.stdout)
	}
}

// A path is never taken for a lab's name by the commands that take either.
func TestGraphOfAPath(t *testing.T) {
	r := run(t, "graph", "scenarios/symmetric.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "flowchart") {
		t.Errorf("graph: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRulesFromFileNeedsNoRoot(t *testing.T) {
	r := run(t, "rules", "scenarios/symmetric.yaml", "nat-a")
	if r.code != 0 || !strings.Contains(r.stdout, "table ip natlab {") || !strings.Contains(r.stdout, "snat to 203.0.113.1 random") {
		t.Errorf("rules: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "rules", "symmetric", "alice"); r.code != 2 || !strings.Contains(r.stderr, "not a nat") {
		t.Errorf("rules of a host: exit %d, %s", r.code, r.stderr)
	}
	// A host with a firewall has the firewall's table.
	file := filepath.Join(t.TempDir(), "fw.yaml")
	if err := os.WriteFile(file, []byte("nodes:\n  vps: {kind: host, firewall: stateful}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "rules", file, "vps")
	if r.code != 0 || !strings.Contains(r.stdout, "table inet natlab_firewall {") || !strings.Contains(r.stdout, "firewall stateful") {
		t.Errorf("rules of a host with a firewall: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"up"}, {"down"}, {"down", "x", "--all"}, {"exec", "lab"}, {"rules", "x"}, {"up", "--bogus", "x"},
	} {
		r := run(t, args...)
		if r.code != 2 || r.stderr == "" || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("natlab %v: exit %d, stderr %q; want exit 2 and a short message", args, r.code, r.stderr)
		}
	}
}

func TestNeedsRootSaysSoFirst(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv := testutil.RequireTool(t, "setpriv")
	nobody := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
	for _, args := range [][]string{{"up", "symmetric"}, {"down", "--all"}, {"exec", "symmetric", "alice", "--", "true"}} {
		r := runAs(t, nobody, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "needs root") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("natlab %v as nobody: exit %d, stderr %q; want one line saying it needs root", args, r.code, r.stderr)
		}
	}
	if r := runAs(t, nobody, "validate", "symmetric"); r.code != 0 {
		t.Errorf("validate as nobody: exit %d, %s", r.code, r.stderr)
	}
}

func TestUpStatusExecDown(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	r := run(t, "up", "symmetric", "--name", name)
	if r.code != 0 || !strings.Contains(r.stdout, "lab "+name+" is up") {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "up", "symmetric", "--name", name); r.code == 0 || !strings.Contains(r.stderr, "already up") {
		t.Errorf("second up: exit %d, %s", r.code, r.stderr)
	}

	r = run(t, "status", name, "--json")
	var labs []struct {
		Name      string
		State     string
		Flowtable string
		Nodes     []struct {
			Name, Namespace string
			Addresses       []string
			NAT             *struct{ Type, Mapping string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &labs); err != nil || len(labs) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if labs[0].State != "up" || len(labs[0].Nodes) != 5 {
		t.Errorf("status: %+v", labs[0])
	}
	for _, n := range labs[0].Nodes {
		if n.Name == "nat-a" && (n.NAT == nil || n.NAT.Type != "symmetric" || n.NAT.Mapping != "address-and-port-dependent") {
			t.Errorf("nat-a in status: %+v", n)
		}
		if n.Namespace != "natlab-"+name+"-"+n.Name {
			t.Errorf("node %s in namespace %s", n.Name, n.Namespace)
		}
	}

	// Whether the kernel has a flowtable, asked in a namespace of the
	// test's own: status says so once, in JSON and in text.
	ns, _ := testutil.NewNS(t, "ft")
	has, err := natrules.HasFlowtable(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	want := map[bool]string{false: "absent", true: "present"}[has]
	if labs[0].Flowtable != want {
		t.Errorf("status --json: flowtable %q, want %q (HasFlowtable: %v)", labs[0].Flowtable, want, has)
	}
	r = run(t, "status", name)
	wantLine := map[bool]string{false: "fast path: none; this kernel has no nftables flowtable", true: "fast path: the kernel's nftables flowtable; nat-a "}[has]
	if strings.Count(r.stdout, "fast path:") != 1 || !strings.Contains(r.stdout, wantLine) {
		t.Errorf("status says\n%s\nwant one fast path line: %q", r.stdout, wantLine)
	}

	r = run(t, "exec", name, "alice", "--", "sh", "-c", "echo $NATLAB_NODE; ip -4 -o addr show eth0")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "alice\n") || !strings.Contains(r.stdout, "192.168.1.2/24") {
		t.Errorf("exec in alice: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "exec", name, "alice", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec passes the exit code on: got %d, want 7", r.code)
	}
	if r := run(t, "exec", name, "nobody", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "no node nobody") {
		t.Errorf("exec in a missing node: exit %d, %s", r.code, r.stderr)
	}
	r = run(t, "rules", name, "nat-b")
	if r.code != 0 || !strings.Contains(r.stdout, "natlab-"+name+"-nat-b, port-restricted-cone") {
		t.Errorf("rules of a running lab: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	if r := run(t, "down", name); r.code != 0 || !strings.Contains(r.stdout, "removed lab "+name) {
		t.Errorf("down: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "down", name); r.code != 0 || !strings.Contains(r.stdout, "not up") {
		t.Errorf("second down: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "status", name); r.code != 2 {
		t.Errorf("status of a removed lab: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Ctrl-C during up removes everything built so far, wherever it lands.
func TestInterruptedUpLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	var scenario strings.Builder
	scenario.WriteString("nodes:\n  nat: {kind: nat, type: full-cone}\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&scenario, "  h%d: {kind: host, behind: nat}\n", i)
	}
	file := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(file, []byte(scenario.String()), 0o644)
	for _, delay := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond} {
		name := testutil.UniqueName(t)
		cmd := exec.Command(natlab, "up", file, "--name", name)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			run(t, "down", name) // it finished first
		case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
			// Killed before natlab set up its handler, so before it built
			// anything.
		case !strings.Contains(stderr.String(), "interrupted") || ee == nil || ee.ExitCode() != 130:
			t.Errorf("interrupted after %v: %v, stderr %q; want exit 130 and a message", delay, err, stderr.String())
		}
		left, _ := filepath.Glob("/run/netns/natlab-" + name + "-*")
		if _, err := os.Stat("/run/natlab/" + name + ".json"); err == nil {
			left = append(left, "/run/natlab/"+name+".json")
		}
		if len(left) > 0 {
			t.Errorf("interrupted after %v, left behind: %v", delay, left)
			run(t, "down", name)
		}
	}
}

func TestRunBuiltin(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	name := testutil.UniqueName(t)
	r := run(t, "run", "symmetric", "--name", name, "--json", dir+"/r.json", "--junit", dir+"/r.xml")
	if r.code != 0 || !strings.Contains(r.stdout, "5 passed, 0 failed") {
		t.Fatalf("run symmetric: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	junit, err := os.ReadFile(dir + "/r.xml")
	if err != nil || strings.Count(string(junit), "<testcase ") != 5 || strings.Contains(string(junit), "<failure") {
		t.Errorf("JUnit: %v\n%s", err, junit)
	}
	var rep struct {
		Passed bool
		Steps  []struct{ Observed string }
		// Where the time went: the lab's up and down beside the steps.
		Up   int64 `json:"up_ns"`
		Down int64 `json:"down_ns"`
	}
	data, _ := os.ReadFile(dir + "/r.json")
	if err := json.Unmarshal(data, &rep); err != nil || !rep.Passed || len(rep.Steps) != 5 || rep.Steps[4].Observed != "relay" || rep.Up <= 0 || rep.Down <= 0 {
		t.Errorf("JSON report: %v %+v", err, rep)
	}
	if left, _ := filepath.Glob("/run/netns/natlab-" + name + "-*"); len(left) > 0 {
		t.Errorf("run left namespaces: %v", left)
	}
}

func TestRunFailingExpectation(t *testing.T) {
	testutil.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "wrong.yaml")
	os.WriteFile(file, []byte(`
nodes:
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat, type: full-cone}
  alice: {kind: host, behind: nat-a}
  friend: {kind: host}
steps:
  - send: {from: friend, to: alice, expect: delivered}
  - send: {from: alice, to: friend}
  - send: {from: friend, to: alice}
  - exec: {node: alice, command: "exit 3"}
`), 0o644)
	name := testutil.UniqueName(t)
	r := run(t, "run", file, "--name", name)
	// The first send cannot get in (no mapping yet) and the exec fails.
	if r.code != 1 || !strings.Contains(r.stdout, "2 passed, 2 failed") || !strings.Contains(r.stdout, "exit status 3") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if left, _ := filepath.Glob("/run/netns/natlab-" + name + "-*"); len(left) > 0 {
		t.Errorf("a failed run left namespaces: %v", left)
	}
}

func TestClassifyCommand(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "restricted-cone", "--name", name); r.code != 0 {
		t.Fatalf("up: %s%s", r.stdout, r.stderr)
	}
	r := run(t, "classify", name, "bob", "--json")
	var res struct{ Type, Mapping, Filtering, Ports string }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Type != "address-restricted-cone" || res.Filtering != "address-dependent" || res.Ports != "preserve" {
		t.Errorf("classify: exit %d %v %+v\n%s", r.code, err, res, r.stderr)
	}
}

func TestMatrixCommand(t *testing.T) {
	testutil.RequireRoot(t)
	r := run(t, "matrix", "--types", "full-cone,symmetric", "--json")
	var out struct {
		Cells []struct {
			Punched, Expected bool
			Up                int64 `json:"up_ns"`
			Punch             int64 `json:"punch_ns"`
			Relay             int64 `json:"relay_ns"`
			Down              int64 `json:"down_ns"`
		}
		Unexpected int
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 || len(out.Cells) != 4 || out.Unexpected != 0 {
		t.Errorf("matrix: exit %d %v %+v\n%s", r.code, err, out, r.stderr)
	}
	for _, c := range out.Cells {
		// Each cell says where its time went; only a cell that punched
		// needs no relay.
		if c.Up <= 0 || c.Punch <= 0 || c.Down <= 0 || (c.Relay > 0) == c.Punched {
			t.Errorf("a cell's times: %+v", c)
		}
	}
	if r := run(t, "matrix", "--types", "cone"); r.code != 2 {
		t.Errorf("matrix with a bad type: exit %d", r.code)
	}
	if r := run(t, "matrix", "--types", "full-cone,one-to-one"); r.code != 2 || !strings.Contains(r.stderr, "classic types") {
		t.Errorf("matrix with one-to-one: exit %d, want 2 saying it crosses the classic types\n%s", r.code, r.stderr)
	}
}

// The whole tour, end to end, as a class would see it.
func TestTourRunsThrough(t *testing.T) {
	testutil.RequireRoot(t)
	r := run(t, "tour", "--no-pause")
	for _, act := range []string{"Act I: The address problem", "Act III: The wall", "Act V: The trick", "Act VII: The real world: IPv6", "That is the story"} {
		if !strings.Contains(r.stdout, act) {
			t.Errorf("the tour did not show %q", act)
		}
	}
	if r.code != 0 || !strings.Contains(r.stdout, "DROP") || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("tour: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "tour", "--act", "IX"); r.code != 2 {
		t.Errorf("tour --act IX: exit %d", r.code)
	}
}

func TestGraphAndTableAndTrace(t *testing.T) {
	if r := run(t, "graph", "symmetric", "--format", "svg"); r.code != 0 || !strings.HasPrefix(r.stdout, "<svg") {
		t.Errorf("graph: exit %d %s", r.code, r.stderr)
	}
	if r := run(t, "graph", "symmetric", "--format", "png"); r.code != 2 {
		t.Errorf("graph --format png: exit %d", r.code)
	}
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "act1-address-problem", "--name", name); r.code != 0 {
		t.Fatalf("up: %s", r.stderr)
	}
	// Trace the NAT while a device pings out; the table then shows the flow.
	tr := exec.Command(natlab, "trace", name, "home", "--count", "2", "--duration", "5s", "--json")
	var out bytes.Buffer
	tr.Stdout = &out
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	run(t, "exec", name, "phone", "--", "ping", "-c", "1", "-W", "1", "203.0.113.10")
	tr.Wait()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"kind":"forwarded"`) || !strings.Contains(lines[0], "203.0.113.50") {
		t.Errorf("trace --json:\n%s", out.String())
	}
	r := run(t, "table", name, "home", "--json")
	var table struct {
		Flows []struct{ Proto, Public string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &table); err != nil || len(table.Flows) != 1 || table.Flows[0].Proto != "icmp" {
		t.Errorf("table --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if r := run(t, "table", name, "phone"); r.code != 2 {
		t.Errorf("table of a host: exit %d", r.code)
	}
}

// pageURL reads what natlab ui prints up to the page's URL, and returns
// it; "" if natlab ui ended before printing one.
func pageURL(lines *bufio.Scanner) string {
	for lines.Scan() {
		if l := strings.TrimSpace(lines.Text()); strings.HasPrefix(l, "http://127.0.0.1:") {
			return l
		}
	}
	return ""
}

// natlab ui brings a scenario up, serves its page with the token it
// prints, and on Ctrl-C stops and takes the lab down.
func TestUICommand(t *testing.T) {
	for _, args := range [][]string{{"ui", "--listen", "nonsense"}, {"ui", "a", "b"}, {"ui", "no-such-scenario"}, {"ui", "--token", "short"}} {
		if r := run(t, args...); r.code != 2 || !strings.Contains(r.stderr, "natlab") {
			t.Errorf("natlab %v: exit %d, %q; want a usage error", args, r.code, r.stderr)
		}
	}
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	ui := startUI(t, "a-token-of-my-own", "act1-address-problem", "--name", name)
	cmd, stderr, rest, copied, base := ui.cmd, &ui.stderr, &ui.rest, ui.copied, ui.base
	resp, err := http.Get(base + "/api/state?token=a-token-of-my-own")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"lab":"`+name+`"`) {
		t.Errorf("state: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get(base + "/api/state"); err != nil || resp.StatusCode != 401 {
		t.Errorf("state without the token: %v %v", resp.Status, err)
	}
	cmd.Process.Signal(os.Interrupt)
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Errorf("natlab ui after Ctrl-C: %v; stderr %q", err, stderr.String())
	}
	if left, _ := filepath.Glob("/run/netns/natlab-" + name + "-*"); len(left) > 0 {
		t.Errorf("natlab ui left %v behind", left)
	}
	// The lab it brought up, it says it took down.
	if want := "lab " + name + " is down\n"; strings.Count(rest.String(), want) != 1 {
		t.Errorf("natlab ui printed after Ctrl-C %q, want one line %q", rest.String(), want)
	}
}
