"""Integration tests of TLS: both gateways with every peer listener on
mutual TLS and the delivery listeners on HTTPS, with a throwaway CA made by
scripts/pki.sh (the openssl command line). The clients are curl, openssl
s_client and Python's ssl module; the refusals are what a wrong peer would
try first: no certificate, another peer's, an expired one, and a server
the client does not trust. run.py runs these with the rest."""
import http.client as httpc
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import CSP_TOKEN, OP_TOKEN, PEER_TOKEN, RI_TOKEN, http, service, wait_for


def pki(env):
    d = os.path.join(env.dir, "pki")
    subprocess.run([os.path.join(harness.ROOT, "scripts", "pki.sh"), d, "DNS:video.example.com"], check=True)
    return d


def ctx(d, cert=None, ca="ca.pem"):
    c = ssl.create_default_context(cafile=os.path.join(d, ca))
    if cert:
        c.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + "-key.pem"))
    return c


def https(port, method, path, d, cert=None, token=None, body=None, host="127.0.0.1", headers=None):
    """(status, headers dict, body) over TLS, trusting the test CA."""
    c = httpc.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx(d, cert))
    h = {"Host": host}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


def serve_tls(owner, handler, d, cert):
    """owner.srv: a threaded HTTPS server of the test's own on 127.0.0.1 with
    the pki's certificate `cert`; owner.port its port."""
    import http.server as httpd
    owner.srv = httpd.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + "-key.pem"))
    owner.srv.socket = c.wrap_socket(owner.srv.socket, server_side=True)
    owner.port = owner.srv.server_address[1]
    threading.Thread(target=owner.srv.serve_forever, daemon=True).start()


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"] + list(args),
                       capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def tls_configs(env, d):
    """The default pair, with TLS on every listener but the operators' and
    mutual TLS on the peer listeners; the dCDN known to the uCDN by its
    certificate's name and bearer token, the uCDN to the dCDN by its key."""
    P = env.ports
    cert = {"certificates": [{"cert": os.path.join(d, "server.pem"), "key": os.path.join(d, "server-key.pem")}]}
    mutual = dict(cert, client_ca=os.path.join(d, "ca.pem"))
    u = env.ucdn_config()
    u["listeners"]["peer"]["tls"] = mutual
    u["listeners"]["csp"]["tls"] = json.loads(json.dumps(cert))
    u["listeners"]["delivery"]["tls"] = json.loads(json.dumps(cert))
    u["tls_client"] = {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "ucdn.pem"),
                       "key": os.path.join(d, "ucdn-key.pem")}
    p = u["peers"][0]
    p["client_cert"] = {"san": "dcdn.cdni.test"}
    p["ri_url"] = "https://127.0.0.1:%d/ri/v1/redirect" % P["dpeer"]
    p["fci_url"] = "https://127.0.0.1:%d/fci/v1/capabilities" % P["dpeer"]
    p["ci_url"] = "https://127.0.0.1:%d/triggers" % P["dpeer"]
    p["li_feed_url"] = "https://127.0.0.1:%d/li/v1/feed" % P["dpeer"]
    u["triggers"] = {"cdn_pid": "AS64496:1", "retry_max_s": 1}
    u["collector"] = {"poll_s": 1, "archive_dir": os.path.join(env.dir, "archive")}
    u["metadata"]["public_url"] = "https://127.0.0.1:%d" % P["peer"]
    dc = env.dcdn_config()
    dc["listeners"]["peer"]["tls"] = mutual
    dc["listeners"]["delivery"]["tls"] = json.loads(json.dumps(cert))
    dc["tls_client"] = {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "dcdn.pem"),
                        "key": os.path.join(d, "dcdn-key.pem")}
    up = dc["upstreams"][0]
    up["metadata_url"] = "https://127.0.0.1:%d/mi/v1/hostindex" % P["peer"]
    up["fci_url"] = "https://127.0.0.1:%d/fci/v1" % P["peer"]
    up["heartbeat_s"] = 1
    up["client_cert"] = {"spki": open(os.path.join(d, "ucdn.spki")).read().strip()}
    dc["triggers"] = {"cdn_pid": harness.DCDN_PID}
    dc["logging"] = {"dir": os.path.join(env.dir, "logs-router"), "rotate_s": 1}  # its redirects' CDNI logs
    dc["surrogate"]["https_url"] = "https://se-a.dcdn.test:8443"
    return u, dc


