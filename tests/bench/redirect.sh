#!/usr/bin/env bash
# End-user redirects per second: ucdn (release build) with 100,000 footprint
# prefixes loaded, against nginx answering `return 302` on the same machine
# in the same run. Same worker count (one ucdn thread, one nginx worker),
# same wrk load (-t1 -c64, 10 s each), loopback only, every run time-bounded.
#   ucdn HTTP-I: selection + 302 built by the uCDN alone
#   ucdn HTTP-R: selection + RI answer from the per-dCDN cache (the RI
#                server is a dcdn on the same machine)
set -eu
cd "$(dirname "$0")/../.."
DUR=${BENCH_SECONDS:-10}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for t in wrk redis-server python3 "$NGINX"; do
  command -v "$t" >/dev/null || { echo "redirect bench: $t missing (scripts/deps.sh installs it)"; exit 1; }
done
dir=$(mktemp -d /tmp/cdni-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(port); CSP=$(port); PEER=$(port); OP=$(port); DEL=$(port); NG=$(port)
DRP=$(port); DOP=$(port); DPEER=$(port)

redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pids+=($!)
redis-server --port "$DRP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pids+=($!)

python3 - "$dir" "$RP" "$CSP" "$PEER" "$OP" "$DEL" "$DRP" "$DOP" "$DPEER" <<'PY'
import json, random, sys
d, rp, csp, peer, op, dl, drp, dop, dpeer = sys.argv[1], *map(int, sys.argv[2:])
random.seed(7)
prefixes = {"127.0.0.0/8"}
while len(prefixes) < 100000:
    x = random.getrandbits(32); l = random.choice([16, 20, 22, 24, 24, 24])
    x &= (0xffffffff << (32 - l)) & 0xffffffff
    prefixes.add("%d.%d.%d.%d/%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255, l))
caps = {"capabilities": [
    {"capability-type": "FCI.DeliveryProtocol", "capability-value": {"delivery-protocols": ["http/1.1"]},
     "footprints": [{"footprint-type": "ipv4cidr", "footprint-value": sorted(prefixes)}]},
    {"capability-type": "FCI.RedirectionMode", "capability-value": {"redirection-modes": ["HTTP-I", "HTTP-R"]}},
    {"capability-type": "FCI.Metadata", "capability-value": {"metadata": ["MI.SourceMetadata"]}}]}
json.dump(caps, open(d + "/fci.json", "w"))
def ucdn(mode):
    p = {"id": "dcdn-bench", "token": "peer-bench-token-0123456789", "priority": 1}
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

cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  server { listen 127.0.0.1:$NG; location / { return 302 http://dcdn.bench.test\$request_uri; } }
}
NGX
"$NGINX" -c "$dir/nginx.conf" -g 'daemon off;' & pids+=($!)

wait_up() { for i in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
rps() { wrk -t1 -c64 -d"${DUR}s" -H 'Host: video.example.com' "$1" | awk '/Requests\/sec/ {print $2}'; }

run_ucdn() { # mode
  bin/ucdn -c "$dir/ucdn-$1.json" 2>>"$dir/ucdn.log" & UPID=$!; pids+=($UPID)
  wait_up "http://127.0.0.1:$OP/healthz"
  curl -sf -X PUT -H 'Authorization: Bearer csp-bench-token-0123456789' --data-binary @"$dir/svc.json" \
    "http://127.0.0.1:$CSP/csp/v1/services/bench" >/dev/null || true
  curl -sf -X PUT -H 'Authorization: Bearer peer-bench-token-0123456789' --data-binary @"$dir/fci.json" \
    "http://127.0.0.1:$PEER/fci/v1/capabilities" >/dev/null
  curl -sf -X POST -H 'Authorization: Bearer peer-bench-token-0123456789' -d '{"load":0.1}' \
    "http://127.0.0.1:$PEER/fci/v1/heartbeat" >/dev/null
  for i in $(seq 100); do
    loc=$(curl -s -o /dev/null -w '%{redirect_url}' -H 'Host: video.example.com' "http://127.0.0.1:$DEL/vod/seg_1.ts?x=1")
    [ -n "$loc" ] && break; sleep 0.1
  done
  echo "  ucdn HTTP-$1 first answer: 302 -> $loc" >&2
  [ -n "$loc" ] || { echo "ucdn did not redirect"; tail -5 "$dir/ucdn.log"; exit 1; }
}

bin/dcdn -c "$dir/dcdn.json" 2>>"$dir/dcdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$NG/"
echo "redirect benchmark: 100,000 footprint prefixes, wrk -t1 -c64 -d${DUR}s, 1 worker each"
ng=$(rps "http://127.0.0.1:$NG/vod/seg_1.ts?x=1")
run_ucdn I
ui=$(rps "http://127.0.0.1:$DEL/vod/seg_1.ts?x=1")
kill $UPID; wait $UPID 2>/dev/null || true
wait_up "http://127.0.0.1:$DOP/healthz"
run_ucdn R
ur=$(rps "http://127.0.0.1:$DEL/vod/seg_1.ts?x=1")
ng2=$(rps "http://127.0.0.1:$NG/vod/seg_1.ts?x=1")
python3 - "$ng" "$ng2" "$ui" "$ur" <<'PY'
import sys
ng1, ng2, ui, ur = map(float, sys.argv[1:])
ng = (ng1 + ng2) / 2
print("  nginx return 302   %9.0f req/s  (baseline; runs %.0f and %.0f)" % (ng, ng1, ng2))
print("  ucdn HTTP-I        %9.0f req/s  %.2fx nginx" % (ui, ui / ng))
print("  ucdn HTTP-R cached %9.0f req/s  %.2fx nginx" % (ur, ur / ng))
print("  goal >= 1.0x nginx: %s" % ("met" if min(ui, ur) >= ng else "NOT met"))
PY
