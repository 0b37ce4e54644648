package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/ui"
)

// The page in a real browser (Debian's chromium, headless): each act of
// the story is clicked through and what the page shows is checked, and a
// screenshot of each is saved to the artifacts directory (NATLAB_ARTIFACTS,
// by default artifacts/ui at the top of the repository).

func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("needs chromium for the browser tests (`sudo make deps` installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// Root cannot use chromium's sandbox.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1800, 1250),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Start the browser under the test's context: the timeouts of single
	// actions must not end it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

func artifacts(t *testing.T) string {
	dir := os.Getenv("NATLAB_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// page drives one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string
	mu  sync.Mutex
	// thrown are the page's uncaught JavaScript exceptions.
	thrown []string
}

func newPage(t *testing.T, ctx context.Context, dir string) *page {
	p := &page{t: t, ctx: ctx, dir: dir}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := fmt.Sprintf("%s (line %d)", d.Text, d.LineNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			p.mu.Lock()
			p.thrown = append(p.thrown, msg)
			p.mu.Unlock()
		}
	}()
	return p
}

// checkScript fails the test if the page's script threw.
func (p *page) checkScript() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.thrown {
		p.t.Errorf("the page threw: %s", e)
	}
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.checkScript()
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// until waits for a JavaScript condition on the page.
func until(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(15*time.Second))
}

// text waits for an element matching selector whose text has all of want.
func text(selector string, want ...string) chromedp.Action[chromedp.Void] {
	var conds []string
	for _, w := range want {
		conds = append(conds, fmt.Sprintf("e.textContent.includes(%q)", w))
	}
	return until(fmt.Sprintf("[...document.querySelectorAll(%q)].some(e => %s)", selector, strings.Join(conds, " && ")))
}

func choose(selector, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(selector), value)
}

// blank empties a field (SetValue refuses an empty value).
func blank(selector string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf("(e => (e.value = '', true))(document.querySelector(%q))", selector))
}

func click(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(selector))
}

