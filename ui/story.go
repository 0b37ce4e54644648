package ui

import "encoding/json"

// chapter is one act of the web tour: the story's title, what the page
// says, the scenario whose lab it runs, and its prompts, one at a time.
type chapter struct {
	Number   string `json:"number"`
	Title    string `json:"title"`
	Scenario string `json:"scenario"`
	// Narrative is a few short paragraphs: what the act is about, and
	// what the reader will see happen for real.
	Narrative []string `json:"narrative"`
	Prompts   []prompt `json:"prompts"`
	Takeaway  string   `json:"takeaway"`
	// Focus are the NATs whose tables the page shows.
	Focus []string `json:"focus"`
}

// prompt is one thing the reader is asked to do.
type prompt struct {
	// Text is the prompt, after its ▸.
	Text string `json:"text"`
	// Button labels the button that does it; with Pick, clicking one of
	// those devices in the picture does it too.
	Button string `json:"button"`
	// Pick are the devices the reader may click: the action's "$pick"
	// is the one clicked.
	Pick []string `json:"pick,omitempty"`
	// Action is what is posted to /api/actions.
	Action json.RawMessage `json:"action"`
	// Show is what the page shows of what happened: packet (before and
	// after the rewrite), row (the table's new row), drop (the drop and
	// its rule), stun (the endpoints the servers saw), walk (the punch's
	// steps), path (a punch, relay or send with its RTT), switch, ice
	// (the rung of the ladder).
	Show string `json:"show"`
	// Control is a form the prompt needs: "switch" (a NAT and a type).
	Control string `json:"control,omitempty"`
}

func act(s string) json.RawMessage { return json.RawMessage(s) }