def tls_env(env):
    d = pki(env)
    u, dc = tls_configs(env, d)
    env.stop("dcdn")
    env.stop("ucdn")
    env.start_daemon("ucdn", u)
    env.start_daemon("dcdn", dc)
    return d, u, dc


def csp(env, d, method, path, body=None, token=CSP_TOKEN):
    return https(env.ports["csp"], method, path, d, token=token, body=body,
                 headers={"Content-Type": "application/json"} if body else None)


def metric(env, port, name):
    s, _, b = http("GET", "http://127.0.0.1:%d/metrics" % port, token=OP_TOKEN)
    total = 0.0
    for line in b.decode().splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_cdni_interface_between_the_gateways_runs_over_mutual_tls(env):
    d, u, dc = tls_env(env)
    # CSP API over HTTPS; the dCDN's metadata client fetches it over mutual TLS (MI)
    s, _, b = csp(env, d, "PUT", "/csp/v1/services/vod1", service())
    assert s == 201, b
    assert wait_for(lambda: env.resolve("http://video.example.com/vod/m1/seg_1.ts")[0] == 200, 15), \
        env.log("dcdn")[-3000:]
    # FCI: the dCDN's advertisement and heartbeats reached the uCDN
    assert wait_for(lambda: metric(env, env.ports["dop"], "cdni_fci_push_ok_total") >= 1 or
                    "FCI advertisement accepted" in env.log("dcdn"), 15), env.log("dcdn")[-3000:]
    # RI: an HTTPS viewer is redirected after the uCDN asked the dCDN's RI over mutual TLS
    def redirected():
        s, h, _ = https(env.ports["udel"], "GET", "/vod/m1/seg_1.ts", d, host="video.example.com")
        return h.get("location") if s == 302 else None
    loc = wait_for(redirected, 15)
    assert loc == "https://se-a.dcdn.test:8443/video.example.com/vod/m1/seg_1.ts", (loc, env.log("ucdn")[-3000:])
    # the advertisement named https/1.1: a surrogate serves HTTPS
    def advertised():
        s, _, b = https(env.ports["peer"], "GET", "/fci/v1/capabilities", d, cert="dcdn", token=PEER_TOKEN)
        assert s == 200, b
        return [p for c in json.loads(b)["capabilities"] if c["capability-type"] == "FCI.DeliveryProtocol"
                for p in c["capability-value"]["delivery-protocols"]]
    assert advertised() == ["http/1.1", "https/1.1"]
    # CI/T: a purge fans out to the dCDN over mutual TLS, which takes the trigger
    s, h, b = csp(env, d, "POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
    assert s == 201, b

    def taken():
        v = json.loads(csp(env, d, "GET", h["location"])[2])
        return v if "/triggers/" in (v["dcdns"][0].get("trigger") or "") else None
    got = wait_for(taken, 20)
    assert got and not got["dcdns"][0].get("last_error"), (json.loads(csp(env, d, "GET", h["location"])[2]),
                                                           env.log("dcdn")[-1500:])
    # LI: the uCDN collects the dCDN's CDNI log files over mutual TLS (a viewer of its
    # HTTPS delivery listener makes a record)
    s, h, _ = https(env.ports["ddel"], "GET", "/vod/m1/seg_3.ts", d, host="video.example.com")
    assert s == 302 and h["location"].startswith("https://se-a.dcdn.test:8443/"), (s, h)

    def collected():
        s, _, b = http("GET", "http://127.0.0.1:%d/v1/logs" % env.ports["uop"], token=OP_TOKEN)
        peers = json.loads(b)["peers"] if s == 200 else []
        return peers and peers[0]["files"] >= 1 and peers[0]["records"] >= 1
    assert wait_for(collected, 20), (http("GET", "http://127.0.0.1:%d/v1/logs" % env.ports["uop"],
                                          token=OP_TOKEN)[2], env.log("ucdn")[-2000:])
    # a dCDN whose surrogates serve no HTTPS stops advertising it, and HTTPS viewers are not sent there
    env.stop("dcdn")
    dc["surrogate"].pop("https_url")
    env.start_daemon("dcdn", dc)
    assert wait_for(lambda: advertised() == ["http/1.1"], 15), advertised()
    time.sleep(1.5)  # the uCDN's routing snapshot follows the advertisement
    s, h, b = https(env.ports["udel"], "GET", "/vod/m1/seg_2.ts", d, host="video.example.com")
    assert s != 302 or h["location"].startswith("https://"), (s, h, b)
    # and nothing of it went over plain HTTP: the plain port speaks TLS only
    rc, code, _ = curl("http://127.0.0.1:%d/mi/v1/hostindex" % env.ports["peer"], "-H",
                       "Authorization: Bearer " + PEER_TOKEN)
    assert code != "200", code


def test_a_peer_without_the_right_certificate_gets_an_alert_or_403_never_data(env):
    d, u, dc = tls_env(env)
    assert csp(env, d, "PUT", "/csp/v1/services/vod1", service())[0] == 201
    url = "https://127.0.0.1:%d/mi/v1/hostindex" % env.ports["peer"]
    ca = ["--cacert", os.path.join(d, "ca.pem")]
    auth = ["-H", "Authorization: Bearer " + PEER_TOKEN]

    def cert(n):
        return ["--cert", os.path.join(d, n + ".pem"), "--key", os.path.join(d, n + "-key.pem")]
    # the dCDN, with its certificate and token: data
    rc, code, err = curl(url, *ca, *cert("dcdn"), *auth)
    assert (rc, code) == (0, "200"), (rc, code, err)
    before = metric(env, env.ports["uop"], "cdni_tls_handshake_failures_total")
    # a load balancer's TCP check (connect, close) is no failed handshake
    for _ in range(3):
        socket.create_connection(("127.0.0.1", env.ports["peer"]), timeout=2).close()
    time.sleep(0.5)
    assert metric(env, env.ports["uop"], "cdni_tls_handshake_failures_total") == before
    # no certificate: the handshake fails (TLS 1.3 alert certificate_required)
    rc, code, err = curl(url, *ca, *auth)
    assert rc != 0 and code == "000", (rc, code, err)
    # an expired certificate of the dCDN's name: refused in the handshake
    rc, code, err = curl(url, *ca, *cert("expired"), *auth)
    assert rc != 0 and code == "000", (rc, code, err)
    # a certificate of another CA: refused in the handshake
    rc, code, err = curl(url, *ca, "--cert", os.path.join(d, "rogue.pem"), "--key", os.path.join(d, "rogue-key.pem"),
                         *auth)
    assert rc != 0 and code == "000", (rc, code, err)
    # another peer's valid certificate with the dCDN's token: 403
    rc, code, err = curl(url, *ca, *cert("other"), *auth)
    assert (rc, code) == (0, "403"), (rc, code, err)
    # the dCDN's certificate without the token it also needs: 401
    rc, code, err = curl(url, *ca, *cert("dcdn"))
    assert (rc, code) == (0, "401"), (rc, code, err)
    # openssl s_client too: without a certificate nothing of the MI comes back
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % env.ports["peer"], "-CAfile",
                        os.path.join(d, "ca.pem"), "-quiet"], input="GET /mi/v1/hostindex HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % PEER_TOKEN,
                       capture_output=True, text=True, timeout=20)
    assert "HTTP/1.1 200" not in p.stdout and "hostindex" not in p.stdout.lower(), p.stdout
    # each failure counted, and logged with the client's address and why
    assert wait_for(lambda: metric(env, env.ports["uop"], "cdni_tls_handshake_failures_total") >= before + 4), \
        metric(env, env.ports["uop"], "cdni_tls_handshake_failures_total")
    log = env.log("ucdn")
    assert re.search(r"tls handshake failed.*127\.0\.0\.1", log), log[-3000:]
    assert "expired" in log.lower(), log[-3000:]
    # a peer known by its certificate alone (no token configured) gets in without one
    env.stop("ucdn")
    u["peers"][0].pop("token")
    env.start_daemon("ucdn", u)
    rc, code, err = curl(url, *ca, *cert("dcdn"))
    assert (rc, code) == (0, "200"), (rc, code, err)
    rc, code, err = curl(url, *ca, *cert("other"), *auth)
    assert (rc, code) == (0, "401"), (rc, code, err)


