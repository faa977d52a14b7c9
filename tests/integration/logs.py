"""Integration tests: CDNI logging (RFC 7937): per-chunk records behind an Atom
feed, collected once by the uCDN, and billing. run.py runs them with the rest."""
import json
import os
import re
import signal
import time

from harness import (CSP_TOKEN, ChunkOrigin, LI_FEED_EXT_NS, OP_TOKEN, RI_TOKEN, ROOT, ctl, free_port, http,
                     log_records, raw_get, service, sget, surrogate_env, wait_for)


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
