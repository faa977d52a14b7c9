#!/usr/bin/env bash
# Slow clients against a delivery listener: 4,200 connections that trickle
# one header line every 5 s (the trust-boundaries issue, reproduction 7),
# against ucdn (release build, defaults: header_timeout_s 10,
# max_connections_per_ip 256, max_connections 4096) and nginx (one worker,
# 4096 connections, its defaults: client_header_timeout 60 s) answering a
# 302, in the same run. Two floods, each BENCH_FLOOD_S (default 20) seconds:
#   one address: all 4,200 from 127.0.0.2;
#   many addresses: 150 from each of 127.0.0.2..127.0.0.29.
# Meanwhile a viewer on 127.0.0.99 asks for the redirect every 100 ms
# (2 s timeout): reported as answered / asked and the slowest answer. The
# server's RSS before, at its highest during the flood, and 5 s after the
# flooding connections closed.
set -eu
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
bench_init flood redis-server python3
ulimit -n 65536 2>/dev/null || true
FLOOD=${BENCH_FLOOD_S:-20}
RP=$(port); CSP=$(port); PEER=$(port); OP=$(port); DEL=$(port); NG=$(port)
redis_up "$RP"
python3 - "$dir" "$RP" "$CSP" "$PEER" "$OP" "$DEL" <<'PY'
import json, sys
d, rp, csp, peer, op, dl = sys.argv[1], *map(int, sys.argv[2:])
json.dump({"cdn_id": "ucdn-flood", "redis": "redis://127.0.0.1:%d" % rp, "log_level": "warn", "threads": 1,
           "listeners": {"csp": {"bind": "127.0.0.1", "port": csp}, "peer": {"bind": "127.0.0.1", "port": peer},
                         "operator": {"bind": "127.0.0.1", "port": op}, "delivery": {"bind": "127.0.0.1", "port": dl}},
           "csp_tokens": [{"csp": "bench", "token": "csp-bench-token-0123456789"}],
           "peers": [{"id": "dcdn-bench", "token": "peer-bench-token-0123456789"}],
           "operator_token": "op-bench-token-0123456789",
           "metadata": {"public_url": "http://127.0.0.1:%d" % peer},
           "routing": {"fallback_url": "http://origin.bench.test"}}, open(d + "/ucdn.json", "w"))
json.dump({"host": "video.example.com", "metadata": [
    {"generic-metadata-type": "MI.SourceMetadata",
     "generic-metadata-value": {"sources": [{"endpoints": ["origin.bench.test"], "protocol": "http/1.1"}]}}]},
    open(d + "/svc.json", "w"))
PY
nginx_up <<NGX
  server { listen 127.0.0.1:$NG; location / { return 302 http://origin.bench.test\$request_uri; } }
NGX
bin/ucdn -c "$dir/ucdn.json" 2>>"$dir/ucdn.log" & pids+=($!)
wait_up "http://127.0.0.1:$OP/healthz"
UPID=$(worker $!)
curl -sf -X PUT -H 'Authorization: Bearer csp-bench-token-0123456789' --data-binary @"$dir/svc.json" \
  "http://127.0.0.1:$CSP/csp/v1/services/vod1" >/dev/null
wait_up "http://127.0.0.1:$NG/"
NPID=$(cat "$dir/nginx.pid" 2>/dev/null || pgrep -f "$dir/nginx.conf" | tail -1)
sleep 0.5
NWORKER=$(pgrep -P "$NPID" | head -1 || echo "$NPID")

flood() { # name port pid addresses
  python3 - "$1" "$2" "$3" "$4" "$FLOOD" <<'PY'
import os, socket, sys, threading, time
name, port, pid, naddr, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def rss():
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024
before = rss()
socks, stop = [], threading.Event()
per = 4200 // naddr
for a in range(naddr):
    for _ in range(per):
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.%d" % (2 + a), 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
time.sleep(0.5)
for s in socks:
    try:
        s.send(b"GET /vod/a.ts HTTP/1.1\r\nHost: video.example.com\r\n")
    except OSError:
        pass
def trickle():
    while not stop.wait(5):
        for s in socks:
            try:
                s.send(b"X-Slow: 1\r\n")
            except OSError:
                pass
threading.Thread(target=trickle, daemon=True).start()
asked = answered = 0
slowest, peak = 0.0, before
t0 = time.time()
while time.time() - t0 < secs:
    asked += 1
    a = time.time()
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=("127.0.0.99", 0))
        c.sendall(b"GET /vod/a.ts HTTP/1.1\r\nHost: video.example.com\r\nConnection: close\r\n\r\n")
        if c.recv(12).startswith(b"HTTP/1.1 302"):
            answered += 1
            slowest = max(slowest, time.time() - a)
        c.close()
    except OSError:
        pass
    peak = max(peak, rss())
    time.sleep(max(0, 0.1 - (time.time() - a)))
stop.set()
for s in socks:
    s.close()
time.sleep(5)
print("  %-26s %5d/%-5d answered, slowest %6.0f ms | RSS %5.1f MB before, %5.1f peak, %5.1f after" %
      (name, answered, asked, slowest * 1000, before, peak, rss()))
PY
}
echo "flood benchmark: 4,200 trickling connections for ${FLOOD}s; a viewer every 100 ms meanwhile"
echo " one address (127.0.0.2):"
flood "nginx (one worker)" "$NG" "$NWORKER" 1
flood "ucdn delivery listener" "$DEL" "$UPID" 1
echo " 28 addresses (150 each):"
flood "nginx (one worker)" "$NG" "$NWORKER" 28
flood "ucdn delivery listener" "$DEL" "$UPID" 28
m=$(curl -s -H 'Authorization: Bearer op-bench-token-0123456789' "http://127.0.0.1:$OP/metrics")
echo "  ucdn: $(echo "$m" | grep -E '^cdni_http_(connections_refused|connections_shed|head_timeouts)_total\{listener="delivery"' | tr '\n' ' ')"
