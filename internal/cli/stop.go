package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Everything that ends a command before it is done comes through here,
// so that a command has one thing to honour, its context, and whatever it
// built (a lab of run, ui or tour; a half-built one of up) is taken down
// before natlab exits:
//
//   - stopSignals: Ctrl-C, SIGTERM (a supervisor, timeout), and SIGHUP (a
//     closed terminal, a dropped ssh session);
//   - standard output failing: a write to it that fails (the reader of
//     `natlab run | head -1` gone: EPIPE; `>/dev/full`: ENOSPC), or the
//     reader of a pipe or socket going away, which is seen without writing
//     (a run in a long step, a page that prints nothing while it serves).
//     Nobody reads what the command says any more, and a command that
//     cannot say what it did must not go on doing it, nor exit 0.
//
// Go's runtime kills a process with SIGPIPE when a write to stdout fails
// with EPIPE, unless SIGPIPE is being notified; so it is, and the failed
// write returns EPIPE to output, which stops the command like the rest.
// A notified signal is reset to its default in a program natlab execs,
// where ignoring it would be inherited.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// stopSignal is the cause of a context stopped by a signal.
type stopSignal struct{ sig syscall.Signal }

func (s stopSignal) Error() string { return "stopped by " + unix.SignalName(s.sig) }

// exitCode is the shell's code for death by the signal: 130 for Ctrl-C,
// 143 for SIGTERM, 129 for SIGHUP.
func (s stopSignal) exitCode() int { return 128 + int(s.sig) }

// outputFailed is the cause of a context stopped because standard output
// could not be written.
type outputFailed struct{ err error }

func (o outputFailed) Error() string { return "the output could not be written: " + o.err.Error() }
func (o outputFailed) Unwrap() error { return o.err }

// stopper watches for what stops a command. Its context is the
// command's; close joins what it started.
type stopper struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	out    *output
	sigs   chan os.Signal
	wake   int // an eventfd that ends the watch of stdout; -1 when none runs
	done   chan struct{}
	wg     sync.WaitGroup
}

func startStopper(stdout io.Writer) *stopper {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &stopper{ctx: ctx, cancel: cancel, sigs: make(chan os.Signal, 4), wake: -1, done: make(chan struct{})}
	s.out = &output{w: stdout, fail: func(err error) { cancel(outputFailed{err}) }}
	signal.Notify(s.sigs, append(stopSignals, syscall.SIGPIPE)...)
	s.wg.Go(func() {
		for {
			select {
			case sig := <-s.sigs:
				// SIGPIPE also comes for a socket whose peer left (a browser
				// tab of natlab ui): that is no reason to stop. A broken
				// stdout is seen by the write that failed.
				if sig != syscall.SIGPIPE {
					cancel(stopSignal{sig.(syscall.Signal)})
				}
			case <-s.done:
				return
			}
		}
	})
	if f, ok := stdout.(*os.File); ok && readerCanLeave(f) {
		if fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC); err == nil {
			s.wake = fd
			s.wg.Go(func() { s.watchReader(int(f.Fd())) })
		}
	}
	return s
}

// readerCanLeave reports whether f is a pipe or a socket, whose reader
// can go away while natlab runs. A terminal that goes away sends SIGHUP.
func readerCanLeave(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// watchReader stops the command when the reading end of stdout is
// closed: poll reports POLLERR for a pipe without readers and POLLHUP for
// a socket whose peer is gone, without being asked for either.
func (s *stopper) watchReader(fd int) {
	fds := []unix.PollFd{{Fd: int32(fd)}, {Fd: int32(s.wake), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil, fds[1].Revents != 0, fds[0].Revents&unix.POLLNVAL != 0:
			return
		case fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0:
			s.cancel(outputFailed{fmt.Errorf("stdout was closed by its reader: %w", syscall.EPIPE)})
			return
		}
	}
}

// close stops watching and joins the watchers.
func (s *stopper) close() {
	signal.Stop(s.sigs)
	close(s.done)
	if s.wake >= 0 {
		unix.Write(s.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	s.wg.Wait()
	if s.wake >= 0 {
		unix.Close(s.wake)
	}
	s.cancel(context.Canceled)
}

// output is natlab's standard output: a write to it that fails stops the
// command (see stopper).
type output struct {
	w    io.Writer
	fail func(error)
}

func (o *output) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		o.fail(err)
		// So that Main, which says why the command stopped, does not say
		// it twice when the command returns the error.
		err = outputFailed{err}
	}
	return n, err
}

// fileOf is the file w writes to, if it is one: stdout, through output.
func fileOf(w io.Writer) (*os.File, bool) {
	if o, ok := w.(*output); ok {
		w = o.w
	}
	f, ok := w.(*os.File)
	return f, ok
}

// unwrapOutput is the writer under output, for a process natlab starts
// that is to write to stdout itself (natlab run again rootless, which
// watches its output as this one does).
func unwrapOutput(w io.Writer) io.Writer {
	if o, ok := w.(*output); ok {
		return o.w
	}
	return w
}
