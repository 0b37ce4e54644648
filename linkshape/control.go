package linkshape

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/labstate"
)

// SocketPath is where the delay line of lab listens for requests to load
// the lab's links again: a unix socket among the lab's files, which go
// with the lab.
func SocketPath(lab string) string { return filepath.Join(labstate.LogDir(lab), "delay-line.sock") }

// Serve is the delay line of one lab, in the process that holds it until
// ctx is done. load says what each namespace's queue holds; Serve calls
// it first, binds the queues, listens on the socket at sock and calls
// ready, then calls it again at each request on the socket (Reload).
func Serve(ctx context.Context, sock string, load func() (map[string]*Queue, error), ready func(), logf func(string, ...any)) error {
	line := NewLine(logf)
	defer line.Close()
	qs, err := load()
	if err != nil {
		return err
	}
	if err := line.Update(qs); err != nil {
		return err
	}
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("delay line: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	logf("delay line: holding the queues of %d namespaces, listening on %s", len(qs), sock)
	ready()
	// One request at a time: a reload is short, and two at once would
	// only race to the same result.
	var reload sync.Mutex
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("delay line: %w", err)
		}
		wg.Go(func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(reloadTimeout))
			req, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || strings.TrimSpace(req) != "reload" {
				fmt.Fprintf(c, "error unknown request %q\n", strings.TrimSpace(req))
				return
			}
			reload.Lock()
			defer reload.Unlock()
			qs, err := load()
			if err == nil {
				err = line.Update(qs)
			}
			if err != nil {
				logf("delay line: reload: %v", err)
				fmt.Fprintf(c, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
				return
			}
			logf("delay line: reloaded, %d namespaces", len(qs))
			fmt.Fprintln(c, "ok")
		})
	}
}

// reloadTimeout bounds a reload: loading the record and binding a few
// queues takes milliseconds.
const reloadTimeout = 10 * time.Second

// ErrNoDelayLine means no delay line listens at the socket.
var ErrNoDelayLine = errors.New("no delay line is running")

// Reload asks the delay line listening at sock to load its queues again,
// and returns once it has: the queues a change of links needs are bound
// when it returns.
func Reload(ctx context.Context, sock string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoDelayLine, err)
	}
	defer c.Close()
	deadline := time.Now().Add(reloadTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := fmt.Fprintln(c, "reload"); err != nil {
		return fmt.Errorf("delay line: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("delay line: no answer to reload: %w", err)
	}
	line = strings.TrimSpace(line)
	if line != "ok" {
		return fmt.Errorf("delay line: %s", strings.TrimPrefix(line, "error "))
	}
	return nil
}
