// natlab ui: draws a running lab from /api/events and sends actions to
// /api/actions. Everything shown comes from the server; nothing here
// simulates a packet.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// The token comes in the URL natlab ui printed; it is kept for this tab
// and taken out of the address bar, which a class may be looking at.
const token = (() => {
  const url = new URL(location.href);
  const t = url.searchParams.get("token");
  if (t) {
    sessionStorage.setItem("natlab-token", t);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    return t;
  }
  return sessionStorage.getItem("natlab-token") || "";
})();

let state = null;        // the last state event
let boxes = {};          // name -> layout box
let tables = {};         // nat -> table
let seenRows = {};       // nat -> Set of row keys already shown
let selected = null;     // the clicked node
const dots = [];         // packets moving on the picture
const maxDots = 40;
const labelledDots = 4;
const maxLog = 200;
// panel is whether this is the full control panel (index.html) or the
// tour's page (tour.html, whose tour.js drives the same picture).
const panel = !!$("controls");
// only, when set, are the NATs whose tables are shown (the tour's act).
let only = null;
// slow stretches the packets' animation, for a class to follow.
let slow = 1;
// hooks are called with each event after this script has drawn it.
const hooks = { state: [], packet: [], table: [], action: [], open: [], pick: [] };
let source = null;       // the event stream

// ---- connection ----

function connect() {
  if (source) source.close();
  const es = new EventSource("/api/events?token=" + encodeURIComponent(token));
  source = es;
  es.onopen = () => {
    setConn(true);
    // The server replays what happened just before this connection.
    $("events").replaceChildren();
    for (const h of hooks.open) h();
  };
  es.onerror = () => {
    setConn(false);
    // The browser retries by itself unless the server refused the
    // stream: then find out why, and try again ourselves.
    if (es.readyState === EventSource.CLOSED && source === es) refused();
  };
  const on = (type, draw) => es.addEventListener(type, (e) => {
    if (source !== es) return;
    const v = JSON.parse(e.data);
    draw(v);
    for (const h of hooks[type] || []) h(v);
  });
  on("state", render);
  on("packet", packet);
  on("replay", logPacket);
  on("table", table);
  on("action", actionEvent);
  es.addEventListener("gone", () => {
    es.close();
    const c = $("conn");
    c.textContent = "the lab was taken down";
    c.className = "conn down";
    // The tour's page keeps its way to the other acts, whose labs are
    // their own.
    for (const b of document.querySelectorAll(panel ? "button" : "#do")) {
      b.disabled = true;
      b.title = "The lab was taken down";
    }
  });
}

// refused asks the server why the stream closed: a natlab ui started
// again has a new token, which this tab does not have.
async function refused() {
  try {
    const r = await fetch("/api/state", { headers: { "X-Natlab-Token": token } });
    if (r.status === 401) {
      sessionStorage.removeItem("natlab-token");
      $("no-token").hidden = false;
      $("no-token").querySelector("p").textContent = "natlab ui was started again, with a new token. Open the URL it printed this time.";
      return;
    }
  } catch (e) {
    // Not there at all: keep trying.
  }
  setTimeout(connect, 2000);
}

function setConn(up) {
  const c = $("conn");
  c.textContent = up ? "live" : "reconnecting…";
  c.className = "conn " + (up ? "up" : "down");
}

// ---- the whole state ----

function render(s) {
  state = s;
  boxes = {};
  for (const b of s.layout.boxes) boxes[b.name] = b;
  if ($("lab-name")) $("lab-name").textContent = s.lab;
  if ($("description")) $("description").textContent = s.description || s.source;
  const w = $("warnings");
  const warnings = s.warnings || [];
  w.hidden = warnings.length === 0;
  w.textContent = warnings.join(" · ");
  drawTopology();
  stick();
  if (panel) fillChoices();
  tables = {};
  $("tables").replaceChildren();
  for (const nat of s.choices.nats || []) {
    if (s.tables[nat]) table(s.tables[nat]);
  }
  if (panel) disable("walk-next", s.walk ? "" : "no punch is being walked: start one with Punch step by step");
}

// The forms are beside the picture on a wide window (style.css): there
// the picture and the result stay in view as the forms scroll, so that
// what a form changes is seen, if they fit the window. Under the forms,
// on a narrow one, they would cover the forms.
const wide = matchMedia("(min-width: 1201px)");

function stick() {
  if (!panel) return;
  const p = $("picture");
  p.classList.remove("stick");
  p.classList.toggle("stick", wide.matches && p.offsetHeight < innerHeight - 16);
}

