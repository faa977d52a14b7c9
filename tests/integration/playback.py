"""Integration tests: a signed title played end to end through both daemons, the
status pages, and a browser. run.py runs them with the rest."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

from harness import (BIN, ChunkOrigin, DCDN_PID, M1, OP_TOKEN, ROOT, Skip, browser_missing, drive, fan_out, free_port,
                     http, log_records, put_collection, raw_get, raw_request, routed, sample_title_files, service,
                     sget, sign, signed_dcdn, signing_env, surrogate_env, trigger, wait_for)


def test_player_plays_signed_hls_through_ucdn_router_and_surrogate(env):
    """The whole walk: CSP token -> uCDN (master rewritten toward the dCDN,
    one uCDN token) -> surrogate (variant with a token on every segment URI,
    and a session cookie) -> segments by token, acquired once from the
    origin and then served from the cache; the cookie alone opens them too."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import play
    keys = signing_env(env)
    media = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg_1.ts\n#EXTINF:4,\nseg_2.ts\n#EXT-X-ENDLIST\n"
    segs = {"/vod/m1/720p/seg_%d.ts" % i: os.urandom(150000) for i in (1, 2)}
    o = ChunkOrigin(dict(segs, **{"/vod/m1/720p/index.m3u8": media.encode()}))
    try:
        # the service as signing_env published it, its source now the origin
        rec = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])
        doc = dict(rec["service"], host=rec["host"])
        doc["metadata"][0]["generic-metadata-value"]["sources"] = [
            {"endpoints": ["127.0.0.1:%d" % o.port], "protocol": "http/1.1"}]
        s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))
        assert s in (200, 201), (s, b)
        master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2500000\n720p/index.m3u8\n"
        assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                          "manifest": master})[0] == 201
        # the dCDN: its router sends this footprint to surrogate se-x, which shares its key
        sp, op = free_port(), free_port()
        signed_dcdn(env, keys, sp, op)
        now = int(time.time())
        csp = sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=now + 600, cdniuc=M1)
        url = "http://video.example.com/vod/m1/master.m3u8?URISigningPackage=" + csp
        connect = {"video.example.com": "127.0.0.1:%d" % env.ports["udel"]}

        def played():
            p, ok = play.play(url, connect, segments=2)
            return p if ok else None
        p = wait_for(played, timeout=10)
        assert p, "the session did not play"
        what = {e["what"]: e for e in p.log}
        assert what["master"]["hops"][0]["url"].startswith("http://video.example.com/")
        variant = what["variant"]["hops"][0]["url"]
        assert variant.startswith("http://127.0.0.1:%d/video.example.com/vod/m1/720p/index.m3u8?" % sp), variant
        assert csp not in variant  # the uCDN's token, not the CSP's
        assert [what["segment %d" % i]["hops"][-1]["x-cache"] for i in (1, 2)] == ["MISS", "MISS"]
        assert "CDNISession" in str(p.cookies.get("127.0.0.1:%d" % sp)), p.cookies
        # a player whose cookie jar does not keep hosts apart sends the uCDN's CDNISession too, first:
        # the surrogate tries each value of the name, and its own opens the segment
        ucookie = p.cookies["video.example.com"]["CDNISession"]
        dcookie = p.cookies["127.0.0.1:%d" % sp]["CDNISession"]
        seg = urllib.parse.urlsplit(what["segment 2"]["hops"][-1]["url"])
        both = {"Cookie": "CDNISession=%s; CDNISession=%s" % (ucookie, dcookie)}
        assert raw_request(sp, "GET", seg.path, both, host="127.0.0.1:%d" % sp)[0] == 200
        only_u = {"Cookie": "CDNISession=%s" % ucookie}
        assert raw_request(sp, "GET", seg.path, only_u, host="127.0.0.1:%d" % sp)[0] == 403
        # one playback session: the variant and the segments (by the tokens the variant's URIs
        # carry) have one session id in the delivery records
        time.sleep(0.2)
        first = [json.loads(l) for l in env.log("dcdn-se").splitlines() if '"msg":"delivery"' in l][:3]
        assert [r["auth"] for r in first] == ["token", "token", "token"], first
        assert "URISigningPackage=" in seg.query, seg
        assert first[0]["sid"] and len({r["sid"] for r in first}) == 1, first
        # a second viewer: everything from the cache, the origin asked once per object
        p2 = wait_for(played, timeout=5)
        assert [e["hops"][-1]["x-cache"] for e in p2.log[1:]] == ["HIT", "HIT", "HIT"], p2.log
        assert all(n == 1 for n in o.hits.values()), o.hits
        # delivery records keep no credential, not even a refused one's
        s, _, _ = raw_get(sp, "/video.example.com/vod/m1/720p/seg_2.ts?a=1&URISigningPackage=e30.e30.AAAA",
                          host="127.0.0.1:%d" % sp)
        assert s == 403, s
        time.sleep(0.2)
        recs = [l for l in env.log("dcdn-se").splitlines() if '"msg":"delivery"' in l]
        assert any('"uri":"/video.example.com/vod/m1/720p/seg_2.ts?a=1"' in l for l in recs), recs[-1]
        assert recs and not any("URISigningPackage" in l for l in recs), recs[:2]
        # a segment without token or cookie is refused at the surrogate
        s, h, b = raw_get(sp, "/video.example.com/vod/m1/720p/seg_1.ts", host="127.0.0.1:%d" % sp)
        assert s == 403 and h["content-type"] == "application/problem+json", (s, b)
    finally:
        o.stop()


