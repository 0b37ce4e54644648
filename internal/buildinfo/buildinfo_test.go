package buildinfo

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	date := func(s string) time.Time {
		d, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name                   string
		version, commit, stamp string
		bi                     *debug.BuildInfo
		want                   Info
		wantString             string
	}{
		{
			name:       "nothing known",
			want:       Info{Version: "dev"},
			wantString: "natlab dev",
		},
		{
			name:       "go build outside a checkout",
			bi:         &debug.BuildInfo{Main: debug.Module{Path: "github.com/natlab/natlab", Version: "(devel)"}},
			want:       Info{Version: "dev"},
			wantString: "natlab dev",
		},
		{
			name:       "make stamps everything",
			version:    "v1.2.0-3-gabcdef0-dirty",
			commit:     "abcdef0123456789abcdef0123456789abcdef01",
			stamp:      "2026-11-25T10:00:00Z",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("ffff", "2020-01-01T00:00:00Z", "false")},
			want:       Info{Version: "v1.2.0-3-gabcdef0-dirty", Commit: "abcdef0123456789abcdef0123456789abcdef01", Date: date("2026-11-25T10:00:00Z"), Modified: true},
			wantString: "natlab v1.2.0-3-gabcdef0-dirty (commit abcdef012345, 2026-11-25T10:00:00Z)",
		},
		{
			name:       "go install of a tag",
			bi:         &debug.BuildInfo{Main: debug.Module{Path: "github.com/natlab/natlab", Version: "v1.2.3"}},
			want:       Info{Version: "v1.2.3"},
			wantString: "natlab v1.2.3",
		},
		{
			name:       "go install @latest of an untagged commit",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125100000-0123456789ab"}},
			want:       Info{Version: "v0.0.0-20261125100000-0123456789ab", Commit: "0123456789ab", Date: date("2026-11-25T10:00:00Z")},
			wantString: "natlab v0.0.0-20261125100000-0123456789ab (commit 0123456789ab, 2026-11-25T10:00:00Z)",
		},
		{
			name:       "go build in a modified checkout",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261125100000-0123456789ab+dirty"}, Settings: vcs("0123456789abcdef0123456789abcdef01234567", "2026-11-25T10:00:00Z", "true")},
			want:       Info{Version: "v1.2.4-0.20261125100000-0123456789ab+dirty", Commit: "0123456789abcdef0123456789abcdef01234567", Date: date("2026-11-25T10:00:00Z"), Modified: true},
			wantString: "natlab v1.2.4-0.20261125100000-0123456789ab+dirty (commit 0123456789ab, 2026-11-25T10:00:00Z)",
		},
		{
			name:       "go build -buildvcs=true without a version",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123456789abcdef01234567", "2026-11-25T10:00:00Z", "true")},
			want:       Info{Version: "dev", Commit: "0123456789abcdef0123456789abcdef01234567", Date: date("2026-11-25T10:00:00Z"), Modified: true},
			wantString: "natlab dev (commit 0123456789ab, modified, 2026-11-25T10:00:00Z)",
		},
		{
			name:       "a bad stamped date is left out",
			version:    "v1.0.0",
			stamp:      "yesterday",
			want:       Info{Version: "v1.0.0"},
			wantString: "natlab v1.0.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.version, tc.commit, tc.stamp, tc.bi)
			if got != tc.want {
				t.Errorf("resolve:\n got %+v\nwant %+v", got, tc.want)
			}
			if s := got.String(); s != tc.wantString {
				t.Errorf("String:\n got %q\nwant %q", s, tc.wantString)
			}
		})
	}
}

func TestGetNamesTheToolchain(t *testing.T) {
	i := Get()
	if i.Go == "" || i.Platform == "" || i.Version == "" {
		t.Errorf("Get: %+v", i)
	}
}
