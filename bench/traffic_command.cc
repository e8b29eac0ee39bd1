#include "traffic_command.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "run_priority.h"
#include "sluice/control/client.h"
#include "sluiced_process.h"
#include "thread_cpu.h"
#include "traffic_calls.h"
#include "traffic_generator.h"

namespace sluice::bench {
namespace {

using json = nlohmann::json;

constexpr char kUsage[] =
    "Usage: sluice-bench traffic [OPTIONS]\n"
    "\n"
    "Starts the real sluiced with two net_memif ports (shared-memory packet rings\n"
    "to this process, no NIC, no hugepages) and one worker on lcore 1, installs\n"
    "--calls SRTP calls (AES_CM_128_HMAC_SHA1_80 both legs, every key generated\n"
    "here) over its control socket, then sends G.711-sized SRTP (172 bytes of\n"
    "RTP) to leg a of every call in turn at --rate packets a second for\n"
    "--seconds, from a DPDK generator on core --generator-core. What sluiced\n"
    "relays out of leg b is counted per call (lost = sent - received, after a\n"
    "0.5 s drain); about one packet in 64, from up to 256 calls spread over\n"
    "all, is authenticated and decrypted with libsrtp2 and its payload compared\n"
    "with what was sent. A memif ring that is\n"
    "full when the generator sends counts as lost there (ring_full), as a NIC\n"
    "would miss the frame. The worker's busy share comes from sluiced's stats,\n"
    "the generator's from its own loop: whichever is near 1 is the limit.\n"
    "\n"
    "Options:\n"
    "  --calls N            calls, 1 to 20000 (default 10000)\n"
    "  --rate PPS           packets a second sent, all calls together, 1000 to\n"
    "                       20000000 (default 1000000)\n"
    "  --seconds S          sending time of a run, 1 to 3600 (default 10)\n"
    "  --rekey-at S         S seconds into the run, re-key every call over a\n"
    "                       second control connection (leg b tx and leg a rx,\n"
    "                       fresh keys; the generator sends with leg a's new key\n"
    "                       once sluiced has answered)\n"
    "  --find-first-loss    runs of --seconds from --rate up, 10 % more each, until\n"
    "                       a packet is lost (at most 40 runs); reports that rate\n"
    "                       and the rate the generator then offered (less, past\n"
    "                       what its core can send)\n"
    "  --generator-core N   the CPU the generator runs on (default 0; sluiced's\n"
    "                       worker is on CPU 1)\n"
    "  --memif-ring SLOTS   slots of each memif ring, a power of two from 1024 to\n"
    "                       16384 (default 16384, memif's largest): what sluiced's\n"
    "                       RX ring holds while its worker is off its CPU (16 ms\n"
    "                       at 1 Mpps)\n"
    "  --nice N             the run's priority against the host's other processes,\n"
    "                       -20 to 0 (default -20; 0 leaves it): this session's\n"
    "                       autogroup nice (generator and sluiced), or the two\n"
    "                       threads' nice without autogroup scheduling; restored\n"
    "                       after. A worker that shares its CPU loses it for\n"
    "                       milliseconds at a time, longer than a ring holds\n"
    "  --inject-faults N    self-test of the checks: every Nth packet sent and\n"
    "                       every Nth one checked has a bit flipped, so the run\n"
    "                       must report losses and authentication failures\n"
    "  --sluiced PATH       the daemon (default: ../src/sluiced next to this binary)\n"
    "  --json               one JSON object instead of the table\n"
    "  --help               show this text\n";

struct Options {
  size_t calls = 10000;
  double rate = 1e6;
  double seconds = 10;
  std::optional<double> rekey_at;
  bool find_first_loss = false;
  uint32_t generator_core = 0;
  uint32_t ring_log2 = 14;
  int nice = -20;
  uint32_t fault_every = 0;
  std::string sluiced;
  bool json = false;
};

absl::Status Range(absl::string_view name, absl::string_view v, double min, double max,
                   double* out) {
  if (!absl::SimpleAtod(v, out) || *out < min || *out > max) {
    return absl::InvalidArgumentError(absl::StrCat("bad value \"", v, "\" for ", name,
                                                   ": expected ", min, " to ", max));
  }
  return absl::OkStatus();
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 0; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--json" || arg == "--find-first-loss") {
      (arg == "--json" ? o.json : o.find_first_loss) = true;
      continue;
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
    const absl::string_view v = argv[++i];
    double d = 0;
    absl::Status s;
    if (arg == "--calls") {
      s = Range(arg, v, 1, kMaxTrafficCalls, &d);
      o.calls = static_cast<size_t>(d);
    } else if (arg == "--rate") {
      s = Range(arg, v, 1000, 2e7, &o.rate);
    } else if (arg == "--seconds") {
      s = Range(arg, v, 1, 3600, &o.seconds);
    } else if (arg == "--rekey-at") {
      s = Range(arg, v, 0, 3600, &d);
      o.rekey_at = d;
    } else if (arg == "--generator-core") {
      s = Range(arg, v, 0, 1023, &d);
      o.generator_core = static_cast<uint32_t>(d);
    } else if (arg == "--memif-ring") {
      s = Range(arg, v, 1024, 16384, &d);
      o.ring_log2 = static_cast<uint32_t>(std::log2(d));
      if (s.ok() && d != static_cast<double>(1u << o.ring_log2)) {
        s = absl::InvalidArgumentError(absl::StrCat("--memif-ring ", v, ": not a power of two"));
      }
    } else if (arg == "--nice") {
      s = Range(arg, v, -20, 0, &d);
      o.nice = static_cast<int>(d);
    } else if (arg == "--inject-faults") {
      s = Range(arg, v, 2, 1e9, &d);
      o.fault_every = static_cast<uint32_t>(d);
    } else if (arg == "--sluiced") {
      o.sluiced = std::string(v);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option \"", arg, "\""));
    }
    if (!s.ok()) return s;
  }
  if (o.rekey_at && *o.rekey_at >= o.seconds) {
    return absl::InvalidArgumentError("--rekey-at must fall within --seconds");
  }
  if (o.sluiced.empty()) {
    absl::StatusOr<std::string> path = DefaultSluicedPath();
    if (!path.ok()) return path.status();
    o.sluiced = *std::move(path);
  }
  return o;
}

