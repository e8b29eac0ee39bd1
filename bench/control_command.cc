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
#include "thread_cpu.h"
#include "webrtc_phase.h"
#include "nlohmann/json.hpp"
#include "rtp_packets.h"
#include "sluiced_process.h"
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
    "WebRTC (with media, after the repetitions): --webrtc-calls sessions whose leg\n"
    "a is a WebRTC leg (dtls and ice) and leg b a plain leg, and as many browsers\n"
    "in phone A's namespace, each a UDP socket, an ICE check with USE-CANDIDATE\n"
    "and a DTLS-SRTP endpoint with a certificate of its own (the DTLS client on\n"
    "half the calls, the server on the others), all started at once. Reported:\n"
    "handshakes per second (calls keyed over the time from the first check to the\n"
    "last call session.get shows keyed), time to keyed per call (p50, p99, max),\n"
    "failures, the CPU time of sluiced's handshake thread, and the in-process\n"
    "handshake rate of one core (bench/dtls/handshake_loop.h) as the ceiling.\n"
    "Meanwhile --webrtc-media-calls SRTP calls that were already running relay\n"
    "50 pps each to a plain phone; their lost packets (exact, by packet index)\n"
    "and the workers' handshake_full drops must be 0.\n"
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
    "                    20; each rate is the best repetition's (default 3)\n"    "  --webrtc-calls N  WebRTC calls set up at once, 0 (none) to 20000\n"
    "                    (default 1000; only with media)\n"
    "  --webrtc-media-calls N  calls relaying media meanwhile, 1 to 1000\n"
    "                    (default 100)\n"
    "  --json            print one JSON object instead of the table:\n"
    "                    {\"creates_per_second\":...,\"rekeys_per_second\":...,\n"
    "                    \"deletes_per_second\":...,\"sessions\":N,\"errors\":N,\n"
    "                    \"media_pps_during_rekey\":... or null,\n"
    "                    \"webrtc\":{\"handshakes_per_second\":...,\"keyed_ms\":{...},\n"
    "                    \"media\":{\"lost\":...},...} or null, ...}\n"
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
// Browsers bind ports 42000 and up; the media calls' phones 30000 and up.
constexpr size_t kMaxWebRtcCalls = 20000;
constexpr size_t kMaxWebRtcMediaCalls = 1000;
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
  size_t webrtc_calls = 1000;
  size_t webrtc_media_calls = 100;
  bool json = false;
};

std::string Str(absl::string_view s) { return std::string(s); }

// The numeric options: name, smallest and largest value, where it goes.
struct NumericOption {
  std::string_view name;
  uint64_t min, max;
  size_t* size;
  uint32_t* u32;
};

