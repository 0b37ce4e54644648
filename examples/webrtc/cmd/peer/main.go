// Command peer is one side of a WebRTC data channel (pion/webrtc) that
// signals over its standard input and output: run an offerer and an
// answerer, and carry each one's first line to the other's input.
//
//	peer -role offer  -ice stun:203.0.113.10:3478,turn:203.0.113.10:3478 -user U -password P
//	peer -role answer -ice stun:203.0.113.10:3478,turn:203.0.113.10:3478 -user U -password P
//
// Each then prints the selected candidate pair and the time the channel
// took to open as a line of JSON, and hangs up when its input closes.
package main

import (
	"os"

	"github.com/natlab/natlab/examples/webrtc/peer"
)

func main() { os.Exit(peer.Main(os.Args[1:])) }
