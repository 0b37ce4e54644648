package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/ui"
)

// textOverlaps lists the pairs of text boxes on the page that intersect:
// every text node's client rectangles (an SVG text's box), clipped by the
// ancestors that scroll or clip, compared with every other's. It is empty
// when no text is drawn over other text.
const textOverlaps = `(() => {
	const boxes = [];
	const clip = (e, r) => {
		for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
			const s = getComputedStyle(a);
			if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
				const c = a.getBoundingClientRect();
				r = { left: Math.max(r.left, c.left), right: Math.min(r.right, c.right), top: Math.max(r.top, c.top), bottom: Math.min(r.bottom, c.bottom) };
			}
		}
		return r;
	};
	const seen = new Set();
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		const e = n.parentElement;
		if (!n.textContent.trim() || !e || e.closest('script, style, option, title, [hidden]')) continue;
		let rects;
		if (e instanceof SVGElement) {
			if (seen.has(e)) continue;
			seen.add(e);
			rects = [e.getBoundingClientRect()];
		} else {
			const range = document.createRange();
			range.selectNodeContents(n);
			rects = [...range.getClientRects()];
		}
		for (const r0 of rects) {
			const r = clip(e, r0);
			if (r.right - r.left < 1 || r.bottom - r.top < 1) continue;
			boxes.push({ r, text: n.textContent.trim().slice(0, 40), node: n });
		}
	}
	const out = [];
	for (let i = 0; i < boxes.length; i++) {
		for (let j = i + 1; j < boxes.length; j++) {
			const a = boxes[i].r, b = boxes[j].r;
			if (boxes[i].node === boxes[j].node) continue;
			if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
				out.push(boxes[i].text + ' ⟷ ' + boxes[j].text);
			}
		}
	}
	return out;
})()`

