package topology

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/natlab/natlab/internal/suggest"
	"github.com/natlab/natlab/linkcond"
)

// MaxFileSize is the largest scenario file ParseFile reads. A lab of
// thousands of nodes takes a few hundred kilobytes; anything larger is
// most likely the wrong file.
const MaxFileSize = 1 << 20

// ParseFile reads and parses the scenario file at path, as Parse does.
// Its errors are an ErrorList, each naming path.
func ParseFile(path string, kinds StepKinds) (*Topology, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, kinds)
}

// ReadFile reads a scenario file, refusing what cannot be one: a
// directory, a FIFO or device (which could block or never end), a file
// of the kernel's (/proc, /sys: see kernelFileSystems), a file over
// MaxFileSize. It looks before it opens, since opening some files does
// something, and again at what it opened, in case the path changed in
// between; it reads no more than the size the kernel reports. Its error
// is an ErrorList naming path.
func ReadFile(path string) ([]byte, error) {
	fail := func(msg string, err error) ([]byte, error) {
		return nil, ErrorList{{Pos: Position{File: path}, Msg: msg, err: err}}
	}
	info, err := os.Stat(path)
	if err != nil {
		return fail(fileProblem(err), err)
	}
	if msg := notAScenarioFile(info, onKernelFS(path, nil)); msg != "" {
		return fail(msg, nil)
	}
	// Non-blocking, so that a FIFO put in the path's place since returns
	// at once instead of waiting for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fail(fileProblem(err), err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return fail(fileProblem(err), err)
	}
	if msg := notAScenarioFile(info, onKernelFS(path, f)); msg != "" {
		return fail(msg, nil)
	}
	if info.Size() == 0 {
		// Nothing to read, and a file that has something all the same
		// (of a file system that makes it up when read) is not read.
		return []byte{}, nil
	}
	// The file may grow between Stat and ReadAll; read one byte more than
	// allowed to notice.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fail(fileProblem(err), err)
	}
	if len(data) > MaxFileSize {
		return fail("file is larger than 1 MiB; a scenario file is at most 1 MiB", nil)
	}
	return data, nil
}

// notAScenarioFile says why a file that is info, on the kernel's file
// system kernelFS (or none), cannot be a scenario file, or "".
func notAScenarioFile(info fs.FileInfo, kernelFS string) string {
	switch {
	case kernelFS != "":
		return fmt.Sprintf("is in the kernel's %s file system, whose files the kernel makes up as they are read and reports no true size for; want a scenario file (natlab does not read them)", kernelFS)
	case info.IsDir():
		return "is a directory; want a scenario file"
	case !info.Mode().IsRegular():
		return fmt.Sprintf("is not a regular file (%s); want a scenario file", fileKind(info.Mode()))
	case info.Size() > MaxFileSize:
		return fmt.Sprintf("file is %s; a scenario file is at most 1 MiB", mebibytes(info.Size()))
	}
	return ""
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func fileProblem(err error) string {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		err = pathErr.Err
	}
	return "cannot read it: " + err.Error()
}

func mebibytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Parse parses a scenario held in data; filename is used for the default
// lab name, for Topology.Source and in messages. It has no side effects.
//
// Its error is an ErrorList holding every problem in the file, sorted by
// position.
//
// A scenario is one YAML mapping with these keys:
//
//	name         the lab name; default: the file name without extension
//	description  one line of text for listings
//	internet     the internet's IPv4 prefix; default DefaultInternet
//	internet6    an IPv6 prefix, /32 to /48, that makes the lab dual stack;
//	             default: none, the lab is IPv4 only
//	nodes        required: node names to nodes, in the order to build them
//	steps        the script natlab runs on the lab: a list of steps
//
// Keys starting with x- are ignored, so that they can hold anchors for
// the rest of the file (x-home: &home {kind: nat, type: full-cone}), as in
// Docker Compose files.
//
// Every node has kind: server, nat or host, link (its uplink's conditions:
// delay, jitter, loss, duplicate, reorder, rate and mtu for both
// directions, and up and down for one; default: a perfect wire), and by
// kind:
//
//	server  addresses (default: two with stun, else one), addresses6,
//	        services (stun, turn, rendezvous, tunnel)
//	host    behind (a nat; default: on the internet), address, address6
//	nat     behind, public (its uplink address), lan (default: a free
//	        192.168.N.0/24), type, mapping, filtering, ports, port-range,
//	        hairpin, timeout, port-mapping (nat-pmp or none; none),
//	        forward (a list of {proto, port, to}), public6, lan6,
//	        firewall6 (endpoint-independent, address-dependent,
//	        address-and-port-dependent or off; address-and-port-dependent)
//
// A dual-stack lab gives every segment a /64 of internet6: the internet
// the first, each nat's LAN the next free one in file order unless lan6
// gives one, with the nat's gateway on ::1. IPv6 is not translated: a nat
// routes it and filters what comes in with its firewall6. Every node has
// an IPv6 address on its uplink's /64 (address6, public6, or addresses6,
// by default as many as its IPv4 addresses), allocated from ::2 upwards
// (::1 on the internet). The keys ending in 6 need internet6.
//
// Lab and node names are 1 to 32 characters of a-z, 0-9 and -, starting
// and ending with a letter or digit; internet is not a node name. Addresses
// left out are allocated in file order, lowest free first, once every
// written one is reserved. Anchors, aliases and merge keys (<<: *defaults)
// may be used to reuse settings.
//
// Each step is a mapping with one key, its kind, whose value is a mapping
// of its fields; a scalar kind such as wait takes one value instead. The
// kinds are those given, natlab's being step.Kinds (use step.Parse); with
// none, the steps: key is not read at all, as for a lab's recorded
// scenario whose nodes alone matter. docs/reference.md lists every kind
// with its fields and defaults.
func Parse(filename string, data []byte, kinds StepKinds) (*Topology, error) {
	p := newParser(filename)
	p.kinds = kinds
	if root := decodeYAML(filename, data, &p.errs); root != nil {
		p.scenario(root)
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	if len(p.topo.Warnings) > 0 {
		p.topo.Warnings = p.topo.Warnings.sorted()
	}
	p.topo.index = make(map[string]*Node, len(p.topo.Nodes))
	for _, n := range p.topo.Nodes {
		p.topo.index[n.Name] = n
	}
	return p.topo, nil
}

func newParser(filename string) *parser {
	return &parser{
		file:    filename,
		topo:    &Topology{Source: filename, Internet: DefaultInternet},
		byName:  make(map[string]*nodeSpec),
		inetOK:  true,
		inetPos: Position{File: filename},
	}
}

// ParseStep parses one step, written as an item of steps: would be (YAML
// or JSON, which is YAML too), against the nodes of the scenario in
// scenario. It is how natlab checks a step that comes from elsewhere than
// the file, such as an action taken in natlab ui, exactly as it checks the
// file's own. stepFile names the step's source in messages; the errors
// are an ErrorList.
func ParseStep(scenarioFile string, scenario []byte, stepFile string, step []byte, kinds StepKinds) (*Step, error) {
	return ParseStepAt(scenarioFile, scenario, nil, stepFile, step, kinds)
}

// ParseStepAt is ParseStep for a step on a lab that has changed since it
// came up (a NAT renumbered, a host moved): now is the lab as it is, its
// recorded topology, against which what the step changes is checked; nil
// is the lab as the scenario describes it.
func ParseStepAt(scenarioFile string, scenario []byte, now *Topology, stepFile string, step []byte, kinds StepKinds) (*Step, error) {
	p := newParser(scenarioFile)
	p.kinds = kinds
	if root := decodeYAML(scenarioFile, scenario, &p.errs); root != nil {
		p.scenario(root)
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	p.now = now
	v := decodeYAML(stepFile, step, &p.errs)
	if v == nil {
		return nil, p.errs.Err()
	}
	s, ok := p.readStep(v, "step")
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrorList{{Pos: Position{File: stepFile}, Msg: "not a step"}}
	}
	return s, nil
}

// parser holds the state of one Parse call.
type parser struct {
	file string
	errs ErrorList
	topo *Topology

	// inetOK is false when the internet: key was invalid, so that
	// addresses are not checked against a prefix the user did not mean.
	inetOK  bool
	inetSet bool
	inetPos Position
	// inet6Set says the file has an internet6: key, so the lab is dual
	// stack; inet6OK that its value is usable, so that IPv6 addresses and
	// LANs can be checked against it.
	inet6Set, inet6OK bool

	// nodes are the file's nodes in order; byName indexes them, broken
	// ones included, so that references to them are not reported as
	// missing.
	nodes  []*nodeSpec
	byName map[string]*nodeSpec
	// nodesOK says the nodes could be read, so that steps' references to
	// them can be checked.
	nodesOK bool
	// natNames lists the names of the NAT nodes sorted, for messages.
	natNames []string
	// kinds are the kinds of step the parser reads; none, and it reads no
	// steps.
	kinds StepKinds
	// stepLinks are the nodes' links as the link steps read so far leave
	// them, so that each is checked over what the ones before it made.
	stepLinks map[string]linkcond.Link
	// now is the lab as the steps read so far leave it (a nat renumbered,
	// a host moved), against which the next step's changes are checked;
	// nil until a step asks (current).
	now *Topology
}

// topLevelKeys are the keys a scenario file may have, besides x- keys.
var topLevelKeys = formatKeys[File]()

// ignoredPrefix starts top-level keys that natlab ignores: a place to
// park anchors, as Docker Compose's x- keys are.
const ignoredPrefix = "x-"

func (p *parser) scenario(root *value) {
	if root.kind == kindInvalid {
		return
	}
	if root.kind != kindMap {
		p.errs.errorf(root.pos, "top level: want a mapping with the keys %s, not %s", strings.Join(topLevelKeys, ", "), root.describe())
		return
	}
	var nodes, steps *entry
	for i := range root.entries {
		e := &root.entries[i]
		switch e.key {
		case "name":
			p.labName(e.val)
		case "description":
			p.description(e.val)
		case "internet":
			p.internet(e.val)
		case "internet6":
			p.internet6(e.val)
		case "nodes":
			nodes = e
		case "steps":
			steps = e
		default:
			if strings.HasPrefix(e.key, ignoredPrefix) {
				continue
			}
			p.errs.errorf(e.keyPos, "%s", unknownKeyMessage(*e, e.key, "the top level", topLevelKeys,
				"and keys starting with x-, which are ignored"))
		}
	}
	if p.topo.Name == "" && root.get("name") == nil {
		p.defaultLabName()
	}
	switch {
	case nodes == nil:
		p.errs.errorf(Position{File: p.file}, "missing nodes; a scenario needs at least one node, for example %s", minimalScenario)
	case p.readNodes(nodes):
		p.nodesOK = true
		p.validate()
	}
	// Steps are read after the nodes have been validated, for they refer
	// to nodes, their services and their addresses; when the nodes could
	// not be read at all, everything else about the steps is checked.
	if steps != nil && p.kinds != nil {
		p.readSteps(steps)
	}
}

func (p *parser) labName(v *value) {
	name, ok := p.str(v, "name", "a lab name")
	if !ok {
		return
	}
	if !validName(name) {
		p.errs.errorf(v.pos, "name: invalid lab name %q; %s", name, nameRule)
		return
	}
	p.topo.Name = name
}

// defaultLabName names the lab after its file, as natlab list shows it.
func (p *parser) defaultLabName() {
	base := filepath.Base(p.file)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if !validName(name) {
		p.errs.errorf(Position{File: p.file}, "the file name gives the lab name %q, which is not valid (%s); add name: with a valid one", name, nameRule)
		return
	}
	p.topo.Name = name
}

func (p *parser) description(v *value) {
	s, ok := p.str(v, "description", "one line of text")
	if !ok {
		return
	}
	// A block scalar (description: |) ends in a newline; that is still
	// one line.
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\n\r") {
		p.errs.errorf(v.pos, "description: want one line of text; it is shown in lab listings")
		return
	}
	p.topo.Description = s
}

