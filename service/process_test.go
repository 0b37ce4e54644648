package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/service"
)

// A program that does not hand its service processes to serve.Main, as a
// test binary without labtest.Main in its TestMain (this one), gets a
// Wait that says what is missing; and the process it started runs nothing
// of the program, not this test binary's tests again, which would launch
// more of themselves.
func TestWaitSaysTheEntryPointIsMissing(t *testing.T) {
	if _, _, ok := service.Assigned(); ok {
		// Should the process run the tests after all, it must not recurse.
		t.Skip("in the service process the test launched")
	}
	ns, _ := testutil.NewNS(t, "svc")
	logPath := filepath.Join(t.TempDir(), "srv.log")
	l, err := service.Launch(ns, "nolab", "srv", logPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Wait()
	if err == nil {
		p.Kill()
		t.Fatal("Wait returned a serving process from a binary that cannot serve")
	}
	if !strings.Contains(err.Error(), "labtest.Main") || !strings.Contains(err.Error(), "serve.Main") {
		t.Errorf("Wait: %v; want it to say the program must call serve.Main (labtest.Main in a test)", err)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "no tests to run") {
		t.Errorf("the service process ran tests; its output:\n%s", log)
	}
}
