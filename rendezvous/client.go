package rendezvous

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// Client talks to a rendezvous service over an HTTP client whose
// connections start in the right node.
type Client struct {
	HTTP *http.Client
	Base string // e.g. http://203.0.113.10:7000
}

// Register puts peer's endpoints under session.
func (c *Client) Register(ctx context.Context, session, peer string, endpoints []netip.AddrPort) error {
	body, _ := json.Marshal(map[string]any{"endpoints": endpoints})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(session, peer, 0), bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("rendezvous: register %s: %w", peer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("rendezvous: register %s: %s: %s", peer, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Fetch returns peer's registration under session, waiting up to wait for
// it to register (in long polls of at most MaxWait each).
func (c *Client) Fetch(ctx context.Context, session, peer string, wait time.Duration) (Registration, error) {
	deadline := time.Now().Add(wait)
	for {
		slice := min(time.Until(deadline), MaxWait)
		reg, err := c.fetch(ctx, session, peer, max(slice, 0))
		if !errors.Is(err, ErrNotRegistered) || time.Until(deadline) <= 0 {
			if errors.Is(err, ErrNotRegistered) {
				err = fmt.Errorf("rendezvous: %s: %w within %v", peer, ErrNotRegistered, wait)
			}
			return reg, err
		}
	}
}

func (c *Client) fetch(ctx context.Context, session, peer string, wait time.Duration) (Registration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(session, peer, wait), nil)
	if err != nil {
		return Registration{}, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Registration{}, fmt.Errorf("rendezvous: fetch %s: %w", peer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Registration{}, ErrNotRegistered
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Registration{}, fmt.Errorf("rendezvous: fetch %s: %s: %s", peer, resp.Status, bytes.TrimSpace(msg))
	}
	var reg Registration
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBody)).Decode(&reg); err != nil {
		return Registration{}, fmt.Errorf("rendezvous: fetch %s: %w", peer, err)
	}
	return reg, nil
}

func (c *Client) url(session, peer string, wait time.Duration) string {
	u := fmt.Sprintf("%s/v1/sessions/%s/peers/%s", c.Base, url.PathEscape(session), url.PathEscape(peer))
	if wait > 0 {
		u += "?wait=" + wait.String()
	}
	return u
}
