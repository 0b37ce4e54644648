package step

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/natlab/natlab/topology"
)

// Exec runs a command on a node.
type Exec struct {
	// Where to run the command: a node, or internet for the internet
	// segment's own namespace.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// The command to run.
	Command []string `yaml:"command" format:"Command" schema:"required"`
	// How long the command may take, 100ms to 1h.
	Timeout time.Duration `yaml:"timeout" format:"Duration" default:"30s"`
	// Whether the command must exit 0.
	Expect string   `yaml:"expect" format:"OKFail" default:"ok"`
	_      struct{} `name:"exec NODE: COMMAND"`

	// Shell says Command is one string for sh -c.
	Shell bool
}

func (s *Exec) read(f *topology.StepFields) string {
	s.Node, _ = f.NodeOrInternet("node")
	s.Command, s.Shell = f.Command("command")
	s.Timeout = f.Timeout(30*time.Second, topology.MaxExecTimeout)
	s.Expect = f.Outcome(okFail, "ok", "ok or fail", nil)
	summary := strings.Join(s.Command, " ")
	if !s.Shell {
		quoted := make([]string, len(s.Command))
		for i, arg := range s.Command {
			quoted[i] = topology.ShellQuote(arg)
		}
		summary = strings.Join(quoted, " ")
	}
	return topology.Clip(fmt.Sprintf("exec %s: %s", s.Node, summary), topology.MaxStepNameLen)
}

// Describe says where the command runs, what it is and its timeout.
func (s *Exec) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, " on %s", s.Node)
	if s.Shell && len(s.Command) == 1 {
		fmt.Fprintf(&b, ", sh -c %s", strconv.Quote(s.Command[0]))
	} else {
		b.WriteString(", argv")
		for _, arg := range s.Command {
			fmt.Fprintf(&b, " %s", strconv.Quote(arg))
		}
	}
	fmt.Fprintf(&b, ", timeout %s, expect %s", topology.FormatDuration(s.Timeout), s.Expect)
	return b.String()
}

// Expected is ok or fail.
func (s *Exec) Expected() string { return s.Expect }

// Needs is nothing: the command is the file's own.
func (s *Exec) Needs(Env) []Need { return nil }

// Run runs the command in the node and waits for it, at most Timeout.
func (s *Exec) Run(ctx context.Context, env Env) (Result, error) {
	n, err := env.Node(s.Node)
	if err != nil {
		return Result{}, err
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
	cmd.Env = append(cmd.Environ(), "NATLAB_LAB="+env.Lab(), "NATLAB_NODE="+s.Node)
	// The command and whatever it starts are one process group, so a
	// timeout ends them all, and the step does not wait for a child that
	// holds its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	// Started from a thread inside the node, the command runs there.
	if err := n.Do(cmd.Start); err != nil {
		return verdict(s, s.Expect, "fail", Result{Reason: err.Error()}), nil
	}
	err = cmd.Wait()
	out := strings.TrimSpace(output.String())
	res := Result{Data: map[string]any{"output": out}}
	last := out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		last = out[i+1:]
	}
	res.Detail = last
	var ee *exec.ExitError
	switch {
	case err == nil:
		return verdict(s, s.Expect, "ok", res), nil
	case ctx.Err() != nil:
		res.Reason = fmt.Sprintf("still running after %v, killed", s.Timeout)
	case errors.As(err, &ee):
		res.Reason = fmt.Sprintf("exit status %d: %s", ee.ExitCode(), last)
	default:
		res.Reason = err.Error()
	}
	return verdict(s, s.Expect, "fail", res), nil
}
