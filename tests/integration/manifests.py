"""Integration tests: manifests the uCDN serves rewritten (RFC 6983 option 3.2)
and the dCDN router rewrites again (3.3), signed, stale, DASH. run.py runs
them with the rest."""
import json
import os
import time

from harness import (M1, MASTER, Origin, ROOT, SURROGATE_A, explain, free_port, put_collection, raw_get, routed,
                     service, sign, signing_env, token_in, verify, wait_for)


def test_collection_manifest_is_served_pointing_at_the_dcdn(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    # bad publications: named path, another CSP's service, not a manifest
    s, _, b = put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                         "manifest": "<html>"})
    assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.manifest", b
    s, _, b = put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                         "manifest": MASTER}, token="csp-other-integration-token")
    assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.service", b
    s, _, b = put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                         "manifest": MASTER})
    assert s == 201, b
    assert json.loads(b)["manifest_bytes"] == len(MASTER)
    s, _, b = put_collection(env, "m1-again", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "x",
                                               "manifest": MASTER})
    assert s == 409, b  # one collection per host and path
    # the player's request: 200, every URI of ours on the dCDN's surrogate (RI), third parties kept
    s, h, body = raw_get(env.ports["udel"], "/vod/m1/master.m3u8")
    assert s == 200 and h["content-type"] == "application/vnd.apple.mpegurl", (s, h, body)
    text = body.decode()
    assert 'URI="%s/video.example.com/vod/m1/audio/en.m3u8"' % SURROGATE_A in text, text
    assert "\n%s/video.example.com/vod/m1/720p/index.m3u8\n" % SURROGATE_A in text, text
    assert "\n%s/video.example.com/vod/m1/1080p/index.m3u8\n" % SURROGATE_A in text, text
    assert 'URI="https://ads.thirdparty.example/t.json"' in text
    assert "#EXT-X-STREAM-INF:BANDWIDTH=2500000\n" in text
    # revalidation
    s, h2, _ = raw_get(env.ports["udel"], "/vod/m1/master.m3u8", headers={"If-None-Match": h["etag"]})
    assert s == 304, s
    # other paths are redirected as before
    assert raw_get(env.ports["udel"], "/vod/m1/720p/seg_1.ts")[0] == 302
    # from an origin: fetched once, cached; live with the origin gone is 504
    origin = Origin(MASTER)
    try:
        url = "http://127.0.0.1:%d/m2/master.m3u8" % origin.port
        assert put_collection(env, "m2", {"service": "vod1", "path": "/vod/m1/m2.m3u8", "ccid": "m2",
                                          "origin_url": url})[0] == 201
        assert put_collection(env, "live", {"service": "vod1", "path": "/vod/m1/live.m3u8", "ccid": "lv",
                                            "origin_url": url, "live": True})[0] == 201
        for _ in range(3):
            s, _, b = raw_get(env.ports["udel"], "/vod/m1/m2.m3u8")
            assert s == 200 and SURROGATE_A in b.decode(), b
        assert raw_get(env.ports["udel"], "/vod/m1/live.m3u8")[0] == 200
        assert origin.hits == 2, origin.hits  # one VoD fetch, one live fetch
    finally:
        origin.stop()
    time.sleep(1.1)  # the live copy is fresh for half its target duration (default 2 s)
    s, _, b = raw_get(env.ports["udel"], "/vod/m1/live.m3u8")
    assert s == 504 and b"live manifest" in b, (s, b)
    assert raw_get(env.ports["udel"], "/vod/m1/m2.m3u8")[0] == 200  # VoD: cached
    # listing and withdrawal
    s, _, b = env.csp("GET", "/csp/v1/collections")
    assert s == 200 and sorted(c["id"] for c in json.loads(b)["collections"]) == ["live", "m1", "m2"]
    assert env.csp("DELETE", "/csp/v1/collections/m1")[0] == 204
    assert raw_get(env.ports["udel"], "/vod/m1/master.m3u8")[0] == 302


