package topology

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLen is the longest lab or node name. Names become network
// namespace names (natlab-LAB-NODE) and parts of interface names, which the
// kernel keeps short.
const MaxNameLen = 32

// nameRule says what validName accepts, for messages.
const nameRule = "a name is 1 to 32 characters of a-z, 0-9 and -, starting and ending with a letter or digit"

// validName reports whether s matches ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ and
// is at most MaxNameLen bytes long.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ErrBadName is the error of a name that cannot name a lab or a node.
var ErrBadName = errors.New("invalid name")

// CheckLabName returns nil if name may name a lab, and otherwise an error
// (ErrBadName) that says what a name may be. Lab names become parts of
// paths (/run/natlab/LAB.json) and of namespace names, so everything that
// takes one from a user checks it before it touches the file system.
func CheckLabName(name string) error {
	if !validName(name) {
		return fmt.Errorf("lab name %q is not valid: %s: %w", name, nameRule, ErrBadName)
	}
	return nil
}

// maxListed is how many names a message lists before it says "and N more":
// a lab may have thousands.
const maxListed = 10

// listNames formats names, which the caller has sorted, for a message the
// way accepted keys are listed: "a, b, c".
func listNames(names []string) string {
	if len(names) > maxListed {
		return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(", and %d more", len(names)-maxListed)
	}
	return strings.Join(names, ", ")
}
