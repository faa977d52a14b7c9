#!/usr/bin/env bash
# Run each cmocka unit-test binary from the repository root (tests read
# tests/data/ relative to it). Fails if any binary fails.
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "$@"; do
  "$t" || status=1
done
exit $status
