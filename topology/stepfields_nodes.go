package topology

import (
	"slices"
	"strings"
)

// How a step's fields name nodes: which nodes each accepts, and the
// messages when one is missing, of the wrong kind, or runs no such
// service.

// nodeWant says which nodes a field of a step accepts.
type nodeWant struct {
	// kinds are the kinds accepted; nil means any.
	kinds []Kind
	// service is one a server must run, if any.
	service Service
	// internet says the internet segment is accepted too.
	internet bool
}

var (
	hostsOnly    = nodeWant{kinds: []Kind{KindHost}}
	hostOrServer = nodeWant{kinds: []Kind{KindHost, KindServer}}
	natsOnly     = nodeWant{kinds: []Kind{KindNAT}}
	anyNode      = nodeWant{internet: true}
	// nodesOnly is any node, but not the internet segment.
	nodesOnly = nodeWant{}
)

func serverWith(svc Service) nodeWant {
	return nodeWant{kinds: []Kind{KindServer}, service: svc}
}

// what names one accepted node: "a host or a server".
func (w nodeWant) what() string {
	switch {
	case w.service != "":
		return "a server with services: [" + string(w.service) + "]"
	case w.kinds == nil:
		return "a node"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = "a " + string(k)
	}
	return strings.Join(parts, " or ")
}

// plural names the accepted nodes: "the hosts and servers".
func (w nodeWant) plural() string {
	switch {
	case w.service != "":
		return "the servers with " + string(w.service)
	case w.kinds == nil:
		return "the nodes"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = string(k) + "s"
	}
	return "the " + strings.Join(parts, " and ")
}

// none says that the lab has no accepted node.
func (w nodeWant) none() string {
	switch {
	case w.service != "":
		return "no server runs " + string(w.service)
	case w.kinds == nil:
		return "the lab has no nodes"
	}
	parts := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		parts[i] = string(k) + "s"
	}
	return "the lab has no " + strings.Join(parts, " or ")
}

func (w nodeWant) kindOK(n *nodeSpec) bool {
	return w.kinds == nil || slices.Contains(w.kinds, n.node.Kind)
}

func (w nodeWant) accepts(n *nodeSpec) bool {
	return n.ok && w.kindOK(n) && (w.service == "" || slices.Contains(n.node.Services, w.service))
}

// candidates says which nodes w accepts, for messages: "; the hosts are
// alice, bob" or ", and the lab has no hosts".
func (p *parser) candidates(w nodeWant) string {
	var names []string
	for _, n := range p.nodes {
		if w.accepts(n) {
			names = append(names, n.node.Name)
		}
	}
	if len(names) == 0 {
		return ", and " + w.none()
	}
	slices.Sort(names)
	msg := "; " + w.plural() + " are " + listNames(names)
	if w.internet {
		msg += ", and internet for the internet segment"
	}
	return msg
}

// node reads the name of a node that w accepts. It returns the name when
// v is one, and the node when it exists and is usable; problems with it
// are reported, but not again for a node whose own definition was.
func (r *StepFields) node(v *value, path string, w nodeWant) (string, *nodeSpec) {
	p := r.p
	name, ok := p.str(v, path, "the name of "+w.what())
	if !ok {
		r.ok = false
		return "", nil
	}
	if !p.nodesOK || name == Internet && w.internet {
		return name, nil
	}
	n, found := p.byName[name]
	switch {
	case name == Internet:
		if !found {
			r.errorf(v.pos, "%s: internet is the internet segment, not a node%s", path, p.candidates(w))
		}
		// Otherwise the node's reserved name was already reported.
		r.ok = false
	case !found:
		r.errorf(v.pos, "%s: no node named %q%s", path, name, p.candidates(w))
	case !n.ok:
		// Its kind was already reported.
		r.ok = false
	case !w.kindOK(n):
		r.errorf(v.pos, "%s: %s is a %s, not %s%s", path, name, n.node.Kind, w.what(), p.candidates(w))
	case w.service != "" && !slices.Contains(n.node.Services, w.service):
		switch {
		case n.servicesBad:
			// Its services were already reported.
			r.ok = false
		case p.firstServer(w.service) == nil:
			r.errorf(v.pos, "%s: %s does not run %s, and no server does; add %s to its services", path, name, w.service, w.service)
		default:
			r.errorf(v.pos, "%s: %s does not run %s%s", path, name, w.service, p.candidates(w))
		}
	default:
		return name, n
	}
	return name, nil
}

// server reads the field key naming a server that runs svc, or picks the
// first such server in the file; it returns nil when there is no usable
// one. When there is none at all and the step needs one, that is reported
// at the step.
func (r *StepFields) server(key string, svc Service, needed bool) (string, *nodeSpec) {
	if v := r.field(key); v != nil {
		return r.node(v, joinPath(r.path, key), serverWith(svc))
	}
	return r.defaultServer(svc, needed)
}

// defaultServer picks the first server in the file that runs svc; it
// reports at the step when there is none and the step needs one.
func (r *StepFields) defaultServer(svc Service, needed bool) (string, *nodeSpec) {
	if !r.p.nodesOK {
		return "", nil
	}
	if n := r.p.firstServer(svc); n != nil {
		return n.node.Name, n
	}
	if needed && r.p.servicesKnown() {
		r.errorf(r.pos, "%s: %s needs a server with services: [%s], and the lab has none; add one such as %s: {kind: server, services: [%s]}",
			r.path, r.kind.Key(), svc, svc, svc)
	}
	return "", nil
}

// firstServer returns the first server in the file that runs svc, or nil.
func (p *parser) firstServer(svc Service) *nodeSpec {
	for _, n := range p.nodes {
		if n.ok && n.node.Kind == KindServer && slices.Contains(n.node.Services, svc) {
			return n
		}
	}
	return nil
}

// servicesKnown says whether every node's services are known, so that a
// missing server is a problem of its own and not of a node or services:
// list already reported.
func (p *parser) servicesKnown() bool {
	if !p.nodesOK {
		return false
	}
	for _, n := range p.nodes {
		if !n.ok || n.servicesBad {
			return false
		}
	}
	return true
}
