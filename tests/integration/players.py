"""Players nobody here wrote play the signed sample: FFmpeg (ffprobe and
ffmpeg), GStreamer's playbin and playbin3, and hls.js, shaka-player and
dash.js in Chromium, on the signed HLS title (a master the uCDN rewrites,
option 3.2) and the signed DASH title (a collection published with
origin_url). Each asserts that playback advanced and that the segments came
from the dCDN's surrogate, with a token of their own on every URI (no
player here needs a cookie). The sample host, video.example.com, has no DNS:
the command-line players run in a mount namespace where /etc/hosts names it
(unshare, as root), Chromium with --host-resolver-rules. run.py runs these
with the rest."""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse

import harness
from harness import (OP_TOKEN, ChunkOrigin, Skip, drive, free_port, http, put_collection, sample_title_files, sign,
                 signing_env, signed_dcdn, wait_for)

# a CSP token for both titles, whatever port the delivery listener has
TITLES = "regex:https?://video\\.example\\.com(:[0-9]+)?/vod/(m1|d1)/.*"


def title_env(env, ui=False):
    """Both CDNs signing, the sample title (HLS m1, DASH d1) on an origin of
    its own, collections m1 (the examples' master, inline) and d1 (the MPD
    by origin_url), and a dCDN router with surrogate se-x. Returns
    (origin, surrogate port, page origin, CSP token)."""
    files = sample_title_files()
    o = ChunkOrigin(files, headers={"Access-Control-Allow-Origin": "*"})
    page_origin = "http://127.0.0.1:%d" % env.ports["uop"]

    def tweak(u, d):
        if ui:
            u["ui_dir"] = os.path.join(harness.ROOT, "build/ui")
            u["listeners"]["delivery"]["cors_origins"] = [page_origin]
    keys = signing_env(env, tweak)
    rec = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])
    doc = dict(rec["service"], host=rec["host"])
    doc["metadata"][0]["generic-metadata-value"]["sources"] = [
        {"endpoints": ["127.0.0.1:%d" % o.port], "protocol": "http/1.1"}]
    for p in doc["paths"]:
        if p["path-pattern"]["pattern"] == "/vod/m1/*":
            d1 = json.loads(json.dumps(p))
            d1["path-pattern"]["pattern"] = "/vod/d1/*"
            d1["path-metadata"]["metadata"][0]["generic-metadata-value"]["ccid"] = "d1"
            doc["paths"].append(d1)
            break
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))
    assert s in (200, 201), (s, b)
    master = open(os.path.join(harness.ROOT, "examples/master.m3u8")).read()
    assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                      "manifest": master})[0] == 201
    assert put_collection(env, "d1", {"service": "vod1", "path": "/vod/d1/manifest.mpd", "ccid": "d1",
                                      "origin_url": "http://127.0.0.1:%d/vod/d1/manifest.mpd" % o.port})[0] == 201
    sp, sop = free_port(), free_port()
    signed_dcdn(env, keys, sp, sop, cors=[page_origin] if ui else None)
    q = urllib.parse.quote("http://video.example.com/vod/d1/init-0.m4s", safe="")
    assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (sop, q),
                                 token=OP_TOKEN)[0] == 200, timeout=5)
    tok = sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=int(time.time()) + 600, cdniuc=TITLES)
    return o, sp, page_origin, tok


def surrogate_deliveries(env, since=0):
    """The surrogate's delivery records (its access log) from line since on."""
    lines = [l for l in env.log("dcdn-se").splitlines() if '"msg":"delivery"' in l]
    return [json.loads(l) for l in lines[since:]]


def assert_from_surrogate(env, ccid, since=0, kinds=(".ts", ".m4s")):
    """Segments of the collection were served by the surrogate, by token."""
    time.sleep(0.3)
    recs = [r for r in surrogate_deliveries(env, since) if r["ccid"] == ccid and r["uri"].endswith(kinds)]
    ok = [r for r in recs if r["status"] in ("200", "206")]
    assert len(ok) >= 3, recs[-5:] or surrogate_deliveries(env)[-5:]
    assert {r["auth"] for r in ok} == {"token"}, {r["auth"] for r in ok}
    assert not [r for r in recs if r["status"] == "403"], [r for r in recs if r["status"] == "403"][:3]
    return ok