def rewrite(env, name, cfg):
    with open(os.path.join(env.dir, name + ".json"), "w") as f:
        json.dump(cfg, f)


def hup(env, name, want, timeout=30):
    """SIGHUP to the daemon's master; waits for the log line `want` after it."""
    mark = len(env.log(name))
    env.procs[name].send_signal(signal.SIGHUP)
    assert wait_for(lambda: want in env.log(name)[mark:], timeout), env.log(name)[mark:][-3000:]
    return env.log(name)[mark:]


def subject_of(port, sni=None):
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + (["-servername", sni] if sni else [])
    p = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
    m = re.search(r"subject=(.*)", p.stdout)
    return m.group(1) if m else ""


class Load:
    """Viewers and a peer asking without pause while the daemon reloads:
    fresh HTTPS connections to the delivery listener, one kept-alive
    connection, and mutual-TLS requests to the peer listener. Counts
    answers and failures (any error, reset or refused connection)."""

    def __init__(self, env, d, token):
        self.env, self.d, self.token = env, d, token
        self.ok = 0
        self.errors = []
        self.stop_ = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        keep = httpc.HTTPSConnection("127.0.0.1", self.env.ports["udel"], timeout=10, context=ctx(self.d))
        c = ctx(self.d, "dcdn")
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE  # the certificate changes under us on purpose: only answers count here
        plain = ssl.create_default_context()
        plain.check_hostname = False
        plain.verify_mode = ssl.CERT_NONE
        while not self.stop_:
            try:
                keep.request("GET", "/healthz", headers={"Host": "video.example.com"})
                r = keep.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError("keep-alive got %d" % r.status)
                if r.will_close:
                    keep.close()
                    keep = httpc.HTTPSConnection("127.0.0.1", self.env.ports["udel"], timeout=10, context=plain)
                f = httpc.HTTPSConnection("127.0.0.1", self.env.ports["udel"], timeout=10, context=plain)
                f.request("GET", "/healthz", headers={"Host": "video.example.com"})
                r = f.getresponse()
                r.read()
                f.close()
                if r.status != 200:
                    raise RuntimeError("fresh got %d" % r.status)
                p = httpc.HTTPSConnection("127.0.0.1", self.env.ports["peer"], timeout=10, context=c)
                p.request("GET", "/mi/v1/hostindex", headers={"Authorization": "Bearer " + self.token})
                r = p.getresponse()
                r.read()
                p.close()
                if r.status not in (200, 401):  # the token itself changes in one step
                    raise RuntimeError("peer got %d" % r.status)
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is what this counts
                self.errors.append(repr(e))
                keep = httpc.HTTPSConnection("127.0.0.1", self.env.ports["udel"], timeout=10, context=plain)

    def stop(self):
        self.stop_ = True
        self.t.join(20)


