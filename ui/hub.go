package ui

import (
	"encoding/json"
	"sync"
)

// event is one server-sent event: its type names the SSE event, data is
// its JSON.
type event struct {
	typ  string
	data []byte
}

// hub passes every event to every watching browser. A browser that falls
// behind by a whole buffer is cut off rather than slowing the others;
// its page reconnects and starts again from a fresh snapshot.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]struct{}
	// recent are the last packets, so that a page that connects late
	// still shows what just happened.
	recent []event
	// closed is set once the server stops: later subscribers get a
	// closed channel.
	closed bool
}

const (
	subscriberBuffer = 1024
	recentPackets    = 200
)

func newHub() *hub { return &hub{subs: map[chan event]struct{}{}} }

// publish sends v, as JSON, to every subscriber.
func (h *hub) publish(typ string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Every value published is built in this package from plain
		// fields, which always encode.
		return
	}
	e := event{typ, data}
	h.mu.Lock()
	defer h.mu.Unlock()
	if typ == "packet" {
		h.recent = append(h.recent, e)
		if len(h.recent) > recentPackets {
			h.recent = h.recent[len(h.recent)-recentPackets:]
		}
	}
	for c := range h.subs {
		select {
		case c <- e:
		default:
			delete(h.subs, c)
			close(c)
		}
	}
}

// subscribe returns a channel of every event from now on, and the recent
// packets; the channel is closed when the subscriber falls behind or
// unsubscribes.
func (h *hub) subscribe() (chan event, []event) {
	c := make(chan event, subscriberBuffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return c, nil
	}
	h.subs[c] = struct{}{}
	return c, append([]event(nil), h.recent...)
}

func (h *hub) unsubscribe(c chan event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// dropAll ends every subscription so far, as when the HTTP server stops;
// pages reconnect to whichever serves next.
func (h *hub) dropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		delete(h.subs, c)
		close(c)
	}
}

// closeAll ends every subscription for good, when the Server closes.
func (h *hub) closeAll() {
	h.dropAll()
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// watchers is how many browsers are subscribed.
func (h *hub) watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
