"""Integration tests: request routing: footprints and capabilities (FCI),
heartbeats, RI (RFC 7975) and its failover, the redirect. run.py runs them
with the rest."""
import json
import os
import subprocess
import time

from harness import (BIN, OP_TOKEN, PEER2_TOKEN, PEER_TOKEN, RI_TOKEN, ROOT, SURROGATE_A, dcdn_capabilities,
                     explain, free_port, http, raw_get, routed, service, wait_for)


def test_player_gets_one_redirect_to_a_dcdn_surrogate_and_two_ucdns_agree(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env), explain(env, "127.0.0.1")
    # the dCDN registered its surrogate and advertised; one 302 names the surrogate
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts?sid=42")
    assert s == 302, (s, h)
    assert h["location"] == SURROGATE_A + "/video.example.com/vod/m1/seg_1.ts?sid=42", h
    # the second request for the same URL is answered from the RI cache
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts?sid=42")
    assert s == 302 and h["location"].startswith(SURROGATE_A)
    _, _, m = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["uop"], token=OP_TOKEN)
    assert b'cdni_ri_requests_total{result="cache_hit"} 1' in m, m
    assert b'cdni_route_decisions_total{peer="dcdn-it",reason="selected"} 2' in m
    # iterative mode: the dCDN's own router sends the user to the same surrogate
    s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/seg_2.ts?x=1")
    assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com/vod/m1/seg_2.ts?x=1", h
    # outside the footprint: not covered, no fallback configured: 503 problem
    e = explain(env, "10.9.9.9")
    assert e["result"] == "unroutable" and e["candidates"][0]["result"] == "not_covered", e
    # unknown host: 404 problem
    s, h, b = raw_get(env.ports["udel"], "/x", host="nope.example")
    assert s == 404 and h["content-type"] == "application/problem+json"
    # a second ucdn instance on the same Redis sees the same peer, capabilities and health
    cfg = env.ucdn_config()
    for k in ("csp", "peer", "operator", "delivery"):
        cfg["listeners"][k]["port"] = free_port()
    path = os.path.join(env.dir, "ucdn2.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([os.path.join(BIN, "ucdn"), "-c", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.procs["ucdn2"] = p
    assert wait_for(lambda: env._listening(cfg["listeners"]["delivery"]["port"]))
    assert routed(env, port=cfg["listeners"]["operator"]["port"])
    s, h, _ = raw_get(cfg["listeners"]["delivery"]["port"], "/vod/m1/seg_9.ts")
    assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com/vod/m1/seg_9.ts"


def test_long_urls_are_redirected_whole_or_refused_with_414_never_cut(env):
    # delivery listeners keep 16 KiB per connection for request and response
    # heads; a target may take half of it less 1 KiB, since Location repeats it
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env), explain(env, "127.0.0.1")
    limit = 16384 // 2 - 1024
    target = "/vod/m1/" + "a" * (limit - len("/vod/m1/") - len(".ts?t=1")) + ".ts?t=1"
    assert len(target) == limit
    s, h, _ = raw_get(env.ports["udel"], target)
    assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com" + target, (s, len(h.get("location", "")))
    s, h, _ = raw_get(env.ports["ddel"], target)
    assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com" + target, (s, len(h.get("location", "")))
    for port in (env.ports["udel"], env.ports["ddel"]):
        s, h, b = raw_get(port, target + "x")
        assert s == 414 and h["content-type"] == "application/problem+json", (s, h)
        assert json.loads(b)["detail"] == "the request target exceeds %d bytes" % limit
    # the API listeners keep the 32 KiB default
    s, _, b = http("GET", "http://127.0.0.1:%d/healthz?%s" % (env.ports["uop"], "q" * 9000))
    assert s == 200, b


