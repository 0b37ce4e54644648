package nat

import (
	"strings"
	"testing"
	"time"
)

func TestTypesMapToRFC4787(t *testing.T) {
	tests := []struct {
		typ                Type
		mapping, filtering Dependence
		ports              PortAllocation
	}{
		{FullCone, EndpointIndependent, EndpointIndependent, PortPreserve},
		{AddressRestrictedCone, EndpointIndependent, AddressDependent, PortPreserve},
		{PortRestrictedCone, EndpointIndependent, AddressAndPortDependent, PortPreserve},
		{Symmetric, AddressAndPortDependent, AddressAndPortDependent, PortRandom},
	}
	for _, tc := range tests {
		if tc.typ.Mapping() != tc.mapping || tc.typ.Filtering() != tc.filtering || tc.typ.DefaultPorts() != tc.ports {
			t.Errorf("%s = %s/%s/%s, want %s/%s/%s", tc.typ, tc.typ.Mapping(), tc.typ.Filtering(), tc.typ.DefaultPorts(), tc.mapping, tc.filtering, tc.ports)
		}
		if got, ok := TypeOf(tc.mapping, tc.filtering); !ok || got != tc.typ {
			t.Errorf("TypeOf(%s, %s) = %s, %v; want %s", tc.mapping, tc.filtering, got, ok, tc.typ)
		}
	}
	if got, ok := TypeOf(AddressDependent, EndpointIndependent); ok {
		t.Errorf("TypeOf(address-dependent, endpoint-independent) = %s, want no classic name", got)
	}
	// A one-to-one NAT maps and filters as a full cone does, and knobs
	// alone never name it: what sets it apart is its type.
	if m, f, p := OneToOne.Mapping(), OneToOne.Filtering(), OneToOne.DefaultPorts(); m != EndpointIndependent || f != EndpointIndependent || p != PortPreserve {
		t.Errorf("one-to-one = %s/%s/%s, want endpoint-independent/endpoint-independent/preserve", m, f, p)
	}
	if got, _ := TypeOf(EndpointIndependent, EndpointIndependent); got != FullCone {
		t.Errorf("TypeOf(endpoint-independent, endpoint-independent) = %s, want full-cone", got)
	}
}

func TestParse(t *testing.T) {
	if typ, err := ParseType("restricted-cone"); err != nil || typ != AddressRestrictedCone {
		t.Errorf("ParseType(restricted-cone) = %v, %v", typ, err)
	}
	if typ, err := ParseType("one-to-one"); err != nil || typ != OneToOne {
		t.Errorf("ParseType(one-to-one) = %v, %v", typ, err)
	}
	if _, err := ParseType("one-to-onw"); err == nil || !strings.Contains(err.Error(), "one-to-one") {
		t.Errorf("ParseType(one-to-onw) = %v, want one-to-one named", err)
	}
	for _, bad := range []func() error{
		func() error { _, err := ParseType("cone"); return err },
		func() error { _, err := ParseDependence("independent"); return err },
		func() error { _, err := ParsePortAllocation("linear"); return err },
	} {
		if err := bad(); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("error %v does not say what is accepted", err)
		}
	}
}

