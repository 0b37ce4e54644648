// Package lab builds a topology in the kernel and takes it down again: one
// network namespace per node plus one for the internet, veth pairs and
// bridges between them, addresses and routes, forwarding and conntrack
// timeouts in NAT nodes, and each NAT's nftables table, all through
// netlink. The root namespace is never changed.
//
// Every namespace carries a marker, the alias of its loopback interface,
// naming the lab and the bring-up's random ID. Removal checks the marker,
// so natlab only ever deletes namespaces it made.
package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrExists means a lab of that name is already up.
var ErrExists = errors.New("already up")

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// markerPrefix starts every marker; the rest is "lab=NAME node=NODE id=ID".
const markerPrefix = "natlab "

func marker(lab, node, id string) string {
	return fmt.Sprintf("%slab=%s node=%s id=%s", markerPrefix, lab, node, id)
}

// parseMarker reads a loopback alias; ok is false for aliases natlab did
// not write.
func parseMarker(alias string) (lab, node, id string, ok bool) {
	rest, found := strings.CutPrefix(alias, markerPrefix)
	if !found {
		return "", "", "", false
	}
	for _, kv := range strings.Fields(rest) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "lab":
			lab = v
		case "node":
			node = v
		case "id":
			id = v
		}
	}
	return lab, node, id, lab != "" && id != ""
}
