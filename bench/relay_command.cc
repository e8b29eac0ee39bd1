#include "relay_command.h"

#include <srtp2/srtp.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/ipsecmb_floor.h"
#include "libsrtp_loops.h"
#include "measure.h"
#include "nlohmann/json.hpp"
#include "options.h"
#include "relay_rig.h"
#include "sluice/crypto/suite.h"
#include "svg_plot.h"

namespace sluice::bench {
namespace {

const char kRelayUsage[] =
    "Usage: sluice-bench relay [OPTIONS]\n"
    "\n"
    "Relays RTP through sluiced's worker loop in process (Worker::PollOnce, the\n"
    "poll that sluiced's workers run, with its pipeline across bursts) on virtual\n"
    "ring ports, with N sessions installed through the control plane's\n"
    "SessionManager.\n"
    "Traffic is one SSRC per session, sequence numbers advancing, sessions\n"
    "visited in a random order so that a large table is not cache-resident; it\n"
    "is generated and protected off the clock, and the first chunk of output is\n"
    "unprotected and compared with what was sent before anything is timed.\n"
    "Times are each worker thread's CPU time. In the same run it measures:\n"
    "  floor     the raw ipsec-mb cost of the crypto a relay must do on each\n"
    "            packet: unprotect on the way in plus protect on the way out (each\n"
    "            one CTR cipher burst + one HMAC-SHA1 hash burst, or one GCM call,\n"
    "            over the same bytes; AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM)\n"
    "  kfloor    with more than one session, the floor with a key schedule per\n"
    "            session in random order, the next burst's prefetched: the crypto's\n"
    "            cost when its keys are not all in cache; kcomp is the relay's ns\n"
    "            over kfloor ns + plain ns\n"
    "  libsrtp2  srtp_unprotect then srtp_protect per packet, same suites and sizes\n"
    "  plain     the plain RTP->RTP relay at the same sessions, size and checksum\n"
    "            mode; composition is the relay's ns over floor ns + plain ns\n"
    "  mem ns    one dependent load at random over as much memory as the sessions'\n"
    "            state (at least 16 MiB): what a packet of a session out of cache\n"
    "            waits for at each pointer it follows\n"
    "\n"
    "Options:\n"
    "  --sessions N      sessions, 1 to 1000000 (default 1)\n"
    "  --size BYTES      RTP packet size, 12-byte header included, 12 to 1400\n"
    "                    (default 172: G.711, 20 ms)\n"
    "  --in-suite S      SDES suite the phones send with, or plain\n"
    "                    (default AES_CM_128_HMAC_SHA1_80)\n"
    "  --out-suite S     suite Sluice sends with, or plain (default: --in-suite)\n"
    "  --workers W       worker lcores, 1 to the number of cores (default 1)\n"
    "  --burst B         packets per RX burst, 1 to 64 (default 32)\n"
    "  --seconds T       timed CPU seconds per worker, after a 0.2 s warm-up\n"
    "                    (default 3)\n"
    "  --backend B       auto, ipsec-mb or openssl (default auto)\n"
    "  --no-baselines    skip the floor, libsrtp2 and plain\n"
    "  --small-pages     where the host has no hugepages, leave packet buffers,\n"
    "                    rings and the flow table on EAL's 4 KiB pages (default:\n"
    "                    a DPDK heap on transparent hugepages, as production\n"
    "                    has them on hugepages)\n"
    "  --nic-offloads    the ports stand for a NIC with checksum offload, as\n"
    "                    sluiced uses one: received frames come marked with good\n"
    "                    IPv4 and UDP checksums and the worker leaves the sent\n"
    "                    ones to the port (default: ring ports without offloads,\n"
    "                    every checksum checked and written in software)\n"
    "  --overload F      then offer fresh packets from a second lcore, paced in\n"
    "                    time, for --seconds at the measured rate (paced: the\n"
    "                    baseline with traffic arriving from another core) and\n"
    "                    then at F times it (for example 2), and report what the\n"
    "                    worker relays in each (one worker; what does not fit its\n"
    "                    RX ring is lost there, as at a NIC). Give many sessions:\n"
    "                    one stream losing over 32768 packets in a row loses its\n"
    "                    rollover counter (RFC 3711 3.3.1)\n"
    "  --sweep           measure session counts 1, 10, ... up to --sessions (or\n"
    "                    100000 when --sessions is 1) at --size, and sizes 60,\n"
    "                    172, 332, 652 and 1212 at 1 session\n"
    "  --plot FILE.svg   with --sweep: draw Mpps against sessions and packet size\n"
    "  --progress        live packets per second on stderr (default when stderr\n"
    "                    is a terminal); --no-progress turns it off\n"
    "  --json            one JSON object (with --sweep: {\"points\":[...]})\n"
    "  --help            show this text\n"
    "\n"
    "Exit status: 0; 1 when a measurement failed; 2 for bad options.\n";

struct Options {
  RelayRigOptions rig;
  double seconds = 3;
  double overload = 0;  // offered load as a multiple of the measured rate; 0: none
  bool baselines = true;
  bool small_pages = false;
  bool sweep = false;
  bool json = false;
  std::string plot;
};

struct Point {
  RelayRigOptions rig;
  RelayRigResult relay;
  std::optional<double> floor_mpps;
  // The floor with a key schedule per session (as many as the relay has),
  // visited in random order: what the crypto alone costs when its keys are
  // not all in cache. Only with more than one session.
  std::optional<double> keyed_floor_ns;
  std::optional<double> libsrtp2_mpps;
  // The plain RTP->RTP relay at the same sessions, size and checksum mode,
  // same run: what the relay costs besides its crypto.
  std::optional<double> plain_ns;
  // --overload: the same two-thread set-up offered 1x the measured rate (the
  // cross-core baseline), then F x.
  std::optional<RelayOverloadResult> paced, overload;
  // What one dependent load costs at random over as much memory as the
  // sessions' state: what a packet of a session that is not in cache waits
  // for, once per pointer it follows.
  double memory_latency_ns = 0;
  const char* memory_latency_pages = "";
};

// The floor in ns a packet, when there is one.
std::optional<double> FloorNs(const Point& p) {
  return p.floor_mpps ? std::optional<double>(1e3 / *p.floor_mpps) : std::nullopt;
}

// Relay ns over floor ns + plain ns (issue 27: at most 1 + 0.10 x plain /
// (floor + plain) is the target ns <= floor + 1.10 x plain).
std::optional<double> Composition(const Point& p) {
  const std::optional<double> floor = FloorNs(p);
  if (!floor || !p.plain_ns) return std::nullopt;
  return p.relay.ns_per_packet / (*floor + *p.plain_ns);
}

// The same over the keyed floor.
std::optional<double> KeyedComposition(const Point& p) {
  if (!p.keyed_floor_ns || !p.plain_ns) return std::nullopt;
  return p.relay.ns_per_packet / (*p.keyed_floor_ns + *p.plain_ns);
}

// A pointer chase through `bytes` of cache lines in random order, on the
// pages the sessions' state is on: hugetlbfs pages where the host has them
// reserved (sets *pages to "hugepages"), else transparent hugepages.
double MemoryLatencyNs(size_t bytes, const char** pages) {
  struct alignas(64) Line {
    uint32_t next;
  };
  const size_t n = std::max<size_t>(bytes / sizeof(Line), 1024);
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  constexpr size_t kHugepage = size_t{2} << 20;
  const size_t mapped = (n * sizeof(Line) + kHugepage - 1) / kHugepage * kHugepage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
  *pages = "hugepages";
  if (raw == MAP_FAILED) {
    raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 0;
    madvise(raw, mapped, MADV_HUGEPAGE);
    *pages = "transparent-hugepages";
  }
  Line* lines = static_cast<Line*>(raw);
  for (size_t i = 0; i < n; ++i) lines[order[i]].next = order[(i + 1) % n];
  uint32_t p = order[0];
  const size_t steps = 2000000;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < steps; ++i) p = lines[p].next;
  const auto end = std::chrono::steady_clock::now();
  volatile uint32_t sink = p;
  (void)sink;
  munmap(raw, mapped);
  return std::chrono::duration<double, std::nano>(end - start).count() / steps;
}

std::string SuiteLabel(const std::optional<crypto::Suite>& s) {
  return s ? std::string(crypto::SuiteName(*s)) : "plain";
}

absl::StatusOr<std::optional<crypto::Suite>> ParseSuite(std::string_view name,
                                                        std::string_view option) {
  if (name == "plain") return std::optional<crypto::Suite>();
  std::optional<crypto::Suite> s = crypto::SuiteFromName(name);
  if (!s) {
    return absl::InvalidArgumentError(absl::StrCat("unknown suite \"", Str(name), "\" for ",
                                                   Str(option),
                                                   ": expected an SDES name such as "
                                                   "AES_CM_128_HMAC_SHA1_80, or plain"));
  }
  return s;
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  o.rig.in_suite = crypto::Suite::kAesCm128HmacSha1_80;
  bool out_given = false;
  o.rig.progress = isatty(STDERR_FILENO) != 0;
  OptionReader r(argc, argv);
  while (r.Next()) {
    const std::string_view arg = r.name();
    if (arg == "--json") { o.json = true; continue; }
    if (arg == "--sweep") { o.sweep = true; continue; }
    if (arg == "--no-baselines") { o.baselines = false; continue; }
    if (arg == "--small-pages") { o.small_pages = true; continue; }
    if (arg == "--nic-offloads") { o.rig.nic_offloads = true; continue; }
    if (arg == "--progress") { o.rig.progress = true; continue; }
    if (arg == "--no-progress") { o.rig.progress = false; continue; }
    static constexpr std::string_view kValued[] = {"--sessions", "--size",    "--in-suite",
                                                   "--out-suite", "--workers", "--burst",
                                                   "--seconds",  "--backend", "--plot",
                                                   "--overload"};
    if (std::find(std::begin(kValued), std::end(kValued), arg) == std::end(kValued)) {
      return r.Unknown();
    }
    absl::StatusOr<std::string_view> v = r.Value();
    if (!v.ok()) return v.status();
    const std::string_view value = *v;
    const absl::string_view av(value.data(), value.size());
    auto bad = [&](std::string_view expected) { return r.Bad(expected); };
    if (arg == "--sessions") {
      if (!absl::SimpleAtoi(av, &o.rig.sessions) || o.rig.sessions < 1 ||
          o.rig.sessions > 1000000) {
        return bad("1 to 1000000");
      }
    } else if (arg == "--size") {
      if (!absl::SimpleAtoi(av, &o.rig.size) || o.rig.size < 12 || o.rig.size > 1400) {
        return bad("a packet size from 12 to 1400");
      }
    } else if (arg == "--in-suite" || arg == "--out-suite") {
      absl::StatusOr<std::optional<crypto::Suite>> s = ParseSuite(value, arg);
      if (!s.ok()) return s.status();
      if (arg == "--in-suite") {
        o.rig.in_suite = *s;
      } else {
        o.rig.out_suite = *s;
        out_given = true;
      }
    } else if (arg == "--workers") {
      if (!absl::SimpleAtoi(av, &o.rig.workers) || o.rig.workers < 1 || o.rig.workers > 128) {
        return bad("1 to the number of cores");
      }
    } else if (arg == "--burst") {
      uint32_t b = 0;
      if (!absl::SimpleAtoi(av, &b) || b < 1 || b > 64) return bad("1 to 64");
      o.rig.burst = static_cast<uint16_t>(b);
    } else if (arg == "--seconds") {
      if (!absl::SimpleAtod(av, &o.seconds) || !(o.seconds > 0) || o.seconds > 600) {
        return bad("seconds, more than 0 and at most 600");
      }
    } else if (arg == "--overload") {
      if (!absl::SimpleAtod(av, &o.overload) || !(o.overload >= 1) || o.overload > 100) {
        return bad("a multiple of the measured rate, 1 to 100");
      }
    } else if (arg == "--backend") {
      if (value == "auto") o.rig.backend = crypto::BackendKind::kAuto;
      else if (value == "ipsec-mb") o.rig.backend = crypto::BackendKind::kIpsecMb;
      else if (value == "openssl") o.rig.backend = crypto::BackendKind::kOpenssl;
      else return bad("auto, ipsec-mb or openssl");
    } else {
      o.plot = Str(value);
    }
  }
  if (!out_given) o.rig.out_suite = o.rig.in_suite;
  if (o.overload > 0 && (o.sweep || o.rig.workers != 1)) {
    return absl::InvalidArgumentError("--overload runs one worker, without --sweep");
  }
  if (!o.plot.empty() && !o.sweep) {
    return absl::InvalidArgumentError("--plot draws a sweep: give --sweep too");
  }
  return o;
}

// Floor and libsrtp2 for one configuration, one core.
absl::Status MeasureBaselines(const Options& o, Point& p) {
  const double seconds = std::min(o.seconds, 1.0);
  const RelayRigOptions& r = p.rig;
  if (r.in_suite || r.out_suite) {
    bool floor_defined = true;
    double floor_ns = 0;
    double keyed_floor_ns = 0;
    const bool keyed = r.sessions > 1;
    absl::StatusOr<std::unique_ptr<ImbManager>> mgr = ImbManager::Create();
    if (!mgr.ok()) return mgr.status();
    for (const std::optional<crypto::Suite>& s : {r.in_suite, r.out_suite}) {
      if (!s) continue;
      if (!HasFloor(*s)) {
        floor_defined = false;
        continue;
      }
      for (const size_t keys : {size_t{1}, size_t{keyed ? r.sessions : 0}}) {
        if (keys == 0) continue;
        absl::StatusOr<std::unique_ptr<BurstLoop>> loop =
            MakeFloorLoop(**mgr, *s, r.size, r.burst, keys);
        if (!loop.ok()) return loop.status();
        if (absl::StatusOr<Measurement> w = Measure(**loop, 0.1); !w.ok()) return w.status();
        absl::StatusOr<Measurement> m = Measure(**loop, seconds);
        if (!m.ok()) return m.status();
        (keys == 1 ? floor_ns : keyed_floor_ns) += m->ns_per_packet();
      }
    }
    if (floor_defined) p.floor_mpps = 1e3 / floor_ns;
    if (floor_defined && keyed) p.keyed_floor_ns = keyed_floor_ns;
    absl::StatusOr<std::unique_ptr<LibsrtpRelayLoop>> lib =
        LibsrtpRelayLoop::Create(r.in_suite, r.out_suite, r.size, r.burst);
    if (!lib.ok()) return lib.status();
    if (absl::StatusOr<Measurement> w = Measure(**lib, 0.1); !w.ok()) return w.status();
    absl::StatusOr<Measurement> m = Measure(**lib, seconds);
    if (!m.ok()) return absl::InternalError(absl::StrCat("libsrtp2: ", m.status().message()));
    p.libsrtp2_mpps = m->mpps();
  }
  return absl::OkStatus();
}

absl::StatusOr<Point> MeasurePoint(const Options& o, const RelayRigOptions& rig) {
  Point p;
  p.rig = rig;
  {
    absl::StatusOr<std::unique_ptr<RelayRig>> r = RelayRig::Create(rig);
    if (!r.ok()) return r.status();
    absl::StatusOr<RelayRigResult> result = (*r)->Run(o.seconds);
    if (!result.ok()) return result.status();
    p.relay = *result;
    if (o.overload > 0) {
      absl::StatusOr<RelayOverloadResult> paced = (*r)->RunOverload(p.relay.mpps_per_core, o.seconds);
      if (!paced.ok()) return paced.status();
      p.paced = *paced;
      absl::StatusOr<RelayOverloadResult> over =
          (*r)->RunOverload(o.overload * p.relay.mpps_per_core, o.seconds);
      if (!over.ok()) return over.status();
      p.overload = *over;
    }
  }
  if (o.baselines) {
    if (absl::Status s = MeasureBaselines(o, p); !s.ok()) return s;
    if (rig.in_suite || rig.out_suite) {
      RelayRigOptions plain = rig;
      plain.in_suite = plain.out_suite = std::nullopt;
      absl::StatusOr<std::unique_ptr<RelayRig>> r = RelayRig::Create(plain);
      if (!r.ok()) return r.status();
      absl::StatusOr<RelayRigResult> result = (*r)->Run(o.seconds);
      if (!result.ok()) return result.status();
      p.plain_ns = result->ns_per_packet;
    }
  }
  {
    // The sessions' state, at least 16 MiB (beyond most caches), at most 1 GiB.
    const double state = p.relay.bytes_per_session * rig.sessions;
    p.memory_latency_ns = MemoryLatencyNs(
        static_cast<size_t>(std::clamp(state, 16.0 * (1 << 20), 1024.0 * (1 << 20))),
        &p.memory_latency_pages);
  }
  return p;
}

nlohmann::json ToJson(const Point& p) {
  nlohmann::json j;
  j["sessions"] = p.rig.sessions;
  j["size"] = p.rig.size;
  j["in_suite"] = SuiteLabel(p.rig.in_suite);
  j["out_suite"] = SuiteLabel(p.rig.out_suite);
  j["workers"] = p.rig.workers;
  j["burst"] = p.rig.burst;
  j["nic_offloads"] = p.rig.nic_offloads;
  j["data_memory"] = std::string(RelayRig::DataMemory());
  j["backend"] = p.relay.backend;
  j["mpps_per_core"] = Round(p.relay.mpps_per_core, 3);
  j["mpps_total"] = Round(p.relay.mpps_total, 3);
  j["ns_per_packet"] = Round(p.relay.ns_per_packet, 1);
  j["wall_ns_per_packet"] = Round(p.relay.wall_ns_per_packet, 1);
  j["gbps"] = Round(p.relay.gbps, 2);
  auto opt = [](const std::optional<double>& v, int digits) -> nlohmann::json {
    return v ? nlohmann::json(Round(*v, digits)) : nlohmann::json(nullptr);
  };
  j["floor_mpps"] = opt(p.floor_mpps, 3);
  j["libsrtp2_mpps"] = opt(p.libsrtp2_mpps, 3);
  j["ratio_to_floor"] =
      opt(p.floor_mpps ? std::optional<double>(p.relay.mpps_per_core / *p.floor_mpps)
                       : std::nullopt, 3);
  j["ratio_to_libsrtp2"] =
      opt(p.libsrtp2_mpps ? std::optional<double>(p.relay.mpps_per_core / *p.libsrtp2_mpps)
                          : std::nullopt, 2);
  j["floor_ns"] = opt(FloorNs(p), 1);
  j["plain_ns"] = opt(p.plain_ns, 1);
  j["composition"] = opt(Composition(p), 3);
  j["keyed_floor_ns"] = opt(p.keyed_floor_ns, 1);
  j["keyed_composition"] = opt(KeyedComposition(p), 3);
  j["composition_target_met"] =
      FloorNs(p) && p.plain_ns
          ? nlohmann::json(p.relay.ns_per_packet <= *FloorNs(p) + 1.10 * *p.plain_ns)
          : nlohmann::json(nullptr);
  j["session_memory"] = std::string(RelayRig::SessionMemory());
  j["bytes_per_session"] = std::llround(p.relay.bytes_per_session);
  j["memory_latency_ns"] = p.memory_latency_ns > 0 ? nlohmann::json(Round(p.memory_latency_ns, 1))
                                                   : nlohmann::json(nullptr);
  if (p.memory_latency_ns > 0) j["memory_latency_pages"] = p.memory_latency_pages;
  j["install_seconds"] = Round(p.relay.install_seconds, 2);
  j["verified_packets"] = p.relay.verified;
  if (p.overload && p.paced) {
    auto phase = [&](const RelayOverloadResult& ov) {
      return nlohmann::json{{"offered_mpps", Round(ov.offered_mpps, 3)},
                            {"offered_ratio", Round(ov.offered_mpps / p.relay.mpps_per_core, 2)},
                            {"relayed_mpps", Round(ov.relayed_mpps, 3)},
                            {"relayed_wall_mpps", Round(ov.relayed_wall_mpps, 3)},
                            {"offered", ov.offered},
                            {"relayed", ov.relayed},
                            {"ring_full_drops", ov.ring_full_drops},
                            {"worker_drops", ov.worker_drops}};
    };
    j["overload"] = {{"paced", phase(*p.paced)},
                     {"overloaded", phase(*p.overload)},
                     {"relayed_ratio", Round(p.overload->relayed_mpps / p.paced->relayed_mpps, 3)}};
  }
  j["packets"] = p.relay.packets;
  return j;
}

std::string Cell(const std::optional<double>& v, const char* fmt) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), fmt, *v);
  return buf;
}

