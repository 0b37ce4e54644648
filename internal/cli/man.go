package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/natlab/natlab/internal/buildinfo"
)

// newGenManCmd writes the man pages from the commands' own help, so they
// cannot drift from it. It lives in the binary, hidden, so that a natlab
// installed with go install can write its pages too.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gen-man DIR",
		Short: "Write natlab's man pages (natlab.1, natlab-up.1, ...) into DIR",
		Long: `Write a man page for natlab and one for each of its commands into DIR,
creating it if needed. The date in the pages is $SOURCE_DATE_EPOCH if set,
else the build date of this natlab, else today.`,
		Example: `  natlab gen-man man/man1 && man man/man1/natlab-up.1
  sudo natlab gen-man /usr/local/share/man/man1`,
		Hidden: true,
		Args:   args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			dir := a[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			info := buildinfo.Get()
			header := &doc.GenManHeader{
				Section: "1",
				Source:  "natlab " + info.Version,
				Manual:  "natlab manual",
			}
			// cobra reads SOURCE_DATE_EPOCH itself; otherwise the build
			// date keeps the pages of one build the same byte for byte.
			if os.Getenv("SOURCE_DATE_EPOCH") == "" && !info.Date.IsZero() {
				d := info.Date
				header.Date = &d
			}
			root := cmd.Root()
			// Without it every page would end in the day it was written.
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("man pages in %s: %w", dir, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote the man pages to %s\n", dir)
			return nil
		},
	}
}
