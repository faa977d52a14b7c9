"""Integration tests of the trust boundaries: tenants, one canonical target,
the egress policy and the abuse limits. Each reproduces what a hostile CSP,
peer or client first tried against the gateway (the trust-boundaries issue)
and checks that it is refused, and that nothing an honest CSP had is lost.
Real daemons, real Redis, real HTTP; the attackers' servers are plain
Python on loopback. run.py runs these with the rest."""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import harness
from harness import (CSP_TOKEN, OP_TOKEN, PEER_TOKEN, RI_TOKEN, SURROGATE_A, ChunkOrigin, LoopbackServer, Origin,
                 free_port, http, raw_get, routed, service, sign, signing_env, signed_dcdn, wait_for)

OTHER = "csp-other-integration-token"  # the second CSP of Env.ucdn_config, "other"


class Internal(LoopbackServer):
    """A service inside the operator's network, on an address of its own:
    nothing may make a gateway fetch from it. Counts what reaches it."""

    def __init__(self, addr="127.0.0.9"):
        import http.server as httpd
        outer = self
        self.hits = []

        class H(LoopbackServer.Quiet):
            def answer(self):
                outer.hits.append(self.path)
                b = b"#EXTM3U\n#INTERNAL-SECRET\n"
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.apple.mpegurl")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            do_GET = do_POST = answer

        self.srv = httpd.ThreadingHTTPServer((addr, 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def problem(b):
    """A problem body without its request id (which differs per request)."""
    p = json.loads(b)
    p.pop("request_id", None)
    return p


def restart_ucdn(env, tweak):
    env.stop("ucdn")
    u = env.ucdn_config()
    tweak(u)
    env.start_daemon("ucdn", u)
    return u


# --------------------------------------------------------------------------
# 1. ownership of ids

def test_a_csp_cannot_take_see_or_delete_another_csps_service_by_id(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    # the other CSP's PUT of the same id makes a service of its own; A's is untouched
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", service(host="b.example", ccid="b1"), token=OTHER)
    assert s == 201, b
    s, _, b = env.csp("GET", "/csp/v1/services/vod1")
    assert s == 200 and json.loads(b)["host"] == "video.example.com" and json.loads(b)["version"] == 1, b
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts")
    assert s == 302 and "/video.example.com/vod/m1/seg_1.ts" in h["location"], (s, h)
    s, _, b = env.csp("GET", "/csp/v1/services/vod1", token=OTHER)
    assert s == 200 and json.loads(b)["host"] == "b.example", b
    # each sees its own history and list only
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", service(host="b.example", ccid="b2"), token=OTHER)
    assert s == 200, b
    s, _, b = env.csp("GET", "/csp/v1/services/vod1/versions")
    assert s == 200 and json.loads(b)["previous_versions"] == [], b
    s, _, b = env.csp("GET", "/csp/v1/services/vod1/versions", token=OTHER)
    assert [v["host"] for v in json.loads(b)["previous_versions"]] == ["b.example"], b
    assert [x["host"] for x in json.loads(env.csp("GET", "/csp/v1/services", token=OTHER)[2])["services"]] == \
        ["b.example"]
    # another's id answers exactly as a missing one: nothing tells them apart
    assert env.csp("PUT", "/csp/v1/services/only-a", service(host="a2.example", ccid="a2"))[0] == 201
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/versions")):
        sa, _, ba = env.csp(method, "/csp/v1/services/only-a" + suffix, token=OTHER)
        sm, _, bm = env.csp(method, "/csp/v1/services/never-was" + suffix, token=OTHER)
        assert sa == sm == 404 and problem(ba) == problem(bm), (method, ba, bm)
    assert env.csp("GET", "/csp/v1/services/only-a")[0] == 200
    # the other deletes its own vod1; A's stays, and so do its players
    assert env.csp("DELETE", "/csp/v1/services/vod1", token=OTHER)[0] == 204
    assert env.csp("GET", "/csp/v1/services/vod1")[0] == 200
    assert raw_get(env.ports["udel"], "/vod/m1/seg_1.ts")[0] == 302
    # collections: the same
    coll = {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1-col", "manifest": harness.MASTER}
    assert harness.put_collection(env, "c1", coll)[0] == 201
    assert env.csp("PUT", "/csp/v1/services/vod1", service(host="b.example", ccid="b1"), token=OTHER)[0] == 201
    s, _, b = harness.put_collection(env, "c1", dict(coll, ccid="b-col", path="/b/master.m3u8"), token=OTHER)
    assert s == 201, b  # its own c1, on its own vod1
    s, _, b = env.csp("GET", "/csp/v1/collections/c1")
    assert s == 200 and json.loads(b)["ccid"] == "m1-col" and json.loads(b)["host"] == "video.example.com", b
    s, _, b = raw_get(env.ports["udel"], "/vod/m1/master.m3u8")
    assert s == 200 and b.startswith(b"#EXTM3U"), (s, b)


def test_the_first_schema_data_is_moved_whole_and_claimed(env):
    """A store written by the previous version (one id space, hosts as
    given, no claims) is moved into the current one at start: nothing an
    honest CSP had is lost, and its claims hold from then on."""
    env.stop("ucdn")
    pre = "cdni:ucdn-it:{mi}:"
    rec = {"id": "vod1", "csp": "acme", "host": "Video.Example.COM", "updated": 1,
           "service": json.loads(service())}
    del rec["service"]["host"]
    coll = {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1-col", "manifest": harness.MASTER,
            "csp": "acme", "host": "Video.Example.COM", "updated": 1}
    for cmd in (["DEL", pre + "schema"], ["HSET", pre + "services", "vod1", json.dumps(rec)], ["HSET", pre + "versions", "vod1", "3"],
                ["HSET", pre + "svchost", "vod1", "video.example.com"],
                ["HSET", pre + "hosts", "video.example.com", "vod1"], ["SET", pre + "version", "3"],
                ["LPUSH", pre + "history:vod1", "2 " + json.dumps(dict(rec, host="old.example"))],
                ["HSET", pre + "collections", "c1", json.dumps(coll)]):
        env.redis_cli("redis_u", *cmd)
    env.start_daemon("ucdn", env.ucdn_config())
    s, _, b = env.csp("GET", "/csp/v1/services/vod1")
    assert s == 200 and json.loads(b)["version"] == 3, b
    s, _, b = env.csp("GET", "/csp/v1/services/vod1/versions")
    assert [v["host"] for v in json.loads(b)["previous_versions"]] == ["old.example"], b
    assert env.csp("GET", "/csp/v1/collections/c1")[0] == 200
    # (served once the routing state the restarted instance reads from Redis is in)
    assert wait_for(lambda: raw_get(env.ports["udel"], "/vod/m1/master.m3u8")[0] == 200, timeout=5), \
        raw_get(env.ports["udel"], "/vod/m1/master.m3u8")
    assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5)
    # its claims: the host, the service's CCID and the collection's
    for doc in (service(host="video.example.com:80", ccid="z"), service(host="z.example", ccid="m1")):
        s, _, b = env.csp("PUT", "/csp/v1/services/x", doc, token=OTHER)
        assert s == 409 and b"another CSP" in b, b
    assert env.csp("PUT", "/csp/v1/services/x", service(host="z.example", ccid="m1-col"), token=OTHER)[0] == 409
    assert env.redis_cli("redis_u", "GET", pre + "schema").strip() == "2"


# --------------------------------------------------------------------------
# 3. one host, however spelled

def test_a_host_is_one_host_however_it_is_spelled(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    for h in ("video.example.com:80", "VIDEO.example.com.", "video.example.com:443", "Video.Example.Com:8080",
              "video.example.com:0080"):
        s, _, b = env.csp("PUT", "/csp/v1/services/x", service(host=h, ccid="b1"), token=OTHER)
        assert s == 409 and b"another CSP" in b and b"vod1" not in b, (h, s, b)
    s, _, b = env.csp("PUT", "/csp/v1/services/dup", service(host="VIDEO.EXAMPLE.COM.:80"))
    assert s == 409 and b"your delivery service vod1" in b, b
    for h in ("127.1", "2130706433", "0x7f000001", "video..example.com", "video.example.com:65536"):
        s, _, b = env.csp("PUT", "/csp/v1/services/x", service(host=h, ccid="b1"), token=OTHER)
        assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.host", (h, s, b)
    # the owner may publish another port of its own host, held canonical
    s, _, b = env.csp("PUT", "/csp/v1/services/alt", service(host="Video.Example.Com:08080", ccid="m1"))
    assert s == 201 and json.loads(b)["host"] == "video.example.com:8080", b
    # IDNA: a U-label is published as its A-label
    s, _, b = env.csp("PUT", "/csp/v1/services/idn", service(host="b\u00fccher.example", ccid="bk"), token=OTHER)
    assert s == 201 and json.loads(b)["host"] == "xn--bcher-kva.example", b
    # every spelling of the Host reaches the one service
    assert routed(env)
    for host in ("video.example.com:80", "VIDEO.EXAMPLE.COM.", "Video.example.com"):
        s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts", host=host)
        assert s == 302 and "/video.example.com/vod/m1/" in h["location"], (host, s, h)
    assert raw_get(env.ports["udel"], "/vod/m1/seg_1.ts", host="127.1")[0] == 400
    s, doc = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        env.resolve("http://Video.Example.COM.:80/vod/m1/x.ts")), timeout=5)
    assert doc["host"] == "video.example.com", doc


def test_the_surrogate_keys_a_port_qualified_host_apart_from_the_bare_one(env):
    """Two services of one CSP on one name, ports 80 and 8080, each with its
    own origin: the surrogate never answers one with the other's bytes."""
    o80 = ChunkOrigin({"/vod/m1/seg_1.ts": b"eighty" * 100})
    o8080 = ChunkOrigin({"/vod/m1/seg_1.ts": b"eighty-eighty" * 100})
    try:
        harness.surrogate_env(env, ["127.0.0.1:%d" % o80.port])
        doc = json.loads(service(host="video.example.com:8080", ccid="m8080"))
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % o8080.port]
        assert env.csp("PUT", "/csp/v1/services/v8080", json.dumps(doc))[0] == 201
        q = urllib.parse.quote("http://video.example.com:8080/vod/m1/x.ts", safe="")
        assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (
            env.ports["sop"], q), token=OP_TOKEN)[2]).get("host") == "video.example.com:8080", timeout=5)
        s, h, b = raw_get(env.ports["surr"], "/vod/m1/seg_1.ts", host="video.example.com:80")
        assert s == 200 and b == b"eighty" * 100 and h["x-cache"] == "MISS", (s, h)
        s, h, b = raw_get(env.ports["surr"], "/vod/m1/seg_1.ts", host="video.example.com:8080")
        assert s == 200 and b == b"eighty-eighty" * 100 and h["x-cache"] == "MISS", (s, h)
        s, h, b = raw_get(env.ports["surr"], "/vod/m1/seg_1.ts", host="VIDEO.example.com")
        assert s == 200 and b == b"eighty" * 100 and h["x-cache"] == "HIT", (s, h)
        s, h, b = raw_get(env.ports["surr"], "/video.example.com:8080/vod/m1/seg_1.ts", host="127.0.0.1:%d" %
                          env.ports["surr"])
        assert s == 200 and b == b"eighty-eighty" * 100 and h["x-cache"] == "HIT", (s, h)
    finally:
        o80.stop()
        o8080.stop()


