#!/bin/sh
# The demo: a lab with two NATs built from the built-in "symmetric"
# scenario, looked at, used, and removed again (also on failure or Ctrl-C).
set -eu
natlab=${1:-bin/natlab}
lab=demo
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

cleanup() { "$natlab" down "$lab" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

step "Build a lab: a STUN server, alice behind a symmetric NAT, bob behind a port-restricted cone" \
	"natlab up symmetric --name $lab"
"$natlab" up symmetric --name "$lab"

step "What is up" "natlab status $lab"
"$natlab" status "$lab"

step "Act I: alice (192.168.1.2) reaches the server; the NAT rewrites her source" \
	"natlab exec $lab alice -- ping -c 2 203.0.113.10"
"$natlab" exec "$lab" alice -- ping -c 2 -W 2 203.0.113.10

step "Act II: the NAT's translation table, read from conntrack in nat-a" \
	"natlab exec $lab nat-a -- conntrack -L -p icmp"
"$natlab" exec "$lab" nat-a -- conntrack -L -p icmp 2>/dev/null

step "Act III: the wall: the server cannot start a conversation with nat-a's public address" \
	"natlab exec $lab stun -- ping -c 1 -W 1 203.0.113.1"
if "$natlab" exec "$lab" stun -- ping -c 1 -W 1 203.0.113.1 >/dev/null 2>&1; then
	echo "unexpected: the NAT answered" >&2
	exit 1
fi
echo "no answer: dropped by nat-a's input chain"

step "The rules natlab loaded into nat-a (first lines)" "natlab rules $lab nat-a"
"$natlab" rules "$lab" nat-a | head -n 30
echo "..."

step "Remove the lab" "natlab down $lab"
"$natlab" down "$lab"
trap - EXIT INT TERM
