// [ha] failover end to end (docs/ha.md, "Standby"): two sluiced, an active
// and a standby, each with two af_packet ports whose veths sit on two Linux
// bridges with the libsrtp2 phones, all in namespaces the test makes, and a
// real redis-server on a Unix socket. The active is SIGKILLed and the
// standby takes the call over on the heartbeat's expiry; an operator
// promotes a standby while the active is stopped (SIGSTOP), and the active,
// resumed, finds itself fenced. A standby never answers ARP for the legs'
// addresses nor sends anything before its promotion. A WebRTC call (aiortc)
// goes through a promotion keyed, without a new handshake.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "netns.h"
#include "redis_server.h"
#include "webrtc_call.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kSubnet[2][10] = {"10.213.1", "10.213.2"};
constexpr char kBridge[2][4] = {"bra", "brb"};
constexpr char kRelayIf[2][8] = {"veth-a0", "veth-b0"};
constexpr char kPhoneIf[2][8] = {"veth-a1", "veth-b1"};
// The heartbeat as short as the configuration allows a test to make it:
// written every 100 ms, gone 300 ms after the last write.
constexpr int kHeartbeatTtlMs = 300;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// What a command prints (popen), or "".
std::string Output(const std::string& command) {
  std::string out;
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  pclose(f);
  return out;
}

// One sluiced of the pair, in namespace `ns` with ports on both bridges.
struct Relay {
  std::string ns, socket, config, log;
  pid_t pid = -1;
};

class HaFailoverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!Topology::Supported(&why)) {
      skip_reason_ = why;
      return;
    }
    if (!RedisServer::Installed()) {
      skip_reason_ = "redis-server is not installed (scripts/setup-deps)";
      return;
    }
    LibsrtpPeer::Init();
    auto topo = Topology::Create();
    ASSERT_TRUE(topo.ok()) << topo.status();
    topo_ = topo->release();
    for (const char* ns : {"br", "pa", "pb", "act", "stb"}) ASSERT_TRUE(topo_->AddNamespace(ns).ok());
    for (int side = 0; side < 2; ++side) {
      ASSERT_TRUE(topo_->Run("br", {"ip", "link", "add", kBridge[side], "type", "bridge"}).ok());
      ASSERT_TRUE(topo_->Run("br", {"ip", "link", "set", kBridge[side], "up"}).ok());
      const std::string phone_ns = side == 0 ? "pa" : "pb";
      Plug(phone_ns, kPhoneIf[side], absl::StrCat(kSubnet[side], ".2/24"), side);
      for (const char* relay : {"act", "stb"}) Plug(relay, kRelayIf[side], "", side);
    }
    redis_ = new RedisServer();
    if (!redis_->Start()) {
      skip_reason_ = "redis-server did not start";
      return;
    }
    kek_ = redis_->dir() + "/kek";
    std::string k(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32);
    std::ofstream(kek_, std::ios::binary | std::ios::trunc) << k;
    std::filesystem::permissions(kek_, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
  }

  // A veth from `ns` to the side's bridge, checksums computed in software
  // (an af_packet reader gets them whole).
  static void Plug(const std::string& ns, const std::string& ifname, const std::string& addr,
                   int side) {
    const std::string port = absl::StrCat(ns, "-", side);
    ASSERT_TRUE(topo_->AddVeth(ns, ifname, addr, "br", port, "").ok());
    ASSERT_TRUE(topo_->Run("br", {"ip", "link", "set", port, "master", kBridge[side]}).ok());
    ASSERT_TRUE(topo_->DisableChecksumOffload(ns, ifname).ok());
    ASSERT_TRUE(topo_->DisableChecksumOffload("br", port).ok());
  }

  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
    delete topo_;
    topo_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(redis_->Command({"FLUSHALL"}));
    active_ = MakeRelay("act", "active");
    standby_ = MakeRelay("stb", "standby");
    ASSERT_TRUE(Start(active_)) << Log(active_);
    ASSERT_TRUE(Start(standby_)) << Log(standby_);
  }

  void TearDown() override {
    for (Relay* r : {&active_, &standby_}) {
      if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGKILL);
        waitpid(r->pid, nullptr, 0);
      }
      if (HasFailure()) std::printf("--- %s ---\n%s\n", r->ns.c_str(), Log(*r).c_str());
    }
  }

  Relay MakeRelay(const std::string& ns, const std::string& role) {
    Relay r;
    r.ns = ns;
    const std::string dir = redis_->dir();
    r.socket = absl::StrCat(dir, "/", ns, ".sock");
    r.config = absl::StrCat(dir, "/", ns, ".toml");
    r.log = absl::StrCat(dir, "/", ns, ".log");
    std::ofstream(r.config) << absl::StrCat(
        "[eal]\nargs = [\"-l\", \"0-1\", \"--no-huge\", \"--no-shconf\", \"-m\", \"512\", "
        "\"--no-pci\", \"--file-prefix=sluice-hafo-", ns, "-", getpid(),
        "\", \"--log-level=*:warning\", \"--vdev=net_af_packet0,iface=", kRelayIf[0],
        ",framecnt=4096\", \"--vdev=net_af_packet1,iface=", kRelayIf[1], ",framecnt=4096\"]\n",
        "[[interface]]\nname = \"a\"\ndevice = \"net_af_packet0\"\nipv4 = \"", kSubnet[0],
        ".1/24\"\n[[interface]]\nname = \"b\"\ndevice = \"net_af_packet1\"\nipv4 = \"",
        kSubnet[1], ".1/24\"\n[workers]\nlcores = [1]\n[control]\nsocket = \"", r.socket,
        "\"\n[media]\nport_min = 33000\nport_max = 33999\n[ha]\nredis = \"unix:",
        redis_->socket(), "\"\ninstance = \"fo\"\nkek_file = \"", kek_, "\"\nrole = \"", role,
        "\"\ncheckpoint_ms = 100\nheartbeat_ms = 100\nheartbeat_ttl_ms = ", kHeartbeatTtlMs,
        "\npromote_after_ms = 0\n");
    return r;
  }

  // Starts sluiced; true once it answers a ping (within 30 s: a loaded
  // machine's, as the harness's Daemon waits).
  bool Start(Relay& r) {
    auto pid = topo_->Spawn(r.ns, {"sh", "-c",
                                   absl::StrCat("exec ", BuiltBinary("sluiced"), " --config ",
                                                r.config, " >> ", r.log, " 2>&1")});
    if (!pid.ok()) return false;
    r.pid = *pid;
    for (int i = 0; i < 600; ++i) {
      ControlClient probe;
      if (probe.Connect(r.socket) && probe.Call({{"op", "ping"}}).value("ok", false)) return true;
      if (waitpid(r.pid, nullptr, WNOHANG) == r.pid) {
        r.pid = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static std::string Log(const Relay& r) {
    std::ifstream in(r.log);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static json Ask(const Relay& r, json request) {
    ControlClient c;
    if (!c.Connect(r.socket)) return json();
    return c.Call(std::move(request));
  }

  // What a relay's ports have sent, in all.
  static uint64_t TxPackets(const Relay& r) {
    const json stats = Ask(r, {{"op", "stats"}});  // (a range-for over a temporary's member dangles)
    uint64_t n = 0;
    for (const json& p : stats["ports"]) n += p["tx_packets"].get<uint64_t>();
    return n;
  }

  // A relay's name in the heartbeat (docs/ha.md): host name and control socket.
  static std::string Owner(const Relay& r) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return absl::StrCat(host, ":", r.socket, " ");
  }

  // The MAC of a relay's port on side `side`, as ip(8) shows it.
  static std::string Mac(const std::string& ns, const std::string& ifname) {
    const std::string out =
        Output(absl::StrCat("ip -n ", topo_->FullName(ns), " -br link show dev ", ifname));
    for (const absl::string_view word : absl::StrSplit(out, ' ', absl::SkipEmpty())) {
      if (word.size() == 17 && word[2] == ':') return std::string(word);
    }
    return "";
  }

  // The MAC phone `side` has for its relay address ("" if none).
  static std::string PhoneNeighbour(int side) {
    return Output(absl::StrCat("ip -n ", topo_->FullName(side == 0 ? "pa" : "pb"),
                               " neigh show ", kSubnet[side], ".1"));
  }

  // A call with SRTP on both legs through `r`, its phones armed.
  struct Call {
    Phone a, b;
  };
  Call MakeCall(const Relay& r, const std::string& name, uint16_t port, uint32_t ssrc) {
    Call call;
    const std::string key_a = FreshKey("AES_CM_128_HMAC_SHA1_80");
    const std::string key_b = FreshKey("AEAD_AES_256_GCM");
    ControlClient c;
    EXPECT_TRUE(c.Connect(r.socket));
    const json reply = c.Call(
        {{"op", "session.create"},
         {"session", name},
         {"legs",
          {SrtpLeg("a", "a", absl::StrCat(kSubnet[0], ".2:", port), key_a,
                   "AES_CM_128_HMAC_SHA1_80"),
           SrtpLeg("b", "b", absl::StrCat(kSubnet[1], ".2:", port + 2), key_b,
                   "AEAD_AES_256_GCM")}}});
    EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
    if (!reply.value("ok", false)) return call;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the phones' ARP
    call.a = MakePhoneIn(*topo_, "pa", absl::StrCat(kSubnet[0], ".2"), port, ssrc);
    call.b = MakePhoneIn(*topo_, "pb", absl::StrCat(kSubnet[1], ".2"), port + 2, ssrc + 1);
    call.a.relay = Addr(absl::StrCat(kSubnet[0], ".1"), LocalPort(reply["legs"][0]));
    call.b.relay = Addr(absl::StrCat(kSubnet[1], ".1"), LocalPort(reply["legs"][1]));
    Arm(call.a, key_a, reply["legs"][0]["tx"]["crypto"]);
    Arm(call.b, key_b, reply["legs"][1]["tx"]["crypto"]);
    call.b.seq = 5000;
    // Until both ways are resolved (ARP through the bridge), packets drop.
    EXPECT_GE(UntilThrough(call, Clock::now()), 0) << "the call never got through";
    call.a.Receive(50);
    call.b.Receive(50);
    return call;
  }

  // Waits (at most 5 s) until the standby mirrors `n` sessions, all valid.
  bool WaitMirrored(uint64_t n) {
    for (int i = 0; i < 250; ++i) {
      const json s = Ask(standby_, {{"op", "stats"}});
      if (s.contains("ha") && s["ha"]["mirrored"] == n && s["ha"]["mirror_refused"] == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Phones talk (a packet each way every 10 ms) until a packet gets through
  // each way (at most 10 s); the time from `since` until then, or -1. What
  // arrives must verify.
  double UntilThrough(Call& c, Clock::time_point since) {
    bool through[2] = {false, false};
    int bad = 0;
    for (int i = 0; i < 1000 && !(through[0] && through[1]); ++i) {
      c.a.SendNext();
      c.b.SendNext();
      through[0] = !c.b.Receive(10, &bad).empty() || through[0];
      through[1] = !c.a.Receive(0, &bad).empty() || through[1];
    }
    EXPECT_EQ(bad, 0) << "packets that did not verify at the phones";
    return through[0] && through[1] ? MsSince(since) : -1;
  }

  // The relay's auth failures and replays on a session's legs.
  static uint64_t Failures(const Relay& r, const std::string& session) {
    const json g = Ask(r, {{"op", "session.get"}, {"session", session}});
    uint64_t n = 0;
    for (const json& leg : g["legs"]) {
      n += leg["counters"]["auth_failures"].get<uint64_t>() +
           leg["counters"]["replay_drops"].get<uint64_t>();
    }
    return n;
  }

  // A standby that sent nothing, holds no session, and left the phones'
  // caches with the active's MAC.
  void ExpectPassiveStandby() {
    const json s = Ask(standby_, {{"op", "stats"}});
    EXPECT_EQ(s["ha"]["role"], "standby") << s.dump();
    EXPECT_EQ(s["sessions"], 0);
    EXPECT_EQ(TxPackets(standby_), 0u) << "a standby sent frames (ARP answers, media)";
    for (int side = 0; side < 2; ++side) {
      const std::string neighbour = PhoneNeighbour(side);
      EXPECT_NE(neighbour.find(Mac("act", kRelayIf[side])), std::string::npos) << neighbour;
      EXPECT_EQ(neighbour.find(Mac("stb", kRelayIf[side])), std::string::npos) << neighbour;
    }
  }

  inline static Topology* topo_ = nullptr;
  inline static RedisServer* redis_ = nullptr;
  inline static std::string kek_;
  inline static std::string skip_reason_;
  Relay active_, standby_;
};

// Proof 2: the active SIGKILLed mid-call; the standby promotes itself when
// the heartbeat expires, announces the addresses, and the call goes on
// with every packet after the gap verified at both phones.
TEST_F(HaFailoverTest, StandbyTakesOverWhenTheActiveIsKilled) {
  Call call = MakeCall(active_, "failover", 44000, 0x6b000001);
  ASSERT_TRUE(Flows(call.a, call.b, 100));
  ASSERT_TRUE(WaitMirrored(1)) << Ask(standby_, {{"op", "stats"}}).dump();
  // Asked again now, only the active answers for the legs' addresses.
  for (const char* ns : {"pa", "pb"}) {
    ASSERT_TRUE(topo_->Run(ns, {"ip", "neigh", "flush", "all"}).ok());
  }
  ASSERT_TRUE(Flows(call.a, call.b, 50));
  ExpectPassiveStandby();
  const json before = Ask(standby_, {{"op", "stats"}});
  EXPECT_GE(before["ha"]["heartbeat_age_ms"].get<int64_t>(), 0) << before.dump();
  EXPECT_LT(before["ha"]["heartbeat_age_ms"].get<int64_t>(), kHeartbeatTtlMs) << before.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // checkpoints

  // From the signal: the process stops at once and its heartbeat with it.
  // Its exit (unmapping its memory) takes a while more, seconds on a loaded
  // machine, and the standby does not wait for it: the phones talk from the
  // signal on, and the process is reaped once the call is through.
  call.a.Receive(0);
  call.b.Receive(0);
  const auto killed = Clock::now();
  kill(active_.pid, SIGKILL);
  const double gap_ms = UntilThrough(call, killed);
  waitpid(active_.pid, nullptr, 0);
  active_.pid = -1;
  std::printf("SIGKILLed sluiced reaped %.0f ms after the signal\n", MsSince(killed));
  ASSERT_GE(gap_ms, 0) << "no packet through after the active was killed";
  std::printf("failover gap (SIGKILL to packets through both ways): %.0f ms (bound: "
              "heartbeat_ttl_ms %d + one check, 50 ms + promote_after_ms 0 + the promotion "
              "+ the phones' next packet, 10 ms)\n",
              gap_ms, kHeartbeatTtlMs);
  EXPECT_LT(gap_ms, kHeartbeatTtlMs + 1500);
  const json after = Ask(standby_, {{"op", "stats"}});
  EXPECT_EQ(after["ha"]["role"], "active") << after.dump();
  EXPECT_EQ(after["ha"]["restored"], 1) << after.dump();
  EXPECT_EQ(after["sessions"], 1);
  call.a.Receive(50);
  call.b.Receive(50);
  const ExchangeResult r = Exchange(call.a, call.b, 100);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_EQ(r.bad_a + r.bad_b, 0);
  EXPECT_EQ(Failures(standby_, "failover"), 0u);
  for (int side = 0; side < 2; ++side) {
    EXPECT_NE(PhoneNeighbour(side).find(Mac("stb", kRelayIf[side])), std::string::npos)
        << "the phones' caches name the promoted standby: " << PhoneNeighbour(side);
  }
  const std::string promoted = Log(standby_);
  EXPECT_TRUE(absl::StrContains(promoted, "ha.promoted")) << promoted;
  // The new active holds the heartbeat and writes it.
  EXPECT_TRUE(absl::StartsWith(
      redis_->Command({"GET", "sluice:fo:heartbeat"}).value_or(""), Owner(standby_)));
}

// An operator's promotion while the active is alive but stopped; the
// active, resumed, finds the heartbeat another's and stops writing.
TEST_F(HaFailoverTest, OperatorPromotesWhileTheActiveIsStopped) {
  Call call = MakeCall(active_, "operator", 44010, 0x6b000011);
  ASSERT_TRUE(Flows(call.a, call.b, 100));
  ASSERT_TRUE(WaitMirrored(1));
  ExpectPassiveStandby();
  // With the heartbeat live, a standby does not promote itself.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kHeartbeatTtlMs));
  EXPECT_EQ(Ask(standby_, {{"op", "stats"}})["ha"]["role"], "standby");
  EXPECT_FALSE(Ask(active_, {{"op", "ha.promote"}}).value("ok", true)) << "already active";
  const json refused = Ask(standby_, {{"op", "session.create"}, {"session", "elsewhere"},
                                      {"legs", {PlainLeg("a", "a", "10.213.1.2:44100"),
                                                PlainLeg("b", "b", "10.213.2.2:44102")}}});
  EXPECT_FALSE(refused.value("ok", true)) << "a standby created a session: " << refused.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));

  kill(active_.pid, SIGSTOP);
  const auto stopped = Clock::now();
  const std::string promote = Output(
      absl::StrCat(BuiltBinary("sluicectl"), " --socket ", standby_.socket, " ha promote 2>&1"));
  EXPECT_TRUE(absl::StrContains(promote, "promoted: active now, 1 session(s) installed"))
      << promote;
  const double gap_ms = UntilThrough(call, stopped);
  ASSERT_GE(gap_ms, 0) << "no packet through after the promotion";
  std::printf("operator promotion: packets through both ways %.0f ms after SIGSTOP\n", gap_ms);
  call.a.Receive(50);
  call.b.Receive(50);
  const ExchangeResult r = Exchange(call.a, call.b, 100);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_EQ(Failures(standby_, "operator"), 0u);

  // The old active resumes: its next heartbeat finds the standby's, and it
  // stops writing (the records stay the new active's).
  kill(active_.pid, SIGCONT);
  bool fenced = false;
  for (int i = 0; i < 100 && !fenced; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fenced = Ask(active_, {{"op", "stats"}})["ha"].value("fenced", false);
  }
  EXPECT_TRUE(fenced) << Ask(active_, {{"op", "stats"}}).dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(absl::StartsWith(
      redis_->Command({"GET", "sluice:fo:heartbeat"}).value_or(""), Owner(standby_)));
  // The call still runs through the new active. (The resumed active
  // relayed what the phones sent it while it was stopped, the frames its
  // ports had queued: late packets the phones drop here. Fencing stops
  // writes, not relaying: docs/ha.md.)
  call.a.Receive(100);
  call.b.Receive(100);
  EXPECT_TRUE(Flows(call.a, call.b, 50));
}

// A WebRTC call (aiortc as the browser, DTLS-SRTP and ICE-lite) to an SDES
// phone through the active, which is SIGKILLed: the standby, promoted on
// the heartbeat's expiry, installs the leg keyed from Redis with its ICE
// state, and media goes on both ways without a new handshake, the
// browser's consent checks answered.
TEST_F(HaFailoverTest, WebrtcCallSurvivesFailoverWithoutANewHandshake) {
  if (const std::string why = AiortcMissing(); !why.empty()) GTEST_SKIP() << "skipped: " << why;
  WebrtcCall call;
  ASSERT_TRUE(call.Offer(*topo_, "pa", absl::StrCat(kSubnet[0], ".2")));
  const std::string key = FreshKey("AES_CM_128_HMAC_SHA1_80");
  ControlClient control;
  ASSERT_TRUE(control.Connect(active_.socket));
  const json r = control.Call(
      {{"op", "session.create"},
       {"session", "webrtc-fo"},
       {"legs",
        {WebrtcLeg("web", "a", call.offer),
         SrtpLeg("phone", "b", absl::StrCat(kSubnet[1], ".2:44022"), key,
                 "AES_CM_128_HMAC_SHA1_80")}}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  call.phone = MakePhoneIn(*topo_, "pb", absl::StrCat(kSubnet[1], ".2"), 44022, 0x6b000021);
  call.phone.relay = Addr(absl::StrCat(kSubnet[1], ".1"), LocalPort(r["legs"][1]));
  Arm(call.phone, key, r["legs"][1]["tx"]["crypto"]);
  ASSERT_TRUE(call.Remote(SluiceSdp(r["legs"][0], {.mid = call.offer.mid})));
  ASSERT_TRUE(call.WaitKeyed(control, "webrtc-fo"));
  ASSERT_TRUE(call.Through()) << "the call never got through";  // the phone's ARP
  call.ExpectMedia(50);
  ASSERT_TRUE(WaitMirrored(1)) << Ask(standby_, {{"op", "stats"}}).dump();
  EXPECT_EQ(Ask(active_, {{"op", "stats"}})["ha"]["not_replicated"], 0);
  ExpectPassiveStandby();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // checkpoints

  // Counted once the process is gone (what it relayed until then is not
  // the standby's): a slow exit bounds the gap from below.
  const auto killed = Clock::now();
  kill(active_.pid, SIGKILL);
  waitpid(active_.pid, nullptr, 0);
  active_.pid = -1;
  const double reaped_ms = MsSince(killed);
  ASSERT_TRUE(call.Through()) << "no media through after the active was killed: "
                              << Ask(standby_, {{"op", "stats"}})["ha"];
  const double gap_ms = MsSince(killed);
  std::printf("WebRTC failover gap (SIGKILL to media through both ways): %.0f ms (sluiced "
              "reaped after %.0f ms)\n", gap_ms, reaped_ms);
  EXPECT_LT(gap_ms, std::max(reaped_ms, double{kHeartbeatTtlMs}) + 1500);
  const json after = Ask(standby_, {{"op", "stats"}});
  EXPECT_EQ(after["ha"]["role"], "active") << after.dump();
  EXPECT_EQ(after["ha"]["restored"], 1) << after.dump();
  call.ExpectResumed(Ask(standby_, {{"op", "session.get"}, {"session", "webrtc-fo"}}), after);
  EXPECT_EQ(Failures(standby_, "webrtc-fo"), 0u);
}

}  // namespace
}  // namespace sluice::testing
