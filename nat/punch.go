package nat

// PunchWorks predicts whether two peers, behind NATs a and b, get a direct
// path by simultaneous hole punching with a peer-reflexive-learning agent:
// each learns its public endpoint from a STUN server, both send to each
// other's, and each answers to wherever the other's packets came from.
// With predict, a peer behind a NAT that allocates ports sequentially is
// also sent to at the ports after the one STUN saw.
//
// The reasoning follows the packets, mapping by mapping (filters belong to
// a mapping: a NAT admits a packet to a mapping only from where that
// mapping has sent). It succeeds if one side's punch gets through the
// other side's NAT and the answer to it gets back; see reaches. Random
// port allocation is assumed unpredictable, and both peers are assumed to
// be behind different NATs with addresses different from the STUN
// server's.
//
// It assumes each peer's first punch leaves before the other's arrives.
// That decides nothing for the classic types, but a NAT whose mapping
// depends on the destination while its filter admits strangers can go
// either way: if the other's punch arrives first, the filter admits it,
// and the peer's own punches then belong to that admitted session and
// leave through the same mapping, which opens the path.
func PunchWorks(a, b Behaviour, predict bool) bool {
	return Reaches(a, b, predict) || Reaches(b, a, predict)
}

// Reaches reports whether x's punch to y's public endpoint gets into y's
// NAT and y's answer gets back to x, y having punched towards x's public
// endpoint too: half of PunchWorks, for a protocol whose roles are not
// symmetric. In go-libp2p's DCUtR over QUIC, for one, the dialing side x
// sends the QUIC handshake while the other side y only sends packets to
// open its own NAT and answers, as a QUIC server, wherever the handshake
// came from (until a last attempt swaps the roles).
func Reaches(x, y Behaviour, predict bool) bool {
	// x's punch to y's public endpoint My (y's mapping towards the STUN
	// server) leaves x's NAT from x's STUN mapping Mx if x's mapping is
	// endpoint-independent; otherwise from a new mapping, whose port y
	// can only have sent to if it predicted it.
	sameXMapping := x.Mapping == EndpointIndependent
	yPredictedX := predict && !sameXMapping && x.Ports == PortSequential

	// My admits it if y's filter allows it. My has sent to the STUN
	// server, and to x's endpoints only if y's mapping is
	// endpoint-independent (otherwise y's punches left from other
	// mappings).
	var in bool
	switch y.Filtering {
	case EndpointIndependent:
		in = true
	case AddressDependent:
		in = y.Mapping == EndpointIndependent
	case AddressAndPortDependent:
		in = y.Mapping == EndpointIndependent && (sameXMapping || yPredictedX)
	}
	if !in {
		return false
	}
	// y answers to where the punch came from. The answer leaves from My
	// again if y's mapping is endpoint-independent. Otherwise it leaves
	// through the mapping of y's own punches to x's address (or a new
	// one), not My. (natlab's NAT drops x's punch in that case rather than
	// invent a port for it; see natrules' clash chain. The outcome is the
	// same: x never hears an answer from My.)
	answerFromMy := y.Mapping == EndpointIndependent
	// x's mapping has sent to My only, so it admits the answer if its
	// filter ignores the port, or the answer comes from My.
	switch x.Filtering {
	case EndpointIndependent, AddressDependent:
		return true
	default:
		return answerFromMy
	}
}
