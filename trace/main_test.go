package trace_test

import (
	"testing"

	"github.com/natlab/natlab/labtest"
)

// The services of the labs these tests bring up run in this test binary,
// started again inside their nodes.
func TestMain(m *testing.M) { labtest.Main(m) }
