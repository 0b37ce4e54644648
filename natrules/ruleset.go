package natrules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/natlab/natlab/nat"
)

// Ruleset is the complete nftables table of one NAT. It is built once and
// read many times; its methods do not modify it.
type Ruleset struct {
	table  *nftables.Table
	sets   []*set
	chains []*chain
	// flowtable is an offloaded NAT's (offload.go), nil for others.
	flowtable *nftables.Flowtable
}

type set struct {
	spec *nftables.Set
	// keyText and dataText are the type names as nft prints them.
	keyText, dataText string
	elements          []nftables.SetElement
	elementText       []string
	// fixed says the set never changes while the lab runs (a pool's):
	// nothing learns into it, and Forget leaves it alone.
	fixed bool
}

type chain struct {
	spec  *nftables.Chain
	rules []rule
}

type rule struct {
	stmts   []stmt
	comment string
}

func (r rule) exprs() []expr.Any {
	var exprs []expr.Any
	for _, s := range r.stmts {
		exprs = append(exprs, s.exprs...)
	}
	return exprs
}

func (r rule) text() string {
	var words []string
	for _, s := range r.stmts {
		if s.text != "" {
			words = append(words, s.text)
		}
	}
	if r.comment != "" {
		words = append(words, fmt.Sprintf("comment %q", r.comment))
	}
	return strings.Join(words, " ")
}

// Offloads says whether the ruleset hands established flows to the
// kernel's flowtable (Config.Offload), which a kernel without one
// refuses.
func (r *Ruleset) Offloads() bool { return r.flowtable != nil }

// Table returns the table the ruleset lives in.
func (r *Ruleset) Table() *nftables.Table { return r.table }

// AddTo queues the whole table on conn: the table, its sets with their
// static elements, its chains and their rules. Nothing reaches the kernel
// until the caller flushes conn, which applies it all in one transaction.
func (r *Ruleset) AddTo(conn *nftables.Conn) error {
	conn.AddTable(r.table)
	for _, s := range r.sets {
		// Build numbered the sets: google/nftables would otherwise number
		// them from an unguarded global counter, a race when labs come up
		// in parallel.
		if err := conn.AddSet(s.spec, nil); err != nil {
			return fmt.Errorf("set %s: %w", s.spec.Name, err)
		}
		// Before the rules: the kernel adds no elements to a constant set
		// that a rule already uses.
		if err := addElements(conn, s.spec, s.elements); err != nil {
			return err
		}
	}
	if r.flowtable != nil {
		conn.AddFlowtable(r.flowtable)
	}
	// Chains before rules: rules jump to chains declared later in the text.
	for _, c := range r.chains {
		conn.AddChain(c.spec)
	}
	for _, c := range r.chains {
		for _, rl := range c.rules {
			r := &nftables.Rule{Table: r.table, Chain: c.spec, Exprs: rl.exprs()}
			if rl.comment != "" {
				r.UserData = userdata.AppendString(nil, userdata.TypeComment, rl.comment)
			}
			conn.AddRule(r)
		}
	}
	return nil
}

// Forget queues on conn what a NAT's reboot does to its memory: each set
// of the table, loaded as AddTo loads it, is emptied and given back the
// static elements Build put there (the forwards), so that what the NAT
// learnt while it ran (its mappings, whom they sent to, port-mapping
// leases) is gone and its configuration stays; chains and rules are left
// as they are. Flushing conn applies it in one transaction.
func (r *Ruleset) Forget(conn *nftables.Conn) error {
	for _, s := range r.sets {
		if s.fixed {
			// Nothing to forget; a constant set cannot be flushed.
			continue
		}
		conn.FlushSet(s.spec)
		if len(s.elements) == 0 {
			continue
		}
		if err := addElements(conn, s.spec, s.elements); err != nil {
			return err
		}
	}
	return nil
}

// elementsPerMessage is how many elements one message adds to a set. The
// elements of a message are one netlink attribute, whose length is 16
// bits: the 2,048 elements of a carrier-grade NAT's subscriber_ports map
// for two subscribers with a quota of 1,024 ports each did not fit in
// 64 KiB (ERANGE); 512 of the largest natlab makes do.
const elementsPerMessage = 512

// addElements queues the elements of set on conn, elementsPerMessage at a
// time.
func addElements(conn *nftables.Conn, set *nftables.Set, elements []nftables.SetElement) error {
	for chunk := range slices.Chunk(elements, elementsPerMessage) {
		if err := conn.SetAddElements(set, chunk); err != nil {
			return fmt.Errorf("set %s: %w", set.Name, err)
		}
	}
	return nil
}

