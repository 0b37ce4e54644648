package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/natrules"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/topology"
)

// labStatus is what `natlab status --json` prints for one lab.
type labStatus struct {
	Name    string       `json:"name"`
	Source  string       `json:"source"`
	Created time.Time    `json:"created"`
	State   string       `json:"state"` // up, building, broken
	Problem string       `json:"problem,omitempty"`
	Nodes   []nodeStatus `json:"nodes"`
	// TURN is the lab's TURN credentials, if it runs TURN.
	TURN *labstate.TURNCredentials `json:"turn,omitempty"`
	// LinkMechanism is how the lab's links are shaped (netem or
	// delay-line), "" while none is.
	LinkMechanism string `json:"link_mechanism,omitempty"`
	// Flowtable says, for a lab with a NAT, whether the kernel has the
	// nftables flowtable (flowtablePresent) or not (flowtableAbsent);
	// "" where natlab could not look (status as a user, not root). Each
	// NAT says whether it offloads to it.
	Flowtable string `json:"flowtable,omitempty"`

	st   *labstate.State
	topo *topology.Topology
}

// The values of labStatus.Flowtable.
const (
	flowtableAbsent  = "absent"
	flowtablePresent = "present"
)

type nodeStatus struct {
	Name      string          `json:"name"`
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace"`
	Behind    string          `json:"behind,omitempty"`
	Addresses []string        `json:"addresses"`
	Services  []serviceStatus `json:"services,omitempty"`
	NAT       *natInfo        `json:"nat,omitempty"`
	// Firewall is a host's own firewall (stateful), left out for none.
	Firewall string `json:"firewall,omitempty"`
	// Link is the conditions of the node's uplink, as the page's state
	// has them too; left out for a perfect wire.
	Link *linkcond.View `json:"link,omitempty"`
	// LinkDown says natlab took the node's uplink down: it drops
	// everything until it is brought up.
	LinkDown bool `json:"link_down,omitempty"`
}

type serviceStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Running bool   `json:"running"`
}

// natInfo is a NAT's type, its knobs (each of topology.NATKnobs, written
// as a file writes it: "timeout": "2m"), LAN and forwards.
type natInfo struct {
	Type      string
	Behaviour nat.Behaviour
	LAN       string
	Gateway   string
	Forwards  []forwardInfo
	// Pooling is how a NAT with several public addresses (the node's
	// addresses) gives them to mappings; empty with one.
	Pooling string
	// OneToOne is a one-to-one NAT's host, which owns its public
	// address; nil for other NATs.
	OneToOne *oneToOneInfo
	// Blocks is a carrier-grade NAT's port block allocation; nil for
	// a NAT without blocks.
	Blocks *blocksInfo
	// Offloaded says the NAT hands its established flows to the
	// kernel's flowtable; where the kernel has one and it does not,
	// NotOffloaded says why.
	Offloaded    bool
	NotOffloaded string
}

// blocksInfo is a NAT's port block allocation and its subscribers.
type blocksInfo struct {
	Size        int              `json:"size"`
	Blocks      int              `json:"blocks"`
	Quota       int              `json:"quota"`
	Exhausted   string           `json:"exhausted"`
	ReuseDelay  string           `json:"reuse_delay"`
	Subscribers []subscriberInfo `json:"subscribers"`
}

type subscriberInfo struct {
	Node    string   `json:"node"`
	Address string   `json:"address"`
	Blocks  []string `json:"blocks"`
}

func newBlocksInfo(topo *topology.Topology, n *topology.Node) *blocksInfo {
	b := n.NAT.Blocks
	if !b.Enabled() {
		return nil
	}
	info := &blocksInfo{Size: b.Size, Blocks: b.Count, Quota: b.Quota, Exhausted: "drop", ReuseDelay: nat.FormatDuration(b.ReuseDelay), Subscribers: []subscriberInfo{}}
	if b.ICMP {
		info.Exhausted = "icmp"
	}
	for _, s := range topo.Subscribers(n) {
		info.Subscribers = append(info.Subscribers, subscriberInfo{Node: s.Node.Name, Address: s.Addr.String(), Blocks: s.Ranges()})
	}
	return info
}