# --------------------------------------------------------------------------
# 2. the gateways' own authorities name no content

def start_at(env, name, cfg, addr):
    """A daemon whose listeners bind addr (another loopback address)."""
    path = os.path.join(env.dir, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(env.dir, name + ".log"), "ab")
    e = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
             UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    binary = "ucdn" if name.startswith("ucdn") else "dcdn"
    p = subprocess.Popen([os.path.join(harness.BIN, binary), "-c", path], stdout=log, stderr=log, env=e)
    env.procs[name] = p

    def up():
        for l in cfg["listeners"].values():
            try:
                socket.create_connection((addr, l["port"]), timeout=0.2).close()
            except OSError:
                return False
        return p.poll() is None
    assert wait_for(up), name + " did not start:\n" + env.log(name)[-2000:]


def second_upstream(env, csp_token="csp-evil-second-upstream-token"):
    """A second uCDN (its own Redis) on 127.0.0.2 that the dCDN also takes
    metadata from: a peer that publishes whatever its CSPs ask, and so the
    one a hostile CSP would use. Returns its CSP API's base URL."""
    env.ports.update({k: free_port() for k in ("redis_u2", "csp2", "peer2", "uop2")})
    env.start_redis("redis_u2")
    u2 = {"cdn_id": "ucdn-two", "redis": "redis://127.0.0.1:%d" % env.ports["redis_u2"], "log_level": "debug",
          "threads": 1,
          "listeners": {k: {"bind": "127.0.0.2", "port": env.ports[p]}
                        for k, p in (("csp", "csp2"), ("peer", "peer2"), ("operator", "uop2"))},
          "csp_tokens": [{"csp": "evil", "token": csp_token}],
          "peers": [{"id": "dcdn-it", "token": harness.PEER2_TOKEN}],
          "metadata": {"public_url": "http://127.0.0.2:%d" % env.ports["peer2"], "max_age_s": 1}}
    start_at(env, "ucdn2", u2, "127.0.0.2")
    return "http://127.0.0.2:%d" % env.ports["csp2"]


