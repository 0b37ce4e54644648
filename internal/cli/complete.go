package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/natlab/natlab/graph"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tour"
)

// Shell completion: the scripts of natlab completion run
// `natlab __complete ARGS... PARTIAL` at every Tab, and the functions here
// answer from natlab's lab records (world-readable, so they work without
// sudo), the built-in scenarios and the files in the directory. They never
// talk to the kernel: a Tab must be quick and must change nothing.

// Which nodes of a lab an argument takes.
var (
	anyNode  = func(*topology.Node) bool { return true }
	natNode  = func(n *topology.Node) bool { return n.NAT != nil }
	hostNode = func(n *topology.Node) bool { return n.Kind == topology.KindHost }
	// rulesNode is a node natlab loads a table into: a nat, or a host
	// with a firewall.
	rulesNode = func(n *topology.Node) bool { return n.NAT != nil || n.Firewall != topology.FirewallNone }
)

// argCompletions completes each command's positional arguments.
var argCompletions = map[string]cobra.CompletionFunc{
	"up":       first(scenarioArg),
	"run":      unlessAll(scenarioArg), // several scenarios, or --all
	"validate": scenarioArg,
	"graph":    first(labOrScenarioArg),
	"ui":       first(labOrScenarioArg),
	"down":     first(labArg),
	"status":   labArg,
	"exec":     labThenNode(anyNode, true),
	"classify": labThenNode(hostNode, false),
	"table":    labThenNode(natNode, false),
	"trace":    labThenNode(natNode, false),
	"reboot":   labThenNode(natNode, false),
	"renumber": labThenNode(natNode, false),
	"move":     labThenHostThenNAT,
	"rules":    labOrScenarioThenNode(rulesNode),
	"link":     labThenNode(anyNode, false),
}

// nonPathFlags take a string that is no file name. Any other string flag
// without a function here completes files, cobra's default; flags of
// other types (numbers, durations) complete nothing.
var nonPathFlags = map[string][]string{
	"up":     {"name"},
	"run":    {"name", "shard"},
	"matrix": {"shard"},
	"ui":     {"name", "listen", "token"},
	"link":   linkFlagNames(),
	"reboot": {"public"},
}

// flagCompletions complete the flags whose values are known.
var flagCompletions = map[string]map[string]cobra.CompletionFunc{
	"graph":    {"format": fixed(graph.Formats...)},
	"matrix":   {"types": natTypesFlag},
	"tour":     {"act": actFlag},
	"classify": {"server": stunServerFlag},
}

// setCompletions wires the functions above into the commands, and gives
// cobra's completion command the examples every natlab command has.
func setCompletions(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		name := c.Name()
		if f, ok := argCompletions[name]; ok {
			c.ValidArgsFunction = f
		}
		// A flag in the table that the command lacks (renamed, removed)
		// only loses its completion: natlab must start regardless.
		// TestCompletionTables catches it.
		for flag, f := range flagCompletions[name] {
			_ = c.RegisterFlagCompletionFunc(flag, f)
		}
		if name == "completion" {
			setCompletionExamples(c)
		}
	}
	noFilesWhereNoneFit(root)
}

// noFilesWhereNoneFit stops cobra's fallback, file names, where natlab
// knows they make no sense: as the argument of a command that takes none,
// and as the value of a flag that is no path.
func noFilesWhereNoneFit(c *cobra.Command) {
	if c.ValidArgsFunction == nil && c.Args != nil && c.Args(c, []string{"x"}) != nil && c.Args(c, []string{"x", "y"}) != nil {
		c.ValidArgsFunction = cobra.NoFileCompletions
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := c.GetFlagCompletionFunc(f.Name); ok || f.Value.Type() == "bool" {
			return
		}
		if f.Value.Type() != "string" || slices.Contains(nonPathFlags[c.Name()], f.Name) {
			_ = c.RegisterFlagCompletionFunc(f.Name, cobra.NoFileCompletions)
		}
	})
	for _, sub := range c.Commands() {
		noFilesWhereNoneFit(sub)
	}
}

