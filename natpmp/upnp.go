package natpmp

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natlab/natlab/nattable"
	"github.com/natlab/natlab/service"
)

// UPnP's Internet Gateway Device (IGD:1), as home routers (miniupnpd)
// speak it: SSDP answers searches on the LAN, an HTTP server gives the
// device description and takes SOAP calls to its WANIPConnection:1
// service. Its port mappings are the same leases as NAT-PMP's and PCP's.

// The names UPnP's documents use.
const (
	igdType      = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	wanDevice    = "urn:schemas-upnp-org:device:WANDevice:1"
	wanConnDev   = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
	wanIPConn    = "urn:schemas-upnp-org:service:WANIPConnection:1"
	wanCommonIfc = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"
	ssdpGroup    = "239.255.255.250"
	descPath     = "/rootDesc.xml"
	controlPath  = "/ctl/IPConn"
	commonPath   = "/ctl/CmnIfCfg"
	scpdPath     = "/WANIPCn.xml"
	upnpUUID     = "uuid:6e61746c-6162-4e41-5447-415445574159" // "natlab" "NATGATEWAY"
	serverHeader = "Linux UPnP/1.1 natlab/1"
)

// ssdpTypes are the search targets the gateway answers: itself, its
// devices and its service.
var ssdpTypes = []string{"upnp:rootdevice", igdType, wanDevice, wanConnDev, wanIPConn}

