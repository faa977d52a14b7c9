#!/usr/bin/env bash
# Run each libFuzzer target for SECONDS over its seed corpus in
# tests/fuzz/corpus/<target>/ (new inputs go to a scratch copy, so the
# committed corpus only changes by hand). Fails on the first crash.
set -eu
secs=$1; shift
for bin in "$@"; do
  name=$(basename "$bin")
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=0 "$work" \
    >"$work.log" 2>&1 || { tail -40 "$work.log"; echo "fuzz: $name FAILED"; exit 1; }
  grep -E "^(#[0-9]+ +DONE|Done)" "$work.log" | tail -1 || true
  rm -rf "$work" "$work.log"
done
