"""Redis as operators run it: each CDN's state on a primary with two
replicas, watched by three sentinels (Debian's redis-server and
redis-sentinel on private ports, append-only files, fsync every second).
Under steady load the primary is killed with SIGKILL: delivery goes on, the
gateways follow the sentinels to the new primary by themselves, every write
they acknowledged is there, and writes refused while the sentinels elect
succeed when sent again. A second test takes a Redis away and brings it
back empty under running daemons. run.py runs these with the rest."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

import harness
from harness import (DCDN_PID, OP_TOKEN, ChunkOrigin, Skip, fan_out, free_port, http,
                 raw_get, service, sget, surrogate_env, trigger, trigger_status, wait_for)


def redis_cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=10)
    return r.stdout.strip()


class RedisHA:
    """For each master name: a primary and two replicas; three sentinels
    watching all of them (quorum 2, a node down after 1.5 s)."""

    def __init__(self, env, names):
        if not shutil.which("redis-sentinel"):
            raise Skip("redis-sentinel is not installed (Debian: redis-sentinel)")
        self.env, self.names, self.nodes = env, names, {}
        for name in names:
            ports = [free_port() for _ in range(3)]
            for i, p in enumerate(ports):
                args = ["--replicaof", "127.0.0.1", str(p if i == 0 else ports[0])] if i else []
                self.start_node(name, p, args)
            self.nodes[name] = ports
            # both replicas in sync, so that a write can be on them
            assert wait_for(lambda: redis_cli(ports[0], "INFO", "replication").count("state=online") == 2,
                            timeout=20, step=0.1), redis_cli(ports[0], "INFO", "replication")
        self.sentinels = [free_port() for _ in range(3)]
        for i, sp in enumerate(self.sentinels):
            d = os.path.join(env.dir, "sentinel-%d" % sp)
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n" % (sp, d))
                for name in names:
                    f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (name, self.nodes[name][0]))
                    f.write("sentinel down-after-milliseconds %s 1500\n" % name)
                    f.write("sentinel failover-timeout %s 10000\n" % name)
                    f.write("sentinel parallel-syncs %s 2\n" % name)
            env.procs["redis-sentinel-%d" % i] = subprocess.Popen(
                ["redis-sentinel", conf], stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
        # every sentinel knows the two replicas and the two other sentinels
        for name in names:
            for sp in self.sentinels:
                ok = wait_for(lambda: (lambda m: m.get("num-slaves") == "2" and
                                       m.get("num-other-sentinels") == "2")(self.sentinel_master(sp, name)),
                              timeout=20, step=0.2)
                assert ok, (name, sp, self.sentinel_master(sp, name))

    def start_node(self, name, port, args=()):
        d = os.path.join(self.env.dir, "redis-%s-%d" % (name, port))
        os.makedirs(d, exist_ok=True)
        self.env.procs["redis-%s-%d" % (name, port)] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--repl-diskless-sync-delay", "0", "--dir", d] + list(args),
            stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
        assert wait_for(lambda: redis_cli(port, "PING") == "PONG"), "redis %d did not start" % port

    @staticmethod
    def sentinel_master(sp, name):
        out = redis_cli(sp, "SENTINEL", "MASTER", name).split("\n")
        return dict(zip(out[0::2], out[1::2])) if len(out) > 1 else {}

    def sentinel_logs(self):
        text = "\n".join("--- sentinel :%d\n" % sp + open(os.path.join(self.env.dir, "sentinel-%d" % sp, "log")).read()
                         for sp in self.sentinels)
        with open("/tmp/sentinel-logs.txt", "w") as f:
            f.write(text)
        return text[-3000:]

    def url(self, name):
        return "redis+sentinel://%s/%s" % (",".join("127.0.0.1:%d" % p for p in self.sentinels), name)

    def master(self, name):
        out = redis_cli(self.sentinels[0], "SENTINEL", "get-master-addr-by-name", name).split("\n")
        return int(out[1]) if len(out) == 2 else None

    def settled(self):
        """Every master has at least one replica in sync (after a failover the
        others follow the new master: a full resync)."""
        return all(self.master(n) and "state=online" in redis_cli(self.master(n), "INFO", "replication")
                   for n in self.names)

    def kill_master(self, name):
        port = self.master(name)
        self.env.procs.pop("redis-%s-%d" % (name, port)).send_signal(signal.SIGKILL)
        return port, time.time()


class Load:
    """Steady traffic of every kind while a Redis dies: redirects (the uCDN),
    deliveries (the surrogate), CSP publishes and purges, each thread
    recording what it was answered and when."""

    def __init__(self, env, paths):
        self.env, self.paths, self.stop = env, paths, threading.Event()
        self.redirects, self.deliveries = [], []
        self.published = []  # (id, status, sent, Retry-After) for every answer, retries included
        self.purges = []  # (status, location, sent): the CSP's, at the uCDN
        self.triggers = []  # (status, location, sent, Retry-After): a peer's, at the dCDN's CI/T
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.redirect, self.deliver, self.publish, self.purge, self.trigger)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def redirect(self):
        while not self.stop.is_set():
            s, h, _ = raw_get(self.env.ports["udel"], self.paths[0])
            self.redirects.append((s, time.time()))
            time.sleep(0.01)

    def deliver(self):
        # not the objects being purged (paths[1]) and invalidated (paths[2]):
        # a purge landing between a revalidation's 304 and the serve is a
        # 503 "the object went away" of its own, whatever Redis does
        mine, i = [self.paths[0]] + self.paths[3:], 0
        while not self.stop.is_set():
            s = sget(self.env, mine[i % len(mine)])[0]
            self.deliveries.append((s, time.time()))
            i += 1
            time.sleep(0.01)

    def publish(self):
        n = 0
        while not self.stop.is_set():
            sid, sent = "ha%d" % n, time.time()
            s, h, b = self.env.csp("PUT", "/csp/v1/services/" + sid, service(host="ha%d.example.com" % n))
            self.published.append((sid, s, sent, h.get("Retry-After")))
            if s in (200, 201):
                n += 1  # else the same one again: a refused write is sent again
            time.sleep(0.05)

    def purge(self):
        while not self.stop.is_set():
            sent = time.time()
            s, h, b = self.env.csp("POST", "/csp/v1/purges",
                                   json.dumps({"content.urls": ["http://video.example.com" + self.paths[1]]}))
            self.purges.append((s, h.get("Location"), sent))
            time.sleep(0.3)

    def trigger(self):
        while not self.stop.is_set():
            sent = time.time()
            s, h, b = trigger(self.env, {"trigger": {"type": "invalidate", "content.urls": [
                "http://video.example.com" + self.paths[2]]}, "cdn-path": ["AS64496:1"]})
            self.triggers.append((s, h.get("Location"), sent, h.get("Retry-After")))
            time.sleep(0.2)

    def acked(self):
        return [sid for sid, s, _, _ in self.published if s in (200, 201)]


def first_write_after(writes, t):
    """When the first write sent after t was sent, of those answered 2xx."""
    return min((sent for s, sent in writes if s in (200, 201) and sent > t), default=None)


def status_doc(env):
    return json.loads(http("GET", "http://127.0.0.1:%d/v1/status" % env.ports["uop"], token=OP_TOKEN)[2])


def readyz(port):
    return json.loads(http("GET", "http://127.0.0.1:%d/readyz" % port)[2])


def test_sentinel_failover_under_load_loses_no_acknowledged_write(env):
    ha = RedisHA(env, ["cdnu", "cdnd"])
    paths = ["/vod/m1/s%d.ts" % i for i in range(6)]
    o = ChunkOrigin({p: p.encode() * 200 for p in paths}, cache_control="max-age=1")
    try:
        uredis = {"url": ha.url("cdnu"), "ack_timeout_ms": 500}
        dredis = {"url": ha.url("cdnd"), "ack_timeout_ms": 500}
        env.stop("ucdn")
        env.stop("dcdn")
        ucfg = env.ucdn_config()
        ucfg["redis"] = uredis
        fan_out(ucfg, env.ports["dpeer"])
        ucfg["csp_limits"] = {"writes_per_s": 100, "writes_burst": 200, "purges_per_s": 100, "purges_burst": 200}
        env.start_daemon("ucdn", ucfg)
        router = env.dcdn_config()
        router["redis"] = dredis
        router["triggers"] = {"cdn_pid": DCDN_PID}
        router["upstreams"][0]["heartbeat_s"] = 1
        env.start_daemon("dcdn", router)
        surrogate_env(env, ["127.0.0.1:%d" % o.port], logging={},
                      extra={"triggers": {"cdn_pid": DCDN_PID}, "redis": dredis})
        # and the uCDN collects the surrogate's logs
        ucfg["peers"][0]["li_feed_url"] = "http://127.0.0.1:%d/li/v1/feed" % env.ports["speer"]
        ucfg["collector"] = {"poll_s": 1, "archive_dir": os.path.join(env.dir, "archive")}
        env.stop("ucdn")
        env.start_daemon("ucdn", ucfg)
        r = readyz(env.ports["uop"])
        assert r["redis_node"] == {"node": "127.0.0.1:%d" % ha.master("cdnu"), "sentinel": True,
                                   "min_replicas_acked": 1, "changed": r["redis_node"]["changed"],
                                   "switches": 0}, r
        assert wait_for(lambda: raw_get(env.ports["udel"], paths[0])[0] == 302, timeout=10)
        assert all(sget(env, p)[0] == 200 for p in paths)
        # no replica answers in time: the write is refused (503, Retry-After), never acknowledged
        replicas = [env.procs["redis-cdnu-%d" % p] for p in ha.nodes["cdnu"][1:]]
        for r in replicas:
            r.send_signal(signal.SIGSTOP)
        try:
            s, h, b = env.csp("PUT", "/csp/v1/services/paused", service(host="paused.example.com"))
        finally:
            for r in replicas:
                r.send_signal(signal.SIGCONT)
        assert s == 503 and h["Retry-After"] and h["Content-Type"] == "application/problem+json" and \
            "replicas" in json.loads(b)["detail"], (s, dict(h), b)
        assert "redis write not on enough replicas in time" in env.log("ucdn")
        assert wait_for(lambda: env.csp("PUT", "/csp/v1/services/paused", service(host="paused.example.com"))[0]
                        in (200, 201), timeout=5)
        files = lambda: sum(p["files"] for p in status_doc(env)["logs"]["peers"])
        assert wait_for(lambda: files() > 0, timeout=15), status_doc(env)["logs"]
        timings = {}
        for name, daemon_port in (("cdnu", env.ports["uop"]), ("cdnd", env.ports["sop"])):
            assert wait_for(ha.settled, timeout=30, step=0.2), ha.sentinel_logs()
            with Load(env, paths) as load:
                time.sleep(2)
                old, t_kill = ha.kill_master(name)
                # the sentinels elect a replica; the gateways follow by themselves
                assert wait_for(lambda: ha.master(name) not in (None, old), timeout=30), ha.master(name)
                new = ha.master(name)
                assert wait_for(lambda: readyz(daemon_port)["redis_node"]["node"] == "127.0.0.1:%d" % new,
                                timeout=15), readyz(daemon_port)
                # the writes to this Redis: the CSP's publishes (uCDN), a peer's triggers (dCDN)
                writes = (lambda: [(st, at) for _, st, at, _ in load.published]) if name == "cdnu" else \
                    (lambda: [(st, at) for st, _, at, _ in load.triggers])
                t_write = wait_for(lambda: first_write_after(writes(), t_kill), timeout=30)
                assert t_write, writes()[-5:]
                time.sleep(2)
            timings[name] = t_write - t_kill
            refused = [at for st, at in writes() if st == 503]
            print("    %s: primary :%d killed; new primary :%d; the first write sent %.2f s after the kill was "
                  "acknowledged; %d refused with 503 (the last sent %.2f s after the kill)"
                  % (name, old, new, timings[name], len(refused), (max(refused) - t_kill) if refused else 0),
                  flush=True)
            # delivery went on: every redirect and every delivery was answered as before
            assert load.redirects and {s for s, _ in load.redirects} == {302}, \
                sorted({s for s, _ in load.redirects})
            assert load.deliveries and {s for s, _ in load.deliveries} == {200}, \
                (sorted({s for s, _ in load.deliveries}),
                 [l for l in env.log("dcdn-se").splitlines() if '"status":"50' in l][-5:])
            # a write was answered 2xx or 503 with Retry-After, nothing else
            for sid, s, at, ra in load.published:
                assert s in (200, 201) or (s == 503 and ra), (sid, s, ra)
            assert {s for s, _, _ in load.purges} <= {201, 503}, {s for s, _, _ in load.purges}
            for s, loc, _, ra in load.triggers:
                assert s == 201 or (s == 503 and ra), (s, ra)
            # every trigger the dCDN acknowledged is there and runs to its end
            for loc in [loc for s, loc, _, _ in load.triggers if s == 201]:
                trigger_status(loc, "complete", timeout=30)
            # every write answered 2xx is on the new primary, through any instance's reads
            for sid in load.acked():
                s, _, b = env.csp("GET", "/csp/v1/services/" + sid)
                assert s == 200 and json.loads(b)["host"] == sid + ".example.com", (sid, s, b)
            purges = [loc for s, loc, _ in load.purges if s == 201]
            assert purges, sorted({s for s, _, _ in load.purges})
            for loc in purges:
                got = wait_for(lambda: (lambda v: v if v["status"] == "complete" else None)(
                    json.loads(env.csp("GET", loc)[2])), timeout=30)
                assert got, (loc, env.csp("GET", loc))
            # /readyz and /metrics name the master the sentinels name now (on
            # a busy two-core machine they sometimes fail over a second time
            # before they settle: the gateway follows that too)
            assert wait_for(lambda: readyz(daemon_port)["redis_node"]["node"] == "127.0.0.1:%d" % ha.master(name),
                            timeout=15), (readyz(daemon_port), ha.master(name), ha.sentinel_logs())
            now = ha.master(name)
            if now != new:
                print("    %s: the sentinels failed over again, to :%d" % (name, now), flush=True)
                ha.sentinel_logs()
            m = http("GET", "http://127.0.0.1:%d/metrics" % daemon_port, token=OP_TOKEN)[2].decode()
            assert 'cdni_redis_master{node="127.0.0.1:%d"} 1' % now in m, re.findall(r"cdni_redis.*", m)
            assert len(re.findall(r'cdni_redis_master\{node="[^"]*"\} 1', m)) == 1, re.findall(r"cdni_redis.*", m)
            switches = readyz(daemon_port)["redis_node"]["switches"]
            assert switches >= 1 and re.search(r"cdni_redis_master_switches_total %d\b" % switches, m), m[-3000:]
        # the dCDN's own writes moved too: its surrogate registry, cache index
        # (a CCID purge finds every object) and the trigger it accepted
        assert all(sget(env, p)[0] == 200 for p in paths)
        s, h, b = env.csp("POST", "/csp/v1/purges", json.dumps({"content.ccids": ["col-1"]}))
        assert s == 201, (s, b)
        got = wait_for(lambda: (lambda v: v if v["status"] == "complete" else None)(
            json.loads(env.csp("GET", h["Location"])[2])), timeout=20)
        assert got, env.csp("GET", h["Location"])
        cache = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"], token=OP_TOKEN)[2])
        assert cache["objects"] == 0, cache
        # and log collection went on after both failovers
        before = files()
        assert all(sget(env, p)[0] == 200 for p in paths)
        assert wait_for(lambda: files() > before, timeout=20), status_doc(env)["logs"]
        assert all(t < 20 for t in timings.values()), timings
    finally:
        o.stop()


def test_a_redis_back_empty_is_refilled_by_the_gateways_themselves(env):
    paths = ["/vod/m1/e%d.ts" % i for i in range(4)]
    o = ChunkOrigin({p: p.encode() * 100 for p in paths})
    try:
        env.stop("dcdn")
        router = env.dcdn_config()
        router["triggers"] = {"cdn_pid": DCDN_PID}
        env.start_daemon("dcdn", router)
        surrogate_env(env, ["127.0.0.1:%d" % o.port], extra={"triggers": {"cdn_pid": DCDN_PID}})
        assert wait_for(lambda: raw_get(env.ports["udel"], paths[0])[0] == 302, timeout=10)
        assert all(sget(env, p)[0] == 200 for p in paths)
        r = readyz(env.ports["uop"])
        assert r["status"] == "ready" and r["catalog"]["state"] == "ok" and r["catalog"]["services"] == 1, r

        def empty(name):  # the Redis goes away and comes back with nothing
            env.stop(name)
            shutil.rmtree(os.path.join(env.dir, "redis-" + name))
            env.start_redis(name)
        empty("redis_u")
        empty("redis_d")
        # the uCDN says its catalog is gone: on /readyz, the status page and in its log
        assert wait_for(lambda: readyz(env.ports["uop"])["catalog"]["state"] == "empty", timeout=10), \
            readyz(env.ports["uop"])
        r = readyz(env.ports["uop"])
        assert r["status"] == "degraded" and r["catalog"]["lost_at"] and "404" in r["catalog"]["note"], r
        st = wait_for(lambda: (lambda d: d if "catalog" in d else None)(status_doc(env)), timeout=5)
        assert st and st["catalog"]["state"] == "empty" and st["catalog"]["lost_at"], st
        assert "Redis lost data or was restored from an older copy" in env.log("ucdn")
        # the dCDN's capabilities come back without an operator: the uCDN
        # pulls them from the peer when it has none
        assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/fci/v1/capabilities" % env.ports["peer"],
                                     token=harness.PEER_TOKEN)[0] == 200, timeout=10)
        assert "pulled it from the peer" in env.log("ucdn")
        # the surrogate's cache index is back, rebuilt from its disk cache
        assert wait_for(lambda: env.redis_cli("redis_d", "SCARD", "cdni:dcdn-it:cache:se-x:ccid:col-1").strip()
                        == str(len(paths)), timeout=10), env.log("dcdn-se")[-2000:]
        assert "rebuilding it from the objects on disk" in env.log("dcdn-se")
        # the CSP publishes again; the catalog version went on from where it was
        v_before = r["catalog"]["version"]
        assert env.csp("PUT", "/csp/v1/services/vod1", json.dumps(_doc(o.port)))[0] == 201
        assert wait_for(lambda: readyz(env.ports["uop"])["status"] == "ready", timeout=10), readyz(env.ports["uop"])
        assert readyz(env.ports["uop"])["catalog"]["version"] > v_before
        assert wait_for(lambda: raw_get(env.ports["udel"], paths[0])[0] == 302, timeout=10)
        q = urllib.parse.quote("http://video.example.com" + paths[0], safe="")
        assert wait_for(lambda: http("GET", "http://127.0.0.1:%d/v1/metadata/resolve?url=%s" % (env.ports["sop"], q),
                                     token=OP_TOKEN)[0] == 200, timeout=10)
        # a purge by CCID still finds every object cached before the loss
        s, h, b = trigger(env, {"trigger": {"type": "purge",
                                            "content.ccids": ["col-1"]}, "cdn-path": ["AS64496:1"]})
        assert s == 201, (s, b)
        done = trigger_status(h["Location"], "complete", timeout=15)
        cache = json.loads(http("GET", "http://127.0.0.1:%d/v1/cache" % env.ports["sop"], token=OP_TOKEN)[2])
        assert cache["objects"] == 0, (cache, done)
    finally:
        o.stop()


def _doc(origin_port):
    """The service surrogate_env publishes, for publishing it again."""
    return {"host": "video.example.com",
            "metadata": [{"generic-metadata-type": "MI.SourceMetadata",
                          "generic-metadata-value": {"sources": [{"endpoints": ["127.0.0.1:%d" % origin_port],
                                                                  "protocol": "http/1.1"}]}},
                         {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "col-1"}}],
            "paths": []}


def test_a_dcdn_whose_advertisement_the_ucdn_lost_advertises_again_at_its_next_heartbeat(env):
    """The uCDN cannot pull (no fci_url for the peer): the heartbeat's answer
    says the advertisement is missing, and the dCDN sends it at once, not
    at its tenth heartbeat."""
    env.stop("ucdn")
    env.stop("dcdn")
    ucfg = env.ucdn_config()
    ucfg["peers"][0].pop("fci_url")
    env.start_daemon("ucdn", ucfg)
    dcfg = env.dcdn_config()
    dcfg["upstreams"][0]["heartbeat_s"] = 1
    env.start_daemon("dcdn", dcfg)
    fci = lambda: http("GET", "http://127.0.0.1:%d/fci/v1/capabilities" % env.ports["peer"], token=harness.PEER_TOKEN)
    assert wait_for(lambda: fci()[0] == 200, timeout=10)
    env.redis_cli("redis_u", "DEL", "cdni:ucdn-it:{peers}:fci")  # what a store restored from an older copy lacks
    assert fci()[0] != 200
    t0 = time.time()
    assert wait_for(lambda: fci()[0] == 200, timeout=5), env.log("dcdn")[-2000:]
    print("    advertised again %.2f s after the loss (heartbeat every 1 s, re-advertisement every 10)"
          % (time.time() - t0), flush=True)
    assert "the uCDN has lost our advertisement; advertising again" in env.log("dcdn")
    assert "no advertisement of it in the store" in env.log("ucdn")
