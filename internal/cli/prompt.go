package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// promptReader reads the answers to prompts, a line each, and gives up on
// one when its context ends. A read of a terminal does not return when a
// signal comes (the kernel or Go retries it), so a tour paused at
// "[Enter: ...]" went on waiting after Ctrl-C, its lab up. A file (a
// terminal, a pipe) is polled together with an eventfd that the
// context's end makes readable; any other reader (a test's string) is
// read as it is, since it does not block.
type promptReader struct {
	r   io.Reader
	fd  int // r's descriptor, or -1
	buf []byte
}

func newPromptReader(r io.Reader) *promptReader {
	p := &promptReader{r: r, fd: -1}
	if f, ok := r.(*os.File); ok {
		p.fd = int(f.Fd())
	}
	return p
}

// readLine returns the next line without its newline, what is left at the
// end of the input with io.EOF, or ctx's error as soon as ctx ends.
func (p *promptReader) readLine(ctx context.Context) (string, error) {
	chunk := make([]byte, 512)
	for {
		if i := bytes.IndexByte(p.buf, '\n'); i >= 0 {
			line := string(p.buf[:i])
			p.buf = p.buf[i+1:]
			return line, nil
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if p.fd >= 0 {
			if err := waitReadable(ctx, p.fd); err != nil {
				return "", err
			}
		}
		n, err := p.r.Read(chunk)
		p.buf = append(p.buf, chunk[:n]...)
		if err != nil {
			line := string(p.buf)
			p.buf = nil
			return line, err
		}
	}
}

// waitReadable waits until fd has something to read (or its end, or an
// error, which the read then returns), or ctx ends.
func waitReadable(ctx context.Context, fd int) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return err
	}
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // eventfd adds 8-byte counts: any non-zero one wakes
		close(woken)
	})
	defer func() {
		if !stop() {
			<-woken // joined: the eventfd is closed after its last write
		}
		unix.Close(wake)
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		switch {
		case errors.Is(err, unix.EINTR):
			continue // a signal, Ctrl-C's among them: its context says
		case err != nil:
			return err
		case fds[1].Revents != 0:
			return ctx.Err()
		case fds[0].Revents != 0:
			return nil
		}
	}
}
