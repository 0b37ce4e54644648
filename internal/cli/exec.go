package cli

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
)

func newExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exec LAB NODE [-- COMMAND [ARG...]]",
		Short: "Run a command inside a node",
		Long: `Run a command inside a node's network namespace, as root, with the node's
interfaces, addresses and routes. Without a command, start a shell there.
ip netns exec natlab-LAB-NODE COMMAND works too, and also mounts the
namespace's own /sys (which only tools that read /sys/class/net notice).

NODE may also be internet, the namespace of the bridge every node on the
internet is plugged into: tcpdump there sees the traffic between NATs and
servers. NATLAB_LAB and NATLAB_NODE are set in the command's environment.`,
		Example: `  sudo natlab exec symmetric alice -- ping -c1 203.0.113.10
  sudo natlab exec symmetric nat-a -- conntrack -L
  sudo natlab exec symmetric internet -- tcpdump -ni internet udp
  sudo natlab exec symmetric bob`,
		Args: labArgs(1, cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			labName, node, command := a[0], a[1], a[2:]
			if dash := cmd.ArgsLenAtDash(); dash >= 0 && dash != 2 {
				return usageError("natlab exec LAB NODE -- COMMAND: put -- right after the node")
			}
			if err := requireRoot(cmd); err != nil {
				return err
			}
			_, topo, err := runningLab(labName)
			if err != nil {
				return err
			}
			if topo.Node(node) == nil && node != "internet" {
				return usageError("lab %s has no node %s (natlab status %s lists them)", labName, node, labName)
			}
			if len(command) == 0 {
				shell := os.Getenv("SHELL")
				if shell == "" {
					shell = "/bin/sh"
				}
				command = []string{shell}
			}
			path, err := exec.LookPath(command[0])
			if err != nil {
				return usageError("%v", err)
			}
			ns, err := namedns.Open(lab.NamespaceName(labName, node))
			if err != nil {
				return err
			}
			env := append(os.Environ(), "NATLAB_LAB="+labName, "NATLAB_NODE="+node)
			// exec replaces the whole process with the command, which keeps
			// the namespace of the thread that calls it; the thread is
			// never handed back to Go.
			runtime.LockOSThread()
			if err := unix.Setns(ns.Fd(), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("enter %s: %w", lab.NamespaceName(labName, node), err)
			}
			ns.Close()
			return syscall.Exec(path, command, env)
		},
	}
}
