// WebRtcLegs through a real HandshakeThread (not started: PollOnce runs its
// loop, RunControlTasks the control loop's side): what Add and Update refuse
// and return, a connectivity check put on the thread's ring reaching the
// sink as a kSelected event only from the control loop, Update applied on
// the thread, and Remove.
//
// EAL runs in-process without hugepages; nothing is sent anywhere (the TX
// ring is read back).
#include "sluice/webrtc/webrtc_legs.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "eal_environment.h"
#include "leg_peer.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/dtls/fingerprint.h"
#include "sluice/ice/stun.h"
#include "sluice/packet/parse.h"
#include "udp_frame.h"

namespace sluice::webrtc {
namespace {

using control::DtlsSpec;
using control::HandshakeEvent;
using control::HandshakeLegId;
using control::IceSpec;
using packet::Endpoint;
using Bytes = std::vector<uint8_t>;
using testing::BrowserCert;
using testing::KeyBytes;
using testing::SluiceCert;

const auto* const kEnv = sluice::testing::AddEalEnvironment("webrtc_legs_test", 64);

constexpr const char* kPeerUfrag = "peerB2";
constexpr const char* kPeerPwd = "PeerPasswordNotUsedByLite";

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }
const Endpoint kLocal = Ep("192.0.2.1:40000");
const Endpoint kPeer = Ep("198.51.100.10:50000");
const HandshakeLegId kId = {"call-1", 1, 7};

std::string BrowserFingerprint() {
  return dtls::FormatFingerprint(BrowserCert().GetFingerprint());
}

rte_mempool* Pool() {
  static rte_mempool* pool = rte_pktmbuf_pool_create("legs_test_pool", 255, 0, 0,
                                                     RTE_MBUF_DEFAULT_BUF_SIZE,
                                                     static_cast<int>(rte_socket_id()));
  return pool;
}

IceSpec PeerIce() {
  IceSpec s;
  s.ufrag = kPeerUfrag;
  s.pwd = kPeerPwd;
  return s;
}

DtlsSpec Dtls(const std::string& setup, std::vector<std::string> fingerprints) {
  return DtlsSpec{setup, std::move(fingerprints)};
}

class WebRtcLegsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(Pool(), nullptr);
    tx_ = rte_ring_create("legs_test_tx", 64, SOCKET_ID_ANY, RING_F_SC_DEQ);
    ASSERT_NE(tx_, nullptr);
    HandshakeThreadOptions o;
    o.pool = Pool();
    o.tx_ring = tx_;
    o.ring_name = "legs_test";
    o.clock = [this] { return now_; };
    auto t = HandshakeThread::Create(std::move(o));
    ASSERT_TRUE(t.ok()) << t.status();
    thread_ = *std::move(t);
    Make({});
  }
  void TearDown() override {
    legs_.reset();
    thread_.reset();
    TakeSent();
    rte_ring_free(tx_);
    EXPECT_EQ(rte_mempool_in_use_count(Pool()), 0u) << "every mbuf freed";
  }

  void Make(WebRtcLegsOptions options) {
    options.clock = [this] { return now_; };
    legs_ = std::make_unique<WebRtcLegs>(*thread_, SluiceCert(), std::move(options),
                                         [this](HandshakeEvent e) { events_.push_back(e); });
  }

  // A datagram from `from` to `to` as a worker hands it to the thread.
  void Give(const Bytes& payload, const Endpoint& from, const Endpoint& to = kLocal) {
    packet::UdpHeaderSpec spec;
    spec.src_mac = {0x02, 0, 0, 0, 0, 0x99};
    spec.dst_mac = {0x02, 0, 0, 0, 0, 0x01};
    spec.src = from;
    spec.dst = to;
    rte_mbuf* m = sluice::testing::UdpFrame(Pool(), spec, payload, 0);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(thread_->ring(), m), 0);
  }

  // The UDP payloads the thread sent, freed.
  std::vector<Bytes> TakeSent() {
    std::vector<Bytes> out;
    void* p;
    while (rte_ring_dequeue(tx_, &p) == 0) {
      auto* m = static_cast<rte_mbuf*>(p);
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      const packet::ParsedFrame f = packet::ParseFrame(d, rte_pktmbuf_data_len(m), {});
      out.emplace_back(d + f.payload_offset, d + f.payload_offset + f.payload_len);
      rte_pktmbuf_free(m);
    }
    return out;
  }

  // A nominating check under the leg's credentials from `view`.
  static Bytes Check(const control::HandshakeView& view, const std::string& peer_ufrag = kPeerUfrag) {
    return testing::BrowserCheck(view.ice->ufrag, peer_ufrag, view.ice->pwd, /*nominate=*/true);
  }

  uint64_t now_ = 5000;
  rte_ring* tx_ = nullptr;
  std::unique_ptr<HandshakeThread> thread_;
  std::unique_ptr<WebRtcLegs> legs_;
  std::vector<HandshakeEvent> events_;
};

