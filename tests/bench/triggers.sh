#!/usr/bin/env bash
# Triggers benchmark (issue goal): with release daemons, loopback, one
# uCDN and one dCDN (router and surrogate in one process), each with its own
# redis-server:
#   purge by CCID of a collection of 100,000 cached objects: time from the
#   CSP's POST /csp/v1/purges to the request reading "complete" (fan-out to
#   the dCDN, trigger stored, executed on the cache, completion seen by the
#   uCDN). Goal: under 2 s. For scale, in the same run: deleting the same
#   number of files with find -delete (the disk work, which our purge does
#   in the background once the objects are out of the cache).
#   acceptance latency of POST /triggers at the dCDN: bursts of 200
#   requests sent at once over 200 kept-alive connections (burst_client,
#   libcurl multi), 25 bursts: p50 and p99 of request-sent to first byte.
#   Goal: p99 under 10 ms. Baseline in the same run: nginx answering the
#   same POSTs with a fixed 201.
set -eu
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bench_init triggers wrk redis-server python3 curl
REL_BENCH=build/rel/bench
N=${BENCH_PURGE_OBJECTS:-100000}
URP=$(port); DRP=$(port); CSP=$(port); PEER=$(port); UOP=$(port); UDEL=$(port)
DOP=$(port); DPEER=$(port); SURR=$(port); NG=$(port)

redis_up "$URP" "$DRP"
nginx_up <<NGX
  server { listen 127.0.0.1:$NG;
    location /accept { return 201 '{"status":"pending"}'; }
    location / { add_header Cache-Control "max-age=86400"; return 200 "0123456789abcdef0123456789abcdef"; } }
NGX

python3 - "$dir" "$URP" "$DRP" "$CSP" "$PEER" "$UOP" "$UDEL" "$DOP" "$DPEER" "$SURR" "$NG" <<'PY'
import json, sys
d, urp, drp, csp, peer, uop, udel, dop, dpeer, surr, ng = sys.argv[1], *map(int, sys.argv[2:])
json.dump({"cdn_id": "ucdn-bench", "redis": "redis://127.0.0.1:%d" % urp, "log_level": "warn", "threads": 2,
           "listeners": {"csp": {"bind": "127.0.0.1", "port": csp}, "peer": {"bind": "127.0.0.1", "port": peer},
                         "operator": {"bind": "127.0.0.1", "port": uop}, "delivery": {"bind": "127.0.0.1", "port": udel}},
           "csp_tokens": [{"csp": "bench", "token": "csp-bench-token-0123456789"}],
           "peers": [{"id": "dcdn-bench", "token": "peer-bench-token-0123456789", "priority": 1,
                      "ri_token": "ri-bench-token-0123456789",
                      "ci_url": "http://127.0.0.1:%d/triggers" % dpeer}],
           "operator_token": "op-bench-token-0123456789",
           "triggers": {"cdn_pid": "AS64496:1", "retry_max_s": 5},
           "metadata": {"public_url": "http://127.0.0.1:%d" % peer}}, open(d + "/ucdn.json", "w"))
json.dump({"cdn_id": "dcdn-bench", "redis": "redis://127.0.0.1:%d" % drp, "log_level": "warn", "threads": 2,
           "listeners": {"operator": {"bind": "127.0.0.1", "port": dop}, "peer": {"bind": "127.0.0.1", "port": dpeer},
                         "surrogate": {"bind": "127.0.0.1", "port": surr}},
           "operator_token": "op-bench-token-0123456789",
           "upstreams": [{"id": "ucdn-bench", "metadata_url": "http://127.0.0.1:%d/mi/v1/hostindex" % peer,
                          "token": "peer-bench-token-0123456789", "refresh_s": 1,
                          "ri_token": "ri-bench-token-0123456789"}],
           "triggers": {"cdn_pid": "AS64500:9"},
           "surrogate": {"id": "se1", "url": "http://127.0.0.1:%d" % surr, "heartbeat_s": 1,
                         "cache": {"dir": d + "/cache", "disk_objects": 1000000}},
           "egress": {"allow": ["127.0.0.1:%d" % ng]}},
          open(d + "/dcdn.json", "w"))
json.dump({"host": "video.example.com", "metadata": [
    {"generic-metadata-type": "MI.SourceMetadata",
     "generic-metadata-value": {"sources": [{"endpoints": ["127.0.0.1:%d" % ng], "protocol": "http/1.1"}]}},
    {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "bench-collection"}}]},
    open(d + "/svc.json", "w"))
PY

wait_up "http://127.0.0.1:$NG/x"
bin/ucdn -c "$dir/ucdn.json" 2>>"$dir/ucdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$UOP/healthz"
publish "$CSP"
bin/dcdn -c "$dir/dcdn.json" 2>>"$dir/dcdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$SURR/healthz"
for i in $(seq 100); do
  c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: video.example.com' "http://127.0.0.1:$SURR/o/warm")
  [ "$c" = 200 ] && break; sleep 0.1
