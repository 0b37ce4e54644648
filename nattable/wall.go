package nattable

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/natrules"
)

// WallDrops reads how many packets the wall of the NAT whose namespace is
// open as nsFd has dropped: the counters of natlab's rules that drop
// unsolicited packets (natrules.DropInput, DropForward and DropPool) and
// hairpinned packets the filtering refuses (natrules.DropHairpin), which
// RFC 4787 treats as arriving from outside, summed. ctx is looked at
// before each chain is read, and its deadline bounds the reads.
func WallDrops(ctx context.Context, nsFd int) (uint64, error) {
	conn, err := dialNFT(ctx, nsFd)
	if err != nil {
		return 0, err
	}
	table := natrules.Table()
	var total uint64
	// The wall's rules are in these chains (a pool's only with a pool);
	// the others hold expressions google/nftables cannot read back. A NAT
	// whose filtering admits every hairpinned packet, or that does not
	// hairpin, has no hairpin chain.
	chains := []string{natrules.ChainForward, natrules.ChainInput, natrules.ChainHairpinWall}
	if _, err := conn.GetSetByName(table, natrules.PoolSet); err == nil {
		chains = append(chains, natrules.ChainPoolWall)
	}
	for _, name := range chains {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("list the rules of chain %s: %w", name, err)
		}
		ch := &nftables.Chain{Name: name, Table: table}
		rules, err := conn.GetRules(table, ch)
		if name == natrules.ChainHairpinWall && errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("list the rules of chain %s: %w", name, err)
		}
		for _, r := range rules {
			var packets uint64
			wall := false
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Counter:
					packets = e.Packets
				case *expr.Log:
					p := strings.TrimRight(string(e.Data), "\x00")
					wall = p == natrules.DropInput || p == natrules.DropForward || p == natrules.DropHairpin || p == natrules.DropPool
				}
			}
			if wall {
				total += packets
			}
		}
	}
	return total, nil
}