function node(name) {
  return state.nodes.find((n) => n.name === name);
}

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// labelRoom is how wide the label beside box b's wire may be: up to the
// next wire to its right on the same row, or the picture's edge, so that
// labels neither run into each other nor get cut off.
function labelRoom(L, b) {
  const x = b.up[0].x + 6;
  let end = L.width;
  for (const o of L.boxes) {
    if (o !== b && o.up && o.up[0].y === b.up[0].y && o.up[0].x > b.up[0].x) end = Math.min(end, o.up[0].x);
  }
  return end - x;
}

// fitText sets t's text in lines no wider than room, broken after the
// commas that part a link's conditions and stacked upwards from t's
// baseline (the label sits above its box), so that a long label is read
// whole rather than cut; past maxLabelLines the last line is shortened
// with an ellipsis, and the whole text is in its title.
const maxLabelLines = 3;
function fitText(t, text, room) {
  const width = (s) => {
    t.textContent = s;
    return t.getComputedTextLength();
  };
  const lines = [];
  let line = "";
  for (const part of text.split(", ")) {
    const longer = line ? line + ", " + part : part;
    if (line && width(longer) > room && lines.length < maxLabelLines - 1) {
      lines.push(line + ",");
      line = part;
    } else {
      line = longer;
    }
  }
  lines.push(line);
  let last = lines[lines.length - 1];
  for (let n = last.length - 1; n > 0 && width(last) > room; n--) {
    last = last.slice(0, n).trimEnd() + "…";
  }
  lines[lines.length - 1] = last;
  t.textContent = lines[0];
  const height = t.getBBox().height || 14;
  const x = t.getAttribute("x");
  const y = +t.getAttribute("y") - (lines.length - 1) * height;
  t.textContent = "";
  lines.forEach((l, i) => {
    el("tspan", { x, y: y + i * height }, t).textContent = l;
  });
}

