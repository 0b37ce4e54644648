package nat

import (
	"encoding/json"
	"testing"
	"time"
)

// behaviourV1 is a Behaviour as lab records of format version 1 hold it,
// written by natlab before the JSON names had tags: the names must stay.
const behaviourV1 = `{"Mapping":"address-and-port-dependent","Filtering":"address-dependent","Ports":"sequential",` +
	`"PortRange":{"First":20000,"Last":20999},"Hairpin":false,"Timeout":30000000000}`

// behaviourV4 is the same Behaviour as records of format 4 hold it, which
// added Refresh.
var behaviourV4 = `{"Mapping":"address-and-port-dependent","Filtering":"address-dependent","Ports":"sequential",` +
	`"PortRange":{"First":20000,"Last":20999},"Hairpin":false,` +
	`"Timeout":{"UDP":30000000000,"TCPEstablished":7440000000000,"TCPTransitory":240000000000,"ICMP":60000000000},"Refresh":"outbound"}`

// TestBehaviourJSON checks that the JSON form of a Behaviour, which lab
// records store, is the one records have always had, both ways.
func TestBehaviourJSON(t *testing.T) {
	b := Behaviour{Mapping: AddressAndPortDependent, Filtering: AddressDependent, Ports: PortSequential,
		PortRange: PortRange{First: 20000, Last: 20999}, Hairpin: false, Timeout: Timeouts{UDP: 30 * time.Second}}
	var back Behaviour
	if err := json.Unmarshal([]byte(behaviourV1), &back); err != nil {
		t.Fatal(err)
	}
	// A format 1 record has UDP's timeout alone and no Refresh: labstate
	// fills the others in.
	if back != b {
		t.Errorf("a record's Behaviour reads as %+v, want %+v", back, b)
	}
	b.Refresh, b.Timeout = RefreshOutbound, UDPOnly(30*time.Second)
	got, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != behaviourV4 {
		t.Errorf("Behaviour as JSON:\n%s\nwant the form lab records hold:\n%s", got, behaviourV4)
	}
	back = Behaviour{}
	if err := json.Unmarshal([]byte(behaviourV4), &back); err != nil || back != b {
		t.Errorf("a format 4 record's Behaviour reads as %+v (%v), want %+v", back, err, b)
	}
}
