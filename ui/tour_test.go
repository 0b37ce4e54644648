package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/ui"
)

// storyActs are the story's acts as shared/notes/story.md names them, in
// its order: the tour's titles are these.
var storyActs = []string{"The Address Problem", "The Translation Table", "The Wall", "The Mirror", "The Trick", "When It Breaks", "The Real World"}

// touring is a tour served on loopback.
type touring struct {
	tour *ui.Tour
	base string
}

func serveTour(t *testing.T) *touring {
	t.Helper()
	testutil.RequireRoot(t)
	// Labs of names of the test's own, not a terminal tour's.
	tr := ui.NewTour(ui.TourConfig{Token: token, Prefix: testutil.UniqueName(t) + "-"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() { finished <- tr.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-finished; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := tr.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &touring{tour: tr, base: "http://" + ln.Addr().String()}
}

type tourAnswer struct {
	Acts []struct {
		Number string `json:"number"`
		Title  string `json:"title"`
	} `json:"acts"`
	Act   int    `json:"act"`
	Lab   string `json:"lab"`
	Error string `json:"error"`
}

func (tr *touring) call(t *testing.T, method, body string) tourAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, tr.base+"/api/tour", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ui.TokenHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v tourAnswer
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /api/tour %s: %s %s", method, body, resp.Status, v.Error)
	}
	return v
}

// labGone fails unless lab's record and every namespace of it are gone.
func labGone(t *testing.T, name string) {
	t.Helper()
	if _, err := labstate.Load(name); !errors.Is(err, labstate.ErrNotFound) {
		t.Errorf("lab %s is still recorded (%v)", name, err)
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "natlab-"+name+"-") {
			t.Errorf("namespace %s of lab %s is left", e.Name(), name)
		}
	}
}

// Each act of the tour is named as the story names it, in the story's
// order; entering an act brings its lab up, entering the next takes it
// down, and stopping the tour takes the last one down.
func TestTourActsAndTheirLabs(t *testing.T) {
	testutil.CheckRoutines(t)
	tr := serveTour(t)
	v := tr.call(t, "GET", "")
	if v.Act != -1 || v.Lab != "" {
		t.Errorf("before any act is entered: act %d, lab %q", v.Act, v.Lab)
	}
	if len(v.Acts) != len(storyActs) {
		t.Fatalf("%d acts, want %d", len(v.Acts), len(storyActs))
	}
	romans := []string{"I", "II", "III", "IV", "V", "VI", "VII"}
	prev := ""
	for i, want := range storyActs {
		if v.Acts[i].Title != want || v.Acts[i].Number != romans[i] {
			t.Errorf("act %d is %s %q, want %s %q", i+1, v.Acts[i].Number, v.Acts[i].Title, romans[i], want)
		}
		got := tr.call(t, "POST", `{"act": `+string(rune('0'+i))+`}`)
		if got.Act != i || got.Lab == "" {
			t.Fatalf("entering act %s: act %d, lab %q", romans[i], got.Act, got.Lab)
		}
		if _, err := labstate.Load(got.Lab); err != nil {
			t.Errorf("act %s's lab %s: %v", romans[i], got.Lab, err)
		}
		if prev != "" {
			labGone(t, prev)
		}
		prev = got.Lab
	}
	// Leaving the last act takes its lab down too.
	if got := tr.call(t, "POST", `{"act": -1}`); got.Act != -1 || got.Lab != "" {
		t.Errorf("after leaving: act %d, lab %q", got.Act, got.Lab)
	}
	labGone(t, prev)
	// An act entered again is left as it is; restarted, its lab is new.
	first := tr.call(t, "POST", `{"act": 2}`).Lab
	st, err := labstate.Load(first)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.call(t, "POST", `{"act": 2}`).Lab; got != first {
		t.Errorf("entered again, act III's lab is %s, was %s", got, first)
	} else if now, err := labstate.Load(first); err != nil || now.ID != st.ID {
		t.Errorf("entered again, act III's lab was made anew (%v)", err)
	}
	again := tr.call(t, "POST", `{"act": 2, "fresh": true}`).Lab
	if now, err := labstate.Load(again); err != nil || now.ID == st.ID {
		t.Errorf("restarted, act III's lab %s is the one it had (%v)", again, err)
	}
	// Then the tour stops: nothing is left.
	if err := tr.tour.Close(); err != nil {
		t.Fatal(err)
	}
	labGone(t, again)
}
