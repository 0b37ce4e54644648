package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/punch"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// actionRequest is the body of POST /api/actions: exactly one of
//
//	{"step": STEP}                  a step as a scenario's steps: has it
//	                                (send, stun, punch, relay, ice, ...)
//	{"switch": {"node": N, "type": T}}  make NAT N a NAT of type T
//	{"walk": {"punch": PUNCH}}      start a punch step by step, taking
//	                                its first step
//	{"walk-next": {}}               take the walk's next step
type actionRequest struct {
	Step     json.RawMessage `json:"step,omitempty"`
	Switch   *switchRequest  `json:"switch,omitempty"`
	Walk     json.RawMessage `json:"walk,omitempty"`
	WalkNext *struct{}       `json:"walk-next,omitempty"`
}

type switchRequest struct {
	Node string `json:"node"`
	Type string `json:"type"`
}

// actionResult is what an action did: the response to the request, and
// the "action" event every page gets.
type actionResult struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	// State is "started" or "finished".
	State string `json:"state"`
	// OK says whether it worked: a step's expectation held, a switch
	// took, a walk step could be taken.
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Step   *step.Result    `json:"step,omitempty"`
	Walk   *punch.WalkStep `json:"walk,omitempty"`
	Switch *nodeView       `json:"switch,omitempty"`
	// Measured is what a step measured, on one line as natlab run's
	// report has it: a send's probes (sent, delivered, answered, lost)
	// and the RTT of the path (min/median/max); "" when it measured
	// nothing.
	Measured string        `json:"measured,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// maxActionBody bounds a request: an action is a few hundred bytes.
const maxActionBody = 64 << 10

// actionTimeout bounds one action: the longest steps (ICE, upgrade)
// take seconds.
const actionTimeout = 2 * time.Minute

// requestError is a request that was refused before anything changed.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	req, err := decodeAction(w, r)
	if err != nil {
		s.refuse(w, err)
		return
	}
	if !s.busy.TryLock() {
		s.mu.Lock()
		doing := s.doing
		s.mu.Unlock()
		httpError(w, http.StatusConflict, fmt.Sprintf("busy: %s is still running; try again when it ends", doing))
		return
	}
	defer s.busy.Unlock()
	act, err := s.prepare(req)
	if err != nil {
		s.refuse(w, err)
		return
	}
	s.mu.Lock()
	s.nextID++
	res := &actionResult{ID: s.nextID, Title: act.title, State: "started"}
	s.doing = act.title
	ctx, cancel := context.WithTimeout(s.life, actionTimeout)
	defer cancel()
	s.cancelAction = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cancelAction = nil
		s.mu.Unlock()
	}()
	start := time.Now()
	s.watch.actionStarted(start)
	s.hub.publish("action", res)
	act.run(ctx, res)
	res.State, res.Took = "finished", time.Since(start)
	s.hub.publish("action", res)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) refuse(w http.ResponseWriter, err error) {
	var re *requestError
	if errors.As(err, &re) {
		httpError(w, re.code, re.msg)
		return
	}
	httpError(w, http.StatusInternalServerError, err.Error())
}

// decodeAction reads and checks the request's form, without looking at
// the lab.
func decodeAction(w http.ResponseWriter, r *http.Request) (*actionRequest, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &requestError{http.StatusUnsupportedMediaType, "an action is JSON: send it with Content-Type: application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("an action is at most %d bytes", maxActionBody)}
		}
		return nil, badRequest("read the request: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req actionRequest
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("the action is not valid JSON of the form {\"step\": ...}, {\"switch\": ...}, {\"walk\": ...} or {\"walk-next\": {}}: %v", err)
	}
	if dec.More() {
		return nil, badRequest("one action per request: there is more after the first JSON value")
	}
	n := 0
	for _, set := range []bool{len(req.Step) > 0, req.Switch != nil, len(req.Walk) > 0, req.WalkNext != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, badRequest("an action has exactly one of step, switch, walk and walk-next; this one has %d", n)
	}
	return &req, nil
}

// action is a checked request, ready to run.
type action struct {
	title string
	run   func(ctx context.Context, res *actionResult)
}

// prepare checks the request against the lab; nothing has changed when it
// fails.
func (s *Server) prepare(req *actionRequest) (*action, error) {
	s.mu.Lock()
	st, topo, sess := s.st, s.topo, s.sess
	s.mu.Unlock()
	switch {
	case len(req.Step) > 0:
		one, err := step.ParseOneAt(st.ScenarioFile(), st.Scenario, topo, "step", req.Step)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		switch one.Spec.(type) {
		case *step.Exec:
			return nil, badRequest("natlab ui runs no commands: use natlab exec %s NODE -- CMD in a terminal", s.lab)
		case *step.Wait:
			return nil, badRequest("a wait step does nothing to watch")
		}
		return &action{title: one.Name, run: func(ctx context.Context, res *actionResult) {
			r := sess.Step(ctx, *one)
			res.Step, res.OK, res.Measured = &r, r.Pass, r.Measured()
			switch one.Spec.(type) {
			case *step.Reboot, *step.Renumber, *step.Move, *step.Link:
				// The lab changed: every page shows it as it is now (a
				// NAT's new address, a host's new parent, a link's
				// conditions or that it is down). The session goes on, as
				// the hosts do.
				if _, _, err := s.refresh(false); err != nil {
					res.Error, res.OK = err.Error(), false
				}
			}
		}}, nil

	case req.Switch != nil:
		n := topo.Node(req.Switch.Node)
		if n == nil || n.NAT == nil {
			return nil, badRequest("switch: %q is not a NAT of lab %s; the NATs are %s", req.Switch.Node, s.lab, strings.Join(natNames(topo), ", "))
		}
		typ, err := nat.ParseType(req.Switch.Type)
		if err != nil {
			return nil, badRequest("switch: %v", err)
		}
		return &action{title: fmt.Sprintf("switch %s to %s", n.Name, typ), run: func(ctx context.Context, res *actionResult) {
			s.switchNAT(ctx, n.Name, typ, res)
		}}, nil

	case len(req.Walk) > 0:
		one, err := step.ParseOne(st.ScenarioFile(), st.Scenario, "walk", req.Walk)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		p, ok := one.Spec.(*step.Punch)
		if !ok {
			return nil, badRequest("walk: a walk takes a punch step, as in {\"walk\": {\"punch\": {\"between\": [A, B]}}}, not a %s step", one.Kind)
		}
		title := fmt.Sprintf("walk a punch between %s and %s", p.Between[0], p.Between[1])
		return &action{title: title, run: func(ctx context.Context, res *actionResult) {
			// The walk owns the sockets it takes from the step's view.
			w, err := p.Walk(ctx, sess.Env())
			if err != nil {
				res.Error = err.Error()
				return
			}
			s.mu.Lock()
			if s.walk != nil {
				// Its sockets are of no more use.
				s.walk.Close()
			}
			s.walk, s.walkOf, s.walkOver = w, p.Between[0]+" "+p.Between[1], false
			s.mu.Unlock()
			s.walkStep(ctx, w, res)
		}}, nil

	default:
		s.mu.Lock()
		w, of, over := s.walk, s.walkOf, s.walkOver
		s.mu.Unlock()
		if w == nil || over {
			return nil, &requestError{http.StatusConflict, "no punch is being walked: start one with {\"walk\": {\"punch\": {\"between\": [A, B]}}}"}
		}
		return &action{title: "next step of the punch between " + strings.Replace(of, " ", " and ", 1), run: func(ctx context.Context, res *actionResult) {
			s.walkStep(ctx, w, res)
		}}, nil
	}
}

func (s *Server) walkStep(ctx context.Context, w *step.PunchWalk, res *actionResult) {
	st, err := w.Next(ctx)
	s.mu.Lock()
	s.walkOver = w.Over()
	if s.walkOver {
		// It takes no more steps: its sockets are of no more use.
		w.Close()
	}
	s.mu.Unlock()
	res.Walk = &st
	if err != nil {
		res.Error = err.Error()
		return
	}
	res.OK = !st.Done || st.OK
}

// switchNAT changes a NAT's type in the kernel, then starts afresh with
// the new topology: a new runner session (what it learnt about paths
// through the old NAT no longer holds), and a new state for every page.
func (s *Server) switchNAT(ctx context.Context, node string, typ nat.Type, res *actionResult) {
	n, err := lab.SwitchNAT(ctx, s.lab, node, typ)
	if err != nil {
		res.Error = err.Error()
		return
	}
	st, topo, err := s.refresh(true)
	if err != nil {
		res.Error = err.Error()
		return
	}
	for _, nv := range newStateView(st, topo, nil).Nodes {
		if nv.Name == n.Name {
			res.Switch = &nv
		}
	}
	res.OK = true
}

// refresh reads the lab's record again after a change to the lab and
// shows every page the lab as it now is. With fresh the runner session
// starts afresh too, and any walk ends: what they learnt about paths
// through a NAT whose rules were replaced no longer holds. Without, the
// session goes on (it has read the record itself), as the hosts go on
// after their NAT reboots or they move.
func (s *Server) refresh(fresh bool) (*labstate.State, *topology.Topology, error) {
	st, err := labstate.Load(s.lab)
	if err != nil {
		return nil, nil, err
	}
	topo, err := st.Topology()
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	if fresh {
		if s.walk != nil {
			s.walk.Close()
		}
		s.sess.Close()
		s.sess = runner.New(st, topo)
		s.walk, s.walkOf, s.walkOver = nil, "", false
	}
	s.st, s.topo = st, topo
	s.mu.Unlock()
	s.watch.setTopology(topo)
	s.watch.pokeAll()
	s.hub.publish("state", s.state())
	return st, topo, nil
}

func natNames(topo *topology.Topology) []string {
	var names []string
	for _, n := range topo.Nodes {
		if n.NAT != nil {
			names = append(names, n.Name)
		}
	}
	return names
}