def two_upstream_surrogate(env, sp, sop, surrogate=None, **cfg_extra):
    """A surrogate-role dcdn (operator port sop, surrogate port sp) taking
    metadata from both the test's uCDN and second_upstream's."""
    cfg = env.dcdn_config()
    cfg["listeners"] = {"operator": {"bind": "127.0.0.1", "port": sop},
                        "surrogate": {"bind": "127.0.0.1", "port": sp}}
    for k in ("capabilities", "router"):
        cfg.pop(k)
    for k in ("fci_url", "ri_token"):
        cfg["upstreams"][0].pop(k)
    cfg["upstreams"].append({"id": "ucdn-two", "metadata_url": "http://127.0.0.2:%d/mi/v1/hostindex" %
                             env.ports["peer2"], "token": harness.PEER2_TOKEN, "refresh_s": 1})
    cfg["surrogate"] = dict({"id": "se-x", "url": "http://127.0.0.1:%d" % sp, "heartbeat_s": 1,
                             "cache": {"dir": os.path.join(env.dir, "cache-se-x")}}, **(surrogate or {}))
    cfg.update(cfg_extra)
    return cfg


def test_no_csp_can_publish_an_authority_of_a_gateway_a_peer_or_a_surrogate(env):
    restart_ucdn(env, lambda u: u.update({"reserved_hosts": ["se-a.dcdn.test", "edge.dcdn.example"]}))
    for h in ("127.0.0.1:%d" % env.ports["udel"], "127.0.0.1:%d" % env.ports["dpeer"], "127.0.0.1",
              "se-a.dcdn.test:8080", "SE-A.dcdn.test.", "edge.dcdn.example"):
        s, _, b = env.csp("PUT", "/csp/v1/services/x", service(host=h, ccid="b1"), token=OTHER)
        assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.host", (h, s, b)
        assert b"gateway, a peer CDN or a surrogate" in b, b
    assert env.csp("PUT", "/csp/v1/services/x", service(host="b.example", ccid="b1"), token=OTHER)[0] == 201


def test_a_surrogate_never_takes_its_own_authority_for_a_content_host(env):
    """Reproduction 2: an upstream publishes a service whose host is the
    surrogate listener's own host:port. Viewers who reach the surrogate by
    its own authority name their content host in the path: they get that
    content, never the service claiming the surrogate's name, whose origin
    is never contacted."""
    good = ChunkOrigin({"/vod/m1/seg_1.ts": b"the real content " * 50})
    evil = ChunkOrigin({"/video.example.com/vod/m1/seg_1.ts": b"EVIL" * 50, "/vod/m1/seg_1.ts": b"EVIL" * 50})
    try:
        csp2 = second_upstream(env)
        sp, sop = free_port(), free_port()
        doc = json.loads(service(host="127.0.0.1:%d" % sp, ccid="m1"))
        doc["paths"][0]["path-pattern"]["pattern"] = "/*"
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % evil.port]
        s, _, b = http("PUT", csp2 + "/csp/v1/services/grab", json.dumps(doc), token="csp-evil-second-upstream-token")
        assert s == 201, b  # that uCDN does not know our surrogate: it publishes
        real = json.loads(service(ccid="m1"))
        real["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % good.port]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(real))[0] == 201
        env.start_daemon("dcdn-se", two_upstream_surrogate(env, sp, sop), binary="dcdn")
        res = lambda u: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (
            sop, urllib.parse.quote(u, safe="")), token=OP_TOKEN)
        assert wait_for(lambda: res("http://127.0.0.1:%d/x" % sp)[0] == 200, timeout=10)  # loaded: it is there
        assert wait_for(lambda: res("http://video.example.com/vod/m1/x")[0] == 200, timeout=10)
        auth = "127.0.0.1:%d" % sp
        s, h, b = raw_get(sp, "/video.example.com/vod/m1/seg_1.ts", host=auth)
        assert s == 200 and b == b"the real content " * 50, (s, b[:40])
        s, h, b = raw_get(sp, "/vod/m1/seg_1.ts", host=auth)
        assert s == 404 and b"EVIL" not in b, (s, b)
        s, h, b = raw_get(sp, "/vod/m1/seg_1.ts", host="127.0.0.1.:%d" % sp)
        assert s == 404, s
        assert evil.hits == {}, evil.hits
    finally:
        good.stop()
        evil.stop()


# --------------------------------------------------------------------------
# 4. CCIDs, Purge-IDs, auth groups and session cookies are one CSP's

