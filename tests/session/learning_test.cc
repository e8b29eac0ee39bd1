// Peer learning: which sources a leg accepts and when its peer moves.
#include "sluice/session/learning.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "sluice/srtp/context.h"
#include "sluice/srtp/master_key.h"

namespace sluice::session {
namespace {

using learning::CheckSource;
using learning::Learn;
using learning::Source;

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

constexpr std::array<uint8_t, 6> kMacA = {2, 0, 0, 0, 0, 0xa};
constexpr std::array<uint8_t, 6> kMacB = {2, 0, 0, 0, 0, 0xb};
constexpr crypto::Suite kNullAuth = crypto::Suite::kAesCm128NullAuth;

class LearningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    flow_.in_remote = &remote_;
    flow_.learn_packets = 3;
  }
  // A leg that authenticates what it receives (or, with a suite without an
  // SRTP tag, decrypts it without authenticating it).
  void Keyed(crypto::Suite suite = crypto::Suite::kAesCm128HmacSha1_80) {
    srtp::MasterKey key;
    key.suite = suite;
    ctx_ = *srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), {});
    flow_.rx = ctx_.get();
  }
  // Arrival and, when accepted, learning, as the worker does it.
  Source Packet(const packet::Endpoint& src, const std::array<uint8_t, 6>& mac,
                bool rtcp = false) {
    const Source s = CheckSource(flow_, src, rtcp);
    if (!s.refused) Learn(flow_, s, src, mac.data(), rtcp);
    return s;
  }

  RemoteSlot remote_;
  Flow flow_;
  std::unique_ptr<srtp::Context> ctx_;
};

TEST_F(LearningTest, GivenRemoteIsKnownWithItsMacOnlyWhenGiven) {
  EXPECT_FALSE(learning::GivenRemote(std::nullopt, std::nullopt).known);
  const RemoteView v = learning::GivenRemote(Ep("192.0.2.1:4000"), std::nullopt);
  EXPECT_TRUE(v.known);
  EXPECT_FALSE(v.has_mac);
  EXPECT_FALSE(v.learned);
  EXPECT_EQ(v.endpoint, Ep("192.0.2.1:4000"));
  const RemoteView m = learning::GivenRemote(Ep("192.0.2.1:4000"), packet::MacAddress(kMacA));
  EXPECT_TRUE(m.has_mac);
  EXPECT_EQ(m.mac, packet::MacAddress(kMacA));
}

TEST_F(LearningTest, APlainLegLearnsItsFirstSourceAndNeverMoves) {
  EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).refused);
  RemoteView v = remote_.Load();
  EXPECT_TRUE(v.known);
  EXPECT_TRUE(v.learned);
  EXPECT_EQ(v.endpoint, Ep("192.0.2.1:4000"));
  EXPECT_EQ(v.mac, packet::MacAddress(kMacA));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Packet(Ep("192.0.2.9:4000"), kMacB).refused);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
}

// AES_CM_128_NULL_AUTH has no SRTP tag: anyone can make a packet it
// accepts, so it learns as a plain leg does and never moves.
TEST_F(LearningTest, ANullAuthLegLearnsAsAPlainLeg) {
  Keyed(crypto::Suite::kAesCm128NullAuth);
  EXPECT_FALSE(learning::Authenticates(flow_));
  EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).refused);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Packet(Ep("192.0.2.9:4000"), kMacB).refused);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
  EXPECT_EQ(flow_.counters.remote_changes.load(), 0u);
  Keyed();
  EXPECT_TRUE(learning::Authenticates(flow_));
}

// Before its call is answered, a leg that authenticates nothing learns no
// source at all (whoever sends first would become the peer); once answered,
// its first source. A keyed leg learns from authenticated packets either way.
TEST_F(LearningTest, AnUnauthenticatedLegLearnsNothingBeforeItsAnswer) {
  for (const crypto::Suite* suite :
       {static_cast<const crypto::Suite*>(nullptr), &kNullAuth}) {
    flow_.rx = nullptr;
    if (suite != nullptr) Keyed(*suite);
    remote_.Store(RemoteView{});
    flow_.awaiting_answer.store(true);
    for (int i = 0; i < 5; ++i) {
      const Source s = Packet(Ep("192.0.2.66:4000"), kMacB);
      EXPECT_TRUE(s.refused);
      EXPECT_TRUE(s.new_source);
    }
    EXPECT_FALSE(remote_.Load().known);
    flow_.awaiting_answer.store(false);
    EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).refused);
    EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
    EXPECT_TRUE(Packet(Ep("192.0.2.66:4000"), kMacB).refused);
  }
  Keyed();
  remote_.Store(RemoteView{});
  flow_.awaiting_answer.store(true);
  EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).refused);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
}

