#include "control_command.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "libsrtp_loops.h"
#include "netns.h"
#include "nlohmann/json.hpp"
#include "rtp_packets.h"
#include "sluice/control/client.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::bench {

const char kControlUsage[] =
    "Usage: sluice-bench control [OPTIONS]\n"
    "\n"
    "Starts the real sluiced with a generated configuration and drives its control\n"
    "socket over one connection, pipelined (batches of 256 requests, at most two\n"
    "batches unanswered):\n"
    "  session.create   N sessions of two SRTP legs on two interfaces, each leg\n"
    "                   with a fresh random rx key and a tx key sluiced generates\n"
    "  session.update   one re-key per session: a fresh rx key and a generated tx\n"
    "                   key on leg a, with media flowing through another session\n"
    "  session.delete   every session\n"
    "Each rate is requests over the wall time from the first request written to\n"
    "the last reply read, the best of the repetitions; every reply is checked to\n"
    "be a success for its id. The CPU time of sluiced's control thread over each\n"
    "phase is reported too: it does not depend on what else the machine runs.\n"
    "\n"
    "Media (root, iproute2 and ethtool): sluiced runs in a network namespace on\n"
    "net_af_packet devices bound to veth pairs, and a phone in a second namespace\n"
    "sends libsrtp2-protected RTP at --media-pps to one more session, never\n"
    "re-keyed, for the whole run; the rate sluiced accepted during the re-keys\n"
    "and its authentication failures are read from session.get. Without media,\n"
    "sluiced runs on net_null devices (no-rx) and no packet arrives.\n"
    "\n"
    "Options:\n"
    "  --sessions N      sessions created, re-keyed and deleted, 1 to 27000\n"
    "                    (default 20000)\n"
    "  --sluiced PATH    the daemon (default: ../src/sluiced next to this binary)\n"
    "  --media MODE      auto (default: media when the namespaces can be made),\n"
    "                    on, or off\n"
    "  --media-pps N     packets per second the phone sends, 1 to 1000000\n"
    "                    (default 20000)\n"
    "  --repetitions N   create, re-key and delete every session N times, 1 to\n"
    "                    20; each rate is the best repetition's (default 3)\n"
    "  --json            print one JSON object instead of the table:\n"
    "                    {\"creates_per_second\":...,\"rekeys_per_second\":...,\n"
    "                    \"deletes_per_second\":...,\"sessions\":N,\"errors\":N,\n"
    "                    \"media_pps_during_rekey\":... or null, ...}\n"
    "  --help            show this text\n";

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr char kSuite[] = "AES_CM_128_HMAC_SHA1_80";
// Even RTP ports per interface: (65000 - 10000) / 2 = 27500; every session
// takes one per interface, the media session one more.
constexpr uint16_t kPortMin = 10000;
constexpr uint16_t kPortMax = 65000;
constexpr size_t kMaxSessions = 27000;
// Requests per write. Two batches of replies (about 1 KiB each) stay well
// under the 4 MiB sluiced buffers per client, so it never stops reading.
constexpr size_t kBatch = 256;
constexpr size_t kMaxErrorMessages = 5;

// Interface addresses; the phones' are in the same /24s. In media mode they
// live only inside the benchmark's namespaces.
constexpr char kRelayA[] = "10.201.1.1";
constexpr char kPhoneA[] = "10.201.1.2";
constexpr char kRelayB[] = "10.201.2.1";
constexpr char kPhoneB[] = "10.201.2.2";
constexpr uint16_t kPhonePortA = 40000;
constexpr uint16_t kPhonePortB = 40002;
constexpr uint32_t kMediaPacketSize = 172;  // G.711, 20 ms
constexpr char kMediaSession[] = "bench-media";

enum class MediaMode : uint8_t { kAuto, kOn, kOff };

struct Options {
  size_t sessions = 20000;
  std::string sluiced;
  MediaMode media = MediaMode::kAuto;
  uint32_t media_pps = 20000;
  size_t repetitions = 3;
  bool json = false;
};

