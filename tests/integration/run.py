#!/usr/bin/env python3
"""Integration tests: real ucdn and dcdn daemons (the sanitizer build), a real
redis-server per CDN on private ports, real HTTP on loopback. No mocks.

Run through `make integration` (BIN_DIR names the binaries). Prints one line
per test and a closing "N passed, N failed" line; exits non-zero on failure.
"""
import http.server as httpd
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("BIN_DIR", "bin"))
CSP_TOKEN = "csp-acme-integration-token"
PEER_TOKEN = "peer-dcdn-integration-token"
OP_TOKEN = "operator-integration-token"
RI_TOKEN = "ri-ucdn-integration-token"
LI_FEED_EXT_NS = "urn:uuid:887dab30-8116-45ab-8ed8-559c20cab05a"  # interfaces/li_feed.h
PEER2_TOKEN = "peer-dcdn2-integration-token"
SURROGATE_A = "http://se-a.dcdn.test:8080"


def dcdn_capabilities(prefixes=("127.0.0.0/8",)):
    return {"capabilities": [
        {"capability-type": "FCI.DeliveryProtocol",
         "capability-value": {"delivery-protocols": ["http/1.1", "https/1.1"]},
         "footprints": [{"footprint-type": "ipv4cidr", "footprint-value": list(prefixes)}]},
        {"capability-type": "FCI.RedirectionMode",
         "capability-value": {"redirection-modes": ["HTTP-R", "HTTP-I"]}},
        {"capability-type": "FCI.Metadata",
         "capability-value": {"metadata": ["MI.SourceMetadata", "MI.Grouping", "MI.Cache", "CDNIGW.HASManifest"]}},
        {"capability-type": "FCI.Logging",
         "capability-value": {"record-types": ["cdni_http_request_v1"], "fields": ["s-ccid", "s-sid"]}}]}


def raw_get(port, target, host="video.example.com", headers=None):
    """One GET that does not follow redirects: (status, headers dict, body)."""
    return raw_request(port, "GET", target, headers, host)


def raw_request(port, method, target, headers=None, host="video.example.com"):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Host": host}
    h.update(headers or {})
    c.request(method, target, headers=h)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


_given = set()


def free_port():
    """A port nobody listens on, below the kernel's ephemeral range: a port
    from the ephemeral range can be taken by any outgoing connection (the
    daemons' own, to Redis or to each other) before the daemon binds it."""
    import random
    lo = 20000
    try:
        lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        lo_eph = 32768
    hi = max(lo + 1000, lo_eph)
    for _ in range(1000):
        port = random.randrange(lo, hi)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free port")


