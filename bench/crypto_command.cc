#include "crypto_command.h"

#include <srtp2/srtp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "crypto/ipsecmb_floor.h"
#include "libsrtp_loops.h"
#include "measure.h"
#include "nlohmann/json.hpp"
#include "options.h"
#include "rtp_packets.h"
#include "sluice/crypto/backend.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/engine.h"
#include "srtp/engine_loops.h"

namespace sluice::bench {

const char kCryptoUsage[] =
    "Usage: sluice-bench crypto [OPTIONS]\n"
    "\n"
    "Measures SRTP protect and unprotect of RTP packets on one core, for every\n"
    "suite and backend, and in the same run:\n"
    "  ipsec-mb, openssl   Sluice's srtp::Engine on that crypto backend: bursts of\n"
    "                      B packets of one stream, sequence numbers advancing\n"
    "  libsrtp2            Debian's libsrtp2, srtp_protect/srtp_unprotect one\n"
    "                      packet at a time, same suite, same packets\n"
    "  ipsec-mb-raw        the floor (op \"floor\"): raw ipsec-mb for the same bytes\n"
    "                      with keys and IVs precomputed; AES_CM_128_HMAC_SHA1_80\n"
    "                      (one CTR cipher burst + one HMAC-SHA1 hash burst) and\n"
    "                      AEAD_AES_128_GCM (IMB_AES128_GCM_ENC per packet); checked\n"
    "                      against libsrtp2's output before it is timed\n"
    "\n"
    "Protect works in place: each burst resets the lengths, advances the sequence\n"
    "numbers and protects the previous ciphertext again (no memcpy in the timed\n"
    "region, for Sluice and libsrtp2 alike). Unprotect runs through a ring of 4096\n"
    "packets protected beforehand; when it runs out, the ring is restored and a\n"
    "fresh receiver context created with the clock stopped.\n"
    "\n"
    "Times are the thread's CPU time, so that another process sharing the core\n"
    "does not count; the steady clock is read too and JSON reports both. Each\n"
    "figure is the best of the repetitions, which run interleaved across the\n"
    "backends of a suite so that a noisy neighbour affects all of them alike.\n"
    "\n"
    "Options:\n"
    "  --size N          RTP packet size in bytes, 12-byte header included\n"
    "                    (12 to 9000; default 172: G.711 20 ms)\n"
    "  --burst B         packets per burst, 1 to 64 (default 32)\n"
    "  --suites LIST     comma-separated SDES suite names, or all (default all)\n"
    "  --backends LIST   comma-separated from ipsec-mb, openssl, libsrtp2,\n"
    "                    ipsec-mb-raw, or all (default all)\n"
    "  --min-time S      timed CPU seconds per measurement and repetition, after\n"
    "                    a warm-up of 0.1 s (default 0.5)\n"
    "  --repetitions N   runs of each measurement; the best counts (default 3)\n"
    "  --json            print one JSON object instead of the table:\n"
    "                    {\"results\":[{\"suite\":...,\"backend\":...,\"op\":...,\n"
    "                    \"size\":...,\"ns_per_packet\":...,\"mpps\":...,\n"
    "                    \"wall_ns_per_packet\":...}, ...], ...}\n"
    "  --help            show this text\n"
    "\n"
    "Exit status: 0, 1 when a measurement failed (a packet did not come out\n"
    "right; the rest are still reported), 2 for bad options.\n";

namespace {

enum class BenchBackend : uint8_t { kIpsecMb, kOpenssl, kLibsrtp2, kIpsecMbRaw };
constexpr BenchBackend kAllBackends[] = {BenchBackend::kIpsecMb, BenchBackend::kOpenssl,
                                         BenchBackend::kLibsrtp2, BenchBackend::kIpsecMbRaw};

std::string_view BackendName(BenchBackend b) {
  switch (b) {
    case BenchBackend::kIpsecMb: return "ipsec-mb";
    case BenchBackend::kOpenssl: return "openssl";
    case BenchBackend::kLibsrtp2: return "libsrtp2";
    case BenchBackend::kIpsecMbRaw: return "ipsec-mb-raw";
  }
  return "?";
}

enum class Op : uint8_t { kProtect, kUnprotect, kFloor };

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kProtect: return "protect";
    case Op::kUnprotect: return "unprotect";
    case Op::kFloor: return "floor";
  }
  return "?";
}

