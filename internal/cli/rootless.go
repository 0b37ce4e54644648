package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/rootless"
	"github.com/natlab/natlab/labstate"
)

// stateDirs are where natlab keeps what other natlab processes read: in
// rootless mode each gets a private tmpfs, so nothing reaches the host.
var stateDirs = []string{namedns.Dir, labstate.Dir}

// invocation is what a command needs to know about how natlab was
// started, to start it again rootless.
type invocation struct {
	args []string
	// rootless is true in the natlab that runs in its own user namespace.
	rootless bool
}

type invocationKey struct{}

func invocationOf(ctx context.Context) *invocation {
	if inv, ok := ctx.Value(invocationKey{}).(*invocation); ok {
		return inv
	}
	return &invocation{}
}

// childExit is the exit code of natlab run again rootless, which has
// already said everything there was to say.
type childExit int

func (c childExit) Error() string {
	return fmt.Sprintf("natlab in its user namespace exited with %d", int(c))
}

// addRootlessFlag adds --rootless to a command whose labs live only as
// long as the command does, the commands that can run without root.
func addRootlessFlag(cmd *cobra.Command, forced *bool) {
	cmd.Flags().BoolVar(forced, "rootless", false, "run in a user namespace of natlab's own, as it does without root (see docs/rootless.md)")
}

// isRootless reports whether the command runs, or is about to run, in a
// user namespace of its own.
func isRootless(cmd *cobra.Command, forced bool) bool {
	return invocationOf(cmd.Context()).rootless || forced || os.Geteuid() != 0
}

// rootOrRootless lets a command whose labs die with it go on as root, or,
// without root or with --rootless, runs natlab again in a user namespace
// of its own and returns that run's exit code as a childExit.
func rootOrRootless(cmd *cobra.Command, forced bool) error {
	inv := invocationOf(cmd.Context())
	if inv.rootless || (os.Geteuid() == 0 && !forced) {
		return nil
	}
	code, err := rootless.Exec(inv.args, cmd.InOrStdin(), unwrapOutput(cmd.OutOrStdout()), cmd.ErrOrStderr())
	if err != nil {
		return &exitError{exitFailure, fmt.Errorf("%s cannot run rootless: %w", cmd.CommandPath(), err)}
	}
	return childExit(code)
}