def http(method, url, body=None, token=None, headers=None, timeout=5):
    """(status, headers, body bytes) for one request; never raises on 4xx/5xx."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


class Env:
    """One uCDN and one dCDN, each with its own redis-server."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cdni-it-")
        self.procs = {}
        self.ports = {k: free_port() for k in ("redis_u", "redis_d", "csp", "peer", "uop", "dop",
                                               "udel", "dpeer", "ddel")}

    def start_redis(self, name):
        port = self.ports[name]
        # as an operator should run it: every acknowledged write in the
        # append-only file, fsync'd every second (README, "Redis")
        d = os.path.join(self.dir, "redis-" + name)
        os.makedirs(d, exist_ok=True)
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", d],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[name] = p
        assert wait_for(lambda: self._redis_ping(port)), "redis did not start"

    @staticmethod
    def _redis_ping(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def redis_cli(self, name, *args):
        return subprocess.run(["redis-cli", "-p", str(self.ports[name])] + list(args),
                              capture_output=True, text=True).stdout

    def worker(self, name):
        """The pid of a daemon's worker (the master's child that serves)."""
        pid = self.procs[name].pid
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
        return int(kids[-1])

    def stop(self, name, sig=None):
        p = self.procs.pop(name, None)
        if p:
            p.terminate() if sig is None else p.send_signal(sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            return p.returncode
        return None

    def ucdn_config(self):
        return {
            "cdn_id": "ucdn-it", "redis": "redis://127.0.0.1:%d" % self.ports["redis_u"],
            "log_level": "debug", "threads": 2,
            "listeners": {"csp": {"bind": "127.0.0.1", "port": self.ports["csp"]},
                          "peer": {"bind": "127.0.0.1", "port": self.ports["peer"]},
                          "operator": {"bind": "127.0.0.1", "port": self.ports["uop"]},
                          "delivery": {"bind": "127.0.0.1", "port": self.ports["udel"]}},
            "limits": {"max_body_bytes": 65536},
            "csp_tokens": [{"csp": "acme", "token": CSP_TOKEN},
                           {"csp": "other", "token": "csp-other-integration-token"}],
            "peers": [{"id": "dcdn-it", "token": PEER_TOKEN, "priority": 1,
                       "ri_url": "http://127.0.0.1:%d/ri/v1/redirect" % self.ports["dpeer"],
                       "fci_url": "http://127.0.0.1:%d/fci/v1/capabilities" % self.ports["dpeer"],
                       "ri_token": RI_TOKEN}],
            "operator_token": OP_TOKEN,
            "metadata": {"public_url": "http://127.0.0.1:%d" % self.ports["peer"], "max_age_s": 1},
            "routing": {"ri_timeout_ms": 1000, "ri_cache_max_s": 60},
            # the tests' origins listen on 127.0.0.1; 127.0.0.0/8 beyond it stays internal
            "egress": {"allow": ["127.0.0.1"]},
        }

    def dcdn_config(self):
        return {
            "cdn_id": "dcdn-it", "redis": "redis://127.0.0.1:%d" % self.ports["redis_d"],
            "log_level": "debug", "threads": 2,
            "listeners": {"operator": {"bind": "127.0.0.1", "port": self.ports["dop"]},
                          "peer": {"bind": "127.0.0.1", "port": self.ports["dpeer"]},
                          "delivery": {"bind": "127.0.0.1", "port": self.ports["ddel"]}},
            "operator_token": OP_TOKEN,
            "upstreams": [{"id": "ucdn-it",
                           "metadata_url": "http://127.0.0.1:%d/mi/v1/hostindex" % self.ports["peer"],
                           "token": PEER_TOKEN, "refresh_s": 1,
                           "fci_url": "http://127.0.0.1:%d/fci/v1" % self.ports["peer"],
                           "heartbeat_s": 60, "ri_token": RI_TOKEN}],
            "capabilities": dcdn_capabilities(),
            "router": {"coverage_zones": [{"prefix": "127.0.0.0/8", "surrogate": "se-a", "metric": 10},
                                          {"prefix": "127.0.0.0/8", "surrogate": "se-b", "metric": 20},
                                          {"prefix": "0.0.0.0/0", "surrogate": "se-b", "metric": 10}],
                       "surrogate_dead_after_s": 30, "ri_max_age_s": 30},
            "surrogate": {"id": "se-a", "url": SURROGATE_A, "heartbeat_s": 1},
            "egress": {"allow": ["127.0.0.1"]},
        }

    def start_daemon(self, name, config, binary=None):
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            json.dump(config, f)
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        mark = log.tell()
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        p = subprocess.Popen([os.path.join(BIN, binary or name), "-c", path], stdout=log, stderr=log, env=env)
        self.procs[name] = p
        ports = [l["port"] for l in config["listeners"].values()]
        # the master holds the sockets from the start; the worker serves once it logs "... started"
        started = '"msg":"%s started"' % (binary or name)
        assert wait_for(lambda: p.poll() is None and all(self._listening(x) for x in ports) and
                        started in self.log(name)[mark:]), name + " did not start"
        return p

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        failures = []
        # the daemons first, while their Redis still answers their last writes
        for name in sorted(self.procs, key=lambda n: n.startswith("redis")):
            rc = self.stop(name)
            if name.startswith(("ucdn", "dcdn")) and rc not in (0, None):
                failures.append("%s exited %s:\n%s" % (name, rc, self.log(name)[-3000:]))
        shutil.rmtree(self.dir, ignore_errors=True)
        return failures

    # conveniences
    def csp(self, method, path, body=None, token=CSP_TOKEN, headers=None):
        return http(method, "http://127.0.0.1:%d%s" % (self.ports["csp"], path), body, token, headers)

    def peer(self, path, token=PEER_TOKEN, headers=None):
        return http("GET", "http://127.0.0.1:%d%s" % (self.ports["peer"], path), None, token, headers)

    def resolve(self, url):
        q = urllib.parse.quote(url, safe="")
        s, _, b = http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (self.ports["dop"], q),
                       token=OP_TOKEN)
        return s, (json.loads(b) if b else None)


def service(host="video.example.com", ccid="m1", extra_paths=()):
    paths = [{"path-pattern": {"pattern": "/vod/m1/*"},
              "path-metadata": {"metadata": [
                  {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": ccid}}]}}]
    paths.extend(extra_paths)
    return json.dumps({
        "host": host,
        "metadata": [{"generic-metadata-type": "MI.SourceMetadata",
                      "generic-metadata-value": {"sources": [{"endpoints": ["origin.example:8080"],
                                                              "protocol": "http/1.1"}]}}],
        "paths": paths})


def ccid_of(doc):
    for g in doc["metadata"]:
        if g["generic-metadata-type"] == "MI.Grouping":
            return g["generic-metadata-value"].get("ccid")
    return None


def started_env():
    env = Env()
    try:
        env.start_redis("redis_u")
        env.start_redis("redis_d")
        env.start_daemon("ucdn", env.ucdn_config())
        env.start_daemon("dcdn", env.dcdn_config())
    except Exception:
        print(env.log("ucdn")[-2000:] + env.log("dcdn")[-2000:])
        env.close()
        raise
    return env


# --------------------------------------------------------------------------
# Tests. Each gets a fresh pair of CDNs.

def test_published_service_is_resolved_by_the_dcdn(env):
    s, h, b = env.csp("PUT", "/csp/v1/services/vod1", service())
    assert s == 201, (s, b)
    assert h["Location"] == "/csp/v1/services/vod1"
    assert json.loads(b)["version"] >= 1
    s, doc = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        env.resolve("http://video.example.com/vod/m1/seg_001.ts")), timeout=5)
    assert doc["servable"] is True
    assert doc["upstream"] == "ucdn-it"
    assert ccid_of(doc) == "m1"
    assert doc["matched"] == [{"pattern": "/vod/m1/*"}]
    types = [g["generic-metadata-type"] for g in doc["metadata"]]
    assert types == ["MI.SourceMetadata", "MI.Grouping"], types


def test_change_is_seen_by_the_dcdn_within_two_seconds(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service(ccid="v1"))[0] == 201
    assert wait_for(lambda: (lambda r: r[0] == 200 and ccid_of(r[1]) == "v1")(
        env.resolve("http://video.example.com/vod/m1/a.ts")), timeout=5)
    t0 = time.time()
    assert env.csp("PUT", "/csp/v1/services/vod1", service(ccid="v2"))[0] == 200
    seen = wait_for(lambda: (lambda r: r[0] == 200 and ccid_of(r[1]) == "v2")(
        env.resolve("http://video.example.com/vod/m1/a.ts")), timeout=5, step=0.02)
    elapsed = time.time() - t0
    assert seen and elapsed < 2.0, "change took %.2fs" % elapsed


def test_mi_server_serves_rfc8006_tree_with_media_types_etag_and_links(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    s, h, b = env.peer("/mi/v1/hostindex")
    assert s == 200
    assert h["Content-Type"] == "application/cdni; ptype=MI.HostIndex"
    assert "max-age=1" in h["Cache-Control"]
    index = json.loads(b)
    link = index["hosts"][0]["host-metadata"]
    assert index["hosts"][0]["host"] == "video.example.com"
    assert link["type"] == "MI.HostMetadata"
    path = urllib.parse.urlparse(link["href"]).path
    s, h, b = env.peer(path)
    assert s == 200 and h["Content-Type"] == "application/cdni; ptype=MI.HostMetadata"
    hm = json.loads(b)
    plink = hm["paths"][0]["path-metadata"]
    assert plink["type"] == "MI.PathMetadata"
    s, h, b = env.peer(urllib.parse.urlparse(plink["href"]).path)
    assert s == 200 and h["Content-Type"] == "application/cdni; ptype=MI.PathMetadata"
    assert json.loads(b)["metadata"][0]["generic-metadata-value"] == {"ccid": "m1"}
    etag = h["ETag"]
    s, _, _ = env.peer(urllib.parse.urlparse(plink["href"]).path, headers={"If-None-Match": etag})
    assert s == 304


def test_peer_without_or_with_wrong_token_gets_401(env):
    s, h, b = env.peer("/mi/v1/hostindex", token=None)
    assert s == 401
    assert h["WWW-Authenticate"].startswith("Bearer")
    assert h["Content-Type"] == "application/problem+json"
    assert env.peer("/mi/v1/hostindex", token="peer-dcdn-integration-tokem")[0] == 401
    assert env.peer("/mi/v1/hostindex", token=CSP_TOKEN)[0] == 401  # a CSP is not a peer


def test_bad_metadata_gets_problem_naming_the_field_and_previous_version_stays(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service(ccid="good"))[0] == 201
    assert wait_for(lambda: (lambda r: r[0] == 200 and ccid_of(r[1]) == "good")(
        env.resolve("http://video.example.com/vod/m1/a.ts")), timeout=5)
    bad = json.loads(service())
    bad["metadata"][0]["generic-metadata-value"]["sources"][0]["protocol"] = 11
    s, h, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(bad))
    assert s == 422, (s, b)
    assert h["Content-Type"] == "application/problem+json"
    p = json.loads(b)
    assert p["errors"][0]["path"] == "$.metadata[0].generic-metadata-value.sources[0].protocol", p
    unknown = json.loads(service())
    unknown["metadata"].append({"generic-metadata-type": "EXAMPLE.Watermark", "generic-metadata-value": {}})
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", json.dumps(unknown))
    assert s == 422 and json.loads(b)["errors"][0]["path"] == "$.metadata[1].generic-metadata-type"
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", "{not json")
    assert s == 422 and json.loads(b)["errors"][0]["path"] == "$"
    time.sleep(1.5)  # two refresh periods: the dCDN must still hold the good version
    s, doc = env.resolve("http://video.example.com/vod/m1/a.ts")
    assert s == 200 and ccid_of(doc) == "good"
    s, _, b = env.csp("GET", "/csp/v1/services/vod1")
    assert s == 200 and json.loads(b)["version"] == 1


def test_oversized_body_gets_413_and_daemon_stays_up(env):
    big = "x" * 200000
    s, h, b = env.csp("PUT", "/csp/v1/services/vod1", big)
    assert s == 413, s
    assert json.loads(b)["status"] == 413
    assert env.csp("GET", "/csp/v1/services")[0] == 200


def test_csp_crud_versions_ownership_and_host_uniqueness(env):
    assert env.csp("PUT", "/csp/v1/services/a", service(host="a.example"))[0] == 201
    s, h, b = env.csp("PUT", "/csp/v1/services/a", service(host="a.example", ccid="x"))
    assert s == 200 and h["ETag"] == '"v2"'
    # optimistic concurrency
    assert env.csp("PUT", "/csp/v1/services/a", service(host="a.example"), headers={"If-Match": '"v1"'})[0] == 412
    # another service may not take the same host
    s, _, b = env.csp("PUT", "/csp/v1/services/b", service(host="A.EXAMPLE"))
    assert s == 409, (s, b)
    s, _, b = env.csp("GET", "/csp/v1/services")
    assert [x["id"] for x in json.loads(b)["services"]] == ["a"]
    s, _, b = env.csp("GET", "/csp/v1/services/a/versions")
    assert s == 200 and json.loads(b)["previous_versions"][0]["version"] == 1
    # another CSP neither sees nor deletes it
    other = "csp-other-integration-token"
    assert env.csp("GET", "/csp/v1/services/a", token=other)[0] == 404
    assert env.csp("DELETE", "/csp/v1/services/a", token=other)[0] == 404
    assert env.csp("GET", "/csp/v1/services", token=None)[0] == 401
    assert env.csp("DELETE", "/csp/v1/services/a")[0] == 204
    assert env.csp("GET", "/csp/v1/services/a")[0] == 404
    # the host is free again
    assert env.csp("PUT", "/csp/v1/services/b", service(host="a.example"))[0] == 201
    assert env.csp("PATCH", "/csp/v1/services/b")[0] == 405


def test_unknown_mandatory_metadata_from_upstream_makes_content_unservable(env):
    # A uCDN that understands a type the dCDN does not (configured as extra).
    env.stop("ucdn")
    cfg = env.ucdn_config()
    cfg["metadata"]["extra_types"] = ["EXAMPLE.Watermark"]
    env.start_daemon("ucdn", cfg)
    extra = [{"path-pattern": {"pattern": "/marked/*"},
              "path-metadata": {"metadata": [{"generic-metadata-type": "EXAMPLE.Watermark",
                                              "generic-metadata-value": {"id": 1}}]}}]
    assert env.csp("PUT", "/csp/v1/services/vod1", service(extra_paths=extra))[0] == 201
    r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        env.resolve("http://video.example.com/marked/a.ts")), timeout=5)
    assert r[1]["servable"] is False
    assert r[1]["refusal"]["generic-metadata-type"] == "EXAMPLE.Watermark"
    assert env.resolve("http://video.example.com/vod/m1/a.ts")[1]["servable"] is True
    assert env.resolve("http://nowhere.example/x")[0] == 404


def test_redis_down_dcdn_keeps_resolving_and_readyz_says_degraded(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5)
    env.stop("redis_d")
    s, doc = env.resolve("http://video.example.com/vod/m1/a.ts")
    assert s == 200 and ccid_of(doc) == "m1"
    s, _, b = http("GET", "http://127.0.0.1:%d/readyz" % env.ports["dop"])
    assert s == 200 and json.loads(b)["status"] == "degraded", b
    env.start_redis("redis_d")
    assert wait_for(lambda: json.loads(http("GET", "http://127.0.0.1:%d/readyz" % env.ports["dop"])[2])["status"] == "ready")


def test_restarted_dcdn_serves_metadata_from_redis_while_ucdn_is_down(env):
    assert env.csp("PUT", "/csp/v1/services/vod1", service(ccid="kept"))[0] == 201
    assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5)
    assert wait_for(lambda: env.redis_cli("redis_d", "EXISTS", "cdni:dcdn-it:mi:ucdn-it:docs").strip() == "1")
    env.stop("ucdn")
    env.stop("dcdn")
    env.start_daemon("dcdn", env.dcdn_config())
    r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        env.resolve("http://video.example.com/vod/m1/a.ts")), timeout=5)
    assert r and ccid_of(r[1]) == "kept"
    def status():
        s, _, b = http("GET", "http://127.0.0.1:%d/v1/metadata/status" % env.ports["dop"], token=OP_TOKEN)
        st = json.loads(b)["upstreams"][0]
        return st if "last_error" in st else None
    st = wait_for(status, timeout=5)
    assert st and st["loaded"] is True and "Couldn't connect" in st["last_error"], st


