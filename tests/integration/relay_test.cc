// sluiced end to end: the real daemon on net_af_packet devices bound to veth
// ends in a namespace of its own, two phones in two more namespaces sending
// and receiving libsrtp2-protected RTP over ordinary UDP sockets, and the
// SBC's side played over the real control socket.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "libsrtp_peer.h"
#include "sluice/srtp/master_key.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

class RelayTest : public ::testing::Test {
 protected:
  // Each test's own keys (no key serves two sessions).
  const std::string kKeyA = FreshKey("AES_CM_128_HMAC_SHA1_80");
  const std::string kKeyB = FreshKey("AEAD_AES_256_GCM");

  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "relay";
    options.subnet_a = "10.201.1";
    options.subnet_b = "10.201.2";
    options.extra_config = "[media]\nport_min = 30000\nport_max = 30999\nrekey_overlap_ms = 2000\n";
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

  // Opens a phone socket in `ns` ("pa" or "pb") at ip:port.
  Phone MakePhone(const std::string& ns, const std::string& ip, uint16_t port, uint32_t ssrc) {
    return daemon_->MakePhone(ns == "pa" ? 0 : 1, ip, port, ssrc);
  }

  json Create(const std::string& name, json leg_a, json leg_b) {
    return daemon_->Create(control_, name, std::move(leg_a), std::move(leg_b));
  }

