package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeSysctl sets a sysctl of the calling thread's network namespace.
// Only called on threads inside a lab namespace.
func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// writeSysctlIfPresent sets a sysctl that only exists while a kernel
// module is loaded (br_netfilter's, for instance); without the module
// there is nothing to change.
func writeSysctlIfPresent(name, value string) error {
	err := writeSysctl(name, value)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