void PrintHeader(const Options& o) {
  std::printf("sluice-bench relay: %s -> %s, %u worker(s), burst %u, %.1f s per point, %s, "
              "packet memory on %s\n",
              SuiteLabel(o.rig.in_suite).c_str(), SuiteLabel(o.rig.out_suite).c_str(),
              o.rig.workers, o.rig.burst, o.seconds,
              o.rig.nic_offloads ? "checksums offloaded to the NIC" : "checksums in software",
              std::string(RelayRig::DataMemory()).c_str());
  std::printf("%9s %5s %10s %8s %7s %10s %10s %9s %11s %9s %7s %8s %8s %6s %9s %6s\n",
              "sessions", "size", "Mpps/core", "ns/pkt", "Gbit/s", "floor Mpps", "libsrtp2",
              "vs floor", "vs libsrtp2", "B/session", "mem ns", "floor ns", "plain ns", "comp",
              "kfloor ns", "kcomp");
}

void PrintRow(const Point& p) {
  const std::optional<double> vs_floor =
      p.floor_mpps ? std::optional<double>(p.relay.mpps_per_core / *p.floor_mpps) : std::nullopt;
  const std::optional<double> vs_lib =
      p.libsrtp2_mpps ? std::optional<double>(p.relay.mpps_per_core / *p.libsrtp2_mpps)
                      : std::nullopt;
  std::printf("%9u %5u %10.2f %8.1f %7.2f %10s %10s %9s %11s %9.0f %7s %8s %8s %6s %9s %6s\n",
              p.rig.sessions,
              p.rig.size, p.relay.mpps_per_core, p.relay.ns_per_packet, p.relay.gbps,
              Cell(p.floor_mpps, "%.2f").c_str(), Cell(p.libsrtp2_mpps, "%.3f").c_str(),
              Cell(vs_floor, "%.2f").c_str(), Cell(vs_lib, "%.1fx").c_str(),
              p.relay.bytes_per_session,
              Cell(p.memory_latency_ns > 0 ? std::optional<double>(p.memory_latency_ns)
                                           : std::nullopt, "%.0f").c_str(),
              Cell(FloorNs(p), "%.1f").c_str(), Cell(p.plain_ns, "%.1f").c_str(),
              Cell(Composition(p), "%.2f").c_str(), Cell(p.keyed_floor_ns, "%.1f").c_str(),
              Cell(KeyedComposition(p), "%.2f").c_str());
  std::fflush(stdout);
}

