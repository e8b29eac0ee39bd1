"""bench/RESULTS.md's composition and hugepage sections (issue 27), for
scripts/bench-results: what the SRTP relay costs against its crypto floor plus
the plain relay, and session counts with and without the host's hugepages.

The hugepages are reserved for those runs only (nr_hugepages raised, hugetlbfs
mounted on a scratch directory) and released after, whatever happens; without
root, or where the kernel gives none, that half says so and the rest runs.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

SUITES = ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"]
# Issue 27's targets.
COMPOSITION_PLAIN_FACTOR = 1.10   # ns <= floor + 1.10 x plain
MOONSHOT_MPPS = 5.04              # 10 Gbit/s of 172-byte G.711 SRTP
PLAIN_MIN_MPPS = {False: 15.0, True: 22.0}  # by --nic-offloads
SCALE_MIN = {100000: 0.8, 1000000: 0.6}
MAX_BYTES_PER_SESSION = 8 * 1024
NR_HUGEPAGES = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


def _relay(bench, root, commands, *args):
    cmd = [bench, "relay", "--json", "--no-progress", *args]
    commands.append(" ".join(cmd))
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr or "").strip()[-500:] or "exit %d" % proc.returncode}
    return json.loads(proc.stdout)


def _free_hugepages():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def hugepages(pages):
    """Reserves `pages` more 2 MiB pages and mounts hugetlbfs; yields how many
    are free (0: none to be had), and puts both back on the way out."""
    try:
        with open(NR_HUGEPAGES) as f:
            before = int(f.read())
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(before + pages))
    except OSError as e:
        print("hugepages: cannot reserve (%s)" % e, file=sys.stderr)
        yield 0
        return
    mount = tempfile.mkdtemp(prefix="sluice-bench-huge-")
    mounted = subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none",
                              mount]).returncode == 0
    try:
        yield _free_hugepages() if mounted else 0
    finally:
        if mounted:
            subprocess.run(["umount", mount])
        os.rmdir(mount)
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(before))


def _cell(v, fmt):
    return fmt % v if isinstance(v, (int, float)) else "-"


def _verdict(ok):
    return "**met**" if ok else "**missed**"


def composition_runs(bench, root, seconds, commands):
    runs = []
    for offloads in (False, True):
        for sessions in (1, 10000):
            for suite in SUITES:
                args = ["--seconds", str(seconds), "--in-suite", suite,
                        "--sessions", str(sessions)] + (["--nic-offloads"] if offloads else [])
                runs.append(_relay(bench, root, commands, *args))
    return runs


def scale_runs(bench, root, seconds, commands, sessions=(1, 100000, 1000000)):
    """{"transparent-hugepages": {n: run}, "hugepages": {n: run}}, and the
    hugepages the second had."""
    def series():
        return {n: _relay(bench, root, commands, "--seconds", str(seconds), "--no-baselines",
                          "--sessions", str(n)) for n in sessions}
    out = {"transparent-hugepages": series()}
    # About 7.5 KiB a session and 1 GiB for EAL (flow table, pools).
    pages = max(sessions) * 9 * 1024 // (2 << 20) + 512
    with hugepages(pages) as free:
        out["hugepages"] = series() if free > 0 else {}
    return out, free


def composition_section(bench, root, seconds):
    """Lines for bench/RESULTS.md."""
    commands = []
    load = os.getloadavg()
    runs = composition_runs(bench, root, seconds, commands)
    scale, huge_free = scale_runs(bench, root, seconds, commands)
    lines = [
        "### Composition: the relay against its crypto plus the plain relay",
        "",
        "One worker, 172-byte RTP, both legs the same suite. **floor ns** is the raw ipsec-mb "
        "cost of the relay's crypto (unprotect + protect), **plain ns** the plain RTP to RTP "
        "relay at the same sessions and checksum mode, both in the same run as the relay; "
        "**composition** = ns / (floor ns + plain ns). Target (issue 27): ns <= floor + %.2f "
        "x plain. With more than one session, **keyed floor ns** is the floor with a key "
        "schedule per session, visited in random order with the next burst's prefetched (the "
        "crypto's cost when its keys are not all in cache), and **keyed comp.** = ns / (keyed "
        "floor ns + plain ns). Load average when these runs started: %s (a busy shared "
        "machine: compare ratios within a row, not across runs)." % (
            COMPOSITION_PLAIN_FACTOR, " ".join("%.2f" % x for x in load)),
        "",
        "| suite | sessions | checksums | ns/packet | Mpps | floor ns | plain ns | plain Mpps "
        "| floor + 1.10 x plain | composition | target | keyed floor ns | keyed comp. |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in runs:
        if "error" in r:
            lines.append("| failed: %s |" % r["error"].replace("\n", " "))
            continue
        bound = (r["floor_ns"] + COMPOSITION_PLAIN_FACTOR * r["plain_ns"]
                 if r.get("floor_ns") and r.get("plain_ns") else None)
        lines.append("| %s | %d | %s | %.1f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["in_suite"], r["sessions"], "offloaded" if r["nic_offloads"] else "software",
            r["ns_per_packet"], r["mpps_per_core"], _cell(r.get("floor_ns"), "%.1f"),
            _cell(r.get("plain_ns"), "%.1f"),
            _cell(1e3 / r["plain_ns"] if r.get("plain_ns") else None, "%.2f"),
            _cell(bound, "%.1f"), _cell(r.get("composition"), "%.2f"),
            _verdict(bound is not None and r["ns_per_packet"] <= bound),
            _cell(r.get("keyed_floor_ns"), "%.1f"), _cell(r.get("keyed_composition"), "%.2f")))
    lines += ["", "#### Issue 27 targets, this run", ""]
    for r in runs:
        if "error" in r or r["sessions"] != 1 or r["in_suite"] != SUITES[0]:
            continue
        offl = r["nic_offloads"]
        plain = 1e3 / r["plain_ns"] if r.get("plain_ns") else 0
        lines.append("- plain RTP to RTP, 1 session, checksums %s: at least %.0f Mpps: %.2f: %s" % (
            "offloaded" if offl else "in software", PLAIN_MIN_MPPS[offl], plain,
            _verdict(plain >= PLAIN_MIN_MPPS[offl])))
        if offl:
            lines.append("- moonshot, AES-CM, offloads, 1 session: %.2f Mpps of %.2f (10 Gbit/s "
                         "of G.711 SRTP): %.2f of it; the floor alone allows %.2f Mpps" % (
                             r["mpps_per_core"], MOONSHOT_MPPS, r["mpps_per_core"] / MOONSHOT_MPPS,
                             r["floor_mpps"] or 0))
    lines += _scale_lines(scale, huge_free)
    lines += ["", "Commands:", "", "```"] + commands + ["```", ""]
    return lines


def _scale_lines(scale, huge_free):
    lines = [
        "",
        "### Scale on hugepages",
        "",
        "AES_CM_128_HMAC_SHA1_80 both legs, one worker, 172 bytes, software checksums, no "
        "baselines. **transparent-hugepages**: the host's hugepage pool empty, the sessions' "
        "state on transparent hugepages and the DPDK heap on a heap of them (the daemon's "
        "fallback). **hugepages**: %s 2 MiB pages reserved and hugetlbfs mounted for these "
        "runs only, so EAL's heap (flow table, packet pools) and the hot arena (flows, SRTP "
        "contexts) are on them. **memory ns**: one dependent load at random over as much "
        "memory as the sessions' state (at most 1 GiB), on the same kind of pages, same run." % (
            huge_free or "no"),
        "",
        "| pages | sessions | Mpps/core | ns/packet | x 1 session | target | bytes/session | "
        "session memory | memory ns |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for kind in ("transparent-hugepages", "hugepages"):
        series = scale.get(kind, {})
        one = series.get(1, {})
        for n, r in sorted(series.items()):
            if "error" in r:
                lines.append("| %s | %d | failed: %s |" % (kind, n, r["error"].replace("\n", " ")))
                continue
            ratio = (r["mpps_per_core"] / one["mpps_per_core"]
                     if one.get("mpps_per_core") else None)
            targets = []
            if n in SCALE_MIN and ratio is not None and kind == "hugepages":
                targets.append("at least %.1f: %s" % (SCALE_MIN[n], _verdict(ratio >= SCALE_MIN[n])))
            if n == 1000000:
                targets.append("bytes <= 8 KiB: %s" % _verdict(
                    r["bytes_per_session"] <= MAX_BYTES_PER_SESSION))
            target = "; ".join(targets)
            lines.append("| %s | %d | %.2f | %.1f | %s | %s | %d | %s | %s |" % (
                kind, n, r["mpps_per_core"], r["ns_per_packet"], _cell(ratio, "%.2f"),
                target, r["bytes_per_session"], r.get("session_memory", "?"),
                _cell(r.get("memory_latency_ns"), "%.0f")))
    if not scale.get("hugepages"):
        lines += ["", "No hugepages could be reserved on this host (not root, or the kernel "
                  "had no contiguous memory): only the fallback was measured."]
    return lines