def test_sighup_reloads_certificates_peers_and_tokens_without_dropping_a_connection(env):
    d, u, dc = tls_env(env)
    master = env.procs["ucdn"].pid
    assert "CN = cdni-gateway" in subject_of(env.ports["udel"])
    load = Load(env, d, PEER_TOKEN)
    try:
        time.sleep(1)
        # a certificate rotation and a changed peer token, in one reload
        u["listeners"]["delivery"]["tls"]["certificates"] = [
            {"cert": os.path.join(d, "other.pem"), "key": os.path.join(d, "other-key.pem")}]
        u["peers"][0]["token"] = "peer-dcdn-rotated-token-0001"
        rewrite(env, "ucdn", u)
        hup(env, "ucdn", '"reloaded"')
        assert wait_for(lambda: "CN = other" in subject_of(env.ports["udel"]), 10), subject_of(env.ports["udel"])
        peer = "https://127.0.0.1:%d/mi/v1/hostindex" % env.ports["peer"]
        cert = ["--cacert", os.path.join(d, "ca.pem"), "--cert", os.path.join(d, "dcdn.pem"), "--key",
                os.path.join(d, "dcdn-key.pem")]
        assert curl(peer, *cert, "-H", "Authorization: Bearer peer-dcdn-rotated-token-0001")[1] == "200"
        assert curl(peer, *cert, "-H", "Authorization: Bearer " + PEER_TOKEN)[1] == "401"
        # an invalid configuration is refused with its JSON path; the running one stays
        bad = json.loads(json.dumps(u))
        bad["listeners"]["delivery"]["tls"]["certificates"][0]["key"] = os.path.join(d, "server-key.pem")
        rewrite(env, "ucdn", bad)
        out = hup(env, "ucdn", "reload refused")
        assert "$.listeners.delivery.tls" in out, out
        bad = json.loads(json.dumps(u))
        bad["peers"][0]["priority"] = "high"
        rewrite(env, "ucdn", bad)
        out = hup(env, "ucdn", "reload refused")
        assert "$.peers[0].priority" in out, out
        # a listener address changes only with a restart
        bad = json.loads(json.dumps(u))
        bad["listeners"]["operator"]["port"] = harness.free_port()
        rewrite(env, "ucdn", bad)
        hup(env, "ucdn", "listener addresses change only with a restart")
        assert "CN = other" in subject_of(env.ports["udel"])
        assert curl(peer, *cert, "-H", "Authorization: Bearer peer-dcdn-rotated-token-0001")[1] == "200"
        # and back, a second good reload
        rewrite(env, "ucdn", u)
        time.sleep(0.5)
        u["listeners"]["delivery"]["tls"]["certificates"] = [
            {"cert": os.path.join(d, "server.pem"), "key": os.path.join(d, "server-key.pem")}]
        rewrite(env, "ucdn", u)
        hup(env, "ucdn", '"reloaded"')
        assert wait_for(lambda: "CN = cdni-gateway" in subject_of(env.ports["udel"]), 10)
        time.sleep(1)
    finally:
        load.stop()
    assert load.errors == [], load.errors[:5]
    assert load.ok > 20, load.ok
    assert env.procs["ucdn"].pid == master and env.procs["ucdn"].poll() is None
    # the dCDN's MI client, FCI and heartbeats carried on across the reloads
    assert "FCI advertisement accepted" in env.log("dcdn")


