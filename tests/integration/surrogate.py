"""Integration tests: the surrogate: cache hits, misses and collapsing, ranges
and revalidation, failover, ACLs, eviction, restart, purges. run.py runs them
with the rest."""
import json
import os
import time
import urllib.parse

from harness import (ChunkOrigin, OP_TOKEN, free_port, http, raw_get, sget, surrogate_env, wait_for)


def test_surrogate_miss_then_hit_collapsing_and_records(env):
    import threading
    body = os.urandom(300000)
    o = ChunkOrigin({"/vod/m1/seg_1.ts": body, "/vod/m1/seg_2.ts": b"x" * 100}, delay=0.5)
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port])
        # eight players ask at once: one acquisition, eight whole bodies
        out = []
        ts = [threading.Thread(target=lambda: out.append(sget(env, "/vod/m1/seg_1.ts"))) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(out) == 8 and all(r[0] == 200 and r[2] == body for r in out), [r[0] for r in out]
        assert o.hits["/vod/m1/seg_1.ts"] == 1, o.hits
        assert sorted(r[1]["x-cache"] for r in out) == ["MISS"] * 8
        s, h, b = sget(env, "/vod/m1/seg_1.ts?URISigningPackage=ignored")
        assert s == 200 and b == body and h["x-cache"] == "HIT" and "age" in h, h
        assert o.hits["/vod/m1/seg_1.ts"] == 1
        # a small object comes from memory, a HEAD carries no body
        o.delay = 0
        assert sget(env, "/vod/m1/seg_2.ts")[1]["x-cache"] == "MISS"
        # stored once the acquisition ends (a player may see its last bytes a moment before)
        assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"],
                                                token=OP_TOKEN)[2])["objects"] == 2)
        s, h, b = sget(env, "/vod/m1/seg_2.ts")
        assert s == 200 and b == b"x" * 100 and h["x-cache"] == "HIT", h
        # conditional request from the player
        s, h, _ = sget(env, "/vod/m1/seg_2.ts", headers={"If-None-Match": h["etag"]})
        assert s == 304, s
        # unknown host: problem, not a fetch
        s, h, b = raw_get(env.ports["surr"], "/vod/m1/seg_1.ts", host="other.example")
        assert s == 404 and h["content-type"] == "application/problem+json"
        # the delivery records carry what the CDNI log needs
        assert wait_for(lambda: '"cache":"HIT"' in env.log("dcdn-se"))
        rec = [json.loads(l) for l in env.log("dcdn-se").splitlines() if '"msg":"delivery"' in l]
        hit = [r for r in rec if r["cache"] == "HIT" and r["uri"].startswith("/vod/m1/seg_1.ts")][0]
        assert hit["ccid"] == "col-1" and hit["status"] == "200" and hit["bytes"] == str(len(body)), hit
        st = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"], token=OP_TOKEN)[2])
        assert st["objects"] == 2 and st["memory_objects"] >= 1, st
    finally:
        o.stop()


def test_surrogate_ranges_revalidation_and_negative_caching(env):
    body = bytes(range(256)) * 400
    # max-age=3: the fresh-object checks below must all come before it runs
    # out, even on a slow sanitizer build (with 1 s they sometimes did not)
    o = ChunkOrigin({"/vod/m1/r.ts": body}, cache_control="max-age=3")
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port])
        # a miss for a range from 0 fills the whole object and answers the range
        s, h, b = sget(env, "/vod/m1/r.ts", headers={"Range": "bytes=0-99"})
        assert s == 206 and b == body[:100] and h["content-range"] == "bytes 0-99/%d" % len(body), (s, h)
        s, h, b = sget(env, "/vod/m1/r.ts", headers={"Range": "bytes=1000-1999"})  # from the fill or the cache
        assert s == 206 and b == body[1000:2000] and h["x-cache"] in ("HIT", "MISS"), (s, h, len(b))
        assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"],
                                                token=OP_TOKEN)[2])["objects"] == 1)
        s, h, b = sget(env, "/vod/m1/r.ts", headers={"Range": "bytes=1000-1999"})
        assert s == 206 and b == body[1000:2000] and h["x-cache"] == "HIT", (s, h)
        s, h, b = sget(env, "/vod/m1/r.ts", headers={"Range": "bytes=-10"})
        assert s == 206 and b == body[-10:]
        s, h, _ = sget(env, "/vod/m1/r.ts", headers={"Range": "bytes=999999-"})
        assert s == 416 and h["content-range"] == "bytes */%d" % len(body)
        assert o.hits["/vod/m1/r.ts"] == 1
        # stale after max-age=3: revalidated with If-None-Match, a 304 keeps the body
        time.sleep(3.2)
        s, h, b = sget(env, "/vod/m1/r.ts")
        assert s == 200 and b == body and h["x-cache"] == "REVALIDATED", h
        assert o.conditional == 1
        # a miss for a range not at 0 is passed through and not stored
        o.files["/vod/m1/p.ts"] = body
        s, h, b = sget(env, "/vod/m1/p.ts", headers={"Range": "bytes=10-19"})
        assert s == 200 and b == body and h["x-cache"] == "BYPASS", h  # this origin ignores ranges
        assert sget(env, "/vod/m1/p.ts")[1]["x-cache"] == "MISS"
        # errors are cached for the lifetime they state
        s, h, b = sget(env, "/vod/m1/missing.ts")
        assert s == 404 and b == b"not here"
        s, h, b = sget(env, "/vod/m1/missing.ts")
        assert s == 404 and h["x-cache"] == "HIT", h  # max-age=5 on the 404
        assert o.hits["/vod/m1/missing.ts"] == 1
    finally:
        o.stop()


