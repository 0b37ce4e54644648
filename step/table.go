package step

import (
	"context"
	"fmt"
	"strings"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/topology"
)

// Table reads a nat's translation table and checks its size.
type Table struct {
	// The nat whose table to read.
	Node string `yaml:"node" format:"NodeRef" schema:"required"`
	// How many entries the table must hold.
	Expect TableCounts `yaml:"expect" format:"TableExpect" default:"nothing: the table is only shown"`
	_      struct{}    `name:"table NODE"`
}

// TableCounts are how many mappings and flows a table must hold; nil for
// a count not checked.
type TableCounts struct {
	Mappings, Flows *int
}

// String is the counts as reports show them: "{mappings 2, flows 3}", or
// "anything" when none is checked.
func (c TableCounts) String() string {
	var parts []string
	if c.Mappings != nil {
		parts = append(parts, fmt.Sprintf("mappings %d", *c.Mappings))
	}
	if c.Flows != nil {
		parts = append(parts, fmt.Sprintf("flows %d", *c.Flows))
	}
	if len(parts) == 0 {
		return "anything"
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Check says what is wrong with a table of m mappings and f flows.
func (c TableCounts) Check(m, f int) []string {
	var wrong []string
	if c.Mappings != nil && *c.Mappings != m {
		wrong = append(wrong, fmt.Sprintf("%d mappings, not %d", m, *c.Mappings))
	}
	if c.Flows != nil && *c.Flows != f {
		wrong = append(wrong, fmt.Sprintf("%d flows, not %d", f, *c.Flows))
	}
	return wrong
}

func (s *Table) read(f *topology.StepFields) string {
	s.Node, _ = f.NAT("node")
	s.Expect.Mappings, s.Expect.Flows = f.TableCounts("expect")
	return "table " + s.Node
}

// Describe says which table the step reads and what it expects.
func (s *Table) Describe() string {
	return fmt.Sprintf(" of %s, expect %s", s.Node, s.Expect)
}

// Expected is the size the table must have.
func (s *Table) Expected() string { return s.Expect.String() }

// Needs is nothing: the table is the kernel's.
func (s *Table) Needs(Env) []Need { return nil }

// Run reads the table, with the NAT's static forwards, and checks its
// size.
func (s *Table) Run(ctx context.Context, env Env) (Result, error) {
	t, err := env.Table(ctx, s.Node)
	if err != nil {
		return Result{}, err
	}
	n := env.Topology().Node(s.Node)
	t.AddStatic(n.Addresses[0], n.NAT.Forwards)
	t.AddOneToOne(env.Topology(), n)
	t.AddBlocks(env.Topology(), n)
	var b strings.Builder
	nattable.Write(&b, t)
	res := Result{
		Expect:   s.Expected(),
		Observed: fmt.Sprintf("{mappings %d, flows %d}", len(t.Mappings), len(t.Flows)),
		Detail:   strings.TrimRight(b.String(), "\n"),
		Data:     t,
		Pass:     true,
	}
	if wrong := s.Expect.Check(len(t.Mappings), len(t.Flows)); len(wrong) > 0 {
		res.Pass, res.Reason = false, strings.Join(wrong, "; ")
	}
	return res, nil
}
