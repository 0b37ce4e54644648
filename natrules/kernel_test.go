package natrules

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
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
			skipWithoutFlowtable(t, ns.Fd(), rs)
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
	if f := rs.flowtable; f != nil {
		if msg := step("flowtable "+f.Name, func(c *nftables.Conn) { c.AddFlowtable(f) }); msg != "" {
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

// Linux before 6.5 refuses a lookup in a map without a destination
// register ("udp sport != @ports", inverted or not) and an inverted lookup
// with one; a set lookup with a destination every kernel refuses. Debian
// 12 (6.1) and Ubuntu 22.04 (5.15) run such kernels, so no rule may hold
// one. This checks it on any kernel, without root; make vm-test's
// TestKernelAcceptsEveryRuleset on Debian 12's 6.1 checks it for real.
func TestLookupsLoadOnLinux61(t *testing.T) {
	for name, rs := range allCases(t) {
		isMap := map[string]bool{}
		for _, s := range rs.sets {
			isMap[s.spec.Name] = s.spec.IsMap
		}
		for _, c := range rs.chains {
			for _, rl := range c.rules {
				for _, e := range rl.exprs() {
					l, ok := e.(*expr.Lookup)
					if !ok {
						continue
					}
					m, known := isMap[l.SetName]
					switch {
					case !known:
						t.Errorf("%s: chain %s: a lookup in @%s, which the table does not declare: %s", name, c.spec.Name, l.SetName, rl.text())
					case m && (!l.IsDestRegSet || l.Invert):
						t.Errorf("%s: chain %s: a lookup in map @%s without a destination or inverted, which Linux before 6.5 refuses: %s", name, c.spec.Name, l.SetName, rl.text())
					case !m && l.IsDestRegSet:
						t.Errorf("%s: chain %s: a lookup in set @%s with a destination: %s", name, c.spec.Name, l.SetName, rl.text())
					}
				}
			}
		}
	}
}