def test_signed_manifest_carries_one_token_for_the_dcdn(env):
    keys = signing_env(env)
    assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                      "manifest": MASTER})[0] == 201
    assert raw_get(env.ports["udel"], "/vod/m1/master.m3u8")[0] == 403
    now = int(time.time())
    tok = sign(keys["csp"][0], iss="acme-issuer", exp=now + 600, cdniuc=M1)
    s, h, body = raw_get(env.ports["udel"], "/vod/m1/master.m3u8?URISigningPackage=" + tok)
    assert s == 200, (s, body)
    lines = [l for l in body.decode().splitlines() if l.startswith(SURROGATE_A)]
    assert len(lines) == 2, body
    toks = {token_in(l) for l in lines}
    assert len(toks) == 1 and None not in toks, lines  # one token, on every URI of ours
    c = verify(keys["ucdn"][1], lines[0], "dcdn-it")
    assert c["iss"] == "ucdn-it" and c["exp"] == now + 600, c
    assert c["cdniuc"] == "regex:http://se-a\\.dcdn\\.test:8080/video\\.example\\.com/vod/m1/[^?#]*([?].*)?", c
    assert "https://ads.thirdparty.example/t.json" in body.decode()
    assert h["set-cookie"].startswith("CDNISession="), h  # a top-level manifest starts the session


def test_two_step_manifest_rewrite_ucdn_then_dcdn(env):
    media = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg_1.ts\n#EXTINF:6,\nseg_2.ts\n#EXT-X-ENDLIST\n"
    origin = Origin(MASTER)
    media_origin = Origin(media)
    try:
        # the dCDN fetches manifests from the content's source; serve the media playlist there
        env.stop("ucdn")
        cfg = env.ucdn_config()
        cfg["peers"][0]["delivery_url"] = "http://127.0.0.1:%d" % env.ports["ddel"]
        env.start_daemon("ucdn", cfg)
        doc = json.loads(service())
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = [
            "127.0.0.1:%d" % media_origin.port]
        doc["paths"][0]["path-metadata"]["metadata"].append(
            {"generic-metadata-type": "CDNIGW.HASManifest",
             "generic-metadata-value": {"format": "hls", "rewrite": "two-step"}})
        s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))
        assert s == 201, b
        assert routed(env), explain(env, "127.0.0.1")
        assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                          "origin_url": "http://127.0.0.1:%d/vod/m1/master.m3u8" % origin.port})[0] == 201
        # step one, the uCDN: every URI of ours leads to the dCDN's request router
        router = "http://127.0.0.1:%d" % env.ports["ddel"]
        s, h, b = raw_get(env.ports["udel"], "/vod/m1/master.m3u8")
        assert s == 200, (s, b)
        assert "\n%s/video.example.com/vod/m1/720p/index.m3u8\n" % router in b.decode(), b
        # step two, the dCDN router: the media playlist from the source, pointed at its surrogate
        wait_for(lambda: env.resolve("http://video.example.com/vod/m1/720p/index.m3u8")[0] == 200)
        s, h, b = raw_get(env.ports["ddel"], "/vod/m1/720p/index.m3u8")
        assert s == 200 and h["content-type"] == "application/vnd.apple.mpegurl", (s, b)
        assert b.decode() == media.replace("seg_", SURROGATE_A + "/video.example.com/vod/m1/720p/seg_"), b
        assert h["x-surrogate"] == "se-a"
        assert media_origin.hits == 1
        # chunks are still redirected
        s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/720p/seg_1.ts")
        assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com/vod/m1/720p/seg_1.ts", h
        # as the player really asks: the router's own host, the content's in the path
        s, h, b2 = raw_get(env.ports["ddel"], "/video.example.com/vod/m1/720p/index.m3u8",
                           host="127.0.0.1:%d" % env.ports["ddel"])
        assert s == 200 and b2 == b, (s, b2)
        s, h, _ = raw_get(env.ports["ddel"], "/video.example.com/vod/m1/720p/seg_1.ts",
                          host="127.0.0.1:%d" % env.ports["ddel"])
        assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com/vod/m1/720p/seg_1.ts", h
        s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/720p/seg_1.ts", host="127.0.0.1:%d" % env.ports["ddel"])
        assert s == 302, s  # an unknown host is still routed (the surrogate decides)
    finally:
        origin.stop()
        media_origin.stop()
    # the source gone: 504, never a stale or cut playlist
    s, _, _ = raw_get(env.ports["ddel"], "/vod/m1/720p/index.m3u8")
    assert s == 504, s


