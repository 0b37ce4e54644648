package peer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The failures a peer reports without a network: the lab's tests see
// them as the peer's stderr, so they must say what went wrong.
func TestRunFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no role", Config{}, `role ""`},
		{"input closed before the offer", Config{Role: Answer, Timeout: 5 * time.Second}, "input closed before the other's description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tc.cfg, strings.NewReader(""), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error saying %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("Run wrote %q before failing", out.String())
			}
		})
	}
}

func TestResultDirect(t *testing.T) {
	for _, tc := range []struct {
		local, remote string
		direct        bool
	}{
		{"host", "prflx", true},
		{"srflx", "srflx", true},
		{"host", "relay", false},
		{"relay", "prflx", false},
	} {
		r := Result{Local: Candidate{Type: tc.local}, Remote: Candidate{Type: tc.remote}}
		if r.Direct() != tc.direct {
			t.Errorf("%s-%s: Direct() = %v, want %v", tc.local, tc.remote, r.Direct(), tc.direct)
		}
	}
}
