package lab

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/namedns"
)

// nsInode returns the inode of a named namespace: the number that
// /proc/PID/ns/net shows for processes inside it.
func nsInode(nsName string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(namedns.Path(nsName), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// processesIn finds the processes whose network namespace is one of
// inodes: the lab's services, and anything else running inside the lab (a
// shell from natlab exec, a program a scenario started). It maps each
// one's PID to its namespace's inode.
func processesIn(inodes map[uint64]bool) (map[int]uint64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	found := map[int]uint64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
			continue // gone, or a kernel thread
		}
		if inodes[st.Ino] {
			found[pid] = st.Ino
		}
	}
	return found, nil
}

// stopTimeout is how long processes get to exit after SIGTERM.
const stopTimeout = 2 * time.Second

// stopping is a set of processes that have been told to stop.
type stopping struct {
	pidfds []int
	sent   time.Time
}

// signalProcesses tells the processes to stop: SIGKILL for those of kill,
// SIGTERM for the others. It does not wait: the caller does other work
// while they exit, then calls wait.
func signalProcesses(pids []int, kill map[int]bool) *stopping {
	s := &stopping{sent: time.Now()}
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		s.pidfds = append(s.pidfds, fd)
		sig := syscall.SIGTERM
		if kill[pid] {
			sig = syscall.SIGKILL
		}
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
	return s
}

// wait returns once every process is gone, sending SIGKILL to those still
// there stopTimeout after they were signalled. It waits on pidfds, so it
// returns as soon as they are gone.
func (s *stopping) wait() error {
	defer func() {
		for _, fd := range s.pidfds {
			unix.Close(fd)
		}
	}()
	deadline := s.sent.Add(stopTimeout)
	for _, fd := range s.pidfds {
		if !waitExit(fd, time.Until(deadline)) {
			unix.PidfdSendSignal(fd, syscall.SIGKILL, nil, 0)
			if !waitExit(fd, time.Second) {
				return errors.New("a process inside the lab survived SIGKILL")
			}
		}
	}
	return nil
}

// waitExit waits until the process behind pidfd has exited.
func waitExit(pidfd int, timeout time.Duration) bool {
	if timeout < 0 {
		timeout = 0
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// startTime reads a process's start time (clock ticks after boot), which
// tells it from a later process that reuses its PID.
func startTime(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat reads a process's state letter and start time from
// /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, err
}

// ProcessAlive reports whether pid is still the process that started at
// start, and running: a process that has exited but that its parent has
// not yet waited for (a zombie) is not.
func ProcessAlive(pid int, start uint64) bool {
	state, got, err := procStat(pid)
	return err == nil && got == start && state != 'Z' && state != 'X'
}
