#!/bin/sh
# The demo (scripts/demo, what `scripts/sluice demo` runs) in a short form:
# 20 calls for 3 seconds through the real sluiced, with the mid-call re-key.
# With --webrtc, the browser demo (scripts/demo --webrtc): headless Chromium
# calls sluice-phone for 6 seconds through a WebRTC leg and an SDES leg, with
# an ICE restart, the hang-up and a screenshot of the page.
# With --webrtc-kamailio, the same call as SIP through Kamailio
# (configs/kamailio/kamailio.cfg, rtpengine_manage over ng): to an SDES
# phone with the ICE restart as a re-INVITE, then a short call to a plain
# phone.
# Passes when each run of the demo exits 0 and its summary says every check
# passed.
# Usage: demo_test.sh BUILD_DIR [--webrtc|--webrtc-kamailio]
build=$1
mode=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
skip() {
  echo "SKIP: $1"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "the demo needs root (network namespaces, af_packet)"
tools="espeak-ng sox ethtool ip"
[ "$mode" != "" ] && tools="sox ethtool ip"
for tool in $tools; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    skip "$tool is not installed (scripts/setup-deps installs it)"
  fi
done
if [ "$mode" != "" ]; then
  [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1 ||
    skip "chromium is not installed (scripts/setup-deps installs it)"
  /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 ||
    skip "python3-numpy is not installed (scripts/setup-deps installs it)"
fi
[ "$mode" = --webrtc-kamailio ] && [ ! -x /usr/sbin/kamailio ] &&
  skip "kamailio is not installed (scripts/setup-deps installs it)"
out=$(mktemp)
keep=$(mktemp -d)
trap 'rm -rf "$out" "$keep"' EXIT
browser_checks='Sluice relayed every packet both ways
the phone hears the browser
AnalyserNode hears the phone
hang-up: the page closed
stopped cleanly on SIGTERM'
restart_checks='ICE restart: new credentials on both sides
ICE restart: the audio went on both ways'
ng_checks='over ng: Sluice.s ng listener took
SIP: Kamailio.s INVITE gave the phone'

# One run of the demo with the arguments after the first; the first is the
# checks (one a line) its summary must say passed.
run() {
  checks=$1
  shift
  echo "== scripts/demo $*"
  /usr/bin/python3 "$root/scripts/demo" --build "$build" "$@" >"$out" 2>&1
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
  echo "$checks" | while IFS= read -r check; do
    if ! grep -q "\[ok\] .*$check" "$out"; then
      echo "FAIL: the summary has no passed check \"$check\""
      exit 1
    fi
  done || exit 1
}

case "$mode" in
  --webrtc)
    run "$browser_checks
$restart_checks" --webrtc --seconds 6 --keep "$keep"
    if [ "$(head -c 4 "$keep/browser-call.png" 2>/dev/null | tail -c 3)" != PNG ]; then
      echo "FAIL: --keep saved no screenshot of the page (browser-call.png)"
      exit 1
    fi
    ;;
  --webrtc-kamailio)
    run "$browser_checks
$restart_checks
$ng_checks
leg toward the phone is SDES both ways" --webrtc --via kamailio --seconds 6
    run "$browser_checks
$ng_checks
leg toward the phone is plain RTP both ways" --webrtc --via kamailio --phone-media plain --seconds 3 --no-rekey
    ;;
  *)
    run 'phone B verified every packet phone A sent
phone A verified every packet phone B sent
received byte for byte as sent
re-keyed both ways in every call
stopped cleanly on SIGTERM' --calls 20 --seconds 3
    ;;
esac
echo "PASS"