struct Options {
  uint32_t size = 172;
  size_t burst = 32;
  std::vector<crypto::Suite> suites;
  std::vector<BenchBackend> backends;
  double min_time = 0.5;
  int repetitions = 3;
  bool json = false;
};

// Sets numeric option `arg` in `o` from `v`; InvalidArgument when out of range.
absl::Status ParseNumber(OptionReader& r, std::string_view arg, absl::string_view v, Options& o) {
  if (arg == "--size") {
    if (!absl::SimpleAtoi(v, &o.size) || o.size < kRtpHeaderLen || o.size > 9000) {
      return r.Bad("a packet size from 12 to 9000");
    }
  } else if (arg == "--burst") {
    if (!absl::SimpleAtoi(v, &o.burst) || o.burst < 1 || o.burst > srtp::Engine::kMaxBurst) {
      return r.Bad("a burst of 1 to 64 packets");
    }
  } else if (arg == "--min-time") {
    if (!absl::SimpleAtod(v, &o.min_time) || !(o.min_time > 0) || o.min_time > 60) {
      return r.Bad("seconds, more than 0 and at most 60");
    }
  } else if (arg == "--repetitions") {
    if (!absl::SimpleAtoi(v, &o.repetitions) || o.repetitions < 1 || o.repetitions > 100) {
      return r.Bad("1 to 100");
    }
  }
  return absl::OkStatus();
}

// --suites: SDES names separated by commas, or all.
absl::StatusOr<std::vector<crypto::Suite>> ParseSuites(const std::string& list) {
  std::vector<crypto::Suite> suites;
  if (list == "all") {
    for (const crypto::SuiteInfo& info : crypto::AllSuites()) suites.push_back(info.suite);
    return suites;
  }
  for (absl::string_view name : absl::StrSplit(list, ',')) {
    std::optional<crypto::Suite> s = crypto::SuiteFromName(std::string_view(name.data(), name.size()));
    if (!s) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown suite \"", name, "\" in --suites: expected SDES names such as "
          "AES_CM_128_HMAC_SHA1_80, or all"));
    }
    suites.push_back(*s);
  }
  return suites;
}