TEST_F(WebRtcLegsTest, AddGivesCredentialsCandidatesAndOurDtlsSide) {
  auto v = legs_->Add(kId, kLocal, Dtls("actpass", {BrowserFingerprint()}), IceSpec{}, kPeer);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->ice && v->dtls);
  EXPECT_EQ(v->ice->ufrag.size(), ice::kGeneratedUfragChars);
  EXPECT_EQ(v->ice->pwd.size(), ice::kGeneratedPwdChars);
  ASSERT_EQ(v->ice->candidates.size(), 1u);
  EXPECT_NE(v->ice->candidates[0].find(" 192.0.2.1 40000 typ host"), std::string::npos);
  EXPECT_FALSE(v->ice->selected.has_value());
  EXPECT_EQ(v->dtls->state, "new");
  EXPECT_EQ(v->dtls->setup, "active");  // RFC 5763 §5: the answerer to actpass is active
  EXPECT_EQ(v->dtls->fingerprint, dtls::FormatFingerprint(SluiceCert().GetFingerprint()));
  EXPECT_EQ(v->dtls->fingerprint, legs_->fingerprint());

  auto again = legs_->View(kLocal);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->ice->ufrag, v->ice->ufrag);
  // The codec shows the password in create and update replies only, which
  // the session manager builds from View.
  EXPECT_EQ(again->ice->pwd, v->ice->pwd);

  auto passive = legs_->Add(kId, Ep("192.0.2.1:40002"), Dtls("active", {BrowserFingerprint()}),
                            std::nullopt, kPeer);
  ASSERT_TRUE(passive.ok());
  EXPECT_EQ(passive->dtls->setup, "passive");
  EXPECT_FALSE(passive->ice.has_value());
}

TEST_F(WebRtcLegsTest, AddRefusesBadFingerprintsNamingTheField) {
  auto bad = legs_->Add(kId, kLocal, Dtls("actpass", {BrowserFingerprint(), "sha-256 ZZ:00"}),
                        IceSpec{}, std::nullopt);
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "dtls.fingerprints[1]: "))
      << bad.status();
  auto none = legs_->Add(kId, kLocal, Dtls("actpass", {}), IceSpec{}, std::nullopt);
  EXPECT_TRUE(absl::StartsWith(none.status().message(), "dtls.fingerprints: ")) << none.status();
  // RFC 8122 §5: an md5 fingerprint is skipped, so one alone leaves none.
  auto md5 = legs_->Add(kId, kLocal, Dtls("actpass", {"md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"}),
                        IceSpec{}, std::nullopt);
  EXPECT_TRUE(absl::StartsWith(md5.status().message(), "dtls.fingerprints: ")) << md5.status();
  EXPECT_FALSE(legs_->View(kLocal).has_value()) << "nothing was registered";
}

TEST_F(WebRtcLegsTest, AddRefusesSetupsThatLeaveNoRole) {
  WebRtcLegsOptions passive;
  passive.local_setup = dtls::Setup::kPassive;
  Make(passive);
  auto both = legs_->Add(kId, kLocal, Dtls("passive", {BrowserFingerprint()}), IceSpec{}, kPeer);
  ASSERT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(both.status().message(), "dtls.setup: both sides are passive"))
      << both.status();
  Make({});
  auto hold = legs_->Add(kId, kLocal, Dtls("holdconn", {BrowserFingerprint()}), IceSpec{}, kPeer);
  EXPECT_TRUE(absl::StartsWith(hold.status().message(), "dtls.setup: ")) << hold.status();
  auto odd = legs_->Add(kId, kLocal, Dtls("sideways", {BrowserFingerprint()}), IceSpec{}, kPeer);
  EXPECT_TRUE(absl::StartsWith(odd.status().message(), "dtls.setup: 'sideways'")) << odd.status();
  IceSpec short_pwd = PeerIce();
  short_pwd.pwd = "short";
  auto ice = legs_->Add(kId, kLocal, std::nullopt, short_pwd, kPeer);
  EXPECT_EQ(ice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(ice.status().message(), "ice: ")) << ice.status();
}

