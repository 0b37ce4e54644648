package topology

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	yaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	yamlparser "github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

const (
	// maxAliasNodes caps how many YAML nodes resolving aliases may produce.
	// A few lines of nested aliases can stand for billions of nodes (an
	// "alias bomb"); real files reuse a handful of NAT settings, which is
	// far below this even with 5000 nodes. Only nodes reached through an
	// alias count: the rest is bounded by the size of the file.
	maxAliasNodes = 100000
	// maxNesting caps how deeply collections nest. goccy's parser needs
	// time and memory quadratic in the depth, so a megabyte of "[" would
	// take minutes; a scenario needs five levels.
	maxNesting = 64
)

// minimalScenario is the hint for empty files and a missing nodes key.
const minimalScenario = `nodes: {nat: {kind: nat}, alice: {kind: host, behind: nat}}`

// decodeYAML turns data into a value tree. It returns nil when there is
// nothing to validate: a syntax error, an empty file, a binary file or an
// alias bomb, each of which has been reported to errs.
func decodeYAML(file string, data []byte, errs *ErrorList) *value {
	// Editors hide a byte order mark, so columns are right without it.
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !checkText(file, data, errs) {
		return nil
	}
	tokens, err := tokenize(data)
	if err != nil {
		errs.errorf(Position{File: file}, "%v", err)
		return nil
	}
	if !checkNesting(file, tokens, errs) {
		return nil
	}
	f, err := parse(tokens)
	if err != nil {
		errs.add(syntaxError(file, err))
		return nil
	}

	// A %YAML or %TAG directive is parsed as a document of its own; it
	// belongs to the document after it.
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc == nil {
			continue
		}
		if _, ok := doc.Body.(*ast.DirectiveNode); ok {
			continue
		}
		docs = append(docs, doc)
	}
	if len(docs) > 1 {
		pos := Position{File: file}
		if doc := docs[1]; doc.Start != nil {
			pos = tokenPos(file, doc.Start)
		} else if doc.Body != nil {
			pos = nodePos(file, doc.Body)
		}
		errs.errorf(pos, "a second YAML document starts here; a scenario file is one document")
	}
	if len(docs) == 0 || isEmpty(docs[0].Body) {
		if len(docs) <= 1 {
			errs.errorf(Position{File: file}, "empty scenario; a minimal one is %s", minimalScenario)
		}
		return nil
	}

	d := &yamlDecoder{file: file, errs: errs, anchors: make(map[string]ast.Node)}
	root := d.build(docs[0].Body, "")
	if d.bomb {
		return nil
	}
	return root
}

func isEmpty(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, null := n.(*ast.NullNode)
	return null
}

// checkText rejects what is not UTF-8 text before the YAML parser sees it:
// its messages about binary data are confusing, and binary data would
// otherwise give a message for every stray byte.
func checkText(file string, data []byte, errs *ErrorList) bool {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			errs.errorf(Position{File: file, Line: line, Column: col}, "invalid UTF-8; a scenario is a UTF-8 text file, and this does not look like one")
			return false
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			errs.errorf(Position{File: file, Line: line, Column: col}, "control character %U; a scenario is a text file, and this does not look like one", r)
			return false
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return true
}

// tokenize runs goccy's lexer, turning a panic in it into an error.
func tokenize(data []byte) (tokens token.Tokens, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML lexer failed on this file: %v", r)
		}
	}()
	return lexer.Tokenize(string(data)), nil
}

// parse runs goccy's parser, turning a panic in it into an error.
// Duplicate keys are allowed here and reported by build, which can go on
// after them and so report every problem at once.
func parse(tokens token.Tokens) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed on this file: %v", r)
		}
	}()
	return yamlparser.Parse(tokens, 0, yamlparser.AllowDuplicateMapKey())
}

