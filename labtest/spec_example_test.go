package labtest_test

import (
	"fmt"

	"github.com/natlab/natlab/labtest"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// A lab as a Go value: labtest.UpSpec(t, spec) brings it up. YAML shows
// the scenario file it stands for, which needs no root.
func ExampleSpec_YAML() {
	spec := labtest.Spec{Nodes: []labtest.NodeSpec{
		labtest.Server("stun", topology.ServiceSTUN),
		labtest.NAT("home", nat.FullCone),
		labtest.Host("alice", "home"),
	}}
	yaml, err := spec.YAML()
	if err != nil {
		panic(err)
	}
	fmt.Print(yaml)
	// Output:
	// nodes:
	//   stun:
	//     kind: server
	//     services:
	//     - stun
	//   home:
	//     kind: nat
	//     type: full-cone
	//   alice:
	//     kind: host
	//     behind: home
}