def test_ccids_purge_ids_and_auth_groups_belong_to_one_csp_and_so_do_its_purges(env):
    restart_ucdn(env, lambda u: harness.fan_out(u, env.ports["dpeer"]))
    a = json.loads(service(ccid="m1"))
    a["metadata"].append({"generic-metadata-type": "CDNIGW.PurgeIdentifier",
                          "generic-metadata-value": {"purge-id": "pid-a"}})
    assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(a))[0] == 201
    coll = {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1-col", "manifest": harness.MASTER,
            "purge_id": "pid-col", "auth_group": "grp-a"}
    assert harness.put_collection(env, "c1", coll)[0] == 201
    assert env.csp("PUT", "/csp/v1/services/b", service(host="b.example", ccid="b1"), token=OTHER)[0] == 201
    before = env.csp("GET", "/csp/v1/services/b", token=OTHER)[2]
    # the other CSP cannot take any of them, in a collection or in its metadata
    bc = {"service": "b", "path": "/b/master.m3u8", "ccid": "b-col", "manifest": harness.MASTER}
    for change, what in (({"ccid": "m1"}, b'CCID \\"m1\\"'), ({"ccid": "m1-col"}, b'CCID \\"m1-col\\"'),
                         ({"purge_id": "pid-a"}, b'Purge-ID \\"pid-a\\"'),
                         ({"purge_id": "pid-col"}, b"Purge-ID"), ({"auth_group": "grp-a"}, b"auth group")):
        s, _, b = harness.put_collection(env, "bc", dict(bc, **change), token=OTHER)
        assert s == 409 and what in b and b"another CSP" in b, (change, s, b)
    s, _, b = env.csp("PUT", "/csp/v1/services/b", service(host="b.example", ccid="m1-col"), token=OTHER)
    assert s == 409 and b"m1-col" in b, b
    assert env.csp("GET", "/csp/v1/services/b", token=OTHER)[2] == before  # unchanged
    # its purges may name only its own hosts and CCIDs
    purge = lambda body, token=OTHER: env.csp("POST", "/csp/v1/purges", json.dumps(body), token=token)
    for body in ({"content.ccids": ["m1"]}, {"content.ccids": ["b1", "m1-col"]},
                 {"metadata.urls": ["http://video.example.com/vod/m1/a.ts"]},
                 {"content.urls": ["https://VIDEO.example.com:443/vod/m1/a.ts"]},
                 {"content.patterns": [{"pattern": "http://video.example.com/*"}]},
                 {"content.patterns": [{"pattern": "http://*.example.com/*"}]},
                 {"metadata.patterns": [{"pattern": "http://video.example.com/vod/*"}]}):
        s, _, b = purge(body)
        assert s == 403, (body, s, b)
    assert purge({"content.ccids": ["b1"], "content.urls": ["http://b.example/x.ts"]})[0] == 201
    assert purge({"content.ccids": ["m1", "m1-col"]}, token=CSP_TOKEN)[0] == 201
    # claims end with their last object: the collection gone, its CCID is free
    assert env.csp("DELETE", "/csp/v1/collections/c1")[0] == 204
    s, _, b = harness.put_collection(env, "bc", dict(bc, ccid="m1-col", purge_id="pid-col", auth_group="grp-a"),
                                 token=OTHER)
    assert s == 201, b
    assert harness.put_collection(env, "c1", coll)[0] == 409  # now the other's


def test_a_session_cookie_of_one_csp_never_opens_another_csps_content(env):
    """Reproduction 4: the other CSP names its collection after A's host, so
    its session cookie would name the collection A's ungrouped content is
    in. Cookies are scoped to the CSP whose content started them."""
    other_key = os.path.join(env.dir, "other.jwk")
    with open(other_key, "w") as f:
        f.write(harness.ctl("key", "generate", "ec", "other-1").stdout)
    with open(other_key + "s", "w") as f:
        f.write(harness.ctl("key", "public", other_key).stdout)
    keys = signing_env(env, lambda u, d: u["csp_tokens"][1].update({"uri_signing_keys": other_key + "s"}))
    signed = lambda pat, grouping: {"path-pattern": {"pattern": pat}, "path-metadata": {"metadata": grouping + [
        {"generic-metadata-type": "MI.UriSigning", "generic-metadata-value": {"enforce": True}}]}}
    a = json.loads(service())
    a["paths"] = [signed("/vod/ug/*", [])]  # A's content without MI.Grouping: its collection is its host
    assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(a))[0] == 200
    b = json.loads(service(host="b.example", ccid="video.example.com"))
    b["paths"] = [signed("/vod/b/*", [{"generic-metadata-type": "MI.Grouping",
                                       "generic-metadata-value": {"ccid": "video.example.com"}}])]
    assert env.csp("PUT", "/csp/v1/services/b", json.dumps(b), token=OTHER)[0] == 201
    assert routed(env)
    now = int(time.time())
    tok = sign(other_key, iss="other", exp=now + 600, cdniuc="regex:http://b\\.example/vod/b/.*")
    s, h, _ = raw_get(env.ports["udel"], "/vod/b/master.m3u8?URISigningPackage=" + tok, host="b.example")
    assert s == 302 and "CDNISession=" in h.get("set-cookie", ""), (s, h)
    cookie = h["set-cookie"].split(";")[0]
    # the cookie opens the other CSP's own content ...
    assert raw_get(env.ports["udel"], "/vod/b/seg_1.ts", host="b.example", headers={"Cookie": cookie})[0] == 302
    # ... and nothing of A's, although the names match
    s, _, body = raw_get(env.ports["udel"], "/vod/ug/seg_1.ts", headers={"Cookie": cookie})
    assert s == 403, (s, body)
    # A's own viewer, with A's token, is served as before
    at = sign(keys["csp"][0], iss="acme-issuer", exp=now + 600, cdniuc="regex:http://video\\.example\\.com/vod/ug/.*")
    assert raw_get(env.ports["udel"], "/vod/ug/seg_1.ts?URISigningPackage=" + at)[0] == 302


# --------------------------------------------------------------------------
# 5. one canonical target: no spelling skips URI signing

SPELLINGS = ("/vod/x/../m1/seg_1.ts", "/vod/%6d1/seg_1.ts", "/vod//m1/seg_1.ts", "/./vod/m1/seg_1.ts",
             "/vod/%2e%2e/vod/m1/seg_1.ts", "/vod/m3/../m1/seg_1.ts", "/vod/m1/./seg_1.ts", "/vod/%2E%2e/vod/m1/seg_1.ts",
             "//vod///m1/seg_1.ts", "/vod/m1/x/%2e%2E/seg_1.ts")


