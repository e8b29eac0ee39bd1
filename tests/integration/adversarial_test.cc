// sluiced under hostile traffic, end to end: the real daemon on
// net_af_packet devices bound to veth ends in a namespace of its own, phones
// and attackers in two more. Forged, replayed and misaddressed SRTP floods,
// spoofed sources, packets for one interface's leg sent through another,
// malformed frames from a raw socket, offered load far above
// what one worker carries, the per-leg packet rate limit and the session
// limit. The calls that are genuine keep flowing, every refused packet is
// counted under its reason, and the daemon never stops relaying.
//
// Every loop is bounded; the whole suite runs in well under a minute.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "libsrtp_peer.h"
#include "netns.h"
#include "ng_peer.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxSessions = 12;
constexpr uint32_t kLegMaxPps = 2000;

// A leg's remote as "ip:port".
std::string Ep(const std::string& ip, uint16_t port) { return ip + ":" + std::to_string(port); }

// Drop counters from a `stats` reply, reason -> count.
uint64_t Drop(const json& stats, const std::string& reason) {
  return stats["drops"].contains(reason) ? stats["drops"][reason].get<uint64_t>() : 0;
}
uint64_t DropDelta(const json& before, const json& after, const std::string& reason) {
  return Drop(after, reason) - Drop(before, reason);
}
// Every drop but not_for_us (the namespaces' own IPv6 multicast chatter lands
// there), summed.
uint64_t DropSum(const json& stats) {
  uint64_t sum = 0;
  for (auto it = stats["drops"].begin(); it != stats["drops"].end(); ++it) {
    if (it.key() != "not_for_us") sum += it.value().get<uint64_t>();
  }
  return sum;
}
uint64_t WorkerRx(const json& stats) {
  uint64_t sum = 0;
  for (const json& w : stats["workers"]) sum += w["rx_packets"].get<uint64_t>();
  return sum;
}
uint64_t LegCounter(const json& session, int leg, const std::string& name) {
  return session["legs"][leg]["counters"][name].get<uint64_t>();
}

// Resident set size of a process, in KiB (0 when unreadable).
uint64_t RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

const char kKeyC[] = "AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
const char kKeyD[] = "AES_CM_128_HMAC_SHA1_32 inline:Zm9yZ2VkLWtleS1mb3Itc3Bvb2Zlci0zMGJ5dGUh";

class AdversarialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "adversarial";
    options.subnet_a = "10.202.1";
    options.subnet_b = "10.202.2";
    options.extra_config = "[media]\nport_min = 31000\nport_max = 31999\n"
                           "[limits]\nmax_sessions = " + std::to_string(kMaxSessions) +
                           "\nleg_max_pps = " + std::to_string(kLegMaxPps) + "\n" +
                           "[ng]\nlisten = \"127.0.0.1:2224\"\ndelete_delay_ms = 0\n";
    skip_reason_ = daemon_->Start(options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running()) << "sluiced is not running";
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }
  void TearDown() override {
    if (skip_reason_.empty()) {
      EXPECT_TRUE(daemon_->Alive()) << "sluiced must survive every test";
    }
  }

  json Stats() { return control_.Call({{"op", "stats"}}); }
  json Get(const std::string& session) {
    return control_.Call({{"op", "session.get"}, {"session", session}});
  }
  void Delete(const std::string& session) {
    control_.Call({{"op", "session.delete"}, {"session", session}});
  }

  // A two-leg SRTP call between a phone in pa and one in pb, both remotes
  // given; the phones are armed with their keys.
  struct Call {
    std::string name;
    json reply;
    Phone a, b;
  };
  // Without keys given, the call gets fresh ones (no key serves two sessions).
  Call MakeCall(const std::string& name, uint16_t port_a, uint16_t port_b, uint32_t ssrc,
                std::string key_a = "", std::string key_b = "") {
    if (key_a.empty()) key_a = FreshKey("AES_CM_128_HMAC_SHA1_80");
    if (key_b.empty()) key_b = FreshKey("AEAD_AES_128_GCM");
    Call c;
    c.name = name;
    c.reply = daemon_->Create(
        control_, name,
        SrtpLeg("a", "a", Ep(daemon_->phone_ip(0), port_a), key_a, "AES_CM_128_HMAC_SHA1_80"),
        SrtpLeg("b", "b", Ep(daemon_->phone_ip(1), port_b), key_b, "AEAD_AES_128_GCM"));
    EXPECT_TRUE(c.reply["ok"].get<bool>()) << c.reply.dump();
    if (!c.reply["ok"].get<bool>()) return c;
    c.a = daemon_->MakePhone(0, daemon_->phone_ip(0), port_a, ssrc);
    c.b = daemon_->MakePhone(1, daemon_->phone_ip(1), port_b, ssrc + 1);
    c.a.relay = Addr(daemon_->relay_ip(0), LocalPort(c.reply["legs"][0]));
    c.b.relay = Addr(daemon_->relay_ip(1), LocalPort(c.reply["legs"][1]));
    Arm(c.a, key_a, c.reply["legs"][0]["tx"]["crypto"]);
    Arm(c.b, key_b, c.reply["legs"][1]["tx"]["crypto"]);
    return c;
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  ControlClient control_;
};

// A stream of forged packets of one kind. `captured` holds genuine packets
// of the target leg's peer, already seen by the relay.
enum class Forgery { kBadTag, kWrongSsrc, kReplay, kRandom, kUnallocatedPort };

