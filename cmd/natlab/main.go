// Command natlab builds NAT labs in Linux network namespaces and runs NAT
// traversal between real sockets in them. See `natlab --help`.
package main

import (
	"os"

	"github.com/natlab/natlab/internal/cli"
	"github.com/natlab/natlab/service/serve"
)

func main() {
	// A lab's services run in natlab started again inside the node
	// (service.Launch). First of all: a service process of a rootless lab
	// also carries the rootless child's environment, which cli.Main would
	// act on.
	if serve.IsServiceProcess() {
		os.Exit(serve.Main())
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
