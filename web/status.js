// Operator status page of a cdni-gateway daemon (ucdn or dcdn). It reads
// GET /v1/status of the listener it came from, with the operator token the
// user gives (kept in this tab's sessionStorage; "#token=..." in the address
// is taken once and removed), every 2 seconds, and draws it. No framework,
// no build step: every value goes in through textContent or SVG attributes.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3b7dd8", "#e67e22", "#1f8a4c", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d4ac0d"];
const $ = (id) => document.getElementById(id);

function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("cdni-operator-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const tr = el("tr");
    const td = el("td", "none", "muted");
    td.colSpan = tbody.parentElement.querySelectorAll("thead th").length;
    tr.append(td);
    tbody.append(tr);
  }
}

function tr(cells, attrs) {
  const r = el("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.append(c); r.append(td); }
    else if (c && typeof c === "object") { r.append(el("td", c.text, c.cls)); }
    else r.append(el("td", c));
  }
  for (const [k, v] of Object.entries(attrs || {})) r.setAttribute(k, v);
  return r;
}

function bytes(n) {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}
const short = (v) => v >= 1e6 ? +(v / 1e6).toFixed(1) + "M" : v >= 1e4 ? +(v / 1e3).toFixed(1) + "k" : String(+v.toFixed(1));
const age = (ms) => ms === undefined ? "never" : ms < 1000 ? "just now" : Math.round(ms / 1000) + " s ago";
const pct = (x) => (100 * x).toFixed(x < 0.1 && x > 0 ? 1 : 0) + " %";
const when = (s) => new Date(s * 1000).toISOString().slice(11, 19) + " UTC";

function loadBar(x) {
  const wrap = el("div", null, "bar");
  const b = el("div");
  b.style.width = Math.min(100, Math.max(0, 100 * x)).toFixed(0) + "%";
  wrap.append(b);
  const d = el("div");
  d.append(el("span", pct(x)), wrap);
  return d;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function legend(names) {
  const d = el("div", null, "legend");
  names.forEach((n, i) => {
    const s = el("span");
    const sw = el("i");
    sw.style.background = COLORS[i % COLORS.length];
    s.append(sw, document.createTextNode(n));
    d.append(s);
  });
  return d;
}

// The axis top: 4, or the next 1-2-5 step above the largest value, so the
// four grid lines fall on round numbers.
function niceCeil(v) {
  if (v <= 4) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v / 4)));
  for (const m of [1, 2, 2.5, 5, 10]) if (4 * m * p >= v) return 4 * m * p;
  return v;
}