def test_ucdn_started_while_redis_is_down_recovers_when_it_comes_up(env):
    env.stop("ucdn")
    env.stop("redis_u")
    env.start_daemon("ucdn", env.ucdn_config())
    s, _, b = http("GET", "http://127.0.0.1:%d/readyz" % env.ports["uop"])
    assert s == 503 and json.loads(b)["status"] == "starting"
    s, _, b = env.csp("PUT", "/csp/v1/services/vod1", service())
    assert s == 503 and json.loads(b)["title"] == "Service Unavailable"
    assert "redis unreachable" in env.log("ucdn") or "redis is down" in env.log("ucdn")
    env.start_redis("redis_u")
    assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/readyz" % env.ports["uop"])[0] == 200, timeout=10)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201


def test_two_ucdn_instances_share_state_through_redis(env):
    cfg = env.ucdn_config()
    for k in ("csp", "peer", "operator", "delivery"):
        cfg["listeners"][k]["port"] = free_port()
    env.ports["uop2"] = cfg["listeners"]["operator"]["port"]
    path = os.path.join(env.dir, "ucdn2.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(env.dir, "ucdn2.log"), "ab")
    p = subprocess.Popen([os.path.join(BIN, "ucdn"), "-c", path], stdout=log, stderr=log)
    env.procs["ucdn2"] = p
    assert wait_for(lambda: env._listening(cfg["listeners"]["peer"]["port"]))
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    url2 = "http://127.0.0.1:%d/mi/v1/hostindex" % cfg["listeners"]["peer"]["port"]
    got = wait_for(lambda: (lambda r: r if r[0] == 200 and json.loads(r[2])["hosts"] else None)(
        http("GET", url2, token=PEER_TOKEN)), timeout=3)
    assert got and json.loads(got[2])["hosts"][0]["host"] == "video.example.com"


def test_operator_endpoints_metrics_and_config_errors(env):
    s, _, b = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["uop"], token=OP_TOKEN)
    assert s == 200 and b"cdni_http_responses_total" in b
    assert http("GET", "http://127.0.0.1:%d/metrics" % env.ports["uop"])[0] == 401
    assert http("GET", "http://127.0.0.1:%d/healthz" % env.ports["dop"])[0] == 200
    bad = env.ucdn_config()
    bad["listeners"]["peer"]["port"] = "8081"
    path = os.path.join(env.dir, "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    r = subprocess.run([os.path.join(BIN, "ucdn"), "-c", path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "$.listeners.peer.port" in r.stderr, r.stderr


def test_cdnictl_service_and_resolve_against_real_daemons(env):
    ctl = os.path.join(BIN, "cdnictl")
    svc = os.path.join(env.dir, "svc.json")
    with open(svc, "w") as f:
        f.write(service(ccid="ctl"))
    ucdn = "http://127.0.0.1:%d" % env.ports["csp"]
    r = subprocess.run([ctl, "service", "put", "vod1", svc, "--ucdn", ucdn, "--token", CSP_TOKEN],
                       capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == "vod1", r.stderr
    r = subprocess.run([ctl, "service", "list", "--ucdn", ucdn, "--token", CSP_TOKEN], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["services"][0]["id"] == "vod1"
    dcdn = "http://127.0.0.1:%d" % env.ports["dop"]

    def resolved():
        r = subprocess.run([ctl, "metadata", "resolve", "--dcdn", dcdn, "--token", OP_TOKEN,
                            "http://video.example.com/vod/m1/x.ts?a=b"], capture_output=True, text=True)
        return r if r.returncode == 0 else None
    r = wait_for(resolved, timeout=5)
    assert r and ccid_of(json.loads(r.stdout)) == "ctl"
    r = subprocess.run([ctl, "service", "get", "nope", "--ucdn", ucdn, "--token", CSP_TOKEN], capture_output=True, text=True)
    assert r.returncode == 1 and "Not Found" in r.stderr
    r = subprocess.run([ctl, "metadata", "check", os.path.join(ROOT, "tests/data/bad/wrong-type.json")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "$.metadata[0].generic-metadata-value.exclude-query-strings" in r.stderr


# --- request routing (FCI, selection, RI, surrogates) ----------------------

def explain(env, ip, url="http://video.example.com/vod/m1/seg_1.ts", port=None):
    s, _, b = http("POST", "http://127.0.0.1:%d/v1/route/explain" % (port or env.ports["uop"]),
                   json.dumps({"url": url, "client_ip": ip}), token=OP_TOKEN)
    assert s == 200, b
    return json.loads(b)


def routed(env, port=None):
    """Wait until the uCDN would send 127.0.0.1 to dcdn-it."""
    return wait_for(lambda: explain(env, "127.0.0.1", port=port).get("selected") == "dcdn-it", timeout=10)


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


# --- URI signing across hops (RFC 9246) -----------------------------------

def ctl(*args):
    return subprocess.run([os.path.join(BIN, "cdnictl")] + list(args), capture_output=True, text=True)


def signing_env(env, tweak=None):
    """Restart both CDNs with URI signing on: the CSP signs with its EC key,
    the uCDN re-signs for the dCDN, the dCDN for its surrogates. tweak(u, d)
    may change both configurations before they start."""
    keys = {}
    for who in ("csp", "ucdn", "dcdn"):
        priv = os.path.join(env.dir, who + ".jwk")
        with open(priv, "w") as f:
            f.write(ctl("key", "generate", "ec", who + "-1").stdout)
        pub = os.path.join(env.dir, who + ".jwks")
        with open(pub, "w") as f:
            f.write(ctl("key", "public", priv).stdout)
        keys[who] = (priv, pub)
    env.stop("ucdn")
    env.stop("dcdn")
    u = env.ucdn_config()
    u["csp_tokens"][0]["uri_signing_keys"] = keys["csp"][1]
    u["uri_signing"] = {"signing_key": keys["ucdn"][0], "session_cookie_s": 300}
    d = env.dcdn_config()
    d["upstreams"][0]["uri_signing_keys"] = keys["ucdn"][1]
    d["uri_signing"] = {"signing_key": keys["dcdn"][0]}
    d["capabilities"]["capabilities"][2]["capability-value"]["metadata"].append("MI.UriSigning")
    if tweak:
        tweak(u, d)
    env.start_daemon("ucdn", u)
    env.start_daemon("dcdn", d)
    signed = {"path-pattern": {"pattern": "/vod/m1/*"},
              "path-metadata": {"metadata": [
                  {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "m1"}},
                  {"generic-metadata-type": "MI.UriSigning",
                   "generic-metadata-value": {"enforce": True, "issuers": ["acme-issuer"]}}]}}
    other = {"path-pattern": {"pattern": "/vod/m2/*"},
             "path-metadata": {"metadata": [
                 {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "m2"}},
                 {"generic-metadata-type": "MI.UriSigning", "generic-metadata-value": {}}]}}
    unsigned = {"path-pattern": {"pattern": "/vod/m3/*"},
                "path-metadata": {"metadata": [
                    {"generic-metadata-type": "MI.UriSigning", "generic-metadata-value": {"enforce": False}}]}}
    doc = json.loads(service())
    doc["paths"] = [signed, other, unsigned]
    assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] == 201
    assert routed(env), explain(env, "127.0.0.1")
    return keys


def sign(key, **claims):
    p = ctl("token", "sign", "--key", key, "--claims", json.dumps(claims))
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip()


def token_in(location):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    return q.get("URISigningPackage", [None])[0]


def verify(pub, location, aud):
    """The claims of the token in location, checked as its receiver would."""
    tok = token_in(location)
    assert tok, location
    bare = location.split("URISigningPackage=")[0].rstrip("?&")
    p = ctl("token", "verify", "--keys", pub, "--aud", aud, "--uri", bare, tok)
    assert p.returncode == 0, (location, p.stdout)
    return json.loads(p.stdout)


M1 = "regex:http://video\\.example\\.com/vod/m1/.*"


def test_uri_signing_each_hop_checks_and_re_signs_with_its_own_key(env):
    keys = signing_env(env)
    now = int(time.time())
    csp = sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=now + 600, cdniuc=M1)
    # no token, a forged one, an expired one, one for another CDN: 403, nothing more said
    for q, why in (("", "no signed JWT"),
                   ("?URISigningPackage=" + sign(keys["ucdn"][0], iss="acme-issuer", exp=now + 600, cdniuc=M1),
                    "signed JWT"),
                   ("?URISigningPackage=" + sign(keys["csp"][0], iss="acme-issuer", exp=now - 1, cdniuc=M1),
                    "expired"),
                   ("?URISigningPackage=" + sign(keys["csp"][0], iss="acme-issuer", aud="x", exp=now + 60,
                                                 cdniuc=M1), "aud")):
        s, h, b = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts" + q)
        assert s == 403 and h["content-type"] == "application/problem+json", (s, b)
        assert b"signed" not in b and b"aud" not in b, b
        assert why in env.log("ucdn"), why
    # content whose MI.UriSigning says enforce false is served unsigned
    s, h, _ = raw_get(env.ports["udel"], "/vod/m3/seg_1.ts")
    assert s == 302 and token_in(h["location"]) is None, h
    # the CSP's token is checked and replaced: the dCDN gets a token of the uCDN's
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts?sid=7&URISigningPackage=" + csp)
    assert s == 302 and h["location"].startswith(SURROGATE_A + "/video.example.com/vod/m1/seg_1.ts?sid=7&"), h
    assert csp not in h["location"]
    c = verify(keys["ucdn"][1], h["location"], "dcdn-it")
    assert c["iss"] == "ucdn-it" and c["aud"] == "dcdn-it" and c["exp"] == now + 600, c
    assert c["cdniuc"].startswith("regex:http://se-a\\.dcdn\\.test:8080/video\\.example\\.com/vod/m1/"), c
    # the dCDN is told, in the metadata, that its tokens come from the uCDN
    s, doc = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        env.resolve("http://video.example.com/vod/m1/seg_1.ts")))
    us = [g for g in doc["metadata"] if g["generic-metadata-type"] == "MI.UriSigning"]
    assert us[0]["generic-metadata-value"]["issuers"] == ["ucdn-it"], doc
    # iterative mode: the dCDN's router checks the uCDN's token and signs its own
    ut = sign(keys["ucdn"][0], iss="ucdn-it", aud="dcdn-it", exp=now + 600, cdniuc=M1)
    s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/seg_2.ts?URISigningPackage=" + ut)
    assert s == 302 and h["location"].startswith(SURROGATE_A + "/video.example.com/vod/m1/seg_2.ts?"), h
    c = verify(keys["dcdn"][1], h["location"], "dcdn-it")
    assert c["iss"] == "dcdn-it" and c["exp"] == now + 600, c
    # the CSP's own token means nothing to the dCDN (it never had the CSP's key)
    s, _, _ = raw_get(env.ports["ddel"], "/vod/m1/seg_2.ts?URISigningPackage=" + csp)
    assert s == 403
    _, _, m = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["uop"], token=OP_TOKEN)
    assert b'cdni_uri_signing_total{result="refused"} 4' in m, m
    assert b'cdni_uri_signing_total{result="authorized",method="token"} 1' in m, m