def test_sigterm_drains_requests_in_flight_and_exits_0(env):
    o = harness.ChunkOrigin({"/vod/m1/slow.ts": b"s" * 200000}, delay=2.0)
    try:
        sp, op = harness.surrogate_env(env, ["127.0.0.1:%d" % o.port])
        got = {}

        def fetch():
            try:
                got["r"] = harness.raw_get(sp, "/vod/m1/slow.ts")
            except Exception as e:  # noqa: BLE001
                got["e"] = repr(e)
        t = threading.Thread(target=fetch)
        t.start()
        assert wait_for(lambda: o.hits.get("/vod/m1/slow.ts"), 5)
        time.sleep(0.3)  # the answer has begun; its second half is 2 s away
        t0 = time.time()
        env.procs["dcdn-se"].send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # no new connections once it drains
        try:
            socket.create_connection(("127.0.0.1", sp), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        t.join(15)
        assert "r" in got and got["r"][0] == 200 and len(got["r"][2]) == 200000, got.get("e") or got["r"][:2]
        rc = env.procs["dcdn-se"].wait(15)
        assert rc == 0, (rc, env.log("dcdn-se")[-2000:])
        assert time.time() - t0 < 12
        assert refused
        env.procs.pop("dcdn-se")
    finally:
        o.stop()


def test_a_certificate_expiring_within_14_days_is_a_warning_in_the_log_readyz_and_status(env):
    d, u, dc = tls_env(env)
    env.stop("ucdn")
    u["listeners"]["delivery"]["tls"]["certificates"] = [
        {"cert": os.path.join(d, "soon.pem"), "key": os.path.join(d, "soon-key.pem")}]
    env.start_daemon("ucdn", u)
    pat = r'"certificate expires within 14 days".*"listener":"delivery".*soon\.pem'
    assert wait_for(lambda: re.search(pat, env.log("ucdn")), 10), env.log("ucdn")[-2000:]
    assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/readyz" % env.ports["uop"])[0] == 200, 10)
    s, _, b = http("GET", "http://127.0.0.1:%d/readyz" % env.ports["uop"])
    r = json.loads(b)
    assert r["status"] == "ready" and "14 days" in r["warning"], r  # still serving
    soon = [c for c in r["certificates"] if c["listener"] == "delivery"]
    assert soon and soon[0]["expiring"] and 3 <= soon[0]["days_left"] <= 5, r
    assert not [c for c in r["certificates"] if c["listener"] != "delivery" and c["expiring"]], r
    s, _, b = http("GET", "http://127.0.0.1:%d/v1/status" % env.ports["uop"], token=OP_TOKEN)
    assert s == 200 and [c["listener"] for c in json.loads(b)["certificates"] if c["expiring"]] == ["delivery"], b
    # a listener without TLS has nothing to report
    s, _, b = http("GET", "http://127.0.0.1:%d/readyz" % env.ports["dop"])
    assert "warning" not in json.loads(b), b


class StaticTLS(harness.LoopbackServer):
    """The test player's page (build/ui) on an https origin of its own."""

    def __init__(self, d, root):
        import functools
        import http.server as httpd
        h = functools.partial(httpd.SimpleHTTPRequestHandler, directory=root)
        h.log_message = lambda *a: None
        serve_tls(self, h, d, "server")


def test_chromium_plays_the_signed_title_over_https_trusting_the_local_ca(env):
    """hls.js in Chromium, on an https page, plays the CSP-signed master from
    the uCDN's HTTPS delivery listener; the renditions come from the dCDN
    surrogate's HTTPS listener. Chromium trusts the throwaway CA (its NSS
    database), every certificate check on; the token covers https URIs."""
    why = harness.browser_missing()
    if why:
        raise harness.Skip(why)
    o = harness.ChunkOrigin(harness.sample_title_files(), headers={"Access-Control-Allow-Origin": "*"})
    d = pki(env)
    page = StaticTLS(d, os.path.join(harness.ROOT, "build/ui"))
    page_origin = "https://127.0.0.1:%d" % page.port
    cert = {"certificates": [{"cert": os.path.join(d, "server.pem"), "key": os.path.join(d, "server-key.pem")}]}
    sp, sop = harness.free_port(), harness.free_port()

    def tweak(u, dc):
        u["listeners"]["delivery"]["tls"] = cert
        u["listeners"]["delivery"]["cors_origins"] = [page_origin]
    try:
        keys = harness.signing_env(env, tweak)
        rec = json.loads(env.csp("GET", "/csp/v1/services/vod1")[2])
        doc = dict(rec["service"], host=rec["host"])
        doc["metadata"][0]["generic-metadata-value"]["sources"] = [
            {"endpoints": ["127.0.0.1:%d" % o.port], "protocol": "http/1.1"}]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] in (200, 201)
        master = open(os.path.join(harness.ROOT, "examples/master.m3u8")).read()
        assert harness.put_collection(env, "m1", {"service": "vod1", "path": "/vod/m1/master.m3u8", "ccid": "m1",
                                              "manifest": master})[0] == 201
        harness.signed_dcdn(env, keys, sp, sop, cors=[page_origin], se_tls=cert)
        time.sleep(2)  # the router re-advertises https/1.1 once se-x serves HTTPS; the uCDN takes it
        csp = harness.sign(keys["csp"][0], iss="acme-issuer", aud="ucdn-it", exp=int(time.time()) + 600,
                       cdniuc="regex:https://video\\.example\\.com/vod/m1/.*")
        src = "https://video.example.com/vod/m1/master.m3u8?URISigningPackage=" + csp
        player = "%s/player.html?src=%s" % (page_origin, harness.urllib.parse.quote(src, safe=""))
        resolve = "MAP video.example.com:443 127.0.0.1:%d" % env.ports["udel"]
        # over https, the session cookie is Secure
        s_, h_, _ = https(env.ports["udel"], "GET", "/vod/m1/master.m3u8?URISigningPackage=" + csp, d,
                          host="video.example.com")
        assert s_ == 200 and "; Secure" in h_.get("set-cookie", ""), (s_, h_)
        r = harness.drive("play", page=player, resolve=resolve, seconds=3, timeout_s=40, ca=os.path.join(d, "ca.pem"))
        assert r["position"] >= 3 and not [e for e in r["errors"] if e["fatal"]], r
        assert r["requests"][0]["answered"].startswith("https://video.example.com/vod/m1/master.m3u8"), r["requests"]
        segs = [x for x in r["requests"] if x["kind"].endswith("segment")]
        assert segs and all(x["answered"].startswith("https://127.0.0.1:%d/video.example.com/vod/m1/" % sp)
                            and x["bytes"] > 0 for x in segs), r["requests"]
        assert not [c for c in r["console"] if "ERR_CERT" in c or "error" in c.lower()], r["console"]
        # the same page without the CA: Chromium refuses the certificate, nothing plays
        p = subprocess.run(["node", os.path.join(harness.ROOT, "tests/browser/drive.mjs"), "play",
                            json.dumps({"page": player, "resolve": resolve, "seconds": 1, "timeout_s": 8})],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "ERR_CERT_AUTHORITY_INVALID" in p.stderr, (p.returncode, p.stderr[-500:])
    finally:
        page.stop()
        o.stop()


class TLSOrigin(harness.ChunkOrigin):
    """The tests' media origin, over HTTPS with the given certificate."""

    def __init__(self, files, d, cert):
        super().__init__(files)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + "-key.pem"))
        self.srv.socket = c.wrap_socket(self.srv.socket, server_side=True)