func setCompletionExamples(c *cobra.Command) {
	c.Example = `  source <(natlab completion bash)    # in ~/.bashrc
  natlab completion zsh > "${fpath[1]}/_natlab"
  natlab completion fish > ~/.config/fish/completions/natlab.fish`
	examples := map[string]string{
		"bash": `  source <(natlab completion bash)
  natlab completion bash | sudo tee /etc/bash_completion.d/natlab > /dev/null`,
		"zsh": `  source <(natlab completion zsh)
  natlab completion zsh > "${fpath[1]}/_natlab"`,
		"fish": `  natlab completion fish | source
  natlab completion fish > ~/.config/fish/completions/natlab.fish`,
		"powershell": `  natlab completion powershell | Out-String | Invoke-Expression`,
	}
	for _, sub := range c.Commands() {
		sub.Example = examples[sub.Name()]
	}
}

// first completes only a command's first argument, and none when --all
// (of down, of run) stands for the arguments.
func first(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 || allGiven(cmd) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// unlessAll completes every argument with f, none after --all.
func unlessAll(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if allGiven(cmd) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

func allGiven(cmd *cobra.Command) bool {
	all := cmd.Flags().Lookup("all")
	return all != nil && all.Changed
}

func fixed(choices ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp)
}

// labArg completes the names of the labs that are up, but not those
// already given.
func labArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return labCompletions(args, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func labCompletions(given []string, toComplete string) []cobra.Completion {
	names, _ := labstate.Names()
	var out []cobra.Completion
	for _, name := range names {
		if !strings.HasPrefix(name, toComplete) || slices.Contains(given, name) {
			continue
		}
		desc := "lab"
		if st, err := labstate.Load(name); err == nil {
			desc = "lab from " + st.Source
		}
		out = append(out, cobra.CompletionWithDesc(name, desc))
	}
	return out
}

// scenarioArg completes built-in scenario names and YAML files.
func scenarioArg(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return scenarioCompletions(nil, args, toComplete)
}

// labOrScenarioArg completes labs that are up, built-in scenario names
// and YAML files.
func labOrScenarioArg(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return scenarioCompletions(labCompletions(args, toComplete), args, toComplete)
}

// scenarioCompletions adds to names the built-in scenarios and the YAML
// files and directories in the working directory that start with
// toComplete. Where no name matches, or toComplete is a path, the shell's
// own file completion (for .yaml and .yml) does better: it knows ~, quoting
// and every directory.
func scenarioCompletions(names []cobra.Completion, given []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	fileComp := func() ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	if strings.ContainsRune(toComplete, '/') || strings.HasPrefix(toComplete, "~") {
		return fileComp()
	}
	for _, name := range scenarios.Names() {
		if strings.HasPrefix(name, toComplete) && !slices.Contains(given, name) {
			names = append(names, cobra.CompletionWithDesc(name, builtinDescription(name)))
		}
	}
	if len(names) == 0 {
		return fileComp()
	}
	directive := cobra.ShellCompDirectiveNoFileComp
	entries, _ := os.ReadDir(".")
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, toComplete) || (strings.HasPrefix(n, ".") && !strings.HasPrefix(toComplete, ".")) {
			continue
		}
		switch ext := filepath.Ext(n); {
		case e.IsDir() || (e.Type()&os.ModeSymlink != 0 && isDir(n)):
			names = append(names, n+"/")
			// A directory is a step towards a file, not an argument.
			directive |= cobra.ShellCompDirectiveNoSpace
		case ext == ".yaml" || ext == ".yml":
			names = append(names, n)
		}
	}
	return names, directive
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// builtinDescription is the first line of a built-in scenario's
// description, for shells that show one beside each name.
func builtinDescription(name string) string {
	data, path, _ := scenarios.Read(name)
	topo, err := step.Parse(path, data)
	if err != nil {
		return "built-in scenario"
	}
	desc, _, _ := strings.Cut(strings.TrimSpace(topo.Description), "\n")
	return desc
}

// labThenNode completes a lab that is up, then those of its nodes that
// keep says the command works on (and internet, the bridge's namespace,
// for exec). What follows the node is a command: the shell's default.
func labThenNode(keep func(*topology.Node) bool, internet bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return labCompletions(nil, toComplete), cobra.ShellCompDirectiveNoFileComp
		case 1:
			topo := labTopology(args[0])
			if topo == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			out := nodeCompletions(topo, keep, toComplete)
			if internet && strings.HasPrefix("internet", toComplete) {
				out = append(out, cobra.CompletionWithDesc("internet", "the bridge every node on the internet is plugged into"))
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		if cmd.Name() == "exec" {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// labOrScenarioThenNode completes what natlab rules takes: a lab, a
// built-in scenario or a file, then a node of it.
func labOrScenarioThenNode(keep func(*topology.Node) bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return labOrScenarioArg(cmd, args, toComplete)
		case 1:
			// The same order natlab rules reads its argument in.
			var topo *topology.Topology
			if st, err := labstate.Load(args[0]); err == nil {
				topo, _ = st.Topology()
			} else if sc, err := loadScenario(args[0]); err == nil {
				topo = sc.topo
			}
			if topo == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return nodeCompletions(topo, keep, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func nodeCompletions(topo *topology.Topology, keep func(*topology.Node) bool, toComplete string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range topo.Nodes {
		if keep(n) && strings.HasPrefix(n.Name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(n.Name, describeNode(n)))
		}
	}
	return out
}

func describeNode(n *topology.Node) string {
	switch {
	case n.NAT != nil:
		if n.NAT.Type != "" {
			return "nat, " + string(n.NAT.Type)
		}
		return "nat"
	case n.Behind != "":
		return string(n.Kind) + " behind " + n.Behind
	case len(n.Services) > 0:
		s := make([]string, len(n.Services))
		for i, svc := range n.Services {
			s[i] = string(svc)
		}
		return string(n.Kind) + " running " + strings.Join(s, ", ")
	}
	return string(n.Kind)
}

// natTypesFlag completes --types, a comma-separated list: the word after
// the last comma, keeping the ones before it.
func natTypesFlag(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done, partial := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done, partial = toComplete[:i+1], toComplete[i+1:]
	}
	var out []cobra.Completion
	for _, t := range nat.Types {
		if strings.HasPrefix(string(t), partial) && !slices.Contains(strings.Split(done, ","), string(t)) {
			out = append(out, done+string(t))
		}
	}
	// Another comma may follow.
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

func actFlag(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	seen := map[string]bool{}
	for _, a := range tour.Acts {
		// Act VII has several scenes; --act plays them all.
		if seen[a.Number] || !strings.HasPrefix(a.Number, strings.ToUpper(toComplete)) {
			continue
		}
		seen[a.Number] = true
		title, _, _ := strings.Cut(a.Title, ":")
		out = append(out, cobra.CompletionWithDesc(a.Number, title))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// stunServerFlag completes classify's --server: the lab's servers that
// run STUN.
func stunServerFlag(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	topo := labTopology(args[0])
	if topo == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	stun := func(n *topology.Node) bool { return slices.Contains(n.Services, topology.ServiceSTUN) }
	return nodeCompletions(topo, stun, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// labTopology is the topology of a lab that is up, or nil: a Tab on a lab
// that is gone or unreadable offers nothing rather than an error.
func labTopology(name string) *topology.Topology {
	st, err := labstate.Load(name)
	if err != nil {
		return nil
	}
	topo, err := st.Topology()
	if err != nil {
		return nil
	}
	return topo
}

// labThenHostThenNAT completes what natlab move takes: a lab, one of its
// hosts, then a NAT other than the one that host is behind.
func labThenHostThenNAT(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) < 2 {
		return labThenNode(hostNode, false)(cmd, args, toComplete)
	}
	topo := labTopology(args[0])
	if len(args) > 2 || topo == nil || topo.Node(args[1]) == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	host := topo.Node(args[1])
	other := func(n *topology.Node) bool { return n.NAT != nil && n.Name != host.Behind }
	return nodeCompletions(topo, other, toComplete), cobra.ShellCompDirectiveNoFileComp
}