def test_status_pages_and_v1_status_of_both_daemons_with_cors_for_players(env):
    ui = os.path.join(ROOT, "build/ui")
    origin = "http://127.0.0.1:%d" % env.ports["uop"]
    env.stop("ucdn")
    env.stop("dcdn")
    u, d = env.ucdn_config(), env.dcdn_config()
    u["ui_dir"] = d["ui_dir"] = ui
    u["listeners"]["delivery"]["cors_origins"] = [origin]
    fan_out(u, free_port())  # nobody answers there
    d["triggers"] = {"cdn_pid": DCDN_PID}
    env.start_daemon("ucdn", u)
    env.start_daemon("dcdn", d)
    # a second uCDN instance on the same Redis: its redirects count in the same minutes
    u2 = json.loads(json.dumps(u))
    for k in ("csp", "peer", "operator", "delivery"):
        u2["listeners"][k]["port"] = free_port()
    u2["listeners"]["delivery"]["cors_origins"] = [origin, "*"]
    env.start_daemon("ucdn2", u2, binary="ucdn")
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert wait_for(lambda: routed(env), timeout=10)
    assert wait_for(lambda: routed(env, u2["listeners"]["operator"]["port"]), timeout=10)
    uop, dop = "http://127.0.0.1:%d" % env.ports["uop"], "http://127.0.0.1:%d" % env.ports["dop"]
    # the page: public files, a redirect to the directory, a strict CSP; no path escapes the directory
    s, h, b = http("GET", uop + "/status/")
    assert s == 200 and h["Content-Type"].startswith("text/html") and b"status.js" in b, (s, h)
    assert "script-src" not in h["Content-Security-Policy"] and "default-src 'self'" in h["Content-Security-Policy"]
    assert http("GET", dop + "/status/status.js")[1]["Content-Type"].startswith("text/javascript")
    assert http("GET", uop + "/status/vendor/hls.min.js")[0] == 200
    st, hd, _ = raw_get(env.ports["uop"], "/status", host="127.0.0.1")
    assert st == 308 and hd["location"] == "/status/", (st, hd)
    for bad in ("/status/../ucdn.json", "/status/.hidden", "/status/%2e%2e/x", "/status/a//b", "/status/nope.js"):
        st, hd, b = raw_get(env.ports["uop"], bad, host="127.0.0.1")
        assert st == 404 and hd["content-type"] == "application/problem+json", (bad, st)
    # the data behind it needs the operator token
    assert http("GET", uop + "/v1/status")[0] == 401
    assert http("GET", uop + "/v1/status?minutes=0", token=OP_TOKEN)[0] == 400
    # redirects counted per dCDN per minute, across instances, through Redis
    for i in range(3):
        assert raw_get(env.ports["udel"], "/vod/m1/seg_%d.ts" % i)[0] == 302
    assert raw_get(u2["listeners"]["delivery"]["port"], "/vod/m1/seg_7.ts")[0] == 302
    # a purge no dCDN can take yet: open, retried, each failure counted against the peer
    s, h, b = env.csp("POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
    assert s == 201, b
    purge_id = h["Location"].rsplit("/", 1)[1]
    def ustatus():
        v = json.loads(http("GET", uop + "/v1/status?minutes=5", token=OP_TOKEN)[2])
        return v if v["peers"][0]["redirects"] == 4 and v["peers"][0]["errors"]["ci"] >= 1 else None
    v = wait_for(ustatus, timeout=6)
    assert v, http("GET", uop + "/v1/status?minutes=5", token=OP_TOKEN)[2]
    p = v["peers"][0]
    assert v["role"] == "ucdn" and p["id"] == "dcdn-it" and p["available"] and p["redirect_share"] == 1.0, v
    assert "ipv4cidr 127.0.0.0/8" in p["footprints"] and p["errors"]["ri"] == 0 and p["errors"]["li"] == 0, p
    assert v["minutes"]["minutes"] == 5 and sum(v["minutes"]["series"]["redirect:dcdn-it"]) == 4, v["minutes"]
    assert v["minutes"]["dropped"] == 0, v["minutes"]
    assert v["purges"]["open"] == 1 and v["traffic"]["rows"] == [], v
    q = v["purges"]["requests"][0]
    assert q["id"] == purge_id and q["csp"] == "acme" and q["status"] == "pending", q
    assert q["dcdns"][0]["dcdn"] == "dcdn-it" and q["dcdns"][0]["last_error"], q
    # a browser player on the status origin may read the answers, with credentials; others may not
    st, hd, _ = raw_get(env.ports["udel"], "/vod/m1/seg_9.ts", headers={"Origin": origin})
    assert st == 302 and hd["access-control-allow-origin"] == origin and hd["access-control-allow-credentials"] == "true"
    st, hd, _ = raw_get(env.ports["udel"], "/vod/m1/seg_9.ts", headers={"Origin": "http://evil.example"})
    assert st == 302 and "access-control-allow-origin" not in hd, hd
    # "*": any origin may read, never with credentials
    st, hd, _ = raw_get(u2["listeners"]["delivery"]["port"], "/vod/m1/seg_9.ts", headers={"Origin": "http://a.example"})
    assert st == 302 and hd["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in hd, hd
    st, hd, _ = raw_get(u2["listeners"]["delivery"]["port"], "/vod/m1/seg_9.ts", headers={"Origin": origin})
    assert hd["access-control-allow-origin"] == origin and hd["access-control-allow-credentials"] == "true", hd
    st, hd, _ = raw_request(env.ports["udel"], "OPTIONS", "/vod/m1/seg_9.ts",
                            {"Origin": origin, "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "range"})
    assert st == 204 and "GET" in hd["access-control-allow-methods"], (st, hd)
    # the dCDN: surrogates, triggers in flight (one waiting for a surrogate that executes
    # triggers), a surrogate instance's own cache
    o = ChunkOrigin({"/vod/m1/x.ts": b"x" * 5000}, headers={"Access-Control-Allow-Origin": "*"})
    surrogate_env(env, ["127.0.0.1:%d" % o.port], extra={"triggers": {"cdn_pid": DCDN_PID}})
    time.sleep(1.2)  # the surrogate has announced itself as a trigger executor
    later = int(time.time()) + 3600  # a preposition waiting for its time window
    s, _, b = trigger(env, {"trigger.v2": {"type": "preposition", "content.urls": [
        "http://video.example.com/vod/m1/p.ts"], "extensions": [{
            "generic-trigger-extension-type": "CIT.TimePolicy", "mandatory-to-enforce": True,
            "generic-trigger-extension-value": {"windows": {"start": later, "end": later + 60}}}]},
        "cdn-path": ["AS64496:1"]})
    assert s == 201, b
    v = json.loads(http("GET", dop + "/v1/status", token=OP_TOKEN)[2])
    assert v["role"] == "dcdn" and "se-x" in [x["id"] for x in v["surrogates"]] and v["cache"] is None, v
    assert v["triggers"]["open"] == 1 and v["triggers"]["triggers"][0]["type"] == "preposition", v["triggers"]
    assert v["triggers"]["triggers"][0]["status"] == "pending" and v["window"]["hit_ratio"] is None, v
    st, hd, _ = sget(env, "/vod/m1/x.ts", headers={"Origin": "http://player.example"})
    o.stop()
    # a surrogate listener without cors_origins passes the source's own CORS answer on
    assert st == 200 and hd["x-cache"] == "MISS" and hd["access-control-allow-origin"] == "*", (st, hd)
    def dstatus():
        v = json.loads(http("GET", "http://127.0.0.1:%d/v1/status" % env.ports["sop"], token=OP_TOKEN)[2])
        return v if v["window"]["deliveries"] == 1 else None
    v = wait_for(dstatus, timeout=6)
    assert v and v["cache"]["surrogate"] == "se-x" and v["cache"]["disk_bytes"] > 0, v
    assert v["window"]["from_cache"] == 0 and v["window"]["hit_ratio"] == 0.0, v["window"]
    assert [x for x in v["window"]["hit_ratio_per_minute"] if x is not None] == [0.0], v["window"]
    # the router knows every surrogate's cache from its heartbeats (se-a, a name only, tells none)
    se = lambda: {x["id"]: x for x in json.loads(http("GET", dop + "/v1/status", token=OP_TOKEN)[2])["surrogates"]}
    assert wait_for(lambda: "cache" in se()["se-x"], timeout=5), se()
    assert se()["se-x"]["cache"]["disk_bytes"] > 0 and "cache" not in se()["se-a"], se()
    # a bad ui_dir or origin is a config error naming the field
    bad = env.ucdn_config()
    bad["listeners"]["delivery"]["cors_origins"] = ["http://a.example/path"]
    path = os.path.join(env.dir, "bad.json")
    json.dump(bad, open(path, "w"))
    r = subprocess.run([os.path.join(BIN, "ucdn"), "-t", "-c", path], capture_output=True, text=True)
    assert r.returncode != 0 and "$.listeners.delivery.cors_origins[0]" in r.stderr, r.stderr


def test_browser_plays_signed_hls_from_the_ucdn_and_the_status_pages_show_it(env):
    """hls.js in Chromium plays the CSP-signed master from the uCDN: the
    renditions come from the dCDN surrogate (session cookie), the session's
    chunks are in the dCDN's CDNI logs with one CCID and one session id, a
    purge of the CCID makes the next play a cache miss, and both status
    pages render the peer and the counters."""
    why = browser_missing()
    if why:
        raise Skip(why)
    files = sample_title_files()
    # the CSP's origin has a CORS policy of its own: the surrogate's answers carry one, the dCDN's
    o = ChunkOrigin(files, headers={"Access-Control-Allow-Origin": "*"})
    ui = os.path.join(ROOT, "build/ui")
    page_origin = "http://127.0.0.1:%d" % env.ports["uop"]
    sp, sop, speer = free_port(), free_port(), free_port()

    def tweak(u, d):
        u["ui_dir"] = ui
        u["listeners"]["delivery"]["cors_origins"] = [page_origin]
        fan_out(u, env.ports["dpeer"])
        u["peers"][0]["li_feed_url"] = "http://127.0.0.1:%d/li/v1/feed" % speer  # logs collected and billed
        u["collector"] = {"poll_s": 1, "archive_dir": os.path.join(env.dir, "archive")}
    try:
        keys = signing_env(env, tweak)
        rec = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])
        doc = dict(rec["service"], host=rec["host"])
        doc["metadata"][0]["generic-metadata-value"]["sources"] = [
            {"endpoints": ["127.0.0.1:%d" % o.port], "protocol": "http/1.1"}]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] in (200, 201)
        master = open(os.path.join(ROOT, "examples/master.m3u8")).read()
        assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                          "manifest": master})[0] == 201
        # the dCDN: a router (triggers, status page) and surrogate se-x (cache, CDNI logs, CORS)
        signed_dcdn(env, keys, sp, sop, router_extra={"triggers": {"cdn_pid": DCDN_PID}, "ui_dir": ui},
                    se_peer=speer, cors=[page_origin])
        q = urllib.parse.quote("http://video.example.com/vod/m1/720p/seg_001.ts", safe="")
        assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (sop, q),
                                     token=OP_TOKEN)[0] == 200, timeout=5)
        time.sleep(1.2)  # the surrogate has announced itself as a trigger executor
        csp = sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=int(time.time()) + 600, cdniuc=M1)
        src = "http://video.example.com/vod/m1/master.m3u8?URISigningPackage=" + csp
        player = "%s/status/player.html?src=%s" % (page_origin, urllib.parse.quote(src, safe=""))
        resolve = "MAP video.example.com:80 127.0.0.1:%d" % env.ports["udel"]

        def play():
            r = drive("play", page=player, resolve=resolve, seconds=3, timeout_s=40)
            assert r["position"] >= 3 and not [e for e in r["errors"] if e["fatal"]], r
            segs = [x for x in r["requests"] if x["kind"].endswith("segment")]
            assert segs and all(x["answered"].startswith("http://127.0.0.1:%d/video.example.com/vod/m1/" % sp)
                                and x["bytes"] > 0 for x in segs), r["requests"]
            return r, segs
        r, segs = play()
        assert r["requests"][0]["kind"] == "master" and r["requests"][0]["answered"].startswith(
            "http://video.example.com/vod/m1/master.m3u8"), r["requests"][0]
        assert {x["cache"] for x in segs} == {"MISS"}, segs
        import http.client as hc
        pl = urllib.parse.urlsplit([x for x in r["requests"] if x["kind"] == "playlist"][0]["answered"])
        c = hc.HTTPConnection("127.0.0.1", sp, timeout=10)
        c.request("GET", pl.path + "?" + pl.query, headers={"Origin": page_origin})
        resp = c.getresponse()
        resp.read()
        acao = [v for k, v in resp.getheaders() if k.lower() == "access-control-allow-origin"]
        assert resp.status == 200 and acao == [page_origin], (resp.status, resp.getheaders())
        c.close()
        # the session in the dCDN's CDNI logs: every chunk with collection m1 and one session id
        def chunk_records():
            recs = [x for x in log_records(env, speer)[1] if x["u-uri"].endswith(".ts")]
            return recs if len(recs) >= len(segs) else None
        recs = wait_for(chunk_records, timeout=10)
        assert recs, log_records(env, speer)[1]
        assert {x["s-ccid"] for x in recs} == {"m1"}, recs
        assert len({x["s-sid"] for x in recs}) == 1 and recs[0]["s-sid"], [x["s-sid"] for x in recs]
        assert {x["s-uri-signing"] for x in recs} != {"000"}, recs[0]  # authorized by the session cookie
        # a purge of the collection through the CSP API: the next play misses again
        s, h, b = env.csp("POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
        assert s == 201, b
        assert wait_for(lambda: json.loads(env.csp("GET", h["Location"])[2])["status"] == "complete", timeout=15)
        r2, segs2 = play()
        assert segs2[0]["cache"] == "MISS", segs2
        # the status pages, as an operator sees them, once the uCDN has collected the logs
        ustatus = lambda: json.loads(http("GET", page_origin + "/v1/status", token=OP_TOKEN)[2])
        assert wait_for(lambda: [x for x in ustatus()["traffic"]["rows"] if x["ccid"] == "m1" and x["bytes"] > 0],
                        timeout=10), ustatus()
        shots = os.environ.get("SCREENSHOT_DIR", env.dir)
        u = drive("status", page=page_origin + "/status/", token=OP_TOKEN, wait_for='tr[data-peer="dcdn-it"]',
                  read=['tr[data-peer="dcdn-it"]', "#redirects-total", "#chart-ccid"],
                  screenshot=os.path.join(shots, "status-ucdn.png"))
        row = u["text"]['tr[data-peer="dcdn-it"]']
        assert "available" in row and "ipv4cidr 127.0.0.0/8" in row and "100 %" in row, row
        assert re.match(r"[1-9]\d* in the last 15 min", u["text"]["#redirects-total"]), u["text"]
        assert "m1" in u["text"]["#chart-ccid"] and "MB" in u["text"]["#chart-ccid"], u["text"]
        assert ["dcdn-it"] == [x[0] for x in u["rows"] if len(x) == 6], u["rows"]  # the log collector's row
        assert os.path.getsize(u["screenshot"]) > 10000
        dop = "http://127.0.0.1:%d" % env.ports["dop"]
        d = drive("status", page=dop + "/status/", token=OP_TOKEN, wait_for='tr[data-surrogate="se-x"]',
                  read=['tr[data-surrogate="se-x"]', "#hit-ratio", "#deliveries"],
                  screenshot=os.path.join(shots, "status-dcdn.png"))
        row = d["text"]['tr[data-surrogate="se-x"]']
        assert "alive" in row and "not told" not in row and "MB)" in row, row  # its objects and bytes
        assert int(d["text"]["#deliveries"]) >= 2 * len(segs) and d["text"]["#hit-ratio"].endswith("%"), d["text"]
        assert not [c for c in u["console"] + d["console"] if "error" in c], u["console"] + d["console"]
    finally:
        o.stop()