// Without ICE the thread can only answer a peer it has heard from, so
// Sluice waits as the server: it picks passive when the peer lets it, and
// a passive peer is refused.
TEST_F(WebRtcLegsTest, WithoutIceSluiceIsTheServer) {
  auto chosen = legs_->Add(kId, kLocal, Dtls("actpass", {BrowserFingerprint()}), std::nullopt, kPeer);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(chosen->dtls->setup, "passive");
  auto refused = legs_->Add(kId, Ep("192.0.2.1:40002"), Dtls("passive", {BrowserFingerprint()}),
                            std::nullopt, kPeer);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "dtls.setup: a peer without ice"))
      << refused.status();
  // With ICE, Sluice answers actpass as RFC 5763 §5 recommends: active.
  auto with_ice = legs_->Add(kId, Ep("192.0.2.1:40004"), Dtls("actpass", {BrowserFingerprint()}),
                             IceSpec{}, kPeer);
  ASSERT_TRUE(with_ice.ok()) << with_ice.status();
  EXPECT_EQ(with_ice->dtls->setup, "active");
}

DtlsSpec Forced(const std::string& peer, const std::string& local) {
  DtlsSpec spec = Dtls(peer, {BrowserFingerprint()});
  spec.local_setup = local;
  return spec;
}

// The controller forces Sluice's role (dtls.local_setup): it is taken
// whatever [webrtc] says, and a peer with the same role is refused at Add
// (RFC 4145 §4), as is active without ICE (Sluice could not open it).
TEST_F(WebRtcLegsTest, ForcedLocalSetupIsTakenAndTheSameRoleOnBothSidesRefused) {
  auto passive = legs_->Add(kId, kLocal, Forced("actpass", "passive"), IceSpec{}, std::nullopt);
  ASSERT_TRUE(passive.ok()) << passive.status();
  EXPECT_EQ(passive->dtls->setup, "passive") << "actpass alone would make Sluice active";
  auto active = legs_->Add(kId, Ep("192.0.2.1:40002"), Forced("passive", "active"), IceSpec{},
                           std::nullopt);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->dtls->setup, "active");
  for (const std::string role : {"active", "passive"}) {
    auto both = legs_->Add(kId, Ep("192.0.2.1:40004"), Forced(role, role), IceSpec{}, std::nullopt);
    ASSERT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument) << role;
    EXPECT_TRUE(absl::StartsWith(both.status().message(), "dtls.setup: both sides are " + role))
        << both.status();
  }
  auto no_ice = legs_->Add(kId, Ep("192.0.2.1:40004"), Forced("actpass", "active"), std::nullopt,
                           kPeer);
  EXPECT_TRUE(absl::StartsWith(no_ice.status().message(), "dtls.local_setup: active needs ice"))
      << no_ice.status();
  auto odd = legs_->Add(kId, Ep("192.0.2.1:40004"), Forced("actpass", "actpass"), IceSpec{},
                        std::nullopt);
  EXPECT_TRUE(absl::StartsWith(odd.status().message(), "dtls.local_setup: ")) << odd.status();
  EXPECT_FALSE(legs_->View(Ep("192.0.2.1:40004")).has_value()) << "nothing registered";
}

