#!/usr/bin/python3
"""Time Mininet (Debian bookworm mininet 2.3.0) building and tearing down
the equivalent of scenarios/symmetric.yaml.

Topology
  internet  L2 segment 203.0.113.0/24 (LinuxBridge, own netns)
  stun      203.0.113.10/24 + 203.0.113.11/24 on internet
  nata      public 203.0.113.1/24, LAN 192.168.1.1/24, ip_forward=1, nft masquerade
  natb      public 203.0.113.2/24, LAN 192.168.2.1/24, ip_forward=1, nft masquerade
  lana/lanb LAN switches (LinuxBridge, own netns)
  alice     192.168.1.2/24 via 192.168.1.1 (behind nata)
  bob       192.168.2.2/24 via 192.168.2.1 (behind natb)

Every node, switches included, gets its own network namespace.  No
controller, no Open vSwitch.

SAFETY: run this ONLY inside a throw-away network namespace, e.g.
    ip netns add mnbench-sandbox
    ip netns exec mnbench-sandbox /usr/bin/python3 symmetric_mininet.py -n 10
    ip netns del mnbench-sandbox
The script refuses to run in the host's (PID 1's) network namespace, skips
Mininet's fixLimits() (which writes global sysctls such as fs.file-max and
kernel.pty.max), and refuses any veth creation that would target "netns 1".

Output: one JSON line per repetition on stdout:
  {"rep": 1, "up_s": ..., "down_s": ..., "ping_ok": true|null}
up_s   = Mininet() construction + addHost/addSwitch/addLink + build() + start()
         + extra address/NAT configuration (everything needed to be usable)
down_s = net.stop() (links, bridges, node shells / namespaces)
The ping check (if enabled) runs between the two timed phases and is not
included in either number.
"""

import argparse
import json
import os
import sys
import time


