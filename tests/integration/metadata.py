"""Integration tests: the CSP API, the CDNI Metadata interface (RFC 8006) between
the daemons, and both daemons through a Redis that goes away. run.py runs them
with the rest."""
import json
import os
import subprocess
import time
import urllib.parse

from harness import (BIN, CSP_TOKEN, OP_TOKEN, PEER_TOKEN, ROOT, free_port, http, service, wait_for)


def ccid_of(doc):
    for g in doc["metadata"]:
        if g["generic-metadata-type"] == "MI.Grouping":
            return g["generic-metadata-value"].get("ccid")
    return None


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
