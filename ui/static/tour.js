// natlab ui --tour: the story's seven acts, each on a lab of its own that
// the server brings up when the act is entered. app.js draws the lab and
// its packets; this script tells the story around them and shows what
// each prompt really did.
"use strict";

let tour = null;      // GET /api/tour
let here = -1;        // the act shown
let step = 0;         // its prompt being asked
let moving = false;   // an act's lab is coming up
let picked = null;    // the device clicked for a prompt that picks one
let watch = null;     // what the action under way collects from the events
let paths = [];       // act VI: each path found, to compare

const romans = ["I", "II", "III", "IV", "V", "VI", "VII"];

async function api(method, body) {
  const r = await fetch("/api/tour", {
    method,
    headers: { "Content-Type": "application/json", "X-Natlab-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const v = await r.json();
  if (!r.ok) throw new Error(v.error || r.statusText);
  return v;
}

async function start() {
  try {
    tour = await api("GET");
  } catch (e) {
    $("lab-status").textContent = "The tour did not answer: " + e.message;
    return;
  }
  drawProgress();
  const want = Number((location.hash.match(/^#act-(\d+)$/) || [])[1] || 0) - 1;
  const to = want >= 0 && want < tour.acts.length ? want : tour.act >= 0 ? tour.act : 0;
  go(to);
}

function drawProgress() {
  const list = $("acts");
  list.replaceChildren();
  tour.acts.forEach((a, i) => {
    const li = add(list, "li", "", "");
    const b = add(li, "button", i === here ? "here" : i < here ? "done" : "", a.number);
    b.type = "button";
    b.title = `Act ${a.number}: ${a.title}`;
    b.addEventListener("click", () => go(i));
  });
}

// go enters act i: the server takes the lab of the act left down and
// brings up this one's. The reader's act starts afresh, on a new lab,
// even if it was entered already (a reload, a click on the act shown):
// its prompts start from the first. Following another page, the lab
// is kept as that page left it.
async function go(i, follow) {
  if (moving || i < 0 || i >= tour.acts.length) return;
  moving = true;
  here = i;
  step = 0;
  picked = null;
  paths = [];
  watch = null;
  const a = tour.acts[i];
  history.replaceState(null, "", "#act-" + (i + 1));
  document.title = `natlab: ${a.title}`;
  $("where").textContent = `Act ${a.number} of ${romans[romans.length - 1]}`;
  $("act-title").textContent = a.title;
  const n = $("narrative");
  n.replaceChildren();
  for (const p of a.narrative) add(n, "p", "", p);
  $("takeaway").hidden = true;
  $("takeaway").textContent = a.takeaway;
  $("result").replaceChildren();
  $("result").className = "result";
  $("detail").replaceChildren();
  $("back").disabled = i === 0;
  $("back").title = i === 0 ? "This is the first act" : "Act " + tour.acts[i - 1].number + ": " + tour.acts[i - 1].title;
  $("next").disabled = i === tour.acts.length - 1;
  $("next").title = i === tour.acts.length - 1 ? "This is the last act" : "Act " + tour.acts[i + 1].number + ": " + tour.acts[i + 1].title;
  drawProgress();
  only = a.focus;
  state = null;
  $("topo").replaceChildren();
  $("tables").replaceChildren();
  $("events").replaceChildren();
  if (source) source.close();
  source = null;
  $("lab-status").textContent = `Bringing up the lab of act ${a.number} (${a.scenario}) in the kernel…`;
  setConn(false);
  $("conn").textContent = "building the lab…";
  showPrompt();
  try {
    tour = await api("POST", { act: i, fresh: !follow });
  } catch (e) {
    $("lab-status").textContent = "The lab did not come up: " + e.message;
    moving = false;
    showPrompt();
    return;
  }
  moving = false;
  if (here !== i) return;
  $("lab-status").textContent = `Lab ${tour.lab}, from the scenario ${a.scenario}: real namespaces and nftables rules.`;
  $("free").href = "/play?token=" + encodeURIComponent(token);
  connect();
  showPrompt();
}

function prompts() {
  return here >= 0 ? tour.acts[here].prompts : [];
}

function showPrompt() {
  const ps = prompts();
  const p = ps[step];
  const box = $("prompt");
  const control = $("control");
  control.replaceChildren();
  if (!p) {
    box.hidden = true;
    $("takeaway").hidden = false;
    return;
  }
  box.hidden = false;
  $("ask").textContent = p.text;
  $("count").textContent = ps.length > 1 ? `prompt ${step + 1} of ${ps.length}` : "";
  const b = $("do");
  b.textContent = p.button;
  if (p.control === "switch") switchControl(control);
  ready();
}

// ready enables the prompt's button once the act's lab is drawn, and
// says why not before.
function ready() {
  const b = $("do");
  if (watch && !watch.res) return;
  b.disabled = moving || !state;
  b.title = moving ? "Wait: the act's lab is coming up" : !state ? "Wait: the page is connecting to the lab" : "";
}

// onPick does a prompt that asks for a device to be clicked.
function onPick(n) {
  const p = prompts()[step];
  if (!p || !p.pick || !p.pick.includes(n.name) || moving || (watch && !watch.res)) return;
  picked = n.name;
  doPrompt();
}

// onOpen follows another page that entered another act.
async function onOpen() {
  try {
    const v = await api("GET");
    if (!moving && v.act >= 0 && v.act !== here) go(v.act, true);
  } catch (e) {
    // Shown by the connection's own state.
  }
}

// switchControl offers a NAT of the act and a type for it, cafe and
// symmetric to begin with.
function switchControl(control) {
  const nat = add(add(control, "label", "", "make "), "select", "", "");
  nat.id = "tour-nat";
  for (const n of tour.acts[here].focus) add(nat, "option", "", n).value = n;
  nat.value = tour.acts[here].focus[tour.acts[here].focus.length - 1];
  const type = add(add(control, "label", "", "a "), "select", "", "");
  type.id = "tour-type";
  for (const t of (state && state.choices.types) || ["symmetric"]) add(type, "option", "", t).value = t;
  type.value = "symmetric";
}

// body is the prompt's action with the device picked and the form's
// choices in place.
function body(p) {
  let text = JSON.stringify(p.action);
  const pick = picked && p.pick && p.pick.includes(picked) ? picked : p.pick ? defaultPick(p) : "";
  text = text.replaceAll('"$pick"', JSON.stringify(pick));
  if ($("tour-nat")) text = text.replaceAll('"$nat"', JSON.stringify($("tour-nat").value)).replaceAll('"$type"', JSON.stringify($("tour-type").value));
  return JSON.parse(text);
}

// defaultPick is what the button sends from when no device was clicked:
// the next one not used yet.
function defaultPick(p) {
  return p.pick[Math.min(step, p.pick.length - 1)];
}

async function doPrompt() {
  const p = prompts()[step];
  if (!p || moving) return;
  const b = $("do");
  b.disabled = true;
  b.title = "Running: the result shows below";
  $("detail").replaceChildren();
  watch = { show: p.show, packets: [], before: rowKeys(), rows: [], prompt: p };
  const res = await act(body(p));
  if (!res) {
    // Refused: the reason is in the result; the prompt stays.
    watch = null;
    showPrompt();
    return;
  }
  if (p.show === "walk") {
    await walk(res);
  } else {
    watch.res = res;
  }
  drawHappened();
  // The packets and the table's rows follow the answer by a moment.
  // A few seconds on, what happened is what it shows: rows and packets
  // that come later (another page's sends, a table filling up) are not
  // this prompt's.
  const w = watch;
  setTimeout(() => { if (watch === w) drawHappened(); }, 400);
  setTimeout(() => { if (watch === w) drawHappened(); }, 1200);
  setTimeout(() => { if (watch === w) { drawHappened(); w.done = true; } }, 3000);
  if (res.error && p.show !== "walk") {
    showPrompt();
    return;
  }
  step++;
  picked = null;
  showPrompt();
}

// walk takes the punch's next steps, one per click of the button.
async function walk(first) {
  const steps = [first.walk];
  drawWalk(steps);
  let last = first;
  while (last && last.walk && !last.walk.done && !last.error) {
    const b = $("do");
    b.textContent = `Next phase (${last.walk.number + 1} of 5)`;
    b.disabled = false;
    b.title = "";
    await new Promise((resolve) => b.addEventListener("click", resolve, { once: true, capture: true }));
    b.disabled = true;
    b.title = "Running: the result shows below";
    last = await act({ "walk-next": {} });
    if (last && last.walk) steps.push(last.walk);
    drawWalk(steps);
  }
  watch.res = last || first;
}

function drawWalk(steps) {
  const d = $("detail");
  d.replaceChildren();
  const ol = add(d, "ol", "", "");
  for (const s of steps) {
    const li = add(ol, "li", "", "");
    add(li, "b", "", s.title);
    for (const line of s.lines || []) add(li, "span", "", line);
  }
}

function rowKeys() {
  const keys = new Set();
  for (const nat of only || []) {
    for (const f of (tables[nat] && tables[nat].flows) || []) keys.add(`${nat} ${f.proto} ${f.private} ${f.public} ${f.remote}`);
  }
  return keys;
}

function onPacket(p) {
  if (watch && (!only || only.includes(p.nat))) watch.packets.push(p);
  if (watch && watch.res) drawHappened();
}

function onTable(t) {
  if (watch && watch.res && (watch.show === "row")) drawHappened();
}

function kv(tab, k, v, cls) {
  const tr = add(tab, "tr", "", "");
  add(tr, "th", "", k);
  add(tr, "td", cls || "", v);
}

// drawHappened shows what the action really did, as the prompt asks.
function drawHappened() {
  const w = watch;
  if (!w || !w.res || w.done) return;
  const d = $("detail");
  const res = w.res;
  const s = res.step;
  if (w.show === "walk") return;
  d.replaceChildren();
  switch (w.show) {
    case "packet": {
      const p = w.packets.find((p) => p.kind === "forwarded");
      if (!p) {
        const drop = w.packets.find((p) => p.kind === "dropped" && !p.earlier);
        if (drop) drawDrop(d, drop);
        return;
      }
      add(d, "p", "", `At ${p.nat}, the packet as the kernel saw it:`);
      const tab = add(d, "table", "", "");
      kv(tab, "before", p.before);
      kv(tab, "after", p.after, "after");
      kv(tab, "rewrite", p.rewritten || "unchanged");
      return;
    }
    case "row": {
      const rows = [];
      for (const nat of only || []) {
        for (const f of (tables[nat] && tables[nat].flows) || []) {
          if (!w.before.has(`${nat} ${f.proto} ${f.private} ${f.public} ${f.remote}`)) rows.push([nat, f]);
        }
      }
      if (!rows.length) {
        add(d, "p", "", "No new row in the table: this conversation had one already.");
        return;
      }
      for (const [nat, f] of rows) {
        add(d, "p", "", `A new row in ${nat}'s table:`);
        const tab = add(d, "table", "", "");
        kv(tab, "private", f.private);
        kv(tab, "public", f.public, "after");
        kv(tab, "remote", f.remote);
      }
      return;
    }
    case "drop": {
      const drop = w.packets.find((p) => p.kind === "dropped" && !p.earlier);
      if (drop) drawDrop(d, drop);
      else if (s && s.observed !== "dropped") add(d, "p", "", "It was not dropped: " + (s.detail || s.observed));
      return;
    }
    case "stun": {
      const servers = (w.prompt.action.step.stun.servers) || [];
      const seen = (s && s.data) || [];
      add(d, "p", "", `${w.prompt.action.step.stun.from} asked from one socket; each server answered with the endpoint it saw:`);
      const tab = add(d, "table", "", "");
      servers.forEach((name, i) => kv(tab, name, seen[i] ? `saw ${seen[i]}` : "no answer", "after"));
      if (s && (s.observed === "same" || s.observed === "different")) {
        add(d, "p", "", s.observed === "same" ? "The same endpoint for both servers: it can be given to anyone." : "Two different ports: the NAT picked a new one for each server.");
      }
      return;
    }
    case "path": {
      if (s) paths.push(`${s.name}: ${s.observed}${res.measured ? ", " + res.measured : ""}`);
      const seen = [...new Set(paths)];
      if (seen.length > 1) {
        add(d, "p", "", "So far in this act:");
        const ol = add(d, "ol", "", "");
        for (const line of seen) add(ol, "li", "", line);
      }
      paths = seen;
      return;
    }
    case "switch": {
      if (res.switch) add(d, "p", "", `${res.switch.name} is now ${res.switch.nat.type} in the kernel: mapping ${res.switch.nat.mapping}, filtering ${res.switch.nat.filtering}; its table was emptied.`);
      return;
    }
    case "ice": {
      // A punched pair is srflx or prflx, as whose check came first
      // decides: one rung.
      const rungs = [["host", ["host"], "host: the LAN addresses reach each other"],
        ["srflx", ["srflx", "prflx"], "srflx or prflx: the public endpoints, punched through the NATs"],
        ["relay", ["relay"], "relay: through the TURN server"]];
      const ol = add(d, "ol", "ladder", "");
      for (const [r, words, text] of rungs) add(ol, "li", s && words.includes(s.observed) ? "chosen" : "", text).dataset.rung = r;
      return;
    }
  }
}

function drawDrop(d, p) {
  add(d, "p", "", `Dropped at ${p.nat}:`);
  const tab = add(d, "table", "", "");
  kv(tab, "packet", p.before);
  kv(tab, "rule", p.reason || "dropped", "why");
}

if (token) {
  hooks.packet.push(onPacket);
  hooks.table.push(onTable);
  hooks.state.push(ready);
  hooks.pick.push(onPick);
  hooks.open.push(onOpen);
  $("do").addEventListener("click", () => { if (!watch || watch.res) doPrompt(); });
  $("back").addEventListener("click", () => go(here - 1));
  $("next").addEventListener("click", () => go(here + 1));
  $("slow").addEventListener("change", () => { slow = $("slow").checked ? 3 : 1; });
  // A presenter's clicker sends PageUp and PageDown; the arrows do too.
  addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, select, textarea")) return;
    if (e.key === "PageDown" || e.key === "ArrowRight") go(here + 1);
    else if (e.key === "PageUp" || e.key === "ArrowLeft") go(here - 1);
    else return;
    e.preventDefault();
  });
  start();
}
