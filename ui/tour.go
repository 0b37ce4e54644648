package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/natlab/natlab/graph"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/tour"
)

// Tour serves the story as a guided web page: the seven acts in order,
// each a page with its narrative and its own lab, brought up from the
// act's scenario when the reader enters the act and taken down when they
// leave it or the tour stops. One act's lab is up at a time; the page of
// an act and the full control panel ("free play", /play) both show it,
// through the Server of that lab.
type Tour struct {
	token  string
	hosts  map[string]bool
	prefix string
	// moving is held while an act's lab comes up or goes down, so that
	// two pages asking for two acts take turns.
	moving sync.Mutex
	mu     sync.Mutex
	act    int // the act entered, an index of chapters; -1 for none
	lab    string
	srv    *Server
	// life ends when the tour stops serving: a lab coming up then is
	// stopped, and removed.
	life      context.Context
	end       context.CancelFunc
	closeOnce sync.Once
}

// TourConfig is what a Tour serves: the token and Hosts as a Server's.
type TourConfig struct {
	Token string
	Hosts []string
	// Prefix begins the names of the acts' labs; empty is tour.Prefix
	// ("tour-": tour-1-address-problem).
	Prefix string
}

// tourSizes are the picture's boxes in the tour: narrower than the
// panel's, so that five hosts side by side fit beside the narrative with
// their names 14px or more at 1400x900.
var tourSizes = graph.Sizes{BoxW: 172, BoxH: 92, GapX: 16, GapY: 96, Margin: 12, MaxWidth: 1100}

// NewTour makes a tour with no act entered.
func NewTour(cfg TourConfig) *Tour {
	life, end := context.WithCancel(context.Background())
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = tour.Prefix
	}
	return &Tour{token: newToken(cfg.Token), hosts: hostSet(cfg.Hosts), prefix: prefix, act: -1, life: life, end: end}
}

// Token is what requests must carry.
func (t *Tour) Token() string { return t.token }

// Lab is the lab of the act entered, "" when none is.
func (t *Tour) Lab() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lab
}

// Enter takes the lab of the act entered down, if any, and brings act i's
// up (i counts from 0; -1 enters none). ctx bounds the bring-up: stopped,
// it removes what it built. Act i entered already is left as it is.
func (t *Tour) Enter(ctx context.Context, i int) error {
	return t.enter(ctx, i, false)
}

// Restart is Enter, but act i entered already is taken down and brought
// up afresh: its prompts start again from the first, on a lab as its
// scenario makes it.
func (t *Tour) Restart(ctx context.Context, i int) error {
	return t.enter(ctx, i, true)
}

func (t *Tour) enter(ctx context.Context, i int, fresh bool) error {
	if i < -1 || i >= len(chapters) {
		return badRequest("act %d: the tour has acts 1 to %d", i+1, len(chapters))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.life, cancel)()
	t.moving.Lock()
	defer t.moving.Unlock()
	t.mu.Lock()
	same := i >= 0 && t.act == i && !fresh
	t.mu.Unlock()
	if same {
		// Entered already, from another page: its lab goes on.
		return nil
	}
	if err := t.leave(); err != nil {
		return err
	}
	if i < 0 || t.life.Err() != nil {
		return t.life.Err()
	}
	ch := chapters[i]
	topo, data, err := tour.Load(ch.Scenario)
	if err != nil {
		return err
	}
	st, _, err := tour.Up(ctx, t.prefix, ch.Scenario, topo, data)
	if err != nil {
		return fmt.Errorf("act %s: bring its lab up: %w", ch.Number, err)
	}
	srv, err := New(ctx, Config{Lab: st.Name, Token: t.token})
	if err != nil {
		_, derr := lab.Down(context.Background(), st.Name, nil)
		return errors.Join(fmt.Errorf("act %s: watch lab %s: %w", ch.Number, st.Name, err), derr)
	}
	srv.sizes = tourSizes
	t.mu.Lock()
	t.act, t.lab, t.srv = i, st.Name, srv
	t.mu.Unlock()
	return nil
}

