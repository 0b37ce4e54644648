// Package cli is natlab's command line: it parses arguments and flags,
// calls the packages that do the work, and prints what they return. It
// holds no logic of its own beyond presentation.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/buildinfo"
	"github.com/natlab/natlab/internal/rootless"
	"github.com/natlab/natlab/topology"
)

// Exit codes.
const (
	exitFailure = 1 // something went wrong while doing the work
	exitUsage   = 2 // bad arguments or a bad scenario file: nothing was changed
	// A command stopped by a signal exits 128 + the signal (stopSignal):
	// 130 for Ctrl-C.
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// Main runs natlab with args (without the program name) and returns the
// process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	inv := &invocation{args: args}
	if rootless.InChild() {
		// First of all, before anything reads or writes natlab's state.
		if err := rootless.Setup(stateDirs); err != nil {
			fmt.Fprintf(stderr, "natlab: rootless: %v\n", err)
			return exitFailure
		}
		inv.rootless = true
	}
	stop := startStopper(stdout)
	defer stop.close()
	root := newRoot(stop.out, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(context.WithValue(stop.ctx, invocationKey{}, inv))
	var child childExit
	if errors.As(err, &child) {
		return int(child)
	}
	cause := context.Cause(stop.ctx)
	var failed outputFailed
	if errors.As(cause, &failed) {
		// First: it is why the command stopped, or what went wrong after
		// it did its work, which nobody saw.
		fmt.Fprintf(stderr, "natlab: %v\n", failed)
		if err != nil && !errors.As(err, new(outputFailed)) {
			printError(stderr, err)
		}
		return exitFailure
	}
	if err == nil {
		return 0
	}
	code := printError(stderr, err)
	var sig stopSignal
	if errors.As(cause, &sig) {
		// Stopped by a signal: whatever was built was removed again.
		return sig.exitCode()
	}
	return code
}

// printError says what err is on stderr and returns the exit code for it.
func printError(stderr io.Writer, err error) int {
	var list topology.ErrorList
	var ee *exitError
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			fmt.Fprintln(stderr, e)
		}
		return exitUsage
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "natlab: %v\n", ee.err)
		return ee.code
	default:
		fmt.Fprintf(stderr, "natlab: %v\n", err)
		return exitFailure
	}
}

// Commands is natlab's command tree, for programs that write from it
// (the man pages).
func Commands() *cobra.Command { return newRoot(io.Discard, io.Discard) }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "natlab",
		Short: "NAT traversal you can run: virtual NATs in network namespaces, real sockets, real rules",
		Long: `natlab builds virtual routers in Linux network namespaces, gives each one real
nftables NAT rules for its type (full cone, address-restricted cone,
port-restricted cone, symmetric, and the RFC 4787 knobs beneath those names),
and lets you run real programs between them.

A lab is described by a scenario file; natlab ships a library of them
(natlab list). Commands that touch the kernel need root, except run, matrix
and tour, whose labs live only as long as the command: without root they
run in a user namespace of natlab's own (docs/rootless.md).`,
		Example: `  natlab list
  sudo natlab up symmetric
  sudo natlab status
  sudo natlab exec symmetric alice -- ping -c1 203.0.113.10
  sudo natlab down symmetric`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       buildinfo.Get().Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, err} })
	root.AddCommand(
		newUpCmd(),
		newDownCmd(),
		newStatusCmd(),
		newExecCmd(),
		newValidateCmd(),
		newListCmd(),
		newRulesCmd(),
		newRunCmd(),
		newClassifyCmd(),
		newMatrixCmd(),
		newReportCmd(),
		newTableCmd(),
		newLinkCmd(),
		newTraceCmd(),
		newRebootCmd(),
		newRenumberCmd(),
		newMoveCmd(),
		newGraphCmd(),
		newTourCmd(),
		newUICmd(),
		newVersionCmd(),
	)
	setCompletions(root)
	return root
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &exitError{exitUsage, fmt.Errorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
		}
		return nil
	}
}

// labArgs is args(check) for a command whose first n arguments name labs:
// each must be a lab name, or the command stops with a usage error before
// it touches the file system. A lab name becomes part of paths under
// /run/natlab, so "../../etc/cron" or "x*" must never reach them.
func labArgs(n int, check cobra.PositionalArgs) cobra.PositionalArgs {
	return args(func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return err
		}
		for _, name := range a[:min(n, len(a))] {
			if err := topology.CheckLabName(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// requireRoot stops a command that needs root before it does anything.
// Rootless mode cannot stand in: these commands work on labs that outlive
// one natlab process, which a user namespace dying with its process
// cannot hold.
func requireRoot(cmd *cobra.Command) error {
	if os.Geteuid() != 0 {
		return &exitError{exitFailure, fmt.Errorf("%s needs root: it works on labs in the host's network namespaces; run it with sudo (without root only natlab run, matrix and tour work, see docs/rootless.md)", cmd.CommandPath())}
	}
	return nil
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print natlab's version, commit and build date",
		Long: `Print natlab's version, the commit it was built from and when, and the Go
toolchain and platform. make stamps these into the binary; a natlab built by
go install or go build says what the go command recorded instead.`,
		Example: "  natlab version\n  natlab --version",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), buildinfo.Get())
			return nil
		},
	}
}
