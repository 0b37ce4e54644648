package lab

import (
	"fmt"
	"hash/fnv"

	"github.com/natlab/natlab/topology"
)

// Interface names inside the namespaces natlab builds. They are fixed so a
// learner finds the same names in every lab.
const (
	// HostUplink is the one interface of hosts and servers.
	HostUplink = "eth0"
	// NATUplink is a NAT's public side, towards the internet or the NAT it
	// is behind.
	NATUplink = "wan0"
	// NATLAN is the bridge a NAT's LAN hangs off, holding its gateway
	// address.
	NATLAN = "lan0"
	// InternetBridge is the bridge in the internet namespace that every
	// top-level node is plugged into.
	InternetBridge = "internet"
)

// NamespaceName is the network namespace of a node, as `ip netns` lists
// it. The internet segment's namespace uses the reserved node name
// "internet".
func NamespaceName(lab, node string) string { return "natlab-" + lab + "-" + node }

// Uplink is the name of node n's uplink interface inside its namespace.
func Uplink(n *topology.Node) string {
	if n.Kind == topology.KindNAT {
		return NATUplink
	}
	return HostUplink
}

// reservedPortNames are names a bridge port must not take in the
// namespaces bridges live in: natlab's own interfaces', and the two the
// kernel refuses to any interface, "all" and "default", whose sysctl
// directories (net.ipv4.conf.all, net.ipv4.conf.default) exist already
// (sysctl_dev_name_is_allowed, include/net/ip.h; devinet_sysctl_register
// returns EINVAL for them).
var reservedPortNames = map[string]bool{"lo": true, NATUplink: true, NATLAN: true, InternetBridge: true, HostUplink: true, "all": true, "default": true}

// portNames gives each node plugged into one bridge the name of its side
// of the veth pair: the node's own name where it fits in an interface
// name (15 bytes) and is not taken, otherwise a shortened name with a
// hash that keeps it unique.
func portNames(nodes []*topology.Node) map[string]string {
	names := make(map[string]string, len(nodes))
	used := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		name := n.Name
		for i := 0; len(name) > 15 || reservedPortNames[name] || used[name]; i++ {
			h := fnv.New32a()
			fmt.Fprintf(h, "%s/%d", n.Name, i)
			prefix := n.Name
			if len(prefix) > 9 {
				prefix = prefix[:9]
			}
			name = fmt.Sprintf("%s-%05x", prefix, h.Sum32()&0xfffff)
		}
		used[name] = true
		names[n.Name] = name
	}
	return names
}