absl::Status WritePlot(const Options& o, const std::vector<Point>& by_sessions,
                       const std::vector<Point>& by_size) {
  auto series = [](const std::vector<Point>& points, bool x_sessions) {
    std::vector<PlotSeries> s(3);
    s[0].name = "Sluice relay";
    s[1].name = "floor (raw ipsec-mb)";
    s[2].name = "libsrtp2";
    for (const Point& p : points) {
      const double x = x_sessions ? p.rig.sessions : p.rig.size;
      s[0].points.push_back({x, p.relay.mpps_per_core});
      if (p.floor_mpps) s[1].points.push_back({x, *p.floor_mpps});
      if (p.libsrtp2_mpps) s[2].points.push_back({x, *p.libsrtp2_mpps});
    }
    return s;
  };
  const std::string title = absl::StrCat(SuiteLabel(o.rig.in_suite), " -> ",
                                         SuiteLabel(o.rig.out_suite), ", per core");
  std::vector<PlotPanel> panels(2);
  panels[0] = {absl::StrCat("Mpps against sessions (", o.rig.size, "-byte RTP)"), "sessions",
               "Mpps per core", true, series(by_sessions, true)};
  panels[1] = {"Mpps against packet size (1 session)", "RTP packet bytes", "Mpps per core",
               false, series(by_size, false)};
  std::ofstream out(o.plot);
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write ", o.plot));
  out << RenderSvg(title, panels);
  return out.good() ? absl::OkStatus()
                    : absl::InternalError(absl::StrCat("cannot write ", o.plot));
}