// chosen holds when the ICE ladder marks rung as the one ICE chose.
func chosen(rung string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('.ladder li.chosen')].map(l => l.dataset.rung).join() === %q`, rung)
}

// smallNames lists the node names drawn smaller than px CSS pixels.
func smallNames(px int) string {
	return fmt.Sprintf(`[...document.querySelectorAll('.box text.name')].filter(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a < %d).map(t => t.textContent)`, px)
}

// tourAct is what the browser does in one act, prompt by prompt, and what
// the page must show after each.
type tourAct struct {
	slug    string
	prompts []tourPrompt
}

type tourPrompt struct {
	// click is what to click: the prompt's button, or a device.
	click string
	// clicks is how many times (the punch's five phases).
	clicks int
	// want is what #happened must then show.
	want []string
	// cond is a condition the page must then meet, if any.
	cond string
}

var tourWalk = []tourAct{
	{"1-address-problem", []tourPrompt{
		{click: "#box-phone", want: []string{"At home", "192.168.1.", "→ 203.0.113.10:", "203.0.113.50:"}},
		{click: "#do", want: []string{"At home", "after", "203.0.113.50:"}},
	}},
	{"2-translation-table", []tourPrompt{
		{click: "#do", want: []string{"A new row in home's table", "203.0.113.50:48721"}},
		{click: "#box-laptop", want: []string{"A new row in home's table", "203.0.113.50:48722"}},
		{click: "#do", want: []string{"A new row in home's table", "203.0.113.50:48723"}},
	}},
	{"3-the-wall", []tourPrompt{
		{click: "#do", want: []string{"Dropped at strict", "The wall"}},
		{click: "#do", want: []string{"A new row in strict's table"}},
		{click: "#do", want: []string{"At strict", "delivered"}},
		{click: "#do", want: []string{"send stranger -> alice", "Dropped at strict", "The wall"}},
	}},
	{"4-the-mirror", []tourPrompt{
		{click: "#do", want: []string{"alice asked from one socket", "stun1", "stun2", "The same endpoint"}},
		{click: "#do", want: []string{"bob asked from one socket", "Two different ports"}},
	}},
	{"5-the-trick", []tourPrompt{
		{click: "#do", want: []string{"Dropped at nat-b"}},
		{click: "#do", clicks: 5, want: []string{"The path works both ways"}},
		{click: "#do", want: []string{"delivered"}},
	}},
	{"6-when-it-breaks", []tourPrompt{
		{click: "#do", want: []string{"punch alice bob", "✓ ok"}},
		{click: "#do", want: []string{"cafe is now symmetric"}},
		{click: "#do", want: []string{"punch alice bob", "✕ fail"}},
		{click: "#do", want: []string{"relay alice bob", "✓ ok", "So far in this act"}},
	}},
	{"7-the-real-world", []tourPrompt{
		{click: "#do", want: []string{"ice alice dave", "✓ host"}, cond: chosen("host")},
		{click: "#do", want: []string{"ice alice bob", "punched"}, cond: chosen("srflx")},
		{click: "#do", want: []string{"ice alice carol", "✓ relay"}, cond: chosen("relay")},
	}},
}

// The tour in a real browser at a laptop's and two projectors' sizes:
// every act is entered from the progress line, its prompts done one at a
// time, and what really happened checked; after each prompt nothing
// sticks out of its card sideways, nor does the page scroll sideways; no
// two text boxes on the page intersect, node names are 14px or more at
// 1400x900 and 1920x1080 (12px at 1024x768), act II's table of 40 flows
// scrolls inside its card, and leaving an act takes its lab down. A
// screenshot of each act at each size is saved to the artifacts
// directory (ui/tour); with NATLAB_DOC_SHOTS set to docs/acts/img, the
// docs' pictures of the acts at 1400x900 too.
func TestBrowserTour(t *testing.T) {
	testutil.CheckRoutines(t)
	tr := serveTour(t)
	dir := filepath.Join(artifacts(t), "tour")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPage(t, browser(t), dir)
	defer p.checkScript()
	// Its first act is up before another is asked for: the page ignores
	// a click on the progress line while an act's lab comes up.
	p.run("load the tour", chromedp.Navigate(tr.base+"/?token="+token), text("#act-title", storyActs[0]), text("#conn", "live"))
	// The check sees text drawn over text: two labels planted on one spot.
	p.run("plant two labels on one spot", until(`(() => {
		for (const t of ['one label', 'another']) {
			const d = document.createElement('div');
			d.className = 'planted';
			d.style.cssText = 'position: fixed; top: 300px; left: 300px';
			d.textContent = t;
			document.body.appendChild(d);
		}
		return true;
	})()`))
	// They may land on the page's own text as well, as the window's size
	// and fonts have it: the pair of them must be found.
	if o, err := p.strings(textOverlaps); err != nil || !slices.Contains(o, "one label ⟷ another") {
		t.Fatalf("two labels on one spot: the check found %q (%v)", o, err)
	}
	p.run("take them away", until(`(document.querySelectorAll('.planted').forEach(e => e.remove()), true)`))
	acts := tourWalk
	if only := os.Getenv("NATLAB_TOUR_ACTS"); only != "" {
		// For a quicker look at a few acts: NATLAB_TOUR_ACTS=1,3.
		acts = nil
		for _, n := range strings.Split(only, ",") {
			var i int
			fmt.Sscan(n, &i)
			acts = append(acts, tourWalk[i-1])
		}
	}
	prev, prevID := "", ""
	for _, size := range [][2]int64{{1024, 768}, {1400, 900}, {1920, 1080}} {
		name := fmt.Sprintf("%dx%d", size[0], size[1])
		p.run("the window at "+name, chromedp.EmulateViewport(size[0], size[1]))
		// Each size starts afresh: entering an act the page shows already
		// (NATLAB_TOUR_ACTS=3 walks only act III) restarts it on a new
		// lab, where the first knock is dropped again.
		for _, a := range acts {
			var i int
			fmt.Sscan(a.slug, &i)
			title := storyActs[i-1]
			what := fmt.Sprintf("%s act %d", name, i)
			// Entered from the progress line: each act is a page of its own.
			p.run(what+": enter",
				click(fmt.Sprintf("#acts li:nth-child(%d) button", i)),
				text("#act-title", title),
				until(`document.title.includes(`+fmt.Sprintf("%q", title)+`)`),
				text("#conn", "live"),
				until(`!document.querySelector('#do').disabled`),
			)
			lab := tr.tour.Lab()
			// PREFIX-6-relay-costs: the act's own scenario.
			if !strings.Contains(lab, fmt.Sprintf("-%d-", i)) {
				t.Errorf("%s: the lab up is %q", what, lab)
			}
			// The act left is gone; one entered again is made anew.
			st, err := labstate.Load(lab)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if prev != "" && prev != lab {
				labGone(t, prev)
			} else if st.ID == prevID {
				t.Errorf("%s: entered again, its lab %s is the one it had", what, lab)
			}
			prev, prevID = lab, st.ID
			for k, pr := range a.prompts {
				step := fmt.Sprintf("%s prompt %d", what, k+1)
				n := max(pr.clicks, 1)
				for c := range n {
					p.run(fmt.Sprintf("%s click %d", step, c+1),
						until(`!document.querySelector('#do').disabled`),
						click(pr.click),
					)
				}
				var conds []chromedp.Action[chromedp.Void]
				for _, w := range pr.want {
					conds = append(conds, text("#happened", w))
				}
				if pr.cond != "" {
					conds = append(conds, until(pr.cond))
				}
				p.run(step+": what happened", conds...)
				p.noSideways(step)
			}
			p.run(what+": the takeaway", until(`!document.querySelector('#takeaway').hidden`))
			p.settle()
			p.noTextOverlap(what)
			// 14px on a projector; at 1024x768 the picture beside the
			// story is smaller, but no thumbnail: 12px.
			floor := 14
			if size[0] == 1024 {
				floor = 12
			}
			small, err := p.strings(smallNames(floor))
			if err != nil {
				t.Fatal(err)
			}
			if len(small) > 0 {
				t.Errorf("%s: node names under %dpx: %v", what, floor, small)
			}
			p.shot(fmt.Sprintf("%s-%s", name, a.slug))
			if docs := os.Getenv("NATLAB_DOC_SHOTS"); docs != "" && size[0] == 1400 {
				// The docs' pictures of each act: what a projector shows.
				p.docShot(filepath.Join(docs, "tour-"+a.slug+".jpg"))
			}
			if a.slug == "2-translation-table" {
				p.longTable(tr, what)
			}
		}
	}
}

// longFlows is how many flows the long table of act II gets.
const longFlows = 40

// longTable fills act II's table with longFlows flows, each a send from
// the phone to another port of the server, and checks that the table
// scrolls inside its card, no taller than half the window or so, rather
// than pushing the page below the fold; that nothing sticks out
// sideways; and that no text is drawn over other text.
func (p *page) longTable(tr *touring, what string) {
	p.t.Helper()
	for i := range longFlows {
		body := fmt.Sprintf(`{"step":{"send":{"from":"phone","to":"server","port":%d}}}`, 6000+i)
		req, _ := http.NewRequest("POST", tr.base+"/api/actions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(ui.TokenHeader, token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			p.t.Fatalf("%s: send %d: %s", what, i, resp.Status)
		}
	}
	p.run(what+": a long table",
		until(fmt.Sprintf(`document.querySelectorAll('#table-home tr.row').length >= %d`, longFlows)))
	// The rows scroll in the card, which stays under 70% of the window's
	// height, and the packet log scrolls under 80% of it.
	p.run(what+": the long table scrolls in its card",
		until(`(() => {
			const card = document.querySelector('#table-home'), rows = card.querySelector('.scroll');
			return rows.scrollHeight > rows.clientHeight && card.getBoundingClientRect().height <= 0.7 * innerHeight;
		})()`))
	p.run(what+": the log scrolls",
		until(`(() => {
			const log = document.querySelector('#events');
			return log.scrollHeight > log.clientHeight && log.getBoundingClientRect().height <= 0.8 * innerHeight;
		})()`),
	)
	p.settle()
	p.noSideways(what + " with a long table")
	p.noTextOverlap(what + " with a long table")
	p.shot(strings.ReplaceAll(what, " ", "-") + "-long-table")
}

// docShot saves what the window shows, as a JPEG small enough for the
// docs.
func (p *page) docShot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	jpeg := func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		q := int64(80)
		r, err := cdp.Call(ctx, tg, cdpage.CaptureScreenshot, cdpage.CaptureScreenshotParams{Format: cdpage.CaptureScreenshotFormatJpeg, Quality: &q})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}
	img, err := chromedp.Run(ctx, chromedp.Action[[]byte](jpeg))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, img, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// settle waits for the packets moving on the picture to arrive, and the
// callouts to go.
func (p *page) settle() {
	p.t.Helper()
	p.run("settle", until(`dots.length === 0 && document.querySelectorAll('#callouts g').length === 0`))
}

func (p *page) strings(js string) ([]string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
}

// noTextOverlap fails the test when two text boxes on the page intersect.
func (p *page) noTextOverlap(what string) {
	p.t.Helper()
	overlaps, err := p.strings(textOverlaps)
	if err != nil {
		p.t.Fatal(err)
	}
	if len(overlaps) > 0 {
		p.shot("overlap-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Errorf("%s: %d text boxes intersect, such as %s", what, len(overlaps), strings.Join(overlaps[:min(5, len(overlaps))], "; "))
	}
}

// Free play on an act's lab is the full control panel: its forms start
// with a host behind a NAT sending to someone else (act III's lab has
// hosts outside first: it began "from friend to friend"), STUN can be
// asked of two servers from one socket, disabled buttons say why, and
// the page's icon is there.
func TestBrowserFreePlay(t *testing.T) {
	testutil.CheckRoutines(t)
	tr := serveTour(t)
	if err := tr.tour.Enter(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	p := newPage(t, browser(t), artifacts(t))
	defer p.checkScript()
	p.run("free play on act III's lab",
		chromedp.Navigate(tr.base+"/play?token="+token),
		text("#conn", "live"),
		until(`document.querySelector('#send-from').value === 'alice'`),
		until(`document.querySelector('#send-to').value !== 'alice' && document.querySelector('#send-to').value !== ''`),
		// No STUN server in this lab: the button says so.
		until(`document.querySelector('#stun-button').disabled && document.querySelector('#stun-button').title.includes('no server of this lab runs stun')`),
		until(`fetch('/favicon.ico').then(r => r.status === 200 && r.headers.get('Content-Type') === 'image/svg+xml')`),
	)
	p.run("knock as the page starts", click("#send-button"), text("#result", "send alice -> friend", "delivered"))
	if err := tr.tour.Enter(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	p.run("free play on act IV's lab: two servers from one socket",
		chromedp.Navigate(tr.base+"/play?token="+token),
		text("#conn", "live"),
		choose("#stun-from", "alice"),
		choose("#stun-server", "stun1"),
		choose("#stun-server2", "stun2"),
		click("#stun-button"),
		text("#result", "stun from alice to stun1, stun2", "stun1 sees 203.0.113.", "stun2 sees 203.0.113."),
	)
	p.run("one server names the one that answered",
		choose("#stun-server2", ""),
		choose("#stun-server", "stun2"),
		click("#stun-button"),
		text("#result", "to the STUN server stun2"),
	)
}

// overflows lists what sticks out of its card sideways: an element or a
// line of text wider than the card it is in, where nothing between them
// scrolls or clips; and the page itself, when it scrolls sideways. It is
// empty when every table and log scrolls or wraps inside its card.
const overflows = `(() => {
	const out = [];
	const de = document.documentElement;
	if (de.scrollWidth > window.innerWidth) out.push('the page scrolls sideways: ' + de.scrollWidth + 'px in a window of ' + window.innerWidth + 'px');
	const cards = document.querySelectorAll('.nat-table, #log, #happened, .prompt, #story, #picture, .act, #controls > .result, #picture > .result');
	// held: a, or an element above it up to the card, scrolls or clips.
	const held = (a, card) => {
		for (; a && a !== card.parentElement; a = a.parentElement) {
			if (getComputedStyle(a).overflowX !== 'visible') return true;
		}
		return false;
	};
	const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '');
	for (const card of cards) {
		if (card.offsetParent === null && getComputedStyle(card).position !== 'fixed') continue;
		const c = card.getBoundingClientRect();
		const past = (r) => r.width > 0 && (r.right > c.right + 1 || r.left < c.left - 1);
		for (const e of card.querySelectorAll('*')) {
			if (e.closest('svg') || e.offsetParent === null && !(e instanceof SVGElement)) continue;
			if (past(e.getBoundingClientRect()) && !held(e.parentElement, card)) {
				out.push(name(e) + ' is wider than its card ' + name(card) + ': ' + (e.textContent || '').trim().slice(0, 40));
			}
		}
		const walk = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const e = n.parentElement;
			if (!n.textContent.trim() || !e || e.closest('svg, script, style, option, [hidden]') || held(e, card)) continue;
			const range = document.createRange();
			range.selectNodeContents(n);
			if ([...range.getClientRects()].some(past)) out.push('the text "' + n.textContent.trim().slice(0, 40) + '" runs out of its card ' + name(card));
		}
	}
	return [...new Set(out)];
})()`

// noSideways fails the test when something sticks out of its card
// sideways, or the page scrolls sideways.
func (p *page) noSideways(what string) {
	p.t.Helper()
	out, err := p.strings(overflows)
	if err != nil {
		p.t.Fatal(err)
	}
	if len(out) > 0 {
		p.shot("sideways-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Errorf("%s: %d things stick out sideways, such as %s", what, len(out), strings.Join(out[:min(5, len(out))], "; "))
	}
}
