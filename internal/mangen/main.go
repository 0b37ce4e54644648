// Command mangen writes natlab's man pages from the commands' own help,
// so they cannot drift from it: `go run ./internal/mangen DIR` (make man,
// make release). It is a program of its own rather than a natlab command
// because the man page writer (cobra/doc, blackfriday) costs every natlab
// invocation a millisecond of package initialisation, which a lab's
// up and down would pay for nothing.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra/doc"

	"github.com/natlab/natlab/internal/buildinfo"
	"github.com/natlab/natlab/internal/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/mangen DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote the man pages to %s\n", os.Args[1])
}

// write puts a page for natlab and one for each of its commands into dir,
// creating it if needed. The date in the pages is $SOURCE_DATE_EPOCH if
// set, else the build date stamped into this program, else today.
func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	info := buildinfo.Get()
	header := &doc.GenManHeader{
		Section: "1",
		Source:  "natlab " + info.Version,
		Manual:  "natlab manual",
	}
	// cobra reads SOURCE_DATE_EPOCH itself; otherwise the build date
	// keeps the pages of one build the same byte for byte.
	if os.Getenv("SOURCE_DATE_EPOCH") == "" && !info.Date.IsZero() {
		d := info.Date
		header.Date = &d
	}
	root := cli.Commands()
	// Without it every page would end in the day it was written.
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("man pages in %s: %w", dir, err)
	}
	return nil
}