TEST_F(WebRtcLegsTest, OneLegPerAddressAndNoneWithoutHandshakes) {
  auto empty = legs_->Add(kId, kLocal, std::nullopt, std::nullopt, kPeer);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->ice || empty->dtls);
  EXPECT_FALSE(legs_->View(kLocal).has_value());
  ASSERT_TRUE(legs_->Add(kId, kLocal, std::nullopt, PeerIce(), kPeer).ok());
  EXPECT_EQ(legs_->Add(kId, kLocal, std::nullopt, PeerIce(), kPeer).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// A check on the thread's ring is answered on its TX ring; the kSelected
// event reaches the sink only when the control loop runs its tasks.
TEST_F(WebRtcLegsTest, ACheckSelectsThePeerAndTheEventReachesTheSinkOnTheControlLoop) {
  auto v = legs_->Add(kId, kLocal, std::nullopt, PeerIce(), std::nullopt);
  ASSERT_TRUE(v.ok()) << v.status();
  Give(Check(*v), kPeer);
  EXPECT_EQ(thread_->PollOnce(), 1u);
  const std::vector<Bytes> sent = TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  const ice::StunParse p = ice::ParseStun(sent[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.cls, ice::StunClass::kSuccessResponse);
  EXPECT_TRUE(events_.empty()) << "events are the control loop's";

  EXPECT_EQ(thread_->RunControlTasks(), 1u);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, HandshakeEvent::Kind::kSelected);
  EXPECT_EQ(events_[0].peer, kPeer);
  EXPECT_EQ(events_[0].id.session, kId.session);
  EXPECT_EQ(events_[0].id.leg, kId.leg);
  EXPECT_EQ(events_[0].id.generation, kId.generation);
  now_ += 1500;
  EXPECT_EQ(legs_->View(kLocal)->ice->selected, kPeer);
  EXPECT_EQ(legs_->View(kLocal)->ice->consent_age_ms, 1500u);
}

// A browser (a dtls::Endpoint, the client) keys the leg through the thread:
// its datagrams on the ring, the leg's on the TX ring; the kKeyed event comes
// out of the control loop with the browser's keys crosswise.
TEST_F(WebRtcLegsTest, AHandshakeThroughTheThreadKeysTheLegOnTheControlLoop) {
  auto v = legs_->Add(kId, kLocal, Dtls("active", {BrowserFingerprint()}), PeerIce(), kPeer);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->dtls->setup, "passive");
  Give(Check(*v), kPeer);
  thread_->PollOnce();
  TakeSent();  // the check's response

  dtls::EndpointOptions o;
  o.role = dtls::Role::kClient;
  o.peer_fingerprints = {SluiceCert().GetFingerprint()};
  auto browser = dtls::Endpoint::Create(BrowserCert(), o);
  ASSERT_TRUE(browser.ok()) << browser.status();
  (*browser)->Start(now_);
  for (int step = 0; step < 20 && (*browser)->state() != dtls::State::kKeyed; ++step) {
    for (const Bytes& d : (*browser)->TakeOutgoing()) Give(d, kPeer);
    thread_->PollOnce();
    for (const Bytes& d : TakeSent()) (*browser)->Feed(d, now_);
  }
  ASSERT_EQ((*browser)->state(), dtls::State::kKeyed);
  EXPECT_EQ(legs_->View(kLocal)->dtls->state, "keyed");
  EXPECT_EQ(legs_->View(kLocal)->dtls->profile, "AES_CM_128_HMAC_SHA1_80");

  EXPECT_EQ(thread_->RunControlTasks(), 2u);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].kind, HandshakeEvent::Kind::kSelected);
  const HandshakeEvent& keyed = events_[1];
  ASSERT_EQ(keyed.kind, HandshakeEvent::Kind::kKeyed);
  EXPECT_EQ(keyed.id.generation, kId.generation);
  std::optional<dtls::SrtpKeys> keys = (*browser)->TakeKeys();
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(KeyBytes(keyed.rx), KeyBytes(keys->send));
  EXPECT_EQ(KeyBytes(keyed.tx), KeyBytes(keys->receive));
}

TEST_F(WebRtcLegsTest, UpdateRestartsIceAndRekeysOnTheThread) {
  auto v = legs_->Add(kId, kLocal, Dtls("actpass", {BrowserFingerprint()}), PeerIce(), kPeer);
  ASSERT_TRUE(v.ok()) << v.status();
  IceSpec restart = PeerIce();
  restart.ufrag = "peerE5";
  restart.restart = true;
  const HandshakeLegId next = {kId.session, kId.leg, kId.generation + 1};
  auto u = legs_->Update(next, kLocal, Dtls("active", {BrowserFingerprint()}), restart);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_NE(u->ice->ufrag, v->ice->ufrag);
  EXPECT_NE(u->ice->pwd, v->ice->pwd);
  EXPECT_EQ(u->ice->pwd.size(), ice::kGeneratedPwdChars);
  EXPECT_EQ(u->dtls->setup, "passive");
  EXPECT_EQ(u->dtls->state, "new");

  // View shows the update before the thread has applied it, and after.
  EXPECT_EQ(legs_->View(kLocal)->ice->ufrag, u->ice->ufrag);
  EXPECT_EQ(legs_->View(kLocal)->ice->pwd, u->ice->pwd);
  EXPECT_EQ(legs_->View(kLocal)->dtls->setup, "passive");
  thread_->PollOnce();  // applies the update
  EXPECT_EQ(legs_->View(kLocal)->ice->ufrag, u->ice->ufrag);
  EXPECT_EQ(legs_->View(kLocal)->dtls->setup, "passive");
  // The new credentials and the new generation: a check selects, and says so
  // under the new generation.
  Give(Check(*u, "peerE5"), kPeer);
  thread_->PollOnce();
  thread_->RunControlTasks();
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, HandshakeEvent::Kind::kSelected);
  EXPECT_EQ(events_[0].id.generation, next.generation);
}

