// liqmon live page. Plain DOM and canvas, no library: every string that came from a venue
// is set with textContent, never parsed as HTML (the page's CSP forbids inline script too).
"use strict";

const DAY = 1440;
const state = {
  seq: 0, minute: 0, tapeSize: 1000, hours: 24, window: "24h", scope: "", coin: "",
  minUsd: 0, bars: new Map(), coinBars: new Map(), snapshot: null, tape: [],
};

// -- formatting ---------------------------------------------------------------------------
function usd(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return "$" + (v / 1e9).toFixed(2) + "B";
  if (a >= 1e8) return "$" + (v / 1e6).toFixed(0) + "M";
  if (a >= 1e6) return "$" + (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return "$" + (v / 1e3).toFixed(1) + "k";
  return "$" + v.toFixed(0);
}
function price(v) {
  if (v >= 1000) return v.toFixed(1);
  if (v >= 1) return v.toFixed(3);
  return v.toPrecision(4);
}
function pad(n) { return String(n).padStart(2, "0"); }
function clock(ms, seconds = true) {
  const d = new Date(ms);
  const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  return seconds ? hm + ":" + pad(d.getUTCSeconds()) : hm;
}
function duration(s) {
  s = Math.round(s);
  if (s >= 3600) return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m";
  if (s >= 60) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
  return s + "s";
}

// -- tiny DOM helpers (text only) -----------------------------------------------------------
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function cell(tr, text, cls) { const td = el("td", cls, text); tr.appendChild(td); return td; }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
const $ = (id) => document.getElementById(id);

// -- bars -------------------------------------------------------------------------------------
function applyBars(store, bars) {
  // bars: {start, end, venues: {venue: [longs, shorts]}}; replaces the minutes it covers.
  for (let m = bars.start; m <= bars.end; m++) store.delete(m);
  for (const [venue, pair] of Object.entries(bars.venues)) {
    for (let i = 0; i < pair[0].length; i++) {
      const l = pair[0][i], s = pair[1][i];
      if (!l && !s) continue;
      const m = bars.start + i;
      let row = store.get(m);
      if (!row) { row = new Map(); store.set(m, row); }
      row.set(venue, [l, s]);
    }
  }
  for (const m of store.keys()) if (m <= bars.end - DAY) store.delete(m);
}
function applyCells(start, end, cells) {
  if (!state.coin) return;
  for (let m = start; m <= end; m++) state.coinBars.delete(m);
  for (const [m, venue, coin, side, value] of cells) {
    if (coin !== state.coin) continue;
    let row = state.coinBars.get(m);
    if (!row) { row = new Map(); state.coinBars.set(m, row); }
    const pair = row.get(venue) || [0, 0];
    pair[side === "long" ? 0 : 1] = value;
    row.set(venue, pair);
  }
}
async function loadCoin(coin) {
  state.coin = coin;
  state.coinBars = new Map();
  if (!coin) { draw(); return; }
  const r = await fetch("/api/bars?coin=" + encodeURIComponent(coin));
  if (r.ok && state.coin === coin) applyBars(state.coinBars, await r.json());
  draw();
}

function series() {
  const n = state.hours * 60, end = state.minute, start = end - n + 1;
  const source = state.coin ? state.coinBars : state.bars;
  const longs = new Float64Array(n), shorts = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = source.get(start + i);
    if (!row) continue;
    for (const [venue, pair] of row) {
      if (state.scope && venue !== state.scope) continue;
      longs[i] += pair[0]; shorts[i] += pair[1];
    }
  }
  return { start, n, longs, shorts };
}

