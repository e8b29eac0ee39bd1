#!/bin/sh
# The demo (scripts/demo, what `scripts/sluice demo` runs) in a short form:
# 20 calls for 3 seconds through the real sluiced, with the mid-call re-key.
# Passes when the demo exits 0 and its summary says every check passed.
# Usage: demo_test.sh BUILD_DIR
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the demo needs root (network namespaces, af_packet)"
  exit 77
fi
for tool in espeak-ng sox ethtool ip; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    echo "SKIP: $tool is not installed (scripts/setup-deps installs it)"
    exit 77
  fi
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
/usr/bin/python3 "$root/scripts/demo" --build "$build" --calls 20 --seconds 3 >"$out" 2>&1
status=$?
cat "$out"
if [ "$status" -ne 0 ]; then
  echo "FAIL: the demo exited with status $status"
  exit 1
fi
if grep -q '\[FAIL\]' "$out" || ! grep -Eq '^demo: all [0-9]+ checks passed$' "$out"; then
  echo "FAIL: the demo's summary does not say every check passed"
  exit 1
fi
for check in 'phone B verified every packet phone A sent' 'phone A verified every packet phone B sent' \
  'received byte for byte as sent' 're-keyed both ways in every call' 'stopped cleanly on SIGTERM'; do
  if ! grep -q "\[ok\] .*$check" "$out"; then
    echo "FAIL: the summary has no passed check \"$check\""
    exit 1
  fi
done
echo "PASS"