def test_uri_signing_one_time_tokens_renewal_chain_and_session_cookie(env):
    keys = signing_env(env)
    now = int(time.time())
    # a one-time token works once; the nonce is in the uCDN's Redis until exp
    once = sign(keys["csp"][0], iss="acme-issuer", exp=now + 120, jti="n-1", cdniuc=M1)
    assert raw_get(env.ports["udel"], "/vod/m1/a.ts?URISigningPackage=" + once)[0] == 302
    assert raw_get(env.ports["udel"], "/vod/m1/a.ts?URISigningPackage=" + once)[0] == 403
    assert "JWT ID" in env.log("ucdn") or "jti already used" in env.log("ucdn")
    ttl = int(env.redis_cli("redis_u", "TTL", "cdni:ucdn-it:{jti}:n-1").strip())
    assert 0 < ttl <= 121, ttl
    # renewal by cookie (cdnistt 1): each answer renews the token for cdniets seconds
    ren = sign(keys["csp"][0], iss="acme-issuer", exp=now + 5, cdnistt=1, cdniets=30, cdniuc=M1)
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_1.ts?URISigningPackage=" + ren)
    assert s == 302 and "set-cookie" in h, h
    cookie = h["set-cookie"].split(";")[0]
    assert cookie.startswith("URISigningPackage=") and "Max-Age=30" in h["set-cookie"], h
    for i in range(2):  # the chain: the renewed token alone, in its cookie, is enough
        s, h, _ = raw_get(env.ports["udel"], "/vod/m1/seg_%d.ts" % (i + 2), headers={"Cookie": cookie})
        assert s == 302 and token_in(h["location"]), (s, h)
        renewed = cookie.split("=", 1)[1]
        p = ctl("token", "verify", "--keys", keys["ucdn"][1], "--uri", "http://video.example.com/vod/m1/x.ts",
                renewed)
        c = json.loads(p.stdout)
        assert c["iss"] == "ucdn-it" and now + 29 <= c["exp"] <= int(time.time()) + 30, c
        cookie = h["set-cookie"].split(";")[0]
    # a session cookie: the master playlist authorized by token starts it ...
    tok = sign(keys["csp"][0], iss="acme-issuer", exp=now + 600, cdniuc=M1)
    s, h, _ = raw_get(env.ports["udel"], "/vod/m1/master.m3u8?URISigningPackage=" + tok)
    assert s == 302 and h["set-cookie"].startswith("CDNISession="), h
    assert "HttpOnly" in h["set-cookie"] and "Path=/" in h["set-cookie"], h
    session = h["set-cookie"].split(";")[0]
    # ... and authorizes the media playlist and the segments of collection m1, token-less
    for target in ("/vod/m1/720p/index.m3u8", "/vod/m1/720p/seg_00001.ts"):
        s, h, _ = raw_get(env.ports["udel"], target, headers={"Cookie": session})
        assert s == 302, (target, s)
        c = verify(keys["ucdn"][1], h["location"], "dcdn-it")
        assert c["cdniuc"].startswith("hash:sha-256;") and now + 299 <= c["exp"] <= int(time.time()) + 300, c
    # but nothing of another collection (m2: MI.UriSigning {} enforces), and a
    # tampered cookie is nothing
    assert raw_get(env.ports["udel"], "/vod/m2/seg_1.ts", headers={"Cookie": session})[0] == 403
    assert "another collection" in env.log("ucdn")
    forged = session[:-4] + ("AAAA" if not session.endswith("AAAA") else "BBBB")
    assert raw_get(env.ports["udel"], "/vod/m1/720p/seg_2.ts", headers={"Cookie": forged})[0] == 403
    _, _, m = http("GET", "http://127.0.0.1:%d/metrics" % env.ports["uop"], token=OP_TOKEN)
    assert b'cdni_uri_signing_total{result="authorized",method="cookie"} 2' in m, m


