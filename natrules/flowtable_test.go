package natrules

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/natlab/natlab/internal/testutil"
)

// HasFlowtable agrees with nft, which tries the same in a namespace of
// its own, and leaves its namespace without a table.
func TestHasFlowtable(t *testing.T) {
	nft := testutil.RequireTool(t, "nft")
	ns, _ := testutil.NewNS(t, "ft")
	has, err := HasFlowtable(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseLasting()
	if tables, err := conn.ListTables(); err != nil || len(tables) != 0 {
		t.Errorf("after the probe the namespace holds tables %v (%v), want none", tables, err)
	}
	_, other := testutil.NewNS(t, "ftnft")
	cmd := exec.Command("ip", "netns", "exec", other, nft, "add table ip t; add flowtable ip t f { hook ingress priority 0; }")
	out, err := cmd.CombinedOutput()
	if nftHas := err == nil; nftHas != has {
		t.Errorf("HasFlowtable says %v, nft's own try %v (%s)", has, nftHas, strings.TrimSpace(string(out)))
	}
}
