"""A dCDN that is Apache Traffic Server (Debian's trafficserver 9.2 with the
uri_signing plugin from trafficserver-experimental-plugins) on loopback:
the uCDN redirects to it (HTTP-I) with tokens minted under the peer's
signing profile, and Traffic Server, not our code, verifies them. With the
"ats" profile every token the uCDN hands on is one the plugin accepts; with
"rfc9246" the per-URL (hash) and one-time (jti) tokens are refused, which
is why the profile exists. run.py runs these with the rest."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import harness
from harness import (PEER2_TOKEN, ChunkOrigin, Skip, ctl, dcdn_capabilities, explain, free_port, http,
                 put_collection, raw_get, sample_title_files, sign, signing_env, token_in, wait_for)

PLUGIN = "/usr/lib/trafficserver/modules/uri_signing.so"
ATS_ID = "dcdn-ats"


class TrafficServer:
    """traffic_server in a runroot of its own under dir: one remap rule,
    http://127.0.0.1:port/video.example.com/ to the origin, behind the
    uri_signing plugin that trusts issuer iss with the oct JWK key."""

    def __init__(self, dir, port, origin_port, key, iss):
        self.dir = os.path.join(dir, "ats")
        etc, self.logdir = os.path.join(self.dir, "etc"), os.path.join(self.dir, "log")
        for d in ("etc", "log", "run", "cache"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        shutil.copytree("/etc/trafficserver/body_factory", os.path.join(etc, "body_factory"))
        layout = {"prefix": "/usr", "exec_prefix": "/usr", "bindir": "/usr/bin", "sbindir": "/usr/sbin",
                  "includedir": "/usr/include", "libdir": "/usr/lib/trafficserver",
                  "libexecdir": "/usr/lib/trafficserver/modules", "sysconfdir": etc,
                  "datadir": os.path.join(self.dir, "cache"), "cachedir": os.path.join(self.dir, "cache"),
                  "localstatedir": os.path.join(self.dir, "run"), "runtimedir": os.path.join(self.dir, "run"),
                  "logdir": self.logdir}
        self.runroot = os.path.join(self.dir, "runroot.yaml")
        with open(self.runroot, "w") as f:
            f.write("".join("%s: %s\n" % kv for kv in layout.items()))
        records = {"proxy.config.http.server_ports": ("STRING", "%d" % port),
                   "proxy.config.admin.user_id": ("STRING", "#-1"),  # stay the user that runs the test
                   "proxy.config.url_remap.remap_required": ("INT", "1"),
                   "proxy.config.reverse_proxy.enabled": ("INT", "1"),
                   "proxy.config.exec_thread.autoconfig": ("INT", "0"),
                   "proxy.config.exec_thread.limit": ("INT", "1"),
                   "proxy.config.cache.ram_cache.size": ("INT", "4194304"),
                   "proxy.config.http.cache.http": ("INT", "1"),
                   "proxy.config.diags.debug.enabled": ("INT", "1"),
                   "proxy.config.diags.debug.tags": ("STRING", "uri_signing"),
                   "proxy.config.diags.output.diag": ("STRING", "E")}
        files = {
            "records.config": "".join("CONFIG %s %s %s\n" % (k, t, v) for k, (t, v) in records.items()),
            "storage.config": "%s 16M\n" % os.path.join(self.dir, "cache"),
            "remap.config": "map http://127.0.0.1:%d/video.example.com/ http://127.0.0.1:%d/ "
                            "@plugin=uri_signing.so @pparam=uri_signing.json\n" % (port, origin_port),
            "uri_signing.json": json.dumps({iss: {"id": ATS_ID, "renewal_kid": key["kid"], "strip_token": True,
                                                  "keys": [{k: key[k] for k in ("alg", "kid", "kty", "k")}]}}),
            "ip_allow.yaml": "ip_allow:\n  - apply: in\n    ip_addrs: 127.0.0.0/8\n    action: allow\n"
                             "    methods: [GET, HEAD]\n",
        }
        for name in ("plugin.config", "logging.yaml", "hosting.config", "parent.config", "socks.config",
                     "splitdns.config", "ssl_multicert.config", "strategies.yaml", "volume.config", "cache.config",
                     "sni.yaml"):
            files.setdefault(name, "")
        for name, text in files.items():
            with open(os.path.join(etc, name), "w") as f:
                f.write(text)
        self.out = open(os.path.join(self.dir, "traffic_server.out"), "wb")
        self.proc = subprocess.Popen(["traffic_server"], stdout=self.out, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, TS_RUNROOT=self.runroot), start_new_session=True)
        self.port = port

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return self.proc.poll() is None
            except OSError:
                return False
        assert wait_for(up, timeout=20), self.log()[-3000:]

    def log(self):
        with open(os.path.join(self.dir, "traffic_server.out"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def get(url, headers=None):
    """(status, body) of a GET that does not follow redirects."""
    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    try:
        with urllib.request.build_opener(NoFollow).open(urllib.request.Request(url, headers=headers or {}),
                                                        timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def claims_of(tok):
    payload = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def ats_env(env, profile):
    """Both CDNs signing; a second peer, dcdn-ats, whose delivery is Traffic
    Server and whose tokens the uCDN mints with the oct key the plugin
    holds, under profile; the peer advertises HTTP-I itself (FCI push and
    heartbeat, as a third-party dCDN would). Returns (origin, ats, keys)."""
    if not shutil.which("traffic_server") or not os.path.exists(PLUGIN):
        raise Skip("Apache Traffic Server with its uri_signing plugin is not installed "
                   "(apt-get install trafficserver trafficserver-experimental-plugins)")
    o = ChunkOrigin(sample_title_files())
    port = free_port()
    key_path = os.path.join(env.dir, "ats-k1.jwk")
    with open(key_path, "w") as f:
        f.write(ctl("key", "generate", "oct", "k1").stdout)
    key = json.load(open(key_path))

    def tweak(u, d):
        u["peers"].append({"id": ATS_ID, "token": PEER2_TOKEN, "priority": 0,
                           "delivery_url": "http://127.0.0.1:%d" % port, "audience": ATS_ID,
                           "uri_signing_key": key_path, "uri_signing": {"profile": profile}})
    keys = signing_env(env, tweak)
    ats = TrafficServer(env.dir, port, o.port, key, "ucdn-it")
    caps = dcdn_capabilities()
    caps["capabilities"][0]["capability-value"]["delivery-protocols"] = ["http/1.1"]
    caps["capabilities"][1]["capability-value"]["redirection-modes"] = ["HTTP-I"]
    caps["capabilities"][2]["capability-value"]["metadata"].append("MI.UriSigning")
    fci = "http://127.0.0.1:%d/fci/v1/" % env.ports["peer"]
    assert http("PUT", fci + "capabilities", json.dumps(caps), token=PEER2_TOKEN)[0] == 204
    assert http("POST", fci + "heartbeat", '{"load": 0}', token=PEER2_TOKEN)[0] == 204
    assert wait_for(lambda: explain(env, "127.0.0.1").get("selected") == ATS_ID), explain(env, "127.0.0.1")
    return o, ats, keys


def uri_hash(uri):
    return "hash:sha-256;" + base64.urlsafe_b64encode(hashlib.sha256(uri.encode()).digest()).rstrip(b"=").decode()


def redirect(env, target):
    s, h, b = raw_get(env.ports["udel"], target)
    assert s == 302, (s, b)
    return h["location"]


def test_traffic_server_dcdn_accepts_every_token_minted_with_the_ats_profile(env):
    """Per-URL (hash), one-time (jti), client-bound (cdniip) and renewing
    (cdnistt 2) CSP tokens, and a master rewritten toward Traffic Server:
    each redirect's token passes the plugin and the object comes from the
    origin through it; a token moved to another URL, another audience's
    token, and a tampered one are refused by Traffic Server."""
    o, ats, keys = ats_env(env, "ats")
    try:
        csp = keys["csp"][0]
        now = int(time.time())
        seg = "/vod/m1/720p/seg_001.ts"
        body = o.files[seg]
        cases = {
            "hash": {"cdniuc": uri_hash("http://video.example.com" + seg)},
            "one-time": {"cdniuc": uri_hash("http://video.example.com" + seg), "jti": "ats-once-1"},
            "client-bound": {"cdniuc": "regex:http://video\\.example\\.com/vod/m1/.*", "cdniip": "127.0.0.1"},
            "renewing": {"cdniuc": "regex:http://video\\.example\\.com/vod/m1/.*", "cdnistt": 2, "cdniets": 40},
        }
        locs = {}
        for name, extra in cases.items():
            tok = sign(csp, iss="acme-issuer", aud="ucdn-it", exp=now + 600, **extra)
            loc = redirect(env, seg + "?URISigningPackage=" + tok)
            assert loc.startswith("http://127.0.0.1:%d/video.example.com%s?URISigningPackage=" % (ats.port, seg)), loc
            c = claims_of(token_in(loc))
            assert c["cdniuc"].startswith("regex:") and c["aud"] == ATS_ID and c["iss"] == "ucdn-it", (name, c)
            assert not {"jti", "cdniip", "cdnicrit"} & set(c) and c.get("cdnistt") in (None, 0, 1), (name, c)
            if name == "renewing":
                assert now + 35 <= c["exp"] <= int(time.time()) + 40, c
            s, b = get(loc)
            assert s == 200 and b == body, (name, s, b[:200], ats.log()[-2000:])
            locs[name] = loc
        assert o.hits.get(seg, 0) >= 1  # through Traffic Server, from the origin, token stripped
        # the per-URL token opens that URL and no other at Traffic Server
        moved = locs["hash"].replace("seg_001.ts", "seg_002.ts")
        assert get(moved)[0] == 403
        tok = token_in(locs["hash"])
        forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
        assert get(locs["hash"].replace(tok, forged))[0] == 403
        other = json.dumps({"iss": "ucdn-it", "aud": "someone-else", "exp": now + 60,
                            "cdniuc": "regex:http://127\\.0\\.0\\.1:%d/.*" % ats.port})
        k1 = os.path.join(env.dir, "ats-k1.jwk")
        wrong_aud = ctl("token", "sign", "--key", k1, "--claims", other).stdout.strip()
        assert get("http://127.0.0.1:%d/video.example.com%s?URISigningPackage=%s" % (ats.port, seg, wrong_aud))[0] == 403
        assert get("http://127.0.0.1:%d/video.example.com%s" % (ats.port, seg))[0] == 403
        # a master the uCDN serves rewritten toward Traffic Server: each
        # variant URI carries a token the plugin takes
        master = open(os.path.join(harness.ROOT, "examples/master.m3u8")).read()
        assert put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                          "manifest": master})[0] == 201
        tok = sign(csp, iss="acme-issuer", aud="ucdn-it", exp=now + 600,
                   cdniuc="regex:http://video\\.example\\.com/vod/m1/.*")
        s, h, b = raw_get(env.ports["udel"], "/vod/m1/master.m3u8?URISigningPackage=" + tok)
        assert s == 200, (s, b)
        variants = [l for l in b.decode().splitlines() if l and not l.startswith("#")]
        variants += re.findall(r'URI="([^"]+)"', b.decode())
        # a third party's URI is left alone, and gets no token of ours
        assert "https://ads.thirdparty.example/m1.json" in variants, variants
        variants.remove("https://ads.thirdparty.example/m1.json")
        assert len(variants) == 3, variants
        for v in variants:
            assert v.startswith("http://127.0.0.1:%d/video.example.com/vod/m1/" % ats.port), v
            s, vb = get(v)
            assert s == 200 and vb.startswith(b"#EXTM3U"), (v, s, vb[:200])
    finally:
        ats.stop()
        o.stop()
    # a profile nobody knows is a configuration error naming its field
    bad = env.ucdn_config()
    bad["peers"][0]["uri_signing"] = {"profile": "akamai"}
    path = os.path.join(env.dir, "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    r = subprocess.run([os.path.join(harness.BIN, "ucdn"), "-c", path], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "$.peers[0].uri_signing.profile" in r.stderr, r.stderr


def test_traffic_server_refuses_what_the_rfc9246_profile_mints_for_it(env):
    """The same peer under the default profile: the hash-form and one-time
    tokens the uCDN then hands on are refused by Traffic Server (403), while
    a regex token still passes - what the issue found, and why the profile
    is per peer."""
    o, ats, keys = ats_env(env, "rfc9246")
    try:
        csp, now, seg = keys["csp"][0], int(time.time()), "/vod/m1/720p/seg_002.ts"
        for extra, want in (({"cdniuc": uri_hash("http://video.example.com" + seg)}, 403),
                            ({"cdniuc": "regex:http://video\\.example\\.com/vod/m1/.*", "jti": "ats-once-2"}, 403),
                            ({"cdniuc": "regex:http://video\\.example\\.com/vod/m1/.*"}, 200)):
            tok = sign(csp, iss="acme-issuer", aud="ucdn-it", exp=now + 600, **extra)
            loc = redirect(env, seg + "?URISigningPackage=" + tok)
            assert get(loc)[0] == want, (extra, claims_of(token_in(loc)))
    finally:
        ats.stop()
        o.stop()
