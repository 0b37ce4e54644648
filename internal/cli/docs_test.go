package cli

// The documentation is held to the repository: every relative link in
// README.md, docs/*.md and docs/acts/*.md must point at a file (and, into
// a Markdown file, at a heading) that exists, and every natlab command
// the pages show must parse with the real command tree and name built-in
// scenarios, labs and nodes that exist. Pages are read with a Markdown
// parser, as a renderer reads them, so that a command in prose or an
// example output is not mistaken for a command to check.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tour"
)

// repoRoot is where the pages live, seen from this package's directory,
// where go test runs.
const repoRoot = "../.."

// docPages lists the pages under test, relative to the repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	for _, glob := range []string{"docs/*.md", "docs/acts/*.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, glob))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(repoRoot, p)
			pages = append(pages, rel)
		}
	}
	return pages
}

// mdLink is a link or image destination on a page.
type mdLink struct {
	line int
	dest string
}

// mdCommand is one natlab invocation shown on a page: the arguments after
// "natlab". Block commands come from shell code blocks and are complete
// invocations; inline ones come from code spans in prose, where
// `natlab run` may name a command rather than run it.
type mdCommand struct {
	line   int
	args   []string
	inline bool
}

// mdPage is what the checks need from one page.
type mdPage struct {
	links    []mdLink
	commands []mdCommand
	yaml     []mdBlock // yaml code blocks
	anchors  []string  // GitHub's anchors of the page's headings
}

type mdBlock struct {
	line int
	text []byte
}

var shellInfo = map[string]bool{"sh": true, "shell": true, "bash": true, "console": true}

// parsePage reads a Markdown page the way GitHub renders it (GFM tables
// included, so code spans in table cells are found).
func parsePage(src []byte) mdPage {
	md := goldmark.New(goldmark.WithExtensions(extension.GFM))
	doc := md.Parser().Parse(text.NewReader(src))
	lineOf := func(offset int) int { return bytes.Count(src[:offset], []byte("\n")) + 1 }
	var p mdPage
	seen := map[string]int{}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			a := githubAnchor(string(plainText(n, src)))
			if k := seen[a]; k > 0 {
				p.anchors = append(p.anchors, fmt.Sprintf("%s-%d", a, k))
			} else {
				p.anchors = append(p.anchors, a)
			}
			seen[a]++
		case *ast.Link:
			p.links = append(p.links, mdLink{lineOf(startOf(n, src)), string(n.Destination)})
		case *ast.Image:
			p.links = append(p.links, mdLink{lineOf(startOf(n, src)), string(n.Destination)})
		case *ast.FencedCodeBlock:
			info := ""
			if n.Info != nil {
				info = strings.Fields(string(n.Info.Segment.Value(src)) + " ")[0]
			}
			lines := n.Lines()
			if lines.Len() == 0 {
				return ast.WalkContinue, nil
			}
			first := lineOf(lines.At(0).Start)
			switch {
			case shellInfo[info]:
				for i := 0; i < lines.Len(); i++ {
					seg := lines.At(i)
					for _, args := range natlabInvocations(string(seg.Value(src))) {
						p.commands = append(p.commands, mdCommand{line: first + i, args: args})
					}
				}
			case info == "yaml" || info == "yml":
				var b bytes.Buffer
				for i := 0; i < lines.Len(); i++ {
					seg := lines.At(i)
					b.Write(seg.Value(src))
				}
				p.yaml = append(p.yaml, mdBlock{first, b.Bytes()})
			}
			return ast.WalkSkipChildren, nil
		case *ast.CodeSpan:
			code := string(plainText(n, src))
			for _, args := range natlabInvocations(code) {
				p.commands = append(p.commands, mdCommand{line: lineOf(startOf(n, src)), args: args, inline: true})
			}
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return p
}

// plainText is the text of an inline node and its children.
func plainText(n ast.Node, src []byte) []byte {
	var b bytes.Buffer
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if t, ok := c.(*ast.Text); ok {
			b.Write(t.Segment.Value(src))
			if t.SoftLineBreak() {
				b.WriteByte(' ')
			}
			continue
		}
		if s, ok := c.(*ast.String); ok {
			b.Write(s.Value)
			continue
		}
		b.Write(plainText(c, src))
	}
	return b.Bytes()
}

// startOf finds where an inline node begins in the source, for line
// numbers: the first text segment beneath it.
func startOf(n ast.Node, src []byte) int {
	var start = -1
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if t, ok := c.(*ast.Text); ok && entering && start < 0 {
			start = t.Segment.Start
			return ast.WalkStop, nil
		}
		return ast.WalkContinue, nil
	})
	if start < 0 {
		// A link with no text: the closest block's lines will do.
		for p := n.Parent(); p != nil; p = p.Parent() {
			if p.Type() == ast.TypeBlock && p.Lines().Len() > 0 {
				return p.Lines().At(0).Start
			}
		}
		return 0
	}
	return start
}

