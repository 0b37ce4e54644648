package rendezvous

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func newClient(t *testing.T) (*Client, *Server) {
	s := NewServer()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &Client{HTTP: ts.Client(), Base: ts.URL}, s
}

var ep = []netip.AddrPort{netip.MustParseAddrPort("203.0.113.1:4000"), netip.MustParseAddrPort("192.168.1.2:4000")}

func TestRegisterAndFetch(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	done := make(chan Registration)
	go func() {
		reg, err := c.Fetch(ctx, "s1", "alice", 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- reg
	}()
	time.Sleep(50 * time.Millisecond) // the fetch is waiting
	if err := c.Register(ctx, "s1", "alice", ep); err != nil {
		t.Fatal(err)
	}
	reg := <-done
	if reg.Peer != "alice" || len(reg.Endpoints) != 2 || reg.Endpoints[0] != ep[0] || !reg.Observed.IsValid() {
		t.Errorf("fetched %+v", reg)
	}
	// Sessions keep peers apart.
	if _, err := c.Fetch(ctx, "s2", "alice", 0); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("alice seen from another session: %v", err)
	}
	if _, err := c.Fetch(ctx, "s1", "bob", 50*time.Millisecond); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("unregistered bob: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	c, _ := newClient(t)
	for name, tc := range map[string]struct {
		method, path, body string
		want               int
	}{
		"bad json":       {"PUT", "/v1/sessions/s/peers/a", "{", 400},
		"unknown field":  {"PUT", "/v1/sessions/s/peers/a", `{"endpoints":["1.2.3.4:5"],"x":1}`, 400},
		"no endpoints":   {"PUT", "/v1/sessions/s/peers/a", `{"endpoints":[]}`, 400},
		"bad endpoint":   {"PUT", "/v1/sessions/s/peers/a", `{"endpoints":["nope"]}`, 400},
		"bad name":       {"PUT", "/v1/sessions/s/peers/a%20b", `{"endpoints":["1.2.3.4:5"]}`, 400},
		"huge body":      {"PUT", "/v1/sessions/s/peers/a", `{"endpoints":["` + strings.Repeat("1", 5000) + `"]}`, 400},
		"bad wait":       {"GET", "/v1/sessions/s/peers/a?wait=forever", "", 400},
		"too long wait":  {"GET", "/v1/sessions/s/peers/a?wait=1h", "", 400},
		"wrong method":   {"POST", "/v1/sessions/s/peers/a", "", 405},
		"unknown path":   {"GET", "/v2", "", 404},
		"too many endps": {"PUT", "/v1/sessions/s/peers/a", `{"endpoints":[` + strings.Repeat(`"1.2.3.4:5",`, 16) + `"1.2.3.4:5"]}`, 400},
	} {
		req, _ := http.NewRequest(tc.method, c.Base+tc.path, strings.NewReader(tc.body))
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	c, s := newClient(t)
	ctx := context.Background()
	for i := 0; i < MaxPeersPerSession; i++ {
		if err := c.Register(ctx, "full", "p"+string(rune('a'+i)), ep); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Register(ctx, "full", "one-more", ep); err == nil {
		t.Error("a session took more peers than its limit")
	}
	// Sessions expire.
	s.now = func() time.Time { return time.Now().Add(SessionLifetime + time.Second) }
	if err := c.Register(ctx, "other", "a", ep); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, old := s.sessions["full"]
	s.mu.Unlock()
	if old {
		t.Error("an expired session was kept")
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("PUT", "/v1/sessions/s/peers/a", `{"endpoints":["1.2.3.4:5"]}`)
	f.Add("GET", "/v1/sessions/s/peers/a", "")
	f.Add("PUT", "/v1/sessions/../peers/%00", "{{{{")
	h := NewServer().Handler()
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil || req.URL.Query().Has("wait") {
			return // a fuzz run cannot afford long polls
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s: %d", method, path, rec.Code)
		}
	})
}
