package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/natlab/natlab/internal/namedns"
)

// mininet times Mininet building and stopping the symmetric lab's
// topology (bench/mininet_symmetric.py), reps times. Mininet makes its
// links and bridges in whatever namespace it runs in, and calls that the
// root; so it runs in a sandbox namespace of its own, which is deleted
// afterwards, and never touches the machine's. The script's times are of
// Mininet's Python API inside one process, without Python's start (about
// half a second), which favours Mininet.
func mininet(ctx context.Context, cfg config, reps int, log io.Writer) (*upDown, error) {
	if cfg.quick {
		return nil, fmt.Errorf("-quick")
	}
	if err := needMininet(cfg); err != nil {
		return nil, err
	}
	sandbox := uniqueName("mn")
	if err := namedns.Prepare(); err != nil {
		return nil, err
	}
	ns, err := namedns.Create(sandbox, nil)
	if err != nil {
		return nil, err
	}
	ns.Close()
	defer namedns.Delete(sandbox)
	script := filepath.Join(cfg.repo, "bench", "mininet_symmetric.py")
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", sandbox, "/usr/bin/python3", script, "-n", fmt.Sprint(reps), "--no-ping")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("mininet: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	t := &upDown{name: "mininet"}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var rep struct {
			Up   float64 `json:"up_s"`
			Down float64 `json:"down_s"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			return nil, fmt.Errorf("mininet: %q: %v", sc.Text(), err)
		}
		up, down := time.Duration(rep.Up*1e9), time.Duration(rep.Down*1e9)
		t.ups, t.downs, t.totals = append(t.ups, up), append(t.downs, down), append(t.totals, up+down)
	}
	if len(t.totals) != reps {
		return nil, fmt.Errorf("mininet: %d results of %d", len(t.totals), reps)
	}
	return t, nil
}

// needMininet installs Debian's mininet, without Open vSwitch (the script
// uses Linux bridges), unless told not to.
func needMininet(cfg config) error {
	if exec.Command("/usr/bin/python3", "-c", "import mininet.net").Run() == nil {
		if _, err := exec.LookPath("brctl"); err == nil {
			return nil
		}
	}
	if cfg.noInstall {
		return fmt.Errorf("mininet is not installed (-no-install)")
	}
	out, err := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", "mininet", "bridge-utils").CombinedOutput()
	if err != nil {
		return fmt.Errorf("install mininet: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