std::string Str(absl::string_view s) { return std::string(s); }

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (arg != "--sessions" && arg != "--sluiced" && arg != "--media" && arg != "--media-pps" &&
        arg != "--repetitions") {
      return absl::InvalidArgumentError(absl::StrCat("unknown option \"", argv[i], "\""));
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(argv[i], " needs a value"));
    const std::string_view v = argv[++i];
    uint64_t n = 0;
    if (arg == "--sluiced") {
      o.sluiced = std::string(v);
    } else if (arg == "--media") {
      if (v == "auto") {
        o.media = MediaMode::kAuto;
      } else if (v == "on") {
        o.media = MediaMode::kOn;
      } else if (v == "off") {
        o.media = MediaMode::kOff;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("bad value \"", argv[i], "\" for --media: expected auto, on or off"));
      }
    } else if (const uint64_t max = arg == "--sessions"      ? kMaxSessions
                                     : arg == "--repetitions" ? 20
                                                              : 1000000;
               !absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &n) || n < 1 ||
               n > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad value \"", argv[i], "\" for ", argv[i - 1], ": expected 1 to ", max));
    } else if (arg == "--sessions") {
      o.sessions = n;
    } else if (arg == "--repetitions") {
      o.repetitions = n;
    } else {
      o.media_pps = static_cast<uint32_t>(n);
    }
  }
  if (o.sluiced.empty()) {
    // build*/bench/sluice-bench -> build*/src/sluiced
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return absl::InternalError(absl::StrCat("/proc/self/exe: ", ec.message()));
    o.sluiced = (self.parent_path().parent_path() / "src" / "sluiced").string();
  }
  return o;
}

// A fresh SDES attribute (RFC 4568 §6.1): a 16-byte key and 14-byte salt from
// OpenSSL's CSPRNG, "inline:" base64(key || salt). Fills *key when given.
absl::StatusOr<std::string> RandomCrypto(srtp::MasterKey* key = nullptr) {
  uint8_t raw[30];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("RAND_bytes failed");
  unsigned char base64[41];  // 4 * 30 / 3 characters and a NUL
  EVP_EncodeBlock(base64, raw, sizeof raw);
  if (key != nullptr) {
    key->suite = crypto::Suite::kAesCm128HmacSha1_80;
    std::memcpy(key->key.data(), raw, 16);
    std::memcpy(key->salt.data(), raw + 16, 14);
  }
  OPENSSL_cleanse(raw, sizeof raw);
  return absl::StrCat(kSuite, " inline:", reinterpret_cast<const char*>(base64));
}

// Leg JSON: a given rx key and a generated tx key, RTCP muxed.
std::string Leg(absl::string_view name, absl::string_view remote_ip, uint16_t remote_port,
                absl::string_view rx_crypto) {
  return absl::StrCat("{\"name\":\"", name, "\",\"interface\":\"", name, "\",\"remote\":\"",
                      remote_ip, ":", remote_port, "\",\"rtcp\":\"mux\",\"rx\":{\"crypto\":\"",
                      rx_crypto, "\"},\"tx\":{\"suite\":\"", kSuite, "\"}}");
}

absl::StatusOr<std::string> CreateRequest(uint64_t id, absl::string_view session,
                                          uint16_t port_a, uint16_t port_b,
                                          srtp::MasterKey* rx_key_a = nullptr) {
  absl::StatusOr<std::string> a = RandomCrypto(rx_key_a);
  if (!a.ok()) return a.status();
  absl::StatusOr<std::string> b = RandomCrypto();
  if (!b.ok()) return b.status();
  return absl::StrCat("{\"id\":", id, ",\"op\":\"session.create\",\"session\":\"", session,
                      "\",\"legs\":[", Leg("a", kPhoneA, port_a, *a), ",",
                      Leg("b", kPhoneB, port_b, *b), "]}\n");
}

absl::StatusOr<std::string> RekeyRequest(uint64_t id, absl::string_view session) {
  absl::StatusOr<std::string> rx = RandomCrypto();
  if (!rx.ok()) return rx.status();
  return absl::StrCat("{\"id\":", id, ",\"op\":\"session.update\",\"session\":\"", session,
                      "\",\"leg\":\"a\",\"rx\":{\"crypto\":\"", *rx, "\"},\"tx\":{\"suite\":\"",
                      kSuite, "\"}}\n");
}

std::string DeleteRequest(uint64_t id, absl::string_view session) {
  return absl::StrCat("{\"id\":", id, ",\"op\":\"session.delete\",\"session\":\"", session,
                      "\"}\n");
}

// Requests ready to write: whole lines, kBatch to a string, ids first_id,
// first_id + 1, ... in order.
struct Batches {
  uint64_t first_id = 0;
  size_t count = 0;
  std::vector<std::string> data;
  std::vector<size_t> sizes;  // requests in each batch
};

void Append(Batches& b, std::string line) {
  if (b.count % kBatch == 0) {
    b.data.emplace_back();
    b.data.back().reserve(kBatch * (line.size() + 16));
    b.sizes.push_back(0);
  }
  b.data.back() += line;
  ++b.sizes.back();
  ++b.count;
  OPENSSL_cleanse(line.data(), line.size());
}

// Wipes request batches (they hold rx keys) before they are freed.
void Wipe(Batches& b) {
  for (std::string& s : b.data) OPENSSL_cleanse(s.data(), s.size());
}