def test_an_object_purged_while_its_revalidation_is_in_flight_is_acquired_afresh(env):
    """The source's 304 comes back after a purge took the object: the
    request is answered with the object acquired again, not a 503."""
    import threading
    body = b"r" * 5000
    o = ChunkOrigin({"/vod/m1/r.ts": body}, cache_control="max-age=1")
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port])
        assert sget(env, "/vod/m1/r.ts")[1]["x-cache"] == "MISS"
        time.sleep(1.3)  # stale now: the next request revalidates
        o.delay_304 = 1.0
        got = {}
        t = threading.Thread(target=lambda: got.update(r=sget(env, "/vod/m1/r.ts")))
        t.start()
        assert wait_for(lambda: o.conditional == 1, timeout=5)
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/purge" % env.ports["sop"],
                       json.dumps({"ccids": ["col-1"]}).encode(), token=OP_TOKEN)
        assert s == 200 and json.loads(b)["removed"] == 1, (s, b)
        t.join(10)
        s, h, b = got["r"]
        assert s == 200 and b == body and h["x-cache"] == "MISS", (s, dict(h), b[:200])
        assert o.hits["/vod/m1/r.ts"] == 3  # the fill, the revalidation, the fill again
    finally:
        o.stop()


def test_surrogate_source_failover_stale_if_error_and_gateway_errors(env):
    body = b"chunk" * 1000
    dead = free_port()  # nobody listens there
    o = ChunkOrigin({"/vod/m1/f.ts": body}, cache_control="max-age=1")
    try:
        surrogate_env(env, ["127.0.0.1:%d" % dead, "127.0.0.1:%d" % o.port])
        s, h, b = sget(env, "/vod/m1/f.ts")
        assert s == 200 and b == body, s
        m = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["sop"], token=OP_TOKEN)[2].decode()
        assert "cdni_cache_source_failovers_total 1" in m, m
        # the origin fails: the stale copy is served within the grace
        o.fail = True
        time.sleep(2.1)
        s, h, b = sget(env, "/vod/m1/f.ts")
        assert s == 200 and b == body and h["x-cache"] == "STALE", h
        # nothing cached and every source failing: a problem, 502
        s, h, b = sget(env, "/vod/m1/never.ts")
        assert s == 502 and h["content-type"] == "application/problem+json", (s, b)
        assert "answered 500" in json.loads(b)["reason"]
    finally:
        o.stop()