done

# fill the cache with N distinct objects of the collection: wrk walks the N paths in
# order, for as long as its rate in a first second says it needs, plus a margin
cat >"$dir/fill.lua" <<LUA
local i = tonumber(os.getenv("FROM") or "0")
request = function() i = i + 1; return wrk.format("GET", "/o/" .. ((i - 1) % $N) .. ".ts") end
LUA
objects() { curl -s -H 'Authorization: Bearer op-bench-token-0123456789' "http://127.0.0.1:$DOP/v1/cache" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])'; }
rate=$(FROM=0 wrk -t1 -c32 -d1s -s "$dir/fill.lua" -H 'Host: video.example.com' "http://127.0.0.1:$SURR/" |
       awk '/Requests\/sec/ {print int($2)}')
secs=$(( N * 13 / 10 / (rate > 100 ? rate : 100) + 2 ))
FROM=0 wrk -t1 -c32 -d"${secs}s" -s "$dir/fill.lua" -H 'Host: video.example.com' "http://127.0.0.1:$SURR/" >/dev/null
have=$(objects)
[ "$have" -ge "$N" ] || { echo "triggers bench: the cache holds $have objects, not $N"; tail -5 "$dir/dcdn.log"; exit 1; }
sleep 1.5 # the surrogate has announced itself as an executor
sync # the fill's 100,000 files reach the disk now, not under the bursts (it slowed nginx as much as us)

echo "triggers benchmark: release daemons, loopback, one uCDN and one dCDN (router + surrogate)"
# acceptance latency: bursts of 200 requests sent at once
printf '%s' '{"trigger": {"type": "purge", "content.urls": ["http://video.example.com/o/1.ts"]}, "cdn-path": ["AS64496:1"]}' >"$dir/cmd.json"
ROUNDS_ACCEPT=${BENCH_ACCEPT_ROUNDS:-25}
ng=$("$REL_BENCH/burst_client" "http://127.0.0.1:$NG/accept" "$dir/cmd.json" 200 "$ROUNDS_ACCEPT")
ours=$("$REL_BENCH/burst_client" "http://127.0.0.1:$DPEER/triggers" "$dir/cmd.json" 200 "$ROUNDS_ACCEPT" \
  "Content-Type: application/cdni; ptype=ci-trigger-command" "Authorization: Bearer ri-bench-token-0123456789")
sleep 2 # the triggers of the bursts are executed
# the baseline: the disk work alone, N files of the same size deleted
python3 - "$dir/floor" "$N" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
for k in range(256):
    os.makedirs("%s/%02x" % (d, k), exist_ok=True)
for i in range(n):
    with open("%s/%02x/%d" % (d, i % 256, i), "wb") as f:
        f.write(b"x" * 600)
PY
sync
t0=$(date +%s.%N); find "$dir/floor" -type f -delete; t1=$(date +%s.%N)

# purge by CCID, timed from the CSP's request to "complete"
PURGE=$(python3 - "$CSP" "$N" <<'PY'
import json, sys, time, urllib.request
csp, n = int(sys.argv[1]), int(sys.argv[2])
tok = {"Authorization": "Bearer csp-bench-token-0123456789"}
t0 = time.perf_counter()
req = urllib.request.Request("http://127.0.0.1:%d/csp/v1/purges" % csp, method="POST", headers=tok,
                             data=json.dumps({"content.ccids": ["bench-collection"]}).encode())
r = urllib.request.urlopen(req)
loc = r.headers["Location"]
while True:
    v = json.loads(urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d%s" % (csp, loc), headers=tok)).read())
    if v["status"] not in ("pending", "active"):
        break
    if time.perf_counter() - t0 > 60:
        break
    time.sleep(0.005)
t = time.perf_counter() - t0
print("%s %.3f" % (v["status"], t))
PY
)
left=$(objects)
set -- $PURGE
echo "  purge by CCID of $N cached objects, CSP request to complete: $2 s ($1; objects left: $left)"
awk -v t0="$t0" -v t1="$t1" -v n="$N" 'BEGIN {printf "    for scale, the disk work (done in the background): find -delete of %d files: %.3f s\n", n, t1 - t0}'
awk -v t="$2" 'BEGIN {print "    goal < 2 s: " (t < 2 ? "met" : "NOT met")}'
echo "  bursts of 200 concurrent POSTs, $ROUNDS_ACCEPT bursts (p50 / p99 / max ms, non-2xx):"
set -- $ng; echo "    nginx, a fixed 201:                     $1 / $2 / $3  ($4)"
set -- $ours; echo "    dCDN POST /triggers (in Redis, 201):    $1 / $2 / $3  ($4)"
awk -v p="$2" -v bad="$4" 'BEGIN {print "    goal accept p99 < 10 ms: " (p < 10 && bad == 0 ? "met" : "NOT met")}'
