package labtest

import (
	"os"
	"testing"

	"github.com/natlab/natlab/service/serve"
)

// Main is the TestMain of a test binary whose labs run services: a
// server's services, and a NAT's NAT-PMP, are served by the test binary
// itself, started again inside the node, and Main is where that process
// serves instead of running the tests. Otherwise it runs them and exits
// with their code:
//
//	func TestMain(m *testing.M) { labtest.Main(m) }
//
// Without it, such a lab's Up fails, saying that the services did not
// start; labs without services need no TestMain.
func Main(m *testing.M) {
	if serve.IsServiceProcess() {
		os.Exit(serve.Main())
	}
	os.Exit(m.Run())
}