struct Phase {
  std::string op;
  size_t requests = 0;
  size_t errors = 0;
  double seconds = 0;
  double cpu_seconds = 0;             // sluiced's control thread, over the same time
  std::vector<std::string> messages;  // the first few failures, keys never included
  double per_second() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
};

// CPU time (user + system) of sluiced's main thread, which runs its control
// plane; 0 when it cannot be read. proc(5): fields 14 and 15 of stat.
double ControlThreadCpu(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/stat"));
  std::string text;
  std::getline(in, text);
  const size_t comm_end = text.rfind(')');
  if (comm_end == std::string::npos || comm_end + 2 > text.size()) return 0;
  // After ") " comes field 3 (state); utime and stime are fields 14 and 15.
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text).substr(comm_end + 2), ' ');
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// What a failed reply says: its error code and message (never key material:
// sluiced keeps keys out of error replies), or why it is not a success for `id`.
std::string Describe(const std::string& reply, uint64_t id) {
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) return "reply is not JSON";
  if (!j.contains("id") || j["id"] != id) return absl::StrCat("reply out of order (expected id ", id, ")");
  if (j.contains("error") && j["error"].is_object()) {
    return absl::StrCat(j["error"].value("code", "?"), ": ", j["error"].value("message", ""));
  }
  return "reply is neither a success nor an error";
}

// Writes the batches, keeping at most two unanswered, and reads every reply.
// A reply counts as a success when it opens with {"id":<id>,"ok":true (the
// protocol puts id and ok first). A broken connection ends the phase early:
// its unanswered requests count as errors.
Phase RunPipelined(control::Client& client, absl::string_view op, const Batches& batches,
                   pid_t sluiced) {
  Phase phase;
  phase.op = Str(op);
  phase.requests = batches.count;
  auto fail = [&](std::string message) {
    ++phase.errors;
    if (phase.messages.size() < kMaxErrorMessages) phase.messages.push_back(std::move(message));
  };
  uint64_t id = batches.first_id;
  const double cpu_start = ControlThreadCpu(sluiced);
  const Clock::time_point start = Clock::now();
  absl::Status written =
      batches.data.empty() ? absl::OkStatus() : client.Write(batches.data[0]);
  for (size_t b = 0; b < batches.data.size() && written.ok(); ++b) {
    if (b + 1 < batches.data.size()) written = client.Write(batches.data[b + 1]);
    if (!written.ok()) break;
    for (size_t i = 0; i < batches.sizes[b]; ++i, ++id) {
      absl::StatusOr<std::string> reply = client.ReadLine();
      if (!reply.ok()) {
        written = reply.status();
        break;
      }
      const std::string expected = absl::StrCat("{\"id\":", id, ",\"ok\":true");
      if (!absl::StartsWith(*reply, expected)) fail(Describe(*reply, id));
      OPENSSL_cleanse(reply->data(), reply->size());  // generated tx keys
    }
  }
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  phase.cpu_seconds = ControlThreadCpu(sluiced) - cpu_start;
  if (!written.ok()) {
    const uint64_t unanswered = batches.first_id + batches.count - id;
    fail(absl::StrCat("connection failed with ", unanswered, " requests unanswered: ",
                      Str(written.message())));
    if (unanswered > 1) phase.errors += unanswered - 1;
  }
  return phase;
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create() {
    char tmpl[] = "/tmp/sluice-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
    }
    return TempDir(tmpl);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string ShellQuote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The sluiced under test: started with a configuration file, stopped with
// SIGTERM. Killed if still running when destroyed.
class Daemon {
 public:
  // Starts `sluiced` (inside namespace "relay" of `topo` when given), its
  // output in `log`, and waits up to 30 s for its control socket.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const std::string& sluiced,
                                                       const std::string& config,
                                                       const std::string& socket,
                                                       const std::string& log,
                                                       testing::Topology* topo) {
    std::unique_ptr<Daemon> d(new Daemon(log));
    if (topo != nullptr) {
      // ip netns exec and sh both exec: the pid is sluiced's own.
      absl::StatusOr<pid_t> pid = topo->Spawn(
          "relay", {"sh", "-c",
                    absl::StrCat("exec ", ShellQuote(sluiced), " --config ", ShellQuote(config),
                                 " >", ShellQuote(log), " 2>&1")});
      if (!pid.ok()) return pid.status();
      d->pid_ = *pid;
    } else {
      const pid_t pid = fork();
      if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // no daemon outlives a killed benchmark
        if (freopen(log.c_str(), "w", stdout) == nullptr ||
            dup2(STDOUT_FILENO, STDERR_FILENO) < 0) {
          _exit(127);
        }
        execl(sluiced.c_str(), sluiced.c_str(), "--config", config.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      d->pid_ = pid;
    }
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(d->pid_, &status, WNOHANG) == d->pid_) {
        d->pid_ = -1;
        return absl::UnavailableError(absl::StrCat("sluiced exited (status ", status,
                                                   ") before opening its socket:\n",
                                                   d->LogTail()));
      }
      if (control::Client::Connect(socket, 1000).ok()) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("sluiced did not open its control socket within 30 s:\n", d->LogTail()));
  }

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // SIGTERM, then up to 10 s for it to exit. OK when it exits with status 0.
  absl::Status Stop() {
    if (pid_ <= 0) return absl::FailedPreconditionError("sluiced is not running");
    kill(pid_, SIGTERM);
    int status = 0;
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
    pid_t done = 0;
    while ((done = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(
          absl::StrCat("sluiced did not exit within 10 s of SIGTERM:\n", LogTail()));
    }
    pid_ = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(
        "sluiced ended with ",
        WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                          : absl::StrCat("signal ", WTERMSIG(status)),
        " after SIGTERM:\n", LogTail()));
  }

  pid_t pid() const { return pid_; }

  // The last lines sluiced printed.
  std::string LogTail() const {
    std::ifstream in(log_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
    return text;
  }

 private:
  explicit Daemon(std::string log) : log_(std::move(log)) {}
  pid_t pid_ = -1;
  std::string log_;
};

