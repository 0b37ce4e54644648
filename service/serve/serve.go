// Package serve serves the services of a lab's server nodes (STUN, TURN,
// rendezvous, the tunnel relay, DERP) and of its NATs (NAT-PMP), each
// node's in its own process inside the node's network namespace, so they
// live as long as the lab and not as long as the natlab command that
// built it. Package service plans them and launches that process; this
// package is what runs in it, and it links the agents, which the kernel
// layer must not.
//
// The process is the program's own executable run again, so the
// program's main calls Main first when IsServiceProcess says it is one:
//
//	if serve.IsServiceProcess() {
//		os.Exit(serve.Main())
//	}
//
// cmd/natlab does; a test binary that brings up labs with services does it
// in its TestMain (labtest.Main).
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/linkshape"
	"github.com/natlab/natlab/natpmp"
	"github.com/natlab/natlab/rendezvous"
	"github.com/natlab/natlab/service"
	"github.com/natlab/natlab/stunserver"
	"github.com/natlab/natlab/topology"
	"github.com/natlab/natlab/tunnel"
	"github.com/natlab/natlab/turnserver"
	"github.com/natlab/natlab/upgrade"
)

// IsServiceProcess reports whether this process was launched to serve a
// node's services (service.Launch), and so must run Main instead of the
// program.
func IsServiceProcess() bool {
	_, _, ok := service.Assigned()
	return ok
}

// Main is the service process: it reads the lab's record, serves the
// node's services, tells the process that launched it once they serve,
// and returns the exit code on SIGTERM or SIGINT. The process of a lab's
// delay line (service.LaunchDelayLine) holds the delay line instead.
func Main() int {
	if lab, ok := service.DelayLineAssigned(); ok {
		return delayLine(lab)
	}
	lab, node, _ := service.Assigned()
	rep := service.NewReporter()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "natlab service %s/%s: %v\n", lab, node, err)
		rep.Fail(err)
		return 1
	}
	st, err := labstate.Load(lab)
	if err != nil {
		return fail(err)
	}
	topo, err := st.Topology()
	if err != nil {
		return fail(err)
	}
	n := topo.Node(node)
	if n == nil || !service.PlanFor(n).Any() {
		return fail(fmt.Errorf("no node %s with services in lab %s", node, lab))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	if err := Run(ctx, n, st.TURN, logf, rep.Ready); err != nil {
		return fail(err)
	}
	logf("stopped")
	return 0
}