def test_cdnictl_manifest_rewrite_offline(env):
    data = os.path.join(ROOT, "tests", "data")
    base = ["manifest", "rewrite", "--base", "https://video.example.com/vod/m1/master.m3u8",
            "--map", "origin.example.com=http://se1.dcdn:8080"]
    p = ctl(*(base + [os.path.join(data, "hls", "master.m3u8")]))
    assert p.returncode == 0, p.stderr
    assert "URI=\"http://se1.dcdn:8080/vod/m1/audio/fr/index.m3u8\"" in p.stdout, p.stdout
    assert "\n720p/index.m3u8\n" in p.stdout and "skd://key-id-1" in p.stdout
    assert p.stderr.strip() == "hls: 9 URIs, 4 rewritten", p.stderr
    p = ctl(*(base + ["--absolute", os.path.join(data, "dash", "relative.mpd")]))
    assert p.returncode == 0 and "<BaseURL>http://se1.dcdn:8080/vod/m1/</BaseURL>" in p.stdout, p.stdout
    bad = ctl(*(base + [os.path.join(data, "rfc9246", "jwks.json")]))
    assert bad.returncode == 1 and "neither an HLS playlist nor a DASH MPD" in bad.stderr, bad.stderr
    assert ctl("manifest", "rewrite", "--map", "a=http://b").returncode == 2


# --- content collections and manifests (RFC 6983 option 3.2) ---------------

MASTER = ("#EXTM3U\n#EXT-X-VERSION:7\n"
          "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/en.m3u8\"\n"
          "#EXT-X-STREAM-INF:BANDWIDTH=2500000\n720p/index.m3u8\n"
          "#EXT-X-STREAM-INF:BANDWIDTH=5000000\nhttp://video.example.com/vod/m1/1080p/index.m3u8\n"
          "#EXT-X-SESSION-DATA:DATA-ID=\"x\",URI=\"https://ads.thirdparty.example/t.json\"\n")


class LoopbackServer:
    """An HTTP server of the test's own on 127.0.0.1, in a thread."""

    class Quiet(httpd.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

    def serve(self, handler):
        import threading
        self.srv = httpd.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class Origin(LoopbackServer):
    """A tiny origin on loopback, for manifests fetched by URL."""

    def __init__(self, body, ctype="application/vnd.apple.mpegurl"):
        outer = self
        self.body, self.hits = body, 0

        class H(LoopbackServer.Quiet):
            def do_GET(self):
                outer.hits += 1
                b = outer.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        self.serve(H)


def put_collection(env, cid, body, token=CSP_TOKEN):
    return env.csp("PUT", "/csp/v1/collections/" + cid, json.dumps(body), token=token)


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


# --- surrogate: delivery, cache, acquisition --------------------------------------------------

class ChunkOrigin(LoopbackServer):
    """An origin for media objects: ETag/Last-Modified, conditional GETs,
    per-path hit counts, optional delay, failure and Cache-Control."""

    def __init__(self, files, cache_control="max-age=60", delay=0.0, headers=None):
        import threading
        outer = self
        self.files, self.cc, self.delay, self.fail = dict(files), cache_control, delay, False
        self.delay_304 = 0.0  # seconds between a conditional request's arrival and its 304
        self.headers = dict(headers or {})
        self.hits, self.conditional, self.lock = {}, 0, threading.Lock()
        self.require, self.redirects = None, {}  # (header, value) asked of every request; path -> Location

        class H(LoopbackServer.Quiet):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.split("?")[0]
                with outer.lock:
                    outer.hits[path] = outer.hits.get(path, 0) + 1
                if outer.fail or (outer.require and self.headers.get(outer.require[0]) != outer.require[1]):
                    self.send_response(500 if outer.fail else 403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = outer.files.get(path)
                if body is None:
                    b = b"not here"
                    self.send_response(404)
                    self.send_header("Cache-Control", "max-age=5")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    self.wfile.write(b)
                    return
                etag = '"%x"' % (hash(body) & 0xffffffff)
                if self.headers.get("If-None-Match") == etag:
                    with outer.lock:
                        outer.conditional += 1
                    time.sleep(outer.delay_304)
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    if outer.cc:
                        self.send_header("Cache-Control", outer.cc)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.apple.mpegurl" if path.endswith(".m3u8")
                                 else "video/mp2t")
                self.send_header("ETag", etag)
                if outer.cc:
                    self.send_header("Cache-Control", outer.cc)
                for k, v in outer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.delay:  # the head first, then the body after a while
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    time.sleep(outer.delay)
                    self.wfile.write(body[len(body) // 2:])
                else:
                    self.wfile.write(body)

        self.serve(H)


def surrogate_env(env, endpoints, cache=None, paths=(), auth=None, logging=None, extra=None):
    """Publishes a service whose sources are endpoints, and starts a
    surrogate-role dcdn sharing the dCDN's Redis. Returns its ports."""
    sources = [{"endpoints": [e], "protocol": "http/1.1"} for e in endpoints]
    if auth:
        for src in sources:
            src["acquisition-auth"] = {"auth-type": "CDNIGW.HeaderAuth",
                                       "auth-value": {"header-name": auth[0], "header-value": auth[1]}}
    doc = {"host": "video.example.com",
           "metadata": [{"generic-metadata-type": "MI.SourceMetadata",
                         "generic-metadata-value": {"sources": sources}},
                        {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "col-1"}}],
           "paths": list(paths)}
    assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] in (200, 201)
    cfg = env.dcdn_config()
    sp, op = free_port(), free_port()
    cfg["listeners"] = {"operator": {"bind": "127.0.0.1", "port": op},
                        "surrogate": {"bind": "127.0.0.1", "port": sp}}
    for k in ("capabilities", "router"):
        cfg.pop(k)
    cfg["upstreams"][0].pop("fci_url")
    if logging is None:
        cfg["upstreams"][0].pop("ri_token")
    else:  # the uCDN pulls its logs from our peer listener with its token
        env.ports["speer"] = free_port()
        cfg["listeners"]["peer"] = {"bind": "127.0.0.1", "port": env.ports["speer"]}
        cfg["logging"] = dict({"dir": os.path.join(env.dir, "logs-se-x"), "rotate_s": 1}, **logging)
    cfg["surrogate"] = {"id": "se-x", "url": "http://127.0.0.1:%d" % sp, "heartbeat_s": 1, "access_log": True,
                        "cache": dict({"dir": os.path.join(env.dir, "cache-se-x")}, **(cache or {})),
                        "freshness": {"age_multiplier": 0.1, "min_ttl_s": 1, "max_ttl_s": 60},
                        "stale_if_error_s": 30}
    cfg.update(extra or {})
    env.start_daemon("dcdn-se", cfg, binary="dcdn")
    env.ports["sop"], env.ports["surr"] = op, sp
    q = urllib.parse.quote("http://video.example.com/vod/m1/x.ts", safe="")
    assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (op, q),
                                 token=OP_TOKEN)[0] == 200, timeout=5)
    return sp, op


def sget(env, target, headers=None):
    return raw_get(env.ports["surr"], target, headers=headers)


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