function drawTopology() {
  const svg = $("topo");
  const L = state.layout;
  svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
  svg.replaceChildren();
  const wires = el("g", {}, svg);
  for (const b of L.boxes) {
    if (!b.up) continue;
    const n = node(b.name);
    const link = n && n.link;
    const down = n && n.link_down;
    const cls = down ? "wire down" : link ? "wire shaped" : "wire";
    const wire = el("polyline", { class: cls, points: b.up.map((p) => `${p.x},${p.y}`).join(" ") }, wires);
    if (!link && !down) continue;
    // A link with conditions is drawn dashed, its conditions beside the
    // wire just above the box; in full when hovered, as they may be long.
    // A link taken down is red, and says so first.
    const text = linkText(n);
    el("title", {}, wire).textContent = `${b.name}'s link: ${text}`;
    const x = b.up[0].x + 6;
    const t = el("text", { class: down ? "link down" : "link", id: "link-" + b.name, x, y: b.up[0].y - 8 }, wires);
    fitText(t, text, labelRoom(L, b) - 6);
    el("title", {}, t).textContent = text;
  }
  const g = el("g", {}, svg);
  for (const b of L.boxes) {
    const n = node(b.name);
    const kind = n ? n.kind : "internet";
    const box = el("g", { class: `box ${kind}`, id: "box-" + b.name, "data-node": b.name, "data-parent": b.parent || "" }, g);
    el("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: kind === "internet" ? 36 : 8 }, box);
    const lines = labelOf(b.name, n);
    const top = b.y + b.h / 2 - (lines.length - 1) * 10 + 5;
    lines.forEach(([cls, text], i) => {
      const t = el("text", { x: b.x + b.w / 2, y: top + i * 20, class: cls }, box);
      t.textContent = text;
    });
    if (n) box.addEventListener("click", () => pick(n));
  }
  el("g", { id: "callouts" }, svg);
  el("g", { id: "dots" }, svg);
  if (selected) mark(selected);
}

// linkText is n's uplink on one line: "down" first when it was taken
// down, then its conditions.
function linkText(n) {
  const parts = [];
  if (n.link_down) parts.push("✕ down");
  if (n.link) parts.push(n.link.text);
  return parts.join(" · ");
}

function labelOf(name, n) {
  if (!n) return [["name", "internet"], ["", state.internet]];
  switch (n.kind) {
    case "nat":
      return [["name", n.name], ["type", n.nat.type || `${short(n.nat.mapping)} / ${short(n.nat.filtering)}`], ["", n.addresses[0]], ["", "LAN " + n.nat.lan]];
    case "server":
      return [["name", n.name], ["", (n.services || []).join(", ") || "server"], ...n.addresses.slice(0, 2).map((a) => ["", a])];
    default: {
      const lines = [["name", n.name], ["", n.addresses[0]]];
      // A host's own firewall, beside whatever NAT it is behind.
      if (n.firewall) lines.push(["", "firewall " + n.firewall]);
      return lines;
    }
  }
}

function short(dep) {
  return { "endpoint-independent": "EI", "address-dependent": "AD", "address-and-port-dependent": "APD" }[dep] || dep;
}

// Clicking a device picks it in the forms: a host sends, a server
// receives, a NAT is the one to switch.
function pick(n) {
  selected = n.name;
  mark(n.name);
  if (!panel) {
    for (const h of hooks.pick) h(n);
    return;
  }
  setSelect("link-node", n.name);
  showLink();
  if (n.kind === "host") {
    setSelect("move-host", n.name);
    fillMoveTargets();
    setSelect("send-from", n.name);
    setSelect("stun-from", n.name);
    setSelect("pair-a", n.name);
    if ($("pair-b").value === n.name) setSelect("pair-b", otherHost(n.name));
  } else if (n.kind === "server") {
    setSelect("send-to", n.name);
    setSelect("knock-from", n.name);
    setSelect("stun-server", n.name);
  } else if (n.kind === "nat") {
    setSelect("switch-nat", n.name);
    setSelect("knock-nat", n.name);
    setSelect("switch-type", n.nat.type);
    setSelect("reboot-nat", n.name);
    setSelect("renumber-nat", n.name);
    suggestPublic(true);
  }
}

function mark(name) {
  for (const b of document.querySelectorAll(".box.selected")) b.classList.remove("selected");
  const b = $("box-" + name);
  if (b) b.classList.add("selected");
}

function setSelect(id, value) {
  const s = $(id);
  if ([...s.options].some((o) => o.value === value)) s.value = value;
}

function options(id, values, labels) {
  const s = $(id);
  const keep = s.value;
  s.replaceChildren();
  values.forEach((v, i) => {
    const o = document.createElement("option");
    o.value = v;
    o.textContent = labels ? labels[i] : v;
    s.appendChild(o);
  });
  if (values.includes(keep)) s.value = keep;
  return s;
}

function fillChoices() {
  const c = state.choices;
  const hosts = c.hosts || [], servers = c.servers || [], nats = c.nats || [];
  // Hosts behind a NAT first: their packets are what the story is about.
  const inside = hosts.filter((h) => node(h).behind);
  const from = options("send-from", [...inside, ...hosts.filter((h) => !inside.includes(h)), ...servers]);
  const to = options("send-to", [...servers, ...hosts]);
  if (!to.value && servers.length) to.value = servers[0];
  if (to.value === from.value) {
    // Not from a node to itself: the first other outside the sender's NAT.
    const mine = node(from.value) && node(from.value).behind;
    const other = [...servers, ...hosts].find((n) => n !== from.value && node(n).behind !== mine) || [...servers, ...hosts].find((n) => n !== from.value);
    if (other) to.value = other;
  }
  options("knock-from", c.outside || []);
  options("knock-nat", nats, nats.map((n) => `${n} (${node(n).addresses[0]})`));
  options("stun-from", hosts);
  options("stun-server", c.stun || []);
  // A second server, asked from the same socket: the point of act IV.
  options("stun-server2", ["", ...(c.stun || [])], ["no other", ...(c.stun || [])]);
  const a = options("pair-a", hosts);
  const b = options("pair-b", hosts);
  if (a.value === b.value) {
    // Two hosts behind different NATs, where there are such: the pair a
    // punch is about.
    const behind = hosts.filter((h) => node(h).behind);
    const first = behind[0] || hosts[0];
    a.value = first || "";
    b.value = otherHost(first) || "";
  }
  options("switch-nat", nats);
  options("switch-type", c.types || []);
  const nat = node($("switch-nat").value);
  if (nat && !$("switch-type").dataset.touched) setSelect("switch-type", nat.nat.type);
  const noStun = (c.stun || []).length ? "" : "no server of this lab runs stun";
  const pair = hosts.length >= 2 ? "" : "this lab has fewer than two hosts";
  disable("stun-button", noStun);
  disable("relay-button", pair || ((c.turn || []).length ? "" : "no server of this lab runs turn"));
  disable("knock-button", nats.length ? ((c.outside || []).length ? "" : "nobody is on the internet to knock") : "this lab has no NAT");
  for (const id of ["walk-start", "punch-button", "ice-button"]) disable(id, pair || noStun);
  disable("upgrade-button", pair || noStun || ((c.turn || []).length || (c.derp || []).length ? "" : "no server of this lab runs turn or derp"));
  disable("switch-button", nats.length ? "" : "this lab has no NAT");

  options("link-node", c.links || []);
  showLink();
  const noLinks = (c.links || []).length ? "" : "this lab has no node with a link";
  for (const id of ["link-button", "link-clear", "link-down", "link-up"]) disable(id, noLinks);
  options("reboot-nat", nats);
  options("renumber-nat", nats);
  suggestPublic(false);
  disable("reboot-button", nats.length ? "" : "this lab has no NAT");
  disable("renumber-button", nats.length ? "" : "this lab has no NAT");
  options("move-host", hosts);
  fillMoveTargets();
}

// disable disables button id when why is not empty, and says why in its
// tooltip; an enabled button keeps its own.
function disable(id, why) {
  const b = $(id);
  if (!b.dataset.title) b.dataset.title = b.title || "";
  b.disabled = !!why;
  b.title = why ? "Not possible here: " + why : b.dataset.title;
}

// showLink says what the chosen node's uplink has now.
function showLink() {
  const n = node($("link-node").value);
  const now = $("link-now");
  if (!n) {
    now.textContent = "";
    return;
  }
  const to = n.behind || "the internet";
  now.className = "now" + (n.link_down ? " down" : "");
  now.textContent = `${n.name} → ${to}: ` + (n.link || n.link_down ? linkText(n) : "a perfect wire");
}

// suggestPublic offers a free address of the chosen NAT's uplink to
// renumber it to; one typed in is kept unless the NAT changes (force).
function suggestPublic(force) {
  const input = $("renumber-public");
  const free = (state.choices.publics || {})[$("renumber-nat").value] || "";
  input.placeholder = free;
  if (force || !input.dataset.touched) {
    input.value = free;
    delete input.dataset.touched;
  }
}

// fillMoveTargets offers the NATs the chosen host can move behind: every
// other than the one it is behind.
function fillMoveTargets() {
  const h = node($("move-host").value);
  const targets = (state.choices.nats || []).filter((n) => !h || n !== h.behind);
  options("move-nat", targets);
  disable("move-button", !h ? "this lab has no host" : targets.length ? "" : "no other NAT to move " + h.name + " behind");
}

// ---- packets ----

function packet(p) {
  logPacket(p);
  if (!boxes[p.nat]) return;
  const inbound = p.side === "wan";
  const from = p.from && boxes[p.from] ? p.from : neighbour(p.nat, p.side);
  const to = p.to && boxes[p.to] ? p.to : neighbour(p.nat, p.side === "lan" ? "wan" : "lan");
  const label = (text) => {
    const [src, dst] = text.split(" → ");
    return (p.dst_changed || (inbound && !p.src_changed) ? "to " + dst : "from " + src);
  };
  switch (p.kind) {
    case "forwarded":
      animate(route(from, p.nat), "before", label(p.before), () => {
        callout(p);
        animate(route(p.nat, to), "after", label(p.after));
      });
      break;
    case "dropped":
      animate(route(from, p.nat), "before", label(p.before), () => {
        // A flow from before the running action is not marked on the
        // picture, which shows what the action did; the log has it.
        if (p.earlier) return;
        cross(p.nat);
        callout(p);
      });
      break;
    case "to the NAT":
      animate(route(from, p.nat), "before", label(p.before));
      break;
    default: // from the NAT
      animate(route(p.nat, to), "after", label(p.before));
  }
}

// neighbour is where a packet whose other end is nobody in the lab came
// from or goes: the NAT's parent on its public side, else its first node
// behind it.
function neighbour(nat, side) {
  if (side === "wan") return boxes[nat].parent;
  const child = state.layout.boxes.find((b) => b.parent === nat);
  return child ? child.name : nat;
}

// route is the wires from box a to box b, through the tree.
function route(a, b) {
  const up = (n) => { const c = []; for (let x = n; x; x = boxes[x] && boxes[x].parent) c.push(x); return c; };
  const ca = up(a), cb = up(b);
  const lca = ca.find((n) => cb.includes(n));
  const pts = [];
  for (const n of ca) {
    if (n === lca) break;
    pts.push(...boxes[n].up);
  }
  const down = [];
  for (const n of cb) {
    if (n === lca) break;
    down.push(n);
  }
  for (const n of down.reverse()) pts.push(...[...boxes[n].up].reverse());
  if (pts.length === 0) {
    const bx = boxes[a];
    return [{ x: bx.x + bx.w / 2, y: bx.y + bx.h / 2 }];
  }
  return pts;
}

function animate(points, cls, text, done) {
  if (dots.length >= maxDots || document.hidden) {
    if (done) done();
    return;
  }
  const g = el("g", { class: "dot " + cls }, $("dots"));
  el("circle", { r: 9 }, g);
  // A few labelled packets can be read; a burst is only dots.
  if (dots.length < labelledDots) {
    const t = el("text", { x: 14, y: -12 }, g);
    t.textContent = text;
  }
  let length = 0;
  for (let i = 1; i < points.length; i++) length += dist(points[i - 1], points[i]);
  // Slow enough to follow with the eye, whatever the distance.
  const duration = slow * Math.min(1600, Math.max(700, length * 1.6));
  dots.push({ g, points, length, start: performance.now(), duration, done });
  if (dots.length === 1) requestAnimationFrame(tick);
}

function dist(a, b) {
  return Math.hypot(b.x - a.x, b.y - a.y);
}

function tick(now) {
  for (let i = dots.length - 1; i >= 0; i--) {
    const d = dots[i];
    const f = Math.min(1, (now - d.start) / d.duration);
    let along = f * d.length, p = d.points[0];
    for (let k = 1; k < d.points.length; k++) {
      const seg = dist(d.points[k - 1], d.points[k]);
      if (along <= seg || k === d.points.length - 1) {
        const r = seg ? Math.min(1, along / seg) : 1;
        p = { x: d.points[k - 1].x + (d.points[k].x - d.points[k - 1].x) * r, y: d.points[k - 1].y + (d.points[k].y - d.points[k - 1].y) * r };
        break;
      }
      along -= seg;
    }
    d.g.setAttribute("transform", `translate(${p.x},${p.y})`);
    if (f >= 1) {
      d.g.remove();
      dots.splice(i, 1);
      if (d.done) d.done();
    }
  }
  if (dots.length) requestAnimationFrame(tick);
}

// callout shows, under the NAT, what it did to the latest packet: the
// space between a NAT and its LAN is kept free for it.
function callout(p) {
  const b = boxes[p.nat];
  const layer = $("callouts");
  if (!b || !layer) return;
  const old = document.getElementById("callout-" + p.nat);
  if (old) old.remove();
  const drop = p.kind === "dropped";
  const g = el("g", { class: "callout" + (drop ? " drop" : ""), id: "callout-" + p.nat }, layer);
  const lines = drop
    ? [["head", "✕ dropped"], ["", p.before]]
    : [["head", p.rewritten || "forwarded"], ["", p.before], ["", "⇒ " + p.after]];
  const width = 16 + 8.2 * Math.max(...lines.map(([, t]) => t.length));
  const height = 8 + lines.length * 18;
  const x = Math.min(Math.max(4, b.x + b.w / 2 - width / 2), state.layout.width - width - 4);
  const y = b.y + b.h + 4;
  // Callouts that arrive together are not piled: a new one takes the
  // place of any it would cover.
  for (const o of [...layer.querySelectorAll("g.callout")]) {
    const r = o.querySelector("rect");
    if (o === g || !r) continue;
    const ox = +r.getAttribute("x"), oy = +r.getAttribute("y"), ow = +r.getAttribute("width"), oh = +r.getAttribute("height");
    if (ox < x + width && x < ox + ow && oy < y + height && y < oy + oh) o.remove();
  }
  el("rect", { x, y, width, height, rx: 6 }, g);
  lines.forEach(([cls, text], i) => {
    const t = el("text", { x: x + 8, y: y + 18 + i * 18, class: cls }, g);
    t.textContent = text;
  });
  const box = $("box-" + p.nat);
  if (box) {
    box.classList.remove("flash");
    void box.getBBox();
    box.classList.add("flash");
  }
  setTimeout(() => g.remove(), slow * (drop ? 5000 : 3500));
}

function cross(nat) {
  const b = boxes[nat];
  const g = el("g", {}, $("callouts"));
  const cx = b.x + b.w / 2, cy = b.y + b.h / 2, r = 22;
  el("line", { class: "cross", x1: cx - r, y1: cy - r, x2: cx + r, y2: cy + r }, g);
  el("line", { class: "cross", x1: cx - r, y1: cy + r, x2: cx + r, y2: cy - r }, g);
  setTimeout(() => g.remove(), 2500);
}

function logPacket(p) {
  const li = document.createElement("li");
  li.className = p.kind === "dropped" ? (p.earlier ? "dropped earlier" : "dropped") : p.kind === "forwarded" ? "forwarded" : "local";
  li.dataset.nat = p.nat;
  const time = new Date(p.time).toLocaleTimeString([], { hour12: false });
  const kind = p.earlier ? "✕ dropped, an earlier flow" : { forwarded: "→ through", dropped: "✕ DROPPED", "to the NAT": "→ NAT", "from the NAT": "NAT →" }[p.kind] || p.kind;
  add(li, "span", "time", time + " ");
  add(li, "span", "nat", p.nat + " ");
  add(li, "span", "kind", kind);
  add(li, "span", "what", p.what + " ");
  add(li, "span", "before", p.before);
  if (p.after && p.rewritten !== "unchanged") {
    add(li, "span", "after", "  ⇒  " + p.after);
    add(li, "span", "what", "  (" + p.rewritten + ")");
  }
  if (p.reason) add(li, "span", "why", p.reason);
  const list = $("events");
  list.prepend(li);
  while (list.children.length > maxLog) list.lastChild.remove();
}

function add(parent, tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.textContent = text;
  parent.appendChild(e);
  return e;
}

// ---- tables ----

function table(t) {
  tables[t.nat] = t;
  if (only && !only.includes(t.nat)) return;
  const n = node(t.nat);
  if (!n) return;
  let card = $("table-" + t.nat);
  if (!card) {
    card = document.createElement("div");
    card.className = "nat-table";
    card.id = "table-" + t.nat;
    $("tables").appendChild(card);
  }
  card.replaceChildren();
  const h = add(card, "h3", "", t.nat + "'s translation table ");
  const nb = n.nat;
  let knobs = `${nb.type || "custom"} · mapping ${nb.mapping} · filtering ${nb.filtering} · ports ${nb.ports}`;
  if (nb.pooling) knobs += ` · pooling ${nb.pooling} over ${n.addresses.length} addresses`;
  if (nb.port_blocks) knobs += ` · ${nb.port_blocks}`;
  add(h, "small", "", knobs);
  if (t.error) add(card, "p", "empty", t.error);
  const seen = seenRows[t.nat] || (seenRows[t.nat] = new Set());
  const fresh = new Set();
  // A long table scrolls inside its card rather than pushing the rest
  // of the page below the fold.
  const tab = add(add(card, "div", "scroll", ""), "table", "", "");
  const head = add(tab, "tr", "", "");
  for (const c of ["", "private", "", "public", "", "remote", "state", "expires"]) add(head, "th", "", c);
  if (!t.flows.length) {
    const tr = add(tab, "tr", "", "");
    const td = add(tr, "td", "empty", "no translated flows yet");
    td.colSpan = 8;
  }
  for (const f of t.flows) {
    const key = `${f.proto} ${f.private} ${f.public} ${f.remote}`;
    fresh.add(key);
    const tr = add(tab, "tr", "row" + (seen.has(key) ? "" : " new"), "");
    tr.dataset.public = f.public;
    tr.dataset.private = f.private;
    const arrow = f.inbound ? "←" : "→";
    add(tr, "td", "", f.proto);
    add(tr, "td", "", f.private);
    add(tr, "td", "", arrow);
    add(tr, "td", "pub", f.public);
    add(tr, "td", "", arrow);
    add(tr, "td", "", f.remote);
    add(tr, "td", "state", f.state + (f.hairpin ? " hairpin" : ""));
    add(tr, "td", "", secs(f.expires_ns));
    if (panel) tr.title = "aim a knock at " + f.public;
    tr.addEventListener("click", () => knockOn(t.nat, f.public, f.proto));
  }
  if (t.mappings.length) {
    add(card, "p", "hint", "UDP mappings (who owns each public port):");
    const mt = add(add(card, "div", "scroll", ""), "table", "mappings", "");
    for (const m of t.mappings) {
      const key = `map ${m.public} ${m.private}`;
      fresh.add(key);
      const tr = add(mt, "tr", "row" + (seen.has(key) ? "" : " new"), "");
      add(tr, "td", "pub", m.public);
      add(tr, "td", "", "←");
      add(tr, "td", "", m.private);
      add(tr, "td", "", secs(m.expires_ns));
      tr.title = "aim a knock at " + m.public;
      tr.addEventListener("click", () => knockOn(t.nat, m.public, "udp"));
    }
  }
  if (t.one_to_one) {
    add(card, "p", "hint", "One-to-one (every port of the public address is the host's, anyone may send to it):");
    const bt = add(card, "table", "one-to-one", "");
    const tr = add(bt, "tr", "row", "");
    add(tr, "td", "pub", t.one_to_one.public);
    add(tr, "td", "", "↔");
    add(tr, "td", "", t.one_to_one.private);
    add(tr, "td", "", t.one_to_one.host);
  }
  if (t.subscribers && t.subscribers.length) {
    add(card, "p", "hint", "Port blocks (each subscriber's mappings take ports of its own blocks only):");
    const st = add(add(card, "div", "scroll", ""), "table", "subscribers", "");
    const sh = add(st, "tr", "", "");
    for (const c of ["subscriber", "address", "blocks", "in use (udp, tcp)", "quota"]) add(sh, "th", "", c);
    for (const s of t.subscribers) {
      const tr = add(st, "tr", "row", "");
      add(tr, "td", "", s.node);
      add(tr, "td", "", s.address);
      add(tr, "td", "pub", s.blocks.join(" "));
      add(tr, "td", "", `${s.in_use.udp}, ${s.in_use.tcp}`);
      add(tr, "td", "", String(s.quota));
    }
  }
  if (t.forwards && t.forwards.length) {
    add(card, "p", "hint", "Port forwards (anyone may send to these):");
    const ft = add(card, "table", "forwards", "");
    for (const f of t.forwards) {
      const key = `fwd ${f.proto} ${f.public} ${f.private}`;
      fresh.add(key);
      const tr = add(ft, "tr", "row" + (seen.has(key) ? "" : " new"), "");
      add(tr, "td", "", f.proto);
      add(tr, "td", "pub", f.public);
      add(tr, "td", "", "→");
      add(tr, "td", "", f.private);
      add(tr, "td", "", f.by);
      add(tr, "td", "", secs(f.expires_ns));
      tr.title = "aim a knock at " + f.public;
      tr.addEventListener("click", () => knockOn(t.nat, f.public, f.proto));
    }
  }
  seenRows[t.nat] = fresh;
}

function secs(ns) {
  if (!ns) return "never";
  const s = Math.round(ns / 1e9);
  if (s < 120) return s + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function knockOn(nat, publicEndpoint, proto) {
  if (!panel) return;
  setSelect("knock-nat", nat);
  $("knock-port").value = publicEndpoint.split(":").pop();
  if (proto === "udp" || proto === "tcp") setSelect("knock-proto", proto);
  $("knock-form").scrollIntoView({ block: "nearest" });
}

// ---- actions ----

async function act(body) {
  showResult({ state: "running", title: "…" });
  let res;
  try {
    const r = await fetch("/api/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Natlab-Token": token },
      body: JSON.stringify(body),
    });
    const json = (r.headers.get("Content-Type") || "").startsWith("application/json");
    res = json ? await r.json() : { error: (await r.text()).trim() || r.statusText };
    if (!r.ok) {
      showResult({ state: "finished", ok: false, title: "refused", error: res.error || r.statusText });
      return null;
    }
  } catch (e) {
    showResult({ state: "finished", ok: false, title: "no answer", error: String(e) });
    return null;
  }
  showResult(res);
  return res;
}

