package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/ui"
)

// defaultUIAddr is where natlab ui listens unless told otherwise; when
// the port is taken it takes the next free one.
const defaultUIAddr = "127.0.0.1:7780"

// minTokenLen keeps a chosen token from being guessed.
const minTokenLen = 16

// maxUIPorts is how many ports after the default natlab ui tries when the
// default is taken, before it takes any free one.
const maxUIPorts = 100

func newUICmd() *cobra.Command {
	var listen, token, name string
	var guided bool
	cmd := &cobra.Command{
		Use:   "ui [LAB|FILE|NAME]",
		Short: "A live web view of a lab: packets, rewrites, tables, drops, and buttons that act for real",
		Long: `Serve a web page that shows a running lab as the story draws it: its
devices, every packet crossing each NAT with its addresses before and after
the rewrite, each NAT's live translation table, and the packets dropped at
the wall with the reason. Buttons act on the lab for real, in the kernel:
send a packet (or a count of them, timed), knock on a NAT from outside,
ask STUN, walk a hole punch step by step, switch a NAT to another type
(its rules are replaced in place), run ICE, a TURN relay or a relay that
upgrades to a direct path, change a node's link (delay, jitter, loss,
duplicate, reorder, rate, mtu; down and up), reboot or renumber a NAT, and
move a host behind another NAT. Each result shows the RTT it measured.

LAB is a running lab. FILE or NAME (a built-in scenario) is brought up
first and taken down when natlab ui stops. With no argument, the one lab
that is up is shown; with none up, the tour.

With --tour the page tells the story in its seven acts, from The Address
Problem to The Real World: each act's page has its narrative, its prompts
one at a time, and what really happened, on a lab of its own brought up
from the act's scenario when the reader enters the act and taken down
when they leave it or natlab ui stops. Each act links to the full control
panel for its lab ("free play").

The page listens on 127.0.0.1 and needs the token in the URL natlab ui
prints, as Jupyter does; several browsers can watch at once. To show it to
a class from another machine, listen on another address (--listen
0.0.0.0:7780): then only the token guards it, and anyone who has the URL
can act on the lab. A token of your own (--token, or NATLAB_UI_TOKEN, which
ps does not show) keeps the URL the same from one start to the next.`,
		Example: `  sudo natlab ui --tour
  sudo natlab ui act5-the-trick
  sudo natlab up symmetric && sudo natlab ui symmetric
  sudo natlab ui scenarios/full-cone.yaml --listen 127.0.0.1:8080`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			addr, explicit := listen, cmd.Flags().Changed("listen")
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return usageError("--listen %q: want HOST:PORT, such as 127.0.0.1:7780", addr)
			}
			if cmd.Flags().Changed("name") {
				if err := checkLabName(name); err != nil {
					return err
				}
			}
			if token == "" {
				token = os.Getenv("NATLAB_UI_TOKEN")
			}
			if token != "" && len(token) < minTokenLen {
				return usageError("the token must have at least %d characters; leave it out for a random one", minTokenLen)
			}
			if guided && (len(a) > 0 || name != "") {
				return usageError("--tour brings up each act's own lab: give it no LAB, FILE or NAME, nor --name")
			}
			var labName string
			var sc *scenario
			if !guided {
				var err error
				labName, sc, err = uiTarget(a, name)
				if errors.Is(err, errNoLab) {
					guided = true
				} else if err != nil {
					return err
				}
			}
			if err := requireRoot(cmd); err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx := cmd.Context()
			if guided {
				return serveTour(ctx, out, errOut, addr, explicit, token)
			}
			if sc != nil {
				sc.tell(errOut)
				topo := sc.topo
				if name != "" {
					topo = renamed(topo, name)
				}
				st, err := lab.Up(ctx, topo, lab.Options{Source: sc.source, Scenario: sc.data})
				if err != nil {
					return err
				}
				labName = st.Name
				fmt.Fprintf(out, "lab %s is up: %d nodes; it goes down when natlab ui stops\n", st.Name, len(topo.Nodes))
				defer func() {
					// Said once the lab is gone, as it was said once it was
					// up; a lab taken down from elsewhere was said already.
					removed, err := lab.Down(context.Background(), st.Name, nil)
					switch {
					case err != nil:
						fmt.Fprintf(errOut, "natlab: taking lab %s down: %v\n", st.Name, err)
					case removed:
						fmt.Fprintf(out, "lab %s is down\n", st.Name)
					}
				}()
			}
			l, err := listenUI(addr, explicit)
			if err != nil {
				return err
			}
			srv, err := ui.New(ctx, ui.Config{Lab: labName, Token: token, Hosts: allowedHosts(l.Addr())})
			if err != nil {
				l.Close()
				return err
			}
			defer srv.Close()
			for _, w := range srv.Warnings() {
				fmt.Fprintf(errOut, "natlab ui: %s\n", w)
			}
			fmt.Fprintf(out, "natlab ui: lab %s at\n\n", labName)
			for _, u := range pageURLs(l.Addr(), srv.Token()) {
				fmt.Fprintf(out, "    %s\n", u)
			}
			fmt.Fprintf(out, "\nOpen that URL in a browser; Ctrl-C stops.\n")
			if !isLoopback(l.Addr()) {
				fmt.Fprintf(errOut, "natlab ui: listening beyond this machine: anyone with the URL can act on the lab\n")
			}
			serveCtx, stop := context.WithCancel(ctx)
			var gone sync.WaitGroup
			gone.Go(func() {
				select {
				case <-srv.Gone():
					fmt.Fprintf(errOut, "natlab ui: lab %s was taken down\n", labName)
					stop()
				case <-serveCtx.Done():
				}
			})
			err = srv.Serve(serveCtx, l)
			stop()
			gone.Wait()
			select {
			case <-srv.Gone():
				return fmt.Errorf("lab %s was taken down while natlab ui showed it", labName)
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", defaultUIAddr, "address to serve the page on (HOST:PORT)")
	cmd.Flags().StringVar(&token, "token", "", "the token the page needs, 16 characters or more (default: $NATLAB_UI_TOKEN, else a random one)")
	cmd.Flags().StringVar(&name, "name", "", "with FILE or NAME: bring the lab up under this name")
	cmd.Flags().BoolVar(&guided, "tour", false, "the story's seven acts as a guided page, each on a lab of its own")
	return cmd
}

// listenUI listens on addr. When addr is not one the user asked for and
// its port is taken (by another natlab ui, say), it takes the next free
// port after it, so that a second page is at 7781, or any free port if
// the next maxUIPorts are all taken.
func listenUI(addr string, explicit bool) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil && !explicit && errors.Is(err, syscall.EADDRINUSE) {
		host, portText, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portText)
		for next := port + 1; next <= min(port+maxUIPorts, 65535) && errors.Is(err, syscall.EADDRINUSE); next++ {
			l, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(next)))
		}
		if err != nil && errors.Is(err, syscall.EADDRINUSE) {
			l, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// errNoLab is uiTarget's answer to no argument when no lab is up: the
// page starts with the tour.
var errNoLab = errors.New("no lab is up")

// serveTour serves the tour on addr until ctx ends, then takes the lab of
// the act entered down: a Ctrl-C leaves no lab behind.
func serveTour(ctx context.Context, out, errOut io.Writer, addr string, explicit bool, token string) (err error) {
	l, err := listenUI(addr, explicit)
	if err != nil {
		return err
	}
	t := ui.NewTour(ui.TourConfig{Token: token, Hosts: allowedHosts(l.Addr())})
	defer func() {
		name := t.Lab()
		if cerr := t.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		} else if name != "" {
			fmt.Fprintf(out, "lab %s is down\n", name)
		}
	}()
	fmt.Fprintf(out, "natlab ui: the story in seven acts at\n\n")
	for _, u := range pageURLs(l.Addr(), t.Token()) {
		fmt.Fprintf(out, "    %s\n", u)
	}
	fmt.Fprintf(out, "\nEach act brings its own lab up when you open it, and takes it down when you leave; Ctrl-C stops.\n")
	if !isLoopback(l.Addr()) {
		fmt.Fprintf(errOut, "natlab ui: listening beyond this machine: anyone with the URL can act on the labs\n")
	}
	err = t.Serve(ctx, l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// uiTarget works out what natlab ui shows: a running lab (by name), or a
// scenario to bring up. With no argument, the one running lab.
func uiTarget(a []string, rename string) (string, *scenario, error) {
	if len(a) == 0 {
		names, err := labstate.Names()
		if err != nil {
			return "", nil, err
		}
		switch len(names) {
		case 0:
			return "", nil, errNoLab
		case 1:
			return names[0], nil, nil
		}
		return "", nil, usageError("%d labs are up (%s): name the one to show", len(names), strings.Join(names, ", "))
	}
	// A path is never looked up as a lab's name.
	if topology.CheckLabName(a[0]) == nil && rename == "" {
		if _, err := labstate.Load(a[0]); err == nil {
			return a[0], nil, nil
		}
	}
	sc, err := loadScenario(a[0])
	if err != nil {
		return "", nil, orLab(err, a[0])
	}
	name := sc.topo.Name
	if rename != "" {
		name = rename
	}
	if _, err := labstate.Load(name); err == nil {
		return "", nil, usageError("lab %s is already up: run natlab ui %s to show it, or natlab down %s first", name, name, name)
	}
	return "", sc, nil
}

// allowedHosts are the Host headers a loopback server answers to; a
// server on another address answers to any (its names are not known).
func allowedHosts(addr net.Addr) []string {
	ap := addr.(*net.TCPAddr).AddrPort()
	if !ap.Addr().IsLoopback() {
		return nil
	}
	port := strconv.Itoa(int(ap.Port()))
	return []string{
		net.JoinHostPort(ap.Addr().Unmap().String(), port),
		net.JoinHostPort("localhost", port),
	}
}

func isLoopback(addr net.Addr) bool {
	return addr.(*net.TCPAddr).AddrPort().Addr().IsLoopback()
}

// pageURLs are the page's addresses: the one it listens on, or for an
// unspecified address (0.0.0.0) loopback first and then each of this
// machine's own addresses, for the class.
func pageURLs(addr net.Addr, token string) []string {
	ap := addr.(*net.TCPAddr).AddrPort()
	port := strconv.Itoa(int(ap.Port()))
	hosts := []netip.Addr{ap.Addr().Unmap()}
	if ap.Addr().IsUnspecified() {
		hosts = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
					hosts = append(hosts, p.Addr())
				}
			}
		}
	}
	var urls []string
	for _, h := range hosts {
		urls = append(urls, fmt.Sprintf("http://%s/?token=%s", net.JoinHostPort(h.String(), port), token))
	}
	return urls
}
