package linkshape_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// The measurements the kernel tests make, with real UDP and TCP sockets
// inside the lab's nodes. Sender and receiver are in this process and
// read one clock, so one-way delays are measured directly.

// base is the clock every packet's timestamp counts from.
var base = time.Now()

func stamp() int64 { return int64(time.Since(base)) }

// probe is a datagram: a sequence number and the time it was sent,
// padded to size.
func probe(seq uint32, size int) []byte {
	b := make([]byte, max(size, 12))
	binary.BigEndian.PutUint32(b, seq)
	binary.BigEndian.PutUint64(b[4:], uint64(stamp()))
	return b
}

func readProbe(b []byte) (seq uint32, sent time.Duration, ok bool) {
	if len(b) < 12 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b), time.Duration(binary.BigEndian.Uint64(b[4:])), true
}

// echo answers every datagram c receives with itself until the test ends.
func echo(t *testing.T, c *net.UDPConn) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	})
}

// arrival is one datagram received: its sequence number and how long it
// took.
type arrival struct {
	seq   uint32
	delay time.Duration
}

// collect reads datagrams from c until want have come, or until quiet
// passes without one once sending is closed (the sender is done): a
// machine that stalls longer than quiet while the sender is still
// sending (make vm-test's emulated one, on a busy host) does not end the
// count early.
func collect(c *net.UDPConn, want int, quiet time.Duration, sending <-chan struct{}) []arrival {
	var got []arrival
	buf := make([]byte, 2048)
	for len(got) < want {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		now := stamp()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				select {
				case <-sending:
				default:
					continue
				}
			}
			return got
		}
		if seq, sent, ok := readProbe(buf[:n]); ok {
			got = append(got, arrival{seq, time.Duration(now) - sent})
		}
	}
	return got
}

// send sends n probes of size bytes from c to to, one every interval,
// while collect runs on the receiving side; it returns what the
// receiver got.
func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, recv *net.UDPConn, n, size int, interval, quiet time.Duration) []arrival {
	t.Helper()
	var got []arrival
	var wg sync.WaitGroup
	sending := make(chan struct{})
	wg.Go(func() { got = collect(recv, 1<<30, quiet, sending) })
	next := time.Now()
	for i := range n {
		if _, err := c.WriteToUDPAddrPort(probe(uint32(i), size), to); err != nil {
			t.Errorf("send %d: %v", i, err)
			break
		}
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
	close(sending)
	wg.Wait()
	return got
}

// rtts sends n probes from c to an echo at to, one every interval, and
// returns the round-trip time of each that came back, and how many did
// not.
func rtts(t *testing.T, c *net.UDPConn, to netip.AddrPort, n int, interval, quiet time.Duration) (rtt []time.Duration, lost int) {
	t.Helper()
	back := send(t, c, to, c, n, 16, interval, quiet)
	seen := map[uint32]bool{}
	for _, a := range back {
		if !seen[a.seq] {
			seen[a.seq] = true
			rtt = append(rtt, a.delay)
		}
	}
	return rtt, n - len(seen)
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

func delays(a []arrival) []time.Duration {
	d := make([]time.Duration, len(a))
	for i, x := range a {
		d[i] = x.delay
	}
	return d
}

// within fails the test unless got is want±tol.
func within(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s is %v, want %v ± %v", what, got, want, tol)
	} else {
		t.Logf("%s is %v (want %v ± %v)", what, got, want, tol)
	}
}

// binomial fails the test unless count of n trials is within four
// standard deviations of the share p: a bound a correct link misses about
// once in 15,000 runs.
func binomial(t *testing.T, what string, count, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := sqrt(mean * (1 - p))
	lo, hi := mean-4*sd, mean+4*sd
	if float64(count) < lo || float64(count) > hi {
		t.Errorf("%s: %d of %d, want %.0f-%.0f (%.2f%% ± 4 standard deviations)", what, count, n, lo, hi, 100*p)
	} else {
		t.Logf("%s: %d of %d (want %.0f-%.0f)", what, count, n, lo, hi)
	}
}

func sqrt(x float64) float64 {
	r := x
	for range 50 {
		if r == 0 {
			return 0
		}
		r = (r + x/r) / 2
	}
	return r
}

// throughput sends TCP from c for d and returns the bits per second the
// other end read, measured there from the first byte to the last.
func throughput(t *testing.T, c net.Conn, accepted <-chan net.Conn, d time.Duration) float64 {
	t.Helper()
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no TCP connection arrived")
	}
	defer server.Close()
	var wg sync.WaitGroup
	var bits float64
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		var n int64
		var first, last time.Time
		for {
			k, err := server.Read(buf)
			if k > 0 {
				if first.IsZero() {
					first = time.Now()
				} else {
					n += int64(k)
				}
				last = time.Now()
			}
			if err != nil {
				break
			}
		}
		if el := last.Sub(first).Seconds(); el > 0 {
			bits = float64(n*8) / el
		}
	})
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.SetWriteDeadline(deadline)
		if _, err := c.Write(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("tcp write: %v", err)
			}
			break
		}
	}
	c.Close()
	wg.Wait()
	return bits
}

// accept accepts connections on l onto the channel until the test ends.
func accept(t *testing.T, l net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 4)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	})
	return ch
}