def test_surrogate_acls_and_unknown_mandatory_metadata_refuse(env):
    o = ChunkOrigin({"/vod/m1/a.ts": b"a", "/geo/a.ts": b"a", "/late/a.ts": b"a", "/tls/a.ts": b"a"})
    try:
        acl = lambda t, v, m=False: {"generic-metadata-type": t, "generic-metadata-value": v,
                                     "mandatory-to-enforce": m}
        paths = [
            {"path-pattern": {"pattern": "/geo/*"}, "path-metadata": {"metadata": [acl("MI.LocationACL", {
                "locations": [{"action": "deny", "footprints": [
                    {"footprint-type": "ipv4cidr", "footprint-value": ["127.0.0.0/8"]}]}]})]}},
            {"path-pattern": {"pattern": "/late/*"}, "path-metadata": {"metadata": [acl("MI.TimeWindowACL", {
                "times": [{"action": "allow", "windows": [{"start": 0, "end": 1000}]}]})]}},
            {"path-pattern": {"pattern": "/tls/*"}, "path-metadata": {"metadata": [acl("MI.ProtocolACL", {
                "protocol-acl": [{"action": "allow", "protocols": ["https/1.1"]}]})]}},
        ]
        paths += [
            {"path-pattern": {"pattern": "/marked/*"}, "path-metadata": {"metadata": [
                {"generic-metadata-type": "EXAMPLE.Watermark", "generic-metadata-value": {"id": 1},
                 "mandatory-to-enforce": True}]}},
            {"path-pattern": {"pattern": "/country/*"}, "path-metadata": {"metadata": [acl("MI.LocationACL", {
                "locations": [{"action": "allow", "footprints": [
                    {"footprint-type": "countrycode", "footprint-value": ["us"]}]}]}, True)]}},
        ]
        # a uCDN that understands a type this dCDN does not
        env.stop("ucdn")
        cfg = env.ucdn_config()
        cfg["metadata"]["extra_types"] = ["EXAMPLE.Watermark"]
        env.start_daemon("ucdn", cfg)
        o.files.update({"/marked/a.ts": b"a", "/country/a.ts": b"a"})
        surrogate_env(env, ["127.0.0.1:%d" % o.port], paths=paths)
        assert sget(env, "/vod/m1/a.ts")[0] == 200
        for t, word in (("/geo/a.ts", "location"), ("/late/a.ts", "time"), ("/tls/a.ts", "protocol"),
                        ("/marked/a.ts", "mandatory-to-enforce"), ("/country/a.ts", "cannot be enforced")):
            s, h, b = sget(env, t)
            assert s == 403 and word in json.loads(b)["detail"], (t, s, b)
            assert o.hits.get(t, 0) == 0
    finally:
        o.stop()


def test_surrogate_eviction_purge_by_collection_and_preposition(env):
    files = {"/vod/m1/e%d.ts" % i: os.urandom(200000) for i in range(12)}
    o = ChunkOrigin(files)
    try:
        # 1 MiB of disk: twelve 200 kB objects cannot all stay
        _, op = surrogate_env(env, ["127.0.0.1:%d" % o.port],
                              cache={"disk_bytes": 1 << 20, "high_water": 0.9, "low_water": 0.6})
        for p, b in files.items():
            s, _, got = sget(env, p)
            assert s == 200 and got == b
        st = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % op, token=OP_TOKEN)[2])
        assert st["bytes"] <= 0.9 * (1 << 20) and 1 <= st["objects"] < 12, st
        # a frequently asked object outlives the others (GDSF frequency)
        for _ in range(5):
            sget(env, "/vod/m1/e11.ts")
        for p in list(files)[:6]:
            sget(env, p)
        assert sget(env, "/vod/m1/e11.ts")[1]["x-cache"] == "HIT"
        # every stored object is indexed in Redis under its collection; a purge finds them all
        members = env.redis_cli("redis_d", "SMEMBERS", "cdni:dcdn-it:cache:se-x:ccid:col-1").split()
        assert members and all(m.startswith("video.example.com/vod/m1/") for m in members), members
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/purge" % op, json.dumps({"ccids": ["col-1"]}),
                       token=OP_TOKEN)
        assert s == 200 and json.loads(b)["removed"] >= 1, b
        st = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % op, token=OP_TOKEN)[2])
        assert st["objects"] == 0, st
        assert sget(env, "/vod/m1/e11.ts")[1]["x-cache"] == "MISS"
        # preposition: fetched ahead of demand under a bandwidth cap
        urls = ["http://video.example.com/vod/m1/e%d.ts" % i for i in (1, 2)]
        t0 = time.time()
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/preposition" % op,
                       json.dumps({"urls": urls + ["http://unknown.example/x.ts"], "max_bytes_per_s": 400000}),
                       token=OP_TOKEN)
        assert s == 202, b

        def job_done():
            j = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache/preposition" % op, token=OP_TOKEN)[2])["jobs"][0]
            return j if j["state"] == "done" else None
        j = wait_for(job_done, timeout=10)
        assert j and j["fetched"] == 2 and j["failed"] == 1, j
        assert time.time() - t0 >= 0.9  # 400 kB at 400 kB/s
        assert sget(env, "/vod/m1/e1.ts")[1]["x-cache"] == "HIT"
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/preposition" % op, json.dumps({"urls": "x"}),
                       token=OP_TOKEN)
        assert s == 400 and json.loads(b)["errors"][0]["path"] == "$.urls"
    finally:
        o.stop()