def test_no_spelling_of_a_signed_path_skips_uri_signing_at_any_hop(env):
    keys = signing_env(env)
    o = ChunkOrigin({"/vod/m1/seg_1.ts": b"protected" * 100})
    try:
        doc = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])["service"]
        doc["host"] = "video.example.com"
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % o.port]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] == 200
        sp, sop = free_port(), free_port()
        signed_dcdn(env, keys, sp, sop)
        hops = (("uCDN router", env.ports["udel"], "", "video.example.com"),
                ("dCDN router", env.ports["ddel"], "", "video.example.com"),
                ("surrogate", sp, "/video.example.com", "127.0.0.1:%d" % sp))
        for name, port, prefix, host in hops:
            for t in SPELLINGS:
                s, h, b = raw_get(port, prefix + t, host=host)
                assert s == 403 and h["content-type"] == "application/problem+json", (name, t, s, b)
            for t, why in (("/vod/m1%2fseg_1.ts", b"%2F"), ("/vod/m1%2Fseg_1.ts", b"%2F"),
                           ("/vod/m1%5cseg_1.ts", b"\\\\"), ("/vod/m1%00.ts", b"NUL")):
                s, h, b = raw_get(port, prefix + t, host=host)
                assert s == 400 and why in b, (name, t, s, b)
        assert o.hits == {}, o.hits
        # a valid token covers the resource, whatever the spelling; what is
        # asked of the source is the canonical path
        now = int(time.time())
        csp = sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=now + 600, cdniuc=harness.M1)
        s, h, _ = raw_get(env.ports["udel"], "/vod/x/../%6d1//seg_1.ts?URISigningPackage=" + csp)
        assert s == 302 and "/video.example.com/vod/m1/seg_1.ts?" in h["location"], h
        ut = sign(keys["ucdn"][0], iss="ucdn-it", aud="dcdn-it", exp=now + 600,
                  cdniuc="regex:http://127\\.0\\.0\\.1:%d/video\\.example\\.com/vod/m1/.*" % sp)
        s, h, b = raw_get(sp, "/video.example.com/vod/./x/../m1/seg_1.ts?URISigningPackage=" + ut,
                          host="127.0.0.1:%d" % sp)
        assert s == 200 and b == b"protected" * 100, (s, b[:60])
        assert list(o.hits) == ["/vod/m1/seg_1.ts"], o.hits
        # the hash form: the token names the canonical URI, the request another spelling
        import base64
        import hashlib
        canon = "http://127.0.0.1:%d/video.example.com/vod/m1/seg_1.ts" % sp
        hv = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
        ht = sign(keys["ucdn"][0], iss="ucdn-it", aud="dcdn-it", exp=now + 600, cdniuc="hash:sha-256;" + hv)
        s, _, _ = raw_get(sp, "/video.example.com/vod/m1//seg_1.ts?URISigningPackage=" + ht, host="127.0.0.1:%d" % sp)
        assert s == 200, s
        s, _, _ = raw_get(sp, "/video.example.com/vod/m1/seg_2.ts?URISigningPackage=" + ht, host="127.0.0.1:%d" % sp)
        assert s == 403, s
        # refusals are logged without the token, a path-style one too
        bad = "e30.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
        s, _, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts;URISigningPackage=%s" % bad)
        assert s == 403, s
        time.sleep(0.2)
        assert "URI signing: request refused" in env.log("ucdn")
        assert bad not in env.log("ucdn") and ut not in env.log("dcdn-se"), "a token in the log"
    finally:
        o.stop()


# --------------------------------------------------------------------------
# 6. nothing is fetched outside the egress policy

class HostilePeer(LoopbackServer):
    """A peer CDN's endpoints as a hostile peer would answer them: its
    logging feed names files and archive pages on another host, its CI/T
    interface answers with a trigger Location on another host."""

    def __init__(self, elsewhere):
        outer = self
        self.hits = []
        feed = ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
                '<title>logs</title><id>urn:uuid:00000000-0000-4000-8000-000000000001</id>'
                '<updated>2026-01-01T00:00:00Z</updated>'
                '<link rel="prev-archive" href="%s/archive"/>'
                '<entry><title>f</title><id>urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66</id>'
                '<updated>2026-01-01T00:00:00Z</updated><content src="%s/f.log.gz" type="application/gzip"/>'
                '</entry></feed>' % (elsewhere, elsewhere)).encode()

        class H(LoopbackServer.Quiet):
            def do_GET(self):
                outer.hits.append(("GET", self.path))
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", str(len(feed)))
                self.end_headers()
                self.wfile.write(feed)

            def do_POST(self):
                outer.hits.append(("POST", self.path))
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(201)
                self.send_header("Location", elsewhere + "/triggers/1")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.serve(H)