// sluiced serves both memif sockets; one worker on lcore 1, the control plane
// on lcore 0 with the generator.
std::string Config(const std::string& dir, size_t calls, uint32_t ring_log2) {
  auto memif = [&](int n) {
    return absl::StrCat("\"--vdev=net_memif", n, ",role=server,id=0,socket-abstract=no,rsize=",
                        ring_log2, ",socket=", dir, "/memif-", n, ".sock\"");
  };
  return absl::StrCat(
      "# Generated by sluice-bench traffic.\n"
      "[eal]\n"
      "args = [\"-l\", \"0-1\", \"--no-huge\", \"--no-shconf\", \"-m\", \"1024\", \"--no-pci\",\n"
      "        \"--file-prefix=sluice-traffic-", getpid(), "\", \"--log-level=*:warning\",\n"
      "        ", memif(0), ", ", memif(1), "]\n"
      "[[interface]]\n"
      "name = \"a\"\n"
      "device = \"net_memif0\"\n"
      "ipv4 = \"", kTrafficRelayA, "/24\"\n"
      "[[interface]]\n"
      "name = \"b\"\n"
      "device = \"net_memif1\"\n"
      "ipv4 = \"", kTrafficRelayB, "/24\"\n"
      "[workers]\n"
      "lcores = [1]\n"
      "[media]\n"
      "port_min = 10000\n"
      "port_max = 65000\n"
      "port_reuse_delay_s = 0\n"
      "[control]\n"
      "socket = \"", dir, "/control.sock\"\n"
      "[limits]\n"
      "max_sessions = ", calls + 16, "\n");
}

// The CPU of sluiced's one worker (lcore 1, -l 0-1).
constexpr int kWorkerCpu = 1;