// The overload phases of a point, after its row.
void PrintOverload(const Point& p) {
  for (const RelayOverloadResult* ov : {&*p.paced, &*p.overload}) {
    std::printf("%s: offered %.2f Mpps from another lcore (%.2fx the rate above), relayed "
                "%.2f Mpps per CPU second (%.2f Mpps of wall time); %llu of %llu offered "
                "lost at the full RX ring; worker drops so far: %s\n",
                ov == &*p.paced ? "paced" : "overloaded", ov->offered_mpps,
                ov->offered_mpps / p.relay.mpps_per_core, ov->relayed_mpps,
                ov->relayed_wall_mpps, static_cast<unsigned long long>(ov->ring_full_drops),
                static_cast<unsigned long long>(ov->offered), ov->worker_drop_reasons.c_str());
  }
  std::printf("overloaded / paced relay rate: %.2f\n",
              p.overload->relayed_mpps / p.paced->relayed_mpps);
}

// The rigs to measure: the one the options describe, or with --sweep, a
// series by sessions (powers of ten up to --sessions, or 100000) and one by
// packet size (one session per worker).
struct Plan {
  std::vector<RelayRigOptions> by_sessions, by_size;
};

Plan MakePlan(const Options& o) {
  Plan plan;
  if (!o.sweep) {
    plan.by_sessions.push_back(o.rig);
    return plan;
  }
  const uint32_t top = o.rig.sessions == 1 ? 100000 : o.rig.sessions;
  for (uint32_t n = 1; n < top; n *= 10) {
    if (n < o.rig.workers) continue;
    plan.by_sessions.push_back(o.rig);
    plan.by_sessions.back().sessions = n;
  }
  plan.by_sessions.push_back(o.rig);
  plan.by_sessions.back().sessions = top;
  for (uint32_t size : {60u, 172u, 332u, 652u, 1212u}) {
    plan.by_size.push_back(o.rig);
    plan.by_size.back().size = size;
    plan.by_size.back().sessions = o.rig.workers;
  }
  return plan;
}