def test_https_sources_are_verified_when_acquired(env):
    d = pki(env)
    good = TLSOrigin({"/vod/m1/a.ts": b"a" * 5000}, d, "server")
    rogue = TLSOrigin({"/vod/m1/a.ts": b"r" * 5000}, d, "rogue")
    try:
        for origin, ca, want in ((good, "ca.pem", 200), (rogue, "ca.pem", 502), (good, None, 502)):
            env.stop("dcdn-se")
            doc = {"host": "video.example.com",
                   "metadata": [{"generic-metadata-type": "MI.SourceMetadata", "generic-metadata-value": {
                       "sources": [{"endpoints": ["127.0.0.1:%d" % origin.port], "protocol": "https/1.1"}]}}]}
            assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(doc))[0] in (200, 201)
            cfg = env.dcdn_config()
            sp, op = harness.free_port(), harness.free_port()
            cfg["listeners"] = {"operator": {"bind": "127.0.0.1", "port": op},
                                "surrogate": {"bind": "127.0.0.1", "port": sp}}
            for k in ("capabilities", "router"):
                cfg.pop(k)
            cfg["upstreams"][0].pop("fci_url")
            cfg["upstreams"][0].pop("ri_token")
            cfg["surrogate"] = {"id": "se-x", "url": "http://127.0.0.1:%d" % sp,
                                "cache": {"dir": os.path.join(env.dir, "cache-%d" % sp)}}
            if ca:
                cfg["surrogate"]["acquisition"] = {"ca": os.path.join(d, ca)}
            env.start_daemon("dcdn-se", cfg, binary="dcdn")
            q = harness.urllib.parse.quote("http://video.example.com/vod/m1/a.ts", safe="")
            assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (op, q),
                                         token=OP_TOKEN)[0] == 200, timeout=10)
            before = origin.hits.get("/vod/m1/a.ts", 0)
            s, h, b = harness.raw_get(sp, "/vod/m1/a.ts")
            assert s == want, (origin is good, ca, s, b[:200])
            if want == 200:
                assert b == b"a" * 5000 and origin.hits["/vod/m1/a.ts"] == before + 1
            else:  # nothing was asked of a server that could not prove who it is
                assert origin.hits.get("/vod/m1/a.ts", 0) == before, origin.hits
    finally:
        good.stop()
        rogue.stop()


