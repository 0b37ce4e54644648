package linkcond

// View is a link's conditions as natlab's JSON views show them, natlab
// status --json and the page's state alike (both make it with NewView, so
// that they cannot drift apart): durations and rates as a scenario file
// writes them ("30ms", "10mbit"), percentages as numbers (1 for 1%), each
// direction always there, a condition left out when it is not set.
type View struct {
	// Up is from the node toward what it is behind, or the internet;
	// Down toward the node.
	Up   DirectionView `json:"up"`
	Down DirectionView `json:"down"`
	// MTU is left out when it is the default.
	MTU int `json:"mtu,omitempty"`
	// Text is the link on one line, as Link.String writes it.
	Text string `json:"text"`
}

// DirectionView is one direction of a View.
type DirectionView struct {
	Delay     string  `json:"delay,omitempty"`
	Jitter    string  `json:"jitter,omitempty"`
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
	Rate      string  `json:"rate,omitempty"`
}

// NewView is l as the JSON views show it; nil for a perfect wire, so that
// a view's "link" is there only for a link with conditions.
func NewView(l Link) *View {
	if l.IsZero() {
		return nil
	}
	return &View{Up: directionView(l.Up), Down: directionView(l.Down), MTU: l.MTU, Text: l.String()}
}

func directionView(d Direction) DirectionView {
	v := DirectionView{Loss: d.Loss, Duplicate: d.Duplicate, Reorder: d.Reorder}
	if d.Delay != 0 {
		v.Delay = FormatDuration(d.Delay)
	}
	if d.Jitter != 0 {
		v.Jitter = FormatDuration(d.Jitter)
	}
	if d.Rate != 0 {
		v.Rate = d.Rate.String()
	}
	return v
}
