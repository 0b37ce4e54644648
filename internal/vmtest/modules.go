package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// The kernel modules the guest loads before the tests run: what natlab's
// labs use that Debian's kernel builds as modules (its config has almost
// all of netfilter, every qdisc, veth, bridge and tun as modules; IPv6,
// network namespaces and fq_codel are built in). Their dependencies and
// soft dependencies come from modprobe. The guest has no modprobe of
// its own: when the kernel asks for a module that is not loaded, the
// guest says which (see guestModprobe), and the module belongs here.
var modules = []string{
	// The nftables core, the NAT chain type and the expressions
	// natrules writes that live in modules of their own (payload, cmp,
	// meta, immediate, bitwise, byteorder, lookup, dynset, range and
	// counter are in nf_tables itself; an ip table's reject, a carrier-grade
	// NAT's, is nft_reject_ipv4's).
	"nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct", "nft_numgen",
	"nft_limit", "nft_log", "nft_reject", "nft_reject_inet", "nft_reject_ipv4", "nft_fib_inet",
	"nft_queue", "nft_compat", "nft_hash", "nft_redir", "nft_dup_netdev",
	// "ct count" in a set's elements, and the flowtable (the fast path
	// natrules' TestConntrackHoldsElements tries).
	"nft_connlimit", "nf_flow_table", "nf_flow_table_inet", "nft_flow_offload",
	// Conntrack, NAT, and what natlab reads them through: the NAT's
	// table (conntrack netlink), traces (nfnetlink_log), a delay line in
	// user space (nfnetlink_queue, through nft queue or the xt NFQUEUE
	// target), and log without a group (nf_log_syslog).
	"nf_conntrack", "nf_conntrack_netlink", "nf_nat", "nfnetlink_log",
	"nfnetlink_queue", "xt_NFQUEUE", "nf_log_syslog",
	// The links of a lab.
	"veth", "bridge", "tun", "dummy", "ifb",
	// Link conditions: netem, rate limits, and redirecting a link's
	// ingress to an ifb so it can be shaped too.
	"sch_netem", "sch_tbf", "sch_htb", "sch_prio", "sch_ingress",
	"cls_u32", "cls_matchall", "cls_basic", "cls_fw", "act_mirred", "act_gact",
}

// A kmod is a module file to load, in order, with the arguments modprobe
// would give it.
type kmod struct {
	Path string // on the host
	Args string
}

// resolveModules asks the host's modprobe (kmod) for the load order of
// names and their dependencies in the kernel of release under base
// (base/lib/modules/release/modules.dep). Modules built into that kernel
// need no file.
func resolveModules(base, release string, names []string) ([]kmod, error) {
	args := []string{"--show-depends", "-a", "-S", release}
	if base != "" && base != "/" {
		args = append(args, "-d", base)
	}
	cmd := exec.Command("modprobe", append(args, names...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("modprobe --show-depends for kernel %s: %s", release, msg)
	}
	return parseShowDepends(string(out))
}

// parseShowDepends reads modprobe --show-depends: "insmod PATH [ARGS]"
// lines in load order, "builtin NAME" for what the kernel holds already.
// A module that several names need is listed once, where it first comes.
func parseShowDepends(out string) ([]kmod, error) {
	var mods []kmod
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "builtin":
		case "insmod":
			if len(f) < 2 {
				return nil, fmt.Errorf("modprobe: %q: insmod without a file", sc.Text())
			}
			if !seen[f[1]] {
				seen[f[1]] = true
				mods = append(mods, kmod{Path: f[1], Args: strings.Join(f[2:], " ")})
			}
		default:
			return nil, fmt.Errorf("modprobe: %q: want insmod or builtin lines", sc.Text())
		}
	}
	return mods, sc.Err()
}

// moduleName is the name the kernel knows a module file by: its base name
// without .ko (and a compression suffix), dashes as underscores.
func moduleName(file string) string {
	name := filepath.Base(file)
	name = name[:strings.Index(name+".ko", ".ko")]
	return strings.ReplaceAll(name, "-", "_")
}
