#!/usr/bin/python3
"""Performance regression guard for the relay, by ratios measured in one run.

Runs `sluice-bench relay` and checks figures that hold on any machine, however
busy: the relay against the raw ipsec-mb floor and against libsrtp2 measured
in the same process, the composition (the relay's ns over the floor's plus the
plain relay's, same sessions and checksum mode, same run), plain forwarding
against SRTP relaying, and memory per session (which does not depend on timing at all). The bounds are far below
what the relay does on a quiet machine (bench/RESULTS.md), so that only a real
regression, not a noisy neighbour, trips them.

Usage: relay_guard.py PATH/TO/sluice-bench
"""
import json
import subprocess
import sys

BENCH = sys.argv[1]
failures = []


def relay(*args):
    cmd = [BENCH, "relay", "--json", "--no-progress", "--seconds", "1", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout)
    print(" ".join(cmd[1:]), "->", json.dumps({k: result[k] for k in (
        "mpps_per_core", "ns_per_packet", "floor_mpps", "libsrtp2_mpps", "ratio_to_floor",
        "ratio_to_libsrtp2", "floor_ns", "plain_ns", "composition", "bytes_per_session",
        "verified_packets")}))
    return result


def check(what, value, bound, at_least=True):
    ok = value >= bound if at_least else value <= bound
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {value:.3f} {'>=' if at_least else '<='} {bound}")
    if not ok:
        failures.append(what)


srtp = relay("--in-suite", "AES_CM_128_HMAC_SHA1_80")
check("AES_CM_128_HMAC_SHA1_80 relay / libsrtp2 relay", srtp["ratio_to_libsrtp2"], 5.0)
check("AES_CM_128_HMAC_SHA1_80 relay / raw ipsec-mb floor", srtp["ratio_to_floor"], 0.15)
check("packets verified before timing", srtp["verified_packets"], 1)
# Quiet, about 1.0-1.3 (bench/RESULTS.md); what the relay adds to its crypto
# and the plain path would have to double to trip this.
check("AES_CM_128_HMAC_SHA1_80 composition (ns / (floor + plain))", srtp["composition"], 2.0,
      at_least=False)

gcm = relay("--in-suite", "AEAD_AES_128_GCM")
check("AEAD_AES_128_GCM relay / libsrtp2 relay", gcm["ratio_to_libsrtp2"], 2.0)
check("AEAD_AES_128_GCM relay / raw ipsec-mb floor", gcm["ratio_to_floor"], 0.1)
check("AEAD_AES_128_GCM composition (ns / (floor + plain))", gcm["composition"], 2.0,
      at_least=False)

plain = relay("--in-suite", "plain", "--no-baselines")
check("plain forwarding / AES_CM relay (same run)",
      plain["mpps_per_core"] / srtp["mpps_per_core"], 1.3)

# Deterministic (no timing): about 8,100 bytes at 10,000 sessions, for the
# 8 KiB target at 1,000,000 (docs/performance.md); 600 bytes more trips this.
many = relay("--sessions", "10000", "--no-baselines")
check("bytes per AES_CM session at 10,000 sessions", many["bytes_per_session"], 8.5 * 1024,
      at_least=False)

if failures:
    print("relay performance regressed:", ", ".join(failures))
    sys.exit(1)
