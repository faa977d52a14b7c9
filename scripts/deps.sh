#!/usr/bin/env bash
# Install the Debian packages the build, the tests and `make run` need.
# As root it runs apt-get; otherwise it names what is missing and fails.
set -euo pipefail

# package : how we know it is there
need=(
  "libmicrohttpd-dev:pkg-config --exists libmicrohttpd"
  "libgnutls28-dev:pkg-config --exists gnutls"
  "libcurl4-openssl-dev:pkg-config --exists libcurl"
  "libjansson-dev:pkg-config --exists jansson"
  "libxml2-dev:pkg-config --exists libxml-2.0"
  "libssl-dev:pkg-config --exists openssl"
  "zlib1g-dev:pkg-config --exists zlib"
  "libhiredis-dev:pkg-config --exists hiredis"
  "libidn2-dev:pkg-config --exists libidn2"
  "libcmocka-dev:pkg-config --exists cmocka"
  "pkg-config:command -v pkg-config"
  "redis-server:command -v redis-server"
  "redis-sentinel:command -v redis-sentinel"
  "curl:command -v curl"
  "python3:command -v python3"
  "python3-feedparser:/usr/bin/python3 -c 'import feedparser'"
  "clang:command -v clang"
  "libclang-rt-14-dev:test -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a || ! command -v clang-14"
  "wrk:command -v wrk"
  "nginx-light:command -v nginx || test -x /usr/sbin/nginx"
  "libcjose-dev:pkg-config --exists cjose"
  "libjwt-dev:test -e /usr/include/jwt.h"
  "ffmpeg:command -v ffmpeg"
  "gstreamer1.0-tools:command -v gst-launch-1.0"
  "gstreamer1.0-plugins-base:gst-inspect-1.0 --exists playbin3"
  "gstreamer1.0-plugins-good:gst-inspect-1.0 --exists qtdemux"
  "gstreamer1.0-plugins-bad:gst-inspect-1.0 --exists hlsdemux2 && gst-inspect-1.0 --exists dashdemux2"
  "gstreamer1.0-libav:gst-inspect-1.0 --exists avdec_h264"
  "trafficserver:command -v traffic_server"
  "trafficserver-experimental-plugins:test -e /usr/lib/trafficserver/modules/uri_signing.so"
  "nodejs:command -v node"
  "npm:command -v npm"
  "chromium:test -x /usr/bin/chromium"
  "libnss3-tools:command -v certutil"
  "make:command -v make"
  "groff-base:command -v groff"
  "gcc:command -v gcc"
)

missing=()
for entry in "${need[@]}"; do
  pkg=${entry%%:*}; check=${entry#*:}
  if ! bash -c "$check" >/dev/null 2>&1; then missing+=("$pkg"); fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root:  apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# packages with a service (trafficserver, redis-server, redis-sentinel) are installed for the
# tests to run privately: none is started by the install (it would hold
# 8080 or 6379 on the host)
norc=/usr/sbin/policy-rc.d
if [ ! -e $norc ]; then
  printf '#!/bin/sh\nexit 101\n' > $norc && chmod +x $norc
  trap 'rm -f $norc' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