def log_records(env, port=None):
    """Every record of every file a dcdn's feed lists: (uuids, records)."""
    import xml.etree.ElementTree as ET
    base = "http://127.0.0.1:%d" % (port or env.ports["speer"])
    s, h, b = http("GET", base + "/li/v1/feed", token=RI_TOKEN)
    assert s == 200 and h["Content-Type"] == "application/atom+xml", (s, b)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    uuids, recs = [], []
    # an outsider's reader: feedparser (Debian's, hence its python3) finds every entry with its summary
    fp = subprocess.run(["/usr/bin/python3", "-c", "import feedparser, json, sys; f = feedparser.parse(sys.stdin.buffer"
                         ".read()); print(json.dumps([f.bozo, [(e.id, e.get('summary', '')) for e in f.entries]]))"],
                        input=b, capture_output=True, timeout=30)
    assert fp.returncode == 0, fp.stderr[-500:]
    bozo, fentries = json.loads(fp.stdout)
    assert not bozo and all(sm.startswith("CDNI logging file ") for _, sm in fentries), fentries
    for e in ET.fromstring(b).findall("a:entry", ns):
        uuids.append(e.find("a:id", ns).text)
        src = e.find("a:content", ns).get("src")
        # RFC 4287 §4.1.2: content given by src, so a summary
        assert (e.find("a:summary", ns).text or "").startswith("CDNI logging file " + uuids[-1][9:]), uuids[-1]
        assert e.find("a:content", ns).get("type") == "application/cdni; ptype=logging-file"
        s, h, gz = http("GET", base + src, token=RI_TOKEN)
        assert s == 200 and h["Content-Encoding"] == "gzip", s
        # the entry's length is the file's; its hash (our extension) the file's #SHA256-hash value
        assert e.find("a:link[@rel='enclosure']", ns).get("length") == str(len(gz))
        listed = e.find("{%s}SHA256-hash" % LI_FEED_EXT_NS)
        own = re.search(rb"#SHA256-hash:\t([0-9a-f]{64})\r\n$", gzip.decompress(gz))
        assert listed is not None and own and listed.text == own.group(1).decode(), (listed, own)
        path = os.path.join(env.dir, src.rsplit("/", 1)[1])
        with open(path, "wb") as f:
            f.write(gz)
        r = ctl("log", "verify", path)
        assert r.returncode == 0 and "SHA256-hash verified" in r.stdout, r.stdout + r.stderr
        assert ("urn:uuid:" + src.rsplit("/", 1)[1][:36]) in r.stdout
        recs += [json.loads(l) for l in ctl("log", "parse", path).stdout.splitlines()]
    assert sorted(i for i, _ in fentries) == sorted(uuids), (fentries, uuids)
    return uuids, recs


def test_surrogate_cdni_logs_behind_an_atom_feed_and_through_kill_9(env):
    o = ChunkOrigin({"/vod/m1/l%d.ts" % i: b"l" * (1000 + i) for i in range(30)})
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port], logging={})
        for i in range(3):
            sget(env, "/vod/m1/l%d.ts" % i, headers={"User-Agent": "Player \"1\""})
        sget(env, "/vod/m1/l0.ts")  # a hit
        # the feed needs the uCDN's token
        assert http("GET", "http://127.0.0.1:%d/li/v1/feed" % env.ports["speer"])[0] == 401
        got = wait_for(lambda: (lambda u, r: (u, r) if len(r) == 4 else None)(*log_records(env)), timeout=10)
        assert got, log_records(env)
        uuids, recs = got
        by_uri = {}
        for r in recs:
            by_uri.setdefault(r["u-uri"], []).append(r)
        first = by_uri["http://video.example.com/vod/m1/l0.ts"]
        assert sorted(r["s-cached"] for r in first) == ["0", "1"], first
        r = first[0]
        assert r["s-ccid"] == "col-1" and r["sc-status"] == "200" and r["sc-entity-bytes"] == "1000", r
        assert r["c-groupid"] == "127.0.0.0/24" and r["s-hostname"] == "se-x" and r["cs-method"] == "GET"
        assert r["cs(User-Agent)"] == 'Player "1"' and r["sc-total-bytes"] is None and r["s-uri-signing"] == "000"
        # no token: one client asking for one collection is one session
        sids = {x["s-sid"] for x in recs}
        assert len(sids) == 1 and re.fullmatch(r"[0-9a-f]{16}", sids.pop() or ""), recs
        # kill -9 in the middle: every delivery that completed is in exactly one file
        for i in range(3, 23):
            assert sget(env, "/vod/m1/l%d.ts" % i)[0] == 200
        time.sleep(0.2)  # a record is written right after the last byte goes out
        cfg = json.load(open(os.path.join(env.dir, "dcdn-se.json")))
        env.stop("dcdn-se", signal.SIGKILL)
        env.start_daemon("dcdn-se", cfg, binary="dcdn")
        got = wait_for(lambda: (lambda u, r: (u, r) if len(r) >= 24 else None)(*log_records(env)), timeout=10)
        assert got, len(log_records(env)[1])
        uuids, recs = got
        assert len(recs) == 24 and len(set(uuids)) == len(uuids), (len(recs), uuids)
        uris = sorted(r["u-uri"] for r in recs)
        assert uris.count("http://video.example.com/vod/m1/l7.ts") == 1
    finally:
        o.stop()


def test_router_redirects_are_logged_too(env):
    env.stop("dcdn")
    cfg = env.dcdn_config()
    cfg["logging"] = {"dir": os.path.join(env.dir, "logs-router"), "rotate_s": 1}
    env.start_daemon("dcdn", cfg)
    assert env.csp("PUT", "/csp/v1/services/vod1", service())[0] == 201
    assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/a.ts")[0] == 200, timeout=5)
    s, h, _ = raw_get(env.ports["ddel"], "/vod/m1/seg_9.ts?URISigningPackage=x", headers={"User-Agent": "p"})
    assert s == 302, s
    got = wait_for(lambda: (lambda u, r: r if r else None)(*log_records(env, env.ports["dpeer"])), timeout=10)
    assert got and len(got) == 1, got
    r = got[0]
    assert r["sc-status"] == "302" and r["s-cached"] is None and r["s-ccid"] == "m1", r
    assert r["u-uri"] == "http://video.example.com/vod/m1/seg_9.ts" and "URISigningPackage" not in r["cs-uri"], r

DCDN_PID = "AS64500:1"


def fan_out(ucfg, port):
    """The uCDN sends its CSP's purges as triggers to the dCDN's CI/T at port."""
    ucfg["peers"][0]["ci_url"] = "http://127.0.0.1:%d/triggers" % port
    ucfg["triggers"] = {"cdn_pid": "AS64496:1", "retry_max_s": 1}


def trigger_env(env, origin, dead_after_s):
    """The dCDN router taking triggers, and a surrogate (se-x) executing them
    on content from origin."""
    env.stop("dcdn")
    router = env.dcdn_config()
    router["triggers"] = {"cdn_pid": DCDN_PID}
    router["router"]["surrogate_dead_after_s"] = dead_after_s
    env.start_daemon("dcdn", router)
    surrogate_env(env, ["127.0.0.1:%d" % origin.port], extra={"triggers": {"cdn_pid": DCDN_PID}})


def trigger(env, body, token=RI_TOKEN):
    s, h, b = http("POST", "http://127.0.0.1:%d/triggers" % env.ports["dpeer"], json.dumps(body).encode(),
                   token=token, headers={"Content-Type": "application/cdni; ptype=ci-trigger-command"})
    return s, h, json.loads(b) if b[:1] == b"{" else b


def trigger_status(url, want=None, timeout=10):
    get = lambda: json.loads(http("GET", url, token=RI_TOKEN)[2])
    if want is None:
        return get()
    got = wait_for(lambda: (lambda t: t if t["status"] == want else None)(get()), timeout=timeout)
    assert got, get()
    return got


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


def collector_ucdn(env, name, ports=None):
    """(Re)starts a uCDN instance that collects the surrogate's logs every second."""
    cfg = env.ucdn_config()
    if ports:
        cfg["listeners"] = {k: {"bind": "127.0.0.1", "port": p} for k, p in ports.items()}
    cfg["peers"][0]["li_feed_url"] = "http://127.0.0.1:%d/li/v1/feed" % env.ports["speer"]
    cfg["collector"] = {"poll_s": 1, "archive_dir": os.path.join(env.dir, "archive-" + name)}
    env.stop(name)
    env.start_daemon(name, cfg, binary="ucdn")


def billing(env, query, token=CSP_TOKEN, port=None):
    s, h, b = http("GET", "http://127.0.0.1:%d%s" % (port or env.ports["csp"], query), token=token)
    return s, h, (json.loads(b) if s == 200 and b[:1] == b"{" else b)


