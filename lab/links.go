package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// Wires describes each node's uplink in lab name as Up builds it, for
// package linkshape: the node's end, the bridge's end, and the segment.
func Wires(name string, topo *topology.Topology) []linkshape.Wire {
	segments := map[string][]*topology.Node{}
	for _, n := range topo.Nodes {
		segments[n.Behind] = append(segments[n.Behind], n)
	}
	ports := map[string]map[string]string{}
	for owner, nodes := range segments {
		ports[owner] = portNames(nodes)
	}
	wires := make([]linkshape.Wire, 0, len(topo.Nodes))
	for i, n := range topo.Nodes {
		w := linkshape.Wire{
			Node:        n.Name,
			NS:          NamespaceName(name, n.Name),
			Uplink:      Uplink(n),
			UplinkIndex: uplinkIndex,
			ParentNS:    NamespaceName(name, topology.Internet),
			Port:        ports[n.Behind][n.Name],
			PortIndex:   portIndexBase + i,
			Bridge:      InternetBridge,
			BridgeIndex: bridgeIndex,
			Segment:     n.Behind,
		}
		if n.Behind != "" {
			w.ParentNS, w.Bridge, w.Routed = NamespaceName(name, n.Behind), NATLAN, true
		}
		w.Addrs = append(append(w.Addrs, n.Addresses...), n.Addresses6...)
		w.Prefixes6 = routedThrough(topo, n)
		wires = append(wires, w)
	}
	return wires
}

// routedThrough are the IPv6 prefixes routed through node n (routes6):
// the LAN of each NAT whose way from the internet passes n, n's own
// included.
func routedThrough(topo *topology.Topology, n *topology.Node) []netip.Prefix {
	if n.NAT == nil || !topo.Internet6.IsValid() {
		return nil
	}
	var ps []netip.Prefix
	for _, nat := range topo.Nodes {
		if nat.NAT == nil || !nat.NAT.LAN6.IsValid() {
			continue
		}
		for c := nat; c != nil; c = topo.Node(c.Behind) {
			if c == n {
				ps = append(ps, nat.NAT.LAN6)
				break
			}
			if c.Behind == "" {
				break
			}
		}
	}
	return ps
}

// linkStates are the links of st as linkshape takes them.
func linkStates(st *labstate.State) map[string]linkshape.State {
	links := make(map[string]linkshape.State, len(st.Links))
	for node, l := range st.Links {
		links[node] = linkshape.State{Link: l.Link, Down: l.Down}
	}
	return links
}

// DelayLineQueues says what the delay line of lab name holds in each
// namespace, as the lab's record has its links now. The delay line's
// process calls it when it starts and whenever a link changes.
func DelayLineQueues(name string) (map[string]*linkshape.Queue, error) {
	st, err := labstate.Load(name)
	if err != nil {
		return nil, err
	}
	topo, err := st.Topology()
	if err != nil {
		return nil, err
	}
	wires := Wires(name, topo)
	links := linkStates(st)
	mech := linkshape.Mechanism(st.LinkMechanism)
	return linkshape.Queues(linkshape.PlanLab(wires, links, mech)), nil
}

// DelayLineProcess is what a lab's record calls its delay line's process
// (labstate.Process.What).
const DelayLineProcess = "delay line"

// SetLink changes the conditions of node's uplink in the running lab
// name: what c names changes, the rest stays (a change of the delay keeps
// the loss). The change is checked first (linkcond.Link.Validate); a bad
// one changes nothing. It is recorded, so status shows it, and the kernel
// is changed in the namespaces the link touches. It returns the link as
// it now is.
//
// Like SwitchNAT it takes the lab's lock, waiting up to LockPatience for
// another process that holds it, or until ctx is done.
func SetLink(ctx context.Context, name, node string, c linkcond.Change) (linkcond.Link, error) {
	var now linkcond.Link
	err := changeLink(ctx, name, node, func(s *labstate.LinkState) error {
		l := c.Apply(s.Link)
		if err := l.Validate(); err != nil {
			return err
		}
		s.Link, now = l, l
		return nil
	})
	return now, err
}

// SetLinkState takes node's uplink down (up false: it drops every frame,
// either way, and what the delay line holds from it) or brings it up
// again with the conditions it had, in the running lab name.
func SetLinkState(ctx context.Context, name, node string, up bool) error {
	return changeLink(ctx, name, node, func(s *labstate.LinkState) error {
		s.Down = !up
		return nil
	})
}