// upnp is the IGD part of a Server.
type upnp struct {
	ssdp *net.UDPConn
	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// listenUPnP opens the SSDP socket (every address's port 1900, in the
// group on the LAN's interface, so that answers leave from the gateway)
// and the HTTP listener on the gateway.
func (s *Server) listenUPnP() error {
	ifi, err := awaitInterfaceOf(s.cfg.Gateway)
	if err != nil {
		return fmt.Errorf("upnp: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			mreq := &unix.IPMreqn{Multiaddr: [4]byte(netip.MustParseAddr(ssdpGroup).AsSlice()), Ifindex: int32(ifi.Index)}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr == nil {
				serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)
			}
		})
		return cmp.Or(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", service.SSDPPort))
	if err != nil {
		return fmt.Errorf("upnp: ssdp: %w", err)
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(s.cfg.Gateway, service.UPnPPort).String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("upnp: http: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+descPath, s.describe)
	mux.HandleFunc("GET "+scpdPath, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, scpd) })
	mux.HandleFunc("POST "+controlPath, s.control)
	mux.HandleFunc("POST "+commonPath, s.control)
	s.upnp = &upnp{ssdp: pc.(*net.UDPConn), ln: ln, http: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	return nil
}

// gatewayPatience is how long the server waits for the gateway's address
// to appear: a lab launches a NAT's services as soon as its namespace
// exists, and gives the LAN its bridge and address meanwhile.
const gatewayPatience = 10 * time.Second

// awaitInterfaceOf is interfaceOf once a is on an interface, at most
// gatewayPatience from now. The SSDP socket must join the group on the
// LAN's interface, which only the address names.
func awaitInterfaceOf(a netip.Addr) (*net.Interface, error) {
	deadline := time.Now().Add(gatewayPatience)
	for {
		ifi, err := interfaceOf(a)
		if err == nil || time.Now().After(deadline) {
			return ifi, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// interfaceOf finds the interface that has address a.
func interfaceOf(a netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, ad := range addrs {
			if p, err := netip.ParsePrefix(ad.String()); err == nil && p.Addr() == a {
				return &ifi, nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has %v", a)
}

// serveUPnP answers SSDP and HTTP until Close, which it waits for.
func (s *Server) serveUPnP(logf func(string, ...any)) {
	u := s.upnp
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		u.http.Serve(u.ln)
	}()
	buf := make([]byte, 2048)
	for {
		n, from, err := u.ssdp.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if err != nil {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !s.cfg.LAN.Contains(from.Addr()) {
			continue
		}
		for _, reply := range s.ssdpAnswers(buf[:n]) {
			u.ssdp.WriteToUDPAddrPort(reply, from)
		}
	}
	<-httpDone
}

func (u *upnp) close() error {
	err := u.ssdp.Close()
	return cmp.Or(u.http.Close(), err)
}

// ssdpAnswers are the answers to an M-SEARCH: one for each type it
// searches for that the gateway has, all of them for ssdp:all.
func (s *Server) ssdpAnswers(b []byte) [][]byte {
	req := string(b)
	if !strings.HasPrefix(req, "M-SEARCH * HTTP/1.1\r\n") {
		return nil
	}
	var st string
	for line := range strings.SplitSeq(req, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "ST") {
			st = strings.TrimSpace(v)
		}
	}
	var types []string
	switch {
	case st == "ssdp:all":
		types = ssdpTypes
	case st == upnpUUID || slices.Contains(ssdpTypes, st):
		types = []string{st}
	}
	location := fmt.Sprintf("http://%v%s", netip.AddrPortFrom(s.cfg.Gateway, service.UPnPPort), descPath)
	var out [][]byte
	for _, t := range types {
		usn := upnpUUID + "::" + t
		if t == upnpUUID {
			usn = upnpUUID
		}
		out = append(out, []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: "+t+"\r\nUSN: "+usn+
			"\r\nEXT:\r\nSERVER: "+serverHeader+"\r\nLOCATION: "+location+"\r\n\r\n"))
	}
	return out
}

// describe serves the device description: the gateway, its WAN device
// with its WANCommonInterfaceConfig service (which miniupnpc wants of an
// IGD), its WAN connection device and that one's WANIPConnection
// service.
func (s *Server) describe(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, rootDesc, igdType, upnpUUID, wanDevice, upnpUUID, wanCommonIfc, scpdPath, commonPath,
		wanConnDev, upnpUUID, wanIPConn, scpdPath, controlPath, netip.AddrPortFrom(s.cfg.Gateway, service.UPnPPort))
}

const rootDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>%s</deviceType>
<friendlyName>natlab NAT</friendlyName>
<manufacturer>natlab</manufacturer>
<modelName>natlab NAT</modelName>
<UDN>%s</UDN>
<deviceList><device>
<deviceType>%s</deviceType>
<friendlyName>WAN device</friendlyName>
<manufacturer>natlab</manufacturer>
<modelName>natlab NAT</modelName>
<UDN>%s-wan</UDN>
<serviceList><service>
<serviceType>%s</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<SCPDURL>%s</SCPDURL>
<controlURL>%s</controlURL>
<eventSubURL>/evt/CmnIfCfg</eventSubURL>
</service></serviceList>
<deviceList><device>
<deviceType>%s</deviceType>
<friendlyName>WAN connection device</friendlyName>
<manufacturer>natlab</manufacturer>
<modelName>natlab NAT</modelName>
<UDN>%s-wanconn</UDN>
<serviceList><service>
<serviceType>%s</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<SCPDURL>%s</SCPDURL>
<controlURL>%s</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
<presentationURL>http://%v/</presentationURL>
</device>
</root>
`

// scpd lists the actions the service takes, for clients that read it.
const scpd = `<?xml version="1.0"?>
<scpd xmlns="urn:schemas-upnp-org:service-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<actionList>
<action><name>GetStatusInfo</name></action>
<action><name>GetConnectionTypeInfo</name></action>
<action><name>GetExternalIPAddress</name></action>
<action><name>AddPortMapping</name></action>
<action><name>DeletePortMapping</name></action>
<action><name>GetSpecificPortMappingEntry</name></action>
<action><name>GetGenericPortMappingEntry</name></action>
</actionList>
</scpd>
`

// soapCall is a SOAP request's action and arguments.
type soapCall struct {
	Body struct {
		Action struct {
			XMLName xml.Name
			Args    []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:",any"`
	} `xml:"Body"`
}

// upnpError is a UPnP error code and its description (UPnP IGD
// WANIPConnection:1, section 2.4).
type upnpError struct {
	code int
	desc string
}

func (e *upnpError) Error() string { return fmt.Sprintf("UPnP error %d %s", e.code, e.desc) }

var (
	errInvalidAction   = &upnpError{401, "Invalid Action"}
	errInvalidArgs     = &upnpError{402, "Invalid Args"}
	errNotAuthorized   = &upnpError{606, "Action not authorized"}
	errArrayIndex      = &upnpError{713, "SpecifiedArrayIndexInvalid"}
	errNoSuchEntry     = &upnpError{714, "NoSuchEntryInArray"}
	errWildcardExtPort = &upnpError{716, "WildCardNotPermittedInExtPort"}
	errConflict        = &upnpError{718, "ConflictInMappingEntry"}
	errRemoteHost      = &upnpError{726, "RemoteHostOnlySupportsWildcard"}
	errActionFailed    = &upnpError{501, "Action Failed"}
)

// control answers a SOAP call to the WANIPConnection service.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	var call soapCall
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil {
		err = xml.Unmarshal(body, &call)
	}
	action := call.Body.Action.XMLName.Local
	args := map[string]string{}
	for _, a := range call.Body.Action.Args {
		args[a.XMLName.Local] = strings.TrimSpace(a.Value)
	}
	from, _ := netip.ParseAddrPort(r.RemoteAddr)
	var out [][2]string
	switch space := call.Body.Action.XMLName.Space; {
	case err != nil:
		err = errInvalidAction
	case space == wanIPConn && r.URL.Path == controlPath:
		out, err = s.upnpAction(action, args, from.Addr().Unmap())
	case space == wanCommonIfc && r.URL.Path == commonPath:
		out, err = commonAction(action)
	default:
		err = errInvalidAction
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	var ue *upnpError
	if errors.As(err, &ue) || err != nil {
		if ue == nil {
			ue = errActionFailed
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, ue.code, ue.desc)
		return
	}
	var b strings.Builder
	for _, kv := range out {
		b.WriteString("<" + kv[0] + ">")
		xml.EscapeText(&b, []byte(kv[1]))
		b.WriteString("</" + kv[0] + ">")
	}
	fmt.Fprintf(w, soapResponse, action, call.Body.Action.XMLName.Space, b.String(), action)
}

// commonAction answers WANCommonInterfaceConfig: a link that is up, of
// no particular speed.
func commonAction(action string) ([][2]string, error) {
	switch action {
	case "GetCommonLinkProperties":
		return [][2]string{{"NewWANAccessType", "Ethernet"}, {"NewLayer1UpstreamMaxBitRate", "1000000000"},
			{"NewLayer1DownstreamMaxBitRate", "1000000000"}, {"NewPhysicalLinkStatus", "Up"}}, nil
	case "GetTotalBytesSent", "GetTotalBytesReceived", "GetTotalPacketsSent", "GetTotalPacketsReceived":
		return [][2]string{{"New" + strings.TrimPrefix(action, "Get"), "0"}}, nil
	}
	return nil, errInvalidAction
}

const soapResponse = `<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>
`

const soapFault = `<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>
`

// upnpAction carries out an action for a host at from.
func (s *Server) upnpAction(action string, args map[string]string, from netip.Addr) ([][2]string, error) {
	if !s.cfg.LAN.Contains(from) {
		return nil, errNotAuthorized
	}
	switch action {
	case "GetStatusInfo":
		return [][2]string{{"NewConnectionStatus", "Connected"}, {"NewLastConnectionError", "ERROR_NONE"},
			{"NewUptime", strconv.Itoa(int(s.epoch()))}}, nil
	case "GetConnectionTypeInfo":
		return [][2]string{{"NewConnectionType", "IP_Routed"}, {"NewPossibleConnectionTypes", "IP_Routed"}}, nil
	case "GetExternalIPAddress":
		return [][2]string{{"NewExternalIPAddress", s.cfg.Public.String()}}, nil
	case "AddPortMapping":
		return nil, s.addPortMapping(args, from)
	case "DeletePortMapping":
		key, _, err := s.entry(args)
		if err != nil {
			return nil, err
		}
		if key.internal.Addr() != from {
			return nil, errNotAuthorized
		}
		_, err = s.grant(lease{proto: key.proto, internal: key.internal, by: nattable.ByUPnP})
		return nil, err
	case "GetSpecificPortMappingEntry":
		key, g, err := s.entry(args)
		if err != nil {
			return nil, err
		}
		return entryArgs(key, g, false), nil
	case "GetGenericPortMappingEntry":
		i, err := strconv.Atoi(args["NewPortMappingIndex"])
		if err != nil {
			return nil, errInvalidArgs
		}
		keys, grants := s.leases()
		if i < 0 || i >= len(keys) {
			return nil, errArrayIndex
		}
		return entryArgs(keys[i], grants[i], true), nil
	}
	return nil, errInvalidAction
}

// addPortMapping makes a lease of exactly the external port asked for,
// to the host that asks: NewInternalClient must be its own address. A
// lease duration of 0, which IGD:1 means as for ever, is MaxLifetime.
func (s *Server) addPortMapping(args map[string]string, from netip.Addr) error {
	proto := strings.ToLower(args["NewProtocol"])
	ext, err1 := strconv.ParseUint(args["NewExternalPort"], 10, 16)
	in, err2 := strconv.ParseUint(args["NewInternalPort"], 10, 16)
	client, err3 := netip.ParseAddr(args["NewInternalClient"])
	secs, err4 := strconv.ParseUint(cmp.Or(args["NewLeaseDuration"], "0"), 10, 32)
	switch {
	case proto != "tcp" && proto != "udp", err1 != nil, err2 != nil, err3 != nil, err4 != nil, in == 0:
		return errInvalidArgs
	case args["NewRemoteHost"] != "" && args["NewRemoteHost"] != "0.0.0.0":
		return errRemoteHost
	case ext == 0:
		return errWildcardExtPort
	case client.Unmap() != from:
		return errNotAuthorized
	}
	lifetime := time.Duration(secs) * time.Second
	if lifetime == 0 || lifetime > MaxLifetime {
		lifetime = MaxLifetime
	}
	_, err := s.grant(lease{proto: proto, internal: netip.AddrPortFrom(from, uint16(in)), suggested: uint16(ext),
		lifetime: lifetime, by: nattable.ByUPnP, exactly: true})
	if errors.Is(err, errNotOffered) {
		return errConflict
	}
	return err
}

// entry finds the lease of NewProtocol's NewExternalPort.
func (s *Server) entry(args map[string]string) (grantKey, grant, error) {
	proto := strings.ToLower(args["NewProtocol"])
	ext, err := strconv.ParseUint(args["NewExternalPort"], 10, 16)
	if err != nil || proto != "tcp" && proto != "udp" {
		return grantKey{}, grant{}, errInvalidArgs
	}
	keys, grants := s.leases()
	for i, k := range keys {
		if k.proto == proto && grants[i].external == uint16(ext) {
			return k, grants[i], nil
		}
	}
	return grantKey{}, grant{}, errNoSuchEntry
}

// leases lists the leases in force, by protocol and external port.
func (s *Server) leases() ([]grantKey, []grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var keys []grantKey
	for k, g := range s.granted {
		if now.Before(g.expires) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b grantKey) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(s.granted[a].external, s.granted[b].external))
	})
	grants := make([]grant, len(keys))
	for i, k := range keys {
		grants[i] = s.granted[k]
	}
	return keys, grants
}

// entryArgs are a lease as the entry actions answer it; a generic entry
// names its external port and protocol too.
func entryArgs(k grantKey, g grant, generic bool) [][2]string {
	var out [][2]string
	if generic {
		out = append(out, [2]string{"NewRemoteHost", ""}, [2]string{"NewExternalPort", strconv.Itoa(int(g.external))},
			[2]string{"NewProtocol", strings.ToUpper(k.proto)})
	}
	left := max(time.Until(g.expires)/time.Second, 1)
	return append(out, [2]string{"NewInternalPort", strconv.Itoa(int(k.internal.Port()))},
		[2]string{"NewInternalClient", k.internal.Addr().String()}, [2]string{"NewEnabled", "1"},
		[2]string{"NewPortMappingDescription", "natlab lease"}, [2]string{"NewLeaseDuration", strconv.Itoa(int(left))})
}
