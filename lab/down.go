package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/labstate"
)

// LockPatience is how long Down waits for another process to let go of
// a lab's lock: long enough for a killed natlab to finish dying (its
// threads leave the kernel, and drop the lock, up to a second or so after
// SIGKILL) or for a NAT switch to end; short enough that a lab held by a
// process that is stuck gets a clear error instead of a hang.
const LockPatience = 10 * time.Second

// Down removes lab name completely: its namespaces (and with them every
// link, address, route and rule in them) and its record. Without a record
// it still removes the namespaces natlab marked as this lab's, which a
// bring-up that died before writing one, or a deleted record, leaves. A
// lab that is not up is no error: removed is false.
//
// If another process holds the lab's lock, Down waits for it up to
// LockPatience, or until ctx is done; waiting, if not nil, is called
// once when it starts to wait, with the holder's PID (0 if unknown).
func Down(ctx context.Context, name string, waiting func(holder int)) (removed bool, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, LockPatience, fmt.Errorf("%v passed", LockPatience))
	lock, err := labstate.AcquireWait(ctx, name, waiting)
	cancel()
	if err != nil {
		return false, err
	}
	defer lock.Release()
	st, err := labstate.Load(name)
	if corrupt := errors.Is(err, labstate.ErrCorrupt); corrupt || errors.Is(err, labstate.ErrNotFound) {
		// Without a readable record, the namespaces are found by their
		// markers, which name the lab: a lab must never become
		// impossible to remove.
		removed, err := removeOrphans("natlab-"+name+"-", name)
		if err == nil {
			// An up killed before its record was saved may have left a
			// log directory or a temporary file of the record; a corrupt
			// record goes too.
			err = labstate.Remove(name)
		}
		return removed || corrupt, err
	}
	if err != nil {
		return false, err
	}
	if err := remove(st); err != nil {
		return false, fmt.Errorf("lab %s: %w", name, err)
	}
	if err := labstate.Remove(name); err != nil {
		return false, fmt.Errorf("lab %s: remove record: %w", name, err)
	}
	return true, nil
}

// DownAll removes every lab natlab has a record of, then every namespace
// that carries a natlab marker but whose lab has no record, and the files
// of labs that have no record (an up killed before it saved one). It
// returns the names of the labs it removed.
func DownAll(ctx context.Context, waiting func(lab string, holder int)) ([]string, error) {
	names, err := labstate.Names()
	if err != nil {
		return nil, err
	}
	marked, err := markedLabs()
	if err != nil {
		return nil, err
	}
	leftovers, err := labstate.Leftovers()
	if err != nil {
		return nil, err
	}
	for _, l := range append(marked, leftovers...) {
		if !slices.Contains(names, l) {
			names = append(names, l)
		}
	}
	var removed []string
	var errs []error
	for _, name := range names {
		var wait func(int)
		if waiting != nil {
			wait = func(holder int) { waiting(name, holder) }
		}
		ok, err := Down(ctx, name, wait)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, name)
		}
	}
	return removed, errors.Join(errs...)
}

// remove stops every process inside the lab and deletes the namespaces of
// its record that carry its marker.
func remove(st *labstate.State) error {
	type found struct {
		ours bool
		err  error
	}
	results := make([]found, len(st.Namespaces))
	// Looking through /proc for the processes inside the lab takes as
	// long as reading the markers: it is done meanwhile, for every
	// namespace of the record, and narrowed to the lab's own afterwards.
	type scan struct {
		procs map[int]uint64
		err   error
	}
	scanned := make(chan scan, 1)
	go func() {
		inodes := map[uint64]bool{}
		for _, ns := range st.Namespaces {
			if ino, err := nsInode(ns.Name); err == nil {
				inodes[ino] = true
			}
		}
		procs, err := processesIn(inodes)
		scanned <- scan{procs, err}
	}()
	// Each namespace's marker is read on its own: in parallel.
	each(context.Background(), len(st.Namespaces), func(i int) error {
		name := st.Namespaces[i].Name
		lab, _, id, ok, err := readMarker(name)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case errors.Is(err, errNotMounted):
			// A crash between creating the mount point and mounting on it
			// leaves an empty file; nothing else would be at this path.
			if err := os.Remove(namedns.Path(name)); err != nil {
				results[i].err = err
			}
		case err != nil:
			results[i].err = fmt.Errorf("namespace %s: %w", name, err)
		case !ok || lab != st.Name || id != st.ID:
			results[i].err = fmt.Errorf("namespace %s is not this lab's (its marker is not lab=%s id=%s); left alone", name, st.Name, st.ID)
		default:
			results[i].ours = true
		}
		return nil
	})
	var errs []error
	var ours []string
	for i, r := range results {
		if r.ours {
			ours = append(ours, st.Namespaces[i].Name)
		}
		errs = append(errs, r.err)
	}
	// natlab's own service processes have nothing to save: they are
	// killed outright. Anything else in the lab gets to exit cleanly.
	own := map[int]bool{}
	for _, p := range st.Processes {
		if ProcessAlive(p.PID, p.StartTime) {
			own[p.PID] = true
		}
	}
	s := <-scanned
	errs = append(errs, s.err, deleteNamespaces(ours, own, s.procs))
	return errors.Join(errs...)
}

