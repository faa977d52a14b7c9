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
import socket
import ssl
import subprocess
import threading
import time

import run
from run import CSP_TOKEN, OP_TOKEN, PEER_TOKEN, RI_TOKEN, http, service, wait_for


def pki(env):
    d = os.path.join(env.dir, "pki")
    subprocess.run([os.path.join(run.ROOT, "scripts", "pki.sh"), d, "DNS:video.example.com"], check=True)
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
    u["triggers"] = {"cdn_pid": "AS64496:1", "retry_max_s": 1}
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
    dc["triggers"] = {"cdn_pid": run.DCDN_PID}
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
    assert loc and "/video.example.com/vod/m1/seg_1.ts" in loc, (loc, env.log("ucdn")[-3000:])
    assert "RI request" not in env.log("ucdn") or "failed" not in env.log("ucdn"), env.log("ucdn")[-2000:]
    # CI/T: a purge fans out to the dCDN over mutual TLS, which takes the trigger
    s, h, b = csp(env, d, "POST", "/csp/v1/purges", json.dumps({"content.ccids": ["m1"]}))
    assert s == 201, b

    def taken():
        v = json.loads(csp(env, d, "GET", h["location"])[2])
        return v if "/triggers/" in (v["dcdns"][0].get("trigger") or "") else None
    got = wait_for(taken, 20)
    assert got and not got["dcdns"][0].get("last_error"), (json.loads(csp(env, d, "GET", h["location"])[2]),
                                                           env.log("dcdn")[-1500:])
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


class RogueTLS(run.LoopbackServer):
    """An HTTPS server with a certificate of a CA nobody configured; counts
    the HTTP requests that reach it (none may)."""

    def __init__(self, d):
        import http.server as httpd
        outer = self
        self.hits = []

        class H(run.LoopbackServer.Quiet):
            def do_GET(self):
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.srv = httpd.ThreadingHTTPServer(("127.0.0.1", 0), H)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(os.path.join(d, "rogue.pem"), os.path.join(d, "rogue-key.pem"))
        self.srv.socket = c.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


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
    p = subprocess.run([os.path.join(run.BIN, "ucdn"), "-c", path], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "$.listeners.delivery.tls" in p.stdout + p.stderr, p.stdout + p.stderr