// Threads other than sluiced's worker that may run on the worker's CPU, by
// process: sluiced's own and this one's (the generator and its EAL threads).
std::vector<std::string> SharingWorkerCpu(pid_t sluiced) {
  const pid_t worker = testing::FindThread(sluiced, "rte-worker-1").value_or(0);
  std::vector<std::string> out;
  for (const std::string& t : testing::ThreadsAllowedOn(sluiced, kWorkerCpu, worker)) {
    out.push_back("sluiced/" + t);
  }
  for (const std::string& t : testing::ThreadsAllowedOn(getpid(), kWorkerCpu)) {
    out.push_back("sluice-bench/" + t);
  }
  return out;
}

// Worker 0's busy and idle cycles and the drops, from sluiced's stats.
struct DaemonStats {
  uint64_t busy = 0, idle = 0, rx_missed = 0;
  json drops = json::object();
};

DaemonStats ReadStats(control::Client& client) {
  DaemonStats s;
  absl::StatusOr<std::string> reply = client.Call("{\"id\":\"stats\",\"op\":\"stats\"}");
  if (!reply.ok()) return s;
  json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false)) return s;
  if (j.contains("workers") && !j["workers"].empty()) {
    s.busy = j["workers"][0].value("busy_cycles", uint64_t{0});
    s.idle = j["workers"][0].value("idle_cycles", uint64_t{0});
  }
  for (const json& p : j.value("ports", json::array())) s.rx_missed += p.value("rx_missed", 0ull);
  if (j.contains("drops")) s.drops = j["drops"];
  return s;
}

struct Measured {
  TrafficRunResult r;
  double worker_busy = 0;  // sluiced's worker, over the run: its own busy cycles
  // The CPU the worker thread was given over the run (the machine may be
  // shared), and that CPU time per packet relayed.
  double worker_cpu_share = 0;
  double worker_ns_per_packet = 0;
  // What kept the worker off its CPU: the share of the run it waited runnable
  // while another thread had the CPU, in how many preemptions.
  double worker_wait_share = 0;
  uint64_t worker_preemptions = 0;
  uint64_t rx_missed = 0;  // sluiced's ports, over the run
  json drops;              // sluiced's drops by reason, over the run
  std::optional<RekeyResult> rekey;
  bool clean() const {
    return r.lost == 0 && r.auth_failures == 0 && r.corrupted == 0 && r.bad_checksums == 0 &&
           r.duplicated == 0 && r.unexpected == 0 && r.send_failures == 0 && r.auth_checked > 0 &&
           (!rekey || rekey->errors == 0);
  }
};

json Delta(const json& after, const json& before) {
  json out = json::object();
  for (auto& [k, v] : after.items()) {
    const uint64_t d = v.get<uint64_t>() - before.value(k, uint64_t{0});
    if (d != 0) out[k] = d;
  }
  return out;
}

struct Bench {
  Options o;
  std::optional<TempDir> dir;
  std::unique_ptr<Daemon> daemon;
  std::optional<control::Client> client;
  std::unique_ptr<TrafficGenerator> gen;
  std::optional<RunPriority> priority;  // restored before the rest is torn down
};