let drawQueued = false;
function draw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; drawNow(); });
}
function css(name) { return getComputedStyle(document.body).getPropertyValue(name).trim(); }
function drawNow() {
  const canvas = $("chart"), ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const { start, n, longs, shorts } = series();
  let max = 0, sumL = 0, sumS = 0;
  for (let i = 0; i < n; i++) {
    max = Math.max(max, longs[i], shorts[i]); sumL += longs[i]; sumS += shorts[i];
  }
  const sum = $("chart-sum");
  sum.dataset.long = sumL.toFixed(2); sum.dataset.short = sumS.toFixed(2);
  sum.dataset.minutes = String(n);
  sum.textContent = "in view: longs " + usd(sumL) + ", shorts " + usd(sumS);
  const left = 52, top = 8, bottom = 18, plotW = w - left - 4, mid = top + (h - top - bottom) / 2;
  const half = (h - top - bottom) / 2, bw = plotW / n;
  // Cascades as shaded bands behind the bars.
  for (const c of (state.snapshot && state.snapshot.cascades) || []) {
    const from = c.started_ms / 60000, to = c.status === "resolved" ? c.at_ms / 60000 : state.minute + 1;
    const x0 = left + Math.max(0, from - start) * bw, x1 = left + Math.min(n, to - start) * bw;
    if (x1 <= x0) continue;
    ctx.fillStyle = css("--" + c.severity) || "#f5a524";
    ctx.globalAlpha = 0.13;
    ctx.fillRect(x0, top, x1 - x0, h - top - bottom);
    ctx.globalAlpha = 1;
  }
  ctx.fillStyle = css("--long");
  for (let i = 0; i < n; i++) if (longs[i]) {
    const bh = max ? (longs[i] / max) * half : 0;
    ctx.fillRect(left + i * bw, mid - bh, Math.max(bw - (bw > 3 ? 1 : 0), 0.6), bh);
  }
  ctx.fillStyle = css("--short");
  for (let i = 0; i < n; i++) if (shorts[i]) {
    const bh = max ? (shorts[i] / max) * half : 0;
    ctx.fillRect(left + i * bw, mid, Math.max(bw - (bw > 3 ? 1 : 0), 0.6), bh);
  }
  ctx.fillStyle = css("--muted"); ctx.strokeStyle = css("--line");
  ctx.font = "11px system-ui, sans-serif";
  ctx.beginPath(); ctx.moveTo(left, mid); ctx.lineTo(w, mid); ctx.stroke();
  ctx.textAlign = "right";
  ctx.fillText(usd(max), left - 4, top + 10); ctx.fillText(usd(max), left - 4, h - bottom);
  ctx.fillText("0", left - 4, mid + 4);
  ctx.textAlign = "center";
  const step = state.hours <= 1 ? 10 : state.hours <= 4 ? 30 : 180;
  for (let m = Math.ceil(start / step) * step; m < start + n; m += step) {
    ctx.fillText(clock(m * 60000, false), left + (m - start + 0.5) * bw, h - 4);
  }
}
function hover(ev) {
  if (!state.minute) return;
  const canvas = $("chart"), rect = canvas.getBoundingClientRect(), left = 52;
  const { start, n, longs, shorts } = series();
  const i = Math.floor(((ev.clientX - rect.left - left) / (rect.width - left - 4)) * n);
  if (i < 0 || i >= n) { $("chart-hover").textContent = ""; return; }
  $("chart-hover").textContent = clock((start + i) * 60000, false) + ": longs " + usd(longs[i]) +
    ", shorts " + usd(shorts[i]);
}

// -- sections ---------------------------------------------------------------------------------
function completenessMark(td, completeness) {
  if (completeness && completeness !== "full") {
    const mark = el("span", "mark", " ≥");
    mark.title = "lower bound: " + completeness + " feed";
    td.appendChild(mark);
  }
}
function renderTotals() {
  const rows = (state.snapshot.totals || {})[state.window] || [];
  const venues = new Map();
  const all = { long: 0, short: 0, count: 0, completeness: "full" };
  for (const r of rows) {
    const v = venues.get(r.venue) || { long: 0, short: 0, count: 0, completeness: "full" };
    v[r.position_side] += r.usd; v.count += r.count;
    all[r.position_side] += r.usd; all.count += r.count;
    if (r.completeness !== "full") { v.completeness = r.completeness; all.completeness = r.completeness; }
    venues.set(r.venue, v);
  }
  const body = $("totals").tBodies[0];
  clear(body);
  const line = (name, v, cls) => {
    const tr = el("tr", cls);
    tr.dataset.venue = name;
    cell(tr, name);
    for (const side of ["long", "short"]) {
      const td = cell(tr, usd(v[side]), "num " + side);
      td.dataset.usd = v[side].toFixed(2); td.dataset.side = side;
      completenessMark(td, v.completeness);
    }
    const total = cell(tr, usd(v.long + v.short), "num");
    total.dataset.usd = (v.long + v.short).toFixed(2);
    cell(tr, v.count.toLocaleString("en-US"), "num");
    body.appendChild(tr);
  };
  line("all venues", all, "all");
  [...venues.entries()].sort((a, b) => (b[1].long + b[1].short) - (a[1].long + a[1].short))
    .forEach(([name, v]) => line(name, v, ""));
}

