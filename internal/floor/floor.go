// Package floor is the least any tool must do to build the symmetric
// lab's shape: make its six namespaces and its five veth pairs through
// netlink, and delete the namespaces again. No bridges, addresses, routes,
// rules or services. natlab's lifecycle is measured against it: as a
// process (bench/floor, the natlab-floor command) against natlab up and
// down, and in-process against what labtest.Up and its cleanup do.
package floor

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/natlab/natlab/internal/namedns"
)

// nodes are the namespaces, and links the veth pairs as (the
// namespace of one end, its name, the namespace of the other end).
var (
	nodes = []string{"internet", "stun", "nat-a", "nat-b", "alice", "bob"}
	links = [][3]string{
		{"internet", "stun", "stun"},
		{"internet", "nat-a", "nat-a"},
		{"internet", "nat-b", "nat-b"},
		{"nat-a", "alice", "alice"},
		{"nat-b", "bob", "bob"},
	}
)

// Up makes the namespaces PREFIX-internet ... PREFIX-bob and the veth
// pairs between them.
func Up(prefix string) error {
	if err := namedns.Prepare(); err != nil {
		return err
	}
	handles := map[string]*namedns.NS{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, n := range nodes {
		ns, err := namedns.Create(prefix+"-"+n, nil)
		if err != nil {
			return err
		}
		handles[n] = ns
	}
	for _, l := range links {
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

// Down deletes the namespaces Up made, and with them the veths.
func Down(prefix string) error {
	for _, n := range nodes {
		if err := namedns.Delete(prefix + "-" + n); err != nil {
			return err
		}
	}
	return nil
}