def test_vod_manifest_served_stale_within_grace_and_dash_collections(env):
    env.stop("ucdn")
    cfg = env.ucdn_config()
    cfg["manifests"] = {"vod_revalidate_s": 1, "stale_grace_s": 60}
    env.start_daemon("ucdn", cfg)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    mpd = open(os.path.join(ROOT, "tests", "data", "dash", "relative.mpd")).read()
    origin = Origin(MASTER)
    dash = Origin(mpd, "application/dash+xml")
    try:
        assert put_collection(env, "m2", {"service": "vod1", "path": "/vod/m1/m2.m3u8", "ccid": "m2",
                                          "origin_url": "http://127.0.0.1:%d/m.m3u8" % origin.port})[0] == 201
        assert put_collection(env, "d1", {"service": "vod1", "path": "/vod/m1/manifest.mpd", "ccid": "d1",
                                          "origin_url": "http://127.0.0.1:%d/manifest.mpd" % dash.port})[0] == 201
        s, h, b = raw_get(env.ports["udel"], "/vod/m1/m2.m3u8")
        assert s == 200 and "warning" not in h, h
        s, h, b = raw_get(env.ports["udel"], "/vod/m1/manifest.mpd")
        assert s == 200 and h["content-type"] == "application/dash+xml", (s, h, b)
        assert "<BaseURL>%s/video.example.com/vod/m1/</BaseURL>" % SURROGATE_A in b.decode(), b
    finally:
        origin.stop()
        dash.stop()
    time.sleep(1.2)  # past the revalidation, within the grace: the last copy, marked stale
    s, h, b = raw_get(env.ports["udel"], "/vod/m1/m2.m3u8")
    assert s == 200 and h.get("warning", "").startswith("110"), (s, h)
    assert SURROGATE_A in b.decode()
    assert "origin unavailable; serving the last VoD copy" in env.log("ucdn")


def test_a_dash_collection_from_an_origin_on_the_surrogates_host_gets_one_base_url(env):
    """The origin (origin_url) and the dCDN's surrogate on one host, other
    ports, as make run has them: the inserted BaseURL names the surrogate
    once, never rewritten again as if it were the origin."""
    env.stop("dcdn")
    d = env.dcdn_config()
    sp = free_port()
    d["surrogate"]["url"] = "http://127.0.0.1:%d" % sp
    env.start_daemon("dcdn", d)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert wait_for(lambda: routed(env), timeout=10)
    mpd = open(os.path.join(ROOT, "tests", "data", "dash", "relative.mpd")).read()
    dash = Origin(mpd, "application/dash+xml")
    try:
        assert put_collection(env, "d1", {"service": "vod1", "path": "/vod/m1/manifest.mpd", "ccid": "d1",
                                          "origin_url": "http://127.0.0.1:%d/vod/m1/manifest.mpd" % dash.port})[0] == 201
        want = "<BaseURL>http://127.0.0.1:%d/video.example.com/vod/m1/</BaseURL>" % sp

        def served():
            s, h, b = raw_get(env.ports["udel"], "/vod/m1/manifest.mpd")
            return b.decode() if s == 200 and want in b.decode() else None
        text = wait_for(served, timeout=10)
        assert text, raw_get(env.ports["udel"], "/vod/m1/manifest.mpd")
        assert text.count("<BaseURL>") == 1 and "video.example.com/video.example.com" not in text, text
    finally:
        dash.stop()
