"""Integration tests: URI signing (RFC 9246) at each hop, one-time tokens,
renewal and session cookies, and cdnictl's tokens. run.py runs them with the
rest."""
import json
import os
import time

from harness import (M1, OP_TOKEN, ROOT, SURROGATE_A, ctl, http, raw_get, sign, signing_env, token_in, verify,
                     wait_for)


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
