#!/usr/bin/env bash
# HTTPS against nginx, with the same certificate (ECDSA P-256, from
# scripts/pki.sh), TLS 1.3 only on both, one worker each (one ucdn or dcdn
# thread, one nginx worker), the same wrk load, loopback, in turns:
#   1 KiB cached objects, keep-alive        requests/s  (wrk -t1 -c64)
#   1 MiB cached segments                   bytes/s     (wrk -t1 -c16)
#   new TLS handshakes (a connection per request, no resumption: wrk's
#   OpenSSL client keeps no sessions)       requests/s  (wrk -t1 -c16, Connection: close)
#   the 302 redirect                        requests/s  (wrk -t1 -c64)
# The objects come from a dcdn surrogate's memory tier (its source is the
# nginx); the 302 from a ucdn delivery listener, against nginx `return 302`.
# Goal: each at least 0.8x nginx. Each figure is the median of ROUNDS rounds.
# Where h2o is installed (Debian's 2.2.5, on OpenSSL: the alternative to
# libmicrohttpd's GnuTLS that the TLS issue names), its new-handshake rate
# is measured too, the same way, as a third figure.
set -eu
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bench_init tls wrk redis-server python3 curl openssl
URP=$(port); DRP=$(port); CSP=$(port); PEER=$(port); UOP=$(port); UDEL=$(port); DOP=$(port); SURR=$(port)
NG=$(port); NGS=$(port); NGR=$(port)
scripts/pki.sh "$dir/pki" >/dev/null
C=$dir/pki/server.pem; K=$dir/pki/server-key.pem; CA=$dir/pki/ca.pem
mkdir -p "$dir/cache"
media_files
redis_up "$URP" "$DRP"
nginx_up <<NGX
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000 inactive=60s;
  types { video/mp2t ts; }
  ssl_certificate $C;
  ssl_certificate_key $K;
  ssl_protocols TLSv1.3;
  server { listen 127.0.0.1:$NG; root $dir/www; add_header Cache-Control "max-age=86400"; }
  server { listen 127.0.0.1:$NGS ssl; root $dir/www; add_header Cache-Control "max-age=86400"; }
  server { listen 127.0.0.1:$NGR ssl; location / { return 302 https://dcdn.bench.test\$request_uri; } }
NGX
python3 - "$dir" "$URP" "$DRP" "$CSP" "$PEER" "$UOP" "$UDEL" "$DOP" "$SURR" "$NG" "$C" "$K" <<'PY'
import json, sys
d, urp, drp, csp, peer, uop, udel, dop, surr, ng = sys.argv[1], *map(int, sys.argv[2:11])
cert, key = sys.argv[11:13]
tls = {"certificates": [{"cert": cert, "key": key}], "min_version": "1.3"}
json.dump({"cdn_id": "ucdn-bench", "redis": "redis://127.0.0.1:%d" % urp, "log_level": "warn", "threads": 1,
           "listeners": {"csp": {"bind": "127.0.0.1", "port": csp}, "peer": {"bind": "127.0.0.1", "port": peer},
                         "operator": {"bind": "127.0.0.1", "port": uop},
                         "delivery": {"bind": "127.0.0.1", "port": udel, "tls": tls}},
           "limits": {"max_connections": 4096, "max_connections_per_ip": 0},
           "csp_tokens": [{"csp": "bench", "token": "csp-bench-token-0123456789"}],
           "peers": [{"id": "dcdn-bench", "token": "peer-bench-token-0123456789", "priority": 1,
                      "delivery_url": "https://dcdn.bench.test"}],
           "operator_token": "op-bench-token-0123456789",
           "metadata": {"public_url": "http://127.0.0.1:%d" % peer}}, open(d + "/ucdn.json", "w"))
json.dump({"cdn_id": "dcdn-bench", "redis": "redis://127.0.0.1:%d" % drp, "log_level": "warn", "threads": 1,
           "listeners": {"operator": {"bind": "127.0.0.1", "port": dop},
                         "surrogate": {"bind": "127.0.0.1", "port": surr, "tls": tls}},
           "limits": {"max_connections": 4096, "max_connections_per_ip": 0},
           "operator_token": "op-bench-token-0123456789",
           "upstreams": [{"id": "ucdn-bench", "metadata_url": "http://127.0.0.1:%d/mi/v1/hostindex" % peer,
                          "token": "peer-bench-token-0123456789", "refresh_s": 1}],
           "surrogate": {"id": "se1", "url": "https://127.0.0.1:%d" % surr, "cache": {"dir": d + "/cache"}},
           "egress": {"allow": ["127.0.0.1:%d" % ng]}}, open(d + "/dcdn.json", "w"))
json.dump({"capabilities": [
    {"capability-type": "FCI.DeliveryProtocol", "capability-value": {"delivery-protocols": ["http/1.1", "https/1.1"]},
     "footprints": [{"footprint-type": "ipv4cidr", "footprint-value": ["127.0.0.0/8"]}]},
    {"capability-type": "FCI.RedirectionMode", "capability-value": {"redirection-modes": ["HTTP-I"]}},
    {"capability-type": "FCI.Metadata", "capability-value": {"metadata": ["MI.SourceMetadata", "MI.Grouping"]}}]},
    open(d + "/fci.json", "w"))
json.dump({"host": "video.example.com", "metadata": [
    {"generic-metadata-type": "MI.SourceMetadata",
     "generic-metadata-value": {"sources": [{"endpoints": ["127.0.0.1:%d" % ng], "protocol": "http/1.1"}]}},
    {"generic-metadata-type": "MI.Grouping", "generic-metadata-value": {"ccid": "bench"}}]},
    open(d + "/svc.json", "w"))
PY
# "<requests/s> <bytes/s> <server CPU microseconds per request>"
measure() { # url server-pid connections [wrk args]
  local t0 out t1 u=$1 p=$2 c=$3
  shift 3
  t0=$(ticks "$p")
  out=$(wrk -t1 -c"$c" -d"${DUR}s" -H 'Host: video.example.com' "$@" "$u" 2>/dev/null)
  t1=$(ticks "$p")
  awk -v t="$((t1 - t0))" -v hz="$HZ" '
    function bytes(s) { u = substr(s, length(s) - 1); v = s + 0
      return u == "GB" ? v * 1073741824 : u == "MB" ? v * 1048576 : u == "KB" ? v * 1024 : v }
    /requests in/ {n = $1} /Requests\/sec/ {r = $2} /Transfer\/sec/ {b = bytes($2)}
    END {printf "%s %.0f %.2f\n", r, b, n ? t * 1e6 / hz / n : 0}' <<<"$out"
}
wait_up "http://127.0.0.1:$NG/vod/m1/obj_1k.ts"
NGW=$(pgrep -P "$(cat "$dir/nginx.pid")" | head -1)
bin/ucdn -c "$dir/ucdn.json" 2>>"$dir/ucdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$UOP/healthz"
UPID=$(worker $!)
publish "$CSP" "$PEER"
bin/dcdn -c "$dir/dcdn.json" 2>>"$dir/dcdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$DOP/healthz"
DPID=$(worker $!)
S="https://127.0.0.1:$SURR"
for obj in obj_1k.ts seg_1m.ts; do # fill the cache; then it must answer from it, the same bytes, over TLS 1.3
  for i in $(seq 100); do
    x=$(curl -s --cacert "$CA" -o /dev/null -D - -H 'Host: video.example.com' "$S/vod/m1/$obj" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "x-cache" {print $2}')
    [ "$x" = HIT ] && break; sleep 0.1
  done
  [ "$x" = HIT ] || { echo "surrogate does not serve $obj from its cache over https"; tail -5 "$dir/dcdn.log"; exit 1; }
done
cmp <(curl -s --cacert "$CA" -H 'Host: video.example.com' "$S/vod/m1/seg_1m.ts") "$dir/www/vod/m1/seg_1m.ts" ||
  { echo "surrogate served different bytes"; exit 1; }
for i in $(seq 100); do
  loc=$(curl -s --cacert "$CA" -o /dev/null -w '%{redirect_url}' -H 'Host: video.example.com' \
        "https://127.0.0.1:$UDEL/vod/m1/seg_1.ts")
  [ -n "$loc" ] && break; sleep 0.1
done
[ "${loc#https://}" != "$loc" ] || { echo "ucdn did not redirect over https: '$loc'"; tail -5 "$dir/ucdn.log"; curl -sv --cacert "$CA" -H "Host: video.example.com" "https://127.0.0.1:$UDEL/vod/m1/seg_1.ts"; exit 1; }
for p in "$SURR" "$NGS" "$UDEL"; do
  v=$(openssl s_client -connect "127.0.0.1:$p" </dev/null 2>/dev/null | awk '/^New,/ {print $2, $5}')
  echo "  127.0.0.1:$p negotiates: $v" >&2
done
H2=""
if command -v h2o >/dev/null; then
  H2P=$(port)
  cat >"$dir/h2o.conf" <<H2O
num-threads: 1
pid-file: $dir/h2o.pid
error-log: $dir/h2o.err
listen:
  host: 127.0.0.1
  port: $H2P
  ssl: {certificate-file: $C, key-file: $K, minimum-version: TLSv1.3}
hosts:
  default:
    paths:
      /: {file.dir: $dir/www}
H2O
  h2o -c "$dir/h2o.conf" >/dev/null 2>&1 & pids+=($!)
  H2=$!
  for i in $(seq 50); do curl -s --cacert "$CA" -o /dev/null "https://127.0.0.1:$H2P/vod/m1/obj_1k.ts" && break; sleep 0.1; done
fi
h2ticks() { local t=0; for p in $(pgrep -f "h2o -c $dir/h2o.conf"); do t=$((t + $(ticks "$p"))); done; echo "$t"; }
measure_h2o() { # like measure, over every h2o process
  local t0 out t1
  t0=$(h2ticks)
  out=$(wrk -t1 -c16 -d"${DUR}s" -H 'Connection: close' "https://127.0.0.1:$H2P/vod/m1/obj_1k.ts" 2>/dev/null)
  t1=$(h2ticks)
  awk -v t="$((t1 - t0))" -v hz="$HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
       END {printf "%s 0 %.2f\n", r, n ? t * 1e6 / hz / n : 0}' <<<"$out"
}
echo "tls benchmark: HTTPS, ECDSA P-256, TLS 1.3, $ROUNDS rounds of ${DUR}s in turns, 1 worker each"
a=(); b=(); c=(); e=(); f=(); g=(); h=(); k=(); x=()
for r in $(seq "$ROUNDS"); do
  a+=("$(measure "https://127.0.0.1:$NGS/vod/m1/obj_1k.ts" "$NGW" 64)")
  b+=("$(measure "$S/vod/m1/obj_1k.ts" "$DPID" 64)")
  c+=("$(measure "https://127.0.0.1:$NGS/vod/m1/seg_1m.ts" "$NGW" 16)")
  e+=("$(measure "$S/vod/m1/seg_1m.ts" "$DPID" 16)")
  f+=("$(measure "https://127.0.0.1:$NGS/vod/m1/obj_1k.ts" "$NGW" 16 -H 'Connection: close')")
  g+=("$(measure "$S/vod/m1/obj_1k.ts" "$DPID" 16 -H 'Connection: close')")
  h+=("$(measure "https://127.0.0.1:$NGR/vod/m1/seg_1.ts" "$NGW" 64)")
  k+=("$(measure "https://127.0.0.1:$UDEL/vod/m1/seg_1.ts" "$UPID" 64)")
  [ -n "$H2" ] && x+=("$(measure_h2o)")
  echo "  round $r (req/s, B/s, CPU us/req): 1K nginx ${a[-1]} surrogate ${b[-1]} | 1M nginx ${c[-1]} surrogate ${e[-1]}" \
       "| handshakes nginx ${f[-1]} surrogate ${g[-1]} | 302 nginx ${h[-1]} ucdn ${k[-1]}" >&2
done
python3 - "${a[*]}" "${b[*]}" "${c[*]}" "${e[*]}" "${f[*]}" "${g[*]}" "${h[*]}" "${k[*]}" "${x[*]:-}" <<'PY'
import statistics, sys
m = statistics.median
h2o = sys.argv.pop()
def cols(s):
    v = [float(x) for x in s.split()]
    return m(v[0::3]), m(v[1::3]), m(v[2::3])
a, b, c, e, f, g, h, k = (cols(x) for x in sys.argv[1:])
rows = [("1 KiB keep-alive", a, b, 0, "r/s"), ("1 MiB segments", c, e, 1, "MB/s"),
        ("new handshakes", f, g, 0, "r/s"), ("302 redirect", h, k, 0, "r/s")]
print("  %-18s %14s %14s %8s %18s" % ("", "nginx", "ours", "ratio", "CPU us/req n / o"))
met = True
for name, n, o, i, unit in rows:
    div = 1e6 if i else 1
    ratio = o[i] / n[i] if n[i] else 0
    met &= ratio >= 0.8
    print("  %-18s %9.0f %-4s %9.0f %-4s %7.2fx %8.1f / %-8.1f" % (name, n[i] / div, unit, o[i] / div, unit, ratio,
                                                                  n[2], o[2]))
if h2o.strip():  # the alternative library, for comparison (not a goal)
    x = cols(h2o)
    print("  %-18s %9.0f %-4s %9.0f %-4s %7.2fx %8.1f / %-8.1f  (h2o 2.2.5 on OpenSSL in place of ours)"
          % ("  ... h2o", f[0], "r/s", x[0], "r/s", x[0] / f[0] if f[0] else 0, f[2], x[2]))
print("  goal >= 0.8x nginx for all four: %s" % ("met" if met else "NOT met"))
PY
