// Test player: plays ?src=<master playlist> with hls.js (vendored from npm by
// the build), with credentials so the CDNs' session cookies travel, and lists
// every playlist and segment with the URL that finally answered it (after
// redirects) and its X-Cache. window.player keeps the same for scripts.
"use strict";

const $ = (id) => document.getElementById(id);
window.player = { requests: [], errors: [], position: 0 };

function note(kind, url, xhr, bytes) {
  const rec = { kind, url, answered: xhr && xhr.responseURL ? xhr.responseURL : url,
                cache: xhr && xhr.getResponseHeader ? xhr.getResponseHeader("X-Cache") || "" : "", bytes };
  window.player.requests.push(rec);
  const tr = document.createElement("tr");
  for (const v of [kind, rec.answered, rec.cache, bytes]) {
    const td = document.createElement("td");
    td.textContent = String(v);
    tr.append(td);
  }
  $("requests").tBodies[0].append(tr);
}

function play(src) {
  const video = $("video");
  if (!window.Hls || !Hls.isSupported()) {
    $("error").textContent = "hls.js cannot play here (no Media Source Extensions)";
    return;
  }
  const hls = new Hls({ xhrSetup: (xhr) => { xhr.withCredentials = true; }, enableWorker: true });
  hls.on(Hls.Events.MANIFEST_LOADED, (e, d) => note("master", d.url, d.networkDetails, d.stats ? d.stats.loaded : ""));
  hls.on(Hls.Events.LEVEL_LOADED, (e, d) => note("playlist", d.details.url, d.networkDetails, d.stats ? d.stats.loaded : ""));
  hls.on(Hls.Events.AUDIO_TRACK_LOADED, (e, d) => note("audio playlist", d.details.url, d.networkDetails, ""));
  hls.on(Hls.Events.FRAG_LOADED, (e, d) => {
    note(d.frag.type === "audio" ? "audio segment" : "segment", d.frag.url, d.networkDetails, d.frag.stats.loaded);
    $("count").textContent = window.player.requests.filter((r) => r.kind.endsWith("segment")).length;
  });
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
  video.addEventListener("timeupdate", () => {
    window.player.position = video.currentTime;
    $("position").textContent = video.currentTime.toFixed(1) + " s";
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((err) => { $("error").textContent = err.message; }));
}

document.addEventListener("DOMContentLoaded", () => {
  const src = new URLSearchParams(location.search).get("src");
  if (src) {
    $("src").value = src;
    play(src);
  }
  $("pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.search = "?src=" + encodeURIComponent($("src").value);
  });
});
