package main

import (
	"fmt"
	"reflect"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/topology"
)

// valueFormat is the schema of one of the value types of topology's
// format, which reflection alone cannot give: the parser reads YAML, where
// port: "80" and port: 80 mean the same, and checks text such as
// addresses and durations that JSON Schema can only approximate with a
// pattern. The patterns are loose where exactness would be a regular
// expression no one can review (IPv6); the parser has the last word.
type valueFormat struct {
	// label names the format in docs/reference.md.
	label string
	// schema is its JSON Schema, without description.
	schema func() *object
}

const (
	// namePattern is validName's rule, with its length limit.
	namePattern = `^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`
	octet       = `(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])`
	ipv4        = octet + `(\.` + octet + `){3}`
	// ipv6 wants hex digits, colons and dots (for ::ffff:1.2.3.4), with
	// a colon somewhere; the parser checks the rest.
	ipv6 = `[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*`
	// goDuration is what time.ParseDuration accepts.
	goDuration = `[+-]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)`
	digits     = `^\s*[0-9]+\s*$`
	// decimal is a number without sign or exponent: 30, 1.5, .5.
	decimal = `([0-9]+(\.[0-9]*)?|\.[0-9]+)`
)

func str(pattern string) *object {
	return obj("type", "string", "pattern", pattern)
}

// number is an integer from lo to hi, or the same written as a string:
// the parser takes quoted digits.
func number(lo, hi int) func() *object {
	return func() *object {
		return obj("anyOf", []any{
			obj("type", "integer", "minimum", lo, "maximum", hi),
			str(digits),
		})
	}
}

var valueFormats = map[reflect.Type]valueFormat{
	reflect.TypeFor[topology.LabName](): {"name", func() *object { return str(namePattern) }},
	reflect.TypeFor[topology.NodeName](): {"node name", func() *object {
		return obj("type", "string", "pattern", namePattern, "not", obj("const", topology.Internet))
	}},
	reflect.TypeFor[topology.NodeRef](): {"node", func() *object { return str(namePattern) }},
	reflect.TypeFor[topology.HostPair](): {"two hosts", func() *object {
		return obj("type", "array", "items", ref(reflect.TypeFor[topology.NodeRef]()), "minItems", 2, "maxItems", 2, "uniqueItems", true)
	}},
	reflect.TypeFor[topology.Line]():       {"line", func() *object { return obj("type", "string", "pattern", `^[^\n\r]*[\n\r]*$`) }},
	reflect.TypeFor[topology.StepName]():   {"step name", func() *object { return str(fmt.Sprintf(`^[^\n\r]{1,%d}[\n\r]*$`, topology.MaxStepNameLen)) }},
	reflect.TypeFor[topology.IPv4Addr]():   {"IPv4 address", func() *object { return str(`^\s*` + ipv4 + `\s*$`) }},
	reflect.TypeFor[topology.IPv4Prefix](): {"IPv4 prefix", func() *object { return str(`^\s*` + ipv4 + `/([0-9]|[12][0-9]|3[0-2])\s*$`) }},
	reflect.TypeFor[topology.IPv6Addr]():   {"IPv6 address", func() *object { return str(`^\s*` + ipv6 + `\s*$`) }},
	reflect.TypeFor[topology.IPv6Prefix](): {"IPv6 prefix", func() *object { return str(`^\s*` + ipv6 + `/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])\s*$`) }},
	reflect.TypeFor[topology.Duration](): {"duration", func() *object {
		return obj("anyOf", []any{obj("type", "integer", "minimum", 0), str(`^\s*([0-9]+|` + goDuration + `)\s*$`)})
	}},
	reflect.TypeFor[topology.Port]():       {"port", number(1, 65535)},
	reflect.TypeFor[topology.Count]():      {"count", number(0, 65535)},
	reflect.TypeFor[topology.BlockSize]():  {"block size", number(1, 32768)},
	reflect.TypeFor[topology.BlockCount](): {"block count", number(1, 65535)},
	reflect.TypeFor[topology.PortQuota]():  {"port quota", number(1, topology.MaxQuota)},
	reflect.TypeFor[topology.ProbeCount](): {"probe count", number(1, topology.MaxProbes)},
	reflect.TypeFor[topology.PortRange]():  {"port range", func() *object { return str(`^\s*[0-9]+\s*-\s*[0-9]+\s*$`) }},
	reflect.TypeFor[topology.Command](): {"command", func() *object {
		return obj("anyOf", []any{
			obj("type", "string", "pattern", `\S`),
			obj("type", "array", "minItems", 1, "items", obj("type", []string{"string", "number", "boolean"})),
		})
	}},
	reflect.TypeFor[topology.LinkDuration](): {"link duration", func() *object {
		return obj("anyOf", []any{obj("const", 0), str(`^\s*(0|` + decimal + `(us|µs|μs|ms|s))\s*$`)})
	}},
	// A percentage's pattern holds it to 0-100%, as linkcond.Validate does.
	reflect.TypeFor[topology.Percent](): {"percentage", func() *object {
		return str(`^\s*0*(100(\.0*)?|[0-9]{1,2}(\.[0-9]*)?|\.[0-9]+)\s*%$`)
	}},
	reflect.TypeFor[topology.Rate]():          {"bit rate", func() *object { return str(`^\s*` + decimal + `\s*[kKmMgG]?[bB][iI][tT]\s*$`) }},
	reflect.TypeFor[topology.MTU]():           {"MTU", number(linkcond.MinMTU, linkcond.MaxMTU)},
	reflect.TypeFor[topology.ForwardTarget](): {"forward target", func() *object { return obj("type", "string", "minLength", 1) }},
	reflect.TypeFor[topology.SendTarget]():    {"send target", func() *object { return obj("type", "string", "minLength", 1) }},
	reflect.TypeFor[topology.SeenAs]():        {"source", func() *object { return obj("type", "string", "minLength", 1) }},
}
