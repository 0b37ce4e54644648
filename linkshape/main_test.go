package linkshape_test

import (
	"testing"

	"github.com/natlab/natlab/labtest"
)

// Labs' service processes, and the delay line's, are this test binary
// started again.
func TestMain(m *testing.M) { labtest.Main(m) }
