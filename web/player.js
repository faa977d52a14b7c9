// Test player: plays ?src=<manifest> with ?engine=hlsjs, shaka or dashjs
// (vendored from npm by the build; by default hls.js for HLS and dash.js for
// an .mpd), with credentials so the CDNs' session cookies travel, and lists
// every manifest and segment with the URL that finally answered it (after
// redirects) and its X-Cache. window.player keeps the same for scripts.
"use strict";

const $ = (id) => document.getElementById(id);
window.player = { engine: "", requests: [], errors: [], position: 0 };

function note(kind, url, answered, cache, bytes) {
  const rec = { kind, url, answered: answered || url, cache: cache || "", bytes };
  window.player.requests.push(rec);
  const tr = document.createElement("tr");
  for (const v of [kind, rec.answered, rec.cache, bytes]) {
    const td = document.createElement("td");
    td.textContent = String(v);
    tr.append(td);
  }
  $("requests").tBodies[0].append(tr);
  $("count").textContent = window.player.requests.filter((r) => r.kind.endsWith("segment")).length;
}

function fail(text) {
  window.player.errors.push({ fatal: true, details: text });
  $("error").textContent = text;
}

function kindOf(url) {
  const path = new URL(url, location.href).pathname;
  return path.endsWith(".m3u8") ? "playlist" : path.endsWith(".mpd") ? "manifest" : "segment";
}

// shaka-player and dash.js: every response as the page's fetch and XHR see it
function watchNetwork() {
  const fetch0 = window.fetch;
  window.fetch = async function (input, init) {
    const r = await fetch0.call(this, input, init);
    const url = typeof input === "string" ? input : input.url;
    note(kindOf(url), url, r.url, r.headers.get("X-Cache"), r.headers.get("Content-Length") || "");
    return r;
  };
  const open0 = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.addEventListener("loadend", () => {
      if (!this.status) return;
      const b = this.response && this.response.byteLength !== undefined ? this.response.byteLength
              : (this.responseText || "").length;
      note(kindOf(String(url)), String(url), this.responseURL, this.getResponseHeader("X-Cache"), b);
    });
    return open0.apply(this, arguments);
  };
}

function load(script) {
  return new Promise((ok, bad) => {
    const s = document.createElement("script");
    s.src = script;
    s.onload = ok;
    s.onerror = () => bad(new Error("cannot load " + script));
    document.head.append(s);
  });
}

function hlsjs(src, video) {
  if (!window.Hls || !Hls.isSupported()) return fail("hls.js cannot play here (no Media Source Extensions)");
  const hls = new Hls({ xhrSetup: (xhr) => { xhr.withCredentials = true; }, enableWorker: true });
  const xc = (d) => (d && d.getResponseHeader ? d.getResponseHeader("X-Cache") : "");
  const at = (d, url) => (d && d.responseURL ? d.responseURL : url);
  hls.on(Hls.Events.MANIFEST_LOADED, (e, d) => note("master", d.url, at(d.networkDetails, d.url), xc(d.networkDetails),
                                                     d.stats ? d.stats.loaded : ""));
  hls.on(Hls.Events.LEVEL_LOADED, (e, d) => note("playlist", d.details.url, at(d.networkDetails, d.details.url),
                                                  xc(d.networkDetails), d.stats ? d.stats.loaded : ""));
  hls.on(Hls.Events.AUDIO_TRACK_LOADED, (e, d) => note("audio playlist", d.details.url,
                                                        at(d.networkDetails, d.details.url), xc(d.networkDetails), ""));
  hls.on(Hls.Events.FRAG_LOADED, (e, d) => note(d.frag.type === "audio" ? "audio segment" : "segment", d.frag.url,
                                                 at(d.networkDetails, d.frag.url), xc(d.networkDetails),
                                                 d.frag.stats.loaded));
  hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => {
    const l = hls.levels[d.level];
    $("level").textContent = l ? `${l.height}p` : d.level;
  });
  hls.on(Hls.Events.ERROR, (e, d) => {
    window.player.errors.push({ type: d.type, details: d.details, fatal: d.fatal,
                                url: d.frag ? d.frag.url : d.url || "", status: d.response ? d.response.code : 0 });
    if (d.fatal) $("error").textContent = `${d.type}: ${d.details}`;
  });
  hls.loadSource(src);
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((err) => { $("error").textContent = err.message; }));
}

async function shakaPlayer(src, video) {
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) return fail("shaka-player cannot play here");
  const p = new shaka.Player();
  await p.attach(video);
  p.getNetworkingEngine().registerRequestFilter((type, req) => { req.allowCrossSiteCredentials = true; });
  p.addEventListener("error", (e) => fail(`shaka ${e.detail.code}: ${e.detail.message || ""}`));
  p.addEventListener("variantchanged", () => {
    const t = p.getVariantTracks().find((x) => x.active);
    if (t) $("level").textContent = `${t.height}p`;
  });
  await p.load(src);
  await video.play();
}

function dashPlayer(src, video) {
  const p = dashjs.MediaPlayer().create();
  p.on(dashjs.MediaPlayer.events.ERROR, (e) => fail("dash.js: " + JSON.stringify(e.error || e).slice(0, 300)));
  p.initialize(video, src, true);
}

async function play(src, engine) {
  const video = $("video");
  window.player.engine = engine;
  video.addEventListener("timeupdate", () => {
    window.player.position = video.currentTime;
    $("position").textContent = video.currentTime.toFixed(1) + " s";
  });
  try {
    if (engine === "hlsjs") {
      await load("vendor/hls.min.js");
      hlsjs(src, video);
    } else if (engine === "shaka") {
      watchNetwork();
      await load("vendor/shaka-player.compiled.js");
      await shakaPlayer(src, video);
    } else if (engine === "dashjs") {
      watchNetwork();
      await load("vendor/dash.all.min.js");
      dashPlayer(src, video);
    } else {
      fail("unknown player " + engine);
    }
  } catch (err) {
    fail(String(err && err.message ? err.message : err));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const q = new URLSearchParams(location.search);
  const src = q.get("src");
  if (src) {
    const engine = q.get("engine") || (new URL(src).pathname.endsWith(".mpd") ? "dashjs" : "hlsjs");
    $("src").value = src;
    $("engine").value = q.get("engine") || "";
    play(src, engine);
  }
  $("pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const e = $("engine").value;
    location.search = "?src=" + encodeURIComponent($("src").value) + (e ? "&engine=" + e : "");
  });
});