// checkNesting measures how deeply tokens nest: flow collections, block
// collections started on one line ("- - - x"), and runs of tags and
// anchors. Nesting across lines is bounded by the indentation, which the
// file size bounds.
func checkNesting(file string, tokens token.Tokens, errs *ErrorList) bool {
	flow, onLine, run, line := 0, 0, 0, 0
	for _, tk := range tokens {
		if tk == nil || tk.Position == nil {
			continue
		}
		if tk.Position.Line != line {
			line, onLine = tk.Position.Line, 0
		}
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			flow = max(flow-1, 0)
		case token.SequenceEntryType, token.MappingKeyType:
			if flow == 0 {
				onLine++
			}
		}
		if tk.Type == token.TagType || tk.Type == token.AnchorType {
			run++
		} else {
			run = 0
		}
		if flow+onLine+run > maxNesting {
			errs.errorf(tokenPos(file, tk), "YAML nested more than %d levels deep; a scenario needs five", maxNesting)
			return false
		}
	}
	return true
}

var bracketPos = regexp.MustCompile(`\[(\d+):(\d+)\]`)

// syntaxError turns a goccy error into one clean line at the position goccy
// reports, without its source excerpt and colours.
func syntaxError(file string, err error) *Error {
	var yerr yaml.Error
	if !errors.As(err, &yerr) {
		return &Error{Pos: Position{File: file}, Msg: oneLine(err.Error()), err: err}
	}
	msg := bracketPos.ReplaceAllString(oneLine(yerr.GetMessage()), "line $1 column $2")
	if strings.Contains(msg, `'\t'`) {
		msg += " (YAML indents with spaces, not tabs)"
	}
	pos := Position{File: file}
	if tk := yerr.GetToken(); tk != nil {
		pos = tokenPos(file, tk)
	}
	return &Error{Pos: pos, Msg: "YAML syntax error: " + msg, err: err}
}

