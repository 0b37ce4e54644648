// Package turnserver is the TURN relay natlab runs on server nodes (RFC
// 8656, with pion/turn): long-term credentials, relay addresses on the
// server's internet address, and quotas so one client cannot take the
// relay over.
package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

// Relay ports are taken from the dynamic range.
const (
	RelayMinPort = 49152
	RelayMaxPort = 65535
)

// Config describes one TURN server.
type Config struct {
	// UDP serves TURN over UDP; it may be shared with the STUN server
	// (see SharedConn).
	UDP net.PacketConn
	// TCP, if not nil, serves TURN over TCP as well.
	TCP net.Listener
	// RelayAddress is the address relayed traffic leaves from.
	RelayAddress netip.Addr
	Realm        string
	User         string
	Password     string
	// MaxAllocations caps the allocations of the whole server and
	// MaxPerClient those of one client address (0: the defaults).
	MaxAllocations, MaxPerClient int
	// Logf reports refusals; it may be nil.
	Logf func(format string, args ...any)
}

// Quota defaults: plenty for a lab, little enough that a runaway client
// meets a 486 (Allocation Quota Reached) long before it exhausts ports.
const (
	DefaultMaxAllocations = 1000
	DefaultMaxPerClient   = 50
)

// Server is a running TURN server.
type Server struct {
	turn *turn.Server

	// Quota accounting. The quota check and the allocation happen apart,
	// so an admitted request holds a reservation until its allocation is
	// made (or, if it fails, until the reservation expires); parallel
	// requests cannot slip past the limit together.
	mu       sync.Mutex
	total    int
	byClient map[string]int
	reserved []reservation
}

type reservation struct {
	client string
	at     time.Time
}

// reservationTTL is how long an admitted allocation request may take.
const reservationTTL = 5 * time.Second

// admit checks the quotas for a new allocation from client and reserves
// a place; s.mu is held.
func (s *Server) admit(client string, max, maxPerClient int) bool {
	now := time.Now()
	live := s.reserved[:0]
	for _, r := range s.reserved {
		if now.Sub(r.at) < reservationTTL {
			live = append(live, r)
		}
	}
	s.reserved = live
	mine := s.byClient[client]
	for _, r := range s.reserved {
		if r.client == client {
			mine++
		}
	}
	if s.total+len(s.reserved) >= max || mine >= maxPerClient {
		return false
	}
	s.reserved = append(s.reserved, reservation{client, now})
	return true
}

// created turns client's oldest reservation into an allocation.
func (s *Server) created(client string) {
	for i, r := range s.reserved {
		if r.client == client {
			s.reserved = append(s.reserved[:i], s.reserved[i+1:]...)
			break
		}
	}
	s.total++
	s.byClient[client]++
}

// Start serves TURN until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.User == "" || cfg.Password == "" || cfg.Realm == "" {
		return nil, errors.New("turn: user, password and realm are required")
	}
	if !cfg.RelayAddress.Is4() {
		return nil, fmt.Errorf("turn: relay address %v is not IPv4", cfg.RelayAddress)
	}
	if cfg.MaxAllocations == 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.MaxPerClient == 0 {
		cfg.MaxPerClient = DefaultMaxPerClient
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{byClient: map[string]int{}}
	key := turn.GenerateAuthKey(cfg.User, cfg.Realm, cfg.Password)
	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorPortRange{
			RelayAddress: cfg.RelayAddress.AsSlice(),
			Address:      cfg.RelayAddress.String(),
			MinPort:      RelayMinPort,
			MaxPort:      RelayMaxPort,
		}
	}
	sc := turn.ServerConfig{
		Realm: cfg.Realm,
		AuthHandler: func(user, realm string, src net.Addr) ([]byte, bool) {
			if user != cfg.User || realm != cfg.Realm {
				logf("turn: refused user %q from %v", user, src)
				return nil, false
			}
			return key, true
		},
		QuotaHandler: func(_, _ string, src net.Addr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			ok := s.admit(clientIP(src), cfg.MaxAllocations, cfg.MaxPerClient)
			if !ok {
				logf("turn: allocation quota reached for %v (%d in all, %d for this client)", src, s.total, s.byClient[clientIP(src)])
			}
			return ok
		},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, _, _ string, _ net.Addr, _ int) {
				s.mu.Lock()
				s.created(clientIP(src))
				s.mu.Unlock()
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, _, _ string) {
				s.mu.Lock()
				s.total--
				if s.byClient[clientIP(src)]--; s.byClient[clientIP(src)] <= 0 {
					delete(s.byClient, clientIP(src))
				}
				s.mu.Unlock()
			},
		},
		LoggerFactory: quietLogger{},
	}
	if cfg.UDP != nil {
		sc.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: cfg.UDP, RelayAddressGenerator: relay()}}
	}
	if cfg.TCP != nil {
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: cfg.TCP, RelayAddressGenerator: relay()}}
	}
	ts, err := turn.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.turn = ts
	return s, nil
}

// Allocations returns how many allocations are active.
func (s *Server) Allocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops the server and closes its sockets.
func (s *Server) Close() error { return s.turn.Close() }

func clientIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP.String()
	case *net.TCPAddr:
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(a.String())
	return host
}

// quietLogger keeps pion's own logging out of natlab's output; refusals
// that matter are reported through Config.Logf.
type quietLogger struct{}

func (quietLogger) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}
