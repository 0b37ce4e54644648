package lab_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
)

// A full-cone NAT switched to symmetric in place: the old mapping is
// gone, a new destination gets a new public endpoint, the packet the full
// cone let in is dropped, and the record says what the kernel has.
func TestSwitchNAT(t *testing.T) {
	t.Parallel()
	l := natLab(t, "type: full-cone")
	s := openServers(l)
	h := l.UDP("h1", ":40000")
	before := s.seen(t, h, s.a1p1)
	s.a2p2.Send(before, "full cone lets anyone in")
	h.Expect("full cone lets anyone in", arrival)

	n, err := lab.SwitchNAT(context.Background(), l.Topo.Name, "nat", nat.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	if n.NAT.Type != nat.Symmetric || n.NAT.Behaviour.Ports != nat.PortRandom {
		t.Errorf("switched node is %v %v, want symmetric with random ports", n.NAT.Type, n.NAT.Behaviour)
	}
	s.a2p2.Send(before, "after the switch")
	if h.Arrives("after the switch", silence) {
		t.Error("after the switch to symmetric, a stranger's packet to the old full-cone mapping got in")
	}
	first := s.seen(t, h, s.a1p1)
	other := s.seen(t, h, s.a2p1)
	if first == other {
		t.Errorf("after the switch both destinations saw %v; a symmetric NAT maps each destination apart", first)
	}

	topo := recorded(t, l)
	if got := topo.Node("nat").NAT.Type; got != nat.Symmetric {
		t.Errorf("the record's topology has the NAT as %q, want symmetric", got)
	}
	rs, err := lab.Rules(topo, topo.Node("nat"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rs.String(), "random") && !strings.Contains(rs.String(), "numgen") {
		t.Errorf("the recorded NAT's rules allocate no random ports:\n%v", rs)
	}

	if _, err := lab.SwitchNAT(context.Background(), l.Topo.Name, "h1", nat.FullCone); err == nil || !strings.Contains(err.Error(), "not a NAT") {
		t.Errorf("switching a host: err = %v, want one saying it is not a NAT", err)
	}
}

// A switch that arrives after its lab was taken down (the page posts one
// in the second before it notices the down) fails and leaves no lock
// file behind.
func TestSwitchNATOfALabThatIsGone(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	if _, err := lab.SwitchNAT(context.Background(), name, "nat", nat.Symmetric); !errors.Is(err, labstate.ErrNotFound) {
		t.Errorf("SwitchNAT of a lab that is not up: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(labstate.Dir, name+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file: %v, want none", err)
	}
}

// A switch that finds the lab's lock held waits for it, as down does,
// instead of failing at once while another natlab changes the lab; and it
// gives up when its context is done.
func TestSwitchNATWaitsForTheLock(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	held, err := labstate.Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lab.SwitchNAT(ctx, name, "nat", nat.Symmetric); !errors.Is(err, labstate.ErrBusy) {
		t.Errorf("SwitchNAT with its context done while the lock is held: %v, want ErrBusy", err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(200 * time.Millisecond)
		held.Release()
	}()
	_, err = lab.SwitchNAT(context.Background(), name, "nat", nat.Symmetric)
	<-released
	if !errors.Is(err, labstate.ErrNotFound) {
		t.Errorf("SwitchNAT while the lock is held, then released: %v, want ErrNotFound (it got the lock and found no lab)", err)
	}
}