// --backends: names separated by commas, or all; in kAllBackends order
// whatever order the list had, so that the output is stable.
absl::StatusOr<std::vector<BenchBackend>> ParseBackends(const std::string& list) {
  std::vector<BenchBackend> chosen;
  if (list == "all") {
    chosen.assign(std::begin(kAllBackends), std::end(kAllBackends));
  } else {
    for (absl::string_view name : absl::StrSplit(list, ',')) {
      bool found = false;
      for (BenchBackend b : kAllBackends) {
        if (BackendName(b) == std::string_view(name.data(), name.size())) {
          chosen.push_back(b);
          found = true;
        }
      }
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown backend \"", name,
            "\" in --backends: expected ipsec-mb, openssl, libsrtp2, ipsec-mb-raw or all"));
      }
    }
  }
  std::vector<BenchBackend> ordered;
  for (BenchBackend b : kAllBackends) {
    if (std::find(chosen.begin(), chosen.end(), b) != chosen.end()) ordered.push_back(b);
  }
  return ordered;
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  std::string suites = "all";
  std::string backends = "all";
  OptionReader r(argc, argv);
  while (r.Next()) {
    const std::string_view arg = r.name();
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (arg != "--size" && arg != "--burst" && arg != "--suites" && arg != "--backends" &&
        arg != "--min-time" && arg != "--repetitions") {
      return r.Unknown();
    }
    absl::StatusOr<std::string_view> v = r.Value();
    if (!v.ok()) return v.status();
    if (arg == "--suites") {
      suites = Str(*v);
    } else if (arg == "--backends") {
      backends = Str(*v);
    } else if (absl::Status s = ParseNumber(r, arg, absl::string_view(v->data(), v->size()), o);
               !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::vector<crypto::Suite>> chosen_suites = ParseSuites(suites);
  if (!chosen_suites.ok()) return chosen_suites.status();
  o.suites = *std::move(chosen_suites);
  absl::StatusOr<std::vector<BenchBackend>> chosen_backends = ParseBackends(backends);
  if (!chosen_backends.ok()) return chosen_backends.status();
  o.backends = *std::move(chosen_backends);
  return o;
}

struct Row {
  crypto::Suite suite;
  BenchBackend backend;
  Op op;
  Measurement best;
};

// One measurement being taken: a row and the loop that produces it.
struct Case {
  Row row;
  std::unique_ptr<BurstLoop> loop;
};

// Ratios, looked up by suite (and op for libsrtp2).
class Ratios {
 public:
  explicit Ratios(const std::vector<Row>& rows) {
    for (const Row& r : rows) {
      if (r.backend == BenchBackend::kIpsecMbRaw) floor_[r.suite] = r.best.ns_per_packet();
      if (r.backend == BenchBackend::kLibsrtp2) libsrtp_[{r.suite, r.op}] = r.best.ns_per_packet();
    }
  }
  // Row time over the floor's time: 1.10 means 10% slower than the floor.
  std::optional<double> VsFloor(const Row& r) const {
    auto it = floor_.find(r.suite);
    if (it == floor_.end() || r.backend == BenchBackend::kIpsecMbRaw) return std::nullopt;
    return r.best.ns_per_packet() / it->second;
  }
  // libsrtp2's time over the row's time, for the same operation (the floor is
  // compared with libsrtp2's protect): 25 means 25 times faster.
  std::optional<double> SpeedupVsLibsrtp(const Row& r) const {
    if (r.backend == BenchBackend::kLibsrtp2) return std::nullopt;
    auto it = libsrtp_.find({r.suite, r.op == Op::kFloor ? Op::kProtect : r.op});
    if (it == libsrtp_.end()) return std::nullopt;
    return it->second / r.best.ns_per_packet();
  }

 private:
  std::map<crypto::Suite, double> floor_;
  std::map<std::pair<crypto::Suite, Op>, double> libsrtp_;
};

struct RunInfo {
  std::string sluice_ipsecmb_arch;  // empty when not measured
  std::string floor_arch;
};

// 1.00 when the benchmark had its core to itself.
double WorstWallOverCpu(const std::vector<Row>& rows) {
  double worst = 1.0;
  for (const Row& r : rows) {
    if (r.best.cpu_seconds > 0) worst = std::max(worst, r.best.wall_seconds / r.best.cpu_seconds);
  }
  return worst;
}

void PrintTable(const Options& o, const RunInfo& info, const std::vector<Row>& rows) {
  std::printf("sluice-bench crypto: %u-byte RTP packets, bursts of %zu, best of %d x %.2f s\n",
              o.size, o.burst, o.repetitions, o.min_time);
  std::printf("ipsec-mb %s (Sluice backend: %s, floor manager: %s), libsrtp2: %s\n",
              imb_get_version_str(),
              info.sluice_ipsecmb_arch.empty() ? "-" : info.sluice_ipsecmb_arch.c_str(),
              info.floor_arch.empty() ? "-" : info.floor_arch.c_str(), srtp_get_version_string());
  std::printf("Times are the thread's CPU time; wall clock over CPU time, worst row: %.2f%s\n",
              WorstWallOverCpu(rows),
              WorstWallOverCpu(rows) > 1.05 ? " (the core was shared: figures less certain)" : "");
  std::printf("x floor: time over the ipsec-mb-raw floor; vs libsrtp2: how many times faster\n\n");
  std::printf("%-24s %-13s %-10s %9s %8s %8s %12s\n", "suite", "backend", "op", "ns/pkt", "Mpps",
              "x floor", "vs libsrtp2");
  const Ratios ratios(rows);
  crypto::Suite last = rows.empty() ? crypto::Suite{} : rows.front().suite;
  for (const Row& r : rows) {
    if (r.suite != last) std::printf("\n");
    last = r.suite;
    std::string vs_floor = "-";
    std::string vs_libsrtp = "-";
    if (auto f = ratios.VsFloor(r)) vs_floor = absl::StrFormat("%.2f", *f);
    if (auto s = ratios.SpeedupVsLibsrtp(r)) vs_libsrtp = absl::StrFormat("%.1fx", *s);
    std::printf("%-24s %-13s %-10s %9.1f %8.2f %8s %12s\n", Str(crypto::SuiteName(r.suite)).c_str(),
                Str(BackendName(r.backend)).c_str(), Str(OpName(r.op)).c_str(),
                r.best.ns_per_packet(), r.best.mpps(), vs_floor.c_str(), vs_libsrtp.c_str());
  }
}

void PrintJson(const Options& o, const RunInfo& info, const std::vector<Row>& rows,
               const std::vector<std::string>& errors) {
  nlohmann::ordered_json out;
  out["size"] = o.size;
  out["burst"] = o.burst;
  out["min_time"] = o.min_time;
  out["repetitions"] = o.repetitions;
  out["ipsec_mb_version"] = imb_get_version_str();
  out["libsrtp2_version"] = srtp_get_version_string();
  out["sluice_ipsec_mb_arch"] = info.sluice_ipsecmb_arch;
  out["floor_ipsec_mb_arch"] = info.floor_arch;
  out["worst_wall_over_cpu"] = Round(WorstWallOverCpu(rows), 2);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const Row& r : rows) {
    nlohmann::ordered_json j;
    j["suite"] = Str(crypto::SuiteName(r.suite));
    j["backend"] = Str(BackendName(r.backend));
    j["op"] = Str(OpName(r.op));
    j["size"] = o.size;
    j["ns_per_packet"] = Round(r.best.ns_per_packet(), 2);
    j["mpps"] = Round(r.best.mpps(), 3);
    j["wall_ns_per_packet"] = Round(r.best.wall_ns_per_packet(), 2);
    results.push_back(std::move(j));
  }
  out["results"] = std::move(results);
  out["errors"] = errors;
  std::printf("%s\n", out.dump().c_str());
}