func (p *parser) internet(v *value) {
	p.inetSet, p.inetPos = true, v.pos
	prefix, ok := p.prefix(v, "internet", "203.0.113.0/24")
	if ok && prefix.Masked() != prefix {
		p.errs.errorf(v.pos, "internet: %s has host bits set; write %s", prefix, prefix.Masked())
		ok = false
	}
	if !ok {
		p.inetOK = false
		return
	}
	p.topo.Internet = prefix
}

// readNodes decodes each node on its own; it reports false when there is
// nothing to validate across nodes.
func (p *parser) readNodes(e *entry) bool {
	v := e.val
	switch v.kind {
	case kindInvalid:
		return false
	case kindNull:
		p.errs.errorf(e.keyPos, "nodes: no nodes; a scenario needs at least one, for example %s", minimalScenario)
		return false
	case kindMap:
	default:
		p.errs.errorf(v.pos, "nodes: want a mapping of node names to nodes, such as {alice: {kind: host}}, not %s", v.describe())
		return false
	}
	if len(v.entries) == 0 {
		p.errs.errorf(v.pos, "nodes: no nodes; a scenario needs at least one, for example %s", minimalScenario)
		return false
	}
	if len(v.entries) > MaxNodes {
		p.errs.errorf(e.keyPos, "nodes: %d nodes; a lab has at most %d", len(v.entries), MaxNodes)
	}
	p.nodes = make([]*nodeSpec, 0, len(v.entries))
	for _, ne := range v.entries {
		n := p.readNode(ne)
		p.nodes = append(p.nodes, n)
		p.byName[n.node.Name] = n
		if n.ok && n.node.Kind == KindNAT {
			p.natNames = append(p.natNames, n.node.Name)
		}
	}
	slices.Sort(p.natNames)
	return true
}

