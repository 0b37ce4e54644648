//go:build race

package testutil

// Race says the test binary was built with the race detector, which
// slows every goroutine several times over: natlab's delay line in
// user space, the agents and the relay too, so what they time is late.
const Race = true
