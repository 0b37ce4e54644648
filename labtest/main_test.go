package labtest

import "testing"

// The services of the labs these tests bring up run in this test binary,
// started again inside their nodes.
func TestMain(m *testing.M) { Main(m) }
