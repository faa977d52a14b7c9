#!/usr/bin/env bash
# End-user redirects per second: ucdn (release build) with 100,000 footprint
# prefixes loaded, against nginx answering `return 302` on the same machine
# in the same run. Same worker count (one ucdn thread, one nginx worker),
# same wrk load (-t1 -c64), loopback only, every run time-bounded.
#   ucdn HTTP-I: selection + 302 built by the uCDN alone
#   ucdn HTTP-R: selection + RI answer from the per-dCDN cache (the RI
#                server is a dcdn on the same machine)
# The machine is a shared VM whose speed drifts by 10-20 % within a minute,
# so the three servers run side by side and are measured in turns, ROUNDS
# rounds of BENCH_SECONDS each; each figure is the median of its rounds.
set -eu
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bench_init redirect wrk redis-server python3
RP=$(port); CSP=$(port); PEER=$(port); OP=$(port); DEL=$(port); NG=$(port)
RP2=$(port); CSP2=$(port); PEER2=$(port); OP2=$(port); DEL2=$(port)
DRP=$(port); DOP=$(port); DPEER=$(port)

redis_up "$RP" "$RP2" "$DRP"

python3 - "$dir" "$RP" "$CSP" "$PEER" "$OP" "$DEL" "$DRP" "$DOP" "$DPEER" "$RP2" "$CSP2" "$PEER2" "$OP2" "$DEL2" <<'PY'
import json, random, sys
d, rp, csp, peer, op, dl, drp, dop, dpeer, rp2, csp2, peer2, op2, dl2 = sys.argv[1], *map(int, sys.argv[2:])
random.seed(7)
prefixes = {"127.0.0.0/8"}
while len(prefixes) < 100000:
    x = random.getrandbits(32); l = random.choice([16, 20, 22, 24, 24, 24])
    x &= (0xffffffff << (32 - l)) & 0xffffffff
    prefixes.add("%d.%d.%d.%d/%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255, l))
ports_r = (rp, csp, peer, op, dl)
caps = {"capabilities": [
    {"capability-type": "FCI.DeliveryProtocol", "capability-value": {"delivery-protocols": ["http/1.1"]},
     "footprints": [{"footprint-type": "ipv4cidr", "footprint-value": sorted(prefixes)}]},
    {"capability-type": "FCI.RedirectionMode", "capability-value": {"redirection-modes": ["HTTP-I", "HTTP-R"]}},
    {"capability-type": "FCI.Metadata", "capability-value": {"metadata": ["MI.SourceMetadata"]}}]}
json.dump(caps, open(d + "/fci.json", "w"))
def ucdn(mode):
    p = {"id": "dcdn-bench", "token": "peer-bench-token-0123456789", "priority": 1}
    rp, csp, peer, op, dl = (rp2, csp2, peer2, op2, dl2) if mode == "I" else ports_r
    if mode == "R":
        p.update(ri_url="http://127.0.0.1:%d/ri/v1/redirect" % dpeer, ri_token="ri-bench-token-0123456789")
    else:
        p["delivery_url"] = "http://dcdn.bench.test"
    return {"cdn_id": "ucdn-bench", "redis": "redis://127.0.0.1:%d" % rp, "log_level": "warn", "threads": 1,
            "listeners": {"csp": {"bind": "127.0.0.1", "port": csp}, "peer": {"bind": "127.0.0.1", "port": peer},
                          "operator": {"bind": "127.0.0.1", "port": op}, "delivery": {"bind": "127.0.0.1", "port": dl}},
            "limits": {"max_body_bytes": 67108864, "max_connections": 4096},
            "csp_tokens": [{"csp": "bench", "token": "csp-bench-token-0123456789"}],
            "peers": [p], "operator_token": "op-bench-token-0123456789",
            "metadata": {"public_url": "http://127.0.0.1:%d" % peer},
            "routing": {"ri_cache_max_s": 600}}
json.dump(ucdn("I"), open(d + "/ucdn-I.json", "w"))
json.dump(ucdn("R"), open(d + "/ucdn-R.json", "w"))
json.dump({"cdn_id": "dcdn-bench", "redis": "redis://127.0.0.1:%d" % drp, "log_level": "warn", "threads": 1,
           "listeners": {"operator": {"bind": "127.0.0.1", "port": dop}, "peer": {"bind": "127.0.0.1", "port": dpeer}},
           "upstreams": [{"id": "ucdn-bench", "metadata_url": "http://127.0.0.1:%d/mi/v1/hostindex" % peer,
                          "token": "peer-bench-token-0123456789", "ri_token": "ri-bench-token-0123456789"}],
           "router": {"coverage_zones": [{"prefix": "0.0.0.0/0", "surrogate": "se1"}], "ri_max_age_s": 600},
           "surrogate": {"id": "se1", "url": "http://se1.dcdn.bench.test"}}, open(d + "/dcdn.json", "w"))
json.dump({"host": "video.example.com", "metadata": [{"generic-metadata-type": "MI.SourceMetadata",
           "generic-metadata-value": {"sources": [{"endpoints": ["origin.example"], "protocol": "http/1.1"}]}}]},
          open(d + "/svc.json", "w"))
PY

nginx_up <<NGX
  server { listen 127.0.0.1:$NG; location / { return 302 http://dcdn.bench.test\$request_uri; } }
NGX

# "<requests/s> <server CPU microseconds per request>"
rps() { # url server-pid
  local t0 out t1
  t0=$(ticks "$2")
  out=$(wrk -t1 -c64 -d"${DUR}s" -H 'Host: video.example.com' "$1")
  t1=$(ticks "$2")
  awk -v t="$((t1 - t0))" -v hz="$HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
       END {printf "%s %.2f\n", r, t * 1e6 / hz / n}' <<<"$out"
}

start_ucdn() { # mode csp peer op delivery
  bin/ucdn -c "$dir/ucdn-$1.json" 2>>"$dir/ucdn-$1.log" & pids+=($!)
  local master=$!
  wait_up "http://127.0.0.1:$4/healthz"
  eval "PID_$1=$(worker $master)"
  publish "$2" "$3"
  for i in $(seq 100); do
    loc=$(curl -s -o /dev/null -w '%{redirect_url}' -H 'Host: video.example.com' "http://127.0.0.1:$5/vod/seg_1.ts?x=1")
    [ -n "$loc" ] && break; sleep 0.1
  done
  echo "  ucdn HTTP-$1 first answer: 302 -> $loc" >&2
  [ -n "$loc" ] || { echo "ucdn HTTP-$1 did not redirect"; tail -5 "$dir/ucdn-$1.log"; exit 1; }
}

bin/dcdn -c "$dir/dcdn.json" 2>>"$dir/dcdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$NG/"
NGW=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -1) # the one worker
wait_up "http://127.0.0.1:$DOP/healthz"
start_ucdn R "$CSP" "$PEER" "$OP" "$DEL"
start_ucdn I "$CSP2" "$PEER2" "$OP2" "$DEL2"
echo "redirect benchmark: 100,000 footprint prefixes, wrk -t1 -c64, $ROUNDS rounds of ${DUR}s in turns, 1 worker each"
ng=(); ui=(); ur=()
for r in $(seq "$ROUNDS"); do
  ng+=("$(rps "http://127.0.0.1:$NG/vod/seg_1.ts?x=1" "$NGW")")
  ui+=("$(rps "http://127.0.0.1:$DEL2/vod/seg_1.ts?x=1" "$PID_I")")
  ur+=("$(rps "http://127.0.0.1:$DEL/vod/seg_1.ts?x=1" "$PID_R")")
  echo "  round $r (req/s, CPU us/req): nginx ${ng[-1]}  HTTP-I ${ui[-1]}  HTTP-R ${ur[-1]}" >&2
done
python3 - "${ng[*]}" "${ui[*]}" "${ur[*]}" <<'PY'
import statistics, sys
def pairs(a):
    v = [float(x) for x in a.split()]
    return v[0::2], v[1::2]
(ng, ngc), (ui, uic), (ur, urc) = (pairs(a) for a in sys.argv[1:])
m = statistics.median
print("  %-20s %9s  %8s  %s" % ("", "req/s", "CPU/req", "(medians of %d rounds)" % len(ng)))
print("  %-20s %9.0f  %6.2fus  baseline" % ("nginx return 302", m(ng), m(ngc)))
for name, r, c in (("ucdn HTTP-I", ui, uic), ("ucdn HTTP-R cached", ur, urc)):
    print("  %-20s %9.0f  %6.2fus  %.2fx nginx req/s, %.2fx its CPU per request"
          % (name, m(r), m(c), m(r) / m(ng), m(c) / m(ngc)))
print("  goal >= 1.0x nginx req/s: %s" % ("met" if min(m(ui), m(ur)) >= m(ng) else "NOT met"))
PY