// Every page hears every action, so a second screen shows what the
// first one did.
function actionEvent(a) {
  showResult(a);
  if (a.walk && panel) walkStep(a);
}

// What a step saw that means the packet or the connection did not get
// through. A page states no expectations: it shows what happened.
const failures = new Set(["dropped", "fail", "error", "lost", "interrupted"]);

function showResult(a) {
  showResultIn(a);
  // A long result may make the picture too tall to stay in view.
  stick();
}

function showResultIn(a) {
  const r = $("result");
  const good = a.step ? !failures.has(a.step.observed) : a.ok;
  r.className = "result " + (a.state === "started" || a.state === "running" ? "running" : good ? "ok" : "fail");
  r.replaceChildren();
  add(r, "div", "title", a.title);
  if (a.state === "started" || a.state === "running") {
    add(r, "div", "verdict", "running…");
    return;
  }
  if (a.error) {
    add(r, "div", "verdict", "✕ " + a.error);
    return;
  }
  if (a.step) {
    const s = a.step;
    add(r, "div", "verdict", (good ? "✓ " : "✕ ") + s.observed);
    if (s.detail) add(r, "div", "detail", s.detail);
    if (a.measured) add(r, "div", "measured", a.measured);
    if (s.reason && !good) add(r, "div", "detail", s.reason);
  } else if (a.walk) {
    add(r, "div", "verdict", `step ${a.walk.number}: ${a.walk.title}` + (a.walk.done ? (a.walk.ok ? " ✓ direct path" : " ✕ no direct path") : ""));
  } else if (a.switch) {
    add(r, "div", "verdict", `✓ ${a.switch.name} is now ${a.switch.nat.type}`);
    // A one-to-one NAT has no port allocation: every port is its host's.
    const ports = a.switch.nat.ports ? `ports ${a.switch.nat.ports}` : "every port to its host";
    add(r, "div", "detail", `mapping ${a.switch.nat.mapping}, filtering ${a.switch.nat.filtering}, ${ports}; its table was emptied`);
  }
}

