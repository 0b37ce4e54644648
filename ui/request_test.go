package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// Requests the server refuses before it looks at the lab: the form of an
// action, the token, the Origin and the Host. None of them needs a lab.
func TestDecodeAction(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, tc := range []struct {
		name, contentType, body string
		code                    int
		msg                     string
	}{
		{"a step", "application/json", `{"step": {"send": {"from": "a", "to": "b"}}}`, 0, ""},
		{"a switch", "application/json; charset=utf-8", `{"switch": {"node": "n", "type": "symmetric"}}`, 0, ""},
		{"walk-next", "application/json", `{"walk-next": {}}`, 0, ""},
		{"no content type", "", `{"walk-next": {}}`, 415, "Content-Type: application/json"},
		{"a form", "application/x-www-form-urlencoded", `step=1`, 415, "an action is JSON"},
		{"not JSON", "application/json", `send alice`, 400, "not valid JSON"},
		{"unknown action", "application/json", `{"shell": "rm -rf /"}`, 400, `unknown field "shell"`},
		{"two actions", "application/json", `{"walk-next": {}, "switch": {"node": "n", "type": "x"}}`, 400, "exactly one of step, switch, walk and walk-next; this one has 2"},
		{"none", "application/json", `{}`, 400, "this one has 0"},
		{"two values", "application/json", `{"walk-next": {}} {"walk-next": {}}`, 400, "one action per request"},
		{"switch with a stray field", "application/json", `{"switch": {"node": "n", "type": "x", "now": true}}`, 400, `unknown field "now"`},
		{"too big", "application/json", `{"step": "` + strings.Repeat("x", maxActionBody) + `"}`, 413, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/actions", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			_, err := decodeAction(httptest.NewRecorder(), r)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			re, ok := err.(*requestError)
			if !ok || re.code != tc.code || !strings.Contains(re.msg, tc.msg) {
				t.Errorf("got %v, want a %d saying %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestGuards(t *testing.T) {
	testutil.CheckRoutines(t)
	s := &Server{token: "secret", hosts: map[string]bool{"127.0.0.1:7780": true}, hub: newHub()}
	h := s.Handler()
	for _, tc := range []struct {
		name, method, target string
		header               map[string]string
		code                 int
		msg                  string
	}{
		{"the page needs no token", "GET", "/", nil, 200, "natlab"},
		{"nor its script", "GET", "/static/app.js", nil, 200, "EventSource"},
		{"state without a token", "GET", "/api/state", nil, 401, "missing token"},
		{"events with a wrong token", "GET", "/api/events?token=guess", nil, 401, "wrong token"},
		{"an action without a token", "POST", "/api/actions", map[string]string{"Content-Type": "application/json"}, 401, "missing token"},
		{"an action with the token in the URL only", "POST", "/api/actions?token=secret", map[string]string{"Content-Type": "application/json"}, 401, "missing token"},
		{"an action with a wrong token", "POST", "/api/actions", map[string]string{"Content-Type": "application/json", TokenHeader: "guess"}, 401, "wrong token"},
		{"an action from another site", "POST", "/api/actions", map[string]string{"Content-Type": "application/json", TokenHeader: "secret", "Origin": "http://evil.example"}, 403, "cross-origin request from http://evil.example refused"},
		{"events from another site", "GET", "/api/events?token=secret", map[string]string{"Origin": "https://evil.example"}, 403, "cross-origin"},
		{"a rebound DNS name", "GET", "/", map[string]string{"Host": "evil.example:7780"}, 403, "Host evil.example:7780 is not this server's"},
		{"an action that is not JSON", "POST", "/api/actions", map[string]string{TokenHeader: "secret", "Origin": "http://127.0.0.1:7780"}, 415, "an action is JSON"},
		{"a GET on actions", "GET", "/api/actions", map[string]string{TokenHeader: "secret"}, 405, ""},
		{"an unknown path", "GET", "/api/shell", map[string]string{TokenHeader: "secret"}, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader("{}"))
			r.Host = "127.0.0.1:7780"
			for k, v := range tc.header {
				if k == "Host" {
					r.Host = v
					continue
				}
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.msg) {
				t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.target, w.Code, w.Body.String(), tc.code, tc.msg)
			}
			if w.Code == http.StatusOK && w.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("the page can be framed by other sites")
			}
		})
	}
}

func TestHub(t *testing.T) {
	testutil.CheckRoutines(t)
	h := newHub()
	fast, _ := h.subscribe()
	slow, _ := h.subscribe()
	for i := range subscriberBuffer + 1 {
		h.publish("packet", i)
		<-fast
	}
	h.publish("packet", "one more")
	if _, open := <-fast; !open {
		t.Fatal("a subscriber that keeps up was cut off")
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("the slow subscriber got %d events before it was cut off, want its buffer's %d", n, subscriberBuffer)
	}
	late, recent := h.subscribe()
	if len(recent) != recentPackets {
		t.Errorf("a late subscriber got %d recent packets, want %d", len(recent), recentPackets)
	}
	h.closeAll()
	if _, open := <-late; open {
		t.Error("closeAll left a subscription open")
	}
	after, _ := h.subscribe()
	if _, open := <-after; open {
		t.Error("a subscription after closeAll is open")
	}
}