// changeLink edits node's link in lab name's record under the lab's lock
// and makes the kernel follow.
func changeLink(ctx context.Context, name, node string, edit func(*labstate.LinkState) error) error {
	lock, st, topo, err := lockRunning(ctx, name)
	if err != nil {
		return err
	}
	defer lock.Release()
	n := topo.Node(node)
	if n == nil {
		return fmt.Errorf("lab %s: no node %q", name, node)
	}
	cur, ok := st.Links[node]
	if !ok {
		cur = labstate.LinkState{Link: n.Link}
	}
	if err := edit(&cur); err != nil {
		return fmt.Errorf("lab %s: node %s: link: %w", name, node, err)
	}
	if topo.Internet6.IsValid() {
		if err := cur.Link.ValidateDualStack(); err != nil {
			return fmt.Errorf("lab %s: node %s: link: %w", name, node, err)
		}
	}
	if st.Links == nil {
		st.Links = map[string]labstate.LinkState{}
	}
	st.Links[node] = cur
	n.Link = cur.Link
	if err := reshape(ctx, st, topo, node); err != nil {
		return fmt.Errorf("lab %s: node %s: link: %w", name, node, err)
	}
	return nil
}

// reshape records st and makes the namespaces node's link touches hold
// what the lab's links now say, and the namespaces also, which it touched
// before a change of the topology (a move); the delay line, if the lab
// needs one, is started or told to load them first, so that its queues are
// bound before any rule hands it a packet.
func reshape(ctx context.Context, st *labstate.State, topo *topology.Topology, node string, also ...string) error {
	if st.LinkMechanism == "" {
		mech, err := detect(st.Name)
		if err != nil {
			return err
		}
		st.LinkMechanism = string(mech)
	}
	mech := linkshape.Mechanism(st.LinkMechanism)
	wires := Wires(st.Name, topo)
	links := linkStates(st)
	plans := linkshape.PlanLab(wires, links, mech)
	if err := labstate.Save(st); err != nil {
		return fmt.Errorf("record the link: %w", err)
	}
	if len(linkshape.Queues(plans)) > 0 {
		if err := ensureDelayLine(ctx, st); err != nil {
			return err
		}
	}
	touched := linkshape.Affected(wires, node)
	for _, ns := range also {
		if !slices.Contains(touched, ns) {
			touched = append(touched, ns)
		}
	}
	for _, ns := range touched {
		if plans[ns] == nil {
			// A namespace that holds no end of an uplink now holds
			// nothing of the links.
			continue
		}
		if err := linkshape.Apply(plans[ns], mech); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

// detect finds the link mechanism of lab name in its internet namespace.
func detect(name string) (linkshape.Mechanism, error) {
	ns, err := namedns.Open(NamespaceName(name, topology.Internet))
	if err != nil {
		return "", err
	}
	defer ns.Close()
	return linkshape.Detect(ns.Fd())
}

// ensureDelayLine tells lab st's delay line to load the links again, or
// starts it if it does not run, and records it.
func ensureDelayLine(ctx context.Context, st *labstate.State) error {
	for _, p := range st.Processes {
		if p.What == DelayLineProcess && ProcessAlive(p.PID, p.StartTime) {
			return linkshape.Reload(ctx, linkshape.SocketPath(st.Name))
		}
	}
	st.Processes = slices.DeleteFunc(st.Processes, func(p labstate.Process) bool { return p.What == DelayLineProcess })
	ns, err := namedns.Open(NamespaceName(st.Name, topology.Internet))
	if err != nil {
		return err
	}
	defer ns.Close()
	l, err := launchDelayLine(ns, st.Name)
	if err != nil {
		return err
	}
	proc, err := l.Wait()
	if err != nil {
		return err
	}
	start, _ := startTime(proc.Pid)
	st.Processes = append(st.Processes, labstate.Process{PID: proc.Pid, What: DelayLineProcess, StartTime: start})
	if err := labstate.Save(st); err != nil {
		return fmt.Errorf("record the delay line: %w", err)
	}
	return nil
}

// launchDelayLine starts lab name's delay line in ns, its internet
// namespace, logging to the lab's log directory.
func launchDelayLine(ns *namedns.NS, name string) (*service.Launched, error) {
	if err := os.MkdirAll(labstate.LogDir(name), 0o755); err != nil {
		return nil, err
	}
	return service.LaunchDelayLine(ns, name, filepath.Join(labstate.LogDir(name), "delay-line.log"))
}