std::string Config(const std::string& socket, const std::string& prefix, bool media,
                   size_t sessions) {
  const std::string devices =
      media ? "\"--vdev=net_af_packet0,iface=veth-a0\", \"--vdev=net_af_packet1,iface=veth-b0\""
            : "\"--vdev=net_null0,no-rx=1\", \"--vdev=net_null1,no-rx=1\"";
  const std::string device_a = media ? "net_af_packet0" : "net_null0";
  const std::string device_b = media ? "net_af_packet1" : "net_null1";
  return absl::StrCat(
      "# Generated by sluice-bench control.\n"
      "[eal]\n"
      "args = [\"-l\", \"0-1\", \"--no-huge\", \"--no-shconf\", \"-m\", \"512\", \"--no-pci\",\n"
      "        \"--file-prefix=", prefix, "\", \"--log-level=*:warning\",\n"
      "        ", devices, "]\n"
      "[[interface]]\n"
      "name = \"a\"\n"
      "device = \"", device_a, "\"\n"
      "ipv4 = \"", kRelayA, "/24\"\n"
      "[[interface]]\n"
      "name = \"b\"\n"
      "device = \"", device_b, "\"\n"
      "ipv4 = \"", kRelayB, "/24\"\n"
      "[workers]\n"
      "lcores = [1]\n"
      "[media]\n"
      "port_min = ", kPortMin, "\n"
      "port_max = ", kPortMax, "\n"
      "port_reuse_delay_s = 0\n"
      "[control]\n"
      "socket = \"", socket, "\"\n"
      "[limits]\n"
      "max_sessions = ", sessions + 16, "\n");
}

// The first leg's counters in a session.get reply.
struct LegCounters {
  uint64_t rx_packets = 0;
  uint64_t auth_failures = 0;
  uint64_t replay_drops = 0;
  uint64_t other_drops = 0;
};

absl::StatusOr<std::pair<LegCounters, uint64_t>> MediaCounters(control::Client& client) {
  absl::StatusOr<std::string> reply = client.Call(absl::StrCat(
      "{\"id\":\"get\",\"op\":\"session.get\",\"session\":\"", kMediaSession, "\"}"));
  if (!reply.ok()) return reply.status();
  json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false)) {
    return absl::InternalError(absl::StrCat("session.get ", kMediaSession, ": ", *reply));
  }
  const json& a = j["legs"][0]["counters"];
  const json& b = j["legs"][1]["counters"];
  LegCounters c;
  c.rx_packets = a.value("rx_packets", uint64_t{0});
  c.auth_failures = a.value("auth_failures", uint64_t{0});
  c.replay_drops = a.value("replay_drops", uint64_t{0});
  c.other_drops = a.value("other_drops", uint64_t{0});
  return std::pair{c, b.value("tx_packets", uint64_t{0})};
}