def hosts_wrapper(env):
    """A command prefix that runs a program seeing video.example.com at
    127.0.0.1 (its own /etc/hosts in a private mount namespace)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("naming video.example.com for a player needs root (unshare -m, mount --bind)")
    path = os.path.join(env.dir, "hosts")
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 video.example.com\n")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount --bind "$0" /etc/hosts && getent hosts video.example.com', path],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise Skip("cannot give a player its own /etc/hosts here: " + probe.stderr.strip()[:200])
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', path]


def urls(env, tok):
    base = "http://video.example.com:%d" % env.ports["udel"]
    return (base + "/vod/m1/master.m3u8?URISigningPackage=" + tok,
            base + "/vod/d1/manifest.mpd?URISigningPackage=" + tok)


def test_ffmpeg_plays_the_signed_hls_and_dash_titles(env):
    """ffprobe counts every frame of the signed HLS master's renditions, and
    ffmpeg decodes the signed DASH collection to null, every segment from
    the surrogate (before: every HLS segment 403, FFmpeg sending the uCDN's
    session cookie to the surrogate)."""
    if not shutil.which("ffprobe"):
        raise Skip("ffmpeg is not installed (apt-get install ffmpeg)")
    wrap = hosts_wrapper(env)
    o, sp, _, tok = title_env(env)
    try:
        hls, dash = urls(env, tok)
        p = subprocess.run(wrap + ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                                   "stream=codec_type,nb_read_frames", "-of", "json", hls],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        streams = json.loads(p.stdout)["streams"]
        video = [int(s["nb_read_frames"]) for s in streams if s["codec_type"] == "video"]
        audio = [int(s["nb_read_frames"]) for s in streams if s["codec_type"] == "audio"]
        # 8 s at 25 frames/s in each video rendition; AAC at 48 kHz, 1024 samples a frame
        assert video and min(video) >= 190 and audio and min(audio) >= 350, streams
        assert_from_surrogate(env, "m1")
        n = len(surrogate_deliveries(env))
        p = subprocess.run(wrap + ["ffmpeg", "-v", "error", "-nostdin", "-i", dash, "-f", "null", "-"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "403" not in p.stderr, p.stderr[-2000:]
        recs = assert_from_surrogate(env, "d1", since=n, kinds=(".m4s",))
        assert {r["uri"].rsplit("/", 1)[1] for r in recs} >= {"init-0.m4s", "chunk-0-00004.m4s"}, recs
    finally:
        o.stop()


def gst(wrap, element, uri, timeout=90):
    """gst-launch-1.0 ELEMENT uri=URI with fake sinks: (ended with EOS, output)."""
    p = subprocess.run(wrap + ["gst-launch-1.0", element, "uri=" + uri, "video-sink=fakesink",
                               "audio-sink=fakesink"], capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    return p.returncode == 0 and "Got EOS from element" in out and "ERROR" not in out, out


def test_gstreamer_playbin_and_playbin3_play_the_signed_titles(env):
    """GStreamer's legacy playbin (hlsdemux, dashdemux) and playbin3
    (hlsdemux2, dashdemux2, libsoup 3; before: every segment 403) play both
    titles to the end with fake sinks."""
    if not shutil.which("gst-launch-1.0"):
        raise Skip("GStreamer is not installed (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good "
                   "gstreamer1.0-plugins-bad gstreamer1.0-libav)")
    for el in ("hlsdemux", "hlsdemux2", "dashdemux", "dashdemux2", "avdec_h264"):
        if subprocess.run(["gst-inspect-1.0", "--exists", el]).returncode != 0:
            raise Skip("GStreamer element %s is missing (gstreamer1.0-plugins-good/-bad, gstreamer1.0-libav)" % el)
    wrap = hosts_wrapper(env)
    o, sp, _, tok = title_env(env)
    try:
        hls, dash = urls(env, tok)
        for element in ("playbin", "playbin3"):
            for ccid, uri in (("m1", hls), ("d1", dash)):
                n = len(surrogate_deliveries(env))
                ok, out = gst(wrap, element, uri)
                assert ok, (element, ccid, out[-3000:])
                assert_from_surrogate(env, ccid, since=n)
    finally:
        o.stop()


def test_hlsjs_shaka_and_dashjs_play_the_signed_titles_in_chromium(env):
    """hls.js (HLS), shaka-player (HLS and DASH) and dash.js (DASH), vendored
    from npm by the build, in Chromium: playback advances and every segment
    is answered by the surrogate."""
    why = harness.browser_missing()
    if why:
        raise Skip(why)
    o, sp, page_origin, tok = title_env(env, ui=True)
    try:
        resolve = "MAP video.example.com:80 127.0.0.1:%d" % env.ports["udel"]
        hls = "http://video.example.com/vod/m1/master.m3u8?URISigningPackage=" + tok
        dash = "http://video.example.com/vod/d1/manifest.mpd?URISigningPackage=" + tok
        for engine, ccid, src in (("hlsjs", "m1", hls), ("shaka", "m1", hls), ("shaka", "d1", dash),
                                  ("dashjs", "d1", dash)):
            n = len(surrogate_deliveries(env))
            page = "%s/status/player.html?engine=%s&src=%s" % (page_origin, engine, urllib.parse.quote(src, safe=""))
            r = drive("play", page=page, resolve=resolve, seconds=3, timeout_s=40)
            assert r["position"] >= 3 and not [e for e in r["errors"] if e.get("fatal")], (engine, ccid, r)
            segs = [x for x in r["requests"] if x["kind"].endswith("segment")]
            assert segs and all(x["answered"].startswith("http://127.0.0.1:%d/video.example.com/vod/%s/" % (sp, ccid))
                                for x in segs), (engine, ccid, r["requests"])
            assert_from_surrogate(env, ccid, since=n)
    finally:
        o.stop()


def test_session_auth_picks_tokens_cookie_or_both_and_live_playlists_are_signed_afresh(env):
    """The surrogate's media playlist as each CDNIGW.HASManifest session-auth
    value makes it: both (the default) a token on every segment and a
    session cookie, query tokens only, cookie the cookie only; each
    credential opens a segment by itself. A live playlist that changed at
    the origin is signed anew: its new segments carry tokens too."""
    o, sp, _, tok = title_env(env)
    o.cc = "max-age=1"  # a live playlist's lifetime at the surrogate
    try:
        def variant():
            s, _, b = harness.raw_get(env.ports["udel"], "/vod/m1/master.m3u8?URISigningPackage=" + tok)
            assert s == 200, (s, b)
            url = [l for l in b.decode().splitlines() if "/720p/index.m3u8" in l][0]
            u = urllib.parse.urlsplit(url)
            s, h, b = harness.raw_get(sp, u.path + "?" + u.query, host=u.netloc)
            assert s == 200, (s, b)
            segs = [l for l in b.decode().splitlines() if l and not l.startswith("#")]
            return segs, h.get("set-cookie", ""), h

        def seg_status(line, cookie=None):
            u = urllib.parse.urlsplit(line)
            target = (u.path if u.scheme else "/video.example.com/vod/m1/720p/" + u.path) + \
                ("?" + u.query if u.query else "")
            return harness.raw_get(sp, target, host="127.0.0.1:%d" % sp,
                               headers={"Cookie": cookie} if cookie else None)[0]

        def set_mode(mode):
            rec = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])
            doc = dict(rec["service"], host=rec["host"])
            for p in doc["paths"]:
                if p["path-pattern"]["pattern"] == "/vod/m1/*":
                    md = [m for m in p["path-metadata"]["metadata"]
                          if m["generic-metadata-type"] != "CDNIGW.HASManifest"]
                    md.append({"generic-metadata-type": "CDNIGW.HASManifest",
                               "generic-metadata-value": {"format": "hls", "session-auth": mode}})
                    p["path-metadata"]["metadata"] = md
            s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))
            assert s in (200, 201), (s, b)

        segs, cookie, h = variant()
        # the request's own token covers the directory (its cdniuc), so the
        # names stay relative and carry it
        assert len(segs) == 4 and all(re.match(r"seg_00\d\.ts\?URISigningPackage=[\w.-]+$", l)
                                      for l in segs), segs
        assert cookie.startswith("CDNISession="), h
        assert h["cache-control"] == "private, no-store" and "etag" not in h, h
        assert seg_status(segs[0]) == 200
        bare = segs[1].split("?")[0]
        assert seg_status(bare) == 403  # no credential at all
        assert seg_status(bare, cookie.split(";")[0]) == 200
        # cookie: the playlist as the origin wrote it, and the cookie
        set_mode("cookie")
        assert wait_for(lambda: "URISigningPackage=" not in variant()[0][0], timeout=10), variant()
        segs, cookie, _ = variant()
        assert segs[0] == "seg_001.ts" and cookie.startswith("CDNISession="), (segs, cookie)
        assert seg_status(segs[2]) == 403 and seg_status(segs[2], cookie.split(";")[0]) == 200
        # query: tokens, no cookie
        set_mode("query")
        assert wait_for(lambda: "URISigningPackage=" in variant()[0][0], timeout=10), variant()
        segs, cookie, _ = variant()
        assert cookie == "" and all("URISigningPackage=" in l for l in segs), (segs, cookie)
        assert seg_status(segs[3]) == 200
        # a live playlist moving on at the origin: the next refresh signs its new segment
        path = "/vod/m1/720p/index.m3u8"
        live = re.sub(rb"#EXT-X-ENDLIST\s*", b"", o.files[path])
        live = live.replace(b"#EXT-X-PLAYLIST-TYPE:VOD\n", b"")
        o.files[path] = live
        assert wait_for(lambda: len(variant()[0]) == 4, timeout=5)
        first = variant()[0]
        o.files[path] = live.replace(b"seg_001.ts", b"seg_005.ts")
        assert wait_for(lambda: any("seg_005.ts?" in l for l in variant()[0]), timeout=5), variant()
        now = variant()[0]
        assert all("URISigningPackage=" in l for l in now) and "seg_005.ts" not in " ".join(first), (first, now)
    finally:
        o.stop()