// String renders the table as `nft list table ip natlab` prints it on a
// freshly loaded ruleset, so it can be compared with the kernel and loaded
// with `nft -f`.
func (r *Ruleset) String() string {
	var b strings.Builder
	family := map[nftables.TableFamily]string{nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet"}[r.table.Family]
	fmt.Fprintf(&b, "table %s %s {\n", family, r.table.Name)
	var blocks []string
	for _, s := range r.sets {
		blocks = append(blocks, s.text())
	}
	if r.flowtable != nil {
		blocks = append(blocks, flowtableText(r.flowtable))
	}
	for _, c := range r.chains {
		blocks = append(blocks, c.text())
	}
	b.WriteString(strings.Join(blocks, "\n"))
	b.WriteString("}\n")
	return b.String()
}

func (s *set) text() string {
	var b strings.Builder
	kind := "set"
	typ := s.keyText
	if s.spec.IsMap {
		kind = "map"
		typ += " : " + s.dataText
	}
	fmt.Fprintf(&b, "\t%s %s {\n", kind, s.spec.Name)
	fmt.Fprintf(&b, "\t\ttype %s\n", typ)
	switch {
	case s.spec.Size != 0:
		fmt.Fprintf(&b, "\t\tsize %d\n", s.spec.Size)
	case s.spec.Dynamic:
		// The kernel gives a dynamic set without a size this one.
		fmt.Fprintf(&b, "\t\tsize %d\n", dynamicSetSize)
	}
	var flags []string
	if s.spec.Constant {
		flags = append(flags, "constant")
	}
	if s.spec.Dynamic {
		flags = append(flags, "dynamic")
	}
	if s.spec.HasTimeout {
		flags = append(flags, "timeout")
	}
	if len(flags) > 0 {
		fmt.Fprintf(&b, "\t\tflags %s\n", strings.Join(flags, ","))
	}
	if s.spec.Timeout != 0 {
		fmt.Fprintf(&b, "\t\ttimeout %s\n", nat.FormatDuration(s.spec.Timeout))
	}
	if s.spec.Comment != "" {
		fmt.Fprintf(&b, "\t\tcomment %q\n", s.spec.Comment)
	}
	if len(s.elementText) > 0 {
		fmt.Fprintf(&b, "\t\telements = { %s }\n", s.joinElements())
	}
	b.WriteString("\t}\n")
	return b.String()
}

// joinElements joins the elements' text as nft lists them: by datatype,
// five numbers or two addresses to a line, or one concatenation
// (calculate_delim in nft's src/expression.c).
func (s *set) joinElements() string {
	perLine := 1
	switch s.spec.KeyType.Name {
	case nftables.TypeInetService.Name, nftables.TypeMark.Name, nftables.TypeInteger.Name:
		perLine = 5
	case nftables.TypeIPAddr.Name:
		perLine = 2
	}
	var b strings.Builder
	for i, e := range s.elementText {
		switch {
		case i == 0:
		case i%perLine == 0:
			b.WriteString(",\n\t\t\t     ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(e)
	}
	return b.String()
}

func (c *chain) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchain %s {\n", c.spec.Name)
	if c.spec.Hooknum != nil {
		policy := "accept"
		if c.spec.Policy != nil && *c.spec.Policy == nftables.ChainPolicyDrop {
			policy = "drop"
		}
		fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n",
			c.spec.Type, hookName[*c.spec.Hooknum], priorityName(*c.spec.Priority), policy)
	}
	for _, r := range c.rules {
		fmt.Fprintf(&b, "\t\t%s\n", r.text())
	}
	b.WriteString("\t}\n")
	return b.String()
}

var hookName = map[nftables.ChainHook]string{
	*nftables.ChainHookPrerouting:  "prerouting",
	*nftables.ChainHookInput:       "input",
	*nftables.ChainHookForward:     "forward",
	*nftables.ChainHookOutput:      "output",
	*nftables.ChainHookPostrouting: "postrouting",
}

// priorityName prints a priority as nft does: by the standard name it
// equals or is closest above or below.
func priorityName(p nftables.ChainPriority) string {
	names := []struct {
		name  string
		value nftables.ChainPriority
	}{
		{"dstnat", *nftables.ChainPriorityNATDest},
		{"filter", *nftables.ChainPriorityFilter},
		{"srcnat", *nftables.ChainPriorityNATSource},
	}
	for _, n := range names {
		switch d := p - n.value; {
		case d == 0:
			return n.name
		case d > 0 && d <= 10:
			return fmt.Sprintf("%s + %d", n.name, d)
		case d < 0 && d >= -10:
			return fmt.Sprintf("%s - %d", n.name, -d)
		}
	}
	return fmt.Sprint(int32(p))
}

// dynamicSetSize is the size the kernel gives a dynamic set that was
// created without one.
const dynamicSetSize = 65535

// newSet declares a dynamic set or map (data non-empty) whose elements expire
// unless refreshed. Elements added with the table (static forwards) get no
// timeout and stay.
func newSet(t *nftables.Table, name, comment string, key, data []nftables.SetDatatype) *set {
	s := &set{spec: &nftables.Set{
		Table:        t,
		Name:         name,
		Dynamic:      true,
		HasTimeout:   true,
		KeyByteOrder: binaryutil.BigEndian,
		Comment:      comment,
		// No size: a size is also the kernel's hint for the hash
		// table's first allocation, and 65535 costs several
		// milliseconds per set to allocate and free, which is most of
		// a small lab's bring-up. Without one the table starts small
		// and grows; the elements stay bounded by the port space and
		// by conntrack, whose flows they follow.
	}}
	s.spec.KeyType, s.keyText = datatype(key)
	s.spec.Concatenation = len(key) > 1
	if len(data) > 0 {
		s.spec.IsMap = true
		s.spec.DataType, s.dataText = datatype(data)
	}
	return s
}

func datatype(types []nftables.SetDatatype) (nftables.SetDatatype, string) {
	if len(types) == 1 {
		return types[0], types[0].Name
	}
	t := nftables.MustConcatSetType(types...)
	return t, t.Name
}
