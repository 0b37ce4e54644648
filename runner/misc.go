package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	natspec "github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tunnel"
)

func (r *Session) wait(ctx context.Context, s topology.Step) (StepResult, error) {
	select {
	case <-time.After(s.Duration):
	case <-ctx.Done():
		return StepResult{Observed: "interrupted", Reason: "the run was interrupted"}, nil
	}
	return StepResult{Expect: "ok", Observed: "ok", Pass: true, Detail: fmt.Sprintf("waited %v", s.Duration)}, nil
}

func (r *Session) exec(ctx context.Context, s topology.Step) (StepResult, error) {
	n, err := r.node(s.Node)
	if err != nil {
		return StepResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	argv := s.Command
	if s.Shell {
		argv = []string{"/bin/sh", "-c", s.Command[0]}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.Env = append(cmd.Environ(), "NATLAB_LAB="+r.st.Name, "NATLAB_NODE="+s.Node)
	// The command and whatever it starts are one process group, so a
	// timeout ends them all, and the step does not wait for a child that
	// holds its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	// Started from a thread inside the node, the command runs there.
	if err := n.Do(cmd.Start); err != nil {
		return verdict(s, "fail", StepResult{Reason: err.Error()}), nil
	}
	err = cmd.Wait()
	out := strings.TrimSpace(output.String())
	res := StepResult{Data: map[string]any{"output": out}}
	last := out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		last = out[i+1:]
	}
	res.Detail = last
	var ee *exec.ExitError
	switch {
	case err == nil:
		return verdict(s, "ok", res), nil
	case ctx.Err() != nil:
		res.Reason = fmt.Sprintf("still running after %v, killed", s.Timeout)
	case errors.As(err, &ee):
		res.Reason = fmt.Sprintf("exit status %d: %s", ee.ExitCode(), last)
	default:
		res.Reason = err.Error()
	}
	return verdict(s, "fail", res), nil
}

// table shows a NAT's translation table and checks its size.
func (r *Session) table(s topology.Step) (StepResult, error) {
	ns, err := namedns.Open(lab.NamespaceName(r.st.Name, s.Node))
	if err != nil {
		return StepResult{}, err
	}
	defer ns.Close()
	n := r.topo.Node(s.Node)
	t, err := nattable.Read(ns.Fd(), n.Addresses[0])
	if err != nil {
		return StepResult{}, fmt.Errorf("node %s: %w", s.Node, err)
	}
	t.AddStatic(n.Addresses[0], n.NAT.Forwards)
	var b strings.Builder
	nattable.Write(&b, t)
	res := StepResult{
		Expect:   expectWord(s),
		Observed: fmt.Sprintf("{mappings %d, flows %d}", len(t.Mappings), len(t.Flows)),
		Detail:   strings.TrimRight(b.String(), "\n"),
		Data:     t,
		Pass:     true,
	}
	var wrong []string
	if m := s.Expect.Mappings; m != nil && *m != len(t.Mappings) {
		wrong = append(wrong, fmt.Sprintf("%d mappings, not %d", len(t.Mappings), *m))
	}
	if f := s.Expect.Flows; f != nil && *f != len(t.Flows) {
		wrong = append(wrong, fmt.Sprintf("%d flows, not %d", len(t.Flows), *f))
	}
	if len(wrong) > 0 {
		res.Pass, res.Reason = false, strings.Join(wrong, "; ")
	}
	return res, nil
}

// portmap asks the host's NAT for a forward by NAT-PMP.
func (r *Session) portmap(ctx context.Context, sc *scope, s topology.Step) (StepResult, error) {
	host := r.topo.Node(s.From)
	nat := r.topo.Node(host.Behind)
	c, err := r.fresh(sc, s.From, topology.FamilyIPv4)
	if err != nil {
		return StepResult{}, err
	}
	client := natpmp.Client{Conn: c, Gateway: nat.NAT.Gateway}
	want := s.PublicPort
	if want == 0 {
		want = s.Port
	}
	m, err := client.Map(string(s.Proto), s.Port, want, s.Lifetime)
	if err != nil {
		return verdict(s, "fail", StepResult{Reason: err.Error(), Detail: fmt.Sprintf("%s asked %s (%v) for %s port %d", s.From, nat.Name, nat.NAT.Gateway, s.Proto, want)}), nil
	}
	public := netip.AddrPortFrom(nat.Addresses[0], m.External)
	r.mu.Lock()
	r.forwards[forwardKey{s.From, s.Proto, s.Port}] = public
	r.mu.Unlock()
	return verdict(s, "ok", StepResult{Data: m,
		Detail: fmt.Sprintf("%s forwards %s %v to %s:%d for %s", nat.Name, s.Proto, public, s.From, s.Port, natspec.FormatDuration(m.Lifetime))}), nil
}

// tunnel opens a reverse tunnel from the host through the relay; it stays
// open until the end of the run.
func (r *Session) tunnel(ctx context.Context, s topology.Step) (StepResult, error) {
	n, err := r.node(s.From)
	if err != nil {
		return StepResult{}, err
	}
	relay := r.plan(s.Server).Tunnel
	c, err := tunnel.Open(ctx, n.DialContext, relay.Addr(), s.PublicPort, fmt.Sprintf("127.0.0.1:%d", s.Port))
	if err != nil {
		return verdict(s, "fail", StepResult{Reason: err.Error()}), nil
	}
	r.mu.Lock()
	r.closers = append(r.closers, c.Close)
	r.forwards[forwardKey{s.From, topology.TCP, s.Port}] = c.Public
	r.mu.Unlock()
	return verdict(s, "ok", StepResult{Data: c.Public,
		Detail: fmt.Sprintf("%s is reachable at %v through %s, for as long as the run lasts", s.From, c.Public, theRelay(s.Server))}), nil
}

// theRelay names a relay server in a sentence: "the relay r1", or "the
// relay" for one named relay, not "the relay relay".
func theRelay(server string) string {
	if server == "relay" {
		return "the relay"
	}
	return "the relay " + server
}