function walkStep(a) {
  const list = $("walk-steps");
  if (a.walk.number === 1) list.replaceChildren();
  const li = add(list, "li", a.walk.done ? (a.walk.ok ? "ok" : "fail") : "", "");
  add(li, "b", "", a.walk.title);
  for (const line of a.walk.lines || []) add(li, "p", "", line);
  disable("walk-next", a.walk.done ? "the punch's five steps are done: start another" : a.error ? "the walk stopped: " + a.error : "");
}

// otherHost is a host to pair with h: behind another NAT if one is,
// else any other.
function otherHost(h) {
  const hosts = state.choices.hosts || [];
  const mine = h && node(h).behind;
  return hosts.find((x) => x !== h && node(x).behind && node(x).behind !== mine) || hosts.find((x) => x !== h);
}

function pairOf() {
  return [$("pair-a").value, $("pair-b").value];
}

function wire() {
  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const send = { from: $("send-from").value, to: $("send-to").value, proto: $("send-proto").value, port: Number($("send-port").value) };
    // The step checks the count (UDP only, 1 to 10000) and says why not.
    const count = $("send-count").value.trim();
    if (count) send.count = Number(count);
    act({ step: { send } });
  });
  $("knock-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const nat = node($("knock-nat").value);
    act({ step: { send: { from: $("knock-from").value, to: `${nat.addresses[0]}:${$("knock-port").value}`, proto: $("knock-proto").value } } });
  });
  $("stun-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const server = $("stun-server").value, second = $("stun-server2").value;
    // Two servers are asked from one socket: the same port both times.
    const stun = second && second !== server ? { from: $("stun-from").value, servers: [server, second] } : { from: $("stun-from").value, server };
    act({ step: { stun } });
  });
  $("walk-start").addEventListener("click", () => {
    $("walk-steps").replaceChildren();
    act({ walk: { punch: { between: pairOf() } } });
  });
  $("walk-next").addEventListener("click", () => act({ "walk-next": {} }));
  $("punch-button").addEventListener("click", () => act({ step: { punch: { between: pairOf() } } }));
  $("ice-button").addEventListener("click", () => act({ step: { ice: { between: pairOf() } } }));
  $("relay-button").addEventListener("click", () => act({ step: { relay: { between: pairOf() } } }));
  // What the hosts end on is what the page shows, relay or direct: it
  // states no expectation.
  $("upgrade-button").addEventListener("click", () => act({ step: { upgrade: { between: pairOf() } } }));
  $("switch-type").addEventListener("change", () => { $("switch-type").dataset.touched = "1"; });
  $("switch-nat").addEventListener("change", () => {
    const n = node($("switch-nat").value);
    if (n) setSelect("switch-type", n.nat.type);
  });
  $("switch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act({ switch: { node: $("switch-nat").value, type: $("switch-type").value } });
  });
  // A link step, as a scenario writes it: the fields as typed, so that
  // the step's own checks (units, ranges) say what is wrong.
  const conds = ["delay", "jitter", "loss", "duplicate", "reorder", "rate", "mtu"];
  const linkStep = (extra) => {
    const link = { node: $("link-node").value, ...extra };
    // One direction's conditions go in its up: or down: mapping; the mtu
    // is the whole link's, and stays beside them.
    const dir = $("link-dir").value;
    const into = dir ? (link[dir] = {}) : link;
    for (const k of conds) {
      const v = $("link-" + k).value.trim();
      if (v) (k === "mtu" ? link : into)[k] = v;
    }
    if (dir && !Object.keys(into).length) delete link[dir];
    return { step: { link } };
  };
  const linkDone = (res) => {
    if (res && res.ok) for (const k of conds) $("link-" + k).value = "";
  };
  $("link-node").addEventListener("change", showLink);
  $("link-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    linkDone(await act(linkStep({})));
  });
  $("link-clear").addEventListener("click", async () => linkDone(await act(linkStep({ clear: true }))));
  $("link-down").addEventListener("click", () => act({ step: { link: { node: $("link-node").value, down: true } } }));
  $("link-up").addEventListener("click", () => act({ step: { link: { node: $("link-node").value, down: false } } }));
  $("reboot-button").addEventListener("click", () => {
    const reboot = { node: $("reboot-nat").value };
    const pub = $("reboot-public").value.trim();
    if (pub) reboot.public = pub;
    act({ step: { reboot } }).then((res) => { if (res && res.ok) $("reboot-public").value = ""; });
  });
  $("renumber-nat").addEventListener("change", () => suggestPublic(true));
  $("renumber-public").addEventListener("input", () => { $("renumber-public").dataset.touched = "1"; });
  $("renumber-button").addEventListener("click", () => {
    act({ step: { renumber: { node: $("renumber-nat").value, public: $("renumber-public").value.trim() } } }).then((res) => {
      if (res && res.ok) {
        // The address it took is taken now: offer the next free one.
        delete $("renumber-public").dataset.touched;
        suggestPublic(false);
      }
    });
  });
  $("move-host").addEventListener("change", fillMoveTargets);
  $("move-button").addEventListener("click", () => act({ step: { move: { node: $("move-host").value, behind: $("move-nat").value } } }));
  $("clear-log").addEventListener("click", () => $("events").replaceChildren());
}

if (!token) {
  $("no-token").hidden = false;
} else {
  addEventListener("resize", stick);
  if (panel) {
    wire();
    connect();
  }
}