// githubAnchor is the id GitHub gives a heading: lower case, punctuation
// other than hyphens and underscores removed, spaces turned into hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shellSeparators end one command on a shell line and may start another.
var shellSeparators = regexp.MustCompile(`&&|\|\||[;|&]`)

// natlabInvocations finds the natlab commands on one shell line: what
// follows natlab (or a path ending in /natlab), after an optional prompt,
// sudo and environment assignments, up to a comment, pipe, redirection or
// the next command.
func natlabInvocations(line string) [][]string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return nil
	}
	var out [][]string
	for _, part := range shellSeparators.Split(line, -1) {
		fields := strings.Fields(part)
		i := 0
		for i < len(fields) && (fields[i] == "$" || fields[i] == "sudo" || fields[i] == "-E" || strings.Contains(fields[i], "=")) {
			i++
		}
		if i == len(fields) || (fields[i] != "natlab" && !strings.HasSuffix(fields[i], "/natlab")) {
			continue
		}
		var args []string
		for _, f := range fields[i+1:] {
			if strings.HasPrefix(f, ">") || strings.HasPrefix(f, "<") || strings.HasPrefix(f, "2>") {
				break
			}
			args = append(args, f)
		}
		out = append(out, args)
	}
	return out
}

// placeholder reports whether an argument stands for something the reader
// fills in (FILE, LAB, [--json], NAME...), which makes the command a
// synopsis rather than an example.
// Roman numerals are the tour's act numbers, not placeholders.
func placeholder(arg string) bool {
	return strings.ContainsAny(arg, "[]|<>") || strings.Contains(arg, "...") ||
		strings.IndexFunc(arg, unicode.IsUpper) >= 0 && !strings.HasPrefix(arg, "-") && !romanNumeral.MatchString(arg)
}

var romanNumeral = regexp.MustCompile(`^[IVX]+$`)

// isPath reports whether a scenario argument is a file rather than a name,
// as a reader would tell them apart.
func isPath(arg string) bool {
	return strings.Contains(arg, "/") || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml")
}

