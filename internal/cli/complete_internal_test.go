package cli

import (
	"io"
	"os"
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// Every command and flag the completion tables name exists: a renamed
// flag would otherwise lose its completion without a word.
func TestCompletionTables(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	commands := map[string]*cobra.Command{}
	for _, c := range root.Commands() {
		commands[c.Name()] = c
	}
	for name := range argCompletions {
		if c := commands[name]; c == nil || c.ValidArgsFunction == nil {
			t.Errorf("argCompletions: no command %q, or its completion was not set", name)
		}
	}
	for name, flags := range flagCompletions {
		for flag := range flags {
			if c := commands[name]; c == nil || c.Flags().Lookup(flag) == nil {
				t.Errorf("flagCompletions: natlab %s has no --%s", name, flag)
			} else if _, ok := c.GetFlagCompletionFunc(flag); !ok {
				t.Errorf("flagCompletions: --%s of natlab %s was not registered", flag, name)
			}
		}
	}
	for name, flags := range nonPathFlags {
		for _, flag := range flags {
			c := commands[name]
			if c == nil || c.Flags().Lookup(flag) == nil {
				t.Errorf("nonPathFlags: natlab %s has no --%s", name, flag)
			} else if _, ok := c.GetFlagCompletionFunc(flag); !ok {
				t.Errorf("nonPathFlags: --%s of natlab %s still completes files", flag, name)
			}
		}
	}
	// Every command that takes arguments completes them.
	for _, c := range root.Commands() {
		if c.Args == nil || c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		takesArgs := c.Args(c, []string{"x"}) == nil || c.Args(c, []string{"x", "y"}) == nil
		if takesArgs && c.ValidArgsFunction == nil {
			t.Errorf("natlab %s takes arguments but does not complete them", c.Name())
		}
	}
}

func TestNatTypesFlag(t *testing.T) {
	for _, tc := range []struct {
		toComplete string
		want       []string
	}{
		{"", []string{"full-cone", "address-restricted-cone", "port-restricted-cone", "symmetric"}},
		{"s", []string{"symmetric"}},
		{"full-cone,", []string{"full-cone,address-restricted-cone", "full-cone,port-restricted-cone", "full-cone,symmetric"}},
		{"full-cone,symmetric,p", []string{"full-cone,symmetric,port-restricted-cone"}},
		{"x", nil},
	} {
		got, directive := natTypesFlag(nil, nil, tc.toComplete)
		if !slices.Equal(got, tc.want) {
			t.Errorf("--types %q: got %q, want %q", tc.toComplete, got, tc.want)
		}
		if directive&cobra.ShellCompDirectiveNoSpace == 0 {
			t.Errorf("--types %q: a comma may follow, but the shell adds a space", tc.toComplete)
		}
	}
}

func TestScenarioCompletions(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mine.yaml", "other.yml", "notes.txt", ".hidden.yaml", "act9.yaml"} {
		if err := os.WriteFile(dir+"/"+f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(dir+"/labs", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	names := func(cs []cobra.Completion) []string {
		var out []string
		for _, c := range cs {
			out = append(out, completionValue(c))
		}
		return out
	}
	for _, tc := range []struct {
		toComplete   string
		given        []string
		want, unwant []string
		directive    cobra.ShellCompDirective
	}{
		{"", nil, []string{"symmetric", "full-cone", "mine.yaml", "other.yml", "labs/"}, []string{"notes.txt", ".hidden.yaml"},
			cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace},
		{"sym", nil, []string{"symmetric"}, []string{"mine.yaml", "labs/"}, cobra.ShellCompDirectiveNoFileComp},
		{"act", nil, []string{"act1-address-problem", "act9.yaml"}, []string{"symmetric"}, cobra.ShellCompDirectiveNoFileComp},
		{"sym", []string{"symmetric"}, []string{"yaml", "yml"}, []string{"symmetric"}, cobra.ShellCompDirectiveFilterFileExt},
		{"mi", nil, []string{"yaml", "yml"}, []string{"mine.yaml"}, cobra.ShellCompDirectiveFilterFileExt},
		{"labs/", nil, []string{"yaml", "yml"}, nil, cobra.ShellCompDirectiveFilterFileExt},
		{".h", nil, []string{"yaml", "yml"}, nil, cobra.ShellCompDirectiveFilterFileExt},
	} {
		got, directive := scenarioCompletions(nil, tc.given, tc.toComplete)
		values := names(got)
		for _, w := range tc.want {
			if !slices.Contains(values, w) {
				t.Errorf("%q: %q missing from %q", tc.toComplete, w, values)
			}
		}
		for _, u := range tc.unwant {
			if slices.Contains(values, u) {
				t.Errorf("%q: %q should not be offered: %q", tc.toComplete, u, values)
			}
		}
		if directive != tc.directive {
			t.Errorf("%q: directive %d, want %d", tc.toComplete, directive, tc.directive)
		}
	}
}

// completionValue is a completion without its description.
func completionValue(c cobra.Completion) string {
	for i := range len(c) {
		if c[i] == '\t' {
			return c[:i]
		}
	}
	return c
}

// Every command's help shows examples (internal/mangen checks that each
// gets a man page).
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() || c.Name() == "help" {
			return
		}
		// A command that only groups others lists them instead.
		if c.Runnable() && c.Example == "" {
			t.Errorf("%s --help shows no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
}
