package labstate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/topology"
)

func TestSaveLoadRemove(t *testing.T) {
	testutil.RequireRoot(t) // Dir is under /run
	name := testutil.UniqueName(t)
	if _, err := Load(name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing lab: %v, want ErrNotFound", err)
	}
	// Without a version: Save writes its own.
	st := &State{Name: name, ID: "abc", Scenario: []byte("nodes: {}\n"),
		Namespaces: []Namespace{{Name: "natlab-" + name + "-a", Node: "a"}}}
	if err := Save(st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(name) })
	got, err := Load(name)
	if err != nil || got.Version != FormatVersion || got.ID != "abc" || string(got.Scenario) != "nodes: {}\n" || len(got.Namespaces) != 1 {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	names, err := Names()
	if err != nil || !slices.Contains(names, name) {
		t.Errorf("Names = %v, %v; want it to contain %s", names, err, name)
	}
	leftovers, _ := filepath.Glob(filepath.Join(Dir, "."+name+"*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := Remove(name); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	os.MkdirAll(Dir, 0o755)
	os.WriteFile(filepath.Join(Dir, name+".json"), []byte("{not json"), 0o644)
	t.Cleanup(func() { Remove(name) })
	if _, err := Load(name); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Load of a corrupt record: %v", err)
	}
}

func TestLockIsExclusive(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	l, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(name); !errors.Is(err, ErrBusy) {
		t.Errorf("second Acquire: %v, want ErrBusy", err)
	}
	l.Release()
	l2, err := Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
	if _, err := os.Stat(filepath.Join(Dir, name+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file of a lab without a record still there after Release: %v", err)
	}
}

// The lock file stays while the lab has a record, and goes with the last
// holder when it has none, whoever that was (a NAT switch that found its
// lab taken down left one).
func TestReleaseKeepsTheLockFileOnlyWithARecord(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	lockFile := filepath.Join(Dir, name+".lock")
	t.Cleanup(func() { Remove(name); os.Remove(lockFile) })
	l, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(&State{Version: FormatVersion, Name: name, ID: "abc"}); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(lockFile); err != nil {
		t.Errorf("lock file of a lab with a record: %v, want it kept", err)
	}
	l, err = Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(lockFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file of a removed lab: %v, want it gone", err)
	}
}

// AcquireWait waits while the lock is held, says once who holds it, and
// gives up when its context ends.
func TestAcquireWait(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	held, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := AcquireWait(ctx, name, nil); !errors.Is(err, ErrBusy) {
		t.Errorf("AcquireWait past its context: %v, want ErrBusy", err)
	}
	var told []int
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		held.Release()
		close(released)
	}()
	l, err := AcquireWait(context.Background(), name, func(holder int) { told = append(told, holder) })
	<-released
	if err != nil {
		t.Fatalf("AcquireWait: %v", err)
	}
	l.Release()
	if !slices.Equal(told, []int{os.Getpid()}) {
		t.Errorf("waiting was told %v, want once with this process, %d", told, os.Getpid())
	}
}

func TestLockHolder(t *testing.T) {
	locks := "1: POSIX  ADVISORY  WRITE 10 fe:00:77 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 18458 fe:00:9981378 0 EOF\n" +
		"2: -> FLOCK  ADVISORY  WRITE 18460 fe:00:9981378 0 EOF\n" +
		"3: FLOCK  ADVISORY  WRITE 99 00:1a:9981378 0 EOF\n"
	for _, tc := range []struct {
		major, minor uint32
		ino          uint64
		want         int
	}{
		{0xfe, 0, 9981378, 18458},
		{0, 0x1a, 9981378, 99},
		{0xfe, 0, 77, 0}, // a POSIX lock is not natlab's
		{0xfe, 0, 1, 0},
	} {
		if got := lockHolder(locks, tc.major, tc.minor, tc.ino); got != tc.want {
			t.Errorf("lockHolder(%x:%x:%d) = %d, want %d", tc.major, tc.minor, tc.ino, got, tc.want)
		}
	}
}

// A name that is not a lab name never becomes a path: not one that climbs
// out of Dir (which, as root, removed ../../home/me/notes.d), not a glob
// pattern (x* removed another lab's temporary record), not "".
func TestNamesThatAreNotLabNames(t *testing.T) {
	testutil.RequireRoot(t)
	victims := t.TempDir()
	for _, f := range []string{"notes.json", "notes.secret", "notes.lock", "notes.d/keep"} {
		os.MkdirAll(filepath.Dir(filepath.Join(victims, f)), 0o755)
		if err := os.WriteFile(filepath.Join(victims, f), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	climb, err := filepath.Rel(Dir, filepath.Join(victims, "notes"))
	if err != nil {
		t.Fatal(err)
	}
	other := testutil.UniqueName(t)
	os.MkdirAll(Dir, 0o755)
	otherTemp := filepath.Join(Dir, "."+other+".json.123")
	if err := os.WriteFile(otherTemp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(otherTemp) })
	for _, name := range []string{climb, other[:3] + "*", "*", "", "-rf", "a/b", "A", "x.y"} {
		check := func(op string, err error) {
			if !errors.Is(err, topology.ErrBadName) {
				t.Errorf("%s(%q) = %v, want ErrBadName", op, name, err)
			}
		}
		check("Remove", Remove(name))
		_, err := Load(name)
		check("Load", err)
		check("Save", Save(&State{Name: name}))
		_, err = Acquire(name)
		check("Acquire", err)
		_, err = Held(name)
		check("Held", err)
	}
	for _, f := range []string{"notes.json", "notes.secret", "notes.lock", "notes.d/keep"} {
		if data, err := os.ReadFile(filepath.Join(victims, f)); err != nil || string(data) != "mine" {
			t.Errorf("%s: %q, %v; want it untouched", f, data, err)
		}
	}
	if _, err := os.Stat(otherTemp); err != nil {
		t.Errorf("another lab's temporary record: %v", err)
	}
}

func TestHeld(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	lockFile := filepath.Join(Dir, name+".lock")
	if held, err := Held(name); held || err != nil {
		t.Errorf("Held with no lock file = %v, %v; want false", held, err)
	}
	if _, err := os.Stat(lockFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Held created a lock file: %v", err)
	}
	l, err := Acquire(name)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := Held(name); !held || err != nil {
		t.Errorf("Held while Acquired = %v, %v; want true", held, err)
	}
	l.Release()
	t.Cleanup(func() { os.Remove(lockFile) })
	if held, err := Held(name); held || err != nil {
		t.Errorf("Held after Release = %v, %v; want false", held, err)
	}
	// The look must not keep the lock.
	l, err = Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after Held: %v", err)
	}
	l.Release()
}

func TestLeftoverLabs(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  []string
	}{
		{nil, nil},
		{[]string{"a.json", "a.lock", "a.secret", "a.d"}, nil},
		{[]string{"a.lock"}, []string{"a"}},
		{[]string{".a.secret.123", "b.json", ".b.json.9", "b.lock"}, []string{"a"}},
		{[]string{"c.d", ".d.json.1", "e.lock", "e.json"}, []string{"c", "d"}},
		{[]string{"stray", ".hidden", "x.txt"}, nil},
	} {
		if got := leftoverLabs(tc.files); !slices.Equal(got, tc.want) {
			t.Errorf("leftoverLabs(%q) = %q, want %q", tc.files, got, tc.want)
		}
	}
}
