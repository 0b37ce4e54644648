// Package natrules turns the behaviour of one NAT, in RFC 4787 terms, into
// the nftables table that makes a Linux network namespace behave that way.
//
// Building is pure: Build returns a Ruleset that can be rendered as nft text
// (for golden files, `natlab rules` and teaching) and queued on an
// nftables.Conn, which loads it in one atomic transaction. Every rule carries
// its nft text next to its expressions, the way google/nftables' own tests
// do; a root-only test loads each golden ruleset into a fresh namespace and
// checks that the kernel lists exactly that text back.
//
// # How the knobs become rules
//
// Conntrack alone gives a port-preserving NAT with address-and-port-dependent
// filtering, but it is not faithful to endpoint-independent mapping: two
// private hosts using the same port may both be given that public port
// towards different destinations. So UDP (and TCP, below) mappings are kept in natlab's own
// dynamic maps, refreshed by traffic and expiring after the mapping timeout:
//
//   - ports: public port -> private endpoint, one owner per public port. New
//     mappings only take a port that is not in it: the outbound chain
//     offers candidate ports one by one in the packet's mark, and the
//     claim chain takes the first that the map has no owner for. (A
//     single rule testing "udp sport != @ports" is refused by Linux before
//     6.5, Debian 12's and Ubuntu 22.04's kernels among them: see
//     markTaken.)
//   - mappings (endpoint-independent and address-dependent mapping): private
//     endpoint [. remote address] -> public port, consulted before a new
//     public port is allocated, so the same private endpoint keeps its port.
//   - permits (address-dependent filtering): remote address . public port,
//     the remotes a mapping has sent to.
//   - hairpin_permits (address-and-port-dependent filtering, with
//     hairpinning): remote address . remote port . public port, the NAT's
//     own public endpoints a mapping has sent to by hairpinning.
//
// A chain at postrouting, after source NAT, records every UDP flow in those
// maps from its conntrack tuples, and the track chain, on forwarded
// packets, refreshes a flow's entries as its traffic passes: in both
// directions by default, as conntrack refreshes its own entry. With the
// refresh knob outbound (RFC 4787 section 4.3: outbound refresh is
// required, inbound refresh allowed), only packets from inside refresh
// them; since conntrack still refreshes its entry with every packet, an
// inbound packet of a flow whose public port the ports map no longer owns
// is dropped in the expire chain, as by a NAT that has forgotten the
// mapping. Inbound packets to the public address are
// let in by destination NAT only where the filtering knob allows:
// endpoint-independent filtering admits anyone to a mapped port,
// address-dependent filtering requires an entry in permits, and
// address-and-port-dependent filtering admits conntrack replies only.
// Anything else addressed to the NAT from outside is dropped in its input
// chain (the wall), which also keeps an early inbound packet from claiming a
// port the NAT is about to map (nat-behaviour.md, trap 1).
//
// A hairpinned packet, from inside to one of the NAT's own public
// endpoints, is treated as RFC 4787 (section 6, REQ-9) has it: it leaves by
// the sender's mapping and arrives at the owner's from the sender's public
// endpoint. Source NAT gives it that endpoint; the hairpin chain, after it,
// records whom the sender's mapping has sent to and lets the filtering of
// the owner's mapping decide, dropping a refused packet before conntrack
// confirms its flow (and, under address-and-port-dependent mapping,
// deleting the mapping it made, which was that flow's alone).
//
// A one-to-one NAT (Config.OneToOne) needs none of this: its one private
// address owns the public address, so destination NAT sends everything to
// the public address there and source NAT sends everything from it out,
// every port kept, with no maps (see oneToOne).
//
// TCP follows the same knobs (RFC 5382 asks of TCP what RFC 4787 asks of
// UDP), with maps and a claim chain of its own beside UDP's, of the same
// shapes: tcp_ports, tcp_mappings, tcp_permits, tcp_hairpin_permits and
// tcp_claim. A UDP and a TCP mapping of the same public port are two
// mappings, as at a real NAT. A new TCP mapping lives for the transitory
// timeout until its traffic refreshes it for the established one, both
// ways whatever the refresh knob says: a TCP mapping lives as long as its
// connection, which conntrack keeps alive in either direction. The peer's
// SYN of a simultaneous open (a TCP hole punch) is, to conntrack, a reply
// to our own SYN, so address-and-port-dependent filtering lets it in as
// it lets a UDP reply in; under the other two filterings the prerouting
// chain admits it as it admits UDP.
//
// ICMP echo is translated by conntrack (source NAT to the public address,
// a random identifier for address-and-port-dependent mapping) and admitted
// inbound only as replies.
//
// # Offloading
//
// On a kernel with the nftables flowtable a NAT may hand its established
// flows to it (Config.Offload; the lab decides, lab.Rules), so that their
// packets skip netfilter. The track chain then never sees them, so such a
// NAT keeps its mappings another way: the elements of its ports and
// mappings maps count the conntrack entries of the flows that made or
// use them ("ct count over 0"), the claim chain and the track chain
// counting each flow's first packet only, and the kernel removes an
// element once none of its entries is left. Conntrack's timeouts are the
// NAT's, so a mapping lives its timeout after its last packet, in either
// direction, to within about a second (offload.go). What needs every
// packet of a flow keeps the per-packet rules (Config.OffloadProblem).
//
// # The schema
//
// natrules also owns the schema of those tables for the packages that
// read and write them at run time: the table descriptors (Table,
// TableFirewall6, TraceTable), the names of the sets, and the byte layout
// of their elements (Owner, Mapping, Permit, HairpinPermit and a port-mapping Lease, each
// with its encoder and parser). natpmp, nattable, trace and bench use
// them and spell no table or set name of their own; a test fails if one
// does.
package natrules