  // Sends n packets each way, 2 ms apart, and checks every one arrives, in
  // order, with the payload that was sent.
  void Exchange(Phone& a, Phone& b, int n) {
    const ExchangeResult r = testing::Exchange(a, b, n);
    EXPECT_TRUE(r.Perfect()) << r.Describe();
    if (::testing::Test::HasFailure()) {
      std::printf("stats: %s\n", control_.Call({{"op", "stats"}}).dump().c_str());
    }
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  ControlClient control_;
};


TEST_F(RelayTest, DifferentSuitesOnTheTwoLegsAcrossTheSequenceWrap) {
  json r = Create("suites", SrtpLeg("a", "a", "10.201.1.2:40000", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  SrtpLeg("b", "b", "10.201.2.2:40002", kKeyB, "AEAD_AES_256_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40000, 0xa1);
  Phone b = MakePhone("pb", "10.201.2.2", 40002, 0xb1);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  a.seq = 65400;  // the rollover counter advances mid-call
  b.seq = 65450;
  const json before = control_.Call({{"op", "stats"}});
  Exchange(a, b, 200);
  // The ports' own counters saw the call too, and lost nothing.
  const json after = control_.Call({{"op", "stats"}});
  ASSERT_EQ(after["ports"].size(), 2u) << after.dump();
  for (int side = 0; side < 2; ++side) {
    const json& p = after["ports"][side];
    const json& p0 = before["ports"][side];
    EXPECT_EQ(p["interface"], side == 0 ? "a" : "b");
    EXPECT_GE(p["rx_packets"].get<uint64_t>() - p0["rx_packets"].get<uint64_t>(), 200u) << p.dump();
    EXPECT_GE(p["tx_packets"].get<uint64_t>() - p0["tx_packets"].get<uint64_t>(), 200u) << p.dump();
    EXPECT_EQ(p["rx_missed"], p0["rx_missed"]) << p.dump();
  }
  json g = control_.Call({{"op", "session.get"}, {"session", "suites"}});
  EXPECT_EQ(g["legs"][0]["counters"]["rx_packets"], 200) << g.dump();
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 0);
  EXPECT_EQ(g.dump().find("inline:"), std::string::npos) << "no key in session.get";
  EXPECT_TRUE(control_.Call({{"op", "session.delete"}, {"session", "suites"}})["ok"].get<bool>());
}

TEST_F(RelayTest, PlainLegBridgedToSrtpLeg) {
  json r = Create("bridge", PlainLeg("trunk", "a", "10.201.1.2:40010"),
                  SrtpLeg("phone", "b", "10.201.2.2:40012", kKeyB, "AEAD_AES_128_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40010, 0xa2);
  Phone b = MakePhone("pb", "10.201.2.2", 40012, 0xb2);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  Exchange(a, b, 100);
  control_.Call({{"op", "session.delete"}, {"session", "bridge"}});
}

TEST_F(RelayTest, LearnsPeersButNeverFromForgedOrReplayedPackets) {
  json r = Create("learn", SrtpLeg("a", "a", "", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  SrtpLeg("b", "b", "", kKeyB, "AEAD_AES_256_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40020, 0xa3);
  Phone b = MakePhone("pb", "10.201.2.2", 40022, 0xb3);
  Phone spoof = MakePhone("pa", "10.201.1.2", 40666, 0xa3);
  a.relay = spoof.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  // A forged packet first: a valid header and a bad tag, from the spoofer.
  std::vector<uint8_t> forged = a.Rtp(1);
  forged.resize(forged.size() + 10, 0xee);
  spoof.SendRaw(forged);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  json g = control_.Call({{"op", "session.get"}, {"session", "learn"}});
  EXPECT_TRUE(g["legs"][0]["remote"].is_null()) << "a forged packet taught nothing: " << g.dump();
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 1);
  // B speaks first: learned, but with A still unknown its packet has nowhere
  // to go (counted, not relayed). Then A's first packet reaches the learned B.
  b.SendNext();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<uint8_t> first = a.SendNext();
  auto got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0] == first);
  // A capture of A's packet replayed by the spoofer: dropped as a replay.
  std::vector<uint8_t> wire = a.Rtp(a.seq++);
  const std::vector<uint8_t> plain = wire;
  ASSERT_EQ(a.send->ProtectRtp(wire), srtp_err_status_ok);
  a.SendRaw(wire);
  spoof.SendRaw(wire);
  got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u) << "the replay must not be relayed";
  // A tampered packet (one payload bit flipped) in the middle of the call.
  std::vector<uint8_t> tampered = a.Rtp(a.seq++);
  ASSERT_EQ(a.send->ProtectRtp(tampered), srtp_err_status_ok);
  tampered[30] ^= 0x01;
  a.SendRaw(tampered);
  Exchange(a, b, 50);
  g = control_.Call({{"op", "session.get"}, {"session", "learn"}});
  EXPECT_EQ(g["legs"][0]["remote"], "10.201.1.2:40020") << g.dump();
  EXPECT_EQ(g["legs"][0]["remote_learned"], true);
  EXPECT_EQ(g["legs"][0]["counters"]["replay_drops"], 1);
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 2) << "the forged and the tampered packet";
  control_.Call({{"op", "session.delete"}, {"session", "learn"}});
}

TEST_F(RelayTest, RekeyMidStreamLosesNothing) {
  json r = Create("rekey", SrtpLeg("a", "a", "10.201.1.2:40030", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  PlainLeg("b", "b", "10.201.2.2:40032"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40030, 0xa4);
  Phone b = MakePhone("pb", "10.201.2.2", 40032, 0xb4);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  a.seq = 65500;
  Exchange(a, b, 60);
  // The re-INVITE: new keys both ways. A's packets under the old key that
  // are still in flight must keep verifying.
  const char kNewA[] = "AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
  std::vector<uint8_t> in_flight = a.Rtp(a.seq++);
  const std::vector<uint8_t> in_flight_plain = in_flight;
  ASSERT_EQ(a.send->ProtectRtp(in_flight), srtp_err_status_ok);
  json u = control_.Call({{"op", "session.update"}, {"session", "rekey"}, {"leg", "a"},
                          {"rx", {{"crypto", kNewA}}}, {"tx", {{"suite", "AEAD_AES_128_GCM"}}}});
  ASSERT_TRUE(u["ok"].get<bool>()) << u.dump();
  a.SendRaw(in_flight);
  auto got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u) << control_.Call({{"op", "session.get"}, {"session", "rekey"}}).dump()
                            << control_.Call({{"op", "stats"}}).dump();
  EXPECT_TRUE(got[0] == in_flight_plain);
  // The phone moves to the new keys, keeping its stream (and ROC).
  srtp::MasterKey new_send, new_recv;
  ParseKey(kNewA, &new_send);
  ParseKey(u["legs"][0]["tx"]["crypto"], &new_recv);
  auto sender = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&new_send, 1}, {});
  // libsrtp2 starts a new sender at ROC 0; bring it to the stream's ROC by
  // protecting (and discarding) the sequence numbers up to the wrap.
  for (uint32_t s = 65500; s <= 65535; ++s) {
    std::vector<uint8_t> skip = a.Rtp(static_cast<uint16_t>(s));
    sender->ProtectRtp(skip);
  }
  a.send = std::move(sender);
  a.recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&new_recv, 1}, {});
  Exchange(a, b, 60);
  json g = control_.Call({{"op", "session.get"}, {"session", "rekey"}});
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 0) << g.dump();
  EXPECT_EQ(g["legs"][0]["tx_suite"], "AEAD_AES_128_GCM");
  // The old key again: refused as a two-time pad.
  json reuse = control_.Call({{"op", "session.update"}, {"session", "rekey"}, {"leg", "a"},
                              {"rx", {{"crypto", kKeyA}}}});
  EXPECT_FALSE(reuse["ok"].get<bool>());
  EXPECT_EQ(reuse["error"]["code"], "key_reuse") << reuse.dump();
  control_.Call({{"op", "session.delete"}, {"session", "rekey"}});
}

