package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// initramfs writes a cpio archive in the "newc" format, the one the
// kernel unpacks into its root file system at boot
// (Documentation/driver-api/early-userspace/buffer-format.rst). Written
// here rather than by cpio(1) so that device nodes and ownership need no
// root and no staging directory: entries go straight from the host's
// files into the archive.
//
// The kernel creates no missing parent directories, so every entry's
// directories are written before it, once.
type initramfs struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// The mode bits of the entry kinds (from <sys/stat.h>).
const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func newInitramfs(w io.Writer) *initramfs {
	return &initramfs{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{"": true, ".": true, "/": true}}
}

// clean makes name relative to the archive's root, as the kernel expects.
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// Dir adds a directory and its parents.
func (a *initramfs) Dir(name string) {
	name = clean(name)
	if a.dirs[name] {
		return
	}
	a.Dir(path.Dir(name))
	a.dirs[name] = true
	a.entry(name, sIFDIR|0o755, 2, 0, 0, 0, nil)
}

// File adds a regular file with data from r, size bytes long.
func (a *initramfs) File(name string, mode os.FileMode, size int64, r io.Reader) {
	name = clean(name)
	a.Dir(path.Dir(name))
	a.entry(name, sIFREG|uint32(mode.Perm()), 1, size, 0, 0, r)
}

// Bytes adds a regular file holding data.
func (a *initramfs) Bytes(name string, mode os.FileMode, data []byte) {
	a.File(name, mode, int64(len(data)), bytes.NewReader(data))
}

// CopyFile adds the host's file src as name, with its permissions.
func (a *initramfs) CopyFile(name, src string) {
	if a.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		a.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		a.err = err
		return
	}
	a.File(name, st.Mode(), st.Size(), f)
}

// Symlink adds name pointing at target.
func (a *initramfs) Symlink(name, target string) {
	name = clean(name)
	a.Dir(path.Dir(name))
	a.entry(name, sIFLNK|0o777, 1, int64(len(target)), 0, 0, strings.NewReader(target))
}

// CharDev adds a character device node, which needs no root in an archive.
func (a *initramfs) CharDev(name string, major, minor uint32) {
	name = clean(name)
	a.Dir(path.Dir(name))
	a.entry(name, sIFCHR|0o600, 1, 0, major, minor, nil)
}

// Close writes the trailer and flushes; it returns the first error of any
// entry.
func (a *initramfs) Close() error {
	a.entry("TRAILER!!!", 0, 1, 0, 0, 0, nil)
	if a.err != nil {
		return a.err
	}
	return a.w.Flush()
}

func (a *initramfs) entry(name string, mode, nlink uint32, size int64, rmajor, rminor uint32, r io.Reader) {
	if a.err != nil {
		return
	}
	if size > 0xffffffff {
		a.err = fmt.Errorf("%s: %d bytes is more than a cpio entry holds", name, size)
		return
	}
	a.ino++
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check. Every file is
	// root's, and the mtime is 0 so the same inputs give the same archive.
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		a.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	a.write([]byte(hdr))
	a.write([]byte(name + "\x00"))
	a.pad(len(hdr) + len(name) + 1)
	if r != nil {
		n, err := io.CopyN(a.w, r, size)
		if err != nil && a.err == nil {
			a.err = fmt.Errorf("%s: %w", name, err)
			return
		}
		a.pad(int(n))
	}
}

// pad writes zeros up to the next multiple of four of n.
func (a *initramfs) pad(n int) {
	if k := (4 - n%4) % 4; k > 0 {
		a.write(make([]byte, k))
	}
}

func (a *initramfs) write(b []byte) {
	if a.err != nil {
		return
	}
	_, a.err = a.w.Write(b)
}
