package natpmp

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/natlab/natlab/nat"
)

func upnpTestServer() *Server {
	return &Server{cfg: Config{Gateway: netip.MustParseAddr("192.168.1.1"), LAN: netip.MustParsePrefix("192.168.1.0/24"),
		Public: netip.MustParseAddr("203.0.113.1"), Behaviour: nat.Behaviour{}, UPnP: true},
		granted: map[grantKey]grant{}, peers: map[peerKey]peerGrant{}}
}

// SSDP: every type for ssdp:all, the one searched for, nothing for
// another device or what is no search.
func TestSSDPAnswers(t *testing.T) {
	s := upnpTestServer()
	search := func(st string) string {
		return "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: " + st + "\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n\r\n"
	}
	for _, tc := range []struct {
		req  string
		want int
	}{
		{search("ssdp:all"), len(ssdpTypes)},
		{search(igdType), 1},
		{search(wanIPConn), 1},
		{search("urn:schemas-upnp-org:device:MediaRenderer:1"), 0},
		{"NOTIFY * HTTP/1.1\r\nNT: " + igdType + "\r\n\r\n", 0},
	} {
		got := s.ssdpAnswers([]byte(tc.req))
		if len(got) != tc.want {
			t.Errorf("%q: %d answers, want %d", tc.req, len(got), tc.want)
		}
		for _, a := range got {
			if !strings.Contains(string(a), "LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n") {
				t.Errorf("answer without the description's location:\n%s", a)
			}
		}
	}
}

// SOAP calls the control answers without touching the NAT's maps: the
// public address, and the refusals of AddPortMapping.
func TestUPnPControl(t *testing.T) {
	s := upnpTestServer()
	call := func(from, action, args string) (int, string) {
		body := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:` + action +
			` xmlns:u="` + wanIPConn + `">` + args + `</u:` + action + `></s:Body></s:Envelope>`
		r := httptest.NewRequest("POST", controlPath, strings.NewReader(body))
		r.RemoteAddr = from
		w := httptest.NewRecorder()
		s.control(w, r)
		return w.Code, w.Body.String()
	}
	add := func(remote, ext, client string) string {
		return "<NewRemoteHost>" + remote + "</NewRemoteHost><NewExternalPort>" + ext + "</NewExternalPort><NewProtocol>TCP</NewProtocol>" +
			"<NewInternalPort>8080</NewInternalPort><NewInternalClient>" + client + "</NewInternalClient><NewEnabled>1</NewEnabled>" +
			"<NewPortMappingDescription>x</NewPortMappingDescription><NewLeaseDuration>600</NewLeaseDuration>"
	}
	if code, body := call("192.168.1.2:40000", "GetExternalIPAddress", ""); code != http.StatusOK ||
		!strings.Contains(body, "<NewExternalIPAddress>203.0.113.1</NewExternalIPAddress>") || !strings.Contains(body, "GetExternalIPAddressResponse") {
		t.Errorf("GetExternalIPAddress: %d\n%s", code, body)
	}
	for _, tc := range []struct {
		name, from, action, args string
		want                     string
	}{
		{"from outside the LAN", "10.0.0.1:1", "GetExternalIPAddress", "", "606"},
		{"an unknown action", "192.168.1.2:1", "ForceTermination", "", "401"},
		{"another host", "192.168.1.2:1", "AddPortMapping", add("", "8080", "192.168.1.3"), "606"},
		{"a remote host", "192.168.1.2:1", "AddPortMapping", add("198.51.100.1", "8080", "192.168.1.2"), "726"},
		{"external port 0", "192.168.1.2:1", "AddPortMapping", add("", "0", "192.168.1.2"), "716"},
		{"not a port", "192.168.1.2:1", "AddPortMapping", add("", "http", "192.168.1.2"), "402"},
		{"no such entry", "192.168.1.2:1", "GetSpecificPortMappingEntry", "<NewRemoteHost></NewRemoteHost><NewExternalPort>9</NewExternalPort><NewProtocol>UDP</NewProtocol>", "714"},
		{"past the last entry", "192.168.1.2:1", "GetGenericPortMappingEntry", "<NewPortMappingIndex>0</NewPortMappingIndex>", "713"},
	} {
		code, body := call(tc.from, tc.action, tc.args)
		if code != http.StatusInternalServerError || !strings.Contains(body, "<errorCode>"+tc.want+"</errorCode>") {
			t.Errorf("%s: %d, want UPnP error %s:\n%s", tc.name, code, tc.want, body)
		}
	}
}
