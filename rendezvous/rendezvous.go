// Package rendezvous is the signalling service of natlab's labs: peers
// that want to connect register the endpoints they learnt (by STUN, for
// instance) under a session, and fetch each other's, waiting for the other
// to arrive. It speaks plain HTTP with JSON, so curl inside a node can use
// it too:
//
//	curl -X PUT -d '{"endpoints":["203.0.113.1:4000"]}' http://203.0.113.10:7000/v1/sessions/s1/peers/alice
//	curl 'http://203.0.113.10:7000/v1/sessions/s1/peers/bob?wait=5s'
//
// Sessions keep peers apart: a peer only ever sees the peers registered
// under the same session name.
package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits keep a misbehaving client from exhausting the service.
const (
	MaxSessions         = 1000
	MaxPeersPerSession  = 16
	MaxEndpointsPerPeer = 16
	MaxBody             = 4096
	MaxWait             = 60 * time.Second
	SessionLifetime     = 10 * time.Minute
)

// validName says whether s may name a session or a peer: 1 to 64 of
// A-Z, a-z, 0-9, '.', '_' and '-'. (A function rather than a regexp,
// which every natlab command would compile at start.)
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Registration is what a peer registers and what others fetch.
type Registration struct {
	Peer      string           `json:"peer"`
	Endpoints []netip.AddrPort `json:"endpoints"`
	// Observed is the address the registration came from, as the
	// service saw it: the peer's public TCP endpoint.
	Observed netip.AddrPort `json:"observed"`
}

type session struct {
	created time.Time
	peers   map[string]Registration
}

// Server keeps the sessions in memory.
type Server struct {
	mu       sync.Mutex
	sessions map[string]*session
	// changed is closed and replaced on every registration, waking every
	// fetch that waits.
	changed chan struct{}
	now     func() time.Time
}

// NewServer returns an empty service.
func NewServer() *Server {
	return &Server{sessions: map[string]*session{}, changed: make(chan struct{}), now: time.Now}
}

// Handler serves the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/sessions/{session}/peers/{peer}", s.register)
	mux.HandleFunc("GET /v1/sessions/{session}/peers/{peer}", s.fetch)
	return mux
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	sessionName, peer := r.PathValue("session"), r.PathValue("peer")
	if !validName(sessionName) || !validName(peer) {
		http.Error(w, "session and peer names are 1 to 64 of A-Z a-z 0-9 . _ -", http.StatusBadRequest)
		return
	}
	var body struct {
		Endpoints []netip.AddrPort `json:"endpoints"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		http.Error(w, "want {\"endpoints\": [\"ip:port\", ...]}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body.Endpoints) == 0 || len(body.Endpoints) > MaxEndpointsPerPeer {
		http.Error(w, fmt.Sprintf("want 1 to %d endpoints", MaxEndpointsPerPeer), http.StatusBadRequest)
		return
	}
	observed, _ := netip.ParseAddrPort(r.RemoteAddr)
	reg := Registration{Peer: peer, Endpoints: body.Endpoints, Observed: netip.AddrPortFrom(observed.Addr().Unmap(), observed.Port())}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	ses := s.sessions[sessionName]
	if ses == nil {
		if len(s.sessions) >= MaxSessions {
			http.Error(w, "too many sessions", http.StatusServiceUnavailable)
			return
		}
		ses = &session{created: s.now(), peers: map[string]Registration{}}
		s.sessions[sessionName] = ses
	}
	if _, ok := ses.peers[peer]; !ok && len(ses.peers) >= MaxPeersPerSession {
		http.Error(w, "too many peers in this session", http.StatusServiceUnavailable)
		return
	}
	ses.peers[peer] = reg
	close(s.changed)
	s.changed = make(chan struct{})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) fetch(w http.ResponseWriter, r *http.Request) {
	sessionName, peer := r.PathValue("session"), r.PathValue("peer")
	if !validName(sessionName) || !validName(peer) {
		http.Error(w, "session and peer names are 1 to 64 of A-Z a-z 0-9 . _ -", http.StatusBadRequest)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWait {
			http.Error(w, fmt.Sprintf("wait: want a duration up to %v", MaxWait), http.StatusBadRequest)
			return
		}
		wait = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		s.mu.Lock()
		s.expire()
		if ses := s.sessions[sessionName]; ses != nil {
			if reg, ok := ses.peers[peer]; ok {
				s.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(reg)
				return
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			http.Error(w, "peer "+peer+" has not registered", http.StatusNotFound)
			return
		}
	}
}

// expire drops old sessions; s.mu is held.
func (s *Server) expire() {
	for name, ses := range s.sessions {
		if s.now().Sub(ses.created) > SessionLifetime {
			delete(s.sessions, name)
		}
	}
}

// ErrNotRegistered means the peer did not register in time.
var ErrNotRegistered = errors.New("peer has not registered")