def inSandboxNetns():
    """True only if our network namespace is a named one (ip netns add, i.e.
    listed in /run/netns) and is not PID 1's namespace (when readable)."""
    try:
        self_ns = os.stat('/proc/self/ns/net')
    except OSError:
        return False
    try:
        init_ns = os.stat('/proc/1/ns/net')
        if (init_ns.st_dev, init_ns.st_ino) == (self_ns.st_dev, self_ns.st_ino):
            return False
    except OSError:
        pass  # /proc/1/ns may be unreadable in some containers/VMs
    try:
        names = os.listdir('/run/netns')
    except OSError:
        return False
    for name in names:
        try:
            st = os.stat(os.path.join('/run/netns', name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (self_ns.st_dev, self_ns.st_ino):
            return True
    return False


def importMininet():
    "Import mininet and neutralise the parts that could touch global state."
    import mininet.util
    import mininet.link
    from mininet.net import Mininet
    from mininet.node import Node
    from mininet.nodelib import LinuxBridge
    from mininet.util import ensureRoot

    ensureRoot()
    # Mininet.init() calls fixLimits(), which writes fs.file-max,
    # kernel.pty.max (not namespaced) and net.* sysctls.  Skip it.
    Mininet.inited = True

    # makeIntfPair() uses "netns 1" (= PID 1's namespace = real root netns,
    # even from inside our sandbox) when node2 is None.  Forbid that path.
    origMakeIntfPair = mininet.link.makeIntfPair

    def safeMakeIntfPair(intf1, intf2, addr1=None, addr2=None,
                         node1=None, node2=None, *args, **kwargs):
        if node1 is None or node2 is None:
            raise RuntimeError('refusing makeIntfPair without both nodes '
                               '(would use netns 1 / root namespace)')
        return origMakeIntfPair(intf1, intf2, addr1, addr2, node1, node2,
                                *args, **kwargs)
    mininet.link.makeIntfPair = safeMakeIntfPair
    return Mininet, Node, LinuxBridge


def newNet(Mininet, LinuxBridge):
    "Empty Mininet object: no controller, LinuxBridge switches."
    return Mininet(topo=None, build=False, controller=None,
                   switch=LinuxBridge, inNamespace=False,
                   autoSetMacs=False, waitConnected=False)


def buildNet(net, Node):
    "Populate, build and start the network."

    class NatRouter(Node):
        "Router node with ip_forward=1 and an nftables masquerade rule."

        def config(self, lanSubnet=None, pubIntf=None, **params):
            r = super(NatRouter, self).config(**params)
            self.cmd('sysctl -qw net.ipv4.ip_forward=1')
            cmds = ('add table ip nat; '
                    'add chain ip nat postrouting { type nat hook postrouting'
                    ' priority srcnat; policy accept; }; '
                    'add rule ip nat postrouting ip saddr %s oifname "%s"'
                    ' counter masquerade' % (lanSubnet, pubIntf))
            out = self.cmd("nft '%s'" % cmds)
            if out.strip():
                raise RuntimeError('%s: nft failed: %s' % (self.name, out))
            return r

    # Switches: LinuxBridge, each in its own network namespace.
    # (dpid given explicitly: names contain no digits.)
    inet = net.addSwitch('internet', dpid='1', inNamespace=True)
    lana = net.addSwitch('lana', dpid='2', inNamespace=True)
    lanb = net.addSwitch('lanb', dpid='3', inNamespace=True)

    # Hosts.  ip= is applied to the node's default (first) interface by
    # build()/configHosts(), so the first link of each node is its "main" one.
    stun = net.addHost('stun', ip='203.0.113.10/24')
    nata = net.addHost('nata', cls=NatRouter, ip='203.0.113.1/24',
                       lanSubnet='192.168.1.0/24', pubIntf='nata-eth0')
    natb = net.addHost('natb', cls=NatRouter, ip='203.0.113.2/24',
                       lanSubnet='192.168.2.0/24', pubIntf='natb-eth0')
    alice = net.addHost('alice', ip='192.168.1.2/24',
                        defaultRoute='via 192.168.1.1')
    bob = net.addHost('bob', ip='192.168.2.2/24',
                      defaultRoute='via 192.168.2.1')

    net.addLink(stun, inet)                       # stun-eth0
    net.addLink(nata, inet)                       # nata-eth0 (public)
    net.addLink(natb, inet)                       # natb-eth0 (public)
    net.addLink(nata, lana, params1={'ip': '192.168.1.1/24'})  # nata-eth1
    net.addLink(natb, lanb, params1={'ip': '192.168.2.1/24'})  # natb-eth1
    net.addLink(alice, lana)                      # alice-eth0
    net.addLink(bob, lanb)                        # bob-eth0

    net.build()
    net.start()
    # Second STUN address.
    out = stun.cmd('ip addr add 203.0.113.11/24 dev stun-eth0')
    if out.strip():
        raise RuntimeError('stun: ip addr add failed: %s' % out)


def natCounter(node):
    "Packets counted by the masquerade rule in node's nat table."
    out = node.cmd('nft list chain ip nat postrouting')
    for tok, nxt in zip(out.split(), out.split()[1:]):
        if tok == 'packets':
            return int(nxt)
    return -1


def checkNet(net):
    "alice->203.0.113.10 via nata, bob->203.0.113.10 via natb (masqueraded)."
    ok = True
    for host, nat, pub in (('alice', 'nata', '203.0.113.1'),
                           ('bob', 'natb', '203.0.113.2')):
        h, n, stun = net[host], net[nat], net['stun']
        before = natCounter(n)
        out = h.cmd('ping -c1 -W2 203.0.113.10')
        got = ' 0% packet loss' in out
        after = natCounter(n)
        # stun must have learned the NAT's public address, never a LAN one.
        neigh = stun.cmd('ip -4 neigh show dev stun-eth0')
        natted = after > before and pub in neigh and '192.168.' not in neigh
        if not (got and natted):
            ok = False
            sys.stderr.write('CHECK FAILED %s via %s: ping_ok=%s nat_pkts '
                             '%s->%s neigh=%r\n%s\n' % (
                                 host, nat, got, before, after, neigh, out))
    # Second stun address answers too.
    out = net['alice'].cmd('ping -c1 -W2 203.0.113.11')
    if ' 0% packet loss' not in out:
        ok = False
        sys.stderr.write('CHECK FAILED alice -> 203.0.113.11\n%s\n' % out)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('-n', '--reps', type=int, default=1,
                   help='number of repetitions (default 1)')
    p.add_argument('--no-ping', action='store_true',
                   help='skip the connectivity check (time only up/down)')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='Mininet info logging on stderr')
    args = p.parse_args()

    if not inSandboxNetns():
        sys.exit('refusing to run outside a named sandbox network namespace; use '
                 '"ip netns exec <sandbox> %s"' % sys.argv[0])

    # Mininet's logger writes to stderr, so stdout carries only the JSON.
    from mininet.log import setLogLevel
    setLogLevel('info' if args.verbose else 'warning')

    Mininet, Node, LinuxBridge = importMininet()

    failed = False
    for rep in range(1, args.reps + 1):
        net = None
        t0 = time.monotonic()
        try:
            net = newNet(Mininet, LinuxBridge)
            buildNet(net, Node)
            t1 = time.monotonic()
            ping_ok = None if args.no_ping else checkNet(net)
        finally:
            t2 = time.monotonic()
            if net is not None:
                net.stop()
            t3 = time.monotonic()
        if ping_ok is False:
            failed = True
        print(json.dumps({'rep': rep, 'up_s': round(t1 - t0, 4),
                          'down_s': round(t3 - t2, 4), 'ping_ok': ping_ok}),
              flush=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