absl::Status ParseMedia(std::string_view v, MediaMode& mode) {
  if (v == "auto") {
    mode = MediaMode::kAuto;
  } else if (v == "on") {
    mode = MediaMode::kOn;
  } else if (v == "off") {
    mode = MediaMode::kOff;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bad value \"", std::string(v), "\" for --media: expected auto, on or off"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  const NumericOption numeric[] = {
      {"--sessions", 1, kMaxSessions, &o.sessions, nullptr},
      {"--repetitions", 1, 20, &o.repetitions, nullptr},
      {"--media-pps", 1, 1000000, nullptr, &o.media_pps},
      {"--webrtc-calls", 0, kMaxWebRtcCalls, &o.webrtc_calls, nullptr},
      {"--webrtc-media-calls", 1, kMaxWebRtcMediaCalls, &o.webrtc_media_calls, nullptr},
  };
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    const NumericOption* option = nullptr;
    for (const NumericOption& n : numeric) {
      if (n.name == arg) option = &n;
    }
    if (option == nullptr && arg != "--sluiced" && arg != "--media") {
      return absl::InvalidArgumentError(absl::StrCat("unknown option \"", argv[i], "\""));
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(argv[i], " needs a value"));
    const std::string_view v = argv[++i];
    uint64_t n = 0;
    if (arg == "--sluiced") {
      o.sluiced = std::string(v);
    } else if (arg == "--media") {
      if (absl::Status s = ParseMedia(v, o.media); !s.ok()) return s;
    } else if (!absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &n) ||
               n < option->min || n > option->max) {
      return absl::InvalidArgumentError(absl::StrCat("bad value \"", argv[i], "\" for ", std::string(arg),
                                                     ": expected ", option->min, " to ",
                                                     option->max));
    } else if (option->size != nullptr) {
      *option->size = n;
    } else {
      *option->u32 = static_cast<uint32_t>(n);
    }
  }
  if (o.sluiced.empty()) {
    absl::StatusOr<std::string> path = DefaultSluicedPath();
    if (!path.ok()) return path.status();
    o.sluiced = *std::move(path);
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
// plane; 0 when it cannot be read.
double ControlThreadCpu(pid_t pid) { return testing::ThreadCpuSeconds(pid, pid).value_or(0); }

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

std::string Config(const std::string& socket, const std::string& prefix, bool media,
                   size_t sessions) {
  const std::string devices =
      media ? "\"--vdev=net_af_packet0,iface=veth-a0,framecnt=4096\", "
              "\"--vdev=net_af_packet1,iface=veth-b0,framecnt=4096\""
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

// `s` with "<what>: " before its message.
absl::Status Context(absl::string_view what, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", Str(s.message())));
}

// One run of the command. Members are destroyed in reverse order: the phone's
// sender stops before the connection closes, the connection closes before
// sluiced is killed, and sluiced goes before its namespaces and directory.
struct ControlBench {
  Options o;
  bool progress = false;  // progress lines on stderr (a terminal)
  bool media = false;
  std::string why_no_media;
  std::string media_error;  // media was started but did not flow
  std::optional<TempDir> dir;
  std::unique_ptr<testing::Topology> topo;
  std::unique_ptr<Daemon> daemon;
  std::optional<control::Client> client;
  int phone_a = -1, phone_b = -1;
  std::unique_ptr<MediaSender> sender;
  std::vector<Phase> phases;  // create, re-key and delete of each repetition
  MediaResult media_result;
  bool media_measured = false;
  uint64_t next_id = 1;
  std::optional<WebRtcPhaseResult> webrtc;
  std::string why_no_webrtc;
  absl::Status stopped;  // how sluiced ended

  void Note(const std::string& what) const {
    if (progress) std::fprintf(stderr, "%s\n", what.c_str());
  }
};

bool HelpRequested(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

// Whether this run has media (--media, and whether namespaces can be made),
// and libsrtp2 ready for the phone when it does.
absl::Status ChooseMedia(ControlBench& b) {
  if (access(b.o.sluiced.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("no sluiced at ", b.o.sluiced, " (build it, or give --sluiced)"));
  }
  if (b.o.media == MediaMode::kOff) {
    b.why_no_media = "--media off";
    return absl::OkStatus();
  }
  b.media = MediaSupported(&b.why_no_media);
  if (!b.media && b.o.media == MediaMode::kOn) {
    return absl::FailedPreconditionError(absl::StrCat("--media on: ", b.why_no_media));
  }
  if (b.media) {
    if (srtp_err_status_t err = srtp_init(); err != srtp_err_status_ok) {
      return absl::InternalError(
          absl::StrCat("srtp_init failed: error ", static_cast<int>(err)));
    }
  }
  return absl::OkStatus();
}

// sluiced with a generated configuration in a temporary directory (inside the
// namespaces in media mode), and a connection to its control socket.
absl::Status StartSluiced(ControlBench& b) {
  absl::StatusOr<TempDir> dir = TempDir::Create();
  if (!dir.ok()) return Context("temporary directory", dir.status());
  b.dir.emplace(*std::move(dir));
  if (b.media) {
    b.Note("making network namespaces...");
    absl::StatusOr<std::unique_ptr<testing::Topology>> t = MakeTopology();
    if (!t.ok()) return Context("network namespaces", t.status());
    b.topo = *std::move(t);
  }
  const std::string socket = b.dir->path() + "/control.sock";
  const std::string config = b.dir->path() + "/sluiced.toml";
  const std::string log = b.dir->path() + "/sluiced.log";
  std::ofstream(config) << Config(socket, absl::StrCat("sluice-bench-", getpid()), b.media,
                                  b.o.sessions + b.o.webrtc_calls + b.o.webrtc_media_calls);
  b.Note("starting sluiced...");
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      Daemon::Start(b.o.sluiced, config, socket, log, b.topo.get());
  if (!daemon.ok()) return Context("starting sluiced", daemon.status());
  b.daemon = *std::move(daemon);
  absl::StatusOr<control::Client> client = control::Client::Connect(socket);
  if (!client.ok()) return Context("connecting", client.status());
  b.client.emplace(*std::move(client));
  return absl::OkStatus();
}

// The media session (never re-keyed); its leg a rx key in *key. Returns the
// port sluiced gave leg a.
absl::StatusOr<uint16_t> CreateMediaSession(control::Client& client, srtp::MasterKey* key) {
  absl::StatusOr<std::string> request =
      CreateRequest(0, kMediaSession, kPhonePortA, kPhonePortB, key);
  if (!request.ok()) return request.status();
  absl::StatusOr<std::string> reply = client.Call(*request);
  OPENSSL_cleanse(request->data(), request->size());
  if (!reply.ok()) return reply.status();
  json j = json::parse(*reply, nullptr, false);
  OPENSSL_cleanse(reply->data(), reply->size());
  if (j.is_discarded() || !j.value("ok", false)) {
    return absl::InternalError(j.is_discarded() ? "bad reply" : j["error"].dump());
  }
  return LocalPort(j["legs"][0]);
}

// Phone A's and phone B's sockets, bound in their namespaces.
absl::Status OpenPhones(ControlBench& b) {
  absl::StatusOr<int> fa = b.topo->Socket("pa", AF_INET, SOCK_DGRAM);
  absl::StatusOr<int> fb = b.topo->Socket("pb", AF_INET, SOCK_DGRAM);
  if (!fa.ok()) return Context("phone A", fa.status());
  if (!fb.ok()) return Context("phone B", fb.status());
  b.phone_a = *fa;
  b.phone_b = *fb;
  // Phone B only has to exist so the relayed packets find a port; it never
  // reads, and a small buffer keeps the kernel from holding many.
  const int rcvbuf = 4096;
  setsockopt(b.phone_b, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  const sockaddr_in bind_a = Addr(kPhoneA, kPhonePortA), bind_b = Addr(kPhoneB, kPhonePortB);
  if (bind(b.phone_a, reinterpret_cast<const sockaddr*>(&bind_a), sizeof bind_a) != 0 ||
      bind(b.phone_b, reinterpret_cast<const sockaddr*>(&bind_b), sizeof bind_b) != 0) {
    return Context("binding the phones", absl::InternalError(std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Phone A sending to the media session, and up to 5 s for sluiced to accept
// and relay some of it (ARP for phone B included). Media that does not flow
// is recorded in media_error, not returned: the phases still run.
absl::Status StartMedia(ControlBench& b) {
  b.Note("starting media...");
  srtp::MasterKey key;
  absl::StatusOr<uint16_t> relay_port = CreateMediaSession(*b.client, &key);
  if (!relay_port.ok()) return Context("media session", relay_port.status());
  if (absl::Status s = OpenPhones(b); !s.ok()) return s;
  absl::StatusOr<LibsrtpSession> srtp = LibsrtpSession::Create(key);
  if (!srtp.ok()) return Context("libsrtp2", srtp.status());
  b.sender = std::make_unique<MediaSender>(b.phone_a, Addr(kRelayA, *relay_port),
                                           *std::move(srtp), b.o.media_pps);
  b.sender->Start();
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
  bool flowing = false;
  while (!flowing && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    absl::StatusOr<std::pair<LegCounters, uint64_t>> c = MediaCounters(*b.client);
    if (!c.ok()) return Context("session.get", c.status());
    flowing = c->first.rx_packets > 0 && c->second > 0;
  }
  if (!flowing) b.media_error = "no media relayed within 5 s of starting the phone";
  return absl::OkStatus();
}

std::string SessionName(size_t rep, size_t i) { return absl::StrCat("bench-", rep, "-", i); }

// Runs one phase of pipelined requests and wipes them (they hold keys).
void RunPhase(ControlBench& b, size_t rep, absl::string_view op, absl::string_view label,
              Batches& batches) {
  b.Note(absl::StrCat("repetition ", rep + 1, ": ", label));
  b.phases.push_back(RunPipelined(*b.client, op, batches, b.daemon->pid()));
  Wipe(batches);
}

absl::Status RunCreates(ControlBench& b, size_t rep) {
  Batches creates;
  creates.first_id = b.next_id;
  for (size_t i = 0; i < b.o.sessions; ++i) {
    // Remote ports: any even port, as an SDP would give.
    const uint16_t port = static_cast<uint16_t>(20000 + 2 * (i % 20000));
    absl::StatusOr<std::string> r = CreateRequest(b.next_id++, SessionName(rep, i), port, port);
    if (!r.ok()) return Context("building requests", r.status());
    Append(creates, *std::move(r));
  }
  RunPhase(b, rep, "session.create", "session.create", creates);
  return absl::OkStatus();
}

// What the phone and sluiced had counted when a re-key phase started.
struct MediaMark {
  std::pair<LegCounters, uint64_t> counters;  // leg a, and leg b's tx_packets
  Clock::time_point time;
  uint64_t sent = 0;
  uint64_t send_errors = 0;
};

absl::StatusOr<MediaMark> MarkMedia(ControlBench& b) {
  absl::StatusOr<std::pair<LegCounters, uint64_t>> c = MediaCounters(*b.client);
  if (!c.ok()) return Context("session.get", c.status());
  return MediaMark{*c, Clock::now(), b.sender->sent(), b.sender->send_errors()};
}

// Adds what was counted since `before` to media_result.
absl::Status AddMediaSince(ControlBench& b, const MediaMark& before) {
  const uint64_t sent = b.sender->sent() - before.sent;
  const uint64_t send_errors = b.sender->send_errors() - before.send_errors;
  absl::StatusOr<std::pair<LegCounters, uint64_t>> after = MediaCounters(*b.client);
  if (!after.ok()) return Context("session.get", after.status());
  const LegCounters& a = after->first;
  const LegCounters& a0 = before.counters.first;
  MediaResult& m = b.media_result;
  m.seconds += std::chrono::duration<double>(Clock::now() - before.time).count();
  m.sent += sent;
  m.send_errors += send_errors;
  m.accepted += a.rx_packets - a0.rx_packets;
  m.relayed += after->second - before.counters.second;
  m.auth_failures += a.auth_failures - a0.auth_failures;
  m.replay_drops += a.replay_drops - a0.replay_drops;
  m.other_drops += a.other_drops - a0.other_drops;
  b.media_measured = true;
  return absl::OkStatus();
}

// One re-key per session; with media flowing, what sluiced accepted meanwhile.
absl::Status RunRekeys(ControlBench& b, size_t rep) {
  Batches rekeys;
  rekeys.first_id = b.next_id;
  for (size_t i = 0; i < b.o.sessions; ++i) {
    absl::StatusOr<std::string> r = RekeyRequest(b.next_id++, SessionName(rep, i));
    if (!r.ok()) return Context("building requests", r.status());
    Append(rekeys, *std::move(r));
  }
  std::optional<MediaMark> before;
  if (b.sender && b.media_error.empty()) {
    absl::StatusOr<MediaMark> mark = MarkMedia(b);
    if (!mark.ok()) return mark.status();
    before = *mark;
  }
  RunPhase(b, rep, "session.update", "session.update (re-key)", rekeys);
  return before ? AddMediaSince(b, *before) : absl::OkStatus();
}

void RunDeletes(ControlBench& b, size_t rep) {
  Batches deletes;
  deletes.first_id = b.next_id;
  for (size_t i = 0; i < b.o.sessions; ++i) {
    Append(deletes, DeleteRequest(b.next_id++, SessionName(rep, i)));
  }
  RunPhase(b, rep, "session.delete", "session.delete", deletes);
}

// Each repetition creates, re-keys and deletes every session; requests are
// built (random keys included) before the clock starts.
absl::Status RunRepetitions(ControlBench& b) {
  for (size_t rep = 0; rep < b.o.repetitions; ++rep) {
    if (absl::Status s = RunCreates(b, rep); !s.ok()) return s;
    if (absl::Status s = RunRekeys(b, rep); !s.ok()) return s;
    RunDeletes(b, rep);
  }
  return absl::OkStatus();
}

// WebRTC calls set up at once while other calls relay media; needs the
// namespaces (the browsers live in phone A's).
absl::Status RunWebRtc(ControlBench& b) {
  if (b.o.webrtc_calls == 0) {
    b.why_no_webrtc = "--webrtc-calls 0";
    return absl::OkStatus();
  }
  if (!b.media) {
    b.why_no_webrtc = absl::StrCat("no network namespaces (", b.why_no_media, ")");
    return absl::OkStatus();
  }
  b.Note(absl::StrCat("WebRTC: ", b.o.webrtc_calls, " calls at once, ", b.o.webrtc_media_calls,
                      " calls relaying media..."));
  WebRtcPhaseOptions o;
  o.calls = b.o.webrtc_calls;
  o.media_calls = b.o.webrtc_media_calls;
  o.socket_path = b.dir->path() + "/control.sock";
  o.sluiced = b.daemon->pid();
  o.ns_a = "pa";
  o.ip_a = kPhoneA;
  o.ns_b = "pb";
  o.ip_b = kPhoneB;
  absl::StatusOr<WebRtcPhaseResult> r = RunWebRtcPhase(*b.client, *b.topo, o);
  if (!r.ok()) return Context("WebRTC phase", r.status());
  b.webrtc = *std::move(r);
  return absl::OkStatus();
}

// Stops the phone, deletes the media session, closes the connection and stops
// sluiced (its result in `stopped`), then removes the namespaces.
void Finish(ControlBench& b) {
  if (b.sender) b.sender->Stop();
  if (b.media) {
    absl::StatusOr<std::string> reply = b.client->Call(absl::StrCat(
        "{\"id\":\"end\",\"op\":\"session.delete\",\"session\":\"", kMediaSession, "\"}"));
    if (!reply.ok() || !absl::StartsWith(*reply, "{\"id\":\"end\",\"ok\":true")) {
      b.phases.back().errors++;
      b.phases.back().messages.push_back("deleting the media session failed");
    }
  }
  b.sender.reset();
  if (b.phone_a >= 0) close(b.phone_a);
  if (b.phone_b >= 0) close(b.phone_b);
  b.client.reset();  // closes the connection before SIGTERM
  b.stopped = b.daemon->Stop();
  b.daemon.reset();
  b.topo.reset();
}

// What is reported: the best repetition of each operation (the fewest
// interruptions by other processes: the rates are wall-clock).
struct Summary {
  size_t errors = 0;
  Phase create, rekey, remove;
  double media_pps = 0;  // accepted on leg a during the re-keys
};

Summary Summarize(const ControlBench& b) {
  Summary s;
  for (const Phase& p : b.phases) s.errors += p.errors;
  auto best = [&](absl::string_view op) {
    const Phase* found = nullptr;
    for (const Phase& p : b.phases) {
      if (p.op == op && (found == nullptr || p.per_second() > found->per_second())) found = &p;
    }
    return *found;
  };
  s.create = best("session.create");
  s.rekey = best("session.update");
  s.remove = best("session.delete");
  const MediaResult& m = b.media_result;
  s.media_pps = b.media_measured && m.seconds > 0 ? m.accepted / m.seconds : 0;
  return s;
}

void PrintJson(const ControlBench& b, const Summary& s) {
  const Options& o = b.o;
  json out = {
      {"creates_per_second", s.create.per_second()},
      {"rekeys_per_second", s.rekey.per_second()},
      {"deletes_per_second", s.remove.per_second()},
      {"sessions", o.sessions},
      {"errors", s.errors},
      {"media_pps_during_rekey", b.media_measured ? json(s.media_pps) : json(nullptr)},
      {"repetitions", o.repetitions},
      {"batch", kBatch},
      {"devices", b.media ? "net_af_packet on veth pairs in network namespaces" : "net_null"},
      {"media_offered_pps", b.media ? json(o.media_pps) : json(nullptr)},
      {"sluiced_exit_ok", b.stopped.ok()},
  };
  json list = json::array();
  for (size_t i = 0; i < b.phases.size(); ++i) {
    const Phase& p = b.phases[i];
    list.push_back({{"op", p.op}, {"repetition", i / 3 + 1}, {"requests", p.requests},
                    {"errors", p.errors}, {"seconds", p.seconds},
                    {"per_second", p.per_second()},
                    {"control_cpu_seconds", p.cpu_seconds},
                    {"messages", p.messages}});
  }
  out["phases"] = list;
  out["webrtc"] = b.webrtc ? WebRtcPhaseJson(*b.webrtc) : json(nullptr);
  if (b.media_measured) {
    const MediaResult& m = b.media_result;
    out["media"] = {{"seconds", m.seconds},           {"sent", m.sent},
                    {"send_errors", m.send_errors},   {"accepted", m.accepted},
                    {"relayed", m.relayed},           {"auth_failures", m.auth_failures},
                    {"replay_drops", m.replay_drops}, {"other_drops", m.other_drops}};
  }
  json notes = json::array();
  if (!b.media) notes.push_back(absl::StrCat("no media: ", b.why_no_media));
  if (!b.media_error.empty()) notes.push_back(b.media_error);
  if (!b.why_no_webrtc.empty()) notes.push_back(absl::StrCat("no WebRTC: ", b.why_no_webrtc));
  if (!b.stopped.ok()) notes.push_back(Str(b.stopped.message()));
  out["notes"] = notes;
  std::printf("%s\n", out.dump().c_str());
}

// The line about media during the re-keys, or why there was none.
void PrintMediaLine(const ControlBench& b, const Summary& s) {
  if (!b.media_measured) {
    std::printf("no media during the re-keys: %s\n",
                b.media_error.empty() ? b.why_no_media.c_str() : b.media_error.c_str());
    return;
  }
  const MediaResult& m = b.media_result;
  std::printf(
      "media during the re-keys (%.2f s): phone A sent %s pps (offered %u), sluiced "
      "accepted %s pps on leg a and relayed %s pps out of leg b; auth failures %llu, "
      "replay drops %llu, other drops %llu, send errors %llu\n",
      m.seconds, Rate(m.sent / m.seconds).c_str(), b.o.media_pps, Rate(s.media_pps).c_str(),
      Rate(m.relayed / m.seconds).c_str(), static_cast<unsigned long long>(m.auth_failures),
      static_cast<unsigned long long>(m.replay_drops),
      static_cast<unsigned long long>(m.other_drops),
      static_cast<unsigned long long>(m.send_errors));
}

void PrintTable(const ControlBench& b, const Summary& s) {
  const Options& o = b.o;
  std::printf("sluiced %s on %s, %zu sessions, one connection, batches of %zu pipelined\n\n",
              o.sluiced.c_str(), b.media ? "net_af_packet (veth, namespaces)" : "net_null",
              o.sessions, kBatch);
  std::printf("%-16s %4s %9s %7s %9s %11s %14s\n", "operation", "rep", "requests", "errors",
              "seconds", "per second", "cpu us/request");
  for (size_t i = 0; i < b.phases.size(); ++i) {
    const Phase& p = b.phases[i];
    std::printf("%-16s %4zu %9zu %7zu %9.3f %11s %14.1f\n", p.op.c_str(), i / 3 + 1, p.requests,
                p.errors, p.seconds, Rate(p.per_second()).c_str(),
                p.requests > 0 ? p.cpu_seconds * 1e6 / p.requests : 0.0);
    for (const std::string& m : p.messages) std::printf("    %s\n", m.c_str());
  }
  std::printf("(cpu: sluiced's control thread, user + system)\n\n");
  std::printf("best of %zu: session.create %s/s (target 20000), re-key %s/s (target 10000), "
              "session.delete %s/s\n",
              o.repetitions, Rate(s.create.per_second()).c_str(),
              Rate(s.rekey.per_second()).c_str(), Rate(s.remove.per_second()).c_str());
  PrintMediaLine(b, s);
  if (b.webrtc) {
    PrintWebRtcPhase(*b.webrtc);
  } else {
    std::printf("no WebRTC phase: %s\n", b.why_no_webrtc.c_str());
  }
  std::printf("sluiced after SIGTERM: %s\n",
              b.stopped.ok() ? "exited 0" : Str(b.stopped.message()).c_str());
}

// Everything up to the report: sluiced started, media started when there is
// media, every repetition run, everything stopped.
absl::Status Run(ControlBench& b) {
  if (absl::Status s = ChooseMedia(b); !s.ok()) return s;
  if (absl::Status s = StartSluiced(b); !s.ok()) return s;
  if (b.media) {
    if (absl::Status s = StartMedia(b); !s.ok()) return s;
  }
  if (absl::Status s = RunRepetitions(b); !s.ok()) return s;
  if (absl::Status s = RunWebRtc(b); !s.ok()) return s;
  Finish(b);
  return absl::OkStatus();
}

}  // namespace

int RunControlCommand(int argc, char** argv) {
  if (HelpRequested(argc, argv)) {
    std::fputs(kControlUsage, stdout);
    return 0;
  }
  absl::StatusOr<Options> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice-bench control: %s\n(see sluice-bench control --help)\n",
                 Str(parsed.status().message()).c_str());
    return 2;
  }
  ControlBench b;
  b.o = *std::move(parsed);
  b.progress = isatty(STDERR_FILENO) != 0;
  if (absl::Status s = Run(b); !s.ok()) {
    std::fprintf(stderr, "sluice-bench control: %s\n", Str(s.message()).c_str());
    return 1;
  }
  const Summary summary = Summarize(b);
  if (b.o.json) {
    PrintJson(b, summary);
  } else {
    PrintTable(b, summary);
  }
  const bool webrtc_ok = !b.webrtc || b.webrtc->ok();
  return summary.errors == 0 && b.stopped.ok() && b.media_error.empty() && webrtc_ok ? 0 : 1;
}

}  // namespace sluice::bench
