// Command schemagen writes the JSON Schema of natlab's scenario files,
// schema/natlab.schema.json, and their reference, docs/reference.md, from
// the Go types of the format in topology/format.go, the value types of the
// kinds of step in package step, and their doc comments: run it with make generate after changing them. Its tests fail
// when the committed files differ from what it writes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// The files schemagen writes, relative to the repository's root.
const (
	schemaPath    = "schema/natlab.schema.json"
	referencePath = "docs/reference.md"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

// generate returns the schema and the reference for the repository at root.
func generate(root string) (schema, ref []byte, err error) {
	g, err := newGenerator(filepath.Join(root, "topology"), filepath.Join(root, "step"))
	if err != nil {
		return nil, nil, err
	}
	if schema, err = g.schema(); err != nil {
		return nil, nil, err
	}
	return schema, g.reference(), nil
}

func run(root string) error {
	schema, ref, err := generate(root)
	if err != nil {
		return err
	}
	for path, data := range map[string][]byte{schemaPath: schema, referencePath: ref} {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
