package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is what readNewc reads back of one entry.
type cpioEntry struct {
	name         string
	mode         uint32
	rmaj, rmin   uint32
	data         string
	nlink, mtime uint32
}

// readNewc parses a newc archive as the kernel does
// (init/initramfs.c): 110-byte headers, names and data each padded to
// four bytes, up to the trailer.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("at %d: field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 || off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no header at %d", off)
		}
		e := cpioEntry{mode: field(1), nlink: field(4), mtime: field(5), rmaj: field(9), rmin: field(10)}
		size, namesize := int(field(6)), int(field(11))
		name := b[off+110 : off+110+namesize]
		if name[len(name)-1] != 0 {
			t.Fatalf("name at %d is not NUL-terminated", off)
		}
		e.name = string(name[:len(name)-1])
		off = align4(off + 110 + namesize)
		e.data = string(b[off : off+size])
		off = align4(off + size)
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

func TestInitramfs(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "prog")
	if err := os.WriteFile(host, []byte("#!/bin/sh\necho hi\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	a := newInitramfs(&buf)
	a.CharDev("dev/console", 5, 1)
	a.CopyFile("/usr/bin/prog", host)
	a.Symlink("bin/sh", "busybox")
	a.Bytes("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n"))
	a.Dir("usr/bin") // already there: not twice
	a.Bytes("a", 0o600, []byte("xyz"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readNewc(t, buf.Bytes()) {
		if e.mtime != 0 {
			t.Errorf("%s: mtime %d, want 0 so archives are reproducible", e.name, e.mtime)
		}
		got = append(got, fmt.Sprintf("%s %o %d:%d %q", e.name, e.mode, e.rmaj, e.rmin, e.data))
	}
	// Every directory comes before what is in it, and only once.
	want := []string{
		`dev 40755 0:0 ""`,
		`dev/console 20600 5:1 ""`,
		`usr 40755 0:0 ""`,
		`usr/bin 40755 0:0 ""`,
		`usr/bin/prog 100750 0:0 "#!/bin/sh\necho hi\n"`,
		`bin 40755 0:0 ""`,
		`bin/sh 120777 0:0 "busybox"`,
		`etc 40755 0:0 ""`,
		`etc/hosts 100644 0:0 "127.0.0.1 localhost\n"`,
		`a 100600 0:0 "xyz"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// GNU cpio, where installed, reads the same.
	if cpio, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command(cpio, "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cpio -t: %v\n%s", err, out)
		}
		if want := "dev\ndev/console\nusr\nusr/bin\nusr/bin/prog\nbin\nbin/sh\netc\netc/hosts\na\n"; string(out) != want {
			t.Errorf("cpio -t lists\n%s\nwant\n%s", out, want)
		}
	} else {
		t.Log("no cpio here to cross-check with")
	}
}

func TestInitramfsErrors(t *testing.T) {
	var buf bytes.Buffer
	a := newInitramfs(&buf)
	a.CopyFile("x", filepath.Join(t.TempDir(), "missing"))
	a.Bytes("y", 0o644, nil)
	if err := a.Close(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Close after a missing file: %v, want its error", err)
	}
}
