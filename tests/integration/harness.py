#!/usr/bin/env python3
"""The integration tests' harness: real ucdn and dcdn daemons (the sanitizer
build), a real redis-server per CDN on private ports, real HTTP on loopback,
no mocks. Env starts a uCDN and a dCDN (and their Redis) for each test; the
helpers here are the ones several areas share. The tests are in one file per
area beside this one; run.py runs them all, or those named:

    BIN_DIR=build/san/bin python3 tests/integration/run.py [test_name ...]

It prints one line per test and a closing "N passed, N failed" line, and
exits non-zero on failure.
"""
import http.server as httpd
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
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


def explain(env, ip, url="http://video.example.com/vod/m1/seg_1.ts", port=None):
    s, _, b = http("POST", "http://127.0.0.1:%d/v1/route/explain" % (port or env.ports["uop"]),
                   json.dumps({"url": url, "client_ip": ip}), token=OP_TOKEN)
    assert s == 200, b
    return json.loads(b)


def routed(env, port=None):
    """Wait until the uCDN would send 127.0.0.1 to dcdn-it."""
    return wait_for(lambda: explain(env, "127.0.0.1", port=port).get("selected") == "dcdn-it", timeout=10)


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


DCDN_PID = "AS64500:1"


def fan_out(ucfg, port):
    """The uCDN sends its CSP's purges as triggers to the dCDN's CI/T at port."""
    ucfg["peers"][0]["ci_url"] = "http://127.0.0.1:%d/triggers" % port
    ucfg["triggers"] = {"cdn_pid": "AS64496:1", "retry_max_s": 1}


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


class Skip(Exception):
    """A test that cannot run on this machine, with the reason."""


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