def test_malformed_fci_is_refused_with_its_path_and_the_previous_one_stays(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    url = "http://127.0.0.1:%d/fci/v1/capabilities" % env.ports["peer"]
    bad = dcdn_capabilities()
    bad["capabilities"][0]["footprints"][0]["footprint-value"] = ["127.0.0.0/8", "300.1.1.1/8"]
    s, h, b = http("PUT", url, json.dumps(bad), token=PEER_TOKEN)
    assert s == 400 and h["Content-Type"] == "application/problem+json", (s, b)
    assert json.loads(b)["errors"][0]["path"] == "$.capabilities[0].footprints[0].footprint-value[1]"
    s, _, b = http("PUT", url, "{not json", token=PEER_TOKEN)
    assert s == 400
    assert http("PUT", url, json.dumps(dcdn_capabilities()))[0] == 401
    s, h, b = http("GET", url, token=PEER_TOKEN)
    assert s == 200 and "ptype=FCI.Capabilities" in h["Content-Type"]
    assert json.loads(b)["capabilities"][0]["footprints"][0]["footprint-value"] == ["127.0.0.0/8"]
    assert explain(env, "127.0.0.1")["selected"] == "dcdn-it"
    # a narrower advertisement takes effect on every request from then on
    s, _, _ = http("PUT", url, json.dumps(dcdn_capabilities(["127.0.0.0/24"])), token=PEER_TOKEN)
    assert s == 204
    assert wait_for(lambda: explain(env, "127.1.0.1")["candidates"][0]["result"] == "not_covered")
    assert explain(env, "127.0.0.1")["candidates"][0]["prefix_length"] == 24


def test_silent_dcdn_becomes_unavailable_and_the_next_heartbeat_restores_it(env):
    env.stop("ucdn")
    cfg = env.ucdn_config()
    cfg["routing"]["heartbeat_timeout_s"] = 2
    env.start_daemon("ucdn", cfg)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    url = "http://127.0.0.1:%d/fci/v1/heartbeat" % env.ports["peer"]
    assert http("POST", url, '{"load": 0.1}', token=PEER_TOKEN)[0] == 204
    assert routed(env)
    # the dCDN heartbeats every 60 s here: after 2 s of silence it is out
    e = wait_for(lambda: (lambda x: x if x["candidates"][0]["result"] == "unavailable" else None)(
        explain(env, "127.0.0.1")), timeout=5)
    assert e and e["result"] == "unroutable", e
    s, h, b = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts")
    assert s == 503 and json.loads(b)["candidates"]["dcdn-it"] == "unavailable", b
    # overloaded is out too; a normal load brings it back
    assert http("POST", url, '{"load": 1.5}', token=PEER_TOKEN)[0] == 204
    assert wait_for(lambda: explain(env, "127.0.0.1")["candidates"][0]["result"] == "overloaded")
    assert http("POST", url, '{"load": -1}', token=PEER_TOKEN)[0] == 400
    assert http("POST", url, '{"load": 0.2}', token=PEER_TOKEN)[0] == 204
    assert routed(env)
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts")
    assert s == 302 and h["location"].startswith(SURROGATE_A)


def test_dcdn_that_stops_answering_ri_is_failed_over_within_one_timeout(env):
    env.stop("ucdn")
    cfg = env.ucdn_config()
    cfg["peers"].append({"id": "dcdn-2", "token": PEER2_TOKEN, "priority": 5,
                         "delivery_url": "http://rr.dcdn2.test"})
    cfg["routing"]["ri_timeout_ms"] = 500
    env.start_daemon("ucdn", cfg)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    peer = "http://127.0.0.1:%d/fci/v1/" % env.ports["peer"]
    assert http("PUT", peer + "capabilities", json.dumps(dcdn_capabilities()), token=PEER2_TOKEN)[0] == 204
    assert http("POST", peer + "heartbeat", '{"load": 0}', token=PEER2_TOKEN)[0] == 204
    assert routed(env)  # dcdn-it wins on priority while it answers
    want = {"dcdn-it": "selected", "dcdn-2": "ranked_lower"}  # once dcdn-2's heartbeat is seen too
    assert wait_for(lambda: {c["id"]: c["result"] for c in explain(env, "127.0.0.1")["candidates"]} == want), \
        explain(env, "127.0.0.1")
    env.stop("dcdn")  # its heartbeat is still fresh: only RI tells
    t0 = time.time()
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_3.ts?t=1")
    took = time.time() - t0
    assert s == 302 and h["location"] == "http://rr.dcdn2.test/video.example.com/vod/m1/seg_3.ts?t=1", (s, h)
    assert took < 3, took  # one RI timeout, plus sanitizer overhead; not a benchmark
    # the RI circuit is open now: explain shows why dcdn-it is not used
    e = explain(env, "127.0.0.1")
    assert e["selected"] == "dcdn-2"
    assert e["candidates"][0]["result"] == "redirection_mode", e
    s, _, b = http("GET", "http://127.0.0.1:%d/v1/peers" % env.ports["uop"], token=OP_TOKEN)
    assert "ri_suspended_ms" in json.loads(b)["peers"][0]


def test_routing_continues_on_the_last_snapshot_while_redis_is_down(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    env.stop("redis_u")
    env.stop("redis_d")
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_7.ts")
    assert s == 302 and h["location"] == SURROGATE_A + "/video.example.com/vod/m1/seg_7.ts", (s, h)
    s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/seg_7.ts")
    assert s == 302 and h["location"].startswith(SURROGATE_A)


def test_dcdn_ri_server_errors_loops_and_authentication(env):
    url = "http://127.0.0.1:%d/ri/v1/redirect" % env.ports["dpeer"]
    req = {"interface": "http", "method": "GET", "scheme": "http", "host": "video.example.com",
           "url": "/vod/m1/a.ts?k=v", "c-ip": "127.0.0.5", "cdn-path": ["ucdn-it"], "max-hops": 3}
    assert wait_for(lambda: http("POST", url, json.dumps(req), token=RI_TOKEN)[0] == 200)
    s, h, b = http("POST", url, json.dumps(req), token=RI_TOKEN)
    assert "ptype=RedirectionResponse" in h["Content-Type"] and "max-age=30" in h["Cache-Control"]
    assert json.loads(b) == {"code": 302, "headers": {"location": SURROGATE_A + "/video.example.com/vod/m1/a.ts?k=v"}}
    # a client outside 127/8 falls to the catch-all zone, whose surrogate is not registered:
    # no surrogate and no last resort
    s, h, b = http("POST", url, json.dumps(dict(req, **{"c-ip": "192.0.2.1"})), token=RI_TOKEN)
    assert s == 503 and json.loads(b)["error-code"] == 503
    # se-b registers through the operator API: the catch-all zone now has it
    assert http("PUT", "http://127.0.0.1:%d/v1/surrogates/se-b" % env.ports["dop"],
                '{"url": "http://se-b.dcdn.test", "load": 0.2}', token=OP_TOKEN)[0] == 204
    s, _, b = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        http("POST", url, json.dumps(dict(req, **{"c-ip": "192.0.2.1"})), token=RI_TOKEN)))
    assert json.loads(b)["headers"]["location"] == "http://se-b.dcdn.test/video.example.com/vod/m1/a.ts?k=v"
    # loop: the dCDN is already on the path
    s, h, b = http("POST", url, json.dumps(dict(req, **{"cdn-path": ["ucdn-it", "dcdn-it"]})), token=RI_TOKEN)
    assert s == 409 and json.loads(b)["error-code"] == 508 and "ptype=RedirectionError" in h["Content-Type"]
    s, _, b = http("POST", url, json.dumps(dict(req, **{"max-hops": 1})), token=RI_TOKEN)
    assert s == 409 and json.loads(b)["error-code"] == 508
    s, _, b = http("POST", url, json.dumps(dict(req, url="no-slash")), token=RI_TOKEN)
    assert s == 400 and json.loads(b)["reason"].startswith("$.url")
    assert http("POST", url, json.dumps(req))[0] == 401
    assert http("POST", url, json.dumps(req), token=PEER_TOKEN)[0] == 401
    # DNS flavour: a CNAME to the surrogate's host
    dns = {"interface": "dns", "resolver-ip": "127.0.0.53", "qname": "video.example.com",
           "qtype": "A", "cdn-path": ["ucdn-it"]}
    s, _, b = http("POST", url, json.dumps(dns), token=RI_TOKEN)
    assert s == 200 and json.loads(b)["rr"][0] == {"name": "video.example.com", "ttl": 30, "type": "CNAME",
                                                   "class": "IN", "rdata": "se-a.dcdn.test"}, b
    # and the uCDN can pull the advertisement from the dCDN
    s, _, b = http("POST", "http://127.0.0.1:%d/v1/peers/dcdn-it/pull" % env.ports["uop"], "", token=OP_TOKEN)
    assert s == 200 and json.loads(b)["result"] == "stored", b


