package labstate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

func TestSaveLoadRemove(t *testing.T) {
	testutil.RequireRoot(t) // Dir is under /run
	name := testutil.UniqueName(t)
	if _, err := Load(name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing lab: %v, want ErrNotFound", err)
	}
	st := &State{Version: FormatVersion, Name: name, ID: "abc", Scenario: []byte("nodes: {}\n"),
		Namespaces: []Namespace{{Name: "natlab-" + name + "-a", Node: "a"}}}
	if err := Save(st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(name) })
	got, err := Load(name)
	if err != nil || got.ID != "abc" || string(got.Scenario) != "nodes: {}\n" || len(got.Namespaces) != 1 {
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
	l.Release(true)
	l2, err := Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release(true)
	if _, err := os.Stat(filepath.Join(Dir, name+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Release(true): %v", err)
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
	l.Release(false)
	t.Cleanup(func() { os.Remove(lockFile) })
	if held, err := Held(name); held || err != nil {
		t.Errorf("Held after Release = %v, %v; want false", held, err)
	}
	// The look must not keep the lock.
	l, err = Acquire(name)
	if err != nil {
		t.Fatalf("Acquire after Held: %v", err)
	}
	l.Release(true)
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