// Measures each rig in order, printing its row unless --json; stops at the
// first that fails.
absl::StatusOr<std::vector<Point>> MeasureSeries(const Options& o,
                                                 const std::vector<RelayRigOptions>& rigs) {
  std::vector<Point> done;
  for (const RelayRigOptions& rig : rigs) {
    absl::StatusOr<Point> p = MeasurePoint(o, rig);
    if (!p.ok()) {
      return absl::Status(p.status().code(),
                          absl::StrCat(rig.sessions, " sessions, ", rig.size, " bytes: ",
                                       std::string(p.status().message())));
    }
    if (!o.json) PrintRow(*p);
    if (!o.json && p->overload && p->paced) PrintOverload(*p);
    done.push_back(*std::move(p));
  }
  return done;
}

void PrintJson(const Options& o, const std::vector<Point>& by_sessions,
               const std::vector<Point>& by_size) {
  if (!o.sweep) {
    std::printf("%s\n", ToJson(by_sessions[0]).dump().c_str());
    return;
  }
  nlohmann::json points = nlohmann::json::array();
  for (const Point& p : by_sessions) points.push_back(ToJson(p));
  for (const Point& p : by_size) points.push_back(ToJson(p));
  std::printf("%s\n", nlohmann::json{{"points", points}}.dump().c_str());
}

}  // namespace

