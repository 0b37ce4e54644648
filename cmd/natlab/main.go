// Command natlab builds NAT labs in Linux network namespaces and runs NAT
// traversal between real sockets in them. See `natlab --help`.
package main

import (
	"os"

	"github.com/natlab/natlab/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