// One run at `pps`; with a re-key at `rekey_at` seconds on another connection.
absl::StatusOr<Measured> Measure(Bench& b, double pps, std::optional<double> rekey_at) {
  Measured m;
  std::thread rekeyer;
  std::optional<control::Client> second;
  if (rekey_at) {
    absl::StatusOr<control::Client> c =
        control::Client::Connect(b.dir->path() + "/control.sock");
    if (!c.ok()) return c.status();
    second.emplace(*std::move(c));
    rekeyer = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::duration<double>(*rekey_at));
      m.rekey = RekeyCalls(*second, b.o.calls,
                           [&](KeyChange k) { b.gen->PostKeyChange(std::move(k)); });
    });
  }
  const pid_t pid = b.daemon->pid();
  const std::optional<pid_t> worker = testing::FindThread(pid, "rte-worker-1");
  auto worker_cpu = [&] { return worker ? testing::ThreadCpuSeconds(pid, *worker).value_or(0) : 0; };
  auto worker_sched = [&] {
    return worker ? testing::ReadThreadSched(pid, *worker).value_or(testing::ThreadSched{})
                  : testing::ThreadSched{};
  };
  const DaemonStats before = ReadStats(*b.client);
  const double cpu_before = worker_cpu();
  const testing::ThreadSched sched_before = worker_sched();
  m.r = b.gen->Run(pps, b.o.seconds);
  const double cpu = worker_cpu() - cpu_before;
  const testing::ThreadSched sched = worker_sched();
  m.worker_cpu_share = cpu / (m.r.seconds + 0.5);  // the drain too
  m.worker_wait_share = static_cast<double>(sched.wait_ns - sched_before.wait_ns) / 1e9 /
                        (m.r.seconds + 0.5);
  m.worker_preemptions = sched.preemptions - sched_before.preemptions;
  if (m.r.received > 0) m.worker_ns_per_packet = cpu * 1e9 / static_cast<double>(m.r.received);
  if (rekeyer.joinable()) rekeyer.join();
  const DaemonStats after = ReadStats(*b.client);
  const double cycles = static_cast<double>(after.busy + after.idle - before.busy - before.idle);
  m.worker_busy = cycles > 0 ? static_cast<double>(after.busy - before.busy) / cycles : 0;
  m.rx_missed = after.rx_missed - before.rx_missed;
  m.drops = Delta(after.drops, before.drops);
  return m;
}