def test_ucdn_collects_logs_once_across_instances_refuses_tampered_files_and_exports_billing(env):
    import gzip
    import uuid as uuidm
    segs = {"/vod/m1/720p/s%d.ts" % i: b"v" * (2000 + i) for i in range(3)}
    o = ChunkOrigin(segs)
    try:
        surrogate_env(env, ["127.0.0.1:%d" % o.port], logging={})
        # two uCDN instances collect from the same feed, sharing the uCDN's Redis
        collector_ucdn(env, "ucdn")
        collector_ucdn(env, "ucdn2", {"csp": free_port(), "peer": free_port(), "operator": free_port()})
        for i in range(3):
            assert sget(env, "/vod/m1/720p/s%d.ts" % i)[0] == 200
        assert sget(env, "/vod/m1/720p/s0.ts")[0] == 200  # a hit
        day = time.strftime("%Y-%m-%d", time.gmtime())
        q = "/csp/v1/billing?from=%s&to=%s&group-by=ccid,dcdn" % (day, day)
        got = wait_for(lambda: (lambda r: r if r[0] == 200 and r[2]["rows"] and
                                r[2]["rows"][0]["requests"] >= 4 else None)(billing(env, q)), timeout=20)
        assert got, billing(env, q)
        time.sleep(3)  # both instances polled several more times: still counted once
        s, _, b = billing(env, q)
        total = sum(len(v) for v in segs.values()) + 2000
        assert b["rows"] == [{"ccid": "col-1", "dcdn": "dcdn-it", "requests": 4, "bytes": total, "hits": 1,
                              "redirects": 0}], b
        # another CSP sees none of it; the operator sees it under acme
        assert billing(env, q, token="csp-other-integration-token")[2]["rows"] == []
        s, _, b = billing(env, "/v1/billing?from=%s&to=%s&group-by=csp,host" % (day, day), token=OP_TOKEN,
                          port=env.ports["uop"])
        assert [(r["csp"], r["host"], r["requests"]) for r in b["rows"]] == [("acme", "video.example.com", 4)], b
        # CSV, and one session (one client, one collection) with its representation
        s, h, b = billing(env, "/csp/v1/billing?from=%s&to=%s&group-by=day&format=csv" % (day, day))
        assert s == 200 and h["Content-Type"].startswith("text/csv"), (s, h)
        lines = b.decode().split("\r\n")
        assert lines[0] == "day,requests,bytes,hits,redirects" and lines[1] == "%s,4,%d,1,0" % (day, total), lines
        s, _, b = billing(env, "/csp/v1/billing?from=%s&to=%s&group-by=session" % (day, day))
        assert len(b["rows"]) == 1, b
        ss = b["rows"][0]
        assert ss["chunks"] == 4 and ss["bytes"] == total and ss["ccid"] == "col-1", ss
        assert ss["representations"] == ["/vod/m1/720p/"] and ss["start"] <= ss["end"], ss
        # cdnictl billing export prints the same
        r = ctl("billing", "export", "--ucdn", "http://127.0.0.1:%d" % env.ports["csp"], "--token", CSP_TOKEN,
                "--from", day, "--to", day, "--group-by", "ccid")
        assert r.returncode == 0 and r.stdout.splitlines()[1] == "col-1,4,%d,1,0" % total, r.stdout + r.stderr
        assert ctl("billing", "export", "--ucdn", "http://127.0.0.1:%d" % env.ports["csp"], "--token", CSP_TOKEN,
                   "--from", day, "--to", "2000-01-01").returncode == 1
        # bad queries: problem+json
        s, h, _ = billing(env, "/csp/v1/billing?from=%s&to=%s&group-by=colour" % (day, day))
        assert s == 400 and h["Content-Type"] == "application/problem+json", s
        fdir = os.path.join(env.dir, "logs-se-x", "ucdn-it", "files")
        good = sorted(os.listdir(fdir))[0]
        text = gzip.decompress(open(os.path.join(fdir, good), "rb").read()).decode()
        # the uCDN is away for hours: files sealed meanwhile are in RFC 5005 archive pages, by hour;
        # when it is back, it walks back through them. One such file, sealed two hours ago:
        env.stop("ucdn2")
        env.stop("ucdn")
        import hashlib
        old = str(uuidm.uuid4())
        body = text[:text.index("#SHA256-hash")].replace(good[:36], old)
        body += "#SHA256-hash:\t%s\r\n" % hashlib.sha256(body.encode()).hexdigest()
        path = os.path.join(fdir, old + ".log.gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(body.encode()))
        two_h = time.time() - 7200
        os.utime(path, (two_h, two_h))
        feed = http("GET", "http://127.0.0.1:%d/li/v1/feed" % env.ports["speer"], token=RI_TOKEN)[2].decode()
        hour = time.strftime("%Y%m%d%H", time.gmtime(two_h))
        assert old not in feed and 'href="/li/v1/feed/archive/%s" rel="prev-archive"' % hour in feed, feed
        s, _, page = http("GET", "http://127.0.0.1:%d/li/v1/feed/archive/%s" % (env.ports["speer"], hour),
                          token=RI_TOKEN)
        assert s == 200 and old in page.decode() and b"<fh:archive" in page, page
        # and one sealed just now
        assert sget(env, "/vod/m1/720p/s1.ts")[0] == 200
        assert wait_for(lambda: len(os.listdir(fdir)) == 3, timeout=10), os.listdir(fdir)
        collector_ucdn(env, "ucdn")
        # (the old file's records are dated today: they count on today's bill)
        assert wait_for(lambda: billing(env, q)[2]["rows"][0]["requests"] == 9, timeout=15), billing(env, q)
        # tampered files appear in the dCDN's feed: a record changed after hashing, and broken gzip
        bad1, bad2 = str(uuidm.uuid4()), str(uuidm.uuid4())
        forged = text.replace(good[:36], bad1).replace("\t200\t", "\t206\t", 1)
        assert forged != text.replace(good[:36], bad1)
        with open(os.path.join(fdir, bad1 + ".log.gz"), "wb") as f:
            f.write(gzip.compress(forged.encode()))
        with open(os.path.join(fdir, bad2 + ".log.gz"), "wb") as f:
            f.write(gzip.compress(text.replace(good[:36], bad2).encode())[:-12])
        lg = lambda: json.loads(http("GET", "http://127.0.0.1:%d/v1/logs" % env.ports["uop"], token=OP_TOKEN)[2])
        # (the quarantine listing and the peer's count are two writes: wait for both)
        got = wait_for(lambda: (lambda v: v if len(v["quarantine"]) == 2 and v["peers"][0]["quarantined"] == 2
                                else None)(lg()), timeout=15)
        assert got, lg()
        reasons = {q["file"]: q["reason"] for q in got["quarantine"]}
        assert "SHA256" in reasons[bad1] or "hash" in reasons[bad1], reasons
        assert "gzip" in reasons[bad2], reasons
        peer = got["peers"][0]
        assert peer["dcdn"] == "dcdn-it" and peer["quarantined"] == 2 and peer["records"] == 9, peer
        assert os.path.exists(os.path.join(env.dir, "archive-ucdn", "quarantine", "dcdn-it", bad1 + ".log.gz")) or \
            os.path.exists(os.path.join(env.dir, "archive-ucdn2", "quarantine", "dcdn-it", bad1 + ".log.gz"))
        # never counted
        assert billing(env, q)[2]["rows"][0]["requests"] == 9
        # every verified file is archived once, under its day, by one instance or the other
        archived = [f for n in ("ucdn", "ucdn2") for d, _, fs in os.walk(os.path.join(env.dir, "archive-" + n))
                    for f in fs if "quarantine" not in d]
        published = [f for f in os.listdir(fdir) if f[:36] not in (bad1, bad2)]
        assert sorted(archived) == sorted(published), (archived, published)
        # a file swapped after the dCDN sealed and listed it: the new one is self-consistent (its
        # own #SHA256-hash holds) but is not the file the feed lists, whose entry carries the
        # sealed file's hash (our extension): refused all the same
        env.stop("ucdn")
        before = set(os.listdir(fdir))
        assert sget(env, "/vod/m1/720p/s2.ts")[0] == 200
        # the sealed file, not its .tmp on the way (gzip'd, fsync'd, then renamed)
        sealed_new = lambda: {f for f in set(os.listdir(fdir)) - before if f.endswith(".log.gz")}
        assert wait_for(lambda: len(sealed_new()) == 1, timeout=10), os.listdir(fdir)
        swapped = sealed_new().pop()
        ns = {"a": "http://www.w3.org/2005/Atom"}
        import xml.etree.ElementTree as ET
        feed = ET.fromstring(http("GET", "http://127.0.0.1:%d/li/v1/feed" % env.ports["speer"], token=RI_TOKEN)[2])
        entry = [e for e in feed.findall("a:entry", ns) if e.find("a:id", ns).text == "urn:uuid:" + swapped[:36]]
        listed = entry[0].find("{%s}SHA256-hash" % LI_FEED_EXT_NS).text
        path = os.path.join(fdir, swapped)
        sealed = gzip.decompress(open(path, "rb").read()).decode()
        assert sealed.endswith("#SHA256-hash:\t%s\r\n" % listed)
        body = sealed[:sealed.index("#SHA256-hash")].replace("\t200\t", "\t206\t", 1)
        body += "#SHA256-hash:\t%s\r\n" % hashlib.sha256(body.encode()).hexdigest()
        with open(path, "wb") as f:  # the same file (inode), new bytes
            f.write(gzip.compress(body.encode()))
        assert ctl("log", "verify", path).returncode == 0  # well formed, its own hash holds
        collector_ucdn(env, "ucdn")
        got = wait_for(lambda: (lambda v: v if len(v["quarantine"]) == 3 else None)(lg()), timeout=15)
        assert got, lg()
        reason = {q["file"]: q["reason"] for q in got["quarantine"]}[swapped[:36]]
        assert reason == "the file's #SHA256-hash is not the one its feed entry lists", reason
        assert billing(env, q)[2]["rows"][0]["requests"] == 9
    finally:
        o.stop()


def signed_dcdn(env, keys, sp, sop, router_extra=None, se_peer=None, cors=None, se_tls=None):
    """Restarts the dCDN as a router that checks the uCDN's tokens and sends
    127.0.0.0/8 to surrogate se-x, and starts se-x (its own dcdn: operator
    port sop, surrogate port sp, sharing the router's key and Redis; with
    se_peer, a peer listener for its CDNI logs; cors: origins its surrogate
    listener lets read; se_tls: its surrogate listener's tls, then serving
    on https://127.0.0.1:sp)."""
    env.stop("dcdn")
    router = env.dcdn_config()
    router["upstreams"][0]["uri_signing_keys"] = keys["ucdn"][1]
    router["uri_signing"] = {"signing_key": keys["dcdn"][0], "session_cookie_s": 300}
    router["capabilities"]["capabilities"][2]["capability-value"]["metadata"].append("MI.UriSigning")
    router["router"]["coverage_zones"] = [{"prefix": "127.0.0.0/8", "surrogate": "se-x", "metric": 1}]
    router.pop("surrogate")
    router.update(router_extra or {})
    env.start_daemon("dcdn", router)
    se = json.loads(json.dumps(router))
    se["listeners"] = {"operator": {"bind": "127.0.0.1", "port": sop},
                       "surrogate": {"bind": "127.0.0.1", "port": sp}}
    if cors:
        se["listeners"]["surrogate"]["cors_origins"] = cors
    for k in ("capabilities", "router"):
        se.pop(k)
    se["upstreams"][0].pop("fci_url")
    if se_peer:  # the uCDN pulls this surrogate's logs with its RI token
        se["listeners"]["peer"] = {"bind": "127.0.0.1", "port": se_peer}
        se["logging"] = {"dir": os.path.join(env.dir, "logs-se-x"), "rotate_s": 1}
    else:
        se["upstreams"][0].pop("ri_token")
    se["surrogate"] = {"id": "se-x", "url": "http://127.0.0.1:%d" % sp, "heartbeat_s": 1, "access_log": True,
                       "cache": {"dir": os.path.join(env.dir, "cache-se-x")}}
    if se_tls:
        se["listeners"]["surrogate"]["tls"] = se_tls
        se["surrogate"]["https_url"] = se["surrogate"]["url"] = "https://127.0.0.1:%d" % sp
    env.start_daemon("dcdn-se", se, binary="dcdn")
    assert wait_for(lambda: "se-x" in http("GET", "http://127.0.0.1:%d/v1/surrogates" % env.ports["dop"],
                                           token=OP_TOKEN)[2].decode(), timeout=5)
    assert wait_for(lambda: routed(env), timeout=10), explain(env, "127.0.0.1")


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


def test_cdnictl_log_verify_and_parse(env):
    import gzip
    src = os.path.join(ROOT, "tests/data/rfc7937/figure4.log")
    data = open(src, "rb").read()
    gz = os.path.join(env.dir, "f4.log.gz")
    with open(gz, "wb") as f:
        f.write(gzip.compress(data))
    r = ctl("log", "verify", gz)
    assert r.returncode == 0 and "3 records" in r.stdout and "verified" in r.stdout, r.stdout + r.stderr
    r = ctl("log", "parse", src)
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    assert r.returncode == 0 and len(recs) == 3, r.stderr
    assert recs[2]["u-uri"] == "http://cdni-ucdn.dcdn-1.example.com/video/picture11.mp4"
    assert recs[0]["cs(Referer)"] == "host1.example.com" and recs[2]["s-cached"] == "0"
    bad = os.path.join(env.dir, "bad.log")
    with open(bad, "wb") as f:
        f.write(data.replace(b"6729891", b"6729892"))
    r = ctl("log", "verify", bad)
    assert r.returncode == 1 and "corrupted" in r.stderr, r.stderr
    with open(bad, "wb") as f:
        f.write(gzip.compress(data)[:60])
    r = ctl("log", "verify", bad)
    assert r.returncode == 1 and "truncated" in r.stderr, r.stderr

class Skip(Exception):
    """A test that cannot run on this machine, with the reason."""


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


def browser_missing():
    """Why the browser test cannot run here, or None."""
    if not os.path.exists("/usr/bin/chromium"):
        return "Debian's Chromium is not installed (apt-get install chromium; scripts/deps.sh does it as root)"
    if not shutil.which("node") or not os.path.isdir(os.path.join(ROOT, "node_modules/playwright-core")):
        return "Node.js or playwright-core is missing (npm ci at the top of the tree; make does it)"
    if not shutil.which("ffmpeg"):
        return "ffmpeg is missing (apt-get install ffmpeg), needed for the sample title"
    return None


def sample_title_files():
    """The sample title (make builds it with scripts/sample_title.sh) as {path: bytes}."""
    title = os.path.join(ROOT, "build/sample-title")
    if not os.path.exists(os.path.join(title, "vod/m1/720p/index.m3u8")):
        subprocess.run([os.path.join(ROOT, "scripts/sample_title.sh"), os.path.join(title, "vod/m1"), "8"],
                       check=True)
    files = {}
    for dp, _, fs in os.walk(title):
        for f in fs:
            full = os.path.join(dp, f)
            files["/" + os.path.relpath(full, title)] = open(full, "rb").read()
    return files


def drive(action, **opt):
    """One run of tests/browser/drive.mjs (headless Chromium through playwright-core)."""
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/drive.mjs"), action, json.dumps(opt)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


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


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def all_tests():
    """This file's tests, then those of the files beside it (trust.py, tls.py, players.py, ats.py,
    redis_ha.py), which take their helpers from here."""
    sys.modules.setdefault("run", sys.modules[__name__])
    import ats
    import players
    import redis_ha
    import tls
    import trust
    return TESTS + [v for m in (trust, tls, players, ats, redis_ha) for k, v in vars(m).items()
                    if k.startswith("test_") and getattr(v, "__module__", "") == m.__name__]


def main():
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for t in all_tests():
        if only and t.__name__ not in only:
            continue
        err = None
        t0 = time.time()
        try:
            env = started_env()
        except Exception:
            failed += 1
            print("FAIL %s (set-up)\n%s" % (t.__name__, traceback.format_exc()), flush=True)
            continue
        keep = os.environ.get("KEEP_LOGS")
        try:
            t(env)
        except Skip as e:
            env.close()
            skipped += 1
            print("skip %s: %s" % (t.__name__, e), flush=True)
            continue
        except Exception:
            err = traceback.format_exc()
        if err and keep:
            print(env.log("dcdn")[-4000:])
            print(env.log("dcdn-se")[-6000:])
            print(env.log("ucdn")[-6000:])
        problems = env.close()
        if problems and not err:
            err = "\n".join(problems)
        if err:
            failed += 1
            print("FAIL %s\n%s" % (t.__name__, err), flush=True)
        else:
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.time() - t0), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