def test_nothing_is_fetched_outside_the_egress_policy(env):
    """Reproduction 6, every way in: a CSP's origin_url, the sources a
    peer's metadata names, the two-step router's manifest source, a peer's
    feed links and trigger Location. The internal servers (one on another
    loopback address, one on 127.0.0.1 at a port the policy does not name)
    must never see a request."""
    internal, local = Internal("127.0.0.9"), Internal("127.0.0.1")
    origin = Origin(harness.MASTER)
    media = ChunkOrigin({"/vod/m1/seg_1.ts": b"ok" * 10})
    hostile = HostilePeer("http://127.0.0.9:%d" % internal.port)
    try:
        allow = {"allow": ["127.0.0.1:%d" % origin.port, "127.0.0.1:%d" % media.port]}

        def tweak(u):
            u["egress"] = allow
            harness.fan_out(u, env.ports["dpeer"])
            u["peers"].append({"id": "hostile", "token": "peer-hostile-integration-token",
                               "ri_token": "ri-hostile-integration-token",
                               "li_feed_url": "http://127.0.0.1:%d/li/v1/feed" % hostile.port,
                               "ci_url": "http://127.0.0.1:%d/triggers" % hostile.port})
            u["collector"] = {"poll_s": 1}
        restart_ucdn(env, tweak)
        env.stop("dcdn")
        d = env.dcdn_config()
        d["egress"] = allow
        d["capabilities"]["capabilities"][2]["capability-value"]["metadata"].append("CDNIGW.HASManifest")
        env.start_daemon("dcdn", d)
        # a CSP's origin_url: refused at PUT when its form is suspect, at the socket otherwise
        assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
        assert routed(env)
        for i, url in enumerate(("http://2130706433:%d/x.m3u8", "http://127.1:%d/x.m3u8", "http://0x7f000001:%d/x.m3u8",
                                 "http://user:pw@127.0.0.1:%d/x.m3u8", "ftp://127.0.0.1:%d/x.m3u8",
                                 "gopher://127.0.0.1:%d/_x")):
            s, _, b = harness.put_collection(env, "bad%d" % i, {"service": "vod1", "path": "/vod/m1/b%d.m3u8" % i,
                                                           "ccid": "m1", "origin_url": url % local.port})
            assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.origin_url", (url, s, b)
        for i, url in enumerate(("http://127.0.0.9:%d/x.m3u8" % internal.port, "http://localhost:%d/x.m3u8" % local.port,
                                 "http://[::ffff:127.0.0.1]:%d/x.m3u8" % local.port,
                                 "http://127.0.0.1:%d/x.m3u8" % local.port)):
            assert harness.put_collection(env, "c%d" % i, {"service": "vod1", "path": "/vod/m1/c%d.m3u8" % i, "ccid": "m1",
                                                       "origin_url": url})[0] == 201
            s, _, b = raw_get(env.ports["udel"], "/vod/m1/c%d.m3u8" % i)
            assert s in (502, 504) and b"INTERNAL" not in b, (url, s, b)
        assert harness.put_collection(env, "ok", {"service": "vod1", "path": "/vod/m1/ok.m3u8", "ccid": "m1",
                                              "origin_url": "http://127.0.0.1:%d/m.m3u8" % origin.port})[0] == 201
        assert raw_get(env.ports["udel"], "/vod/m1/ok.m3u8")[0] == 200 and origin.hits == 1
        assert "egress refused" in env.log("ucdn")
        # a source named in metadata: the surrogate refuses it (502 with the reason), the allowed one serves
        harness.surrogate_env(env, ["127.0.0.1:%d" % media.port], extra={"egress": allow})
        for ep, status in (("127.0.0.9:%d" % internal.port, 502), ("localhost:%d" % local.port, 502),
                           ("[::ffff:127.0.0.1]:%d" % local.port, 502), ("127.0.0.1:%d" % media.port, 200)):
            doc = json.loads(service())
            doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = [ep]
            assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] == 200
            q = urllib.parse.quote("http://video.example.com/vod/m1/seg_1.ts", safe="")
            assert wait_for(lambda: ep in http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (
                env.ports["sop"], q), token=OP_TOKEN)[2].decode(), timeout=5)
            s, h, b = harness.sget(env, "/vod/m1/seg_1.ts")
            assert s == status and b"INTERNAL" not in b, (ep, s, b)
            if status == 502:
                assert b"egress" in b, b
        # acquisition-auth may not set the Host (nor any header that frames or routes the request)
        for name in ("Host", "content-length", "Transfer-Encoding", "Range", "If-None-Match", "Proxy-Authorization",
                     "X Bad"):
            doc = json.loads(service())
            doc["metadata"][0]["generic-metadata-value"]["sources"][0]["acquisition-auth"] = {
                "auth-type": "CDNIGW.HeaderAuth", "auth-value": {"header-name": name, "header-value": "127.0.0.9"}}
            s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))
            assert s == 422 and "acquisition-auth" in json.loads(b)["errors"][0]["path"], (name, s, b)
        # the two-step router's manifest source
        doc = json.loads(service())
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.9:%d" % internal.port]
        doc["metadata"].append({"generic-metadata-type": "CDNIGW.HASManifest",
                                "generic-metadata-value": {"format": "hls", "rewrite": "two-step"}})
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] == 200
        assert wait_for(lambda: "HASManifest" in json.dumps(env.resolve("http://video.example.com/vod/m1/i.m3u8")[1]),
                        timeout=5)
        s, _, b = raw_get(env.ports["ddel"], "/vod/m1/index.m3u8")
        assert s == 504 and b"INTERNAL" not in b, (s, b)
        # a peer's feed links and trigger Location: only on that peer's own origin
        s, h, b = env.csp("POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
        assert s == 201, b
        loc = h["Location"]
        st = wait_for(lambda: (lambda v: v if {x["dcdn"]: x for x in v["dcdns"]}["hostile"].get("status") == "failed"
                                else None)(json.loads(env.csp("GET", loc)[2])), timeout=10)
        assert st, env.csp("GET", loc)[2]
        slot = {x["dcdn"]: x for x in st["dcdns"]}["hostile"]
        assert "not on its CI/T origin" in slot["last_error"], slot
        assert wait_for(lambda: any(h_[1] == "/li/v1/feed" for h_ in hostile.hits), timeout=5), hostile.hits
        logs = wait_for(lambda: (lambda v: v if v["quarantine"] else None)(
            json.loads(http("GET", "http://127.0.0.1:%d/v1/logs" % env.ports["uop"], token=OP_TOKEN)[2])), timeout=5)
        assert logs and "another origin" in json.dumps(logs["quarantine"]), logs
        time.sleep(1.5)  # another poll, another purge poll: still nothing elsewhere
        assert internal.hits == [] and local.hits == [], (internal.hits, local.hits)
        assert media.hits == {"/vod/m1/seg_1.ts": 1}, media.hits
    finally:
        for srv in (internal, local, origin, media, hostile):
            srv.stop()


class SlowPeer(LoopbackServer):
    """A dCDN's CI/T interface that accepts a trigger and keeps it active."""

    def __init__(self):
        outer = self
        self.polls = []

        class H(LoopbackServer.Quiet):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(201)
                self.send_header("Location", "/triggers/1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                outer.polls.append(time.time())
                b = json.dumps({"status": "active", "ctime": 1, "mtime": 1, "etime": 0,
                                "trigger": {"type": "preposition"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/cdni; ptype=ci-trigger-status")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        self.serve(H)


def test_trigger_polls_back_off_and_a_removed_dcdns_part_ends_failed(env):
    slow = SlowPeer()
    try:
        gone = free_port()  # nothing listens: the purge waits for this dCDN

        def tweak(u):
            harness.fan_out(u, slow.port)
            u["peers"].append({"id": "gone", "token": "peer-gone-integration-token-x",
                               "ri_token": "ri-gone-integration-token-xx",
                               "ci_url": "http://127.0.0.1:%d/triggers" % gone})
        u = restart_ucdn(env, tweak)
        assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
        s, h, b = env.csp("POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
        assert s == 201, b
        loc = h["Location"]
        time.sleep(4)
        polls = [t for t in slow.polls]
        # 100 ms after each change, then twice as long each time: a handful
        # in 4 s, not one every 100 ms
        assert 3 <= len(polls) <= 9, len(polls)
        gaps = [b_ - a_ for a_, b_ in zip(polls, polls[1:])][1:]  # from the first unchanged answer on
        assert all(g2 >= g1 * 1.5 for g1, g2 in zip(gaps, gaps[1:])), gaps
        v = json.loads(env.csp("GET", loc)[2])
        assert v["status"] == "active" and {x["dcdn"]: x for x in v["dcdns"]}["gone"]["status"] == "pending", v
        # the operator removes the dCDN: its part of the request ends, failed, and says why
        env.stop("ucdn")
        u["peers"] = [p for p in u["peers"] if p["id"] != "gone"]
        env.start_daemon("ucdn", u)
        v = wait_for(lambda: (lambda x: x if {d["dcdn"]: d for d in x["dcdns"]}["gone"]["status"] == "failed"
                              else None)(json.loads(env.csp("GET", loc)[2])), timeout=5)
        assert v, env.csp("GET", loc)[2]
        assert "no longer configured" in {d["dcdn"]: d for d in v["dcdns"]}["gone"]["last_error"], v
    finally:
        slow.stop()


# --------------------------------------------------------------------------
# 7. slow clients

def metric(env, port, name, labels):
    text = http("GET", "http://127.0.0.1:%d/metrics" % port, token=OP_TOKEN)[2].decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.split()[-1])
    return 0.0


def test_clients_that_trickle_request_heads_cannot_hang_a_listener(env):
    """Reproduction 7: many connections from one address, each sending one
    header line now and then. Past the per-address cap they are refused at
    once; those let in are closed when their head is overdue, whatever
    trickles in; a viewer elsewhere is answered all along."""
    restart_ucdn(env, lambda u: u.update({"limits": {"max_body_bytes": 65536, "max_connections": 400,
                                                     "header_timeout_s": 2, "max_connections_per_ip": 50}}))
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert routed(env)
    port = env.ports["udel"]
    socks, stop = [], threading.Event()
    for _ in range(300):
        s = socket.socket()
        s.bind(("127.0.0.5", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /vod/m1/seg_1.ts HTTP/1.1\r\nHost: video.example.com\r\n")
        socks.append(s)

    def trickle():
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            stop.wait(0.5)
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        t0 = time.time()
        worst = 0.0
        while time.time() - t0 < 4:  # a viewer on another address, meanwhile
            a = time.time()
            c = socket.create_connection(("127.0.0.1", port), timeout=3, source_address=("127.0.0.6", 0))
            c.sendall(b"GET /vod/m1/seg_1.ts HTTP/1.1\r\nHost: video.example.com\r\nConnection: close\r\n\r\n")
            got = c.recv(100)
            c.close()
            assert got.startswith(b"HTTP/1.1 302"), got
            worst = max(worst, time.time() - a)
            time.sleep(0.2)
        assert worst < 1.0, worst
        # by now every trickling connection was shut: refused at once, or its head overdue
        closed = 0
        for s in socks:
            try:
                s.settimeout(0.5)
                closed += s.recv(100) == b""
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
        assert closed == len(socks), (closed, len(socks))
        refused = metric(env, env.ports["uop"], "cdni_http_connections_refused_total", 'listener="delivery"')
        assert refused >= 250, refused
        assert metric(env, env.ports["uop"], "cdni_http_head_timeouts_total", 'listener="delivery"') >= 50
    finally:
        stop.set()
        for s in socks:
            s.close()
    # and the listener still answers at once
    assert raw_get(port, "/vod/m1/seg_1.ts")[0] == 302
    # spread over many addresses, under each one's cap, they fill the listener:
    # near its limit, a connection that waited a second for its head is shed
    socks = []
    for i in range(450):  # more than the listener's 400
        s = socket.socket()
        s.bind(("127.0.1.%d" % (1 + i % 10), 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    try:
        time.sleep(0.3)
        for s in socks:
            try:
                s.send(b"GET /vod/m1/seg_1.ts HTTP/1.1\r\n")
            except OSError:
                pass
        a = time.time()
        c = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.6", 0))
        c.sendall(b"GET /vod/m1/seg_1.ts HTTP/1.1\r\nHost: video.example.com\r\nConnection: close\r\n\r\n")
        got = c.recv(100)
        c.close()
        assert got.startswith(b"HTTP/1.1 302") and time.time() - a < 2.5, (got, time.time() - a)
        assert wait_for(lambda: metric(env, env.ports["uop"], "cdni_http_connections_shed_total",
                                       'listener="delivery"') >= 300, timeout=5)
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# 8. rate limits

def test_each_csps_writes_and_purges_are_rate_limited_across_instances(env):
    """Reproduction 8: a burst of purges is taken up to the CSP's burst,
    then refused with 429 and Retry-After, whichever uCDN instance it
    reaches; another CSP's budget is its own."""
    def tweak(u):
        harness.fan_out(u, env.ports["dpeer"])
        u["csp_limits"] = {"purges_per_s": 2, "purges_burst": 10, "writes_per_s": 1, "writes_burst": 5}
        u["csp_tokens"][1]["limits"] = {"purges_per_s": 50, "purges_burst": 50}
    u = restart_ucdn(env, tweak)
    second = json.loads(json.dumps(u))  # a second instance of the same uCDN, on ports of its own
    second["listeners"] = {k: {"bind": "127.0.0.1", "port": free_port()} for k in ("csp", "peer", "operator")}
    env.start_daemon("ucdn-b", second, binary="ucdn")
    csp_b = "http://127.0.0.1:%d" % second["listeners"]["csp"]["port"]
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert env.csp("PUT", "/csp/v1/services/b", service(host="b.example", ccid="b1"), token=OTHER)[0] == 201
    body = json.dumps({"content.ccids": ["m1"]})
    got = []
    for i in range(40):
        if i % 2:
            s, h, b = http("POST", csp_b + "/csp/v1/purges", body, token=CSP_TOKEN)
        else:
            s, h, b = env.csp("POST", "/csp/v1/purges", body)
        got.append(s)
        if s == 429:
            assert int(h["Retry-After"]) >= 1 and h["Content-Type"] == "application/problem+json", h
    assert set(got) == {201, 429}, got
    assert 10 <= got.count(201) <= 13, got  # the burst, and what the rate refilled meanwhile
    assert got[:10] == [201] * 10, got
    # the other CSP's own budget
    ob = json.dumps({"content.ccids": ["b1"]})
    assert all(env.csp("POST", "/csp/v1/purges", ob, token=OTHER)[0] == 201 for _ in range(30))
    # writes too
    ws = [env.csp("PUT", "/csp/v1/services/w%d" % i, service(host="w%d.example" % i, ccid="w%d" % i))[0]
          for i in range(10)]
    assert ws[:4] == [201] * 4 and 429 in ws, ws
    n = metric(env, env.ports["uop"], "cdni_csp_rate_limited_total", 'csp="acme",class="purges"')
    n += metric(env, second["listeners"]["operator"]["port"], "cdni_csp_rate_limited_total",
                'csp="acme",class="purges"')
    assert n == got.count(429), (n, got.count(429))
    # time refills the bucket
    time.sleep(1.1)
    assert env.csp("POST", "/csp/v1/purges", body)[0] == 201


# --------------------------------------------------------------------------
# 9. refused at the door rather than failing later

def test_bad_publications_are_refused_when_made_not_when_served(env):
    restart_ucdn(env, lambda u: u["metadata"].update({"extra_types": ["ACME.Deep"]}))
    # a DASH MPD with a DOCTYPE: refused at PUT (it would be refused when served)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    mpd = ('<?xml version="1.0"?>\n<!DOCTYPE MPD [<!ENTITY x "y">]>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">'
           '<Period><AdaptationSet><Representation id="1"><BaseURL>a/</BaseURL></Representation></AdaptationSet>'
           '</Period></MPD>')
    s, _, b = harness.put_collection(env, "d1", {"service": "vod1", "path": "/vod/m1/d.mpd", "ccid": "m1", "manifest": mpd})
    assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.manifest" and b"DOCTYPE" in b, (s, b)
    ok = mpd.replace('<!DOCTYPE MPD [<!ENTITY x "y">]>\n', "")
    assert harness.put_collection(env, "d1", {"service": "vod1", "path": "/vod/m1/d.mpd", "ccid": "m1",
                                          "manifest": ok})[0] == 201
    # a service nested deeper than its readers take: refused, not stored unreadable
    def deep(n):
        doc = json.loads(service(host="deep.example", ccid="deep"))
        doc["metadata"].append({"generic-metadata-type": "ACME.Deep", "generic-metadata-value": {"v": "DEEP"}})
        return json.dumps(doc).replace('"DEEP"', "[" * n + '"x"' + "]" * n)
    s, _, b = env.csp("PUT", "/csp/v1/services/deep", deep(2000))
    assert s == 422 and b"nested too deeply" in b, (s, b[:300])
    assert env.csp("GET", "/csp/v1/services/deep")[0] == 404
    assert env.csp("PUT", "/csp/v1/services/deep", deep(60))[0] == 201
    assert wait_for(lambda: env.resolve("http://deep.example/vod/m1/a.ts")[0] == 200, timeout=5)
    # billing days that do not exist
    for day in ("2026-02-30", "2026-13-01", "2026-04-31", "2026-1-1", "20260101"):
        s, _, b = env.csp("GET", "/csp/v1/billing?from=%s&to=2026-12-31" % day)
        assert s == 400 and b"problem" not in b and json.loads(b)["status"] == 400, (day, s, b)
    assert env.csp("GET", "/csp/v1/billing?from=2024-02-29&to=2024-03-01")[0] == 200


def test_a_source_header_cut_by_a_bare_cr_is_a_502_never_a_cached_redirect(env):
    o = ChunkOrigin({"/vod/m1/seg_1.ts": b"x" * 100})
    o.redirects["/vod/m1/moved.ts"] = "http://elsewhere.example/x.ts\rX-Injected: yes"
    try:
        harness.surrogate_env(env, ["127.0.0.1:%d" % o.port])
        for _ in range(2):
            s, h, b = harness.sget(env, "/vod/m1/moved.ts")
            assert s == 502 and "x-injected" not in h and b"malformed header" in b, (s, h, b)
        assert o.hits["/vod/m1/moved.ts"] == 2, o.hits  # never cached
        o.redirects["/vod/m1/fine.ts"] = "http://elsewhere.example/x.ts"
        s, h, _ = harness.sget(env, "/vod/m1/fine.ts")
        assert s == 302 and h["location"] == "http://elsewhere.example/x.ts", (s, h)
    finally:
        o.stop()


def test_a_connection_one_upstreams_policy_opened_is_never_used_for_another(env):
    """Two upstreams name the same source endpoint; only the first's egress
    policy allows its address. With one acquisition thread (one libcurl
    handle, one connection cache), the second's request must not ride the
    connection the first one opened."""
    media = ChunkOrigin({"/vod/m1/a.ts": b"a" * 100, "/vod/m1/b.ts": b"b" * 100})
    try:
        csp2 = second_upstream(env)
        doc = json.loads(service(host="evil.example", ccid="e1"))
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % media.port]
        assert http("PUT", csp2 + "/csp/v1/services/e", json.dumps(doc), token="csp-evil-second-upstream-token")[0] == 201
        doc = json.loads(service())
        doc["metadata"][0]["generic-metadata-value"]["sources"][0]["endpoints"] = ["127.0.0.1:%d" % media.port]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] == 201
        sp, sop = free_port(), free_port()
        # public addresses only, but for what an upstream's own policy allows
        cfg = two_upstream_surrogate(env, sp, sop, {"acquisition": {"threads": 1}}, egress={})
        cfg["upstreams"][0]["egress"] = {"allow": ["127.0.0.1:%d" % media.port]}
        env.start_daemon("dcdn-se", cfg, binary="dcdn")
        res = lambda u: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (
            sop, urllib.parse.quote(u, safe="")), token=OP_TOKEN)[0]
        assert wait_for(lambda: res("http://evil.example/vod/m1/b.ts") == 200 and
                        res("http://video.example.com/vod/m1/a.ts") == 200, timeout=10)
        s, _, b = raw_get(sp, "/vod/m1/a.ts")
        assert s == 200 and b == b"a" * 100, (s, b)
        s, _, b = raw_get(sp, "/vod/m1/b.ts", host="evil.example")
        assert s == 502 and b"egress" in b, (s, b)
        assert media.hits == {"/vod/m1/a.ts": 1}, media.hits
    finally:
        media.stop()