def test_surrogate_restart_keeps_its_disk_cache(env):
    o = ChunkOrigin({"/vod/m1/k.ts": b"keep" * 50000, "/vod/m1/small.ts": b"s" * 1000})
    try:
        _, op = surrogate_env(env, ["127.0.0.1:%d" % o.port])
        assert sget(env, "/vod/m1/k.ts")[1]["x-cache"] == "MISS"
        assert sget(env, "/vod/m1/small.ts")[1]["x-cache"] == "MISS"
        assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % op,
                                                token=OP_TOKEN)[2])["objects"] == 2)
        cfg = json.load(open(os.path.join(env.dir, "dcdn-se.json")))
        assert env.stop("dcdn-se") == 0
        env.start_daemon("dcdn-se", cfg, binary="dcdn")
        q = urllib.parse.quote("http://video.example.com/vod/m1/x.ts", safe="")
        assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (op, q),
                                     token=OP_TOKEN)[0] == 200, timeout=5)
        s, h, b = sget(env, "/vod/m1/k.ts")
        assert s == 200 and b == b"keep" * 50000 and h["x-cache"] == "HIT", h
        assert o.hits["/vod/m1/k.ts"] == 1
        # back from disk: a 200 kB body is mapped once and served from the mapping
        st = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % op, token=OP_TOKEN)[2])
        assert st["mapped_objects"] == 1 and st["memory_objects"] == 0, st
        s, h, b = sget(env, "/vod/m1/k.ts", headers={"Range": "bytes=199990-"})
        assert s == 206 and b == (b"keep" * 50000)[199990:], (s, len(b))
        # a small one is sent from its file (sendfile)
        s, h, b = sget(env, "/vod/m1/small.ts")
        assert s == 200 and b == b"s" * 1000 and h["x-cache"] == "HIT", h
        assert o.hits["/vod/m1/small.ts"] == 1
    finally:
        o.stop()


def test_surrogate_head_source_auth_redirects_gateway_timeout_and_redis_down(env):
    import http.client as hclient
    other = ChunkOrigin({"/x.ts": b"elsewhere"})
    o = ChunkOrigin({"/vod/m1/h.ts": b"h" * 5000, "/vod/m1/r.ts": b"r"})
    o.require = ("X-Origin-Key", "s3cret")
    o.redirects["/vod/m1/r.ts"] = "http://127.0.0.1:%d/x.ts" % other.port
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port], auth=("X-Origin-Key", "s3cret"))
        # the source's authentication goes with every acquisition
        c = hclient.HTTPConnection("127.0.0.1", env.ports["surr"], timeout=10)
        for expect in ("MISS", "HIT"):
            c.request("HEAD", "/vod/m1/h.ts", headers={"Host": "video.example.com"})
            r = c.getresponse()
            assert r.status == 200 and r.read() == b"" and r.getheader("X-Cache") == expect, (r.status, expect)
            assert r.getheader("Content-Length") == "5000"
            if expect == "MISS":
                assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"],
                                                        token=OP_TOKEN)[2])["objects"] == 1)
        c.close()
        assert sget(env, "/vod/m1/h.ts")[2] == b"h" * 5000
        # a source's redirect is passed on, never followed: nothing is fetched from elsewhere
        s, h, _ = sget(env, "/vod/m1/r.ts")
        assert s == 302 and h["location"].endswith("/x.ts"), (s, h)
        assert other.hits == {}
        # Redis (the cache index) away: served, not stored; purges say why they cannot run
        o.files["/vod/m1/n.ts"] = b"n" * 100
        env.stop("redis_d")
        for _ in range(2):
            s, h, b = sget(env, "/vod/m1/n.ts")
            assert s == 200 and b == b"n" * 100, s
        assert o.hits["/vod/m1/n.ts"] == 2
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/purge" % env.ports["sop"],
                       json.dumps({"ccids": ["col-1"]}), token=OP_TOKEN)
        assert s == 503 and b"unreachable" in b, (s, b)
    finally:
        o.stop()
        other.stop()


def test_surrogate_sources_that_never_answer_give_504(env):
    surrogate_env(env, ["127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()])
    s, h, b = sget(env, "/vod/m1/gone.ts")
    assert s == 504 and h["content-type"] == "application/problem+json", (s, b)
    m = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["sop"], token=OP_TOKEN)[2].decode()
    assert 'cdni_cache_acquisitions_total{result="failed"} 1' in m and "cdni_cache_source_failovers_total 1" in m
    # a preposition job past its window is skipped whole
    s, _, b = http("POST", "http://127.0.0.1:%d/v1/cache/preposition" % env.ports["sop"],
                   json.dumps({"urls": ["http://video.example.com/vod/m1/a.ts"], "not_after": 1000}),
                   token=OP_TOKEN)
    assert s == 202, b

    def expired():
        j = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache/preposition" % env.ports["sop"],
                            token=OP_TOKEN)[2])["jobs"][0]
        return j if j["state"] == "expired" else None
    j = wait_for(expired, timeout=5)
    assert j and j["skipped"] == 1 and j["fetched"] == 0, j
