package service

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/natlab/natlab/internal/namedns"
)

// The environment of a service process.
const (
	envLab  = "NATLAB_SERVICE_LAB"
	envNode = "NATLAB_SERVICE_NODE"
	// envRole says what the process is when it is not a node's services:
	// roleDelayLine for a lab's delay line.
	envRole = "NATLAB_SERVICE_ROLE"
)

// roleDelayLine is the role of the process that holds a lab's delay line
// (package linkshape): one per lab, for every shaped link.
const roleDelayLine = "delay-line"

// readyFD is the descriptor a service process reports readiness on.
const readyFD = 3

// noTests is passed to the service process of a test binary, for the case
// where it does not hand the process to serve.Main: without labtest.Main
// in its TestMain, it would run its whole suite again inside the node,
// bringing up labs that launch more of themselves. With it, such a binary
// runs no test and exits, and Wait says what is missing. serve.Main reads
// no arguments; other programs do not get it, so that ps shows their
// service processes as just "natlab-service LAB/NODE".
const noTests = "-test.run=^$"

// StartTimeout bounds how long Start waits for a service to be ready.
const StartTimeout = 10 * time.Second

// Assigned reports the lab and node this process was launched to serve;
// ok is false in any process Launch or LaunchDelayLine did not start. The
// node is "" in the process of a lab's delay line.
func Assigned() (lab, node string, ok bool) {
	lab = os.Getenv(envLab)
	return lab, os.Getenv(envNode), lab != ""
}

// DelayLineAssigned reports the lab whose delay line this process was
// launched to hold (LaunchDelayLine).
func DelayLineAssigned() (lab string, ok bool) {
	lab = os.Getenv(envLab)
	return lab, lab != "" && os.Getenv(envRole) == roleDelayLine
}

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
	what    string
	logPath string
}

// Launch starts the service process of a lab's server node inside ns and
// returns at once; Wait waits for it to serve. A lab's bring-up launches
// its services early and does the rest of its work while they start.
//
// The process is this program's own executable, which must call
// serve.Main when serve.IsServiceProcess says it is one.
func Launch(ns *namedns.NS, lab, node, logPath string) (*Launched, error) {
	return launch(ns, "natlab-service "+lab+"/"+node, []string{envLab + "=" + lab, envNode + "=" + node}, "services of "+node, logPath)
}

// LaunchDelayLine starts the process that holds lab's delay line inside
// ns (the lab's internet namespace, so that natlab down stops it with
// the rest) and returns at once; Wait waits until its queues are bound.
// Like a node's services it is this program's own executable, which hands
// it to serve.Main.
func LaunchDelayLine(ns *namedns.NS, lab, logPath string) (*Launched, error) {
	return launch(ns, "natlab-delay-line "+lab, []string{envLab + "=" + lab, envRole + "=" + roleDelayLine}, "the delay line", logPath)
}

// launch starts this program again inside ns, named name, with env added
// to its environment; what names it in messages.
func launch(ns *namedns.NS, name string, env []string, what, logPath string) (*Launched, error) {
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
	cmd.Args = []string{name}
	// The testing package defines the flag in a test binary only, before
	// TestMain runs.
	if flag.Lookup("test.run") != nil {
		cmd.Args = append(cmd.Args, noTests)
	}
	cmd.Env = append(os.Environ(), env...)
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
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	go cmd.Wait() // reap it if it dies while we still run
	return &Launched{cmd: cmd, ready: readyR, what: what, logPath: logPath}, nil
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
	switch {
	case msg != "":
	case errors.Is(err, io.EOF):
		msg = fmt.Sprintf("it exited without saying why (see %s): it crashed, or its program does not hand service processes to serve.Main "+
			"(a test binary needs func TestMain(m *testing.M) { labtest.Main(m) })", l.logPath)
	default:
		msg = fmt.Sprintf("it said nothing within %v (%v); see %s", StartTimeout, err, l.logPath)
	}
	return nil, fmt.Errorf("%s did not start: %s", l.what, msg)
}

// Reporter is a service process's side of Wait: it tells the process
// that launched it, once, whether the services serve.
type Reporter struct{ f *os.File }

// NewReporter returns the reporter of this service process. Call it once:
// the descriptor it reports on is closed after the first report.
func NewReporter() *Reporter { return &Reporter{os.NewFile(readyFD, "ready")} }

// Ready says every socket is open.
func (r *Reporter) Ready() { r.report("ready") }

// Fail says the services could not start, and why; after Ready it does
// nothing.
func (r *Reporter) Fail(err error) {
	r.report("error " + strings.ReplaceAll(err.Error(), "\n", "; "))
}

func (r *Reporter) report(line string) {
	if r.f == nil {
		return
	}
	fmt.Fprintln(r.f, line)
	r.f.Close()
	r.f = nil
}