// Run serves node n's services from the calling process, which must be
// inside the node's namespace, until ctx is done. ready is called once
// every socket is open. NAT-PMP edits the NAT's nftables table, in the
// process's namespace.
func Run(ctx context.Context, n *topology.Node, creds labstate.TURNCredentials, logf func(string, ...any), ready func()) error {
	plan := service.PlanFor(n)
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	var stun *stunserver.Server
	if plan.STUN.Addrs[0].IsValid() {
		var err error
		if stun, err = stunserver.Listen(plan.STUN); err != nil {
			return err
		}
		closers = append(closers, stun.Close)
		// STUN over TCP too, for a host to learn its TCP mapping. Where
		// TURN runs on the primary endpoint, its TCP listener holds that
		// port and answers Binding requests itself.
		var skip []service.STUNEndpoint
		if plan.TURN.IsValid() && plan.STUNServer() == plan.TURN {
			skip = append(skip, service.STUNEndpoint{})
		}
		if err := stun.ListenTCP(skip...); err != nil {
			return err
		}
		logf("stun: listening on %v, udp and tcp (RFC 5780 alternate: %v)", plan.STUNServer(), alternate(plan))
	}
	if plan.TURN.IsValid() {
		cfg := turnserver.Config{RelayAddress: plan.TURN.Addr(), Realm: creds.Realm, User: creds.User, Password: creds.Password, Logf: logf}
		if stun != nil && plan.STUNServer() == plan.TURN {
			shared := turnserver.NewSharedConn(stun.Conn(service.STUNEndpoint{}))
			stun.HandleOther(func(at service.STUNEndpoint, from netip.AddrPort, packet []byte) {
				if at == (service.STUNEndpoint{}) {
					shared.Deliver(from, packet)
				}
			})
			cfg.UDP = shared
		} else {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(plan.TURN))
			if err != nil {
				return fmt.Errorf("turn: %w", err)
			}
			cfg.UDP = c
		}
		tcp, err := net.Listen("tcp4", plan.TURN.String())
		if err != nil {
			return fmt.Errorf("turn: %w", err)
		}
		cfg.TCP = tcp
		ts, err := turnserver.Start(cfg)
		if err != nil {
			tcp.Close()
			return err
		}
		closers = append(closers, ts.Close)
		logf("turn: listening on %v (udp and tcp), realm %s, user %s", plan.TURN, creds.Realm, creds.User)
	}
	if stun != nil {
		go stun.Serve(logf)
	}
	if plan.Rendezvous.IsValid() {
		l, err := net.Listen("tcp4", plan.Rendezvous.String())
		if err != nil {
			return fmt.Errorf("rendezvous: %w", err)
		}
		srv := &http.Server{Handler: rendezvous.NewServer().Handler(), ReadHeaderTimeout: 5e9}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logf("rendezvous: %v", err)
			}
		}()
		closers = append(closers, srv.Close)
		logf("rendezvous: listening on %s", plan.RendezvousURL())
	}
	if plan.Tunnel.IsValid() {
		ts, err := tunnel.Listen(plan.Tunnel.Addr())
		if err != nil {
			return err
		}
		go ts.Serve(logf)
		closers = append(closers, ts.Close)
		logf("tunnel: relay control on %v", plan.Tunnel)
	}
	if plan.DERP.IsValid() {
		stop, err := upgrade.ServeDERP(plan.DERP.Addr(), logf)
		if err != nil {
			return err
		}
		closers = append(closers, stop)
		logf("derp: listening on %s", plan.DERPURL())
	}
	if plan.NATPMP.IsValid() {
		ps, err := natpmp.Listen(natpmp.Config{
			Gateway: plan.NATPMP.Addr(), LAN: n.NAT.LAN, Public: n.Addresses[0], Behaviour: n.NAT.Behaviour,
			NATPMP: n.NAT.Speaks(topology.PortMappingNATPMP), PCP: n.NAT.Speaks(topology.PortMappingPCP),
			UPnP: n.NAT.Speaks(topology.PortMappingUPnP),
		})
		if err != nil {
			return err
		}
		go ps.Serve(logf)
		closers = append(closers, ps.Close)
		logf("%s: listening on %v", strings.Join(n.NAT.PortMapping, ", "), plan.NATPMP)
	}
	ready()
	<-ctx.Done()
	return nil
}

// delayLinePriority is the delay line's nice value: the links' delays are
// made of its timing, which a busy machine would otherwise stretch.
const delayLinePriority = -10

// delayLine is the process that holds a lab's delay line (package
// linkshape): it binds the queues the lab's links need, tells the process
// that launched it, and loads them again whenever a link changes, until
// SIGTERM or SIGINT.
func delayLine(name string) int {
	rep := service.NewReporter()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, delayLinePriority); err != nil {
		logf("delay line: cannot raise its priority: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	load := func() (map[string]*linkshape.Queue, error) { return lab.DelayLineQueues(name) }
	if err := linkshape.Serve(ctx, linkshape.SocketPath(name), load, rep.Ready, logf); err != nil {
		fmt.Fprintf(os.Stderr, "natlab delay line %s: %v\n", name, err)
		rep.Fail(err)
		return 1
	}
	logf("stopped")
	return 0
}

func alternate(p service.Plan) string {
	if a := p.STUNAlternate(); a.IsValid() {
		return a.String()
	}
	return "none: one address, so no RFC 5780 discovery"
}