function renderCascades() {
  const snap = state.snapshot;
  const active = $("active"); clear(active);
  for (const a of snap.active || []) {
    const li = el("li", "state");
    li.dataset.scope = a.scope; li.dataset.state = a.state;
    li.appendChild(el("span", "badge sev-" + (a.severity || "watch"), a.severity || a.state));
    li.appendChild(document.createTextNode(" " + a.scope + " " + a.side + "s " + a.state +
      " since " + clock(a.since_ms) + ", " + usd(a.usd) + " in the window"));
    active.appendChild(li);
  }
  const list = $("cascades"); clear(list);
  for (const c of snap.cascades || []) {
    const li = el("li", "cascade status-" + c.status);
    li.dataset.id = c.id; li.dataset.status = c.status; li.dataset.severity = c.peak_severity;
    li.dataset.scope = c.scope;
    const head = el("div", "head");
    head.appendChild(el("span", "badge sev-" + c.peak_severity, c.peak_severity));
    head.appendChild(el("b", "", c.scope + " " + c.side + "s"));
    const end = c.status === "resolved" ? c.at_ms : snap.now_ms;
    head.appendChild(el("span", "muted", c.status + " · " + clock(c.started_ms) + " → " +
      (c.status === "resolved" ? clock(c.at_ms) : "now") + " (" +
      duration((end - c.started_ms) / 1000) + ") · " + usd(c.total_usd) + " liquidated"));
    li.appendChild(head);
    li.appendChild(el("div", "reason", c.reason));
    const tl = el("ol", "timeline");
    for (const t of c.transitions) {
      tl.appendChild(el("li", "", clock(t.at_ms) + " " + t.status + " " + t.severity + " " +
        t.scope + ": " + t.reason));
    }
    li.appendChild(tl);
    list.appendChild(li);
  }
  $("no-cascades").hidden = (snap.cascades || []).length + (snap.active || []).length > 0;
  const whales = $("whales"); clear(whales);
  for (const w of snap.whales || []) {
    const li = el("li", "whale");
    li.dataset.id = w.id;
    li.appendChild(el("span", "badge sev-" + w.severity, w.severity));
    li.appendChild(el("span", "", " " + clock(w.at_ms) + " "));
    li.appendChild(el("span", "side-" + w.side, usd(w.usd) + " " + w.side));
    li.appendChild(el("span", "", " " + w.venue + " " + w.instrument + " @ " + price(w.price)));
    whales.appendChild(li);
  }
  $("no-whales").hidden = (snap.whales || []).length > 0;
}

function renderFeeds() {
  const body = $("feeds").tBodies[0]; clear(body);
  for (const f of state.snapshot.feeds || []) {
    const tr = el("tr");
    tr.dataset.venue = f.venue; tr.dataset.status = f.status;
    cell(tr, f.venue);
    const st = cell(tr, f.status, "status-" + f.status);
    st.title = f.detail;
    if (f.status !== "up") st.textContent = "down: " + f.detail;
    const age = cell(tr, f.last_data_age_s === null ? "–" : f.last_data_age_s + "s ago", "num");
    age.title = f.last_frame_age_s === null ? "no frame yet" : "last frame " + f.last_frame_age_s + "s ago";
    cell(tr, f.frames.toLocaleString("en-US"), "num");
    cell(tr, f.reconnects, "num");
    cell(tr, f.invalid, "num");
    const gaps = f.gaps.map((g) => clock(g[0]) + "–" + clock(g[1]));
    if (f.down_since_ms) gaps.push(clock(f.down_since_ms) + "–now");
    cell(tr, gaps.length ? gaps.length + ": " + gaps.slice(-2).join(", ") : "none");
    body.appendChild(tr);
  }
}

function tapeRow(row, fresh) {
  const [ts, venue, instrument, coin, side, value, px, completeness] = row;
  const tr = el("tr", fresh ? "new" : "");
  tr.dataset.side = side; tr.dataset.usd = String(value); tr.dataset.venue = venue;
  cell(tr, clock(ts));
  cell(tr, venue);
  cell(tr, instrument, "instrument");
  cell(tr, coin, "coin");
  cell(tr, side, side);
  cell(tr, usd(value), "num " + side);
  cell(tr, price(px), "num");
  const c = cell(tr, completeness === "full" ? "" : completeness, "mark");
  if (completeness !== "full") c.title = "this venue's feed is " + completeness;
  return tr;
}
function renderTape(fresh) {
  // fresh: rows newest first that arrived with this update (prepended, not redrawn).
  const body = $("tape").tBodies[0];
  const rows = fresh === null ? state.tape : fresh;
  const frag = document.createDocumentFragment();
  for (const row of rows) if (row[5] >= state.minUsd) frag.appendChild(tapeRow(row, fresh !== null));
  if (fresh === null) clear(body);
  body.insertBefore(frag, body.firstChild);
  while (body.rows.length > state.tapeSize) body.deleteRow(-1);
}

