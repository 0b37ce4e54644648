package natrules

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"

	"github.com/natlab/natlab/internal/nftconn"
	"github.com/natlab/natlab/internal/testutil"
)

// Every ruleset natlab builds loads into the kernel, through the
// connection labs use. Unlike TestKernelListsGolden it needs no nft, so
// it runs in make vm-test's guest too, on a kernel other than the
// host's: a ruleset one kernel takes and another refuses (an expression
// or attribute it does not know) fails here, naming the first piece the
// kernel refuses.
func TestKernelAcceptsEveryRuleset(t *testing.T) {
	testutil.RequireRoot(t)
	for name, rs := range allCases(t) {
		t.Run(name, func(t *testing.T) {
			ns, _ := testutil.NewNS(t, "rules")
			err := load(ns.Fd(), rs.AddTo)
			if err == nil {
				return
			}
			// Nothing of a refused transaction is left to get in the way.
			t.Errorf("the kernel refused the ruleset: %v; the first piece it refuses alone: %s", err, firstRefused(t, ns.Fd(), rs))
		})
	}
}

// load queues with add on a new connection to the namespace and flushes.
func load(nsFd int, add func(*nftables.Conn) error) error {
	conn, err := nftconn.Dial(nsFd)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := add(conn.Conn); err != nil {
		return err
	}
	return conn.Flush()
}

// firstRefused loads rs piece by piece, each in a transaction of its own,
// and names the first piece the kernel refuses.
func firstRefused(t *testing.T, nsFd int, rs *Ruleset) string {
	t.Helper()
	step := func(what string, add func(*nftables.Conn)) string {
		if err := load(nsFd, func(c *nftables.Conn) error { add(c); return nil }); err != nil {
			return what + ": " + err.Error()
		}
		return ""
	}
	if msg := step("table "+rs.table.Name, func(c *nftables.Conn) { c.AddTable(rs.table) }); msg != "" {
		return msg
	}
	for _, s := range rs.sets {
		var err error
		msg := step("set "+s.spec.Name, func(c *nftables.Conn) { err = c.AddSet(s.spec, s.elements) })
		if err != nil {
			return "set " + s.spec.Name + ": " + err.Error()
		}
		if msg != "" {
			return msg
		}
	}
	for _, c := range rs.chains {
		if msg := step("chain "+c.spec.Name, func(conn *nftables.Conn) { conn.AddChain(c.spec) }); msg != "" {
			return msg
		}
	}
	for _, c := range rs.chains {
		for _, rl := range c.rules {
			msg := step("rule in "+c.spec.Name+": "+rl.text(), func(conn *nftables.Conn) {
				r := &nftables.Rule{Table: rs.table, Chain: c.spec, Exprs: rl.exprs()}
				if rl.comment != "" {
					r.UserData = userdata.AppendString(nil, userdata.TypeComment, rl.comment)
				}
				conn.AddRule(r)
			})
			if msg != "" {
				return msg
			}
		}
	}
	return "nothing, piece by piece"
}
