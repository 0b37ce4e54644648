// Package ui is natlab's live web view of a running lab: the topology,
// every packet crossing each NAT with its addresses before and after the
// rewrite, each NAT's translation table, the drops at the wall, and
// buttons that act on the lab for real (send, knock, STUN, a punch step
// by step, switching a NAT's type, ICE and relays, a node's link
// conditions, rebooting, renumbering and moving), each result with the
// RTT it measured. Changes made to the lab from elsewhere (natlab link in
// another terminal) are shown as they happen.
//
// The page is static and embedded; it reads /api/state once, follows
// /api/events (server-sent events), and posts actions to /api/actions.
// Everything under /api needs the server's token; actions need it in a
// header, which another site's page cannot add, and are refused from any
// other Origin. On loopback the Host header must name the server too, so
// that a DNS name rebound to 127.0.0.1 reaches nothing.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/natlab/natlab/graph"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

//go:embed static
var static embed.FS

// TokenHeader carries the token on actions.
const TokenHeader = "X-Natlab-Token"

// Config is what a Server serves.
type Config struct {
	// Lab is the running lab's name.
	Lab string
	// Token is what requests must carry; empty makes a random one.
	Token string
	// Hosts are the Host headers accepted (host:port), so that a DNS name
	// rebound to a loopback address reaches nothing; empty accepts any,
	// for a server listening on a network where its name is not known.
	Hosts []string
}

// Server serves one lab's page.
type Server struct {
	lab   string
	token string
	hosts map[string]bool
	// sizes are the picture's boxes: the panel's, or the tour's.
	sizes graph.Sizes
	hub   *hub
	watch *watcher

	// busy is held while an action runs: actions go one at a time, as
	// they would in a class.
	busy   sync.Mutex
	doing  string
	mu     sync.Mutex
	st     *labstate.State
	topo   *topology.Topology
	sess   *runner.Session
	walk   *step.PunchWalk
	walkOf string
	// walkOver mirrors walk.Over(), for readers that must not wait for
	// a walk step to end.
	walkOver bool
	// cancelAction cancels the action running now, if any.
	cancelAction context.CancelFunc
	nextID       int
	// life lives as long as the server: actions run under it, so that
	// one goes on for the other watchers when the browser that asked for
	// it goes away.
	life context.Context
	end  context.CancelFunc
	// gone is closed when the lab is taken down under the server.
	gone chan struct{}
	// labWatch is the goroutine that closes gone; Close waits for it.
	labWatch  sync.WaitGroup
	closeOnce sync.Once
}

// newToken is token, or a random one when it is empty.
func newToken(token string) string {
	if token != "" {
		return token
	}
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// labCheck is how often the server looks whether its lab is still up.
const labCheck = time.Second

// New starts watching lab cfg.Lab, which must be up. ctx bounds starting
// to watch (the traces of its NATs); the server runs until Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	st, err := labstate.Load(cfg.Lab)
	if err != nil {
		return nil, err
	}
	if !st.Complete {
		return nil, fmt.Errorf("lab %s is still being built, or its bring-up died (natlab down %s removes it)", st.Name, st.Name)
	}
	topo, err := st.Topology()
	if err != nil {
		return nil, err
	}
	life, end := context.WithCancel(context.Background())
	s := &Server{lab: st.Name, token: newToken(cfg.Token), hosts: hostSet(cfg.Hosts), sizes: pageSizes, hub: newHub(), st: st, topo: topo,
		sess: runner.New(st, topo), life: life, end: end, gone: make(chan struct{})}
	s.watch = newWatcher(ctx, st.Name, topo, s.hub)
	s.labWatch.Go(s.watchLab)
	return s, nil
}

// watchLab closes gone, and tells the pages, when the lab's record
// disappears (natlab down from another terminal). When the record says
// the lab was changed by someone else (natlab link, reboot, renumber,
// move or a run's steps in another terminal), every page is shown the lab
// as it now is.
func (s *Server) watchLab() {
	tick := time.NewTicker(labCheck)
	defer tick.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-tick.C:
		}
		st, err := labstate.Load(s.lab)
		if errors.Is(err, labstate.ErrNotFound) {
			s.hub.publish("gone", map[string]string{"lab": s.lab})
			close(s.gone)
			return
		}
		if err == nil {
			s.followChanges(st)
		}
	}
}

// followChanges refreshes the server when st, the lab's record as just
// read, holds changes the server has not seen. An action of the page's
// own refreshes when it ends: while one runs, this waits for the next
// look, so that a record read before the action cannot replace the one
// read after it. A change from outside starts a new runner session, as
// a switch does: what the session knew of the lab may no longer hold.
func (s *Server) followChanges(st *labstate.State) {
	if !s.busy.TryLock() {
		return
	}
	defer s.busy.Unlock()
	s.mu.Lock()
	seen := s.st
	s.mu.Unlock()
	if changes(st) == changes(seen) {
		return
	}
	// What a page that acts meanwhile is told is busy.
	s.mu.Lock()
	s.doing = "reading the changes made to the lab elsewhere"
	s.mu.Unlock()
	// refresh reads the record again under busy: st may have been read
	// before an action that has ended since. A record that cannot be
	// read leaves the page as it is, to be tried at the next look.
	s.refresh(true)
}