// One line per series over the minutes of the window; max: the y scale's top
// (defaults to the largest value), fmt: how a y value is written.
function lineChart(box, minutes, series, opts) {
  opts = opts || {};
  const W = Math.max(320, box.clientWidth || 640), H = 180, L = 56, R = 24, T = 8, B = 22;
  const names = Object.keys(series).sort();
  const n = minutes.minutes;
  let max = opts.max || 0;
  if (!opts.max) {
    for (const k of names) for (const v of series[k]) if (v !== null && v > max) max = v;
    max = niceCeil(max);
  }
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": box.id });
  const x = (i) => L + (n > 1 ? (i * (W - L - R)) / (n - 1) : 0);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (let g = 0; g <= 4; g++) {
    const v = (max * g) / 4;
    s.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e7ec" }));
    s.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7685" },
      opts.fmt ? opts.fmt(v) : short(v)));
  }
  for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 6))) {
    const t = new Date((minutes.start + i * minutes.step_s) * 1000).toISOString().slice(11, 16);
    s.append(svg("text", { x: x(i), y: H - 6, "text-anchor": "middle", "font-size": 11, fill: "#6b7685" }, t));
  }
  names.forEach((k, idx) => {
    const pts = series[k].map((v, i) => v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const color = COLORS[idx % COLORS.length];
    let run = [];
    const flush = () => {
      if (run.length > 1) s.append(svg("polyline", { points: run.join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      run = [];
    };
    pts.forEach((p, i) => {
      if (p === null) { flush(); return; }
      run.push(p);
      s.append(svg("circle", { cx: p.split(",")[0], cy: p.split(",")[1], r: 2.5, fill: color }));
    });
    flush();
  });
  box.replaceChildren(s, legend(names));
  box.dataset.series = names.join(",");
}

// Horizontal bars, largest first.
function barChart(box, entries, fmt) {
  entries = entries.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, 12);
  const W = Math.max(320, box.clientWidth || 640), row = 24, H = Math.max(row, entries.length * row) + 4, L = 170;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": box.id });
  s.style.height = H + "px";
  const max = entries.length ? entries[0][1] : 1;
  entries.forEach(([name, v], i) => {
    const w = ((W - L - 90) * v) / max;
    s.append(svg("text", { x: L - 8, y: i * row + 16, "text-anchor": "end", "font-size": 12, fill: "#1c2430" },
      name.length > 24 ? name.slice(0, 23) + "\u2026" : name));
    s.append(svg("rect", { x: L, y: i * row + 4, width: Math.max(1, w), height: row - 8, rx: 2, fill: COLORS[i % COLORS.length] }));
    s.append(svg("text", { x: L + w + 6, y: i * row + 16, "font-size": 12, fill: "#6b7685" }, fmt(v)));
  });
  if (!entries.length) s.append(svg("text", { x: 8, y: 16, "font-size": 12, fill: "#6b7685" }, "no traffic yet"));
  box.replaceChildren(s);
  box.dataset.bars = entries.map(([n]) => n).join(",");
}

const pick = (series, prefix) => Object.fromEntries(
  Object.entries(series).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
const sum = (a) => a.reduce((x, y) => x + y, 0);

// certificates of this instance's TLS listeners that expire within 14 days (or have)
function renderCertificates(st) {
  const soon = (st.certificates || []).filter((c) => c.expiring);
  const w = $("cert-warning");
  w.hidden = !soon.length;
  w.textContent = soon.map((c) => `certificate of the ${c.listener} listener (${c.file}) ` +
    (c.days_left < 0 ? `expired ${c.not_after}` : `expires ${c.not_after}, in ${c.days_left} days`)).join("; ");
}

// the uCDN's catalog: empty (nothing published), or found lost in Redis
function renderCatalog(st) {
  const c = st.catalog, w = $("catalog-warning");
  w.hidden = !c || (c.state === "ok" && !c.lost_at);
  if (!w.hidden) w.textContent = `catalog ${c.state}: ${c.note}` + (c.lost_at ? ` (found lost ${c.lost_at})` : "");
}

function renderUcdn(st) {
  renderCatalog(st);
  const series = st.minutes.series;
  fill($("peers").tBodies[0], st.peers.map((p) => {
    const fps = el("div");
    for (const f of p.footprints.slice(0, 8)) fps.append(el("span", f, "fp"));
    if (p.footprints.length > 8) fps.append(el("span", `+${p.footprints.length - 8} more`, "muted"));
    if (!p.footprints.length) fps.append(el("span", "none advertised", "muted"));
    const state = !p.enabled ? { text: "disabled", cls: "muted" } :
      p.available ? { text: p.ri_suspended_ms ? "available (RI suspended)" : "available", cls: "ok" } :
      { text: "unavailable", cls: "bad" };
    const e = p.errors;
    return tr([p.id, state, age(p.last_heartbeat_age_ms), loadBar(p.load), fps,
      { text: p.redirects, cls: "num" }, { text: pct(p.redirect_share), cls: "num" },
      { text: `${e.ri} / ${e.ci} / ${e.li}`, cls: e.ri + e.ci + e.li ? "bad" : "" }], { "data-peer": p.id });
  }));
  const redirects = pick(series, "redirect:");
  for (const p of st.peers) if (!redirects[p.id]) redirects[p.id] = new Array(st.minutes.minutes).fill(0);
  lineChart($("chart-redirects"), st.minutes, redirects);
  $("redirects-total").textContent = `${sum(Object.values(redirects).map(sum))} in the last ${st.minutes.minutes} min`;
  const byCcid = {};
  for (const r of st.traffic.rows) byCcid[r.ccid] = (byCcid[r.ccid] || 0) + r.bytes;
  barChart($("chart-ccid"), Object.entries(byCcid), bytes);
  $("traffic-day").textContent = st.traffic.day + " (from the collected CDNI logs)";
  fill($("collector").tBodies[0], st.logs.peers.map((p) => tr([p.dcdn, { text: p.files, cls: "num" },
    { text: p.records, cls: "num" }, { text: p.quarantined, cls: p.quarantined ? "num bad" : "num" },
    { text: p.retrying, cls: "num" }, p.last_error || ""], { "data-collector": p.dcdn })));
  $("purges-open").textContent = `${st.purges.open} open`;
  fill($("purges").tBodies[0], st.purges.requests.map((q) => tr([q.id, q.type, q.csp || "", when(q.created),
    q.status, q.dcdns.map((x) => `${x.dcdn}: ${x.status}`).join(", ")], { "data-request": q.id })));
}

function renderDcdn(st) {
  const series = st.minutes.series;
  const fillOf = (c) => c && c.disk_bytes ? c.bytes / c.disk_bytes : 0;
  fill($("surrogates").tBodies[0], st.surrogates.map((s) => tr([s.id, s.url,
    s.alive ? { text: s.overloaded ? "alive (overloaded)" : "alive", cls: s.overloaded ? "bad" : "ok" } : { text: "dead", cls: "bad" },
    loadBar(s.load), age(s.heartbeat_age_ms),
    s.cache ? loadBar(fillOf(s.cache)) : { text: "not told", cls: "muted" },
    { text: s.cache ? `${s.cache.objects} (${bytes(s.cache.bytes)})` : "", cls: "num" }], { "data-surrogate": s.id })));
  $("hit-ratio").textContent = st.window.hit_ratio === null ? "\u2013" : pct(st.window.hit_ratio);
  $("deliveries").textContent = st.window.deliveries;
  // the caches of the live surrogates, as their heartbeats told them
  const caches = st.surrogates.filter((s) => s.alive && s.cache).map((s) => s.cache);
  if (caches.length) {
    const used = sum(caches.map((c) => c.bytes)), cap = sum(caches.map((c) => c.disk_bytes));
    $("cache-of").textContent = `${caches.length} live surrogate${caches.length > 1 ? "s" : ""}`;
    $("cache-objects").textContent = sum(caches.map((c) => c.objects));
    $("cache-fill").textContent = `${bytes(used)} (${pct(cap ? used / cap : 0)})`;
    $("cache-fill-bar").style.width = (cap ? (100 * used) / cap : 0).toFixed(1) + "%";
  } else {
    $("cache-of").textContent = "(no live surrogate has told its cache)";
  }
  const outcomes = pick(series, "cache:");
  lineChart($("chart-hits"), st.minutes, { "hit ratio": st.window.hit_ratio_per_minute },
            { max: 1, fmt: (v) => Math.round(100 * v) + "%" });
  lineChart($("chart-outcomes"), st.minutes, outcomes);
  barChart($("chart-dccid"), Object.entries(pick(series, "bytes:")).map(([k, v]) => [k, sum(v)]), bytes);
  if (st.triggers) {
    $("triggers-open").textContent = `${st.triggers.open} open`;
    fill($("triggers").tBodies[0], st.triggers.triggers.map((t) => tr([t.id, t.upstream, t.type || "", t.status,
      when(t.ctime)], { "data-trigger": t.id })));
  }
  fill($("logfiles").tBodies[0], st.logs.map((l) => tr([l.upstream, { text: l.files, cls: "num" },
    { text: bytes(l.bytes), cls: "num" }, l.last_file ? `${l.last_file.uuid} (${when(l.last_file.mtime)})` : "none yet",
    { text: l.records_in_journal, cls: "num" }], { "data-upstream": l.upstream })));
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const token = sessionStorage.getItem("cdni-operator-token");
  if (!token) { $("login").hidden = false; $("updated").textContent = "not signed in"; return; }
  try {
    const r = await fetch("/v1/status", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (r.status === 401) {
      sessionStorage.removeItem("cdni-operator-token");
      $("login").hidden = false;
      $("login-error").textContent = "That token was refused.";
      return;
    }
    const st = await r.json();
    if (!r.ok) throw new Error(st.detail || st.title || r.status);
    $("login").hidden = true;
    $("role").textContent = st.role === "ucdn" ? "uCDN" : "dCDN";
    $("cdn-id").textContent = st.cdn_id;
    document.title = `${st.cdn_id} status`;
    $(st.role).hidden = false;
    (st.role === "ucdn" ? renderUcdn : renderDcdn)(st);
    renderCertificates(st);
    $("updated").className = "muted";
    $("updated").textContent = "updated " + new Date(st.now_ms).toISOString().slice(11, 19) + " UTC";
    document.body.dataset.ready = "1";
  } catch (e) {
    $("updated").textContent = "cannot read the status: " + e.message;
    $("updated").className = "bad";
  }
  timer = setTimeout(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("cdni-operator-token", $("token").value.trim());
    $("login-error").textContent = "";
    refresh();
  });
  refresh();
});
