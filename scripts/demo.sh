#!/bin/sh
# The demo: a lab with two NATs built from the built-in "symmetric"
# scenario, looked at, used, and removed again (also on failure or Ctrl-C).
set -eu
natlab=${1:-bin/natlab}
# A lab of this run's own: one named demo may be someone else's (a
# teacher's), which the exit trap must never remove. NATLAB_DEMO_LAB
# names it otherwise.
lab=${NATLAB_DEMO_LAB:-demo-$$}
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

# Only a lab this run brought up is removed: an up that fails (the name
# is taken) or is interrupted removes what it built itself.
made=
cleanup() {
	if [ -n "$made" ]; then "$natlab" down "$lab" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Build a lab: a STUN server, alice behind a symmetric NAT, bob behind a port-restricted cone" \
	"natlab up symmetric --name $lab"
"$natlab" up symmetric --name "$lab"
made=1

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
# sed reads it all: natlab says so when its reader goes away (head).
"$natlab" rules "$lab" nat-a | sed -n 1,30p
echo "..."

step "Remove the lab" "natlab down $lab"
"$natlab" down "$lab"
made=