function renderPickers() {
  const snap = state.snapshot;
  const scopes = $("scopes");
  const venues = (snap.feeds || []).map((f) => f.venue);
  if (scopes.dataset.venues !== venues.join(",")) {
    scopes.dataset.venues = venues.join(",");
    while (scopes.children.length > 1) scopes.removeChild(scopes.lastChild);
    for (const v of venues) {
      const b = el("button", v === state.scope ? "on" : "", v);
      b.type = "button"; b.dataset.scope = v; scopes.appendChild(b);
    }
  }
  const coins = $("coins");
  const top = (snap.coins || []).slice(0, 24);
  if (coins.dataset.coins !== top.join(",")) {
    coins.dataset.coins = top.join(",");
    clear(coins);
    for (const c of top) {
      const b = el("button", c === state.coin ? "on" : "", c);
      b.type = "button"; b.dataset.coin = c; coins.appendChild(b);
    }
  }
  $("chart-title").textContent = (state.scope || "all venues") + (state.coin ? " · " + state.coin : "");
}

function render(fresh) {
  const snap = state.snapshot;
  document.body.dataset.seq = String(state.seq);
  $("clock").textContent = new Date(snap.now_ms).toISOString().slice(0, 19).replace("T", " ");
  const err = $("store-error");
  err.hidden = !snap.store_error; err.textContent = snap.store_error || "";
  renderPickers(); renderTotals(); renderCascades(); renderFeeds(); renderTape(fresh); draw();
}

// -- the stream ---------------------------------------------------------------------------------
function onFull(doc) {
  state.seq = doc.seq; state.minute = doc.minute; state.tapeSize = doc.tape_size;
  $("tape-size").textContent = String(doc.tape_size);
  state.bars = new Map(); applyBars(state.bars, doc.bars);
  state.tape = doc.tape; state.snapshot = doc;
  if (state.coin) loadCoin(state.coin);
  render(null);
}
function onUpdate(doc) {
  state.seq = doc.seq; state.minute = doc.minute;
  applyBars(state.bars, doc.bars);
  if (state.coin) {
    if (doc.bars.reset) loadCoin(state.coin);
    else applyCells(doc.bars.start, doc.bars.end, doc.cells);
  }
  state.tape = doc.tape.concat(state.tape).slice(0, state.tapeSize);
  state.snapshot = doc;
  render(doc.tape);
}

let source = null;
function connect() {
  const conn = $("conn");
  source = new EventSource("/api/stream");
  source.addEventListener("open", () => {
    conn.textContent = "live"; conn.className = "conn up"; conn.dataset.state = "live";
  });
  source.addEventListener("error", () => {
    conn.textContent = "reconnecting…"; conn.className = "conn down";
    conn.dataset.state = "reconnecting";
  });
  source.addEventListener("full", (ev) => onFull(JSON.parse(ev.data)));
  source.addEventListener("update", (ev) => {
    const doc = JSON.parse(ev.data);
    if (doc.seq !== state.seq + 1) { source.close(); connect(); return; }  // missed one
    onUpdate(doc);
  });
}

function picker(id, attr, apply) {
  $(id).addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    const on = b.classList.contains("on") && attr === "coin";
    for (const other of $(id).querySelectorAll("button")) other.classList.remove("on");
    if (!on) b.classList.add("on");
    apply(on ? "" : b.dataset[attr]);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  picker("hours", "hours", (v) => { state.hours = Number(v); draw(); });
  picker("scopes", "scope", (v) => { state.scope = v; if (state.snapshot) renderPickers(); draw(); });
  picker("coins", "coin", (v) => { loadCoin(v); if (state.snapshot) renderPickers(); });
  picker("windows", "window", (v) => { state.window = v; if (state.snapshot) renderTotals(); });
  $("min-usd").addEventListener("change", (ev) => {
    state.minUsd = Number(ev.target.value); if (state.snapshot) renderTape(null);
  });
  $("chart").addEventListener("mousemove", hover);
  window.addEventListener("resize", draw);
  connect();
});