// MaxNodes is the largest number of nodes a lab may have. Each node is a
// network namespace with its own interfaces and rules; far beyond a few
// thousand the kernel, not natlab, becomes the limit. One segment holds
// fewer (MaxNodesPerSegment).
const MaxNodes = 5000

// str returns v as a string; want says what is wanted if it is not one.
// Numbers and booleans count as strings: a node may well be called 1.
func (p *parser) str(v *value, path, want string) (string, bool) {
	switch {
	case v.kind == kindInvalid:
		return "", false
	case v.isScalar():
		return v.text, true
	}
	p.errs.errorf(v.pos, "%s: want %s, not %s", path, want, v.describe())
	return "", false
}

// unknownKey reports a key that what does not take, suggesting the closest
// accepted one when there is a close one.
func (p *parser) unknownKey(e entry, path, what string, accepted []string) {
	p.errs.errorf(e.keyPos, "%s", unknownKeyMessage(e, path, what, accepted, ""))
}

// unknownKeyMessage says that what does not take key e, listing the
// accepted keys and then more, which says what else is accepted.
func unknownKeyMessage(e entry, path, what string, accepted []string, more string) string {
	msg := fmt.Sprintf("%s: unknown key; %s takes %s", path, what, strings.Join(accepted, ", "))
	if more != "" {
		msg += ", " + more
	}
	if s := suggest.Closest(e.key, accepted); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return msg
}

// internetSegment names the internet in messages.
func (p *parser) internetSegment() string {
	return segmentName(p.topo.Internet, "the internet")
}

func segmentName(prefix netip.Prefix, what string) string {
	return prefix.String() + ", " + what
}
