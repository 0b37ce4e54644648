package service

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/labstate"
)

// The environment of a service process.
const (
	envLab  = "NATLAB_SERVICE_LAB"
	envNode = "NATLAB_SERVICE_NODE"
)

// readyFD is the descriptor a service process reports readiness on.
const readyFD = 3

func init() {
	if lab := os.Getenv(envLab); lab != "" {
		os.Exit(serve(lab, os.Getenv(envNode)))
	}
}

// StartTimeout bounds how long Start waits for a service to be ready.
const StartTimeout = 10 * time.Second

// Start launches the service process of a lab's server node inside ns,
// with its output going to logPath, and returns once it is serving. The
// lab's record must already hold the credentials.
func Start(ns *namedns.NS, lab, node, logPath string) (*os.Process, error) {
	l, err := Launch(ns, lab, node, logPath)
	if err != nil {
		return nil, err
	}
	return l.Wait()
}

// Launched is a service process that has been started and may not be
// serving yet.
type Launched struct {
	cmd     *exec.Cmd
	ready   *os.File
	node    string
	logPath string
}

// Launch starts the service process of a lab's server node inside ns and
// returns at once; Wait waits for it to serve. A lab's bring-up launches
// its services early and does the rest of its work while they start.
func Launch(ns *namedns.NS, lab, node, logPath string) (*Launched, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{"natlab-service " + lab + "/" + node}
	cmd.Env = append(os.Environ(), envLab+"="+lab, envNode+"="+node)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{readyW}
	// Its own session: a Ctrl-C meant for the natlab that started it does
	// not reach it; natlab down stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Forked from a thread inside the node, the process starts there.
	err = namedns.Do(ns, cmd.Start)
	readyW.Close()
	if err != nil {
		readyR.Close()
		return nil, fmt.Errorf("start services of %s: %w", node, err)
	}
	go cmd.Wait() // reap it if it dies while we still run
	return &Launched{cmd: cmd, ready: readyR, node: node, logPath: logPath}, nil
}

// Wait returns the process once it says it is serving, or an error (and
// the process killed) if it fails or says nothing within StartTimeout.
func (l *Launched) Wait() (*os.Process, error) {
	defer l.ready.Close()
	l.ready.SetReadDeadline(time.Now().Add(StartTimeout))
	line, err := bufio.NewReader(l.ready).ReadString('\n')
	if line == "ready\n" {
		return l.cmd.Process, nil
	}
	l.cmd.Process.Kill()
	msg := strings.TrimSpace(strings.TrimPrefix(line, "error "))
	if msg == "" {
		msg = fmt.Sprintf("it exited or hung without saying why (%v); see %s", err, l.logPath)
	}
	return nil, fmt.Errorf("services of %s did not start: %s", l.node, msg)
}

// serve is the service process: it reads the lab's record, serves the
// node's services, and exits on SIGTERM or SIGINT.
func serve(lab, node string) int {
	ready := os.NewFile(readyFD, "ready")
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "natlab service %s/%s: %v\n", lab, node, err)
		if ready != nil {
			fmt.Fprintf(ready, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return 1
	}
	st, err := labstate.Load(lab)
	if err != nil {
		return fail(err)
	}
	topo, err := st.Topology()
	if err != nil {
		return fail(err)
	}
	n := topo.Node(node)
	if n == nil || !PlanFor(n).Any() {
		return fail(fmt.Errorf("no node %s with services in lab %s", node, lab))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	err = Run(ctx, n, st.TURN, logf, func() {
		fmt.Fprintln(ready, "ready")
		ready.Close()
		ready = nil
	})
	if err != nil {
		return fail(err)
	}
	logf("stopped")
	return 0
}
