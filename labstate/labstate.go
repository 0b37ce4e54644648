// Package labstate records what natlab has built, so that a later process
// (`natlab status`, `natlab down`, a test) can find every object of a lab
// without its scenario file, and serialises the processes that change a lab.
//
// Each lab has two files in Dir: LAB.json, the record, and LAB.lock, held
// with flock by whichever process is building or removing the lab.
package labstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/linkcond"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/topology"
)

// Dir is where lab records live. /run is a tmpfs, so records vanish on
// reboot together with the namespaces they describe.
const Dir = "/run/natlab"

// FormatVersion is the format of the records this natlab writes; Save
// puts it into every record and Load refuses a record of a format it does
// not read with ErrVersion. A change to what a record holds that an older
// natlab would misread (a JSON name changed or removed, a value in another
// unit, here or in the nat and linkcond types a record holds, whose JSON
// names are fixed by tags) must raise it.
//
// Format 2 added the links (Links, LinkMechanism): a natlab of format 1
// would take a lab whose links are shaped for one of perfect wires, so it
// refuses the record. Format 1 records, of labs brought up before, read
// as labs whose links are perfect wires.
//
// Format 3 added one-to-one NATs: a NAT change may be to type one-to-one
// (nat.OneToOne), whose behaviour's knobs are a full cone's. A natlab of
// format 2 would build a full cone's table for it when it renumbers or
// reboots the NAT, so it refuses the record. Records of formats 1 and 2
// hold no one-to-one NAT, and read as before.
//
// Format 4 added a NAT's refresh direction (nat.Behaviour.Refresh) and
// made its timeout one per protocol (nat.Timeouts, an object where it was
// UDP's number): a natlab of format 3 would rebuild a NAT switched to
// outbound refresh as one refreshed both ways, and could not read the
// timeouts, so it refuses the record. A NAT change of a record of format
// 3 or before reads as refreshed both ways, what every NAT then was, with
// its UDP timeout and the default TCP and ICMP ones. (Such a lab's
// conntrack has the kernel's TCP and ICMP timeouts, which natlab did not
// set then; the record does not say so.)
const FormatVersion = 4

// oldestVersion is the oldest format this natlab reads.
const oldestVersion = 1

// State is everything natlab knows about one lab.
type State struct {
	// Version is the record's format, FormatVersion when Save wrote it.
	Version int    `json:"version"`
	Name    string `json:"name"`
	// ID is random per bring-up. It tags the lab's objects in the kernel,
	// so removal can check that an object is this lab's and not merely
	// named like it.
	ID string `json:"id"`
	// Source says where the scenario came from: a path or "builtin:NAME".
	Source string `json:"source"`
	// Scenario is the scenario file as it was brought up, so status and
	// rules work after the file changed or was deleted.
	Scenario []byte    `json:"scenario"`
	Created  time.Time `json:"created"`
	// Complete is false while `up` is still building (or if it died).
	Complete bool `json:"complete"`
	// Namespaces are written before they are created: a crash between the
	// two leaves a record that still lets `down` find them.
	Namespaces []Namespace `json:"namespaces"`
	// Processes natlab started inside the lab (services).
	Processes []Process `json:"processes,omitempty"`
	// TURN holds the lab's TURN credentials, made up at bring-up. They are
	// kept in a file of their own that only root may read (LAB.secret).
	TURN TURNCredentials `json:"-"`
	// NATChanges are NAT behaviours changed on the running lab (natlab
	// ui's switch between NAT types), by node. Topology applies them, so
	// status and rules show what the kernel has.
	NATChanges map[string]NATChange `json:"nat_changes,omitempty"`
	// Links are the conditions of the nodes' uplinks as natlab last set
	// them, by node: those of the scenario at bring-up, then each change
	// (natlab link, a link step). A node missing here has the link its
	// scenario gives. Topology applies them.
	Links map[string]LinkState `json:"links,omitempty"`
	// LinkMechanism is how the links are shaped ("netem" or
	// "delay-line"), found once per lab when a link is first shaped.
	LinkMechanism string `json:"link_mechanism,omitempty"`
	// Flowtable says the lab's NATs may offload their flows: when it
	// came up the kernel had the nftables flowtable, and netem for the
	// links; those whose knobs allow do (natrules.Config.Offload). An older natlab that reads it rebuilds a
	// NAT it changes without offload, a table that works.
	Flowtable bool `json:"flowtable,omitempty"`
	// Publics are the public addresses NATs were given on the running
	// lab (natlab renumber, or a reboot with a new address), by node.
	// Topology makes each its node's first address. A natlab of format 2
	// that reads a record with them shows the address the file gave,
	// which is all it gets wrong, so they need no new format version.
	Publics map[string]netip.Addr `json:"publics,omitempty"`
	// Moves are the hosts that moved behind another NAT on the running
	// lab (natlab move), by host. Topology puts each where it moved;
	// an older natlab shows it where the file put it.
	Moves map[string]Move `json:"moves,omitempty"`
}

