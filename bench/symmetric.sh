#!/bin/sh
# The topology of scenarios/symmetric.yaml built the way one would by hand,
# with ip and nft commands: the baseline natlab-bench measures natlab up
# and down against. Every namespace is PREFIX-NODE; links are created
# inside the lab's namespaces, never in the root one. The NATs get the
# usual hand-written recipe (masquerade, and a stateful filter as the
# wall), not natlab's exact rules, whose listing nft cannot parse back; no
# services run.
#
#   symmetric.sh up PREFIX
#   symmetric.sh down PREFIX
set -eu
cmd=$1
p=$2

if [ "$cmd" = down ]; then
	for n in alice bob nat-a nat-b stun internet; do
		ip netns del "$p-$n"
	done
	exit 0
fi

for n in internet stun nat-a nat-b alice bob; do
	ip netns add "$p-$n"
	ip -n "$p-$n" link set lo up
done

# The internet: one bridge, every top-level node plugged into it.
ip -n "$p-internet" link add internet type bridge
ip -n "$p-internet" link set internet up
plug() { # plug NODE IFNAME: a veth from the internet bridge to NODE
	ip -n "$p-internet" link add "$1" type veth peer name "$2" netns "$p-$1"
	ip -n "$p-internet" link set "$1" master internet up
	ip -n "$p-$1" link set "$2" up
}
plug stun eth0
ip -n "$p-stun" addr add 203.0.113.10/24 dev eth0
ip -n "$p-stun" addr add 203.0.113.11/24 dev eth0

nat() { # nat NODE PUBLIC LAN-GATEWAY HOST HOST-ADDRESS MASQUERADE-FLAGS
	plug "$1" wan0
	ip -n "$p-$1" addr add "$2/24" dev wan0
	ip -n "$p-$1" link add lan0 type bridge
	ip -n "$p-$1" addr add "$3/24" dev lan0
	ip -n "$p-$1" link set lan0 up
	ip -n "$p-$1" link add "$4" type veth peer name eth0 netns "$p-$4"
	ip -n "$p-$1" link set "$4" master lan0 up
	ip -n "$p-$4" addr add "$5/24" dev eth0
	ip -n "$p-$4" link set eth0 up
	ip -n "$p-$4" route add default via "$3"
	ip netns exec "$p-$1" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$p-$1" nft -f - <<-RULES
		table ip nat {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "wan0" masquerade $6
			}
		}
		table ip filter {
			chain forward {
				type filter hook forward priority filter; policy drop;
				ct state established,related accept
				iifname "lan0" oifname "wan0" accept
			}
			chain input {
				type filter hook input priority filter; policy drop;
				ct state established,related accept
				iifname { "lo", "lan0" } accept
			}
		}
	RULES
}
# Symmetric: a random port per flow; port-restricted cone: ports kept.
nat nat-a 203.0.113.1 192.168.1.1 alice 192.168.1.2 "random,fully-random"
nat nat-b 203.0.113.2 192.168.2.1 bob 192.168.2.2 "persistent"