def test_cdnictl_route_explain_names_each_candidate_and_why(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    ctl = os.path.join(BIN, "cdnictl")
    base = "http://127.0.0.1:%d" % env.ports["uop"]
    r = subprocess.run([ctl, "route", "explain", "--ucdn", base, "--token", OP_TOKEN, "--client-ip",
                        "127.0.0.1", "http://video.example.com/vod/m1/seg_1.ts"], capture_output=True, text=True)
    assert r.returncode == 0 and "redirect -> dcdn-it" in r.stdout, r.stdout + r.stderr
    row = [l for l in r.stdout.splitlines() if l.startswith("dcdn-it")][0]
    assert "selected" in row and "/8" in row and "HTTP-R" in row, row
    r = subprocess.run([ctl, "route", "explain", "--ucdn", base, "--token", OP_TOKEN, "--client-ip",
                        "10.0.0.1", "http://video.example.com/vod/m1/seg_1.ts"], capture_output=True, text=True)
    assert r.returncode == 0 and "not_covered" in r.stdout and "unroutable" in r.stdout, r.stdout
    r = subprocess.run([ctl, "peer", "list", "--ucdn", base, "--token", OP_TOKEN], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["peers"][0]["available"] is True


def test_cdnictl_token_sign_and_verify(env):
    ctl = os.path.join(BIN, "cdnictl")
    data = os.path.join(ROOT, "tests", "data", "rfc9246")
    rfc = open(os.path.join(data, "a2-complex.jwt")).read().strip()
    args = [ctl, "token", "verify", "--keys", os.path.join(data, "jwks.json"), "--aud", "dCDN LLC",
            "--uri", "http://cdni.example/foo/bar/123.png", "--now", "1646780970"]
    p = subprocess.run(args + ["--client-ip", "2001:db8::1", rfc], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["jti"] == "5DAafLhZAfhsbe"
    p = subprocess.run(args + ["--client-ip", "192.0.2.1", rfc], capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout.startswith("refused: 410 "), p.stdout
    key = os.path.join(env.dir, "k.json")
    with open(key, "w") as f:
        json.dump({"kty": "oct", "kid": "k1", "k": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}, f)
    claims = {"iss": "csp", "exp": int(time.time()) + 60, "cdniuc": "regex:https://v\\.example/vod/.*"}
    p = subprocess.run([ctl, "token", "sign", "--key", key, "--claims", json.dumps(claims)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    tok = p.stdout.strip()
    ok = subprocess.run([ctl, "token", "verify", "--keys", key, "--uri", "https://v.example/vod/a.ts", tok],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout) == claims, ok.stdout
    no = subprocess.run([ctl, "token", "verify", "--keys", key, "--uri", "https://v.example/live/a.ts", tok],
                        capture_output=True, text=True)
    assert no.returncode == 1 and no.stdout.startswith("refused: 411 "), no.stdout
    bad = subprocess.run([ctl, "token", "sign", "--key", key, "--claims", "[1]"], capture_output=True, text=True)
    assert bad.returncode == 1 and "expected a JSON object" in bad.stdout