class RogueTLS(harness.LoopbackServer):
    """An HTTPS server with a certificate of a CA nobody configured; counts
    the HTTP requests that reach it (none may)."""

    def __init__(self, d):
        outer = self
        self.hits = []

        class H(harness.LoopbackServer.Quiet):
            def do_GET(self):
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        serve_tls(self, H, d, "rogue")


def test_a_server_certificate_the_gateway_does_not_trust_is_never_spoken_to(env):
    d, u, dc = tls_env(env)
    rogue = RogueTLS(d)
    try:
        env.stop("ucdn")
        u["peers"][0]["fci_url"] = "https://127.0.0.1:%d/fci" % rogue.port
        env.start_daemon("ucdn", u)
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/peers/dcdn-it/pull" % env.ports["uop"], token=OP_TOKEN)
        assert s >= 400 and b"certificate" in b.lower() or b"ssl" in b.lower(), (s, b)
        # pinned: the right CA but another key than the pin is refused too
        env.stop("ucdn")
        u["peers"][0]["fci_url"] = "https://127.0.0.1:%d/fci/v1/capabilities" % env.ports["dpeer"]
        u["peers"][0]["tls"] = {"pin": open(os.path.join(d, "other.spki")).read().strip()}
        env.start_daemon("ucdn", u)
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/peers/dcdn-it/pull" % env.ports["uop"], token=OP_TOKEN)
        assert s >= 400 and b"pinned" in b.lower() or b"public key" in b.lower(), (s, b)
        env.stop("ucdn")
        u["peers"][0]["tls"] = {"pin": open(os.path.join(d, "server.spki")).read().strip()}
        env.start_daemon("ucdn", u)
        s, _, b = http("POST", "http://127.0.0.1:%d/v1/peers/dcdn-it/pull" % env.ports["uop"], token=OP_TOKEN)
        assert s < 300, (s, b)
        assert rogue.hits == [], rogue.hits
    finally:
        rogue.stop()


