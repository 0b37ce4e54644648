package topology

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// valueKind is what a YAML node turned out to be once tags and aliases are
// resolved.
type valueKind uint8

const (
	kindNull valueKind = iota
	kindString
	kindInt
	kindFloat
	kindBool
	kindMap
	kindSeq
	// kindInvalid stands for a node that already had an error reported
	// (an unknown alias, an unsupported tag); the schema walk skips it
	// silently so that one mistake gives one message.
	kindInvalid
)

// value is a YAML node with aliases and merge keys resolved and a position
// on everything: all the schema walk needs, and nothing of goccy's many node
// types.
type value struct {
	kind valueKind
	pos  Position
	// text is a string's value, or the source text of any other scalar.
	text string
	// num is a kindInt's value; numOK is false when it does not fit.
	num   int64
	numOK bool
	// boolean is a kindBool's value.
	boolean bool
	// entries are a kindMap's keys in file order, merged keys where the
	// merge key stood.
	entries []entry
	// items are a kindSeq's elements.
	items []*value
}

// entry is one key of a mapping.
type entry struct {
	key    string
	keyPos Position
	val    *value
}

// isScalar reports whether v is a single value rather than a collection.
func (v *value) isScalar() bool {
	switch v.kind {
	case kindString, kindInt, kindFloat, kindBool:
		return true
	}
	return false
}

// get returns the entry called key, or nil.
func (v *value) get(key string) *entry {
	for i := range v.entries {
		if v.entries[i].key == key {
			return &v.entries[i]
		}
	}
	return nil
}

// describe names what v is, for "want X, not Y" messages.
func (v *value) describe() string {
	switch v.kind {
	case kindNull:
		return "nothing"
	case kindString:
		return strconv.Quote(v.text)
	case kindInt, kindFloat:
		return "the number " + v.text
	case kindBool:
		return v.text
	case kindMap:
		return "a mapping"
	case kindSeq:
		return "a list"
	}
	return "an invalid value"
}

// integer returns v as a whole number. Quoted digits are accepted too:
// whether someone writes port: 80 or port: "80" they mean the same.
func (v *value) integer() (n int64, ok bool) {
	switch v.kind {
	case kindInt:
		if !v.numOK {
			return math.MaxInt64, true
		}
		return v.num, true
	case kindString:
		s := strings.TrimSpace(v.text)
		if s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			// Only digits, so the number is too large: say so rather
			// than that it is not a number.
			return math.MaxInt64, true
		}
		return n, true
	}
	return 0, false
}

// path helpers build the dotted names messages use: nodes.nat-a.forward[0].port.

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
