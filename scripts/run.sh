#!/usr/bin/env bash
# `make run`: a uCDN and a dCDN on loopback, each with its own private
# redis-server, configured from examples/, and a small origin with sample
# HLS content; publishes the sample delivery service, plays one HLS session
# through uCDN -> dCDN surrogate -> cache, and prints what to try. Ctrl-C
# stops everything it started.
set -u
cd "$(dirname "$0")/.."
state=$(mktemp -d /tmp/cdni-run.XXXXXX)
pids=()
cleanup() {
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT INT TERM

for port in 6391 6392 8080 8081 8082 8083 8090 9082 9083 9084 9085; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use: stop what holds it (or edit examples/*.json)"; exit 1
  fi
done
# a throwaway local CA and certificates (openssl): every listener of both
# gateways speaks HTTPS, the CDNs' peer listeners mutual TLS
scripts/pki.sh build/pki DNS:video.example.com || { echo "could not make the local CA (openssl)"; exit 1; }
CA=build/pki/ca.pem
export CDNI_CA_BUNDLE=$CA # cdnictl trusts it
U_CERT="--cert build/pki/ucdn.pem --key build/pki/ucdn-key.pem" # the uCDN's client certificate
D_CERT="--cert build/pki/dcdn.pem --key build/pki/dcdn-key.pem" # the dCDN's
for port in 6391 6392; do
  # every acknowledged write in the append-only file, fsync'd each second
  mkdir -p "$state/redis-$port"
  redis-server --port $port --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
    --dir "$state/redis-$port" >"$state/redis-$port.log" 2>&1 &
  pids+=($!)
done
# the CSP's origin: a real title (H.264 720p and 1080p, AAC audio; 8 s) that
# make built with ffmpeg, as HLS (collection m1, where examples/master.m3u8
# points) and as DASH (collection d1, the MPD the uCDN fetches by origin_url)
mkdir -p "$state/origin" && cp -r build/sample-title/vod "$state/origin/" \
  || { echo "no sample title: run make run (it builds build/sample-title)"; exit 1; }
python3 -m http.server 8090 --bind 127.0.0.1 --directory "$state/origin" >"$state/origin.log" 2>&1 &
pids+=($!)
rm -rf build/run-cache build/run-logs build/run-archive # each run has new sample content
mkdir -p build/run-cache
sleep 0.3
bin/ucdn -c examples/ucdn.json 2>"$state/ucdn.log" & pids+=($!)
bin/dcdn -c examples/dcdn.json 2>"$state/dcdn.log" & pids+=($!)

for i in $(seq 50); do curl --cacert $CA -s -o /dev/null https://127.0.0.1:8082/healthz && break; sleep 0.1; done
bin/cdnictl service put vod1 examples/service-vod.json \
  --ucdn https://127.0.0.1:8080 --token csp-acme-example-token >/dev/null \
  || { echo "publishing the sample service failed; logs in $state"; cat "$state/ucdn.log"; exit 1; }
# a content collection whose master playlist the uCDN serves rewritten (option 3.2)
python3 -c 'import json,sys; print(json.dumps({"service": "vod1", "path": "/vod/m1/master.m3u8",
  "ccid": "m1-collection", "manifest": open("examples/master.m3u8").read()}))' \
  | curl --cacert $CA -sf -X PUT -H 'Authorization: Bearer csp-acme-example-token' --data-binary @- \
    https://127.0.0.1:8080/csp/v1/collections/m1 >/dev/null \
  || { echo "publishing the sample collection failed; logs in $state"; exit 1; }
# and a DASH one the uCDN fetches from the origin and serves rewritten
curl --cacert $CA -sf -X PUT -H 'Authorization: Bearer csp-acme-example-token' \
  -d '{"service": "vod1", "path": "/vod/d1/manifest.mpd", "ccid": "d1-collection",
       "origin_url": "http://127.0.0.1:8090/vod/d1/manifest.mpd"}' \
  https://127.0.0.1:8080/csp/v1/collections/d1 >/dev/null \
  || { echo "publishing the DASH collection failed; logs in $state"; exit 1; }
# wait until the dCDN has advertised itself and heartbeated (a few seconds)
for i in $(seq 100); do
  curl --cacert $CA -s -X POST -H 'Authorization: Bearer operator-ucdn-example-token' \
    -d '{"url":"http://video.example.com/vod/m1/a.ts","client_ip":"127.0.0.1"}' \
    https://127.0.0.1:8082/v1/route/explain | grep -q '"selected"' && break
  sleep 0.1
done
# a CSP-signed token (RFC 9246) for everything under /vod/m1/ and /vod/d1/ (on
# the default port or the delivery listener's), valid for a day
exp=$(( $(date +%s) + 86400 ))
tok=$(bin/cdnictl token sign --key examples/keys/acme-media.private.jwk --claims \
  "{\"iss\":\"acme-media\",\"aud\":\"ucdn-a\",\"exp\":$exp,\"cdniuc\":\"regex:https://video\\\\.example\\\\.com(:8083)?/vod/(m1|d1)/.*\"}")

# one viewer plays the start of the session, then a second one: the second is served from the cache
for i in $(seq 50); do curl --cacert $CA -s -o /dev/null https://127.0.0.1:9085/healthz && break; sleep 0.1; done
for i in $(seq 100); do # the dCDN has the service's metadata (it polls every 2 s)
  bin/cdnictl metadata resolve --dcdn https://127.0.0.1:9082 --token operator-dcdn-example-token \
    http://video.example.com/vod/m1/720p/index.m3u8 2>/dev/null | grep -q '"servable": *true' && break
  sleep 0.1
done
play_url="https://video.example.com/vod/m1/master.m3u8?URISigningPackage=$tok"
echo; echo "Playing collection m1 (first viewer: the surrogate acquires from the origin):"
python3 scripts/play.py "$play_url" --connect video.example.com=127.0.0.1:8083 --segments 3 --cacert $CA \
  || echo "  (playback failed; logs in $state)"
echo; echo "Second viewer (served from the surrogate's cache):"
python3 scripts/play.py "$play_url" --connect video.example.com=127.0.0.1:8083 --segments 3 --cacert $CA \
  || echo "  (playback failed; logs in $state)"

dash_url="https://video.example.com/vod/d1/manifest.mpd?URISigningPackage=$tok"
page() { # the status page's test player: page ENGINE URL
  printf 'https://127.0.0.1:8082/status/player.html?engine=%s&src=%s' "$1" \
    "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")"
}
player_url=$(page hlsjs "$play_url")
resolver="MAP video.example.com:443 127.0.0.1:8083"
if [ -x /usr/bin/chromium ] && [ -d node_modules/playwright-core ]; then
  echo; echo "Real players in headless Chromium (trusting the local CA), over HTTPS:"
  for pair in "hlsjs HLS $play_url" "shaka DASH $dash_url" "dashjs DASH $dash_url"; do
    set -- $pair
    printf '  %-7s %-5s' "$1" "$2"
    node tests/browser/drive.mjs play "{\"page\": \"$(page "$1" "$3")\", \"resolve\": \"$resolver\", \"seconds\": 4, \"ca\": \"$CA\"}" \
      | python3 -c 'import json, sys
r = json.load(sys.stdin)
segs = [x for x in r["requests"] if x["kind"].endswith("segment")]
print("played %.1f s; %d segments, from %s (X-Cache %s)" % (r["position"], len(segs),
      ", ".join(sorted({x["answered"].split("/")[2] for x in segs})) or "nowhere",
      "/".join(sorted({x["cache"] for x in segs}))))' || echo "(could not play it; logs in $state)"
  done
fi
# FFmpeg and GStreamer, command-line players: they resolve names and read
# the system's CAs themselves, so (as root) they run where a private
# /etc/hosts names video.example.com and the system bundle holds the local CA
hosts="$state/hosts" bundle="$state/ca-certificates.crt"
printf '127.0.0.1 localhost\n127.0.0.1 video.example.com\n' >"$hosts"
cat /etc/ssl/certs/ca-certificates.crt $CA >"$bundle" 2>/dev/null
named() {
  unshare -m --propagation private sh -c 'mount --bind "$0" /etc/hosts &&
    mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && shift && exec "$@"' "$hosts" "$bundle" "$@"
}
if [ "$(id -u)" -eq 0 ] && [ -e /etc/ssl/certs/ca-certificates.crt ] && named true 2>/dev/null; then
  hls_port=${play_url/video.example.com/video.example.com:8083}
  dash_port=${dash_url/video.example.com/video.example.com:8083}
  if command -v ffprobe >/dev/null; then
    echo; echo "FFmpeg decodes every frame of both signed titles, the segments from the surrogate:"
    for pair in "HLS $hls_port" "DASH $dash_port"; do
      set -- $pair
      printf '  ffprobe %-5s' "$1"
      named ffprobe -v error -count_frames -show_entries stream=codec_type,nb_read_frames -of json "$2" \
        2>"$state/ffprobe.err" | python3 -c 'import json, sys
s = json.load(sys.stdin)["streams"]
print(", ".join("%s %s frames" % (x["codec_type"], x["nb_read_frames"]) for x in s) or "nothing decoded")' \
        || echo "(failed: $(tail -1 "$state/ffprobe.err"))"
    done
  fi
  if command -v gst-launch-1.0 >/dev/null; then
    echo; echo "GStreamer plays both to the end (fake sinks):"
    for el in playbin playbin3; do
      for pair in "HLS $hls_port" "DASH $dash_port"; do
        set -- $pair
        printf '  %-9s %-5s' $el "$1"
        out=$(named timeout 60 gst-launch-1.0 $el uri="$2" video-sink=fakesink audio-sink=fakesink 2>&1)
        case "$out" in
          *"Got EOS"*) echo "played to the end";;
          *) echo "(failed: $(echo "$out" | grep -m1 ERROR))";;
        esac
      done
    done
  fi
fi
cat <<TXT

cdni-gateway is running (logs: $state/*.log)

Status pages (each asks for its operator token; or open the address with it):
  uCDN  https://127.0.0.1:8082/status/#token=operator-ucdn-example-token
  dCDN  https://127.0.0.1:9082/status/#token=operator-dcdn-example-token

Everything is HTTPS, with certificates of a throwaway local CA (build/pki,
made by scripts/pki.sh): trust build/pki/ca.pem (curl --cacert, cdnictl with
CDNI_CA_BUNDLE, a browser's certificate store). The CDNs' peer listeners
want each other's client certificates (build/pki/ucdn.pem, dcdn.pem).

Test player (hls.js, shaka-player or dash.js: engine= in its address):
video.example.com has no DNS here, so start the browser with a resolver rule
that sends it to the uCDN's delivery listener, after adding the local CA to
the store Chromium reads (a throwaway profile's own):
  certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n cdni-gateway-local -i $PWD/$CA
  chromium --host-resolver-rules='$resolver' \\
    '$player_url'
  # the DASH title (collection d1) in shaka-player, or engine=dashjs
  chromium --host-resolver-rules='$resolver' \\
    '$(page shaka "$dash_url")'

Command-line players resolve names themselves: give them a hosts entry
"127.0.0.1 video.example.com" and the delivery port (make run plays both
titles with them in a mount namespace of their own when run as root), then
  ffprobe -ca_file $CA -count_frames -show_entries stream=nb_read_frames \\
    '${dash_url/video.example.com/video.example.com:8083}'
  gst-launch-1.0 playbin3 uri='${play_url/video.example.com/video.example.com:8083}' \\
    video-sink=fakesink audio-sink=fakesink   # with build/pki/ca.pem in the system store

  uCDN  CSP API   https://127.0.0.1:8080   (CSP token: csp-acme-example-token)
        peer/MI   https://127.0.0.1:8081   (dCDN token: peer-dcdn-b-example-token)
        operator  https://127.0.0.1:8082   (operator token: operator-ucdn-example-token)
        delivery  https://127.0.0.1:8083   (end users)
  dCDN  operator  https://127.0.0.1:9082   (operator token: operator-dcdn-example-token)
        peer/RI   https://127.0.0.1:9083   (uCDN token: ri-ucdn-a-example-token)
        delivery  https://127.0.0.1:9084   (end users, iterative mode)
        surrogate https://127.0.0.1:9085   (surrogate se1: delivery from its cache)
  CSP origin      http://127.0.0.1:8090   (sample HLS content)

Try:
  # play the session yourself: master from the uCDN, the rest from the dCDN's surrogate
  python3 scripts/play.py '$play_url' \\
    --connect video.example.com=127.0.0.1:8083 --segments 4 --cacert $CA

  # the surrogate's cache; the CSP purges collection m1 at every dCDN (RFC 8007 triggers)
  # and waits until every dCDN reports it complete
  curl --cacert $CA -s -H 'Authorization: Bearer operator-dcdn-example-token' https://127.0.0.1:9082/v1/cache
  bin/cdnictl purge --ccid m1-collection --wait --ucdn https://127.0.0.1:8080 --token csp-acme-example-token
  # the trigger as the dCDN holds it
  curl --cacert $CA $U_CERT -s -H 'Authorization: Bearer ri-ucdn-a-example-token' https://127.0.0.1:9083/triggers

  # the egress policy (README, Security): a CSP's origin on an internal address is never fetched
  curl --cacert $CA -s -X PUT -H 'Authorization: Bearer csp-acme-example-token' https://127.0.0.1:8080/csp/v1/collections/x \\
    -d '{"service": "vod1", "path": "/vod/x.m3u8", "ccid": "x", "origin_url": "http://127.0.0.1:6391/"}'
  curl --cacert $CA -s -H 'Host: video.example.com' https://127.0.0.1:8083/vod/x.m3u8   # 504; "egress refused" in the uCDN's log
  # one canonical target: no spelling of a signed path gets past URI signing
  curl --cacert $CA -si -H 'Host: video.example.com' 'https://127.0.0.1:8083/vod/x/../m1/720p/seg_1.ts' | head -1   # 403

  # the dCDN's CDNI logs for the uCDN (RFC 7937; a file every 10 s while there is traffic)
  curl --cacert $CA $U_CERT -s -H 'Authorization: Bearer ri-ucdn-a-example-token' https://127.0.0.1:9083/li/v1/feed
  curl --cacert $CA $U_CERT -s -H 'Authorization: Bearer ri-ucdn-a-example-token' \\
    https://127.0.0.1:9083/li/v1/files/UUID.log.gz | gunzip | head   # or: bin/cdnictl log verify FILE

  # the uCDN collects those files (every 5 s), checks them, and bills: usage per collection,
  # then per playback session; the collector's state and any quarantined file
  bin/cdnictl billing export --ucdn https://127.0.0.1:8080 --token csp-acme-example-token \\
    --from $(date -u +%F) --to $(date -u +%F) --group-by ccid,dcdn
  bin/cdnictl billing export --ucdn https://127.0.0.1:8080 --token csp-acme-example-token \\
    --from $(date -u +%F) --to $(date -u +%F) --group-by session --format json
  curl --cacert $CA -s -H 'Authorization: Bearer operator-ucdn-example-token' https://127.0.0.1:8082/v1/logs

  # /vod/m1/ is URI-signed (MI.UriSigning): without a token, 403
  curl --cacert $CA -sI -H 'Host: video.example.com' 'https://127.0.0.1:8083/vod/m1/seg_001.ts?session=42'

  # a player's request with the CSP's token: one 302 from the uCDN straight to the
  # dCDN's surrogate se1 (the dCDN advertised its footprint and capabilities, the uCDN
  # asked its RI), carrying a token the uCDN signed for the dCDN, not the CSP's
  curl --cacert $CA -sI -H 'Host: video.example.com' \\
    'https://127.0.0.1:8083/vod/m1/seg_001.ts?session=42&URISigningPackage=$tok'

  # collection m1's master playlist (examples/master.m3u8): served by the uCDN with its
  # URIs on the dCDN's surrogate, each with one uCDN token, and a session cookie (CDNISession)
  curl --cacert $CA -si -H 'Host: video.example.com' \\
    'https://127.0.0.1:8083/vod/m1/master.m3u8?URISigningPackage=$tok'

  # the same rewrite offline
  bin/cdnictl manifest rewrite --base http://video.example.com/vod/m1/master.m3u8 \\
    --map video.example.com=https://127.0.0.1:9085/video.example.com --absolute examples/master.m3u8

  # check a token as a CDN would (the uCDN's, from a Location above)
  bin/cdnictl token verify --keys examples/keys/ucdn-a.jwks --aud dcdn-b \\
    --uri https://127.0.0.1:9085/video.example.com/vod/m1/seg_001.ts TOKEN

  # why it went there, and what happens for a client outside the dCDN's footprint
  bin/cdnictl route explain --ucdn https://127.0.0.1:8082 --token operator-ucdn-example-token \\
      --client-ip 127.0.0.1 http://video.example.com/vod/m1/seg_001.ts
  bin/cdnictl route explain --ucdn https://127.0.0.1:8082 --token operator-ucdn-example-token \\
      --client-ip 203.0.113.9 http://video.example.com/vod/m1/seg_001.ts
  bin/cdnictl peer list --ucdn https://127.0.0.1:8082 --token operator-ucdn-example-token

  # the sample HostIndex the uCDN serves to its dCDN (RFC 8006)
  curl --cacert $CA $D_CERT -s -H 'Authorization: Bearer peer-dcdn-b-example-token' https://127.0.0.1:8081/mi/v1/hostindex

  # the metadata the dCDN applies to a URL
  bin/cdnictl metadata resolve --dcdn https://127.0.0.1:9082 --token operator-dcdn-example-token \\
      http://video.example.com/vod/m1/seg_001.ts

  # change the service, and see the dCDN pick it up within its refresh interval (2 s)
  bin/cdnictl service get vod1 --ucdn https://127.0.0.1:8080 --token csp-acme-example-token
  bin/cdnictl service list --ucdn https://127.0.0.1:8080 --token csp-acme-example-token

  # health, readiness, metrics
  curl --cacert $CA -s https://127.0.0.1:9082/readyz
  curl --cacert $CA -s -H 'Authorization: Bearer operator-ucdn-example-token' https://127.0.0.1:8082/metrics

Press Ctrl-C to stop.
TXT
echo "Sample resolution right now:"
bin/cdnictl metadata resolve --dcdn https://127.0.0.1:9082 --token operator-dcdn-example-token \
  http://video.example.com/vod/m1/seg_001.ts | head -12
wait