TEST_F(LearningTest, AKeyedLegMovesAfterLearnPacketsInARowFromTheNewSource) {
  Keyed();
  remote_.Store(learning::GivenRemote(Ep("192.0.2.1:4000"), packet::MacAddress(kMacA)));
  for (int i = 0; i < 2; ++i) {
    const Source s = Packet(Ep("198.51.100.7:5000"), kMacB);
    EXPECT_TRUE(s.new_source);
    EXPECT_FALSE(s.refused);
    EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000")) << "packet " << i;
  }
  Packet(Ep("198.51.100.7:5000"), kMacB);
  const RemoteView v = remote_.Load();
  EXPECT_EQ(v.endpoint, Ep("198.51.100.7:5000"));
  EXPECT_EQ(v.mac, packet::MacAddress(kMacB));
  EXPECT_TRUE(v.learned);
  EXPECT_EQ(flow_.counters.remote_changes.load(), 1u);
}

TEST_F(LearningTest, APacketFromTheKnownPeerResetsTheCount) {
  Keyed();
  remote_.Store(learning::GivenRemote(Ep("192.0.2.1:4000"), packet::MacAddress(kMacA)));
  Packet(Ep("198.51.100.7:5000"), kMacB);
  Packet(Ep("198.51.100.7:5000"), kMacB);
  EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).new_source);
  Packet(Ep("198.51.100.7:5000"), kMacB);
  Packet(Ep("198.51.100.7:5000"), kMacB);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
  // Alternating candidates never reach the count either.
  for (int i = 0; i < 6; ++i) Packet(Ep(i % 2 ? "198.51.100.7:5000" : "198.51.100.8:5000"), kMacB);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
  EXPECT_EQ(flow_.counters.remote_changes.load(), 0u);
}

TEST_F(LearningTest, AStrictLegRefusesEveryOtherSource) {
  Keyed();
  flow_.strict_source = true;
  remote_.Store(learning::GivenRemote(Ep("192.0.2.1:4000"), std::nullopt));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Packet(Ep("198.51.100.7:5000"), kMacB).refused);
  EXPECT_FALSE(Packet(Ep("192.0.2.1:4000"), kMacA).refused);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
}

TEST_F(LearningTest, TheGivenPeersFirstPacketTellsItsNextHop) {
  Keyed();
  remote_.Store(learning::GivenRemote(Ep("192.0.2.1:4000"), std::nullopt));
  const Source s = Packet(Ep("192.0.2.1:4000"), kMacA);
  EXPECT_FALSE(s.new_source);
  EXPECT_TRUE(s.needs_mac);
  const RemoteView v = remote_.Load();
  EXPECT_TRUE(v.has_mac);
  EXPECT_FALSE(v.learned) << "the address is still the given one";
  EXPECT_EQ(v.mac, packet::MacAddress(kMacA));
  EXPECT_FALSE(CheckSource(flow_, Ep("192.0.2.1:4000"), false).needs_mac);
}

TEST_F(LearningTest, RtcpOnItsOwnPortFollowsTheRtpPortAndNeverMovesThePeer) {
  Keyed();
  flow_.rtcp_mux = false;
  remote_.Store(learning::GivenRemote(Ep("192.0.2.1:4000"), packet::MacAddress(kMacA)));
  // RTCP comes from the peer's RTP port + 1.
  EXPECT_FALSE(CheckSource(flow_, Ep("192.0.2.1:4001"), true).new_source);
  EXPECT_TRUE(CheckSource(flow_, Ep("192.0.2.1:4000"), true).new_source);
  for (int i = 0; i < 5; ++i) Packet(Ep("198.51.100.7:5001"), kMacB, /*rtcp=*/true);
  EXPECT_EQ(remote_.Load().endpoint, Ep("192.0.2.1:4000"));
}

}  // namespace
}  // namespace sluice::session