// leave closes the server of the act entered and takes its lab down;
// moving is held.
func (t *Tour) leave() error {
	t.mu.Lock()
	srv, name := t.srv, t.lab
	t.act, t.lab, t.srv = -1, "", nil
	t.mu.Unlock()
	if srv == nil {
		return nil
	}
	srv.Close()
	if _, err := lab.Down(context.Background(), name, nil); err != nil {
		return fmt.Errorf("take lab %s down: %w", name, err)
	}
	return nil
}

// Close stops any bring-up, closes the act's server and takes its lab
// down; it returns once they are gone.
func (t *Tour) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.end()
		t.moving.Lock()
		defer t.moving.Unlock()
		err = t.leave()
	})
	return err
}

// current is the server of the act entered, or nil.
func (t *Tour) current() *Server {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.srv
}

// Handler serves the tour's page, the full control panel at /play, and
// the API: the tour's at /api/tour, the lab's (as a Server's) for the act
// entered.
func (t *Tour) Handler() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.HandleFunc("GET /favicon.ico", serveFavicon)
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			http.ServeFileFS(w, r, files, name)
		}
	}
	mux.HandleFunc("GET /{$}", page("tour.html"))
	mux.HandleFunc("GET /play", page("index.html"))
	mux.HandleFunc("GET /api/tour", authorize(t.token, false, t.serveTour))
	mux.HandleFunc("POST /api/tour", authorize(t.token, true, t.serveEnter))
	lab := func(w http.ResponseWriter, r *http.Request) {
		srv := t.current()
		if srv == nil {
			httpError(w, http.StatusConflict, "no act is entered: its lab comes up when you open the act")
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}
	mux.HandleFunc("GET /api/state", lab)
	mux.HandleFunc("GET /api/events", lab)
	mux.HandleFunc("POST /api/actions", lab)
	return guard(t.hosts, mux)
}

// tourView is what GET /api/tour answers: the acts and the one entered.
type tourView struct {
	Acts []chapter `json:"acts"`
	// Act is the index of the act entered, -1 for none.
	Act int    `json:"act"`
	Lab string `json:"lab"`
}

func (t *Tour) view() tourView {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tourView{Acts: chapters, Act: t.act, Lab: t.lab}
}

func (t *Tour) serveTour(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, t.view())
}

// serveEnter enters the act of {"act": N} (N from 0; -1 leaves it);
// with "fresh": true, an act entered already starts again on a new lab.
func (t *Tour) serveEnter(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Act   *int `json:"act"`
		Fresh bool `json:"fresh"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Act == nil {
		httpError(w, http.StatusBadRequest, `want {"act": N}, N the act's index from 0, or -1 to leave it`)
		return
	}
	if err := t.enter(r.Context(), *req.Act, req.Fresh); err != nil {
		var re *requestError
		if errors.As(err, &re) {
			httpError(w, re.code, re.msg)
			return
		}
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, t.view())
}

// Serve serves the tour on l until ctx ends, then shuts down; the lab of
// the act entered stays up until Close.
func (t *Tour) Serve(ctx context.Context, l net.Listener) error {
	dropped := func() {
		if s := t.current(); s != nil {
			s.hub.dropAll()
		}
	}
	stop := func() {
		// A lab coming up stops, and an action ends: nobody is watching.
		t.end()
		if s := t.current(); s != nil {
			s.cancel()
		}
	}
	return serveHTTP(ctx, l, t.Handler(), dropped, stop)
}

// serveFavicon is the page's icon: a small NAT box, so that the browser
// asks for nothing that is not there.
func serveFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	data, _ := static.ReadFile("static/favicon.svg")
	w.Write(data)
}

func hostSet(hosts []string) map[string]bool {
	m := map[string]bool{}
	for _, h := range hosts {
		m[strings.ToLower(h)] = true
	}
	return m
}