// Sluice offers first (an ng offer toward a browser): the leg is DTLS with
// no peer yet, shows the setup it offers, and the answer's update brings
// the peer's setup and fingerprint, which pick the roles.
TEST_F(WebRtcLegsTest, AnAwaitedPeerComesWithTheAnswer) {
  auto offered = legs_->Add(kId, kLocal, DtlsSpec{}, IceSpec{}, std::nullopt);
  ASSERT_TRUE(offered.ok()) << offered.status();
  ASSERT_TRUE(offered->dtls.has_value());
  EXPECT_EQ(offered->dtls->state, "new");
  EXPECT_EQ(offered->dtls->setup, "actpass");
  EXPECT_EQ(offered->dtls->fingerprint, legs_->fingerprint());
  DtlsSpec passive;
  passive.local_setup = "passive";
  auto forced = legs_->Add(kId, Ep("192.0.2.1:40002"), passive, IceSpec{}, std::nullopt);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->dtls->setup, "passive");
  DtlsSpec no_ice;
  auto server = legs_->Add(kId, Ep("192.0.2.1:40004"), no_ice, std::nullopt, kPeer);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(server->dtls->setup, "passive") << "without ICE Sluice stays the server";
  DtlsSpec active;
  active.local_setup = "active";
  EXPECT_FALSE(legs_->Add(kId, Ep("192.0.2.1:40006"), active, std::nullopt, kPeer).ok());
  thread_->PollOnce();
  EXPECT_EQ(legs_->View(kLocal)->dtls->setup, "actpass") << "still awaiting after a poll";

  // The answer says active: Sluice is the server.
  auto answered = legs_->Update(kId, kLocal, Dtls("active", {BrowserFingerprint()}), PeerIce());
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->dtls->setup, "passive");
  thread_->PollOnce();
  EXPECT_EQ(legs_->View(kLocal)->dtls->setup, "passive");
  // An answer with the role Sluice was forced to is the both-passive conflict.
  auto both =
      legs_->Update(kId, Ep("192.0.2.1:40002"), Forced("passive", "passive"), std::nullopt);
  EXPECT_TRUE(absl::StartsWith(both.status().message(), "dtls.setup: both sides are passive"))
      << both.status();
  auto empty = legs_->Update(kId, Ep("192.0.2.1:40002"), DtlsSpec{}, std::nullopt);
  EXPECT_TRUE(absl::StartsWith(empty.status().message(), "dtls.setup: ")) << empty.status();
}

TEST_F(WebRtcLegsTest, UpdateRefusals) {
  EXPECT_EQ(legs_->Update(kId, kLocal, std::nullopt, PeerIce()).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(legs_->Add(kId, kLocal, std::nullopt, PeerIce(), kPeer).ok());
  auto dtls = legs_->Update(kId, kLocal, Dtls("actpass", {BrowserFingerprint()}), std::nullopt);
  EXPECT_EQ(dtls.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(dtls.status().message(), "dtls: ")) << dtls.status();
  IceSpec bad = PeerIce();
  bad.ufrag = "a:b";
  EXPECT_EQ(legs_->Update(kId, kLocal, std::nullopt, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WebRtcLegsTest, RemoveStopsTheLeg) {
  auto v = legs_->Add(kId, kLocal, std::nullopt, PeerIce(), std::nullopt);
  ASSERT_TRUE(v.ok());
  legs_->Remove(kLocal);
  EXPECT_FALSE(legs_->View(kLocal).has_value());
  Give(Check(*v), kPeer);
  thread_->PollOnce();
  EXPECT_EQ(thread_->counters().no_handler.load(), 1u);
  // stats shows the thread's counters by name.
  control::Stats::Handshakes stats;
  legs_->AddStats(stats);
  const auto named = [&](const std::string& name) {
    for (const auto& [n, count] : stats.thread) {
      if (n == name) return std::optional<uint64_t>(count);
    }
    return std::optional<uint64_t>();
  };
  EXPECT_EQ(named("no_handler"), 1u);
  EXPECT_EQ(named("received"), thread_->counters().received.load());
  EXPECT_EQ(named("malformed"), 0u);
  EXPECT_EQ(stats.thread.size(), 11u);
  EXPECT_TRUE(TakeSent().empty());
  EXPECT_EQ(thread_->RunControlTasks(), 0u);
  EXPECT_TRUE(events_.empty());
  // The address is free again.
  EXPECT_TRUE(legs_->Add(kId, kLocal, std::nullopt, PeerIce(), std::nullopt).ok());
}

}  // namespace
}  // namespace sluice::webrtc
