// Package buildinfo says which natlab this is: the version, commit and
// build date that make stamps into the binary (-ldflags -X), or, for a
// binary built by plain go install or go build, what the go command
// recorded in it, so that every natlab can say where it came from.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// Set by make with -ldflags "-X github.com/natlab/natlab/internal/buildinfo.version=...";
// empty in a binary built without make.
var (
	version string
	commit  string
	date    string // RFC 3339
)

// Info describes one natlab binary.
type Info struct {
	// Version is a release tag (v1.2.3), git describe's name for a
	// commit between tags (v1.2.3-4-gabcdef0), a Go pseudo-version, or
	// "dev" when nothing better is known.
	Version string
	// Commit is the git revision the binary was built from, if known.
	Commit string
	// Date is when it was built (make) or committed (go build in a git
	// checkout, go install of a pseudo-version), if known.
	Date time.Time
	// Modified says the working tree had uncommitted changes.
	Modified bool
	Go       string
	Platform string
}

// Get returns what is known about the running binary.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	info := resolve(version, commit, date, bi)
	info.Go = runtime.Version()
	info.Platform = runtime.GOOS + "/" + runtime.GOARCH
	return info
}

// resolve prefers what make stamped, and otherwise reads the build info:
// go install module@v1.2.3 records the module version (and nothing about
// git, as it builds from the module zip), go build in a git checkout
// records vcs.revision, vcs.time and vcs.modified (and, since Go 1.24, a
// version derived from them).
func resolve(stampedVersion, stampedCommit, stampedDate string, bi *debug.BuildInfo) Info {
	info := Info{Version: stampedVersion, Commit: stampedCommit}
	if t, err := time.Parse(time.RFC3339, stampedDate); err == nil {
		info.Date = t.UTC()
	}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil && info.Date.IsZero() {
					info.Date = t.UTC()
				}
			case "vcs.modified":
				info.Modified = info.Modified || s.Value == "true"
			}
		}
	}
	// A pseudo-version (what go install ...@latest resolves to on a
	// commit without a tag) carries the commit and its time.
	v := strings.TrimSuffix(info.Version, "+dirty")
	if module.IsPseudoVersion(v) {
		if rev, err := module.PseudoVersionRev(v); err == nil && info.Commit == "" {
			info.Commit = rev
		}
		if t, err := module.PseudoVersionTime(v); err == nil && info.Date.IsZero() {
			info.Date = t.UTC()
		}
	}
	if strings.HasSuffix(info.Version, "+dirty") || strings.HasSuffix(info.Version, "-dirty") {
		info.Modified = true
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String is one line for natlab version, e.g.
// "natlab v1.2.0 (commit 0123456789ab, 2026-11-25T10:00:00Z) go1.26.8 linux/amd64".
func (i Info) String() string {
	var details []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if i.Modified && !strings.Contains(i.Version, "dirty") {
			c += ", modified"
		}
		details = append(details, "commit "+c)
	}
	if !i.Date.IsZero() {
		details = append(details, i.Date.Format(time.RFC3339))
	}
	s := "natlab " + i.Version
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	if i.Go != "" {
		s += fmt.Sprintf(" %s %s", i.Go, i.Platform)
	}
	return s
}
