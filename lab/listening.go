package lab

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Listening says whether a socket of process pid's network namespace
// listens on addr: over "tcp" a socket in the LISTEN state, over "udp"
// one bound and not connected, at addr or at 0.0.0.0 on its port. It
// reads /proc/PID/net/tcp or udp, which show the sockets of the
// namespace the process is in: so a service's process can be seen to
// serve each of its services, not only to live.
func Listening(pid int, network string, addr netip.AddrPort) (bool, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, network))
	if err != nil {
		return false, err
	}
	for _, a := range listeners(data, network == "tcp") {
		if a.Port() == addr.Port() && (a.Addr() == addr.Addr() || a.Addr().IsUnspecified()) {
			return true, nil
		}
	}
	return false, nil
}

// The states of /proc/net/tcp and udp that listen: TCP_LISTEN, and
// TCP_CLOSE, which an unconnected UDP socket shows.
const (
	tcpListen = 0x0A
	udpBound  = 0x07
)

// listeners parses /proc/net/tcp or udp (IPv4) into the local endpoints
// of its listening sockets. Each line after the header is "sl local rem
// st ...", with local as HEXADDR:HEXPORT, the address in the kernel's
// byte order (little endian on the machines natlab runs on: the four
// bytes of the word reversed).
func listeners(data []byte, tcp bool) []netip.AddrPort {
	want := uint64(udpBound)
	if tcp {
		want = tcpListen
	}
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(data))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 4 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil || st != want {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		raw, err := hex.DecodeString(hexAddr)
		port, perr := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil || perr != nil || len(raw) != 4 {
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(raw))
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)))
	}
	return out
}