template <typename T>
absl::StatusOr<std::unique_ptr<BurstLoop>> AsLoop(absl::StatusOr<std::unique_ptr<T>> loop) {
  if (!loop.ok()) return loop.status();
  return std::unique_ptr<BurstLoop>(*std::move(loop));
}

// One of each crypto engine for the whole run, as a worker would hold them.
struct Engines {
  RunInfo info;
  std::unique_ptr<crypto::Backend> ipsecmb, openssl;
  std::unique_ptr<ImbManager> floor_mgr;
};

absl::StatusOr<Engines> MakeEngines(const std::vector<BenchBackend>& backends) {
  Engines e;
  for (BenchBackend b : backends) {
    absl::Status status;
    if (b == BenchBackend::kIpsecMb || b == BenchBackend::kOpenssl) {
      const crypto::BackendKind kind =
          b == BenchBackend::kIpsecMb ? crypto::BackendKind::kIpsecMb : crypto::BackendKind::kOpenssl;
      absl::StatusOr<std::unique_ptr<crypto::Backend>> backend = crypto::MakeBackend(kind);
      if (backend.ok()) {
        if (b == BenchBackend::kIpsecMb) e.info.sluice_ipsecmb_arch = Str((*backend)->arch());
        (b == BenchBackend::kIpsecMb ? e.ipsecmb : e.openssl) = *std::move(backend);
      }
      status = backend.status();
    } else if (b == BenchBackend::kIpsecMbRaw) {
      absl::StatusOr<std::unique_ptr<ImbManager>> mgr = ImbManager::Create();
      if (mgr.ok()) {
        e.floor_mgr = *std::move(mgr);
        e.info.floor_arch = Str(e.floor_mgr->arch());
      }
      status = mgr.status();
    }
    if (!status.ok()) return status;
  }
  return e;
}

// "<suite> <backend> <op>: <why>", for the errors printed after the results.
std::string CaseError(crypto::Suite suite, BenchBackend b, Op op, const absl::Status& s) {
  return absl::StrCat(Str(crypto::SuiteName(suite)), " ", Str(BackendName(b)), " ",
                      Str(OpName(op)), ": ", Str(s.message()));
}

