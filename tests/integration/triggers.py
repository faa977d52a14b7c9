"""Integration tests: CI/T (RFC 8007): triggers between the daemons, their
statuses, a surrogate that dies, the CSP purge fan-out. run.py runs them with
the rest."""
import json
import os
import signal
import time

from harness import (CSP_TOKEN, ChunkOrigin, DCDN_PID, OP_TOKEN, RI_TOKEN, ctl, fan_out, http, sget, surrogate_env,
                     trigger, trigger_status, wait_for)


def trigger_env(env, origin, dead_after_s):
    """The dCDN router taking triggers, and a surrogate (se-x) executing them
    on content from origin."""
    env.stop("dcdn")
    router = env.dcdn_config()
    router["triggers"] = {"cdn_pid": DCDN_PID}
    router["router"]["surrogate_dead_after_s"] = dead_after_s
    env.start_daemon("dcdn", router)
    surrogate_env(env, ["127.0.0.1:%d" % origin.port], extra={"triggers": {"cdn_pid": DCDN_PID}})


def test_dcdn_triggers_purge_invalidate_by_url_pattern_and_ccid_cancel_and_a_killed_surrogate(env):
    files = {"/vod/m1/a.ts": b"a" * 3000, "/vod/m1/b.ts": b"b" * 3000, "/vod/m2/c.ts": b"c" * 3000}
    o = ChunkOrigin(files)
    try:
        trigger_env(env, o, dead_after_s=30)
        cache = lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"], token=OP_TOKEN)[2])
        xc = lambda p: sget(env, p)[1]["x-cache"]
        for p in files:
            assert sget(env, p)[0] == 200
        assert [xc(p) for p in files] == ["HIT", "HIT", "HIT"]
        # the router knows the content (its metadata) and the surrogate (to wait for it)
        assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5), \
            env.resolve("http://video.example.com/vod/m1/a.ts")
        assert wait_for(lambda: "se-x" in http("GET", "http://127.0.0.1:%d/v1/surrogates" % env.ports["dop"],
                                               token=OP_TOKEN)[2].decode(), timeout=5)
        path = ["AS64496:1"]
        # purge by URL (the scheme does not count): stored in Redis, 201 + Location
        s, h, b = trigger(env, {"trigger": {"type": "purge", "content.urls": ["https://video.example.com/vod/m1/a.ts"]},
                                "cdn-path": path})
        assert s == 201 and h["Content-Type"] == "application/cdni; ptype=ci-trigger-status", (s, b)
        loc = h["Location"]
        assert b["status"] in ("pending", "active") and b["trigger"]["type"] == "purge" and b["ctime"] > 0, b
        done = trigger_status(loc, "complete")
        assert done["mtime"] >= done["ctime"] and "etime" in done, done
        assert [xc(p) for p in files] == ["MISS", "HIT", "HIT"]
        # purge by pattern
        s, h, _ = trigger(env, {"trigger": {"type": "purge", "content.patterns": [{"pattern": "*/vod/m2/*"}]},
                                "cdn-path": path})
        trigger_status(h["Location"], "complete")
        assert xc("/vod/m2/c.ts") == "MISS" and xc("/vod/m1/b.ts") == "HIT"
        # invalidate by CCID: kept, but revalidated before it is served again
        cond = o.conditional
        s, h, _ = trigger(env, {"trigger": {"type": "invalidate", "content.ccids": ["col-1"]}, "cdn-path": path})
        trigger_status(h["Location"], "complete")
        assert xc("/vod/m1/b.ts") in ("REVALIDATED", "REFRESH") and o.conditional > cond, o.conditional
        # an invalidation outlives a restart of the surrogate (recorded in its cache directory)
        s, h, _ = trigger(env, {"trigger": {"type": "invalidate", "content.urls": [
            "http://video.example.com/vod/m1/a.ts"]}, "cdn-path": path})
        trigger_status(h["Location"], "complete")
        se_cfg = json.load(open(os.path.join(env.dir, "dcdn-se.json")))
        env.stop("dcdn-se")
        env.start_daemon("dcdn-se", se_cfg, binary="dcdn")
        cond = o.conditional
        got = xc("/vod/m1/a.ts")
        assert got in ("REVALIDATED", "REFRESH") and o.conditional > cond, (got, o.conditional, cond)
        # purge by CCID: everything of the collection goes
        assert cache()["objects"] == 3
        s, h, _ = trigger(env, {"trigger": {"type": "purge", "content.ccids": ["col-1"]}, "cdn-path": path})
        trigger_status(h["Location"], "complete")
        assert cache()["objects"] == 0
        # collections, ETag, DELETE, 405
        base = "http://127.0.0.1:%d/triggers" % env.ports["dpeer"]
        coll = json.loads(http("GET", base, token=RI_TOKEN)[2])
        assert len(coll["triggers"]) == 5 and coll["staleresourcetime"] == 86400 and coll["cdn-id"] == DCDN_PID
        assert len(json.loads(http("GET", base + "/complete", token=RI_TOKEN)[2])["triggers"]) == 5
        assert json.loads(http("GET", base + "/pending", token=RI_TOKEN)[2])["triggers"] == []
        s, h, _ = http("GET", loc, token=RI_TOKEN)
        assert http("GET", loc, token=RI_TOKEN, headers={"If-None-Match": h["ETag"]})[0] == 304
        s, hh, body = http("HEAD", loc, token=RI_TOKEN)  # RFC 8007 §4: GET, HEAD, POST, DELETE
        assert s == 200 and body == b"" and hh["ETag"] == h["ETag"], (s, body)
        assert http("PUT", loc, b"{}", token=RI_TOKEN)[0] == 405
        assert http("DELETE", loc, token=RI_TOKEN)[0] == 204
        assert http("GET", loc, token=RI_TOKEN)[0] == 404
        # metadata specs: the dCDN fetches the uCDN's metadata again now (refresh_s is 1 here, so
        # only completion is checked)
        s, h, _ = trigger(env, {"trigger": {"type": "invalidate", "metadata.urls": [
            "http://127.0.0.1:%d/mi/v1/hostindex" % env.ports["peer"]], "metadata.patterns": [
            {"pattern": "http://127.0.0.1:%d/mi/v1/*" % env.ports["peer"]}]}, "cdn-path": path})
        assert s == 201, s
        trigger_status(h["Location"], "complete")
        # refused: bad command (RFC-style path), loop, another CDN's content, no token
        s, h, b = trigger(env, {"trigger": {"type": "preposition", "content.patterns": [{"pattern": "*"}]},
                                "cdn-path": path})
        assert s == 400 and h["Content-Type"] == "application/problem+json", (s, b)
        assert trigger(env, {"trigger": {"type": "purge", "content.ccids": ["col-1"]},
                             "cdn-path": path + [DCDN_PID]})[0] == 403
        assert trigger(env, {"trigger": {"type": "purge", "content.urls": ["http://elsewhere.example/x"]},
                             "cdn-path": path})[0] == 403
        assert trigger(env, {"trigger": {"type": "purge", "content.ccids": ["col-1"]}, "cdn-path": path},
                       token="nobody")[0] == 401
        # cancel: a preposition waiting for its time window
        later = int(time.time()) + 3600
        s, h, _ = trigger(env, {"trigger.v2": {"type": "preposition", "content.urls": [
            "http://video.example.com/vod/m1/a.ts"], "extensions": [{
                "generic-trigger-extension-type": "CIT.TimePolicy", "mandatory-to-enforce": True,
                "generic-trigger-extension-value": {"windows": {"start": later, "end": later + 60}}}]},
            "cdn-path": path})
        assert s == 201, s
        waiting = h["Location"]
        time.sleep(0.5)
        assert trigger_status(waiting)["status"] == "pending" and cache()["objects"] == 0
        s, _, _ = trigger(env, {"cancel": [waiting], "cdn-path": path})
        assert s in (200, 202), s
        assert trigger_status(waiting, "cancelled")["trigger.v2"]["type"] == "preposition"
        # a preposition now: acquired into the cache
        s, h, _ = trigger(env, {"trigger": {"type": "preposition", "content.urls": [
            "http://video.example.com/vod/m1/a.ts", "http://video.example.com/vod/m1/b.ts"]}, "cdn-path": path})
        trigger_status(h["Location"], "complete")
        assert cache()["objects"] == 2 and xc("/vod/m1/a.ts") == "HIT"
        # a preposition of a URL its source answers 404: failed, the URL named in its errors (RFC 8007 §5.2)
        s, h, _ = trigger(env, {"trigger": {"type": "preposition", "content.urls": [
            "http://video.example.com/vod/m1/gone.ts"]}, "cdn-path": path})
        got = trigger_status(h["Location"], "failed")
        assert [x["content.urls"] for x in got["errors"]] == [["http://video.example.com/vod/m1/gone.ts"]], got
        assert got["errors"][0]["error"] == "econtent", got
        # the surrogate dies before it can run a purge: the purge waits; restarted, it completes it
        cfg = json.load(open(os.path.join(env.dir, "dcdn-se.json")))
        env.stop("dcdn-se", signal.SIGKILL)
        s, h, _ = trigger(env, {"trigger": {"type": "purge", "content.ccids": ["col-1"]}, "cdn-path": path})
        assert s == 201
        time.sleep(1)
        assert trigger_status(h["Location"])["status"] in ("pending", "active")
        env.start_daemon("dcdn-se", cfg, binary="dcdn")
        trigger_status(h["Location"], "complete")
        assert cache()["objects"] == 0
        assert xc("/vod/m1/a.ts") == "MISS"
    finally:
        o.stop()