// chapters are the story's seven acts, in its order and with its titles.
var chapters = []chapter{
	{
		Number: "I", Title: "The Address Problem", Scenario: "act1-address-problem", Focus: []string{"home"},
		Narrative: []string{
			"A household has a phone, a laptop, a TV and a console, and its ISP gave it one public IPv4 address: 203.0.113.50. There are not enough IPv4 addresses for every device on earth, so the router gives each device a private one, 192.168.1.x, which means nothing on the internet.",
			"The router is a NAT. Every packet going out leaves with its source rewritten to the public address and a port the router picks. The server on the internet only ever sees 203.0.113.50.",
			"These are real Linux network namespaces and real nftables rules. When you click a device, it sends a UDP packet to the server, and the page shows the packet as the kernel saw it before and after the rewrite.",
		},
		Prompts: []prompt{
			{Text: "Click a device to send a request to the server.", Button: "Send from the phone", Pick: []string{"phone", "laptop", "tv", "console"},
				Action: act(`{"step":{"send":{"from":"$pick","to":"server"}}}`), Show: "packet"},
			{Text: "Click another device. It sends from port 5000 too: see which public port the router gives it.", Button: "Send from the laptop", Pick: []string{"phone", "laptop", "tv", "console"},
				Action: act(`{"step":{"send":{"from":"$pick","to":"server"}}}`), Show: "packet"},
		},
		Takeaway: "NAT lets many private devices share one public address by rewriting the headers of their packets and keeping a table of who sent what.",
	},
	{
		Number: "II", Title: "The Translation Table", Scenario: "act2-translation-table", Focus: []string{"home"},
		Narrative: []string{
			"To give each answer to the right device, the router keeps a table: private ip:port, the public ip:port it picked, and where the packet went. An answer is looked up by the public port it comes back to.",
			"This router, home, hands out its public ports in order, from 48721 up. Each new connection adds a row to its table. The table on this page is read from the kernel's connection tracking and natlab's nftables maps as it changes.",
		},
		Prompts: []prompt{
			{Text: "Create a connection: click a device behind home.", Button: "Connect the phone", Pick: []string{"phone", "laptop", "tv"},
				Action: act(`{"step":{"send":{"from":"$pick","to":"server"}}}`), Show: "row"},
			{Text: "Create another connection from a second device.", Button: "Connect the laptop", Pick: []string{"phone", "laptop", "tv"},
				Action: act(`{"step":{"send":{"from":"$pick","to":"server"}}}`), Show: "row"},
			{Text: "And a third: watch its row appear with the next port.", Button: "Connect the TV", Pick: []string{"phone", "laptop", "tv"},
				Action: act(`{"step":{"send":{"from":"$pick","to":"server"}}}`), Show: "row"},
		},
		Takeaway: "From outside, the port is the only thing telling the devices apart, and only the router knows which port belongs to whom.",
	},
	{
		Number: "III", Title: "The Wall", Scenario: "act3-the-wall", Focus: []string{"strict"},
		Narrative: []string{
			"A packet from the internet that nobody inside asked for finds no row in the table. The router has nobody to give it to, so it drops it.",
			"alice is behind strict, a port-restricted cone NAT. friend is on the internet. First friend knocks on port 5000 of strict's public address, and the knock is dropped at the wall. Then alice sends a packet out to friend, which adds a row to strict's table, and friend's next knock gets in. A stranger's knock on the same port is still dropped: the row lets in only friend's address and port.",
			"The drops are real: the page shows the packet the kernel dropped, and the rule that dropped it.",
		},
		Prompts: []prompt{
			{Text: "Send an unsolicited packet: friend knocks on port 5000 of strict's public address.", Button: "Knock from friend",
				Action: act(`{"step":{"send":{"from":"friend","to":"alice"}}}`), Show: "drop"},
			{Text: "Now let alice send out to friend, from port 5000.", Button: "Send from alice to friend",
				Action: act(`{"step":{"send":{"from":"alice","to":"friend"}}}`), Show: "row"},
			{Text: "Knock from friend again, on the same port.", Button: "Knock from friend again",
				Action: act(`{"step":{"send":{"from":"friend","to":"alice"}}}`), Show: "packet"},
			{Text: "A stranger tries the same opening.", Button: "Knock from stranger",
				Action: act(`{"step":{"send":{"from":"stranger","to":"alice"}}}`), Show: "drop"},
		},
		Takeaway: "Going out is easy; coming in is impossible unless a mapping exists. Two players behind two NATs are at a standoff: neither can reach the other first.",
	},
	{
		Number: "IV", Title: "The Mirror", Scenario: "act4-the-mirror", Focus: []string{"home", "office"},
		Narrative: []string{
			"A device cannot see its own public address: the router writes it into the packet only on the way out. A server on the internet sees it, and can say so. That is STUN: the device asks, and the server answers with the address and port the request came from.",
			"alice asks two STUN servers, stun1 and stun2, from one socket. She is behind home, a port-restricted cone NAT, so both servers see the same public endpoint, and alice can give it to anyone. bob is behind office, a symmetric NAT, which picks a new port for every destination: the two servers see two different ports.",
		},
		Prompts: []prompt{
			{Text: "Query the STUN servers: alice asks stun1 and stun2 from one socket.", Button: "alice asks stun1 and stun2",
				Action: act(`{"step":{"stun":{"from":"alice","servers":["stun1","stun2"],"expect":"same"}}}`), Show: "stun"},
			{Text: "Now bob, behind a symmetric NAT, asks the same two servers.", Button: "bob asks stun1 and stun2",
				Action: act(`{"step":{"stun":{"from":"bob","servers":["stun1","stun2"],"expect":"same"}}}`), Show: "stun"},
		},
		Takeaway: "STUN mirrors your public ip:port back to you. Two peers still need a way to swap theirs.",
	},
	{
		Number: "V", Title: "The Trick", Scenario: "act5-the-trick", Focus: []string{"nat-a", "nat-b"},
		Narrative: []string{
			"alice and bob are each behind a port-restricted cone NAT. Neither can reach the other cold: each NAT drops what the other sends first.",
			"The trick is to send at about the same time. Both ask STUN for their public endpoints and swap them through a rendezvous server, meet. Then each sends to the other. alice's first packet is dropped at bob's NAT, but on its way out it opened a row in alice's own NAT. bob's packet then finds that row and gets in; on its way out it opened a row in bob's NAT, so alice's next packet gets in too.",
			"Step through the five phases. Each runs for real, and the page says what each NAT did.",
		},
		Prompts: []prompt{
			{Text: "First, alice sends to bob cold.", Button: "Send from alice to bob",
				Action: act(`{"step":{"send":{"from":"alice","to":"bob"}}}`), Show: "drop"},
			{Text: "Step through each phase of the hole punch.", Button: "Start the punch",
				Action: act(`{"walk":{"punch":{"between":["alice","bob"]}}}`), Show: "walk"},
			{Text: "Send from alice to bob again, over the punched path.", Button: "Send from alice to bob",
				Action: act(`{"step":{"send":{"from":"alice","to":"bob"}}}`), Show: "path"},
		},
		Takeaway: "Each outbound packet punches a hole in its own NAT. Then the peers talk directly, with no relay in the middle.",
	},
	{
		Number: "VI", Title: "When It Breaks", Scenario: "act6-relay-costs", Focus: []string{"home", "cafe"},
		Narrative: []string{
			"NATs differ in whom they let in. A full cone lets anyone send to a mapping; an address-restricted cone only the addresses the host has sent to; a port-restricted cone only the exact addresses and ports. A symmetric NAT gives every destination a new public port, so the port STUN saw is useless to the peer.",
			"alice is behind home, a port-restricted cone, and bob behind cafe, an address-restricted cone. Each way, alice and bob are 10 ms from their NATs, and the TURN relay is 40 ms from the internet. You will punch, then switch cafe to symmetric in the kernel and punch again, then relay through TURN.",
		},
		Prompts: []prompt{
			{Text: "Punch between alice and bob.", Button: "Punch",
				Action: act(`{"step":{"punch":{"between":["alice","bob"]}}}`), Show: "path"},
			{Text: "Switch the NAT type: make cafe symmetric.", Button: "Switch", Control: "switch",
				Action: act(`{"switch":{"node":"$nat","type":"$type"}}`), Show: "switch"},
			{Text: "Punch again.", Button: "Punch again",
				Action: act(`{"step":{"punch":{"between":["alice","bob"],"timeout":"3s"}}}`), Show: "path"},
			{Text: "Relay through TURN, which always works: compare its round trip.", Button: "Relay",
				Action: act(`{"step":{"relay":{"between":["alice","bob"]}}}`), Show: "path"},
		},
		Takeaway: "A symmetric NAT defeats hole punching. A TURN relay always works, but every packet takes the detour, adding latency and costing the relay's bandwidth.",
	},
	{
		Number: "VII", Title: "The Real World", Scenario: "act7-ice-ladder", Focus: []string{"home", "cone", "office"},
		Narrative: []string{
			"Real applications do not guess. ICE, used by WebRTC (Meet, Discord), climbs a ladder: it gathers every way to be reached (the host's own address, the public endpoint STUN saw, an address on a TURN relay), tries them all, and keeps the most direct one that works.",
			"Here real ICE agents (pion/ice) run inside the namespaces: alice and dave share a LAN, bob is behind a full cone, carol behind a symmetric NAT. Each run lands on a different rung.",
			"The rest of the real world is in natlab tour --act VII: Tailscale starts on its DERP relay and moves to a punched path; game servers use port forwarding or NAT-PMP; ngrok and playit tunnel out to a public relay; IPv6 gives every device a routable address.",
		},
		Prompts: []prompt{
			{Text: "Run ICE between alice and dave, on one LAN.", Button: "ICE: alice and dave",
				Action: act(`{"step":{"ice":{"between":["alice","dave"]}}}`), Show: "ice"},
			{Text: "Run ICE between alice and bob, behind two NATs.", Button: "ICE: alice and bob",
				Action: act(`{"step":{"ice":{"between":["alice","bob"]}}}`), Show: "ice"},
			{Text: "Run ICE between alice and carol, who is behind a symmetric NAT.", Button: "ICE: alice and carol",
				Action: act(`{"step":{"ice":{"between":["alice","carol"]}}}`), Show: "ice"},
		},
		Takeaway: "NAT was a workaround for running out of IPv4 addresses, and all of this is a workaround for the workaround. IPv6 gives every device a routable address.",
	},
}