// The measurements of one suite, one per backend and operation; the loops
// that cannot be made are left out and described in *errors.
std::vector<Case> MakeCases(crypto::Suite suite, const Options& o, Engines& engines,
                            std::vector<std::string>* errors) {
  std::vector<Case> cases;
  auto add = [&](BenchBackend b, Op op, absl::StatusOr<std::unique_ptr<BurstLoop>> loop) {
    if (!loop.ok()) {
      errors->push_back(CaseError(suite, b, op, loop.status()));
      return;
    }
    cases.push_back({Row{suite, b, op, Measurement{}}, *std::move(loop)});
  };
  for (BenchBackend b : o.backends) {
    switch (b) {
      case BenchBackend::kIpsecMb:
      case BenchBackend::kOpenssl: {
        crypto::Backend& backend = b == BenchBackend::kIpsecMb ? *engines.ipsecmb : *engines.openssl;
        add(b, Op::kProtect, AsLoop(EngineProtectLoop::Create(backend, suite, o.size, o.burst)));
        add(b, Op::kUnprotect,
            AsLoop(EngineUnprotectLoop::Create(backend, suite, o.size, o.burst)));
        break;
      }
      case BenchBackend::kLibsrtp2:
        add(b, Op::kProtect, AsLoop(LibsrtpProtectLoop::Create(suite, o.size, o.burst)));
        add(b, Op::kUnprotect, AsLoop(LibsrtpUnprotectLoop::Create(suite, o.size, o.burst)));
        break;
      case BenchBackend::kIpsecMbRaw:
        if (HasFloor(suite)) {
          add(b, Op::kFloor, MakeFloorLoop(*engines.floor_mgr, suite, o.size, o.burst));
        }
        break;
    }
  }
  return cases;
}

// A warm-up of every case, then the repetitions interleaved across them; each
// keeps its best. A case whose measurement fails is dropped (its loop reset)
// and described in *errors.
void MeasureCases(std::vector<Case>& cases, const Options& o, std::vector<std::string>* errors) {
  const double warm_up = o.min_time < 0.1 ? o.min_time : 0.1;
  auto run = [&](Case& c, double seconds, bool keep) {
    absl::StatusOr<Measurement> m = Measure(*c.loop, seconds);
    if (!m.ok()) {
      errors->push_back(CaseError(c.row.suite, c.row.backend, c.row.op, m.status()));
      c.loop.reset();
      return;
    }
    if (keep && (c.row.best.packets == 0 || m->ns_per_packet() < c.row.best.ns_per_packet())) {
      c.row.best = *m;
    }
  };
  for (Case& c : cases) run(c, warm_up, false);
  for (int rep = 0; rep < o.repetitions; ++rep) {
    for (Case& c : cases) {
      if (c.loop != nullptr) run(c, o.min_time, true);
    }
  }
}

bool HelpRequested(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

}  // namespace

int RunCryptoCommand(int argc, char** argv) {
  if (HelpRequested(argc, argv)) {
    std::fputs(kCryptoUsage, stdout);
    return 0;
  }
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice-bench crypto: %s\n(see sluice-bench crypto --help)\n",
                 Str(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;

  if (srtp_err_status_t err = srtp_init(); err != srtp_err_status_ok) {
    std::fprintf(stderr, "sluice-bench crypto: libsrtp2 srtp_init failed: error %d\n",
                 static_cast<int>(err));
    return 1;
  }
  absl::StatusOr<Engines> engines = MakeEngines(o.backends);
  if (!engines.ok()) {
    std::fprintf(stderr, "sluice-bench crypto: %s\n", Str(engines.status().message()).c_str());
    return 1;
  }

  const bool progress = isatty(STDERR_FILENO) != 0;
  std::vector<Row> rows;
  std::vector<std::string> errors;
  for (crypto::Suite suite : o.suites) {
    if (progress) std::fprintf(stderr, "measuring %s...\n", Str(crypto::SuiteName(suite)).c_str());
    std::vector<Case> cases = MakeCases(suite, o, *engines, &errors);
    MeasureCases(cases, o, &errors);
    for (Case& c : cases) {
      if (c.loop != nullptr) rows.push_back(c.row);
    }
  }

  if (o.json) {
    PrintJson(o, engines->info, rows, errors);
  } else {
    PrintTable(o, engines->info, rows);
  }
  for (const std::string& e : errors) std::fprintf(stderr, "sluice-bench crypto: %s\n", e.c_str());
  return errors.empty() ? 0 : 1;
}

}  // namespace sluice::bench