def test_sni_picks_the_certificate_and_a_bad_tls_config_is_refused_with_its_path(env):
    d, u, dc = tls_env(env)
    env.stop("ucdn")
    u["listeners"]["delivery"]["tls"]["certificates"].append(
        {"cert": os.path.join(d, "other.pem"), "key": os.path.join(d, "other-key.pem")})
    env.start_daemon("ucdn", u)

    def subject(sni):
        args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % env.ports["udel"]]
        args += ["-servername", sni] if sni else ["-noservername"]
        p = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
        m = re.search(r"subject=(.*)", p.stdout)
        return m.group(1) if m else p.stdout + p.stderr
    assert "CN = other" in subject("other.cdni.test"), subject("other.cdni.test")
    assert "CN = cdni-gateway" in subject("video.example.com"), subject("video.example.com")
    assert "CN = cdni-gateway" in subject(None), subject(None)
    # an RSA certificate beside the ECDSA ones: SNI finds it, curl verifies it
    env.stop("ucdn")
    u["listeners"]["delivery"]["tls"]["certificates"].append(
        {"cert": os.path.join(d, "rsa.pem"), "key": os.path.join(d, "rsa-key.pem")})
    env.start_daemon("ucdn", u)
    assert "CN = rsa" in subject("rsa.cdni.test"), subject("rsa.cdni.test")
    rc, code, err = curl("https://rsa.cdni.test:%d/healthz" % env.ports["udel"], "--cacert", os.path.join(d, "ca.pem"),
                         "--resolve", "rsa.cdni.test:%d:127.0.0.1" % env.ports["udel"])
    assert (rc, code) == (0, "200"), (rc, code, err)
    # TLS 1.2 and 1.3 both, nothing older
    for v, ok in (("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % env.ports["udel"], v],
                           input="", capture_output=True, text=True, timeout=20)
        assert ("Cipher is" in p.stdout and "Cipher is (NONE)" not in p.stdout) == ok, (v, p.stdout[-500:])
    # a key that is not the certificate's: the daemon refuses to start, naming the listener's tls
    env.stop("ucdn")
    u["listeners"]["delivery"]["tls"]["certificates"] = [
        {"cert": os.path.join(d, "server.pem"), "key": os.path.join(d, "other-key.pem")}]
    path = os.path.join(env.dir, "bad.json")
    json.dump(u, open(path, "w"))
    p = subprocess.run([os.path.join(harness.BIN, "ucdn"), "-c", path], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "$.listeners.delivery.tls" in p.stdout + p.stderr, p.stdout + p.stderr