// oneToOneInfo is the host whose private address owns a one-to-one NAT's
// public address.
type oneToOneInfo struct {
	Host    string `json:"host"`
	Private string `json:"private"`
}

func (n natInfo) MarshalJSON() ([]byte, error) {
	type before struct {
		Type string `json:"type,omitempty"`
	}
	type after struct {
		LAN      string        `json:"lan"`
		Gateway  string        `json:"gateway"`
		Forwards []forwardInfo `json:"forwards,omitempty"`
		Pooling  string        `json:"pooling,omitempty"`
		OneToOne *oneToOneInfo `json:"one_to_one,omitempty"`
		Blocks   *blocksInfo   `json:"port_blocks,omitempty"`
		// Offloaded is the fast path's (natrules.Config.Offload).
		Offloaded    bool   `json:"offloaded,omitempty"`
		NotOffloaded string `json:"not_offloaded,omitempty"`
	}
	return topology.NATJSON(before{n.Type}, nat.Type(n.Type), n.Behaviour, after{n.LAN, n.Gateway, n.Forwards, n.Pooling, n.OneToOne, n.Blocks, n.Offloaded, n.NotOffloaded})
}

type forwardInfo struct {
	Proto string `json:"proto"`
	Port  uint16 `json:"port"`
	To    string `json:"to"`
}

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [LAB...]",
		Short: "Show the labs that are up: nodes, addresses, NAT types",
		Long: `Show every lab that is up (or only the ones named): each node with its
namespace, addresses and, for NATs, the behaviour natlab gave it. A lab whose
bring-up is still running, or died, is shown as such; natlab down removes it.`,
		Example: `  natlab status
  natlab status symmetric --json | jq '.[0].nodes[].namespace'`,
		Args: labArgs(math.MaxInt, cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			names := a
			if len(names) == 0 {
				var err error
				if names, err = labstate.Names(); err != nil {
					return err
				}
			}
			var labs []labStatus
			for _, name := range names {
				st, topo, err := runningLab(name)
				if st == nil && len(a) == 0 && errors.Is(err, labstate.ErrNotFound) {
					// Taken down since it was listed: a `natlab down`
					// running at the same time is no error of status.
					continue
				}
				if st == nil && len(a) == 0 {
					// One unreadable record must not hide the other labs.
					labs = append(labs, labStatus{Name: name, State: "broken",
						Problem: fmt.Sprintf("its record cannot be read (%v); natlab down %s removes the lab", err, name)})
					continue
				}
				if st == nil {
					return err
				}
				labs = append(labs, describeLab(st, topo, err))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if labs == nil {
					labs = []labStatus{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(labs)
			}
			if len(labs) == 0 {
				fmt.Fprintln(out, "no labs are up (sudo natlab up NAME builds one; natlab list shows the built-in ones)")
				return nil
			}
			for i, l := range labs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printLab(out, l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func describeLab(st *labstate.State, topo *topology.Topology, topoErr error) labStatus {
	l := labStatus{Name: st.Name, Source: st.Source, Created: st.Created, State: "up", st: st, topo: topo}
	if st.TURN.User != "" {
		l.TURN = &st.TURN
	}
	l.LinkMechanism = st.LinkMechanism
	if !st.Complete {
		l.State = "building"
		if held, err := labstate.Held(st.Name); err == nil && !held {
			// Nobody holds the lock: the bring-up died.
			l.State = "broken"
			l.Problem = "its bring-up did not finish; natlab down " + st.Name + " removes what it left"
		}
	}
	var missing []string
	for _, ns := range st.Namespaces {
		if _, err := os.Stat(namedns.Path(ns.Name)); err != nil {
			missing = append(missing, ns.Name)
		}
	}
	if len(missing) > 0 && l.State == "up" {
		l.State = "broken"
		l.Problem = fmt.Sprintf("%d of its namespaces are gone (%s ...); natlab down %s cleans up", len(missing), missing[0], st.Name)
	}
	if topoErr != nil {
		l.Problem = topoErr.Error()
		return l
	}
	for _, n := range topo.Nodes {
		ns := nodeStatus{Name: n.Name, Kind: string(n.Kind), Namespace: lab.NamespaceName(st.Name, n.Name), Behind: n.Behind,
			Link: linkcond.NewView(n.Link)}
		for _, a := range n.Addresses {
			ns.Addresses = append(ns.Addresses, a.String())
		}
		// The process that serves the node, if it lives.
		pid := 0
		for _, p := range st.Processes {
			if p.Node == n.Name && lab.ProcessAlive(p.PID, p.StartTime) {
				pid = p.PID
			}
		}
		plan := service.PlanFor(n)
		for _, s := range n.Services {
			addr := map[topology.Service]string{
				topology.ServiceSTUN:       plan.STUNServer().String(),
				topology.ServiceTURN:       plan.TURN.String(),
				topology.ServiceRendezvous: plan.RendezvousURL(),
				topology.ServiceDERP:       plan.DERPURL(),
				topology.ServiceTunnel:     plan.Tunnel.String(),
			}[s]
			ns.Services = append(ns.Services, serviceStatus{string(s), addr, pid != 0 && serves(pid, plan, s)})
		}
		ns.LinkDown = st.Links[n.Name].Down
		ns.Firewall = string(n.Firewall)
		if n.NAT != nil {
			ns.NAT = &natInfo{Type: string(n.NAT.Type), Behaviour: n.NAT.Behaviour,
				LAN: n.NAT.LAN.String(), Gateway: n.NAT.Gateway.String(), Pooling: string(n.NAT.Pooling), Blocks: newBlocksInfo(topo, n)}
			for _, f := range n.NAT.Forwards {
				ns.NAT.Forwards = append(ns.NAT.Forwards, forwardInfo{string(f.Proto), f.Port, f.To.String()})
			}
			if n.NAT.Type == nat.OneToOne {
				if host, _ := topo.OneToOneHost(n); host != nil {
					ns.NAT.OneToOne = &oneToOneInfo{host.Name, host.Addresses[0].String()}
				}
			}
		}
		l.Nodes = append(l.Nodes, ns)
	}
	if l.State == "up" && slices.ContainsFunc(topo.Nodes, func(n *topology.Node) bool { return n.NAT != nil }) {
		l.Flowtable = flowtable(st)
		if l.Flowtable == flowtablePresent {
			for i, n := range l.Nodes {
				if n.NAT != nil {
					l.Nodes[i].NAT.Offloaded, l.Nodes[i].NAT.NotOffloaded = offloaded(st, topo, topo.Node(n.Name))
				}
			}
		}
	}
	return l
}

// flowtable says whether the kernel has the nftables flowtable: as the
// lab's record says where the lab came up with it, else as the kernel
// says in the lab's internet namespace; "" if natlab may not look (not
// root).
func flowtable(st *labstate.State) string {
	if st.Flowtable {
		return flowtablePresent
	}
	ns, err := namedns.Open(lab.NamespaceName(st.Name, topology.Internet))
	if err != nil {
		return ""
	}
	defer ns.Close()
	has, err := natrules.HasFlowtable(ns.Fd())
	switch {
	case err != nil:
		return ""
	case has:
		return flowtablePresent
	}
	return flowtableAbsent
}

// offloaded says whether NAT node n offloads its flows, on a kernel with
// the flowtable, and if not, why.
func offloaded(st *labstate.State, topo *topology.Topology, n *topology.Node) (bool, string) {
	rs, err := lab.Rules(topo, n, st.Flowtable)
	switch {
	case err != nil:
		return false, err.Error()
	case rs.Offloads():
		return true, ""
	}
	if problem := lab.OffloadProblem(topo, n); problem != "" {
		return false, problem
	}
	return false, "the lab came up without: links shaped by natlab's delay line (no netem), or by a natlab from before offloading"
}

func printLab(w io.Writer, l labStatus) {
	if l.st == nil {
		fmt.Fprintf(w, "lab %s: %s\n", l.Name, l.State)
	} else {
		fmt.Fprintf(w, "lab %s: %s since %s, from %s\n", l.Name, l.State, l.Created.Local().Format("2006-01-02 15:04:05"), l.Source)
	}
	if l.Problem != "" {
		fmt.Fprintf(w, "  problem: %s\n", l.Problem)
	}
	if l.topo != nil {
		fmt.Fprintf(w, "  namespaces: %s\n", lab.NamespaceName(l.Name, "NODE"))
		printServices(w, l.st, l.topo)
		printLinks(w, l)
		printFlowtable(w, l)
		printNodes(w, l.topo)
	}
}

// printLinks says how the lab's links are shaped, and which are down;
// the nodes' table gives each link's conditions.
func printLinks(w io.Writer, l labStatus) {
	if l.LinkMechanism == "" {
		return
	}
	how := "netem"
	if l.LinkMechanism == string(linkshape.DelayLine) {
		how = "natlab's delay line (this kernel has no netem)"
		state := "not running: the delay line is started with the first delay"
		for _, p := range l.st.Processes {
			if p.What == lab.DelayLineProcess {
				state = fmt.Sprintf("pid %d, NOT RUNNING (natlab down and up again)", p.PID)
				if lab.ProcessAlive(p.PID, p.StartTime) {
					state = fmt.Sprintf("pid %d, running", p.PID)
				}
			}
		}
		how += "; " + state + ", log " + filepath.Join(labstate.LogDir(l.Name), "delay-line.log")
	}
	fmt.Fprintf(w, "  links: shaped by %s\n", how)
	for _, n := range l.Nodes {
		if n.LinkDown {
			fmt.Fprintf(w, "  link of %s: DOWN, it drops everything (natlab link %s %s --up)\n", n.Name, l.Name, n.Name)
		}
	}
}

// printFlowtable says once per lab whether the kernel has the fast path
// for established flows, and where it has, which NATs use it.
func printFlowtable(w io.Writer, l labStatus) {
	switch l.Flowtable {
	case flowtableAbsent:
		fmt.Fprintln(w, "  fast path: none; this kernel has no nftables flowtable (CONFIG_NF_FLOW_TABLE), so every packet passes conntrack and the NATs' rules")
	case flowtablePresent:
		var says []string
		for _, n := range l.Nodes {
			switch {
			case n.NAT == nil:
			case n.NAT.Offloaded:
				says = append(says, n.Name+" offloads established flows, its mappings kept by conntrack's entries (to within a second)")
			default:
				says = append(says, n.Name+" does not: "+n.NAT.NotOffloaded)
			}
		}
		fmt.Fprintf(w, "  fast path: the kernel's nftables flowtable; %s\n", strings.Join(says, "; "))
	}
}

// serves says whether process pid listens on every socket of service s
// that plan gives: a service whose listener failed or closed is not
// running although its process lives.
func serves(pid int, plan service.Plan, s topology.Service) bool {
	type socket struct {
		network string
		addr    netip.AddrPort
	}
	sockets := map[topology.Service][]socket{
		topology.ServiceSTUN:       {{"udp", plan.STUNServer()}},
		topology.ServiceTURN:       {{"udp", plan.TURN}, {"tcp", plan.TURN}},
		topology.ServiceRendezvous: {{"tcp", plan.Rendezvous}},
		topology.ServiceDERP:       {{"tcp", plan.DERP}},
		topology.ServiceTunnel:     {{"tcp", plan.Tunnel}},
	}[s]
	for _, sock := range sockets {
		if ok, err := lab.Listening(pid, sock.network, sock.addr); err != nil || !ok {
			return false
		}
	}
	return len(sockets) > 0
}