// deleteNamespaces stops the processes inside the namespaces (with
// SIGKILL those of own, with SIGTERM the others) and deletes the
// namespaces' names. procs are the processes found inside them, or nil to
// look for them now. A process would keep its namespace alive after the
// name is gone: they are all signalled first, and waited for last, so
// that they exit while the names are removed.
func deleteNamespaces(names []string, own map[int]bool, procs map[int]uint64) error {
	inodes := map[uint64]bool{}
	for _, name := range names {
		if ino, err := nsInode(name); err == nil {
			inodes[ino] = true
		}
	}
	var errs []error
	if procs == nil {
		var err error
		if procs, err = processesIn(inodes); err != nil {
			errs = append(errs, err)
		}
	}
	var pids []int
	for pid, ino := range procs {
		if inodes[ino] {
			pids = append(pids, pid)
		}
	}
	stopping := signalProcesses(pids, own)
	for _, name := range names {
		if err := namedns.Delete(name); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, stopping.wait())
	return errors.Join(errs...)
}

var errNotMounted = errors.New("not a mounted namespace")

// readMarker reads the marker of a named namespace.
func readMarker(nsName string) (lab, node, id string, ok bool, err error) {
	path := namedns.Path(nsName)
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return "", "", "", false, err
	}
	if fs.Type != unix.NSFS_MAGIC && fs.Type != unix.PROC_SUPER_MAGIC {
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0 {
			return "", "", "", false, errNotMounted
		}
		return "", "", "", false, fmt.Errorf("%s is not a namespace", path)
	}
	ns, err := namedns.Open(nsName)
	if err != nil {
		return "", "", "", false, err
	}
	defer ns.Close()
	h, err := namedns.Netlink(ns.Fd())
	if err != nil {
		return "", "", "", false, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return "", "", "", false, err
	}
	lab, node, id, ok = parseMarker(lo.Attrs().Alias)
	return lab, node, id, ok, nil
}

// markedNamespaces lists the named namespaces whose name starts with
// prefix and that carry a natlab marker, with the lab the marker names.
func markedNamespaces(prefix string) (map[string]string, error) {
	entries, err := os.ReadDir(namedns.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if lab, _, _, ok, err := readMarker(e.Name()); err == nil && ok {
			found[e.Name()] = lab
		}
	}
	return found, nil
}

// markedLabs lists the labs that have marked namespaces.
func markedLabs() ([]string, error) {
	found, err := markedNamespaces("natlab-")
	var labs []string
	for _, l := range found {
		if !slices.Contains(labs, l) {
			labs = append(labs, l)
		}
	}
	return labs, err
}

// removeOrphans deletes the marked namespaces of lab whose names start
// with prefix. The caller holds the lab's lock and has found no record.
func removeOrphans(prefix, lab string) (bool, error) {
	found, err := markedNamespaces(prefix)
	var names []string
	for ns, l := range found {
		if l == lab {
			names = append(names, ns)
		}
	}
	if len(names) == 0 {
		return false, err
	}
	return true, errors.Join(err, deleteNamespaces(names, nil, nil), labstate.Remove(lab))
}
