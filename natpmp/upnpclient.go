package natpmp

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/natlab/natlab/service"
)

// UPnPClient asks a UPnP Internet Gateway Device (IGD:1) for port
// mappings the way miniupnpc does: an SSDP search on the LAN for a
// WANIPConnection service, its device description over HTTP, then SOAP
// calls to the service's control URL. It is small on purpose (the
// actions the portmap step needs); Tailscale's portmapper speaks UPnP
// too, but only for the one UDP port of its own socket, in its own
// process's namespace, and cannot be told to use UPnP alone.
type UPnPClient struct {
	// SSDP is the host's socket the search is sent from.
	SSDP *net.UDPConn
	// HTTP makes the requests, from the host.
	HTTP *http.Client
	// Client is the host's address, which AddPortMapping names as the
	// internal client.
	Client netip.Addr
}

// ssdpSearch is an M-SEARCH for the service, as miniupnpc sends it.
var ssdpSearch = "M-SEARCH * HTTP/1.1\r\nHOST: " + ssdpGroup + ":1900\r\nST: " + wanIPConn + "\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n"

// Discover searches the LAN for the gateway's WANIPConnection service and
// returns its control URL.
func (c *UPnPClient) Discover(ctx context.Context) (string, error) {
	location, err := c.search(ctx)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return "", fmt.Errorf("UPnP: description %s: %w", location, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("UPnP: description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("UPnP: description %s: %s", location, resp.Status)
	}
	var desc struct {
		Services []struct {
			Type    string `xml:"serviceType"`
			Control string `xml:"controlURL"`
		} `xml:"device>deviceList>device>deviceList>device>serviceList>service"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&desc); err != nil {
		return "", fmt.Errorf("UPnP: description %s: %w", location, err)
	}
	for _, s := range desc.Services {
		if s.Type == wanIPConn {
			base, _ := url.Parse(location)
			ctl, err := base.Parse(s.Control)
			if err != nil {
				return "", fmt.Errorf("UPnP: control URL %q: %w", s.Control, err)
			}
			return ctl.String(), nil
		}
	}
	return "", fmt.Errorf("UPnP: %s describes no %s", location, wanIPConn)
}

// search sends the M-SEARCH to SSDP's group and returns the LOCATION of
// the first answer for the service.
func (c *UPnPClient) search(ctx context.Context) (string, error) {
	to := netip.AddrPortFrom(netip.MustParseAddr(ssdpGroup), service.SSDPPort)
	b, err := ask(ctx, c.SSDP, "UPnP: SSDP", to, []byte(ssdpSearch), func(b []byte, _ netip.AddrPort) bool { return ssdpLocation(b) != "" })
	if err != nil {
		return "", err
	}
	return ssdpLocation(b), nil
}

// ssdpLocation is the LOCATION of an SSDP answer for the service, or "".
func ssdpLocation(b []byte) string {
	s := string(b)
	if !strings.HasPrefix(s, "HTTP/1.1 200") {
		return ""
	}
	var st, loc string
	for line := range strings.SplitSeq(s, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "ST":
			st = strings.TrimSpace(v)
		case "LOCATION":
			loc = strings.TrimSpace(v)
		}
	}
	if st != wanIPConn {
		return ""
	}
	return loc
}

// Map asks the service at control for a forward of proto from public
// port external to the host's internal port for lifetime, then reads the
// entry back: AddPortMapping answers nothing but success, and the entry
// says what the gateway holds (its lease's time left).
func (c *UPnPClient) Map(ctx context.Context, control, proto string, internal, external uint16, lifetime time.Duration) (Mapping, error) {
	up := strings.ToUpper(proto)
	_, err := c.call(ctx, control, "AddPortMapping", [][2]string{
		{"NewRemoteHost", ""}, {"NewExternalPort", strconv.Itoa(int(external))}, {"NewProtocol", up},
		{"NewInternalPort", strconv.Itoa(int(internal))}, {"NewInternalClient", c.Client.String()},
		{"NewEnabled", "1"}, {"NewPortMappingDescription", "natlab portmap"},
		{"NewLeaseDuration", strconv.Itoa(int(lifetime / time.Second))},
	})
	if err != nil {
		return Mapping{}, err
	}
	out, err := c.call(ctx, control, "GetSpecificPortMappingEntry", [][2]string{
		{"NewRemoteHost", ""}, {"NewExternalPort", strconv.Itoa(int(external))}, {"NewProtocol", up},
	})
	if err != nil {
		return Mapping{}, err
	}
	in, err1 := strconv.ParseUint(out["NewInternalPort"], 10, 16)
	secs, err2 := strconv.ParseUint(out["NewLeaseDuration"], 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		return Mapping{}, fmt.Errorf("UPnP: GetSpecificPortMappingEntry: malformed answer %v", out)
	case out["NewInternalClient"] != c.Client.String() || uint16(in) != internal:
		return Mapping{}, fmt.Errorf("UPnP: %s port %d forwards to %s:%d, not to %v:%d", proto, external, out["NewInternalClient"], in, c.Client, internal)
	}
	return Mapping{Proto: proto, Internal: internal, External: external, Lifetime: time.Duration(secs) * time.Second}, nil
}

// ExternalAddress asks the service at control for the gateway's public
// address.
func (c *UPnPClient) ExternalAddress(ctx context.Context, control string) (netip.Addr, error) {
	out, err := c.call(ctx, control, "GetExternalIPAddress", nil)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(out["NewExternalIPAddress"])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("UPnP: GetExternalIPAddress: %w", err)
	}
	return a, nil
}

// call makes a SOAP call of action with args and returns the response's
// arguments; a fault is an error with its UPnP error code.
func (c *UPnPClient) call(ctx context.Context, control, action string, args [][2]string) (map[string]string, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, `<?xml version="1.0"?>`+"\n"+`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%s xmlns:u="%s">`, action, wanIPConn)
	for _, kv := range args {
		body.WriteString("<" + kv[0] + ">")
		xml.EscapeText(&body, []byte(kv[1]))
		body.WriteString("</" + kv[0] + ">")
	}
	fmt.Fprintf(&body, "</u:%s></s:Body></s:Envelope>\r\n", action)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, control, &body)
	if err != nil {
		return nil, fmt.Errorf("UPnP: %s: %w", action, err)
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", `"`+wanIPConn+"#"+action+`"`)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("UPnP: %s: %w", action, err)
	}
	defer resp.Body.Close()
	var env struct {
		Body struct {
			Inner struct {
				XMLName xml.Name
				Args    []struct {
					XMLName xml.Name
					Value   string `xml:",chardata"`
				} `xml:",any"`
				Code int    `xml:"detail>UPnPError>errorCode"`
				Desc string `xml:"detail>UPnPError>errorDescription"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&env); err != nil {
		return nil, fmt.Errorf("UPnP: %s: %s: %w", action, resp.Status, err)
	}
	if in := env.Body.Inner; in.XMLName.Local == "Fault" || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("UPnP: %s: error %d %s", action, in.Code, in.Desc)
	}
	out := map[string]string{}
	for _, a := range env.Body.Inner.Args {
		out[a.XMLName.Local] = strings.TrimSpace(a.Value)
	}
	return out, nil
}
