// Command natlab-floor is the floor natlab's lifecycle is measured
// against (package internal/floor): the least any tool must do to build
// the symmetric lab's shape, which is to make its six namespaces and its
// five veth pairs through netlink, and to delete the namespaces again. No
// bridges, addresses, routes, rules or services.
//
// It is a program of its own, as small as it can be, so that it also
// starts as fast as a Go program can: natlab-bench runs it as a process,
// as it runs natlab and the script.
//
//	natlab-floor up PREFIX     make PREFIX-internet ... PREFIX-bob and the veths
//	natlab-floor down PREFIX   delete them
//	natlab-floor start         nothing: what starting the process costs
package main

import (
	"fmt"
	"os"

	"github.com/natlab/natlab/internal/floor"
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) == 1 && args[0] == "start":
	case len(args) == 2 && args[0] == "up":
		err = floor.Up(args[1])
	case len(args) == 2 && args[0] == "down":
		err = floor.Down(args[1])
	default:
		fmt.Fprintln(os.Stderr, "usage: natlab-floor up PREFIX | down PREFIX | start")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natlab-floor:", err)
		os.Exit(1)
	}
}