// Phone A: sends RTP protected with libsrtp2 at a steady rate from its own
// thread until stopped.
class MediaSender {
 public:
  MediaSender(int fd, const sockaddr_in& to, LibsrtpSession session, uint32_t pps)
      : fd_(fd), to_(to), session_(std::move(session)), pps_(pps) {}
  ~MediaSender() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t send_errors() const { return send_errors_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    constexpr size_t kBurst = 32;
    RtpPackets plain(1, kMediaPacketSize);
    RtpPackets wire(kBurst, kMediaPacketSize);
    mmsghdr msgs[kBurst] = {};
    iovec iov[kBurst] = {};
    uint16_t seq = 0;
    uint64_t sent = 0;
    const Clock::time_point start = Clock::now();
    while (!stop_.load(std::memory_order_relaxed)) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      uint64_t due = static_cast<uint64_t>(elapsed * pps_);
      while (sent < due) {
        const size_t n = std::min<uint64_t>(kBurst, due - sent);
        for (size_t i = 0; i < n; ++i) {
          std::memcpy(wire.data(i), plain.data(0), kMediaPacketSize);
          wire.SetSeq(i, seq++);
          int len = static_cast<int>(kMediaPacketSize);
          if (srtp_protect(session_.get(), wire.data(i), &len) != srtp_err_status_ok) len = 0;
          iov[i] = {wire.data(i), static_cast<size_t>(len)};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
          msgs[i].msg_hdr.msg_name = &to_;
          msgs[i].msg_hdr.msg_namelen = sizeof to_;
        }
        const int done = sendmmsg(fd_, msgs, static_cast<unsigned>(n), 0);
        const size_t ok = done > 0 ? static_cast<size_t>(done) : 0;
        sent += n;  // paced on attempts: a full socket buffer is not retried
        sent_.fetch_add(ok, std::memory_order_relaxed);
        send_errors_.fetch_add(n - ok, std::memory_order_relaxed);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }

  int fd_;
  sockaddr_in to_;
  LibsrtpSession session_;
  uint32_t pps_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> send_errors_{0};
};

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// The network the media mode runs on: sluiced in "relay" with veth-a0 and
// veth-b0, phone A (veth-a1) in "pa", phone B (veth-b1) in "pb".
absl::StatusOr<std::unique_ptr<testing::Topology>> MakeTopology() {
  absl::StatusOr<std::unique_ptr<testing::Topology>> topo = testing::Topology::Create();
  if (!topo.ok()) return topo.status();
  testing::Topology& t = **topo;
  for (const char* ns : {"relay", "pa", "pb"}) {
    if (absl::StatusOr<std::string> s = t.AddNamespace(ns); !s.ok()) return s.status();
  }
  if (absl::Status s = t.AddVeth("relay", "veth-a0", "", "pa", "veth-a1",
                                 absl::StrCat(kPhoneA, "/24"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = t.AddVeth("relay", "veth-b0", "", "pb", "veth-b1",
                                 absl::StrCat(kPhoneB, "/24"));
      !s.ok()) {
    return s;
  }
  for (auto [ns, ifname] : {std::pair{"relay", "veth-a0"}, std::pair{"relay", "veth-b0"},
                            std::pair{"pa", "veth-a1"}, std::pair{"pb", "veth-b1"}}) {
    if (absl::Status s = t.DisableChecksumOffload(ns, ifname); !s.ok()) return s;
  }
  return topo;
}

bool MediaSupported(std::string* why) {
  if (!testing::Topology::Supported(why)) return false;
  if (access("/usr/sbin/ethtool", X_OK) != 0 && access("/sbin/ethtool", X_OK) != 0) {
    *why = "ethtool is not installed";
    return false;
  }
  return true;
}

uint16_t LocalPort(const json& leg) {
  const std::string local = leg.value("local", "");
  uint32_t port = 0;
  if (!absl::SimpleAtoi(absl::string_view(local).substr(local.rfind(':') + 1), &port)) return 0;
  return static_cast<uint16_t>(port);
}

// The media during the re-keys, as sluiced counted it.
struct MediaResult {
  double seconds = 0;
  uint64_t accepted = 0;      // leg a rx_packets
  uint64_t relayed = 0;       // leg b tx_packets
  uint64_t auth_failures = 0;
  uint64_t replay_drops = 0;
  uint64_t other_drops = 0;
  uint64_t sent = 0;          // by phone A
  uint64_t send_errors = 0;
};

std::string Rate(double per_second) { return absl::StrFormat("%.0f", per_second); }

}  // namespace

int RunControlCommand(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kControlUsage, stdout);
      return 0;
    }
  }
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice-bench control: %s\n(see sluice-bench control --help)\n",
                 Str(parsed.status().message()).c_str());
    return 2;
  }
  const Options& o = *parsed;
  auto die = [](absl::string_view what, const absl::Status& s) {
    std::fprintf(stderr, "sluice-bench control: %s: %s\n", Str(what).c_str(),
                 Str(s.message()).c_str());
    return 1;
  };
  if (access(o.sluiced.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "sluice-bench control: no sluiced at %s (build it, or give --sluiced)\n",
                 o.sluiced.c_str());
    return 1;
  }

  std::string why_no_media;
  bool media = false;
  if (o.media != MediaMode::kOff) {
    media = MediaSupported(&why_no_media);
    if (!media && o.media == MediaMode::kOn) {
      std::fprintf(stderr, "sluice-bench control: --media on: %s\n", why_no_media.c_str());
      return 1;
    }
  } else {
    why_no_media = "--media off";
  }
  if (media) {
    if (srtp_err_status_t err = srtp_init(); err != srtp_err_status_ok) {
      std::fprintf(stderr, "sluice-bench control: srtp_init failed: error %d\n",
                   static_cast<int>(err));
      return 1;
    }
  }
  const bool progress = isatty(STDERR_FILENO) != 0;
  auto note = [&](const char* what) {
    if (progress) std::fprintf(stderr, "%s\n", what);
  };

  absl::StatusOr<TempDir> dir = TempDir::Create();
  if (!dir.ok()) return die("temporary directory", dir.status());
  std::unique_ptr<testing::Topology> topo;
  if (media) {
    note("making network namespaces...");
    absl::StatusOr<std::unique_ptr<testing::Topology>> t = MakeTopology();
    if (!t.ok()) return die("network namespaces", t.status());
    topo = *std::move(t);
  }
  const std::string socket = dir->path() + "/control.sock";
  const std::string config = dir->path() + "/sluiced.toml";
  const std::string log = dir->path() + "/sluiced.log";
  std::ofstream(config) << Config(socket, absl::StrCat("sluice-bench-", getpid()), media,
                                  o.sessions);

  note("starting sluiced...");
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      Daemon::Start(o.sluiced, config, socket, log, topo.get());
  if (!daemon.ok()) return die("starting sluiced", daemon.status());
  absl::StatusOr<control::Client> client = control::Client::Connect(socket);
  if (!client.ok()) return die("connecting", client.status());

  // Media: one session whose leg a phone A sends to, re-keyed never.
  std::unique_ptr<MediaSender> sender;
  int phone_a = -1, phone_b = -1;
  std::string media_error;
  if (media) {
    note("starting media...");
    srtp::MasterKey key;
    absl::StatusOr<std::string> request =
        CreateRequest(0, kMediaSession, kPhonePortA, kPhonePortB, &key);
    if (!request.ok()) return die("media session", request.status());
    absl::StatusOr<std::string> reply = client->Call(*request);
    OPENSSL_cleanse(request->data(), request->size());
    if (!reply.ok()) return die("media session", reply.status());
    json j = json::parse(*reply, nullptr, false);
    OPENSSL_cleanse(reply->data(), reply->size());
    if (j.is_discarded() || !j.value("ok", false)) {
      return die("media session", absl::InternalError(j.is_discarded() ? "bad reply"
                                                                          : j["error"].dump()));
    }
    const uint16_t relay_port = LocalPort(j["legs"][0]);
    absl::StatusOr<int> fa = topo->Socket("pa", AF_INET, SOCK_DGRAM);
    absl::StatusOr<int> fb = topo->Socket("pb", AF_INET, SOCK_DGRAM);
    if (!fa.ok()) return die("phone A", fa.status());
    if (!fb.ok()) return die("phone B", fb.status());
    phone_a = *fa;
    phone_b = *fb;
    // Phone B only has to exist so the relayed packets find a port; it never
    // reads, and a small buffer keeps the kernel from holding many.
    const int rcvbuf = 4096;
    setsockopt(phone_b, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const sockaddr_in bind_a = Addr(kPhoneA, kPhonePortA), bind_b = Addr(kPhoneB, kPhonePortB);
    if (bind(phone_a, reinterpret_cast<const sockaddr*>(&bind_a), sizeof bind_a) != 0 ||
        bind(phone_b, reinterpret_cast<const sockaddr*>(&bind_b), sizeof bind_b) != 0) {
      return die("binding the phones", absl::InternalError(std::strerror(errno)));
    }
    absl::StatusOr<LibsrtpSession> srtp = LibsrtpSession::Create(key);
    if (!srtp.ok()) return die("libsrtp2", srtp.status());
    sender = std::make_unique<MediaSender>(phone_a, Addr(kRelayA, relay_port), *std::move(srtp),
                                           o.media_pps);
    sender->Start();
    // Until sluiced has accepted and relayed some (ARP for phone B included).
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
    bool flowing = false;
    while (!flowing && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      absl::StatusOr<std::pair<LegCounters, uint64_t>> c = MediaCounters(*client);
      if (!c.ok()) return die("session.get", c.status());
      flowing = c->first.rx_packets > 0 && c->second > 0;
    }
    if (!flowing) media_error = "no media relayed within 5 s of starting the phone";
  }

  // Each repetition creates, re-keys and deletes every session; requests are
  // built (random keys included) before the clock starts.
  std::vector<Phase> phases;  // kOps per repetition
  MediaResult media_result;
  bool media_measured = false;
  uint64_t next_id = 1;
  const pid_t sluiced_pid = (*daemon)->pid();
  for (size_t rep = 0; rep < o.repetitions; ++rep) {
    auto name = [&](size_t i) { return absl::StrCat("bench-", rep, "-", i); };
    {
      Batches creates;
      creates.first_id = next_id;
      for (size_t i = 0; i < o.sessions; ++i) {
        // Remote ports: any even port, as an SDP would give.
        const uint16_t port = static_cast<uint16_t>(20000 + 2 * (i % 20000));
        absl::StatusOr<std::string> r = CreateRequest(next_id++, name(i), port, port);
        if (!r.ok()) return die("building requests", r.status());
        Append(creates, *std::move(r));
      }
      note(absl::StrCat("repetition ", rep + 1, ": session.create").c_str());
      phases.push_back(RunPipelined(*client, "session.create", creates, sluiced_pid));
      Wipe(creates);
    }
    {
      Batches rekeys;
      rekeys.first_id = next_id;
      for (size_t i = 0; i < o.sessions; ++i) {
        absl::StatusOr<std::string> r = RekeyRequest(next_id++, name(i));
        if (!r.ok()) return die("building requests", r.status());
        Append(rekeys, *std::move(r));
      }
      std::optional<std::pair<LegCounters, uint64_t>> before;
      uint64_t sent = 0, send_errors = 0;
      Clock::time_point t0;
      if (sender && media_error.empty()) {
        absl::StatusOr<std::pair<LegCounters, uint64_t>> c = MediaCounters(*client);
        if (!c.ok()) return die("session.get", c.status());
        before = *c;
        t0 = Clock::now();
        sent = sender->sent();
        send_errors = sender->send_errors();
      }
      note(absl::StrCat("repetition ", rep + 1, ": session.update (re-key)").c_str());
      phases.push_back(RunPipelined(*client, "session.update", rekeys, sluiced_pid));
      Wipe(rekeys);
      if (before) {
        sent = sender->sent() - sent;
        send_errors = sender->send_errors() - send_errors;
        absl::StatusOr<std::pair<LegCounters, uint64_t>> after = MediaCounters(*client);
        if (!after.ok()) return die("session.get", after.status());
        media_result.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
        media_result.sent += sent;
        media_result.send_errors += send_errors;
        media_result.accepted += after->first.rx_packets - before->first.rx_packets;
        media_result.relayed += after->second - before->second;
        media_result.auth_failures += after->first.auth_failures - before->first.auth_failures;
        media_result.replay_drops += after->first.replay_drops - before->first.replay_drops;
        media_result.other_drops += after->first.other_drops - before->first.other_drops;
        media_measured = true;
      }
    }
    {
      Batches deletes;
      deletes.first_id = next_id;
      for (size_t i = 0; i < o.sessions; ++i) Append(deletes, DeleteRequest(next_id++, name(i)));
      note(absl::StrCat("repetition ", rep + 1, ": session.delete").c_str());
      phases.push_back(RunPipelined(*client, "session.delete", deletes, sluiced_pid));
    }
  }
  if (sender) sender->Stop();
  if (media) {
    absl::StatusOr<std::string> reply = client->Call(absl::StrCat(
        "{\"id\":\"end\",\"op\":\"session.delete\",\"session\":\"", kMediaSession, "\"}"));
    if (!reply.ok() || !absl::StartsWith(*reply, "{\"id\":\"end\",\"ok\":true")) {
      phases.back().errors++;
      phases.back().messages.push_back("deleting the media session failed");
    }
  }
  sender.reset();
  if (phone_a >= 0) close(phone_a);
  if (phone_b >= 0) close(phone_b);
  client = absl::CancelledError("closed");  // closes the connection before SIGTERM
  const absl::Status stopped = (*daemon)->Stop();
  daemon->reset();
  topo.reset();

  size_t errors = 0;
  for (const Phase& p : phases) errors += p.errors;
  // The best repetition of each operation (the fewest interruptions by other
  // processes: the rates are wall-clock).
  auto best = [&](absl::string_view op) {
    const Phase* b = nullptr;
    for (const Phase& p : phases) {
      if (p.op == op && (b == nullptr || p.per_second() > b->per_second())) b = &p;
    }
    return *b;
  };
  const Phase best_create = best("session.create");
  const Phase best_rekey = best("session.update");
  const Phase best_delete = best("session.delete");
  const double media_pps =
      media_measured && media_result.seconds > 0 ? media_result.accepted / media_result.seconds : 0;

  if (o.json) {
    json out = {
        {"creates_per_second", best_create.per_second()},
        {"rekeys_per_second", best_rekey.per_second()},
        {"deletes_per_second", best_delete.per_second()},
        {"sessions", o.sessions},
        {"errors", errors},
        {"media_pps_during_rekey", media_measured ? json(media_pps) : json(nullptr)},
        {"repetitions", o.repetitions},
        {"batch", kBatch},
        {"devices", media ? "net_af_packet on veth pairs in network namespaces" : "net_null"},
        {"media_offered_pps", media ? json(o.media_pps) : json(nullptr)},
        {"sluiced_exit_ok", stopped.ok()},
    };
    json list = json::array();
    for (size_t i = 0; i < phases.size(); ++i) {
      const Phase& p = phases[i];
      list.push_back({{"op", p.op}, {"repetition", i / 3 + 1}, {"requests", p.requests},
                      {"errors", p.errors}, {"seconds", p.seconds},
                      {"per_second", p.per_second()},
                      {"control_cpu_seconds", p.cpu_seconds},
                      {"messages", p.messages}});
    }
    out["phases"] = list;
    if (media_measured) {
      out["media"] = {{"seconds", media_result.seconds},
                      {"sent", media_result.sent},
                      {"send_errors", media_result.send_errors},
                      {"accepted", media_result.accepted},
                      {"relayed", media_result.relayed},
                      {"auth_failures", media_result.auth_failures},
                      {"replay_drops", media_result.replay_drops},
                      {"other_drops", media_result.other_drops}};
    }
    json notes = json::array();
    if (!media) notes.push_back(absl::StrCat("no media: ", why_no_media));
    if (!media_error.empty()) notes.push_back(media_error);
    if (!stopped.ok()) notes.push_back(Str(stopped.message()));
    out["notes"] = notes;
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("sluiced %s on %s, %zu sessions, one connection, batches of %zu pipelined\n\n",
                o.sluiced.c_str(), media ? "net_af_packet (veth, namespaces)" : "net_null",
                o.sessions, kBatch);
    std::printf("%-16s %4s %9s %7s %9s %11s %14s\n", "operation", "rep", "requests", "errors",
                "seconds", "per second", "cpu us/request");
    for (size_t i = 0; i < phases.size(); ++i) {
      const Phase& p = phases[i];
      std::printf("%-16s %4zu %9zu %7zu %9.3f %11s %14.1f\n", p.op.c_str(), i / 3 + 1, p.requests,
                  p.errors, p.seconds, Rate(p.per_second()).c_str(),
                  p.requests > 0 ? p.cpu_seconds * 1e6 / p.requests : 0.0);
      for (const std::string& m : p.messages) std::printf("    %s\n", m.c_str());
    }
    std::printf("(cpu: sluiced's control thread, user + system)\n\n");
    std::printf("best of %zu: session.create %s/s (target 20000), re-key %s/s (target 10000), "
                "session.delete %s/s\n",
                o.repetitions, Rate(best_create.per_second()).c_str(),
                Rate(best_rekey.per_second()).c_str(), Rate(best_delete.per_second()).c_str());
    if (media_measured) {
      std::printf(
          "media during the re-keys (%.2f s): phone A sent %s pps (offered %u), sluiced "
          "accepted %s pps on leg a and relayed %s pps out of leg b; auth failures %llu, "
          "replay drops %llu, other drops %llu, send errors %llu\n",
          media_result.seconds, Rate(media_result.sent / media_result.seconds).c_str(),
          o.media_pps, Rate(media_pps).c_str(),
          Rate(media_result.relayed / media_result.seconds).c_str(),
          static_cast<unsigned long long>(media_result.auth_failures),
          static_cast<unsigned long long>(media_result.replay_drops),
          static_cast<unsigned long long>(media_result.other_drops),
          static_cast<unsigned long long>(media_result.send_errors));
    } else {
      std::printf("no media during the re-keys: %s\n",
                  media_error.empty() ? why_no_media.c_str() : media_error.c_str());
    }
    std::printf("sluiced after SIGTERM: %s\n",
                stopped.ok() ? "exited 0" : Str(stopped.message()).c_str());
  }
  return errors == 0 && stopped.ok() && media_error.empty() ? 0 : 1;
}

}  // namespace sluice::bench
