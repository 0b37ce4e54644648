//go:build !race

package testutil

// Race says the test binary was built with the race detector (race.go).
const Race = false
