package cli_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/internal/testutil"
)

// kernelLog reads the kernel's log from where it ended when it was opened.
type kernelLog struct{ fd int }

// openKernelLog opens /dev/kmsg at its end, or skips the test.
func openKernelLog(t *testing.T) *kernelLog {
	t.Helper()
	// Not os.Open: the runtime would wait on the device instead of
	// returning EAGAIN once the log is read.
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("cannot read the kernel's log: /dev/kmsg: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		t.Skipf("cannot read the kernel's log: seek to the end of /dev/kmsg: %v", err)
	}
	return &kernelLog{fd}
}

// messages returns what the kernel logged since the last call, one
// message each.
func (k *kernelLog) messages(t *testing.T) []string {
	t.Helper()
	var msgs []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(k.fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return msgs
		case errors.Is(err, unix.EPIPE):
			// Records were overwritten before they were read; read on.
			continue
		case err != nil:
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		// "PRIORITY,SEQUENCE,TIME,FLAGS;MESSAGE\n" and continuation lines.
		rec := string(buf[:n])
		if _, msg, ok := strings.Cut(rec, ";"); ok {
			rec = msg
		}
		msgs = append(msgs, strings.TrimSpace(strings.SplitN(rec, "\n", 2)[0]))
	}
}

// natlab talks to the kernel in well-formed netlink messages: bringing a
// lab up, tracing a NAT, reading its table and taking the lab down log
// nothing like "netlink: 'natlab': attribute type 3 has an invalid
// length.", which the kernel writes for each attribute of the wrong size
// that it accepts anyway (each ct direction of a NAT's table, 8 per NAT,
// before natlab sent them as one byte).
func TestNoNetlinkWarnings(t *testing.T) {
	testutil.RequireRoot(t)
	klog := openKernelLog(t)
	name := testutil.UniqueName(t)
	file := filepath.Join(t.TempDir(), "nats.yaml")
	os.WriteFile(file, []byte(`nodes:
  stun:  {kind: server, services: [stun]}
  nat-a: {kind: nat, type: symmetric}
  nat-b: {kind: nat, type: full-cone, port-mapping: nat-pmp, forward: [{proto: udp, port: 5000, to: bob}]}
  nat-c: {kind: nat, type: address-restricted-cone}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`), 0o644)
	t.Cleanup(func() { run(t, "down", name) })
	for _, args := range [][]string{
		{"up", file, "--name", name},
		{"trace", name, "nat-b", "--duration", "200ms"},
		{"table", name, "nat-b"},
		{"down", name},
	} {
		if r := run(t, args...); r.code != 0 {
			t.Fatalf("natlab %s: exit %d\n%s%s", args[0], r.code, r.stdout, r.stderr)
		}
		suppressed := 0
		for _, msg := range klog.messages(t) {
			if strings.HasPrefix(msg, "netlink: 'natlab'") {
				t.Errorf("natlab %s: the kernel logged %q", args[0], msg)
			}
			if strings.Contains(msg, "callbacks suppressed") {
				suppressed++
			}
		}
		if suppressed > 0 {
			// Warnings are rate limited machine-wide: other programs'
			// may have hidden natlab's.
			t.Logf("natlab %s: the kernel suppressed warnings %d times meanwhile", args[0], suppressed)
		}
	}
}