def test_a_trigger_whose_surrogate_goes_offline_ends_as_rfc8007_says_not_held(env):
    # §4.7: a target surrogate that stops heartbeating after a trigger was accepted no longer holds
    # it up: purge ends "processed", invalidate "complete" (it revalidates what it missed when back)
    o = ChunkOrigin({"/vod/m1/a.ts": b"a" * 3000})
    se = None
    try:
        trigger_env(env, o, dead_after_s=2)
        assert sget(env, "/vod/m1/a.ts")[0] == 200
        path = ["AS64496:1"]
        # an accepted trigger waits for the executors alive when it came; the router sees se-x
        # announce itself (the monitor reads the executors every 100 ms)
        assert wait_for(lambda: "se-x" in env.redis_cli("redis_d", "HKEYS", "cdni:dcdn-it:{cit}:executors"), timeout=5)
        time.sleep(0.5)
        s, h, b = trigger(env, {"trigger": {"type": "purge", "content.urls": ["http://video.example.com/vod/m1/a.ts"]},
                                "cdn-path": path})
        assert s == 201 and trigger_status(h["Location"], "complete")
        assert sget(env, "/vod/m1/a.ts")[1]["x-cache"] == "MISS"  # se-x did purge it
        se = env.worker("dcdn-se")
        os.kill(se, signal.SIGSTOP)  # alive a moment ago: the next triggers wait for it
        s1, h1, _ = trigger(env, {"trigger": {"type": "purge", "content.urls": [
            "http://video.example.com/vod/m1/a.ts"]}, "cdn-path": path})
        s2, h2, _ = trigger(env, {"trigger": {"type": "invalidate", "content.urls": [
            "http://video.example.com/vod/m1/a.ts"]}, "cdn-path": path})
        assert s1 == 201 and s2 == 201, (s1, s2)
        assert trigger_status(h1["Location"])["status"] in ("pending", "active"), trigger_status(h1["Location"])
        # once its heartbeat is older than surrogate_dead_after_s, the monitor looks at every open trigger
        purge = trigger_status(h1["Location"], "processed", timeout=8)
        assert "etime" in purge, purge
        trigger_status(h2["Location"], "complete", timeout=8)
    finally:
        if se is not None:
            os.kill(se, signal.SIGCONT)
        o.stop()


