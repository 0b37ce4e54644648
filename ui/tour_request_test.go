package ui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// What the tour refuses before any lab is touched: the token, a Host not
// its own, an act it does not have, a body not of its form, and the lab's
// API before an act is entered. The page, the panel and the icon are
// served without the token. None of them needs root.
func TestTourRequests(t *testing.T) {
	testutil.CheckRoutines(t)
	tr := NewTour(TourConfig{Token: "tour-token", Hosts: []string{"127.0.0.1:7780"}})
	defer tr.Close()
	h := tr.Handler()
	for _, tc := range []struct {
		name, method, path, body, tok, host string
		code                                int
		msg                                 string
	}{
		{"the page", "GET", "/", "", "", "", 200, "natlab: the story"},
		{"free play", "GET", "/play", "", "", "", 200, `id="controls"`},
		{"the icon", "GET", "/favicon.ico", "", "", "", 200, "<svg"},
		{"the acts", "GET", "/api/tour", "", "tour-token", "", 200, `"title":"The Address Problem"`},
		{"no token", "GET", "/api/tour", "", "", "", 401, "missing token"},
		{"wrong token", "POST", "/api/tour", `{"act": 0}`, "nope", "", 401, "wrong token"},
		{"another Host", "GET", "/", "", "", "rebound.example:7780", 403, "not this server's"},
		{"no such act", "POST", "/api/tour", `{"act": 7}`, "tour-token", "", 400, "the tour has acts 1 to 7"},
		{"not an act", "POST", "/api/tour", `{"scene": 1}`, "tour-token", "", 400, "the act's index from 0"},
		{"the lab before an act", "GET", "/api/state", "", "tour-token", "", 409, "no act is entered"},
		{"an action before an act", "POST", "/api/actions", `{"walk-next": {}}`, "tour-token", "", 409, "no act is entered"},
		{"leave when in none", "POST", "/api/tour", `{"act": -1}`, "tour-token", "", 200, `"act":-1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			r.Host = "127.0.0.1:7780"
			if tc.host != "" {
				r.Host = tc.host
			}
			r.Header.Set("Content-Type", "application/json")
			if tc.tok != "" {
				r.Header.Set(TokenHeader, tc.tok)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.msg) {
				t.Errorf("%s %s: %d %.200q, want %d with %q", tc.method, tc.path, w.Code, w.Body.String(), tc.code, tc.msg)
			}
		})
	}
	if tr.Lab() != "" {
		t.Errorf("a lab is up without an act entered: %s", tr.Lab())
	}
}
