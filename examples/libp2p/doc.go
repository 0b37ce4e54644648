// Package libp2p is natlab's example of testing a real peer-to-peer
// stack behind its NATs: go-libp2p hosts with a circuit relay v2, AutoNAT
// and DCUtR hole punching, each run as a process of its own inside a
// node of a lab (cmd/p2pnode), and a test that asks, for every pair of
// NAT types, whether the relayed connection is upgraded to a direct one,
// as theory says it should be. See README.md.
package libp2p
