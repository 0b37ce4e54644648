package linkshape

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timer wakes the delay line at a packet's due time. It is a timerfd, not
// a Go timer: the Go runtime sleeps in whole milliseconds, which would
// make every packet up to a millisecond late, while the kernel's timer
// fires within microseconds and wakes the reader through the poller.
type timer struct {
	f *os.File
	// origin is the CLOCK_MONOTONIC time at which durations start: the
	// delay line's start, which time.Since measures on the same clock.
	origin time.Duration
}

func newTimer(start time.Time) (*timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The monotonic clock's reading at start.
	origin := time.Duration(now.Nano()) - time.Since(start)
	return &timer{f: os.NewFile(uintptr(fd), "timerfd"), origin: origin}, nil
}

// at arms the timer for due, a time since start; a time past fires at
// once.
func (t *timer) at(due time.Duration) {
	abs := t.origin + due
	if abs <= 0 {
		abs = 1
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(abs))}
	rc, err := t.f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME, &spec, nil) })
}

// wait returns when the timer fires, false once it is closed.
func (t *timer) wait() bool {
	var b [8]byte
	for {
		n, err := t.f.Read(b[:])
		if err != nil {
			return false
		}
		if n == 8 && binary.NativeEndian.Uint64(b[:]) > 0 {
			return true
		}
	}
}

func (t *timer) close() { t.f.Close() }
