package punch

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/natlab/natlab/rendezvous"
)

// Board is an in-process Exchange, for labs without a rendezvous service:
// natlab itself carries the endpoints from one peer to the other.
type Board struct {
	mu      sync.Mutex
	regs    map[string]rendezvous.Registration
	changed chan struct{}
}

// NewBoard returns an empty board.
func NewBoard() *Board {
	return &Board{regs: map[string]rendezvous.Registration{}, changed: make(chan struct{})}
}

// Register records peer's endpoints under session.
func (b *Board) Register(_ context.Context, session, peer string, endpoints []netip.AddrPort) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.regs[session+"/"+peer] = rendezvous.Registration{Peer: peer, Endpoints: endpoints}
	close(b.changed)
	b.changed = make(chan struct{})
	return nil
}

// Fetch waits up to wait for peer's registration under session.
func (b *Board) Fetch(ctx context.Context, session, peer string, wait time.Duration) (rendezvous.Registration, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		reg, ok := b.regs[session+"/"+peer]
		changed := b.changed
		b.mu.Unlock()
		if ok {
			return reg, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return rendezvous.Registration{}, fmt.Errorf("%s: %w within %v", peer, rendezvous.ErrNotRegistered, wait)
		case <-ctx.Done():
			return rendezvous.Registration{}, ctx.Err()
		}
	}
}