struct Flood {
  std::vector<uint8_t> Next(Forgery kind, std::mt19937& rng, uint16_t* seq) {
    std::vector<uint8_t> p;
    switch (kind) {
      case Forgery::kBadTag: {
        // A well-formed RTP header of the genuine stream, a tag of noise.
        p.resize(12 + 160 + 10);
        for (auto& b : p) b = static_cast<uint8_t>(rng());
        p[0] = 0x80;
        p[1] = 0;
        p[2] = static_cast<uint8_t>(*seq >> 8);
        p[3] = static_cast<uint8_t>(*seq);
        std::memcpy(&p[8], &captured[0][8], 4);
        ++*seq;
        break;
      }
      case Forgery::kWrongSsrc:
        p = captured[rng() % captured.size()];
        p[8] ^= static_cast<uint8_t>(1 + rng() % 255);
        break;
      case Forgery::kReplay:
        p = captured[rng() % captured.size()];
        break;
      case Forgery::kRandom:
      case Forgery::kUnallocatedPort:
        p.resize(1 + rng() % 400);
        for (auto& b : p) b = static_cast<uint8_t>(rng());
        break;
    }
    return p;
  }
  std::vector<std::vector<uint8_t>> captured;
};

// Forged SRTP of every kind at one leg, random bytes at another and
// datagrams to ports no session holds, while a real call runs on a third
// session: the call loses nothing and stays in order, each forged packet is
// counted under its reason, and sluiced's memory does not grow.
TEST_F(AdversarialTest, ForgedFloodsLeaveTheRealCallWhole) {
  Call real = MakeCall("real", 40000, 40002, 0x1000);
  Call target = MakeCall("target", 40100, 40102, 0x2000, kKeyC, kKeyD);
  ASSERT_FALSE(HasFailure());
  // The target's phone talks first; what it sent is the attacker's capture.
  Flood flood;
  for (int i = 0; i < 20; ++i) {
    std::vector<uint8_t> wire = target.a.Rtp(target.a.seq++);
    ASSERT_EQ(target.a.send->ProtectRtp(wire), srtp_err_status_ok);
    target.a.SendRaw(wire);
    flood.captured.push_back(wire);
  }
  EXPECT_EQ(target.b.Receive(300).size(), 20u);

  Phone spoof_a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40666, 0);
  Phone spoof_b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40666, 0);
  spoof_a.relay = target.a.relay;
  spoof_b.relay = target.b.relay;
  const uint16_t target_port = LocalPort(target.reply["legs"][0]);
  const uint16_t real_port = LocalPort(real.reply["legs"][0]);

  struct Sent {
    uint64_t per_kind[5] = {};
    uint64_t total = 0;
  };
  // Sends `n` forged packets round the five kinds, `per_ms` a millisecond.
  auto run_flood = [&](int n, int per_ms, std::atomic<bool>* stop, Sent* sent) {
    std::mt19937 rng(99);
    uint16_t seq = 1000;
    uint16_t port = 0;
    for (int i = 0; i < n && !(stop && stop->load()); ++i) {
      const auto kind = static_cast<Forgery>(i % 5);
      std::vector<uint8_t> p = flood.Next(kind, rng, &seq);
      if (kind == Forgery::kRandom) {
        spoof_b.SendRaw(p);
      } else if (kind == Forgery::kUnallocatedPort) {
        // Ports in the media range no session holds, and ports outside it.
        do {
          port = static_cast<uint16_t>(port % 2 == 0 ? 31500 + rng() % 400 : 1024 + rng() % 29000);
        } while (port == target_port || port == real_port);
        sockaddr_in to = Addr(daemon_->relay_ip(0), port);
        sendto(spoof_a.fd, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        ++port;
      } else {
        spoof_a.SendRaw(p);
      }
      ++sent->per_kind[static_cast<int>(kind)];
      ++sent->total;
      if (i % per_ms == per_ms - 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };

  // A first flood brings every buffer the daemon will use into memory.
  Sent warm;
  run_flood(5000, 25, nullptr, &warm);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t rss_before = RssKib(daemon_->pid());
  const json stats_before = Stats();
  const json target_before = Get("target");

  Sent sent;
  std::atomic<bool> stop{false};
  std::thread attacker(run_flood, 30000, 25, &stop, &sent);
  const ExchangeResult r = Exchange(real.a, real.b, 300);
  stop = true;
  attacker.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const json stats_after = Stats();
  const json target_after = Get("target");
  const uint64_t rss_after = RssKib(daemon_->pid());

  EXPECT_TRUE(r.Perfect()) << r.Describe() << "\nstats: " << stats_after.dump();
  std::printf("forged: %llu sent during a %d-packet call (%llu bad tags, %llu wrong SSRCs, "
              "%llu replays, %llu random, %llu to unallocated ports); sluiced RSS %llu -> %llu KiB\n",
              static_cast<unsigned long long>(sent.total), 300,
              static_cast<unsigned long long>(sent.per_kind[0]),
              static_cast<unsigned long long>(sent.per_kind[1]),
              static_cast<unsigned long long>(sent.per_kind[2]),
              static_cast<unsigned long long>(sent.per_kind[3]),
              static_cast<unsigned long long>(sent.per_kind[4]),
              static_cast<unsigned long long>(rss_before),
              static_cast<unsigned long long>(rss_after));
  EXPECT_GT(sent.total, 1000u) << "the flood overlapped the call";
  // Everything the worker received but the call (and the odd ARP request
  // for the slow path) was dropped and counted.
  const uint64_t received = WorkerRx(stats_after) - WorkerRx(stats_before);
  const uint64_t dropped = DropSum(stats_after) - DropSum(stats_before);
  EXPECT_LE(dropped, received - 2 * 300) << stats_after.dump();
  EXPECT_GE(dropped + 20, received - 2 * 300) << stats_after.dump();
  if (received >= sent.total + 2 * 300) {
    // Each forged packet is counted once, under its reason.
    EXPECT_EQ(dropped, sent.total);
    EXPECT_EQ(DropDelta(stats_before, stats_after, "no_flow"), sent.per_kind[4]);
    EXPECT_EQ(DropDelta(stats_before, stats_after, "replayed"), sent.per_kind[2]);
    EXPECT_GE(DropDelta(stats_before, stats_after, "auth_failed"),
              sent.per_kind[0] + sent.per_kind[1]);
    EXPECT_EQ(LegCounter(target_after, 0, "auth_failures") -
                  LegCounter(target_before, 0, "auth_failures"),
              sent.per_kind[0] + sent.per_kind[1])
        << target_after.dump();
    EXPECT_EQ(LegCounter(target_after, 0, "replay_drops") -
                  LegCounter(target_before, 0, "replay_drops"),
              sent.per_kind[2]);
    // The random bytes at leg b: each counted against that leg, whatever it
    // looked like (RTP with a bad tag, DTLS, STUN, nothing known).
    uint64_t leg_b = 0;
    for (const char* c : {"auth_failures", "replay_drops", "other_drops"}) {
      leg_b += LegCounter(target_after, 1, c) - LegCounter(target_before, 1, c);
    }
    EXPECT_EQ(leg_b, sent.per_kind[3]) << target_after.dump();
  } else {
    // The kernel's receive ring overflowed while the worker was off its CPU
    // (a loaded test machine): what never reached sluiced is not its to count.
    std::printf("note: %llu packets never reached the worker (receive ring full)\n",
                static_cast<unsigned long long>(sent.total + 2 * 300 - received));
    EXPECT_LE(DropDelta(stats_before, stats_after, "no_flow"), sent.per_kind[4]);
    EXPECT_LE(DropDelta(stats_before, stats_after, "replayed"), sent.per_kind[2]);
    EXPECT_GT(DropDelta(stats_before, stats_after, "replayed"), 0u);
    EXPECT_GT(DropDelta(stats_before, stats_after, "no_flow"), 0u);
  }
  // A leg's tx_packets counts what left toward its peer: leg b's, what
  // arrived at leg a.
  EXPECT_EQ(LegCounter(target_after, 1, "tx_packets"), LegCounter(target_before, 1, "tx_packets"))
      << "nothing forged was relayed";
  EXPECT_EQ(target_after["legs"][0]["remote"], Ep(daemon_->phone_ip(0), 40100));
  // The real call's own counters: every packet, nothing dropped.
  const json g = Get("real");
  for (int leg = 0; leg < 2; ++leg) {
    EXPECT_EQ(LegCounter(g, leg, "rx_packets"), 300u) << g.dump();
    EXPECT_EQ(LegCounter(g, leg, "auth_failures") + LegCounter(g, leg, "replay_drops") +
                  LegCounter(g, leg, "other_drops"),
              0u);
  }
  // No per-packet allocation: 30,000 packets would show a leak of even a
  // few dozen bytes each.
  EXPECT_GT(rss_before, 0u);
  EXPECT_LE(rss_after, rss_before + 1024) << "sluiced RSS grew during the flood";
  // The target call itself still works.
  EXPECT_TRUE(Flows(target.a, target.b, 20));
  Delete("real");
  Delete("target");
}

// A spoofer next to the real phone (same address, other port; same port,
// other address) sends forged packets, packets under a wrong key and replays
// of what it captured, to a leg whose peer is not learned yet and then to
// the same leg once learned: the leg never moves, the real peer keeps
// receiving and the spoofer receives nothing. A plain leg, which has nothing
// to authenticate with, keeps the first source it learned.
TEST_F(AdversarialTest, SpoofedSourcesNeverTakeOverALeg) {
  const std::string kKeyA = FreshKey("AES_CM_128_HMAC_SHA1_80");
  const std::string kKeyB = FreshKey("AEAD_AES_128_GCM");
  json reply = daemon_->Create(control_, "spoof",
                               SrtpLeg("a", "a", "", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                               SrtpLeg("b", "b", "", kKeyB, "AEAD_AES_128_GCM"));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  const std::string phone_ip = daemon_->phone_ip(0);
  Phone a = daemon_->MakePhone(0, phone_ip, 40200, 0x3000);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40202, 0x3001);
  Phone spoofers[2] = {daemon_->MakePhone(0, phone_ip, 40666, 0x3000),
                       daemon_->MakePhone(0, daemon_->spoof_ip(), 40200, 0x3000)};
  a.relay = Addr(daemon_->relay_ip(0), LocalPort(reply["legs"][0]));
  b.relay = Addr(daemon_->relay_ip(1), LocalPort(reply["legs"][1]));
  Arm(a, kKeyA, reply["legs"][0]["tx"]["crypto"]);
  Arm(b, kKeyB, reply["legs"][1]["tx"]["crypto"]);
  srtp::MasterKey wrong;
  ParseKey(kKeyC, &wrong);
  auto wrong_sender = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&wrong, 1}, {});

  // Unlearned: bad tags and a wrong key, from both spoofers.
  for (Phone& s : spoofers) {
    s.relay = a.relay;
    for (int i = 0; i < 20; ++i) {
      const auto seq = static_cast<uint16_t>(&s == spoofers ? i : 100 + i);
      std::vector<uint8_t> forged = a.Rtp(seq);
      forged.resize(forged.size() + 10, static_cast<uint8_t>(i));
      s.SendRaw(forged);
      std::vector<uint8_t> wrong_key = a.Rtp(seq);
      ASSERT_EQ(wrong_sender->ProtectRtp(wrong_key), srtp_err_status_ok);
      s.SendRaw(wrong_key);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  json g = Get("spoof");
  EXPECT_TRUE(g["legs"][0]["remote"].is_null()) << "nothing learned from a spoofer: " << g.dump();
  EXPECT_EQ(LegCounter(g, 0, "auth_failures"), 80u);

  // B, then A: both learned (B's first packet had nowhere to go yet).
  b.SendNext();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  a.seq = 100;
  const std::vector<uint8_t> first = a.SendNext();
  const auto got_first = b.Receive(300);
  ASSERT_EQ(got_first.size(), 1u);
  EXPECT_TRUE(got_first[0] == first);
  EXPECT_TRUE(Flows(a, b, 10));

  // Learned: every spoofer replays each captured packet more often than it
  // takes to move a leg, and keeps forging, while the call goes on.
  std::vector<std::vector<uint8_t>> captured, plain;
  for (int i = 0; i < 10; ++i) {
    std::vector<uint8_t> wire = a.Rtp(a.seq++);
    plain.push_back(wire);
    ASSERT_EQ(a.send->ProtectRtp(wire), srtp_err_status_ok);
    a.SendRaw(wire);
    captured.push_back(wire);
    for (Phone& s : spoofers) {
      for (int k = 0; k < 5; ++k) s.SendRaw(wire);
      std::vector<uint8_t> forged = a.Rtp(static_cast<uint16_t>(a.seq + 1));
      forged.resize(forged.size() + 10, 0x5a);
      s.SendRaw(forged);
    }
    std::vector<uint8_t> from_b = b.SendNext();
    (void)from_b;
  }
  std::vector<std::vector<uint8_t>> got_b = b.Receive(300);
  EXPECT_TRUE(got_b == plain) << "B receives A's packets once each, in order: " << got_b.size();
  EXPECT_EQ(a.Receive(300).size(), 10u) << "A still receives B's packets";
  for (Phone& s : spoofers) EXPECT_TRUE(s.Receive(100).empty()) << "a spoofer receives nothing";
  g = Get("spoof");
  EXPECT_EQ(g["legs"][0]["remote"], Ep(phone_ip, 40200)) << g.dump();
  EXPECT_EQ(LegCounter(g, 0, "remote_changes"), 0u);
  EXPECT_EQ(LegCounter(g, 0, "replay_drops"), 100u);
  EXPECT_EQ(LegCounter(g, 0, "auth_failures"), 100u);
  Delete("spoof");

  // A plain leg learns its first source and refuses every other.
  reply = daemon_->Create(control_, "spoof-plain", PlainLeg("a", "a", ""),
                          PlainLeg("b", "b", Ep(daemon_->phone_ip(1), 40212)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  Phone pa = daemon_->MakePhone(0, phone_ip, 40210, 0x4000);
  Phone pb = daemon_->MakePhone(1, daemon_->phone_ip(1), 40212, 0x4001);
  pa.relay = Addr(daemon_->relay_ip(0), LocalPort(reply["legs"][0]));
  pb.relay = Addr(daemon_->relay_ip(1), LocalPort(reply["legs"][1]));
  // A's first packet teaches the leg its source; then both ways.
  const std::vector<uint8_t> plain_first = pa.SendNext();
  const auto got_plain = pb.Receive(300);
  ASSERT_EQ(got_plain.size(), 1u);
  EXPECT_TRUE(got_plain[0] == plain_first);
  EXPECT_TRUE(Flows(pa, pb, 5));
  for (Phone& s : spoofers) {
    s.relay = pa.relay;
    for (int i = 0; i < 20; ++i) s.SendRaw(pa.Rtp(static_cast<uint16_t>(500 + i)));
  }
  EXPECT_TRUE(Flows(pa, pb, 10));
  for (Phone& s : spoofers) EXPECT_TRUE(s.Receive(100).empty());
  g = Get("spoof-plain");
  EXPECT_EQ(g["legs"][0]["remote"], Ep(phone_ip, 40210)) << g.dump();
  EXPECT_EQ(LegCounter(g, 0, "other_drops"), 40u) << "wrong_source";
  EXPECT_EQ(LegCounter(g, 1, "tx_packets"), 16u) << "A's packets only, toward B";
  Delete("spoof-plain");
}

// An ng offer's answerer leg has no peer and no receive key until the
// answer. An attacker who sends first, plain RTP from SSRCs 1 to 20, is
// neither learned as the peer nor given the offerer leg's send slots: once
// the answer comes, the real callee's audio gets through both ways, and the
// attacker receives nothing.
TEST_F(AdversarialTest, ForgedSsrcFloodBeforeTheAnswerTakesNothing) {
  NgClient ng;
  ASSERT_TRUE(ng.Open(daemon_->topology(), "relay", "127.0.0.1", 2224));
  const std::string call = "adversarial-early-flood";
  const std::string ka = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40300, 0x5000);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40302, 0x5001);
  Phone attacker = daemon_->MakePhone(1, daemon_->phone_ip(1), 40666, 1);
  ng::Value offer = NgOffer(call, "caller", PhoneSdp(daemon_->phone_ip(0), 40300, "RTP/SAVP", {ka}));
  offer.Set("transport-protocol", "RTP/AVP");  // the callee's side is plain
  ng::Value reply = ng.Call(offer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_b = ViewSdp(reply);
  const json before = Stats();
  attacker.relay = Addr(to_b.ip, to_b.port);
  for (uint32_t ssrc = 1; ssrc <= 20; ++ssrc) {
    attacker.ssrc = ssrc;
    for (uint16_t seq = 0; seq < 5; ++seq) attacker.SendRaw(attacker.Rtp(seq));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  reply = ng.Call(NgAnswer(call, "caller", "callee",
                           PhoneSdp(daemon_->phone_ip(1), 40302, "RTP/AVP", {})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_a = ViewSdp(reply);
  ASSERT_EQ(to_a.crypto.size(), 1u);
  a.relay = Addr(to_a.ip, to_a.port);
  b.relay = Addr(to_b.ip, to_b.port);
  Arm(a, ka, to_a.crypto[0]);  // b stays plain
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for both peers
  // The attacker keeps at it during the call, from SSRCs the call has not seen.
  for (uint32_t ssrc = 21; ssrc <= 40; ++ssrc) {
    attacker.ssrc = ssrc;
    attacker.SendRaw(attacker.Rtp(0));
  }
  ExchangeResult r = Exchange(a, b, 50);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_TRUE(attacker.Receive(100).empty()) << "the attacker receives nothing";
  const json after = Stats();
  EXPECT_GE(DropDelta(before, after, "wrong_source"), 120u);
  EXPECT_EQ(DropDelta(before, after, "stream_limit"), 0u);
  json g = Get(call);
  EXPECT_EQ(g["legs"][1]["remote"], Ep(daemon_->phone_ip(1), 40302)) << g.dump();
  EXPECT_EQ(LegCounter(g, 1, "remote_changes"), 0u);
  EXPECT_EQ(Result(ng.Call(NgCommand("delete", call))), "ok");
}

// AES_CM_128_NULL_AUTH has no SRTP tag: a packet from anywhere decrypts.
// Such a leg learns its first source and never moves, however many packets
// another source sends (even made with the real key), and the call goes on.
TEST_F(AdversarialTest, NullAuthPacketsNeverMoveThePeer) {
  std::string key = NewSdesKey();
  key.replace(0, key.find(' '), "AES_CM_128_NULL_AUTH");
  json reply = daemon_->Create(control_, "null-auth",
                               SrtpLeg("a", "a", "", key, "AES_CM_128_HMAC_SHA1_80"),
                               PlainLeg("b", "b", Ep(daemon_->phone_ip(1), 40312)));
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  const std::string phone_ip = daemon_->phone_ip(0);
  Phone a = daemon_->MakePhone(0, phone_ip, 40310, 0x6000);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40312, 0x6001);
  Phone spoofers[2] = {daemon_->MakePhone(0, phone_ip, 40666, 0x6000),
                       daemon_->MakePhone(0, daemon_->spoof_ip(), 40310, 0x6000)};
  a.relay = Addr(daemon_->relay_ip(0), LocalPort(reply["legs"][0]));
  b.relay = Addr(daemon_->relay_ip(1), LocalPort(reply["legs"][1]));
  Arm(a, key, reply["legs"][0]["tx"]["crypto"]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for B
  const std::vector<uint8_t> first = a.SendNext();  // A is learned
  const auto got_first = b.Receive(300);
  ASSERT_EQ(got_first.size(), 1u);
  EXPECT_TRUE(got_first[0] == first);
  ASSERT_TRUE(Flows(a, b, 5));
  // Each spoofer sends a run of packets ahead of A's, protected with the
  // real key, from SSRCs A uses and others.
  srtp::MasterKey real;
  ParseKey(key, &real);
  auto forger = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&real, 1}, {});
  for (Phone& s : spoofers) {
    s.relay = a.relay;
    const int first_seq = a.seq + 1000 + (&s == spoofers ? 0 : 100);
    for (int i = 0; i < 20; ++i) {
      std::vector<uint8_t> wire = a.Rtp(static_cast<uint16_t>(first_seq + i));
      if (i % 2 == 1) wire[11] ^= 0x77;  // another SSRC
      ASSERT_EQ(forger->ProtectRtp(wire), srtp_err_status_ok);
      s.SendRaw(wire);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(Flows(a, b, 10));
  for (Phone& s : spoofers) EXPECT_TRUE(s.Receive(100).empty()) << "a spoofer receives nothing";
  json g = Get("null-auth");
  EXPECT_EQ(g["legs"][0]["remote"], Ep(phone_ip, 40310)) << g.dump();
  EXPECT_EQ(LegCounter(g, 0, "remote_changes"), 0u);
  EXPECT_EQ(LegCounter(g, 0, "other_drops"), 40u) << "wrong_source";
  Delete("null-auth");
}

// Ethernet frames written by hand on a raw socket: runts, truncated and
// oversized frames, fragments, bad IP versions, header and total lengths,
// checksums, UDP lengths and checksums, expired TTLs and IPv6 faults, all
// aimed at a live leg. Each is counted as a malformed frame and dropped; the
// call on that leg carries on.
TEST_F(AdversarialTest, MalformedFramesAreCountedAndDropped) {
  Call call = MakeCall("frames", 40300, 40302, 0x5000);
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(Flows(call.a, call.b, 5));
  auto raw = daemon_->RawSocket(0);
  ASSERT_TRUE(raw.ok()) << raw.status();
  RawSender& tx = **raw;

  // A genuine SRTP packet of the call, framed by hand, as the base.
  std::vector<uint8_t> payload = call.a.Rtp(call.a.seq++);
  ASSERT_EQ(call.a.send->ProtectRtp(payload), srtp_err_status_ok);
  packet::UdpHeaderSpec spec;
  spec.src_mac = tx.own_mac();
  spec.dst_mac = tx.peer_mac();
  spec.src = *packet::Endpoint::Parse(Ep(daemon_->phone_ip(0), 40300));
  spec.dst = *packet::Endpoint::Parse(
      Ep(daemon_->relay_ip(0), LocalPort(call.reply["legs"][0])));
  auto frame_of = [&](const packet::UdpHeaderSpec& s) {
    const uint32_t hdr = packet::HeaderLength(s);
    std::vector<uint8_t> f(hdr + payload.size());
    std::memcpy(f.data() + hdr, payload.data(), payload.size());
    packet::WriteUdpHeaders(f.data() + hdr, static_cast<uint32_t>(payload.size()), s, 7);
    return f;
  };
  const std::vector<uint8_t> good = frame_of(spec);
  constexpr size_t kIp = 14, kUdp = 34;
  auto fix_ip_checksum = [](std::vector<uint8_t>& f) {
    f[kIp + 10] = f[kIp + 11] = 0;
    const uint16_t c = packet::Ipv4HeaderChecksum(&f[kIp], 20);
    f[kIp + 10] = static_cast<uint8_t>(c >> 8);
    f[kIp + 11] = static_cast<uint8_t>(c);
  };
  auto with = [&](auto mutate) {
    std::vector<uint8_t> f = good;
    mutate(f);
    return f;
  };
  std::vector<std::pair<const char*, std::vector<uint8_t>>> bad = {
      {"runt: Ethernet header only", std::vector<uint8_t>(good.begin(), good.begin() + 14)},
      {"runt: half an IPv4 header", std::vector<uint8_t>(good.begin(), good.begin() + 24)},
      {"runt: no room for UDP", with([&](auto& f) {
         f.resize(kUdp + 4);
         f[kIp + 2] = 0;
         f[kIp + 3] = 24;
         fix_ip_checksum(f);
       })},
      {"truncated: IPv4 total length past the frame", std::vector<uint8_t>(good.begin(), good.end() - 40)},
      {"IPv4 total length below its header", with([&](auto& f) { f[kIp + 3] = 12, f[kIp + 2] = 0; })},
      {"IPv4 header length 16", with([&](auto& f) { f[kIp] = 0x44; })},
      {"IPv4 header length past the frame", with([&](auto& f) { f.resize(kIp + 30); f[kIp] = 0x4f; })},
      {"IP version 6 under an IPv4 ethertype", with([&](auto& f) { f[kIp] = 0x65; })},
      {"IPv4 checksum", with([&](auto& f) { f[kIp + 10] ^= 0x5a; })},
      {"TTL 0", with([&](auto& f) { f[kIp + 8] = 0; fix_ip_checksum(f); })},
      {"UDP length past the datagram", with([&](auto& f) { f[kUdp + 4] = 0x7f; })},
      {"UDP length 4", with([&](auto& f) { f[kUdp + 4] = 0; f[kUdp + 5] = 4; })},
      {"UDP checksum", with([&](auto& f) { f[kUdp + 6] ^= 0x11; })},
      {"payload bit flipped under the UDP checksum", with([&](auto& f) { f[kUdp + 20] ^= 1; })},
  };
  // IPv6: a zero UDP checksum (RFC 8200 §8.1), a fragment header, a payload
  // length past the frame.
  packet::UdpHeaderSpec spec6 = spec;
  spec6.src = *packet::Endpoint::Parse("[fd00:202:1::2]:40300");
  spec6.dst = *packet::Endpoint::Parse("[fd00:202:1::1]:" + std::to_string(spec.dst.port));
  const std::vector<uint8_t> good6 = frame_of(spec6);
  constexpr size_t kIp6 = 14;
  std::vector<uint8_t> v6 = good6;
  v6[kIp6 + 40 + 6] = v6[kIp6 + 40 + 7] = 0;
  bad.push_back({"IPv6 UDP checksum zero", v6});
  v6 = good6;
  v6[kIp6 + 6] = 44;  // next header: fragment
  bad.push_back({"IPv6 fragment header", v6});
  v6 = good6;
  v6.resize(v6.size() - 30);
  bad.push_back({"IPv6 payload length past the frame", v6});
  v6 = good6;
  v6[kIp6 + 7] = 0;
  bad.push_back({"IPv6 hop limit 0", v6});

  constexpr int kRepeat = 10;
  const json before = Stats();
  const json call_before = Get("frames");
  for (int rep = 0; rep < kRepeat; ++rep) {
    for (const auto& [what, frame] : bad) ASSERT_TRUE(tx.Send(frame)) << what;
  }
  // IPv4 fragments. The net_af_packet device's socket asks the kernel to
  // reassemble IPv4 (PACKET_FANOUT_FLAG_DEFRAG), so a fragment whose datagram
  // never completes stays in the kernel and is not sluiced's to count; they
  // go out all the same, to show they harm nothing. A datagram the phone's
  // kernel fragments (3 kB over a 1500-byte MTU) arrives reassembled as one
  // frame longer than a receive buffer, cut short: malformed, once each.
  // (IPv6 fragments reach sluiced and are counted with the rest above.)
  for (int rep = 0; rep < kRepeat; ++rep) {
    for (uint8_t offset : {0, 0x10}) {
      std::vector<uint8_t> f = good;
      f[kIp + 4] = 0x99;  // an identification of its own: never completed
      f[kIp + 5] = static_cast<uint8_t>(2 * rep + (offset != 0));
      f[kIp + 6] = offset == 0 ? 0x20 : 0x00;  // MF, or the last piece
      f[kIp + 7] = offset;
      fix_ip_checksum(f);
      ASSERT_TRUE(tx.Send(f));
    }
  }
  std::vector<uint8_t> big = call.a.Rtp(call.a.seq, 3000);
  for (int i = 0; i < kRepeat; ++i) call.a.SendRaw(big);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const json after = Stats();
  const uint64_t expected = bad.size() * kRepeat + kRepeat;
  EXPECT_EQ(DropDelta(before, after, "malformed_frame"), expected) << after.dump();
  EXPECT_EQ(DropSum(after) - DropSum(before), expected) << "no other drop: " << after.dump();
  const json call_after = Get("frames");
  EXPECT_EQ(LegCounter(call_after, 0, "rx_packets"), LegCounter(call_before, 0, "rx_packets"))
      << "no malformed frame reached the leg";

  // The unmodified frame goes through, and so does the call.
  ASSERT_TRUE(tx.Send(good));
  auto got = call.b.Receive(300);
  ASSERT_EQ(got.size(), 1u);
  call.a.seq = static_cast<uint16_t>(call.a.seq + 1);
  EXPECT_TRUE(Flows(call.a, call.b, 20));
  Delete("frames");
}

// A host on side b's network aims at leg a's address through interface b:
// genuine SRTP of phone A, with phone A's address as its source, framed by
// hand. A flow is found by address, so only the interface check stops it:
// each copy is counted as wrong_interface and phone B receives nothing. The
// same packet through interface a is relayed (nothing else refused it, and
// the refused copies did not move the replay window).
TEST_F(AdversarialTest, PacketsThroughAnotherInterfaceAreRefused) {
  Call call = MakeCall("ingress", 40310, 40312, 0x5100);
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(Flows(call.a, call.b, 5));
  auto raw_a = daemon_->RawSocket(0);
  ASSERT_TRUE(raw_a.ok()) << raw_a.status();
  auto raw_b = daemon_->RawSocket(1);
  ASSERT_TRUE(raw_b.ok()) << raw_b.status();

  const std::vector<uint8_t> plain = call.a.Rtp(call.a.seq++);
  std::vector<uint8_t> payload = plain;
  ASSERT_EQ(call.a.send->ProtectRtp(payload), srtp_err_status_ok);
  auto frame_through = [&](const RawSender& tx) {
    packet::UdpHeaderSpec spec;
    spec.src_mac = tx.own_mac();
    spec.dst_mac = tx.peer_mac();
    spec.src = *packet::Endpoint::Parse(Ep(daemon_->phone_ip(0), 40310));
    spec.dst = *packet::Endpoint::Parse(
        Ep(daemon_->relay_ip(0), LocalPort(call.reply["legs"][0])));
    const uint32_t hdr = packet::HeaderLength(spec);
    std::vector<uint8_t> f(hdr + payload.size());
    std::memcpy(f.data() + hdr, payload.data(), payload.size());
    packet::WriteUdpHeaders(f.data() + hdr, static_cast<uint32_t>(payload.size()), spec, 9);
    return f;
  };

  constexpr int kCopies = 20;
  const json before = Stats();
  const std::vector<uint8_t> wrong = frame_through(**raw_b);
  for (int i = 0; i < kCopies; ++i) ASSERT_TRUE((*raw_b)->Send(wrong));
  EXPECT_TRUE(call.b.Receive(300).empty()) << "nothing through interface b reaches leg a";
  const json after = Stats();
  EXPECT_EQ(DropDelta(before, after, "wrong_interface"), static_cast<uint64_t>(kCopies))
      << after.dump();

  ASSERT_TRUE((*raw_a)->Send(frame_through(**raw_a)));
  const auto got = call.b.Receive(300);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], plain);
  EXPECT_TRUE(Flows(call.a, call.b, 10));
  Delete("ingress");
}

// Offered load far above what the one worker carries: several legs flooded
// with genuine SRTP as fast as the senders go, while ordinary calls talk at
// 50 packets a second. No call is torn down or stops being relayed, the
// excess is counted (rate_limited at the legs over leg_max_pps; what the
// receive ring could not take is reported), and once the flood stops every
// call flows without a loss.
TEST_F(AdversarialTest, OverloadKillsNoCall) {
  // Each flooded leg gets fewer packets than half the sequence space, so a
  // stretch the kernel drops can never leave its rollover counter behind.
  constexpr int kCalls = 4, kHeavy = 4, kFloodPackets = kHeavy * 30000;
  const uint64_t sessions_before = Stats()["sessions"].get<uint64_t>();
  std::vector<Call> calls, heavy;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(MakeCall("calm" + std::to_string(i), static_cast<uint16_t>(40400 + 4 * i),
                             static_cast<uint16_t>(40402 + 4 * i), 0x6000 + 2 * i));
  }
  for (int i = 0; i < kHeavy; ++i) {
    heavy.push_back(MakeCall("heavy" + std::to_string(i), static_cast<uint16_t>(40500 + 4 * i),
                             static_cast<uint16_t>(40502 + 4 * i), 0x7000 + 2 * i));
  }
  ASSERT_FALSE(HasFailure());
  for (Call& c : calls) EXPECT_TRUE(Flows(c.a, c.b, 5)) << c.name;
  // The floods: genuine packets, protected ahead of time.
  std::vector<std::vector<std::vector<uint8_t>>> wires(kHeavy);
  for (int h = 0; h < kHeavy; ++h) {
    wires[h].reserve(kFloodPackets / kHeavy);
    for (int i = 0; i < kFloodPackets / kHeavy; ++i) {
      std::vector<uint8_t> w = heavy[h].a.Rtp(heavy[h].a.seq++, 100);
      ASSERT_EQ(heavy[h].a.send->ProtectRtp(w), srtp_err_status_ok);
      wires[h].push_back(std::move(w));
    }
  }
  const json before = Stats();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> offered{0};
  std::vector<std::thread> senders;
  const auto flood_start = Clock::now();
  for (int h = 0; h < kHeavy; ++h) {
    senders.emplace_back([&, h] {
      for (const auto& w : wires[h]) {
        if (stop.load(std::memory_order_relaxed)) break;
        heavy[h].a.SendRaw(w);
        offered.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // The calm calls talk through the flood: 50 packets a second each way.
  std::vector<int> got_during(2 * kCalls, 0);
  const auto flood_end = flood_start + std::chrono::seconds(3);
  int rounds = 0;
  while (Clock::now() < flood_end && rounds < 150) {
    for (Call& c : calls) {
      c.a.SendNext();
      c.b.SendNext();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (int i = 0; i < kCalls; ++i) {
      got_during[2 * i] += static_cast<int>(calls[i].b.Receive(0).size());
      got_during[2 * i + 1] += static_cast<int>(calls[i].a.Receive(0).size());
    }
    ++rounds;
  }
  stop = true;
  for (std::thread& t : senders) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - flood_start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < kCalls; ++i) {
    got_during[2 * i] += static_cast<int>(calls[i].b.Receive(0).size());
    got_during[2 * i + 1] += static_cast<int>(calls[i].a.Receive(0).size());
  }
  for (Call& h : heavy) {
    h.b.Receive(0);
  }
  const json after = Stats();
  const uint64_t worker_rx = WorkerRx(after) - WorkerRx(before);
  const uint64_t limited = DropDelta(before, after, "rate_limited");
  uint64_t heavy_relayed = 0;
  for (Call& h : heavy) heavy_relayed += LegCounter(Get(h.name), 1, "tx_packets");
  std::printf("overload: %.0f packets/s offered for %.2f s (%llu packets); the worker received "
              "%llu (%llu missed before it), relayed %llu of the flood and counted %llu as "
              "rate_limited; calm calls got %d..%d of %d packets per direction meanwhile\n",
              static_cast<double>(offered.load()) / seconds, seconds,
              static_cast<unsigned long long>(offered.load()),
              static_cast<unsigned long long>(worker_rx),
              static_cast<unsigned long long>(offered.load() > worker_rx ? offered.load() - worker_rx
                                                                         : 0),
              static_cast<unsigned long long>(heavy_relayed),
              static_cast<unsigned long long>(limited),
              *std::min_element(got_during.begin(), got_during.end()),
              *std::max_element(got_during.begin(), got_during.end()), rounds);

  // Every call was still being relayed during the flood.
  for (int i = 0; i < 2 * kCalls; ++i) {
    EXPECT_GT(got_during[i], 0) << "call " << i / 2 << " direction " << i % 2
                                << " was not relayed during the flood";
  }
  // The excess was counted, not relayed: each flooded leg is held to its rate.
  EXPECT_GT(limited, 0u) << after.dump();
  EXPECT_LE(heavy_relayed,
            kHeavy * (static_cast<uint64_t>(kLegMaxPps * (seconds + 1.0)) + kLegMaxPps / 10))
      << after.dump();
  // No session was lost, and every call flows normally again.
  EXPECT_EQ(after["sessions"].get<uint64_t>(), sessions_before + kCalls + kHeavy);
  for (Call& c : calls) {
    ASSERT_TRUE(Get(c.name)["ok"].get<bool>()) << c.name;
    EXPECT_TRUE(Flows(c.a, c.b, 50)) << c.name << " after the flood";
  }
  for (Call& h : heavy) {
    h.a.seq = static_cast<uint16_t>(h.a.seq + 1);
    EXPECT_TRUE(Flows(h.a, h.b, 50)) << h.name << " after the flood";
    Delete(h.name);
  }
  for (Call& c : calls) Delete(c.name);
}

// [limits] leg_max_pps: a leg sent far more than its rate relays a burst's
// worth plus its rate, and counts the rest; the other direction and other
// calls are untouched, and the leg carries its normal pace again at once.
TEST_F(AdversarialTest, LegPacketRateIsEnforcedAndCounted) {
  Call c = MakeCall("rate", 40600, 40602, 0x8000);
  ASSERT_FALSE(HasFailure());
  std::vector<std::vector<uint8_t>> wires;
  constexpr int kSent = 3000;
  for (int i = 0; i < kSent; ++i) {
    std::vector<uint8_t> w = c.a.Rtp(c.a.seq++, 100);
    ASSERT_EQ(c.a.send->ProtectRtp(w), srtp_err_status_ok);
    wires.push_back(std::move(w));
  }
  const json before = Stats();
  const json leg_before = Get("rate");
  // About 10,000 packets a second: five times the limit, slow enough for the
  // receive ring to take every one.
  const auto start = Clock::now();
  for (int i = 0; i < kSent; ++i) {
    c.a.SendRaw(wires[static_cast<size_t>(i)]);
    if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t received = c.b.Receive(200).size();
  const json after = Stats();
  // The worker may still have been draining its ring after the last send.
  const double window = std::chrono::duration<double>(Clock::now() - start).count();
  const json leg_after = Get("rate");
  const uint64_t relayed = LegCounter(leg_after, 1, "tx_packets") -
                           LegCounter(leg_before, 1, "tx_packets");
  const uint64_t limited = DropDelta(before, after, "rate_limited");
  std::printf("rate limit %u/s: %d packets in %.2f s, %llu relayed, %llu rate_limited\n",
              kLegMaxPps, kSent, seconds, static_cast<unsigned long long>(relayed),
              static_cast<unsigned long long>(limited));
  EXPECT_EQ(LegCounter(leg_after, 0, "rx_packets") - LegCounter(leg_before, 0, "rx_packets"),
            static_cast<uint64_t>(kSent))
      << "every packet reached the leg";
  EXPECT_EQ(relayed + limited, static_cast<uint64_t>(kSent)) << after.dump();
  EXPECT_EQ(received, relayed);
  EXPECT_GE(relayed, kLegMaxPps / 10) << "a burst's worth passes";
  EXPECT_LE(relayed, kLegMaxPps / 10 + static_cast<uint64_t>(kLegMaxPps * window) + 1);
  EXPECT_EQ(LegCounter(leg_after, 0, "other_drops") - LegCounter(leg_before, 0, "other_drops"),
            limited);
  // Back to a normal pace: nothing lost either way.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(Flows(c.a, c.b, 50));
  Delete("rate");
}

// [limits] max_sessions: one more is refused with resource_exhausted and
// takes nothing; a deleted session frees its place.
TEST_F(AdversarialTest, SessionLimitIsEnforced) {
  const uint64_t existing = Stats()["sessions"].get<uint64_t>();
  ASSERT_LT(existing, kMaxSessions);
  std::vector<std::string> names;
  for (uint64_t i = existing; i < kMaxSessions; ++i) {
    names.push_back("limit" + std::to_string(i));
    json r = control_.Call({{"op", "session.create"},
                            {"session", names.back()},
                            {"legs", {PlainLeg("a", "a", ""), PlainLeg("b", "b", "")}}});
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  }
  json r = control_.Call({{"op", "session.create"},
                          {"session", "one-too-many"},
                          {"legs", {PlainLeg("a", "a", ""), PlainLeg("b", "b", "")}}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"]["code"], "resource_exhausted") << r.dump();
  EXPECT_EQ(Stats()["sessions"].get<uint64_t>(), kMaxSessions);
  EXPECT_FALSE(Get("one-too-many")["ok"].get<bool>());
  Delete(names.back());
  names.pop_back();
  r = control_.Call({{"op", "session.create"},
                     {"session", "one-too-many"},
                     {"legs", {PlainLeg("a", "a", ""), PlainLeg("b", "b", "")}}});
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  names.push_back("one-too-many");
  for (const std::string& n : names) Delete(n);
  EXPECT_EQ(Stats()["sessions"].get<uint64_t>(), existing);
}

}  // namespace
}  // namespace sluice::testing
