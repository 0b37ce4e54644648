package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// linkTimeout bounds the wait for a lab's links to come up.
const linkTimeout = 10 * time.Second

// waitLinksUp returns once every veth of the lab is operationally up. A
// veth's carrier comes on at once, but the kernel activates its queue and
// moves a bridge port to forwarding a little later, from a work queue;
// until then packets are dropped. On a busy machine that can take long
// enough to lose a lab's first packets, so up waits for it: it lists each
// namespace's links and, where one is not up yet, waits for the kernel's
// notification, which on an idle machine has already come.
func (b *builder) waitLinksUp(ctx context.Context) error {
	nodes := make([]string, 0, len(b.nl))
	for node := range b.nl {
		nodes = append(nodes, node)
	}
	return each(ctx, len(nodes), func(i int) error {
		node := nodes[i]
		links, err := b.nl[node].LinkList()
		if err != nil {
			return fmt.Errorf("node %s: list links: %w", node, err)
		}
		var down []string
		for _, l := range links {
			if l.Type() == "veth" && l.Attrs().OperState != netlink.OperUp {
				down = append(down, l.Attrs().Name)
			}
		}
		if len(down) > 0 {
			return b.waitUp(ctx, node, down)
		}
		return nil
	})
}

// waitUp waits for the named links of node's namespace to be up.
func (b *builder) waitUp(ctx context.Context, node string, names []string) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	ns := netns.NsHandle(b.ns[node].Fd())
	// Listing the existing links after subscribing leaves no gap in which
	// a change could be missed.
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns, ListExisting: true}); err != nil {
		return fmt.Errorf("node %s: watch links: %w", node, err)
	}
	waiting := map[string]bool{}
	for _, n := range names {
		waiting[n] = true
	}
	timeout := time.NewTimer(linkTimeout)
	defer timeout.Stop()
	for len(waiting) > 0 {
		select {
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("node %s: link watch ended", node)
			}
			if u.Attrs().OperState == netlink.OperUp {
				delete(waiting, u.Attrs().Name)
			}
		case <-timeout.C:
			var still []string
			for n := range waiting {
				still = append(still, n)
			}
			return fmt.Errorf("node %s: links %s not up after %v", node, strings.Join(still, ", "), linkTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
