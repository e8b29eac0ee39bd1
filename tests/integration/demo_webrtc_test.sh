#!/bin/sh
# The WebRTC demo (scripts/demo --webrtc) in a short form: headless Chromium
# calls sluice-phone through the real sluiced (a WebRTC leg and an SDES leg),
# audio both ways, an ICE restart at half time, hang-up and a clean stop.
# Passes when the demo exits 0 and its summary says every check passed.
# Usage: demo_webrtc_test.sh BUILD_DIR
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the demo needs root (network namespaces, af_packet)"
  exit 77
fi
for tool in sox ethtool ip; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    echo "SKIP: $tool is not installed (scripts/setup-deps installs it)"
    exit 77
  fi
done
if [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then
  echo "SKIP: chromium is not installed (scripts/setup-deps installs it)"
  exit 77
fi
if ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
  echo "SKIP: python3-numpy is not installed (scripts/setup-deps installs it)"
  exit 77
fi
out=$(mktemp)
keep=$(mktemp -d)
trap 'rm -rf "$out" "$keep"' EXIT
/usr/bin/python3 "$root/scripts/demo" --webrtc --build "$build" --seconds 6 --keep "$keep" >"$out" 2>&1
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
for check in 'Sluice relayed every packet both ways' 'the phone hears the browser' \
  "AnalyserNode hears the phone" 'ICE restart: new credentials on both sides' \
  'ICE restart: the audio went on both ways' 'hang-up: the page closed' 'stopped cleanly on SIGTERM'; do
  if ! grep -q "\[ok\] .*$check" "$out"; then
    echo "FAIL: the summary has no passed check \"$check\""
    exit 1
  fi
done
if [ ! -s "$keep/browser-call.png" ] || [ "$(head -c 4 "$keep/browser-call.png" | tail -c 3)" != "PNG" ]; then
  echo "FAIL: --keep saved no screenshot of the page (browser-call.png)"
  exit 1
fi
echo "PASS"