func TestParsePage(t *testing.T) {
	src := []byte("# Act III: the wall\n\n## The wall\n\nSee [the file](../scenarios/x.yaml#L3) and ![a picture](img.png).\n" +
		"`natlab run` runs; `sudo natlab rules act3-the-wall strict` prints.\n\n" +
		"```sh\nsudo natlab up symmetric --name demo   # a comment\nnatlab status && bin/natlab down demo\nls natlab\n```\n\n" +
		"```\n$ natlab up not-checked\n```\n\n" +
		"```yaml\nname: x\n```\n\n| a | b |\n|---|---|\n| `natlab table LAB NODE` | [c](c.md) |\n")
	p := parsePage(src)
	wantLinks := []mdLink{{5, "../scenarios/x.yaml#L3"}, {5, "img.png"}, {24, "c.md"}}
	if !slices.Equal(p.links, wantLinks) {
		t.Errorf("links %v, want %v", p.links, wantLinks)
	}
	var got []string
	for _, c := range p.commands {
		got = append(got, fmt.Sprintf("%d %v %s", c.line, c.inline, strings.Join(c.args, " ")))
	}
	want := []string{
		"6 true run",
		"6 true rules act3-the-wall strict",
		"9 false up symmetric --name demo",
		"10 false status",
		"10 false down demo",
		"24 true table LAB NODE",
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(p.yaml) != 1 || string(p.yaml[0].text) != "name: x\n" || p.yaml[0].line != 19 {
		t.Errorf("yaml blocks %+v", p.yaml)
	}
	if wantAnchors := []string{"act-iii-the-wall", "the-wall"}; !slices.Equal(p.anchors, wantAnchors) {
		t.Errorf("anchors %v, want %v", p.anchors, wantAnchors)
	}
}

func TestNatlabInvocations(t *testing.T) {
	for _, tc := range []struct {
		line string
		want [][]string
	}{
		{"natlab list", [][]string{{"list"}}},
		{"$ sudo bin/natlab up symmetric", [][]string{{"up", "symmetric"}}},
		{"sudo NATLAB_UI_TOKEN=x natlab ui symmetric", [][]string{{"ui", "symmetric"}}},
		{"sudo natlab up a && sudo natlab ui a", [][]string{{"up", "a"}, {"ui", "a"}}},
		{"natlab status symmetric --json | jq .", [][]string{{"status", "symmetric", "--json"}}},
		{"natlab graph x --format dot > lab.dot", [][]string{{"graph", "x", "--format", "dot"}}},
		{"natlab table lab nat-a   # the table", [][]string{{"table", "lab", "nat-a"}}},
		{"sudo natlab exec lab alice -- ping -c1 203.0.113.10", [][]string{{"exec", "lab", "alice", "--", "ping", "-c1", "203.0.113.10"}}},
		{"# natlab up commented-out", nil},
		{"ip netns exec natlab-lab-alice ip addr", nil},
		{"make build", nil},
	} {
		if got := natlabInvocations(tc.line); !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("natlabInvocations(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestGithubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Act VII: the real world":                   "act-vii-the-real-world",
		"Port forwarding for a game server":         "port-forwarding-for-a-game-server",
		"The console asks for itself: NAT-PMP":      "the-console-asks-for-itself-nat-pmp",
		"The live page: `natlab ui`":                "the-live-page-natlab-ui",
		"Reverse tunnels, as ngrok does":            "reverse-tunnels-as-ngrok-does",
		"1. Build it":                               "1-build-it",
		"In your own Go tests: labtest":             "in-your-own-go-tests-labtest",
		"IPv6: no NAT, still a wall":                "ipv6-no-nat-still-a-wall",
		"What's new (2.0)":                          "whats-new-20",
		"snake_case stays":                          "snake_case-stays",
		"The corner cases":                          "the-corner-cases",
		"The matrix":                                "the-matrix",
		"Why it looks like that":                    "why-it-looks-like-that",
		"On the live page: break a working punch":   "on-the-live-page-break-a-working-punch",
		"Look closer: the discovery, test by test":  "look-closer-the-discovery-test-by-test",
		"In the tour and on the live page":          "in-the-tour-and-on-the-live-page",
		"The worst case, and the fallback":          "the-worst-case-and-the-fallback",
		"On the live page: one step per click":      "on-the-live-page-one-step-per-click",
		"In the tour: the packets at nat-a":         "in-the-tour-the-packets-at-nat-a",
		"Two hosts, one private port":               "two-hosts-one-private-port",
		"Relay first, then direct":                  "relay-first-then-direct",
		"The ICE ladder":                            "the-ice-ladder",
		"IPv6 without NAT":                          "ipv6-without-nat",
		"Where to go next":                          "where-to-go-next",
		"6. Write your own scenario":                "6-write-your-own-scenario",
		"Dual-stack labs":                           "dual-stack-labs",
		"Safety: what natlab touches, what it does": "safety-what-natlab-touches-what-it-does",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestPlaceholder(t *testing.T) {
	for arg, want := range map[string]bool{
		"FILE": true, "FILE|NAME": true, "[--json]": true, "LAB...": true, "<lab>": true,
		"symmetric": false, "act3-the-wall": false, "--name": false, "--act": false, "my-lab.yaml": false, "III": false, "N": true,
	} {
		if got := placeholder(arg); got != want {
			t.Errorf("placeholder(%q) = %v, want %v", arg, got, want)
		}
	}
}

// TestDocsLinks checks that every relative link of every page points at
// a file that exists, and a link into a Markdown page at one of its
// headings.
func TestDocsLinks(t *testing.T) {
	pages := map[string]mdPage{}
	read := func(rel string) (mdPage, error) {
		if p, ok := pages[rel]; ok {
			return p, nil
		}
		src, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil {
			return mdPage{}, err
		}
		pages[rel] = parsePage(src)
		return pages[rel], nil
	}
	for _, page := range docPages(t) {
		p, err := read(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.links {
			if strings.Contains(l.dest, "://") || strings.HasPrefix(l.dest, "mailto:") {
				continue
			}
			target, frag, _ := strings.Cut(l.dest, "#")
			rel := page
			if target != "" {
				if filepath.IsAbs(target) {
					t.Errorf("%s:%d: link %q: use a path relative to the page, as GitHub resolves it", page, l.line, l.dest)
					continue
				}
				rel = filepath.Clean(filepath.Join(filepath.Dir(page), target))
				if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", page, l.line, l.dest, rel)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(rel, ".md") {
				continue
			}
			tp, err := read(rel)
			if err != nil {
				t.Errorf("%s:%d: link %q: %v", page, l.line, l.dest, err)
				continue
			}
			if !slices.Contains(tp.anchors, frag) {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s (it has %v)", page, l.line, l.dest, rel, frag, tp.anchors)
			}
		}
	}
}

// TestDocsCommands checks every natlab command the pages show: it must
// parse with natlab's own command tree (the command and its flags exist;
// a complete command has the arguments it needs), name built-in scenarios
// or labs the page brought up, and nodes those labs have.
func TestDocsCommands(t *testing.T) {
	builtin := map[string][]string{}
	for _, name := range scenarios.Names() {
		data, path, _ := scenarios.Read(name)
		topo, err := step.Parse(path, data)
		if err != nil {
			t.Fatalf("built-in %s: %v", name, err)
		}
		builtin[name] = nodeNames(topo)
	}
	var actNumbers []string
	for _, a := range tour.Acts {
		actNumbers = append(actNumbers, a.Number)
	}
	actNumbers = slices.Compact(actNumbers)
	checked := 0
	for _, page := range docPages(t) {
		src, err := os.ReadFile(filepath.Join(repoRoot, page))
		if err != nil {
			t.Fatal(err)
		}
		p := parsePage(src)
		// The labs a page brings into being besides the built-in ones: the
		// scenarios it shows, and the names it gives labs. A nil node list
		// means the nodes are unknown and not checked.
		labs := map[string][]string{}
		for name, nodes := range builtin {
			labs[name] = nodes
		}
		for _, b := range p.yaml {
			if !bytes.Contains(b.text, []byte("\nnodes:")) && !bytes.HasPrefix(b.text, []byte("nodes:")) {
				continue // not a scenario: a CI workflow, say
			}
			topo, err := step.Parse(fmt.Sprintf("%s (the yaml block at line %d)", page, b.line), b.text)
			if err != nil {
				t.Errorf("%s:%d: the scenario shown does not parse: %v", page, b.line, err)
				continue
			}
			labs[topo.Name] = nodeNames(topo)
		}
		for _, c := range p.commands {
			if slices.ContainsFunc(c.args, placeholder) {
				continue
			}
			cmd, positional, err := parseNatlab(c.args)
			where := fmt.Sprintf("%s:%d: natlab %s", page, c.line, strings.Join(c.args, " "))
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			checked++
			if !c.inline && cmd.Args != nil {
				if err := cmd.Args(cmd, positional); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				positional = positional[:dash]
			}
			name := cmd.Name()
			if lab, _ := cmd.Flags().GetString("name"); lab != "" && cmd.Flags().Lookup("name") != nil {
				nodes := []string(nil)
				if len(positional) > 0 && !isPath(positional[0]) {
					nodes = labs[positional[0]]
				}
				labs[lab] = nodes
			}
			if name == "up" || name == "run" || name == "ui" {
				for _, a := range positional {
					if isPath(a) {
						labs[strings.TrimSuffix(strings.TrimSuffix(filepath.Base(a), ".yaml"), ".yml")] = nil
					}
				}
			}
			checkNames(t, where, name, positional, labs)
			switch name {
			case "tour":
				if act, _ := cmd.Flags().GetString("act"); act != "" && len(tour.Select(act)) == 0 {
					t.Errorf("%s: there is no act %q (the tour has %v)", where, act, actNumbers)
				}
			case "matrix":
				types, _ := cmd.Flags().GetStringSlice("types")
				for _, ty := range types {
					if _, err := nat.ParseType(ty); err != nil {
						t.Errorf("%s: %v", where, err)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no natlab command found on any page: the parser is broken")
	}
	t.Logf("%d natlab commands checked", checked)
}

// parseNatlab parses a command line with a fresh copy of natlab's command
// tree, as natlab itself would, without running anything: the command,
// and its positional arguments once its flags are parsed.
func parseNatlab(args []string) (*cobra.Command, []string, error) {
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, nil, err
	}
	if cmd == root && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		return nil, nil, fmt.Errorf("natlab has no command %q", rest[0])
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, nil, err
	}
	return cmd, cmd.Flags().Args(), nil
}

// checkNames checks the scenario, lab and node names a command's
// positional arguments stand for.
func checkNames(t *testing.T, where, name string, positional []string, labs map[string][]string) {
	t.Helper()
	scenario := func(a string) {
		if isPath(a) {
			if strings.HasPrefix(a, "scenarios/") {
				if _, err := os.Stat(filepath.Join(repoRoot, a)); err != nil {
					t.Errorf("%s: %s does not exist", where, a)
				}
			}
			return
		}
		if _, ok := labs[a]; !ok {
			t.Errorf("%s: %q is neither a built-in scenario (natlab list) nor a lab this page brings up", where, a)
		}
	}
	node := func(lab, n string) {
		nodes, ok := labs[lab]
		if !ok || nodes == nil {
			return
		}
		if n != "internet" && !slices.Contains(nodes, n) {
			t.Errorf("%s: lab %s has no node %q (it has %v)", where, lab, n, nodes)
		}
	}
	switch name {
	case "run", "up", "ui", "graph", "status", "down":
		for _, a := range positional {
			scenario(a)
		}
	case "validate":
		for _, a := range positional {
			if !isPath(a) {
				scenario(a)
			}
		}
	case "rules", "table", "trace", "classify", "exec":
		if len(positional) > 0 {
			scenario(positional[0])
		}
		if len(positional) > 1 && !isPath(positional[0]) {
			node(positional[0], positional[1])
		}
	}
}

func nodeNames(topo *topology.Topology) []string {
	var names []string
	for _, n := range topo.Nodes {
		names = append(names, n.Name)
	}
	return names
}
