package natrules

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// flowtableProbe is the table HasFlowtable tries a flowtable in; the
// transaction that adds it deletes it again.
const flowtableProbe = "natlab_flowtable_probe"

// HasFlowtable says whether the kernel of the namespace open as nsFd
// has the nftables flowtable, the fast path that lets established flows
// skip the netfilter hooks (CONFIG_NF_FLOW_TABLE; Debian's kernels have
// it as a module). natlab does not offload flows: an offloaded packet
// skips the track chain, whose refresh keeps a mapping alive exactly as
// long as its traffic, so its mapping would expire under a live flow.
//
// It asks the kernel for a flowtable in a table that the same
// transaction deletes, so the namespace is left as it was either way;
// a kernel without one refuses the transaction with ENOENT.
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
	conn.AddFlowtable(&nftables.Flowtable{Table: probe, Name: "probe", Hooknum: nftables.FlowtableHookIngress, Priority: nftables.FlowtablePriorityFilter})
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