// Move is where a host moved: the NAT it is behind now and its addresses
// on that NAT's LAN (Address6 zero in an IPv4-only lab).
type Move struct {
	Behind   string     `json:"behind"`
	Address  netip.Addr `json:"address"`
	Address6 netip.Addr `json:"address6,omitzero"`
}

// LinkState is a node's uplink as natlab set it.
type LinkState struct {
	Link linkcond.Link `json:"link"`
	// Down says the link is down: it drops everything.
	Down bool `json:"down,omitempty"`
}

// NATChange is the behaviour a NAT node was switched to.
type NATChange struct {
	Type      nat.Type      `json:"type,omitempty"`
	Behaviour nat.Behaviour `json:"behaviour"`
}

// ScenarioFile is the recorded scenario's name in messages.
func (s *State) ScenarioFile() string {
	if strings.HasSuffix(s.Source, ".yaml") || strings.HasSuffix(s.Source, ".yml") {
		return s.Source
	}
	return s.Name + ".yaml"
}

// Topology parses the recorded scenario's nodes again, under the lab's
// name; its steps are not read (step.Parse reads them).
func (s *State) Topology() (*topology.Topology, error) {
	topo, err := topology.Parse(s.ScenarioFile(), s.Scenario, nil)
	if err != nil {
		return nil, fmt.Errorf("lab %s: its recorded scenario does not parse: %w", s.Name, err)
	}
	topo.Name = s.Name
	for node, c := range s.NATChanges {
		if n := topo.Node(node); n != nil && n.NAT != nil {
			n.NAT.Type, n.NAT.Behaviour = c.Type, c.Behaviour
		}
	}
	for node, l := range s.Links {
		if n := topo.Node(node); n != nil {
			n.Link = l.Link
		}
	}
	for node, m := range s.Moves {
		if n := topo.Node(node); n != nil && n.Kind == topology.KindHost {
			n.Behind, n.Addresses, n.Addresses6 = m.Behind, []netip.Addr{m.Address}, nil
			if m.Address6.IsValid() {
				n.Addresses6 = []netip.Addr{m.Address6}
			}
		}
	}
	for node, a := range s.Publics {
		if n := topo.Node(node); n != nil && n.NAT != nil && len(n.Addresses) > 0 {
			n.Addresses[0] = a
		}
	}
	return topo, nil
}

