# Shared by the shell benchmarks (sourced, from the repository root):
#   bench_init NAME TOOL...  checks the tools (nginx included), sets DUR,
#                            ROUNDS, NGINX, a temporary $dir and $pids, all
#                            cleaned up on exit
#   port                     a free loopback port
#   wait_up URL              waits for a server to answer (10 s)
#   ticks PID                CPU ticks a process has used (all threads); HZ per second
#   media_files              $dir/www/vod/m1/obj_1k.ts and seg_1m.ts, random bytes
#   publish CSP PEER         the bench CSP's $dir/svc.json as service "bench" at the
#                            ucdn's CSP port, and with PEER (its peer port)
#                            $dir/fci.json as the dCDN's advertisement and a heartbeat
#   worker PID               the serving process of a ucdn/dcdn started as PID
#                            (its master's child; see common/supervise.h)
#   redis_up PORT...         a redis-server on each port (no persistence)
#   nginx_up                 nginx (one worker, no access log, temporary paths in
#                            $dir) with the http-block lines read from stdin
bench_init() {
  local name=$1
  shift
  DUR=${BENCH_SECONDS:-5}
  ROUNDS=${BENCH_ROUNDS:-5}
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  for t in "$@" "$NGINX"; do
    command -v "$t" >/dev/null || { echo "$name bench: $t missing (scripts/deps.sh installs it)"; exit 1; }
  done
  dir=$(mktemp -d /tmp/cdni-bench.XXXXXX)
  pids=()
  trap bench_cleanup EXIT
}
bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for i in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
media_files() {
  mkdir -p "$dir/www/vod/m1"
  head -c 1024 /dev/urandom >"$dir/www/vod/m1/obj_1k.ts"
  head -c 1048576 /dev/urandom >"$dir/www/vod/m1/seg_1m.ts"
}
publish() {
  curl -sf -X PUT -H 'Authorization: Bearer csp-bench-token-0123456789' --data-binary @"$dir/svc.json" \
    "http://127.0.0.1:$1/csp/v1/services/bench" >/dev/null
  [ -n "${2:-}" ] || return 0
  curl -sf -X PUT -H 'Authorization: Bearer peer-bench-token-0123456789' --data-binary @"$dir/fci.json" \
    "http://127.0.0.1:$2/fci/v1/capabilities" >/dev/null
  curl -sf -X POST -H 'Authorization: Bearer peer-bench-token-0123456789' -d '{"load":0.1}' \
    "http://127.0.0.1:$2/fci/v1/heartbeat" >/dev/null
}
worker() {
  local k
  for i in $(seq 100); do
    k=$(awk '{print $NF}' "/proc/$1/task/$1/children" 2>/dev/null)
    [ -n "$k" ] && { echo "$k"; return; }
    sleep 0.1
  done
  echo "$1"
}
HZ=$(getconf CLK_TCK)
redis_up() {
  for p in "$@"; do
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 & pids+=($!)
  done
}
nginx_up() {
  {
    cat <<NGX
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
NGX
    cat
    echo "}"
  } >"$dir/nginx.conf"
  "$NGINX" -c "$dir/nginx.conf" -g 'daemon off;' & pids+=($!)
}
