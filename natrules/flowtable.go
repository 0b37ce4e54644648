package natrules

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// flowtableProbe is the table HasFlowtable tries a flowtable in; the
// transaction that adds it deletes it again.
const flowtableProbe = "natlab_flowtable_probe"

// HasFlowtable says whether the kernel of the namespace open as nsFd
// has what an offloaded NAT's table needs (Config.Offload): the nftables
// flowtable, the fast path that lets established flows skip the
// netfilter hooks (CONFIG_NF_FLOW_TABLE; Debian's kernels have it as a
// module), with its packet counter, a rule that offloads to it, and
// elements that count conntrack entries ("ct count").
//
// It asks the kernel for all of them in a table that the same
// transaction deletes, so the namespace is left as it was either way;
// a kernel without a flowtable refuses the transaction with ENOENT, one
// without a piece of the rest with ENOENT or EOPNOTSUPP.
func HasFlowtable(nsFd int) (bool, error) {
	// google/nftables's own connection: internal/nftconn's tests use
	// natrules, and this batch holds no ct expression to fix.
	conn, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	defer conn.CloseLasting()
	probe := &nftables.Table{Name: flowtableProbe, Family: nftables.TableFamilyIPv4}
	conn.AddTable(probe)
	ft := conn.AddFlowtable(&nftables.Flowtable{Table: probe, Name: "probe", Hooknum: nftables.FlowtableHookIngress,
		Priority: nftables.FlowtablePriorityFilter, Flags: flowtableCounter})
	held := newSet(probe, "held", "", []nftables.SetDatatype{nftables.TypeIPAddr}, []nftables.SetDatatype{nftables.TypeInetService})
	held.spec.HasTimeout, held.spec.ID = false, 1
	if err := conn.AddSet(held.spec, nil); err != nil {
		return false, fmt.Errorf("try an nftables flowtable: %w", err)
	}
	c := conn.AddChain(&nftables.Chain{Name: "probe", Table: probe})
	for _, r := range []rule{
		{stmts: []stmt{l4proto("udp", false), hold(held.spec.Name, []field{ipSaddr}, []field{udpDport})}},
		{stmts: []stmt{{exprs: []expr.Any{&expr.FlowOffload{Name: ft.Name}}}}},
	} {
		conn.AddRule(&nftables.Rule{Table: probe, Chain: c, Exprs: r.exprs()})
	}
	conn.DelTable(probe)
	switch err := conn.Flush(); {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP):
		return false, nil
	default:
		return false, fmt.Errorf("try an nftables flowtable: %w", err)
	}
}