// TURNCredentials are long-term TURN credentials (RFC 8656 section 9.2).
type TURNCredentials struct {
	Realm    string `json:"realm"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// LogDir is where the logs of a lab's services go.
func LogDir(name string) string { return filepath.Join(Dir, name+".d") }

// Namespace is one network namespace of the lab.
type Namespace struct {
	Name string `json:"name"`
	// Node is the node it belongs to, or "" for the internet segment.
	Node string `json:"node"`
}

// Process is a process natlab started inside a lab.
type Process struct {
	PID  int    `json:"pid"`
	Node string `json:"node"`
	What string `json:"what"`
	// StartTime is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22), which tells it apart from a later process
	// that reuses the PID.
	StartTime uint64 `json:"start_time"`
}

func path(name, ext string) string { return filepath.Join(Dir, name+ext) }

// checkName refuses a name that is not a lab name before any path is made
// of it: a name such as ../../etc/cron would otherwise reach outside Dir,
// and one such as x* would be a pattern.
func checkName(name string) error { return topology.CheckLabName(name) }

// ErrCorrupt means the lab's record exists but cannot be read.
var ErrCorrupt = errors.New("corrupt record")

// ErrNotFound means no record exists for the lab.
var ErrNotFound = errors.New("no such lab")

// ErrVersion means the lab's record is of a format this natlab does not
// read: a newer natlab wrote it, or none did (it has no version). It is
// an ErrCorrupt too, so that what removes a lab whose record cannot be
// read (natlab down, by the markers of its namespaces) removes this one.
var ErrVersion = fmt.Errorf("%w: unknown format version", ErrCorrupt)

// Load reads the record of lab name.
func Load(name string) (*State, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path(name, ".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("lab %s: %s: %w", name, path(name, ".json"), err)
	}
	// Without root the secret is unreadable: the credentials stay empty.
	if secret, err := os.ReadFile(path(name, ".secret")); err == nil {
		json.Unmarshal(secret, &s.TURN)
	}
	return s, nil
}

// decode reads a record, checking its format version before anything
// else: a record of another format may parse as JSON and still mean
// something else.
func decode(data []byte) (*State, error) {
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case v.Version == nil:
		return nil, fmt.Errorf("%w: the record has none, and every natlab writes one (format %d)", ErrVersion, FormatVersion)
	case *v.Version > FormatVersion:
		return nil, fmt.Errorf("%w: the record is of format %d, from a newer natlab; this natlab reads formats %d-%d", ErrVersion, *v.Version, oldestVersion, FormatVersion)
	case *v.Version < oldestVersion:
		return nil, fmt.Errorf("%w: the record is of format %d; this natlab reads formats %d-%d", ErrVersion, *v.Version, oldestVersion, FormatVersion)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if *v.Version < 4 {
		for node, c := range s.NATChanges {
			c.Behaviour.Refresh = nat.RefreshBoth
			c.Behaviour.Timeout = nat.UDPOnly(c.Behaviour.Timeout.UDP)
			s.NATChanges[node] = c
		}
	}
	return &s, nil
}

// Save writes the record atomically: readers see the old or the new one.
func Save(s *State) error {
	if err := checkName(s.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return err
	}
	// What Save writes is this natlab's format, whatever the record was
	// read as.
	s.Version = FormatVersion
	if s.TURN.User != "" {
		secret, _ := json.Marshal(s.TURN)
		if err := writeAtomic(s.Name, ".secret", secret, 0o600); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.Name, ".json", data, 0o644)
}

func writeAtomic(name, ext string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(Dir, "."+name+ext+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path(name, ext))
}

// Remove deletes the record of lab name, its secret and its logs, and
// the temporary files of a Save that died half way; missing files are no
// error. The lock file is the lock holder's to remove (Lock.Release).
func Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.RemoveAll(LogDir(name)); err != nil {
		return err
	}
	temps, err := saveTemps(name)
	if err != nil {
		return err
	}
	for _, f := range append(temps, path(name, ".secret"), path(name, ".json")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// saveTemps lists the temporary files Save makes for lab name
// (.NAME.json.RANDOM, .NAME.secret.RANDOM). It compares names rather than
// globbing, so that no name is ever read as a pattern; lab names have no
// dots, so these files are this lab's alone.
func saveTemps(name string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var temps []string
	for _, e := range entries {
		f := e.Name()
		if strings.HasPrefix(f, "."+name+".json.") || strings.HasPrefix(f, "."+name+".secret.") {
			temps = append(temps, filepath.Join(Dir, f))
		}
	}
	return temps, nil
}

// Names lists the labs that have a record, sorted.
func Names() ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, strings.TrimSuffix(n, ".json"))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Leftovers lists, sorted, the labs that have any file here but no
// record: what an `up` killed before it saved its record leaves (a lock
// file, a temporary file of Save, a log directory).
func Leftovers() ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	files := make([]string, len(entries))
	for i, e := range entries {
		files[i] = e.Name()
	}
	return leftoverLabs(files), nil
}

// leftoverLabs picks from the file names of Dir the labs that have files
// but no record.
func leftoverLabs(files []string) []string {
	labs := map[string]bool{}
	records := map[string]bool{}
	for _, f := range files {
		temp := strings.HasPrefix(f, ".")
		name, ext, ok := strings.Cut(strings.TrimPrefix(f, "."), ".")
		if !ok || name == "" {
			continue
		}
		switch {
		case ext == "json" && !temp:
			records[name] = true
		case ext == "lock", ext == "d", ext == "secret", temp:
			labs[name] = true
		}
	}
	var names []string
	for n := range labs {
		if !records[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// ErrBusy means another process holds the lab's lock.
var ErrBusy = errors.New("lab busy: another natlab process is changing it")

// Lock is an exclusive hold on one lab.
type Lock struct {
	f    *os.File
	name string
}

// Acquire takes the lock of lab name without waiting; it fails with
// ErrBusy if another process has it. The kernel releases the lock if the
// holder dies, so a crashed `up` never blocks a later `down`.
func Acquire(name string) (*Lock, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path(name, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("lab %s: %w", name, ErrBusy)
			}
			return nil, fmt.Errorf("lab %s: lock: %w", name, err)
		}
		// The previous holder may have removed the file between our open
		// and our flock; then we hold a lock nobody else can see. Retry.
		var held, current unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path(name, ".lock"), &current) == nil && held.Ino == current.Ino {
			return &Lock{f: f, name: name}, nil
		}
		f.Close()
	}
}

// AcquireWait takes the lock of lab name as Acquire does, but while
// another process holds it, it waits until ctx is done. A holder may be on
// its way out: a natlab killed with SIGKILL keeps its lock until the last
// of its threads has left the kernel, which can take a second. waiting, if
// not nil, is called once, the first time the lock is found held, with the
// holder's PID (0 when the kernel does not say).
func AcquireWait(ctx context.Context, name string, waiting func(holder int)) (*Lock, error) {
	const poll = 20 * time.Millisecond
	told := false
	for {
		l, err := Acquire(name)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		if !told && waiting != nil {
			waiting(Holder(name))
		}
		told = true
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited until %v)", err, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// Holder returns the PID of the process that holds the lock of lab name,
// from /proc/locks, or 0 if none does or the kernel does not say.
func Holder(name string) int {
	if checkName(name) != nil {
		return 0
	}
	var st unix.Stat_t
	if err := unix.Stat(path(name, ".lock"), &st); err != nil {
		return 0
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	return lockHolder(string(locks), unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
}

// lockHolder finds in the text of /proc/locks the PID holding a flock on
// the file dev major:minor, inode ino. Its lines read
// "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF", the device in hex.
func lockHolder(locks string, major, minor uint32, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, ino)
	for _, line := range strings.Split(locks, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}

// Held reports whether a process holds the lock of lab name, as a
// building or removing natlab does, without taking it for longer than the
// look takes and without creating a lock file: one created for a lab
// whose bring-up has just failed and removed its files would stay behind.
func Held(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	f, err := os.Open(path(name, ".lock"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("lab %s: lock: %w", name, err)
	}
	return false, nil
}

// Release gives the lock up. The lock file stays while the lab has a
// record and goes with the last holder otherwise: a lab that is not up
// leaves no file, whatever the holder did (an up that failed, a down, a
// NAT switch that found the lab gone). Removing it before the unlock is
// safe: a process that opened the old file meanwhile sees, once it has the
// lock, that the file at the path is another one, and tries again.
func (l *Lock) Release() {
	if _, err := os.Lstat(path(l.name, ".json")); errors.Is(err, os.ErrNotExist) {
		os.Remove(path(l.name, ".lock"))
	}
	l.f.Close()
}
