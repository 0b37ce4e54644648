package topology_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/topology"
)

// Files of the kernel's file systems are refused before they are read:
// their sizes say nothing and reading some blocks for ever or takes
// something from the machine (/proc/kmsg, which natlab validate used to
// wait on for ever). These are harmless to read, so the test would end
// without the check too, and fail.
func TestReadFileRefusesKernelFiles(t *testing.T) {
	tried := 0
	for _, path := range []string{"/proc/self/status", "/proc/version", "/proc/self", "/sys/kernel/uevent_seqnum", "/sys/class/net/lo/mtu"} {
		if _, err := os.Stat(path); err != nil {
			continue // not in this container
		}
		tried++
		data, err := topology.ReadFile(path)
		if err == nil || !strings.Contains(err.Error(), "the kernel's") || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want it refused as the kernel's", path, len(data), err)
		}
	}
	if tried == 0 {
		t.Skip("neither /proc nor /sys is mounted here")
	}
}

// An empty file on a file system that reports sizes reads as empty, as
// it did: only its size, 0, is believed, and nothing is read.
func TestReadFileEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := topology.ReadFile(path); err != nil || len(data) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v", data, err)
	}
	if data, err := topology.ReadFile(filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("ReadFile(a directory) = %q, %v", data, err)
	}
}
