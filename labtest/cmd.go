package labtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// Cmd is an exec.Cmd that runs inside a node. Set its fields (Dir, Env,
// Stdin, Stdout, ...) as for any exec.Cmd, and start it with the methods
// of Cmd, not those of the embedded exec.Cmd, which would start it in the
// test's own namespace. Wait, Process and the rest are exec.Cmd's.
type Cmd struct {
	*exec.Cmd
	node *Node
}

// Command returns a Cmd that runs the program name with arg inside the
// node, as exec.Command does. The program sees the node's interfaces,
// addresses and routes; the file system, users and processes are the
// test's.
func (n *Node) Command(name string, arg ...string) *Cmd {
	return &Cmd{Cmd: exec.Command(name, arg...), node: n}
}

// CommandContext is Command with a context that kills the program when
// it ends, as exec.CommandContext does.
func (n *Node) CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	return &Cmd{Cmd: exec.CommandContext(ctx, name, arg...), node: n}
}

// Start starts the program inside the node: it is forked from a thread
// in the node's namespace, and a new process keeps its parent thread's
// namespace.
func (c *Cmd) Start() error {
	if err := c.node.Do(c.Cmd.Start); err != nil {
		return fmt.Errorf("node %s: %w", c.node.Name, err)
	}
	return nil
}

// Run starts the program inside the node and waits for it, as
// exec.Cmd.Run does.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the program inside the node and returns its standard
// output, as exec.Cmd.Output does: if it fails and Stderr was not set,
// the *exec.ExitError holds its standard error.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("labtest: Stdout already set")
	}
	var stdout, stderr bytes.Buffer
	c.Stdout = &stdout
	captureErr := c.Stderr == nil
	if captureErr {
		c.Stderr = &stderr
	}
	err := c.Run()
	var ee *exec.ExitError
	if captureErr && errors.As(err, &ee) {
		ee.Stderr = stderr.Bytes()
	}
	return stdout.Bytes(), err
}

// CombinedOutput runs the program inside the node and returns its
// standard output and standard error together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("labtest: Stdout already set")
	}
	if c.Stderr != nil {
		return nil, errors.New("labtest: Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := c.Run()
	return b.Bytes(), err
}