// A mistyped NAT type gets the "did you mean" a mistyped key gets, in a
// scenario file, in natlab matrix --types and on the live page alike.
func TestParseTypeSuggests(t *testing.T) {
	for word, want := range map[string]string{
		"symetric":            "; did you mean symmetric?",
		"Symmetric":           "; did you mean symmetric?",
		"full-cones":          "; did you mean full-cone?",
		"port-restrictedcone": "; did you mean port-restricted-cone?",
		"restricted-con":      "; did you mean restricted-cone?",
		"cone":                "",
	} {
		_, err := ParseType(word)
		switch {
		case err == nil:
			t.Errorf("ParseType(%q) accepted it", word)
		case want != "" && !strings.Contains(err.Error(), want):
			t.Errorf("ParseType(%q): %v; want %q in it", word, err, want)
		case want == "" && strings.Contains(err.Error(), "did you mean"):
			t.Errorf("ParseType(%q): %v; want no suggestion", word, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Minute: "2m", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1s500ms",
		25 * time.Hour: "1d1h", 0: "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBehaviourString(t *testing.T) {
	b := Behaviour{Mapping: EndpointIndependent, Filtering: AddressDependent, Ports: PortSequential,
		PortRange: PortRange{48721, 65535}, Timeout: UDPOnly(30 * time.Second)}
	if got, want := b.String(), "address-restricted-cone, ports sequential 48721-65535, no hairpin, timeout 30s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	b.Mapping = AddressDependent
	if got := b.String(); !strings.HasPrefix(got, "mapping address-dependent, filtering address-dependent") {
		t.Errorf("String() = %q", got)
	}
}

// The expected matrix of nat-behaviour.md, rows a, columns b.
func TestPunchWorksMatrix(t *testing.T) {
	want := map[Type]map[Type]bool{
		FullCone:              {FullCone: true, AddressRestrictedCone: true, PortRestrictedCone: true, Symmetric: true},
		AddressRestrictedCone: {FullCone: true, AddressRestrictedCone: true, PortRestrictedCone: true, Symmetric: true},
		PortRestrictedCone:    {FullCone: true, AddressRestrictedCone: true, PortRestrictedCone: true, Symmetric: false},
		Symmetric:             {FullCone: true, AddressRestrictedCone: true, PortRestrictedCone: false, Symmetric: false},
	}
	behaviour := func(t Type, ports PortAllocation) Behaviour {
		return Behaviour{Mapping: t.Mapping(), Filtering: t.Filtering(), Ports: ports}
	}
	for a, row := range want {
		for b, ok := range row {
			if got := PunchWorks(behaviour(a, a.DefaultPorts()), behaviour(b, b.DefaultPorts()), false); got != ok {
				t.Errorf("%s vs %s: %v, want %v", a, b, got, ok)
			}
			// Prediction does not help against random ports.
			if got := PunchWorks(behaviour(a, a.DefaultPorts()), behaviour(b, b.DefaultPorts()), true); got != ok {
				t.Errorf("%s vs %s with prediction: %v, want %v", a, b, got, ok)
			}
		}
	}
	// Sequential symmetric NAT vs port-restricted cone: prediction wins.
	seq := behaviour(Symmetric, PortSequential)
	prc := behaviour(PortRestrictedCone, PortPreserve)
	if PunchWorks(seq, prc, false) || !PunchWorks(seq, prc, true) {
		t.Error("sequential symmetric vs port-restricted: want fail without prediction, ok with it")
	}
	if PunchWorks(seq, seq, true) {
		t.Error("sequential symmetric on both sides: want fail, even with prediction")
	}
}

// Reaches is one-sided: behind a symmetric NAT, x's punch from a new
// mapping is let in by a cone that filters by address at most, and the
// answer, from the cone's one mapping, comes back from where x sent; the
// other way round, the symmetric NAT lets nothing in.
func TestReachesOneSided(t *testing.T) {
	sym := Behaviour{Mapping: Symmetric.Mapping(), Filtering: Symmetric.Filtering(), Ports: PortRandom}
	for _, typ := range []Type{FullCone, AddressRestrictedCone} {
		cone := Behaviour{Mapping: typ.Mapping(), Filtering: typ.Filtering(), Ports: PortPreserve}
		if !Reaches(sym, cone, false) {
			t.Errorf("symmetric to %s: does not reach, want it to", typ)
		}
		if Reaches(cone, sym, false) {
			t.Errorf("%s to symmetric: reaches, want it not to", typ)
		}
	}
	prc := Behaviour{Mapping: PortRestrictedCone.Mapping(), Filtering: PortRestrictedCone.Filtering(), Ports: PortPreserve}
	if Reaches(sym, prc, false) || Reaches(prc, sym, false) {
		t.Error("symmetric and port-restricted cone: one reaches the other, want neither")
	}
}

func TestCompose(t *testing.T) {
	prc := Behaviour{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent, Ports: PortPreserve, Hairpin: true, Timeout: UDPOnly(time.Minute)}
	fc := Behaviour{Mapping: EndpointIndependent, Filtering: EndpointIndependent, Ports: PortPreserve, Hairpin: true, Timeout: UDPOnly(2 * time.Minute)}
	sym := Behaviour{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent, Ports: PortRandom, Hairpin: false, Timeout: UDPOnly(time.Minute)}
	for _, tc := range []struct {
		name         string
		inner, outer Behaviour
		want         Behaviour
	}{
		{"full cone behind port-restricted", fc, prc, Behaviour{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent, Ports: PortPreserve, Hairpin: true, Timeout: UDPOnly(time.Minute)}},
		{"port-restricted behind port-restricted: no hairpin", prc, prc, Behaviour{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent, Ports: PortPreserve, Hairpin: false, Timeout: UDPOnly(time.Minute)}},
		{"full cone behind symmetric", fc, sym, Behaviour{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent, Ports: PortRandom, Hairpin: false, Timeout: UDPOnly(time.Minute)}},
	} {
		if got := Compose(tc.inner, tc.outer); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// Inbound packets refresh a mapping through two NATs only if both let
// them: outbound refresh at either layer is outbound refresh of the pair.
func TestComposeRefresh(t *testing.T) {
	for _, tc := range []struct{ inner, outer, want Refresh }{
		{RefreshBoth, RefreshBoth, RefreshBoth},
		{RefreshOutbound, RefreshBoth, RefreshOutbound},
		{RefreshBoth, RefreshOutbound, RefreshOutbound},
		{RefreshOutbound, RefreshOutbound, RefreshOutbound},
	} {
		if got := Compose(Behaviour{Refresh: tc.inner}, Behaviour{Refresh: tc.outer}).Refresh; got != tc.want {
			t.Errorf("Compose(inner %s, outer %s).Refresh = %s, want %s", tc.inner, tc.outer, got, tc.want)
		}
	}
}

// A Behaviour's line shows UDP's timeout alone where the others are the
// defaults, and every protocol's otherwise; through two NATs each
// protocol's timeout is the shorter of the two.
func TestTimeouts(t *testing.T) {
	b := Behaviour{Mapping: EndpointIndependent, Filtering: EndpointIndependent, Ports: PortPreserve, PortRange: DefaultPortRange,
		Timeout: Timeouts{UDP: time.Minute, TCPEstablished: time.Hour, TCPTransitory: 4 * time.Minute, ICMP: 30 * time.Second}}
	if got, want := b.String(), "full-cone, ports preserve, no hairpin, timeouts udp 1m, tcp-established 1h, tcp-transitory 4m, icmp 30s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	outer := b
	outer.Timeout = Timeouts{UDP: 2 * time.Minute, TCPEstablished: 30 * time.Minute, TCPTransitory: time.Minute, ICMP: time.Minute}
	want := Timeouts{UDP: time.Minute, TCPEstablished: 30 * time.Minute, TCPTransitory: time.Minute, ICMP: 30 * time.Second}
	if got := Compose(b, outer).Timeout; got != want {
		t.Errorf("Compose's timeouts = %+v, want %+v", got, want)
	}
	if !UDPOnly(time.Second).OnlyUDP() || want.OnlyUDP() {
		t.Error("OnlyUDP does not tell a UDP-only timeout from others")
	}
}