int RunRelayCommand(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::printf("%s", kRelayUsage);
      return 0;
    }
  }
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice-bench relay: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  Options& o = *parsed;
  const Plan plan = MakePlan(o);
  uint32_t most = 1;
  for (const RelayRigOptions& r : plan.by_sessions) most = std::max(most, r.sessions);
  if (absl::Status s =
          RelayRig::InitEal(o.rig.workers + (o.overload > 0 ? 1 : 0), most, o.small_pages);
      !s.ok()) {
    std::fprintf(stderr, "sluice-bench relay: %s\n", std::string(s.message()).c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (srtp_init() != srtp_err_status_ok) {
    std::fprintf(stderr, "sluice-bench relay: srtp_init failed\n");
    return 1;
  }
  if (!o.json) PrintHeader(o);
  absl::StatusOr<std::vector<Point>> by_sessions = MeasureSeries(o, plan.by_sessions);
  absl::StatusOr<std::vector<Point>> by_size =
      by_sessions.ok() ? MeasureSeries(o, plan.by_size) : std::vector<Point>{};
  for (const absl::Status& s : {by_sessions.status(), by_size.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "sluice-bench relay: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  if (o.json) PrintJson(o, *by_sessions, *by_size);
  if (!o.plot.empty()) {
    if (absl::Status s = WritePlot(o, *by_sessions, *by_size); !s.ok()) {
      std::fprintf(stderr, "sluice-bench relay: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  srtp_shutdown();
  return 0;
}

}  // namespace sluice::bench