// The first packets toward a peer whose next hop has not answered yet wait
// in the relay and go out, in order, once it answers: phone B's new address
// ignores ARP at first, so the relay's request at session.create goes
// unanswered and A's first packets find no MAC.
TEST_F(RelayTest, FirstPacketsToAnUnresolvedPeerWaitForItsAnswer) {
  Topology& topo = daemon_->topology();
  // Undone however the test ends: the suite's other tests need B to answer.
  struct Undo {
    Topology& topo;
    ~Undo() {
      topo.Run("pb", {"sysctl", "-qw", "net.ipv4.conf.veth-b1.arp_ignore=0"}).IgnoreError();
      topo.Run("pb", {"ip", "addr", "del", "10.201.2.9/24", "dev", "veth-b1"}).IgnoreError();
    }
  } undo{topo};
  ASSERT_TRUE(topo.Run("pb", {"ip", "addr", "add", "10.201.2.9/24", "dev", "veth-b1"}).ok());
  ASSERT_TRUE(topo.Run("pb", {"sysctl", "-qw", "net.ipv4.conf.veth-b1.arp_ignore=8"}).ok());
  const json before = control_.Call({{"op", "stats"}});
  const json r = control_.Call({{"op", "session.create"},
                                {"session", "unresolved"},
                                {"legs",
                                 {PlainLeg("a", "a", "10.201.1.2:40030"),
                                  PlainLeg("b", "b", "10.201.2.9:40032")}}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40030, 0xa9);
  Phone b = MakePhone("pb", "10.201.2.9", 40032, 0xb9);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 5; ++i) {
    sent.push_back(a.SendNext());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(b.Receive(200).empty()) << "B answered no ARP, yet packets reached it";
  const json waiting = control_.Call({{"op", "stats"}});
  EXPECT_EQ(waiting["neighbor_hold"]["waiting"], 5) << waiting.dump();
  // B answers the relay's next request, at most a second on.
  ASSERT_TRUE(topo.Run("pb", {"sysctl", "-qw", "net.ipv4.conf.veth-b1.arp_ignore=0"}).ok());
  std::vector<std::vector<uint8_t>> got = b.Receive(2500);
  EXPECT_EQ(got, sent) << "every held packet, in order";
  EXPECT_TRUE(Flows(a, b, 20));
  const json after = control_.Call({{"op", "stats"}});
  EXPECT_EQ(after["neighbor_hold"]["sent"].get<uint64_t>() -
                before["neighbor_hold"]["sent"].get<uint64_t>(), 5u) << after.dump();
  EXPECT_EQ(after["neighbor_hold"]["dropped"], before["neighbor_hold"]["dropped"]);
  EXPECT_EQ(after["drops"].value("no_neighbor", 0), before["drops"].value("no_neighbor", 0));
  control_.Call({{"op", "session.delete"}, {"session", "unresolved"}});
}

TEST_F(RelayTest, AnswersArpAndPing) {
  EXPECT_TRUE(daemon_->topology().Run("pa", {"ping", "-c", "1", "-W", "2", "10.201.1.1"}).ok());
  EXPECT_TRUE(daemon_->topology().Run("pb", {"ping", "-c", "1", "-W", "2", "10.201.2.1"}).ok());
}

}  // namespace
}  // namespace sluice::testing
