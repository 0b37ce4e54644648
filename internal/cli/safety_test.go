package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/safety.md says each promise is proven by a test it names. Every
// name must be a test that exists, so that a renamed or deleted test
// cannot leave a promise that nothing proves.
func TestSafetyNamesTestsThatExist(t *testing.T) {
	page, err := os.ReadFile(filepath.Join(repoRoot, "docs", "safety.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bTest[A-Z][A-Za-z0-9_]*`).FindAllString(string(page), -1) {
		named[m] = true
	}
	if len(named) < 10 {
		t.Fatalf("docs/safety.md names %d tests; its promises name their tests, so the page or this reader changed", len(named))
	}
	defined := map[string]bool{}
	funcTest := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]*)\(`)
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != repoRoot || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range funcTest.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range named {
		if !defined[name] {
			t.Errorf("docs/safety.md names %s, and no test of that name exists", name)
		}
	}
}