absl::Status Context(absl::string_view what, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status Start(Bench& b) {
  if (access(b.o.sluiced.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no sluiced at ", b.o.sluiced, " (give --sluiced)"));
  }
  absl::StatusOr<TempDir> dir = TempDir::Create();
  if (!dir.ok()) return Context("temporary directory", dir.status());
  b.dir.emplace(*std::move(dir));
  const std::string& d = b.dir->path();
  std::ofstream(d + "/sluiced.toml") << Config(d, b.o.calls, b.o.ring_log2);
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(
      b.o.sluiced, d + "/sluiced.toml", d + "/control.sock", d + "/sluiced.log", nullptr);
  if (!daemon.ok()) return Context("starting sluiced", daemon.status());
  b.daemon = *std::move(daemon);
  GeneratorOptions g;
  g.socket_a = d + "/memif-0.sock";
  g.socket_b = d + "/memif-1.sock";
  g.file_prefix = absl::StrCat("sluice-traffic-gen-", getpid());
  g.core = b.o.generator_core;
  g.ring_log2 = b.o.ring_log2;
  g.fault_every = b.o.fault_every;
  absl::StatusOr<std::unique_ptr<TrafficGenerator>> gen = TrafficGenerator::Start(g);
  if (!gen.ok()) return Context("generator", gen.status());
  b.gen = *std::move(gen);
  absl::StatusOr<control::Client> client = control::Client::Connect(d + "/control.sock");
  if (!client.ok()) return Context("control socket", client.status());
  b.client.emplace(*std::move(client));
  absl::StatusOr<std::vector<TrafficCall>> calls = InstallCalls(*b.client, b.o.calls);
  if (!calls.ok()) return Context("installing calls", calls.status());
  if (absl::Status s = b.gen->SetCalls(*calls); !s.ok()) return s;
  if (b.o.nice == 0) return absl::OkStatus();
  // The generator is this thread; the worker, sluiced's lcore 1.
  std::vector<pid_t> threads = {gettid()};
  if (std::optional<pid_t> w = testing::FindThread(b.daemon->pid(), "rte-worker-1")) {
    threads.push_back(*w);
  }
  absl::StatusOr<RunPriority> priority = RunPriority::Raise(b.o.nice, threads);
  if (!priority.ok()) return priority.status();
  b.priority.emplace(*std::move(priority));
  return absl::OkStatus();
}

json ToJson(const Measured& m) {
  const TrafficRunResult& r = m.r;
  json j = {{"target_pps", r.target_pps}, {"seconds", r.seconds}, {"sent", r.sent},
            {"received", r.received}, {"lost", r.lost}, {"ring_full", r.ring_full},
            {"calls_with_loss", r.calls_with_loss}, {"duplicated", r.duplicated},
            {"unexpected", r.unexpected}, {"auth_checked", r.auth_checked},
            {"auth_failures", r.auth_failures}, {"corrupted", r.corrupted},
            {"bad_checksums", r.bad_checksums}, {"send_failures", r.send_failures},
            {"offered_mpps", r.offered_mpps}, {"relayed_mpps", r.received_mpps},
            {"worker_busy", m.worker_busy}, {"worker_cpu_share", m.worker_cpu_share},
            {"worker_ns_per_packet", m.worker_ns_per_packet},
            {"worker_wait_share", m.worker_wait_share},
            {"worker_preemptions", m.worker_preemptions},
            {"generator_max_stall_ms", r.max_stall_ms}, {"generator_max_backlog", r.max_backlog},
            {"first_ring_full_s", r.first_ring_full_s},
            {"generator_busy", r.generator_busy}, {"generator_cpu_share", r.generator_cpu_share},
            {"sluiced_rx_missed", m.rx_missed}, {"sluiced_drops", m.drops},
            {"key_changes", r.key_changes}, {"faults_sent", r.faults_sent},
            {"faults_checked", r.faults_checked}, {"rekey", nullptr}};
  if (m.rekey) {
    j["rekey"] = {{"requests", m.rekey->requests}, {"errors", m.rekey->errors},
                  {"seconds", m.rekey->seconds}, {"first_error", m.rekey->first_error}};
  }
  return j;
}

void PrintRow(const Measured& m) {
  const TrafficRunResult& r = m.r;
  std::printf("%9.0f %5.1f %10llu %10llu %9llu %9llu %6llu %5llu %5llu %6.3f %6.3f %5.2f %5.2f %5.0f %5.2f %5.2f %s\n",
              r.target_pps, r.seconds, static_cast<unsigned long long>(r.sent),
              static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(r.lost),
              static_cast<unsigned long long>(r.ring_full),
              static_cast<unsigned long long>(r.auth_checked),
              static_cast<unsigned long long>(r.auth_failures),
              static_cast<unsigned long long>(r.corrupted + r.bad_checksums), r.offered_mpps,
              r.received_mpps, m.worker_busy, m.worker_cpu_share, m.worker_ns_per_packet,
              r.generator_busy, r.generator_cpu_share,
              m.rekey ? absl::StrFormat("%zu/%zu in %.2fs", m.rekey->requests - m.rekey->errors,
                                        m.rekey->requests, m.rekey->seconds)
                            .c_str()
                      : "-");
}

// What a command prints: its runs and what it learnt around them.
struct Report {
  const std::vector<Measured>& runs;
  std::optional<double> first_loss;
  const std::vector<std::string>& sharing;  // threads that may share the worker's CPU
  absl::Status stopped;                     // sluiced's exit
  std::string priority;                     // RunPriority::what(), or "none"
};

void PrintJson(const Options& o, const Report& report) {
  json j = {{"calls", o.calls}, {"packet_bytes", 172}, {"suite", "AES_CM_128_HMAC_SHA1_80"},
            {"runs", json::array()}, {"first_loss_pps", nullptr},
            {"sluiced_exit", report.stopped.ok() ? "ok" : std::string(report.stopped.message())},
            {"memif_ring", 1u << o.ring_log2}, {"threads_sharing_worker_cpu", report.sharing},
            {"priority", report.priority}};
  for (const Measured& m : report.runs) j["runs"].push_back(ToJson(m));
  if (report.first_loss) {
    // Past its own limit the generator offers less than the target: what
    // sluiced was sent when it first lost a packet is the rate that counts.
    j["first_loss_pps"] = *report.first_loss;
    j["first_loss_offered_mpps"] = report.runs.back().r.offered_mpps;
  }
  std::printf("%s\n", j.dump(2).c_str());
  std::fflush(stdout);
}

void PrintTable(const Options& o, const Report& report) {
  std::printf("sluice-bench traffic: %zu calls, SRTP AES_CM_128_HMAC_SHA1_80, 172-byte RTP, "
              "over net_memif (rings of %u), priority: %s\n", o.calls, 1u << o.ring_log2,
              report.priority.c_str());
  std::printf("%9s %5s %10s %10s %9s %9s %6s %5s %5s %6s %6s %5s %5s %5s %5s %5s %s\n",
              "rate_pps", "secs", "sent", "received", "lost", "ring_full", "authed", "authf",
              "corr", "sent_M", "relay_M", "w_bsy", "w_cpu", "w_ns", "g_bsy", "g_cpu", "rekeys");
  for (const Measured& m : report.runs) PrintRow(m);
  if (o.find_first_loss) {
    std::printf(report.first_loss ? "first loss at %.0f pps (%.3f Mpps offered)\n"
                                  : "no loss up to %.0f pps (%.3f Mpps offered)\n",
                report.first_loss ? *report.first_loss : report.runs.back().r.target_pps,
                report.runs.back().r.offered_mpps);
  }
  for (const Measured& m : report.runs) {
    if (!m.drops.empty()) std::printf("sluiced drops at %.0f pps: %s\n", m.r.target_pps,
                                      m.drops.dump().c_str());
    std::printf("at %.0f pps: worker waited for its CPU %.1f %% of the run (%llu preemptions); "
                "generator stalled up to %.1f ms (%llu packets due at once); first ring full "
                "at %.2f s\n", m.r.target_pps, 100 * m.worker_wait_share,
                static_cast<unsigned long long>(m.worker_preemptions), m.r.max_stall_ms,
                static_cast<unsigned long long>(m.r.max_backlog), m.r.first_ring_full_s);
  }
  for (const std::string& t : report.sharing) {
    std::printf("may share the worker's CPU: %s\n", t.c_str());
  }
  if (!report.stopped.ok()) {
    std::printf("sluiced: %s\n", std::string(report.stopped.message()).c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int RunTrafficCommand(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    if (absl::string_view(argv[i]) == "--help" || absl::string_view(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice-bench traffic: %s\n(see sluice-bench traffic --help)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  Bench b;
  b.o = *std::move(parsed);
  if (absl::Status s = Start(b); !s.ok()) {
    std::fprintf(stderr, "sluice-bench traffic: %s\n%s\n", std::string(s.message()).c_str(),
                 b.daemon ? b.daemon->LogTail().c_str() : "");
    return 1;
  }
  // Every call's first packets, off the record: sluiced resolves phone B.
  b.gen->Run(std::min(b.o.rate, 2e5), 1);
  const std::vector<std::string> sharing = SharingWorkerCpu(b.daemon->pid());
  std::vector<Measured> runs;
  std::optional<double> first_loss;
  bool integrity = true;
  double pps = b.o.rate;
  for (int step = 0; step < (b.o.find_first_loss ? 40 : 1); ++step, pps *= 1.1) {
    absl::StatusOr<Measured> m = Measure(b, pps, b.o.rekey_at);
    if (!m.ok()) {
      std::fprintf(stderr, "sluice-bench traffic: %s\n", std::string(m.status().message()).c_str());
      return 1;
    }
    runs.push_back(*m);
    integrity &= m->r.auth_failures == 0 && m->r.corrupted == 0 && m->r.bad_checksums == 0 &&
                 m->r.auth_checked > 0;
    if (b.o.find_first_loss && m->r.lost > 0) {
      first_loss = pps;
      break;
    }
  }
  const absl::Status stopped = b.daemon->Stop();
  const Report report{runs, first_loss, sharing, stopped,
                      b.priority ? b.priority->what() : std::string("none")};
  b.o.json ? PrintJson(b.o, report) : PrintTable(b.o, report);
  if (!integrity || !stopped.ok()) return 1;
  if (!b.o.find_first_loss && !runs.front().clean()) return 1;
  return 0;
}

}  // namespace sluice::bench
