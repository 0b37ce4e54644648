// Command natlab-floor is the floor natlab's lifecycle is measured
// against: the least any tool must do to build the symmetric lab's shape,
// which is to make its six namespaces and its five veth pairs through
// netlink, and to delete the namespaces again. No bridges, addresses,
// routes, rules or services.
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

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/natlab/natlab/internal/namedns"
)

// floorNodes are the namespaces, and floorLinks the veth pairs as (the
// namespace of one end, its name, the namespace of the other end).
var (
	floorNodes = []string{"internet", "stun", "nat-a", "nat-b", "alice", "bob"}
	floorLinks = [][3]string{
		{"internet", "stun", "stun"},
		{"internet", "nat-a", "nat-a"},
		{"internet", "nat-b", "nat-b"},
		{"nat-a", "alice", "alice"},
		{"nat-b", "bob", "bob"},
	}
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) == 1 && args[0] == "start":
	case len(args) == 2 && args[0] == "up":
		err = floorUp(args[1])
	case len(args) == 2 && args[0] == "down":
		err = floorDown(args[1])
	default:
		fmt.Fprintln(os.Stderr, "usage: natlab-floor up PREFIX | down PREFIX | start")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natlab-floor:", err)
		os.Exit(1)
	}
}

func floorUp(prefix string) error {
	if err := namedns.Prepare(); err != nil {
		return err
	}
	handles := map[string]*namedns.NS{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, n := range floorNodes {
		ns, err := namedns.Create(prefix+"-"+n, nil)
		if err != nil {
			return err
		}
		handles[n] = ns
	}
	for _, l := range floorLinks {
		h, err := netlink.NewHandleAt(netns.NsHandle(handles[l[0]].Fd()))
		if err != nil {
			return err
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l[1]}, PeerName: "eth0", PeerNamespace: netlink.NsFd(handles[l[2]].Fd())}
		err = h.LinkAdd(veth)
		h.Close()
		if err != nil {
			return fmt.Errorf("veth %s: %w", l[1], err)
		}
	}
	return nil
}

func floorDown(prefix string) error {
	for _, n := range floorNodes {
		if err := namedns.Delete(prefix + "-" + n); err != nil {
			return err
		}
	}
	return nil
}