// shot saves a screenshot; the animation of the last packets is let
// finish first.
func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	chromedp.Do(ctx, chromedp.Sleep(600*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Error(err)
	}
	p.t.Logf("screenshot: %s", path)
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	ctx := browser(t)
	p := newPage(t, ctx, artifacts(t))
	defer p.checkScript()

	p.run("load the page", chromedp.Navigate(s.base+"/?token="+token))
	p.run("see the lab",
		chromedp.WaitVisible(chromedp.CSS("#box-alice")),
		text("#conn", "live"),
		text("#box-nat-a", "full-cone", "203.0.113.1"),
		// bob's link has conditions, which its wire shows.
		text("#link-bob", "mtu 1400"),
	)
	url, err := chromedp.Run(p.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(url, token) {
		t.Errorf("the token stays in the address bar: %s", url)
	}
	p.shot("0-the-lab")

	// Acts I and II: click alice, then send; the page shows the packet
	// leaving nat-a with its source rewritten, and the new table row.
	p.run("send from alice",
		click("#box-alice"),
		choose("#send-to", "meet"),
		click("#send-button"),
		text("#result", "delivered"),
		text("#events li.forwarded", "nat-a", "192.168.1.2:5000", "203.0.113.1:5000", "source rewritten"),
		text("#table-nat-a tr.row", "192.168.1.2:5000", "203.0.113.1:5000"),
	)
	p.shot("1-2-address-problem-and-table")

	// Act III: a stranger knocks on nat-b, which drops it at the wall.
	p.run("knock on nat-b",
		choose("#knock-from", "stranger"),
		choose("#knock-nat", "nat-b"),
		choose("#knock-port", "40000"),
		click("#knock-button"),
		text("#result", "dropped"),
		text("#events li.dropped", "nat-b", "203.0.113.2:40000", "The wall"),
	)
	p.shot("3-the-wall")

	// Act IV: the mirror.
	p.run("ask STUN",
		choose("#stun-from", "bob"),
		choose("#stun-server", "meet"),
		click("#stun-button"),
		text("#result", "ok", "203.0.113.2:"),
	)
	p.shot("4-the-mirror")

	// Act V: the punch, one step per click.
	p.run("walk the punch",
		choose("#pair-a", "alice"),
		choose("#pair-b", "bob"),
		click("#walk-start"),
		text("#walk-steps li", "Ask the mirror"),
	)
	for n := 2; n <= 5; n++ {
		p.run(fmt.Sprintf("walk step %d", n),
			until("!document.querySelector('#walk-next').disabled"),
			click("#walk-next"),
			until(fmt.Sprintf("document.querySelectorAll('#walk-steps li').length === %d", n)),
		)
	}
	p.run("the walk's end", text("#walk-steps li:last-child", "The path works both ways"), text("#result", "direct path"))
	p.shot("5-the-trick")

	// Act VI: full cone against symmetric punches; after nat-a becomes
	// symmetric, it does not.
	p.run("punch full cone vs symmetric", click("#punch-button"), text("#result", "punch alice bob", "✓ ok"))
	p.run("switch nat-a",
		click("#box-nat-a"),
		choose("#switch-type", "symmetric"),
		click("#switch-button"),
		text("#result", "nat-a is now symmetric"),
		text("#box-nat-a", "symmetric"),
		text("#table-nat-a h3", "symmetric"),
	)
	p.run("punch symmetric vs symmetric", click("#punch-button"), text("#result", "punch alice bob", "✕ fail"))
	p.shot("6-when-it-breaks")

	// Act VII: TURN still connects them; a second window sees it too.
	otherCtx, cancel := chromedp.NewContext(ctx)
	defer cancel()
	other := newPage(t, otherCtx, p.dir)
	defer other.checkScript()
	other.run("a second window", chromedp.Navigate(s.base+"/?token="+token), text("#conn", "live"), text("#box-nat-a", "symmetric"))
	p.run("relay", click("#relay-button"), text("#result", "relay alice bob", "✓ ok"))
	other.run("the second window sees the relay", text("#result", "relay alice bob", "✓ ok"), text("#events li", "203.0.113.3:3478"))
	p.shot("7-the-relay")

	// natlab ui restarts on the same address: the page comes back by
	// itself and goes on working.
	addr := strings.TrimPrefix(s.base, "http://")
	s.shutdown(t)
	p.run("notice the server is gone", text("#conn", "reconnecting"))
	s.listen(t, addr)
	p.run("reconnect",
		text("#conn", "live"),
		click("#send-button"),
		text("#result", "send alice -> meet", "delivered"),
	)

	// natlab ui started again makes a new token: the page says to open
	// the new URL rather than retrying for ever.
	s.shutdown(t)
	s.srv.Close()
	again, err := ui.New(t.Context(), ui.Config{Lab: s.lab.Topo.Name, Token: "another-token-entirely"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	s.srv = again
	s.listen(t, addr)
	p.run("a new token", text("#no-token", "started again, with a new token"))
}

// A lab of 50 nodes is drawn whole, every box apart from every other, at
// a size that can be read.
func TestBrowserLargeLab(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	var b strings.Builder
	b.WriteString("nodes:\n  meet: {kind: server, services: [stun]}\n  stranger: {kind: host}\n")
	for i := range 8 {
		fmt.Fprintf(&b, "  nat%d: {kind: nat, type: %s}\n", i, []string{"full-cone", "restricted-cone", "port-restricted-cone", "symmetric"}[i%4])
		for j := range 5 {
			fmt.Fprintf(&b, "  h%d-%d: {kind: host, behind: nat%d}\n", i, j, i)
		}
	}
	s := serve(t, b.String())
	if len(s.lab.Topo.Nodes) != 50 {
		t.Fatalf("%d nodes", len(s.lab.Topo.Nodes))
	}
	p := newPage(t, browser(t), artifacts(t))
	defer p.checkScript()
	p.run("load a large lab", chromedp.Navigate(s.base+"/?token="+token))
	p.run("see every node",
		until("document.querySelectorAll('.box').length === 51"),
		// No two boxes overlap on the screen.
		until(`(() => {
			const r = [...document.querySelectorAll('.box rect')].map(e => e.getBoundingClientRect());
			return r.every((a, i) => r.every((b, j) => i === j || a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top));
		})()`),
		// A node's name is drawn at 12 CSS pixels or more.
		until(`document.querySelector('#box-h7-4 text.name').getBoundingClientRect().height >= 12`),
	)
	p.run("send from the last host", choose("#send-from", "h7-4"), choose("#send-to", "meet"), click("#send-button"),
		text("#events li.forwarded", "nat7", "source rewritten"))
	p.shot("large-lab")
}

// Without the token the page says what to do, and shows no lab.
func TestBrowserWithoutToken(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	ctx := browser(t)
	p := newPage(t, ctx, artifacts(t))
	defer p.checkScript()
	p.run("load the page without a token",
		chromedp.Navigate(s.base+"/"),
		text("#no-token", "needs the token"),
		until("document.querySelectorAll('.box').length === 0"),
	)
}

// noOverlap holds when no two of the controls (buttons, menus, fields,
// headings, hints) overlap on the screen, nor run out of their form.
const noOverlap = `(() => {
	const els = [...document.querySelectorAll('#controls button, #controls select, #controls input, #controls h2, #controls .hint, #controls .now')]
		.filter(e => e.offsetParent !== null);
	const r = els.map(e => e.getBoundingClientRect());
	const apart = (a, b) => a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5;
	const inside = (e, a) => { const f = e.closest('.act').getBoundingClientRect(); return a.left >= f.left - 0.5 && a.right <= f.right + 0.5 && a.top >= f.top - 0.5 && a.bottom <= f.bottom + 0.5; };
	return els.every((e, i) => inside(e, r[i]) && els.every((o, j) => i === j || e.contains(o) || o.contains(e) || apart(r[i], r[j])));
})()`

// The network from the page: a link's conditions set, refused and taken
// down with the link form, a count of messages measured, a NAT
// renumbered and a host moved with the events form, each seen in the
// picture; at the sizes of a laptop and of a projector no control
// overlaps another.
func TestBrowserNetwork(t *testing.T) {
	t.Parallel()
	testutil.CheckRoutines(t)
	s := serve(t, storyLab)
	p := newPage(t, browser(t), artifacts(t))
	defer p.checkScript()
	p.run("load the page", chromedp.Navigate(s.base+"/?token="+token), text("#conn", "live"), text("#link-bob", "mtu 1400"))

	// Click bob, give his link a delay: the label beside his wire says
	// so, and still has the MTU it had.
	p.run("set a delay on bob's link",
		click("#box-bob"),
		until(`document.querySelector('#link-node').value === 'bob'`),
		text("#link-now", "bob → nat-b: mtu 1400"),
		choose("#link-delay", "20ms"),
		click("#link-button"),
		text("#result", "link bob", "✓ ok"),
		text("#link-bob", "delay 20ms", "mtu 1400"),
		text("#link-now", "delay 20ms"),
		until(`document.querySelector('#link-delay').value === ''`),
	)
	// One direction only: bob's up direction gets a rate of its own.
	p.run("a rate up from bob",
		choose("#link-dir", "up"),
		choose("#link-rate", "1mbit"),
		click("#link-button"),
		text("#link-now", "up: delay 20ms, rate 1mbit; down: delay 20ms"),
		blank("#link-dir"),
	)
	// A loss of 200% is the step's to refuse, with its message; the link
	// stays as it was.
	p.run("refuse a loss of 200%",
		choose("#link-loss", "200%"),
		click("#link-button"),
		text("#result", "refused", "loss 200% is outside 0-100%"),
		until(`!document.querySelector('#link-bob').textContent.includes('loss')`),
		text("#link-bob", "delay 20ms"),
		blank("#link-loss"),
	)
	// Ten messages over alice's link: counted and timed.
	p.run("send ten messages",
		choose("#send-from", "alice"),
		choose("#send-to", "meet"),
		choose("#send-count", "10"),
		click("#send-button"),
		text("#result", "delivered", "10 sent, 10 delivered", "rtt min/median/max "),
		blank("#send-count"),
	)
	p.run("take bob's link down",
		click("#link-down"),
		text("#link-bob", "✕ down", "delay 20ms"),
		until(`document.querySelector('polyline.wire.down') !== null`),
		text("#link-now.down", "✕ down"),
	)
	p.shot("network-link-down")
	p.run("bring it up", click("#link-up"), text("#result", "up"),
		until(`!document.querySelector('#link-bob').textContent.includes('✕ down') && document.querySelector('polyline.wire.down') === null`))

	// Relay, then direct: the result has the RTT of the path the hosts
	// end on.
	p.run("relay then direct",
		choose("#pair-a", "alice"),
		choose("#pair-b", "bob"),
		click("#upgrade-button"),
		text("#result", "upgrade alice bob", "✓ direct"),
		text("#result .measured", "rtt "),
	)

	// Renumber nat-a to the free address the page offers.
	p.run("pick nat-a", click("#box-nat-a"), until(`document.querySelector('#renumber-public').value !== ''`))
	offered, err := chromedp.Run(p.ctx, chromedp.Value(chromedp.CSS("#renumber-public")))
	if err != nil || !strings.HasPrefix(offered, "203.0.113.") {
		t.Fatalf("the page offers to renumber nat-a to %q (%v)", offered, err)
	}
	p.run("renumber nat-a",
		click("#renumber-button"),
		text("#result", "nat-a's public address is "+offered),
		text("#box-nat-a", offered),
		text("#knock-nat", "nat-a ("+offered+")"),
		until(`document.querySelector('#renumber-public').value !== '' && document.querySelector('#renumber-public').value !== `+fmt.Sprintf("%q", offered)),
	)

	// Move alice behind nat-b: she is drawn under it, with an address of
	// its LAN, and the menu offers her only nat-a to go back to.
	p.run("move alice behind nat-b",
		click("#box-alice"),
		until(`[...document.querySelector('#move-nat').options].map(o => o.value).join() === 'nat-b'`),
		click("#move-button"),
		text("#result", "alice left nat-a", "behind nat-b"),
		until(`document.querySelector('#box-alice').dataset.parent === 'nat-b'`),
		text("#box-alice", "192.168.2."),
		// Under nat-b on the screen, too.
		until(`(() => {
			const a = document.querySelector('#box-alice rect').getBoundingClientRect(), b = document.querySelector('#box-nat-b rect').getBoundingClientRect();
			return a.top > b.bottom;
		})()`),
		until(`[...document.querySelector('#move-nat').options].map(o => o.value).join() === 'nat-a'`),
	)
	p.shot("network-moved")

	for _, size := range [][2]int64{{1024, 768}, {1400, 900}} {
		name := fmt.Sprintf("%dx%d", size[0], size[1])
		p.run("the page at "+name, chromedp.EmulateViewport(size[0], size[1]), until(noOverlap))
		p.shot("network-" + name)
	}
	// At 1400x900 the forms are beside the picture: scrolled down to the
	// events form, the picture and the result are still in view.
	p.run("scroll to the events",
		until(`(document.querySelector('#event-form').scrollIntoView({block: 'end'}), true)`),
		until(`(() => {
			const r = document.querySelector('#result').getBoundingClientRect(), b = document.querySelector('#box-alice').getBoundingClientRect();
			return window.scrollY > 0 && r.top >= 0 && r.bottom <= innerHeight && b.top >= 0 && b.bottom <= innerHeight;
		})()`),
	)
}

// tenNodeLabs are labs of ten nodes, the most the page promises names of
// 14px on a projector for: a STUN server and two NATs, one with four
// hosts behind it and one with three, and the widest ten-node lab there
// is, one NAT with nine hosts on its LAN.
var tenNodeLabs = []struct{ name, topo string }{
	{"two-lans", `nodes:
  meet: {kind: server, services: [stun]}
  home: {kind: nat, type: port-restricted-cone}
  office: {kind: nat, type: symmetric}
  phone: {kind: host, behind: home}
  laptop: {kind: host, behind: home}
  tv: {kind: host, behind: home}
  console: {kind: host, behind: home}
  alice: {kind: host, behind: office}
  bob: {kind: host, behind: office}
  carol: {kind: host, behind: office}
`},
	{"one-lan", `nodes:
  home: {kind: nat, type: full-cone}
  h1: {kind: host, behind: home}
  h2: {kind: host, behind: home}
  h3: {kind: host, behind: home}
  h4: {kind: host, behind: home}
  h5: {kind: host, behind: home}
  h6: {kind: host, behind: home}
  h7: {kind: host, behind: home}
  h8: {kind: host, behind: home}
  h9: {kind: host, behind: home}
`},
}

// A lab of ten nodes in free play, at a laptop's and two projectors'
// sizes: node names are 14px or more at 1400x900 and 1920x1080 (12px at
// 1024x768, as in the tour), and no text is drawn over other text.
func TestBrowserTenNodes(t *testing.T) {
	testutil.CheckRoutines(t)
	for _, l := range tenNodeLabs {
		t.Run(l.name, func(t *testing.T) {
			s := serve(t, l.topo)
			if n := len(s.lab.Topo.Nodes); n != 10 {
				t.Fatalf("%d nodes, not ten", n)
			}
			p := newPage(t, browser(t), artifacts(t))
			defer p.checkScript()
			p.run("load the lab", chromedp.Navigate(s.base+"/?token="+token), text("#conn", "live"),
				until("document.querySelectorAll('.box').length === 11"))
			for _, size := range [][2]int64{{1024, 768}, {1400, 900}, {1920, 1080}} {
				name := fmt.Sprintf("%dx%d", size[0], size[1])
				p.run("the window at "+name, chromedp.EmulateViewport(size[0], size[1]))
				floor := 14
				if size[0] == 1024 {
					floor = 12
				}
				small, err := p.strings(smallNames(floor))
				if err != nil {
					t.Fatal(err)
				}
				if len(small) > 0 {
					t.Errorf("%s: node names under %dpx: %v", name, floor, small)
				}
				p.noTextOverlap(name)
				p.noSideways(name)
				p.shot(fmt.Sprintf("ten-nodes-%s-%s", l.name, name))
			}
		})
	}
}