// changes is what a lab's record says was changed on the running lab,
// in a form to compare.
func changes(st *labstate.State) string {
	b, _ := json.Marshal([]any{st.NATChanges, st.Links, st.Publics, st.Moves})
	return string(b)
}

// Gone is closed when the lab is taken down while the server runs.
func (s *Server) Gone() <-chan struct{} { return s.gone }

// Token is what requests must carry.
func (s *Server) Token() string { return s.token }

// Warnings say what the page cannot show (a NAT another trace holds).
func (s *Server) Warnings() []string { return s.watch.warnings }

// Close stops watching the lab and ends every event stream; it returns
// once every goroutine the server started has ended. It leaves the lab
// up.
func (s *Server) Close() {
	s.closeOnce.Do(s.close)
}

func (s *Server) close() {
	s.end()
	s.labWatch.Wait()
	s.hub.closeAll()
	// An action still running has been cancelled; let it end before its
	// session goes.
	s.busy.Lock()
	defer s.busy.Unlock()
	s.watch.close()
	s.mu.Lock()
	if s.walk != nil {
		s.walk.Close()
	}
	s.sess.Close()
	s.mu.Unlock()
}

// Handler serves the page and the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeFileFS(w, r, files, "index.html")
	})
	mux.HandleFunc("GET /favicon.ico", serveFavicon)
	mux.HandleFunc("GET /api/state", authorize(s.token, false, s.serveState))
	mux.HandleFunc("GET /api/events", authorize(s.token, false, s.serveEvents))
	mux.HandleFunc("POST /api/actions", authorize(s.token, true, s.serveAction))
	return guard(s.hosts, mux)
}

// guard checks every request's Host against hosts (any, when empty), and
// sets headers that keep the page out of other sites' frames and scripts.
func guard(hosts map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(hosts) > 0 && !hosts[strings.ToLower(r.Host)] {
			httpError(w, http.StatusForbidden, fmt.Sprintf("Host %s is not this server's: open the URL natlab ui printed", r.Host))
			return
		}
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// authorize checks an API request's token and Origin. Actions must carry
// the token in TokenHeader; reads may carry it as ?token= too, since an
// EventSource cannot set headers.
func authorize(want string, action bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			httpError(w, http.StatusForbidden, fmt.Sprintf("cross-origin request from %s refused", o))
			return
		}
		token := r.Header.Get(TokenHeader)
		if token == "" && !action {
			token = r.URL.Query().Get("token")
		}
		if token == "" {
			httpError(w, http.StatusUnauthorized, "missing token: open the URL natlab ui printed, which carries it")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
			httpError(w, http.StatusUnauthorized, "wrong token: open the URL natlab ui printed")
			return
		}
		next(w, r)
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.state())
}

// keepalive is how often an idle event stream gets a comment, so that
// proxies and browsers keep it open and a dead one is noticed.
const keepalive = 15 * time.Second

// writeTimeout bounds one write to a page; a page that reads nothing for
// that long is cut off (and reconnects if it is still there).
const writeTimeout = 10 * time.Second

// maxWatchers bounds the pages watching at once.
const maxWatchers = 64

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		httpError(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	if s.hub.watchers() >= maxWatchers {
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d pages are watching already; close one", maxWatchers))
		return
	}
	events, recent := s.hub.subscribe()
	defer s.hub.unsubscribe(events)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// The page reconnects a second after the stream breaks, and starts
	// from the state sent first on every connection.
	fmt.Fprint(w, "retry: 1000\n\n")
	st, _ := json.Marshal(s.state())
	rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	writeEvent(w, event{"state", st})
	// What happened just before, for the page's log: not to be drawn as
	// if it happened now.
	for _, e := range recent {
		writeEvent(w, event{"replay", e.data})
	}
	flusher.Flush()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			writeEvent(w, e)
		case <-tick.C:
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			fmt.Fprint(w, ": keepalive\n\n")
		case <-r.Context().Done():
			return
		}
		if rc.Flush() != nil {
			// A page that stopped reading.
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, e event) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.typ, e.data)
}

// Serve serves the page on l until ctx ends, then shuts down.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Event streams never go idle by themselves: end them once the
	// listener is closed, and the pages reconnect to whatever serves next.
	return serveHTTP(ctx, l, s.Handler(), s.hub.dropAll, s.cancel)
}

// serveHTTP serves h on l until ctx ends; then it calls stop, and shuts
// the server down, calling dropped as it does, waiting at most a few
// seconds for the requests under way.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, dropped, stop func()) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(dropped)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shut)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
		err = nil
	}
	<-done
	return err
}

// cancel cancels the action running now, if any.
func (s *Server) cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelAction != nil {
		s.cancelAction()
	}
}

// state is everything the page draws.
func (s *Server) state() *stateView {
	s.mu.Lock()
	topo, st := s.topo, s.st
	walk := s.walkOf
	if s.walkOver {
		walk = ""
	}
	s.mu.Unlock()
	v := newStateView(st, topo, graph.Place(topo, s.sizes))
	v.Tables = s.watch.snapshot()
	v.Warnings = append(v.Warnings, s.watch.warnings...)
	v.Walk = walk
	v.Watchers = s.hub.watchers()
	return v
}
