package graph

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"testing"

	"github.com/natlab/natlab/topology"
)

var update = flag.Bool("update", false, "rewrite the goldens")

const scenario = `
name: cgnat
nodes:
  stun:    {kind: server, services: [stun, turn]}
  carrier: {kind: nat, type: symmetric, lan: 100.64.0.0/10}
  home:    {kind: nat, type: full-cone, behind: carrier}
  phone:   {kind: host, behind: carrier}
  laptop:  {kind: host, behind: home}
  tv:      {kind: host, behind: home}
  friend:  {kind: host}
`

func TestGoldens(t *testing.T) {
	topo, err := topology.Parse("cgnat.yaml", []byte(scenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats {
		var b bytes.Buffer
		if err := Write(&b, topo, f); err != nil {
			t.Fatal(err)
		}
		path := "testdata/cgnat." + f
		if *update {
			os.WriteFile(path, b.Bytes(), 0o644)
			continue
		}
		want, _ := os.ReadFile(path)
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs (run with -update to accept):\n%s", path, b.String())
		}
		if f == "svg" {
			if err := xml.Unmarshal(b.Bytes(), new(struct{})); err != nil {
				t.Errorf("the SVG is not well-formed XML: %v", err)
			}
		}
	}
	if err := Write(&bytes.Buffer{}, topo, "png"); err == nil {
		t.Error("an unknown format was accepted")
	}
}