def test_csp_purge_fans_out_to_the_dcdn_survives_it_being_down_and_cdnictl_waits_for_it(env):
    files = {"/vod/m1/a.ts": b"a" * 3000, "/vod/m1/b.ts": b"b" * 3000, "/vod/m2/c.ts": b"c" * 3000}
    o = ChunkOrigin(files)
    try:
        env.stop("dcdn")
        router = env.dcdn_config()
        router["triggers"] = {"cdn_pid": DCDN_PID}
        env.start_daemon("dcdn", router)
        ucfg = env.ucdn_config()
        fan_out(ucfg, env.ports["dpeer"])
        env.stop("ucdn")
        env.start_daemon("ucdn", ucfg)
        surrogate_env(env, ["127.0.0.1:%d" % o.port], extra={"triggers": {"cdn_pid": DCDN_PID}})
        assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5)
        cache = lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"], token=OP_TOKEN)[2])
        fill = lambda: [sget(env, p)[0] for p in files] == [200, 200, 200]
        assert fill() and cache()["objects"] == 3
        time.sleep(1.2)  # the surrogate has announced itself as a trigger executor

        def request(kind, body, token=CSP_TOKEN):
            s, h, b = env.csp("POST", "/csp/v1/" + kind, json.dumps(body), token=token)
            return s, h, (json.loads(b) if b[:1] == b"{" else b)

        def finished(loc, want="complete", timeout=15):
            get = lambda: json.loads(env.csp("GET", loc)[2])
            got = wait_for(lambda: (lambda v: v if v["status"] == want else None)(get()), timeout=timeout)
            assert got, get()
            return got
        # a purge by CCID: one request, fanned out, watched to completion
        s, h, b = request("purges", {"content.ccids": ["col-1"]})
        assert s == 201 and b["status"] in ("pending", "active") and b["dcdns"][0]["dcdn"] == "dcdn-it", (s, b)
        done = finished(h["Location"])
        d0 = done["dcdns"][0]
        assert d0["status"] == "complete" and "/triggers/" in d0["trigger"], done
        assert cache()["objects"] == 0
        # the CSP's own content only; RFC-style validation
        assert fill()
        assert request("purges", {"content.ccids": ["col-1"]}, token="csp-other-integration-token")[0] == 403
        assert request("purges", {"content.urls": ["http://other.example/x.ts"]})[0] == 403
        assert request("purges", {"content.patterns": [{"pattern": "*/vod/*"}]})[0] == 403
        s, h, b = request("purges", {})
        assert s == 400 and h["Content-Type"] == "application/problem+json", (s, b)
        s, h, b = request("purges", {"content.urls": ["not a url"]})
        assert s == 400 and b["errors"][0]["path"] == "$.content.urls[0]", b
        # a pattern, through cdnictl, waiting for the end
        r = ctl("purge", "--pattern", "http://video.example.com/vod/m2/*", "--wait", "--ucdn",
                "http://127.0.0.1:%d" % env.ports["csp"], "--token", CSP_TOKEN)
        assert r.returncode == 0 and '"complete"' in r.stdout, r.stdout + r.stderr
        assert cache()["objects"] == 2 and sget(env, "/vod/m1/a.ts")[1]["x-cache"] == "HIT"
        # the dCDN's trigger interface is down: the request waits, retried; back up, it completes
        env.stop("dcdn")
        s, h, b = request("invalidations", {"content.urls": ["http://video.example.com/vod/m1/a.ts"]})
        assert s == 201, b
        loc = h["Location"]
        got = wait_for(lambda: (lambda v: v if v["dcdns"][0].get("attempts", 0) >= 2 else None)(
            json.loads(env.csp("GET", loc)[2])), timeout=10)
        assert got and got["status"] == "pending" and got["dcdns"][0]["last_error"], got
        env.start_daemon("dcdn", router)
        finished(loc, timeout=20)
        cond = o.conditional
        assert sget(env, "/vod/m1/a.ts")[1]["x-cache"] in ("REVALIDATED", "REFRESH") and o.conditional > cond
        r = ctl("purge", "status", loc.rsplit("/", 1)[1], "--kind", "invalidate", "--ucdn",
                "http://127.0.0.1:%d" % env.ports["csp"], "--token", CSP_TOKEN)
        assert r.returncode == 0 and '"complete"' in r.stdout, r.stdout + r.stderr
    finally:
        o.stop()