// oneLine makes msg safe to print on one line of a terminal.
func oneLine(msg string) string {
	msg = strings.TrimSpace(msg)
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "%U", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// add appends e.
func (l *ErrorList) add(e *Error) { *l = append(*l, e) }

// yamlDecoder builds a value tree from goccy's AST, resolving aliases and
// merge keys as it goes.
type yamlDecoder struct {
	file string
	errs *ErrorList
	// anchors maps an anchor name to the node it was last set on: an
	// alias refers to the closest anchor before it.
	anchors map[string]ast.Node
	// aliasDepth is how many aliases the walk is inside; expanded counts
	// the nodes visited inside them. aliasPos and aliasPath are where the
	// outermost of them is written.
	aliasDepth int
	expanded   int
	aliasPos   Position
	aliasPath  string
	// bomb is set once expansion went over maxAliasNodes.
	bomb bool
}

// invalid returns a value that stands for a node already reported.
func invalid() *value { return &value{kind: kindInvalid} }

func (d *yamlDecoder) build(n ast.Node, path string) *value {
	if d.bomb {
		return invalid()
	}
	if d.aliasDepth > 0 {
		d.expanded++
		if d.expanded > maxAliasNodes || d.aliasDepth > maxAliasNodes/100 {
			d.bomb = true
			d.errs.errorf(d.aliasPos, "%s: aliases expand to more than %d YAML nodes by here; a scenario reuses a few settings, so is this an alias bomb?", pathOrTop(d.aliasPath), maxAliasNodes)
			return invalid()
		}
	}
	pos := nodePos(d.file, n)
	switch n := n.(type) {
	case nil:
		return &value{kind: kindNull, pos: pos}
	case *ast.NullNode:
		return &value{kind: kindNull, pos: pos, text: tokenText(n.Token)}
	case *ast.StringNode:
		return &value{kind: kindString, pos: pos, text: n.Value}
	case *ast.LiteralNode:
		v := &value{kind: kindString, pos: pos}
		if n.Value != nil {
			v.text = n.Value.Value
		}
		return v
	case *ast.IntegerNode:
		v := &value{kind: kindInt, pos: pos, text: tokenText(n.Token)}
		switch i := n.Value.(type) {
		case int64:
			v.num, v.numOK = i, true
		case uint64:
			v.num, v.numOK = int64(min(i, math.MaxInt64)), i <= math.MaxInt64
		}
		return v
	case *ast.FloatNode:
		return &value{kind: kindFloat, pos: pos, text: tokenText(n.Token)}
	case *ast.InfinityNode:
		return &value{kind: kindFloat, pos: pos, text: tokenText(n.Token)}
	case *ast.NanNode:
		return &value{kind: kindFloat, pos: pos, text: tokenText(n.Token)}
	case *ast.BoolNode:
		return &value{kind: kindBool, pos: pos, text: tokenText(n.Token), boolean: n.Value}
	case *ast.MappingNode:
		return d.mapping(n.Values, pos, path)
	case *ast.MappingValueNode:
		return d.mapping([]*ast.MappingValueNode{n}, pos, path)
	case *ast.SequenceNode:
		v := &value{kind: kindSeq, pos: pos, items: make([]*value, 0, len(n.Values))}
		for i, item := range n.Values {
			v.items = append(v.items, d.build(item, indexPath(path, i)))
		}
		return v
	case *ast.AnchorNode:
		v := d.build(n.Value, path)
		// Anchors met while expanding an alias were registered when the
		// walk passed them the first time.
		if d.aliasDepth == 0 && n.Name != nil {
			d.anchors[tokenText(n.Name.GetToken())] = n.Value
		}
		return v
	case *ast.AliasNode:
		name := ""
		if n.Value != nil {
			name = tokenText(n.Value.GetToken())
		}
		target, ok := d.anchors[name]
		if !ok {
			d.errs.errorf(pos, "%s: unknown alias *%s; an alias refers to an anchor &%s written before it", pathOrTop(path), name, name)
			return invalid()
		}
		if d.aliasDepth == 0 {
			d.aliasPos, d.aliasPath = pos, path
		}
		d.aliasDepth++
		v := d.build(target, path)
		d.aliasDepth--
		return v
	case *ast.TagNode:
		return d.tagged(n, pos, path)
	case *ast.MappingKeyNode:
		return d.build(n.Value, path)
	}
	d.errs.errorf(pos, "%s: unsupported YAML (%s)", pathOrTop(path), n.Type().YAMLName())
	return invalid()
}

// tagged accepts the standard tags, which change nothing here but !!str's
// turning a number into a string.
func (d *yamlDecoder) tagged(n *ast.TagNode, pos Position, path string) *value {
	tag := tokenText(n.Start)
	switch tag {
	case "!!str":
		v := d.build(n.Value, path)
		if v.isScalar() || v.kind == kindNull {
			s := *v
			s.kind = kindString
			return &s
		}
		return v
	case "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq":
		return d.build(n.Value, path)
	}
	d.errs.errorf(pos, "%s: unsupported tag %s; a scenario is plain YAML", pathOrTop(path), tag)
	return invalid()
}

// mapping builds a mapping, reporting duplicate keys and resolving merge
// keys (<<: *alias or <<: [*a, *b]). As YAML's merge-key rule says, keys
// written in the mapping win over merged ones whatever their order, and an
// earlier merged mapping wins over a later one.
func (d *yamlDecoder) mapping(mvs []*ast.MappingValueNode, pos Position, path string) *value {
	type keyInfo struct {
		text  string
		pos   Position
		merge bool
		skip  bool
	}
	keys := make([]keyInfo, len(mvs))
	written := make(map[string]Position, len(mvs))
	for i, mv := range mvs {
		if mv == nil {
			keys[i].skip = true
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			keys[i] = keyInfo{merge: true, pos: nodePos(d.file, mv.Key)}
			continue
		}
		text, kpos, ok := d.key(mv.Key, path)
		keys[i] = keyInfo{text: text, pos: kpos, skip: !ok}
		if !ok {
			continue
		}
		if first, dup := written[text]; dup {
			d.errs.errorf(kpos, "%s: duplicate key; %s is already defined at line %d", joinPath(path, text), text, first.Line)
			keys[i].skip = true
			continue
		}
		written[text] = kpos
	}

	v := &value{kind: kindMap, pos: pos, entries: make([]entry, 0, len(mvs))}
	merged := make(map[string]bool)
	for i, mv := range mvs {
		k := keys[i]
		switch {
		case k.skip:
		case k.merge:
			for _, src := range d.mergeSources(mv.Value, k.pos, path) {
				for _, e := range src.entries {
					if _, ok := written[e.key]; ok || merged[e.key] {
						continue
					}
					merged[e.key] = true
					v.entries = append(v.entries, e)
				}
			}
		default:
			v.entries = append(v.entries, entry{key: k.text, keyPos: k.pos, val: d.build(mv.Value, joinPath(path, k.text))})
		}
	}
	return v
}

// mergeSources builds the value of a merge key: a mapping or a list of them.
func (d *yamlDecoder) mergeSources(n ast.Node, keyPos Position, path string) []*value {
	src := d.build(n, joinPath(path, "<<"))
	switch src.kind {
	case kindInvalid:
		return nil
	case kindMap:
		return []*value{src}
	case kindSeq:
		var maps []*value
		for _, item := range src.items {
			switch item.kind {
			case kindMap:
				maps = append(maps, item)
			case kindInvalid:
			default:
				d.errs.errorf(item.pos, "%s: want a mapping to merge, not %s", joinPath(path, "<<"), item.describe())
			}
		}
		return maps
	}
	d.errs.errorf(src.pos, "%s: want a mapping to merge (such as *defaults) or a list of them, not %s", joinPath(path, "<<"), src.describe())
	return nil
}

// key returns the text of a mapping key, which must be a scalar.
func (d *yamlDecoder) key(k ast.Node, path string) (string, Position, bool) {
	pos := nodePos(d.file, k)
	switch k := k.(type) {
	case *ast.MappingKeyNode:
		return d.key(k.Value, path)
	case *ast.TagNode:
		return d.key(k.Value, path)
	case *ast.AnchorNode:
		return d.key(k.Value, path)
	case *ast.StringNode:
		return k.Value, pos, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return tokenText(k.GetToken()), pos, true
	case *ast.NullNode, nil:
		d.errs.errorf(pos, "%s: a key cannot be empty", pathOrTop(path))
	case *ast.AliasNode:
		d.errs.errorf(pos, "%s: an alias cannot be a key; write the key out", pathOrTop(path))
	default:
		d.errs.errorf(pos, "%s: want a plain key, not a %s", pathOrTop(path), k.Type().YAMLName())
	}
	return "", pos, false
}

// pathOrTop names the top level of the file in messages about it.
func pathOrTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func tokenText(tk *token.Token) string {
	if tk == nil {
		return ""
	}
	return tk.Value
}

func tokenPos(file string, tk *token.Token) Position {
	if tk == nil || tk.Position == nil {
		return Position{File: file}
	}
	return Position{File: file, Line: tk.Position.Line, Column: tk.Position.Column}
}

// nodePos is where n starts: for a block mapping its first key rather than
// goccy's token, the first colon.
func nodePos(file string, n ast.Node) Position {
	switch n := n.(type) {
	case nil:
		return Position{File: file}
	case *ast.DocumentNode:
		if n.Start != nil {
			return tokenPos(file, n.Start)
		}
		return nodePos(file, n.Body)
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 && n.Values[0] != nil && n.Values[0].Key != nil {
			return nodePos(file, n.Values[0].Key)
		}
		return tokenPos(file, n.Start)
	case *ast.MappingValueNode:
		if n.Key != nil {
			return nodePos(file, n.Key)
		}
		return tokenPos(file, n.Start)
	case *ast.AnchorNode:
		if n.Value != nil {
			return nodePos(file, n.Value)
		}
		return tokenPos(file, n.Start)
	case *ast.TagNode:
		return tokenPos(file, n.Start)
	}
	return tokenPos(file, n.GetToken())
}
