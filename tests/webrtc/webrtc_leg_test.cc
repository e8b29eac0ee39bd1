// A WebRtcLeg driven directly, as the handshake thread would, with a fake
// Sender: ICE-lite checks built with the ice library's StunBuilder select a
// peer (or not), and a second dtls::Endpoint plays the browser through full
// DTLS-SRTP handshakes in both roles, a fingerprint mismatch, a re-key and an
// ICE restart. Time is the test's: now_ms passed in (OpenSSL's own
// retransmission timers are not needed, nothing is lost).
#include "sluice/webrtc/webrtc_leg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sluice/dtls/certificate.h"
#include "sluice/dtls/fingerprint.h"
#include "leg_peer.h"
#include "sluice/ice/stun.h"

namespace sluice::webrtc {
namespace {

using control::HandshakeEvent;
using Kind = control::HandshakeEvent::Kind;
using packet::Endpoint;
using packet::PayloadKind;
using Bytes = std::vector<uint8_t>;
using testing::BrowserCert;
using testing::KeyBytes;
using testing::SluiceCert;

constexpr const char* kLocalUfrag = "sluiceA1";
constexpr const char* kLocalPwd = "L0calPasswordOfTheLeg+/x";
constexpr const char* kPeerUfrag = "peerB2";
constexpr const char* kPeerPwd = "PeerPasswordNotUsedByLite";
constexpr const char* kNewLocalUfrag = "sluiceC3";
constexpr const char* kNewLocalPwd = "NewL0calPasswordAfterRestart";
constexpr const char* kNewPeerUfrag = "peerD4";
constexpr const char* kNewPeerPwd = "NewPeerPasswordAfterRestart";
constexpr uint64_t kConsentMs = 30000;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }
const Endpoint kLocal = Ep("192.0.2.1:40000");
const Endpoint kPeer = Ep("198.51.100.10:50000");
const Endpoint kPeer2 = Ep("198.51.100.11:50002");
const Endpoint kStranger = Ep("203.0.113.66:4444");

const dtls::Certificate& OtherCert() {
  static const dtls::Certificate cert = *dtls::Certificate::Generate();
  return cert;
}

// A connectivity check as a controlling browser sends it.
Bytes Check(bool nominate, const std::string& local_ufrag = kLocalUfrag,
            const std::string& peer_ufrag = kPeerUfrag, const std::string& pwd = kLocalPwd) {
  return testing::BrowserCheck(local_ufrag, peer_ufrag, pwd, nominate);
}

bool IsDtls(const Bytes& d) { return !d.empty() && d[0] >= 20 && d[0] <= 63; }

// A view's count by name (0 when absent: only non-zero counts are listed).
uint64_t Count(const std::vector<std::pair<std::string, uint64_t>>& counts, const char* name) {
  for (const auto& [n, count] : counts) {
    if (n == name) return count;
  }
  return 0;
}

class FakeSender final : public Sender {
 public:
  struct Out {
    Bytes payload;
    Endpoint to;
  };
  bool Send(std::span<const uint8_t> payload, const Endpoint& to) override {
    out.push_back({Bytes(payload.begin(), payload.end()), to});
    return true;
  }
  // What went out since the last call, DTLS or STUN.
  std::vector<Out> Take(bool dtls) {
    std::vector<Out> taken, kept;
    for (Out& o : out) (IsDtls(o.payload) == dtls ? taken : kept).push_back(std::move(o));
    out = std::move(kept);
    return taken;
  }
  std::vector<Out> out;
};

std::unique_ptr<dtls::Endpoint> MakeEndpoint(const dtls::Certificate& own, dtls::Role role,
                                             const dtls::Certificate& peer) {
  dtls::EndpointOptions o;
  o.role = role;
  o.peer_fingerprints = {peer.GetFingerprint()};
  o.handshake_timeout_ms = 10000;
  o.initial_retransmit_ms = 50;
  auto e = dtls::Endpoint::Create(own, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

dtls::Role Other(dtls::Role r) {
  return r == dtls::Role::kClient ? dtls::Role::kServer : dtls::Role::kClient;
}

struct LegSpec {
  bool ice = true;
  std::optional<dtls::Role> dtls;                      // Sluice's role
  const dtls::Certificate* expected = &BrowserCert();  // the fingerprint the SDP gave
  std::optional<Endpoint> remote;
  std::string restored_profile;     // restored keyed (docs/ha.md)
  std::optional<Endpoint> selected;  // ... with this pair selected
};

class WebRtcLegTest : public ::testing::Test {
 protected:
  void Make(const LegSpec& spec) {
    WebRtcLegConfig c;
    c.id = {"call-1", 0, 1};
    c.local = kLocal;
    c.remote = spec.remote;
    c.consent_timeout_ms = kConsentMs;
    c.fingerprint = dtls::FormatFingerprint(SluiceCert().GetFingerprint());
    if (spec.ice) {
      auto agent = ice::LiteAgent::Create(ice::MakeIceCredentials(kLocalUfrag, kLocalPwd),
                                          ice::MakeIceCredentials(kPeerUfrag, kPeerPwd),
                                          {.consent_timeout_ms = kConsentMs});
      ASSERT_TRUE(agent.ok()) << agent.status();
      if (spec.selected) agent->AdoptSelected(*spec.selected, now_);
      c.agent.emplace(std::move(*agent));
    }
    c.restored_profile = spec.restored_profile;
    c.now_ms = now_;
    if (spec.dtls) c.dtls = MakeEndpoint(SluiceCert(), *spec.dtls, *spec.expected);
    leg_ = std::make_unique<WebRtcLeg>(std::move(c),
                                       [this](HandshakeEvent e) { events_.push_back(e); });
  }

  void Stun(const Bytes& check, const Endpoint& from) {
    leg_->OnDatagram(PayloadKind::kStun, check, from, now_, send_);
  }
  void Dtls(const Bytes& d, const Endpoint& from) {
    leg_->OnDatagram(PayloadKind::kDtls, d, from, now_, send_);
  }
  void Timer() {
    if (leg_->NextTimerMs() <= now_) leg_->OnTimer(now_, send_);
  }
  // The browser's endpoint (the other role), expecting Sluice's certificate.
  void MakeBrowser(dtls::Role sluice_role, const dtls::Certificate& cert = BrowserCert()) {
    browser_ = MakeEndpoint(cert, Other(sluice_role), SluiceCert());
  }

  // DTLS between the leg and the browser at `at` until neither has more to
  // say. With `lose_last_flight`, what the leg sends once keyed is lost.
  void Pump(const Endpoint& at = kPeer, bool lose_last_flight = false) {
    browser_->Start(now_);
    for (int step = 0; step < 50; ++step) {
      Timer();
      bool moved = false;
      for (auto& o : send_.Take(/*dtls=*/true)) {
        EXPECT_EQ(o.to, at);
        moved = true;
        if (!lose_last_flight || !Keyed()) browser_->Feed(o.payload, now_);
      }
      const std::vector<Bytes> out = browser_->TakeOutgoing();
      for (const Bytes& d : out) Dtls(d, at);
      if (!moved && out.empty()) break;
    }
  }
  bool Keyed() const {
    return std::any_of(events_.begin(), events_.end(),
                       [](const HandshakeEvent& e) { return e.kind == Kind::kKeyed; });
  }
  // Waits (on OpenSSL's real clock) for the browser's retransmission timer
  // and runs it; what it resends.
  std::vector<Bytes> BrowserRetransmits() {
    const std::optional<uint64_t> next = browser_->NextTimeoutMs();
    if (!next) return {};
    if (*next > now_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(*next - now_ + 5));
      now_ = *next + 5;
    }
    browser_->OnTimer(now_);
    return browser_->TakeOutgoing();
  }

  std::vector<HandshakeEvent> TakeEvents() { return std::exchange(events_, {}); }

  void ExpectKeyedCrosswise(const HandshakeEvent& e, uint64_t generation) {
    EXPECT_EQ(e.kind, Kind::kKeyed);
    EXPECT_EQ(e.id.generation, generation);
    std::optional<dtls::SrtpKeys> keys = browser_->TakeKeys();
    ASSERT_TRUE(keys.has_value());
    EXPECT_EQ(e.rx.suite, keys->send.suite);
    EXPECT_EQ(KeyBytes(e.rx), KeyBytes(keys->send)) << "rx unprotects what the browser sends";
    EXPECT_EQ(KeyBytes(e.tx), KeyBytes(keys->receive)) << "tx protects what the browser receives";
    EXPECT_NE(KeyBytes(e.rx), KeyBytes(e.tx));
  }

  uint64_t now_ = 1'000'000;
  FakeSender send_;
  std::vector<HandshakeEvent> events_;
  std::unique_ptr<WebRtcLeg> leg_;
  std::unique_ptr<dtls::Endpoint> browser_;
};

// --- ICE ---------------------------------------------------------------

TEST_F(WebRtcLegTest, NominatingCheckSelectsThePeerOnce) {
  Make({});
  Stun(Check(/*nominate=*/true), kPeer);
  std::vector<FakeSender::Out> out = send_.Take(false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, kPeer);
  const ice::StunParse p = ice::ParseStun(out[0].payload);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.cls, ice::StunClass::kSuccessResponse);
  EXPECT_EQ(p.message.xor_mapped_address, kPeer);

  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kSelected);
  EXPECT_EQ(events[0].peer, kPeer);
  EXPECT_EQ(events[0].id.session, "call-1");
  EXPECT_EQ(events[0].id.generation, 1u);

  now_ += 500;
  Stun(Check(true), kPeer);  // the same pair again: no news
  EXPECT_TRUE(TakeEvents().empty());

  const control::HandshakeView v = leg_->View(now_ + 250, /*with_pwd=*/false);
  ASSERT_TRUE(v.ice.has_value());
  EXPECT_FALSE(v.dtls.has_value());
  EXPECT_EQ(v.ice->ufrag, kLocalUfrag);
  EXPECT_TRUE(v.ice->pwd.empty());
  EXPECT_EQ(leg_->View(now_, true).ice->pwd, kLocalPwd);
  EXPECT_EQ(v.ice->selected, kPeer);
  EXPECT_EQ(v.ice->consent_age_ms, 250u);
  ASSERT_EQ(v.ice->candidates.size(), 1u);
  EXPECT_EQ(v.ice->candidates[0], "candidate:1 1 UDP 2130706431 192.0.2.1 40000 typ host");
}

TEST_F(WebRtcLegTest, UnauthenticatedOrUnnominatedChecksSelectNothing) {
  Make({});
  Stun(Check(true, kLocalUfrag, kPeerUfrag, "WrongPasswordOfTheLeg+/xy"), kStranger);
  Stun(Check(true, "notours1", kPeerUfrag), kStranger);
  std::vector<FakeSender::Out> out = send_.Take(false);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& o : out) {
    const ice::StunParse p = ice::ParseStun(o.payload);
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(p.message.error_code.has_value());
    EXPECT_EQ(p.message.error_code->code, 401);
  }
  Stun(Check(false), kPeer);  // authenticated, but no USE-CANDIDATE
  EXPECT_TRUE(TakeEvents().empty());
  const control::HandshakeView v = leg_->View(now_, false);
  EXPECT_FALSE(v.ice->selected.has_value());
  EXPECT_EQ(leg_->NextTimerMs(), UINT64_MAX);
  // The view counts both refusals by reason, and the answered check.
  EXPECT_EQ(v.ice->counts.taken, 1u);
  EXPECT_EQ(Count(v.ice->counts.dropped, "bad_integrity"), 1u);
  EXPECT_EQ(Count(v.ice->counts.dropped, "wrong_username"), 1u);
  EXPECT_EQ(v.ice->counts.dropped.size(), 2u);
}

// --- DTLS --------------------------------------------------------------

class WebRtcLegRoleTest : public WebRtcLegTest,
                          public ::testing::WithParamInterface<dtls::Role> {};

// ICE selects the browser's address; then a full handshake, opened by
// Sluice at the selection when it is the client, keys the leg with the
// browser's keys crosswise.
TEST_P(WebRtcLegRoleTest, HandshakeAfterSelectionKeysTheLeg) {
  const dtls::Role role = GetParam();
  Make({.dtls = role});
  MakeBrowser(role);
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "new");
  Stun(Check(true), kPeer);
  std::vector<FakeSender::Out> hello = send_.Take(/*dtls=*/true);
  if (role == dtls::Role::kClient) {
    ASSERT_FALSE(hello.empty()) << "a client opens the handshake once ICE selects";
    EXPECT_EQ(hello[0].to, kPeer);
  } else {
    EXPECT_TRUE(hello.empty());
  }
  send_.out.insert(send_.out.begin(), hello.begin(), hello.end());
  Pump();

  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kSelected);
  ExpectKeyedCrosswise(events[1], 1);
  const control::HandshakeView v = leg_->View(now_, false);
  ASSERT_TRUE(v.dtls.has_value());
  EXPECT_EQ(v.dtls->state, "keyed");
  EXPECT_EQ(v.dtls->profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(v.dtls->setup, role == dtls::Role::kClient ? "active" : "passive");
  EXPECT_EQ(v.dtls->fingerprint, dtls::FormatFingerprint(SluiceCert().GetFingerprint()));
  EXPECT_EQ(v.dtls->reason, "");
}

// A leg restored keyed after a restart (docs/ha.md): it shows keyed, sends
// no handshake of its own, answers the browser's consent checks under the
// credentials it had, counts DTLS left over from the old handshake, and a
// new handshake the browser opens (Sluice the server) re-keys it.
TEST_P(WebRtcLegRoleTest, RestoredKeyedLegAwaitsNoHandshakeAndTakesANewOne) {
  const dtls::Role role = GetParam();
  Make({.dtls = role, .restored_profile = "AES_CM_128_HMAC_SHA1_80", .selected = kPeer});
  control::HandshakeView v = leg_->View(now_, false);
  EXPECT_EQ(v.dtls->state, "keyed");
  EXPECT_EQ(v.dtls->profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(v.ice->selected, kPeer);
  now_ += 1000;
  Timer();
  EXPECT_TRUE(send_.Take(/*dtls=*/true).empty()) << "no handshake opened by Sluice";
  Stun(Check(/*nominate=*/false), kPeer);  // consent freshness, RFC 7675
  std::vector<FakeSender::Out> answers = send_.Take(false);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(ice::ParseStun(answers[0].payload).message.cls, ice::StunClass::kSuccessResponse);
  EXPECT_TRUE(TakeEvents().empty());

  // The browser's retransmitted Finished (a record of epoch 1).
  const Bytes finished = {22, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 20, 0, 0, 0};
  Dtls(finished, kPeer);
  EXPECT_TRUE(send_.Take(true).empty());
  EXPECT_TRUE(TakeEvents().empty());
  v = leg_->View(now_, false);
  EXPECT_EQ(v.dtls->state, "keyed");
  EXPECT_EQ(Count(v.dtls->counts.dropped, "after_restore"), 1u);

  MakeBrowser(role);
  Pump();
  std::vector<HandshakeEvent> events = TakeEvents();
  if (role == dtls::Role::kClient) {
    EXPECT_TRUE(events.empty()) << "Sluice the client opens no new handshake";
    EXPECT_EQ(leg_->View(now_, false).dtls->state, "keyed");
    return;
  }
  ASSERT_EQ(events.size(), 1u);
  ExpectKeyedCrosswise(events[0], 1);
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "keyed");
}

INSTANTIATE_TEST_SUITE_P(Roles, WebRtcLegRoleTest,
                         ::testing::Values(dtls::Role::kClient, dtls::Role::kServer),
                         [](const auto& info) { return std::string(dtls::RoleName(info.param)); });

TEST_F(WebRtcLegTest, DtlsOnlyFromAnAddressThatPassedAnAuthenticatedCheck) {
  Make({.dtls = dtls::Role::kServer});
  MakeBrowser(dtls::Role::kServer);
  browser_->Start(now_);
  const std::vector<Bytes> client_hello = browser_->TakeOutgoing();
  ASSERT_FALSE(client_hello.empty());

  for (const Bytes& d : client_hello) Dtls(d, kStranger);  // never checked
  Stun(Check(true, kLocalUfrag, kPeerUfrag, "WrongPasswordOfTheLeg+/xy"), kPeer);
  for (const Bytes& d : client_hello) Dtls(d, kPeer);  // checked, but not authenticated
  EXPECT_TRUE(send_.Take(true).empty());
  EXPECT_EQ(leg_->counters().dtls_unchecked.load(), 2 * client_hello.size());
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "new");
  EXPECT_EQ(Count(leg_->View(now_, false).dtls->counts.dropped, "unchecked_source"),
            2 * client_hello.size());
  EXPECT_EQ(leg_->View(now_, false).dtls->counts.taken, 0u);

  // An authenticated check without nomination is enough to speak DTLS.
  Stun(Check(false), kPeer);
  for (const Bytes& d : client_hello) Dtls(d, kPeer);
  std::vector<FakeSender::Out> answer = send_.Take(true);
  ASSERT_FALSE(answer.empty());
  EXPECT_EQ(answer[0].to, kPeer);
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "handshaking");
  EXPECT_EQ(leg_->View(now_, false).dtls->counts.taken, client_hello.size());
}

TEST_F(WebRtcLegTest, WithoutIceDtlsIsSpokenWithTheRemoteOnly) {
  Make({.ice = false, .dtls = dtls::Role::kClient, .remote = kPeer});
  EXPECT_FALSE(leg_->View(now_, false).ice.has_value());
  // The client opens at once, toward the remote, at the first timer.
  EXPECT_EQ(leg_->NextTimerMs(), 0u);
  Timer();
  std::vector<FakeSender::Out> hello = send_.Take(true);
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(hello[0].to, kPeer);

  MakeBrowser(dtls::Role::kClient);
  for (const auto& o : hello) browser_->Feed(o.payload, now_);
  const std::vector<Bytes> answer = browser_->TakeOutgoing();
  ASSERT_FALSE(answer.empty());
  for (const Bytes& d : answer) Dtls(d, kStranger);
  EXPECT_EQ(leg_->counters().dtls_unchecked.load(), answer.size());
  EXPECT_TRUE(send_.Take(true).empty());

  Stun(Check(true), kPeer);  // STUN to a leg without ICE: counted, unanswered
  EXPECT_EQ(leg_->counters().stun_without_ice.load(), 1u);
  EXPECT_EQ(Count(leg_->View(now_, false).dtls->counts.dropped, "stun_without_ice"), 1u);
  EXPECT_TRUE(send_.out.empty());

  for (const Bytes& d : answer) Dtls(d, kPeer);
  Pump();
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  ExpectKeyedCrosswise(events[0], 1);
}

TEST_F(WebRtcLegTest, FingerprintMismatchFailsTheLegWithTheReason) {
  Make({.dtls = dtls::Role::kServer, .expected = &OtherCert()});
  MakeBrowser(dtls::Role::kServer);
  Stun(Check(true), kPeer);
  Pump();
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kFailed);
  EXPECT_NE(events[1].reason.find("fingerprint mismatch"), std::string::npos) << events[1].reason;
  const control::HandshakeView v = leg_->View(now_, false);
  EXPECT_EQ(v.dtls->state, "failed");
  EXPECT_NE(v.dtls->reason.find("fingerprint mismatch"), std::string::npos);
  EXPECT_EQ(v.dtls->profile, "");
}

// --- Consent (RFC 7675) ------------------------------------------------

TEST_F(WebRtcLegTest, ConsentLostOnceThenRegainedByAnAuthenticatedCheck) {
  Make({});
  Stun(Check(true), kPeer);
  TakeEvents();
  const uint64_t selected_at = now_;
  EXPECT_EQ(leg_->NextTimerMs(), selected_at + kConsentMs + 1);

  now_ = selected_at + 20000;
  Stun(Check(false), kPeer);  // refreshes consent
  EXPECT_EQ(leg_->NextTimerMs(), now_ + kConsentMs + 1);
  const uint64_t refreshed_at = now_;

  now_ = refreshed_at + kConsentMs;  // exactly the timeout: still consent
  leg_->OnTimer(now_, send_);
  EXPECT_TRUE(TakeEvents().empty());
  now_ += 1;
  Timer();
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kConsentLost);
  EXPECT_EQ(events[0].peer, kPeer);
  EXPECT_EQ(leg_->NextTimerMs(), UINT64_MAX);
  now_ += 5000;
  leg_->OnTimer(now_, send_);
  EXPECT_TRUE(TakeEvents().empty()) << "said once";
  EXPECT_EQ(leg_->View(now_, false).ice->consent_age_ms, kConsentMs + 5001);

  Stun(Check(true, kLocalUfrag, kPeerUfrag, "WrongPasswordOfTheLeg+/xy"), kPeer);
  EXPECT_TRUE(TakeEvents().empty()) << "an unauthenticated check brings nothing back";
  Stun(Check(false), kPeer);
  events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kSelected);
  EXPECT_EQ(events[0].peer, kPeer);
  EXPECT_EQ(leg_->View(now_, false).ice->consent_age_ms, 0u);
}

// --- Re-offers -----------------------------------------------------------

// A new fingerprint: a second handshake on the same leg gives new keys under
// the new generation, while the old endpoint still answers the old
// handshake's retransmitted last flight until then (make-before-break).
TEST_F(WebRtcLegTest, RekeyWithANewFingerprintKeysAgainUnderTheNewGeneration) {
  Make({.dtls = dtls::Role::kServer});
  MakeBrowser(dtls::Role::kServer);
  Stun(Check(true), kPeer);
  Pump(kPeer, /*lose_last_flight=*/true);
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  ASSERT_EQ(events[1].kind, Kind::kKeyed);
  EXPECT_NE(browser_->state(), dtls::State::kKeyed) << "the leg's last flight was lost";

  WebRtcLegUpdate rekey;
  rekey.id = {"call-1", 0, 2};
  rekey.endpoint = MakeEndpoint(SluiceCert(), dtls::Role::kServer, OtherCert());
  ASSERT_TRUE(leg_->Apply(std::move(rekey)).ok());
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "new");
  Timer();  // starts the new handshake's deadline
  const std::vector<Bytes> again = BrowserRetransmits();
  ASSERT_FALSE(again.empty());
  for (const Bytes& d : again) Dtls(d, kPeer);
  std::vector<FakeSender::Out> answer = send_.Take(true);
  ASSERT_FALSE(answer.empty()) << "the old server answers the retransmission";
  for (const auto& o : answer) browser_->Feed(o.payload, now_);
  ASSERT_EQ(browser_->state(), dtls::State::kKeyed);
  ExpectKeyedCrosswise(events[1], 1);
  EXPECT_TRUE(TakeEvents().empty());
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "new");

  const Bytes first_rx = KeyBytes(events[1].rx);
  MakeBrowser(dtls::Role::kServer, OtherCert());
  Pump();
  events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  ExpectKeyedCrosswise(events[0], 2);
  EXPECT_NE(KeyBytes(events[0].rx), first_rx);
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "keyed");
}

// An update without dtls (new ICE credentials) moves the ICE events to its
// generation, but the handshake under way keys under the one it was asked
// for (the session manager takes keys of that generation only).
TEST_F(WebRtcLegTest, AnUpdateWithoutDtlsLeavesTheHandshakesGenerationAlone) {
  Make({.dtls = dtls::Role::kServer});
  MakeBrowser(dtls::Role::kServer);
  WebRtcLegUpdate peer;
  peer.id = {"call-1", 0, 2};
  peer.peer = ice::MakeIceCredentials(kNewPeerUfrag, kNewPeerPwd);
  ASSERT_TRUE(leg_->Apply(std::move(peer)).ok());
  Stun(Check(true, kLocalUfrag, kNewPeerUfrag), kPeer);
  Pump();
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kSelected);
  EXPECT_EQ(events[0].id.generation, 2u);
  ExpectKeyedCrosswise(events[1], 1);
}

// Announced (control thread) before it is applied: the view shows the
// update's credentials and new handshake at once, and keeps showing them
// while the handshake thread publishes other news before applying it.
TEST_F(WebRtcLegTest, AnAnnouncedUpdateShowsInTheViewBeforeItIsApplied) {
  Make({.dtls = dtls::Role::kServer});
  WebRtcLegUpdate u;
  u.id = {"call-1", 0, 2};
  u.endpoint = MakeEndpoint(SluiceCert(), dtls::Role::kClient, OtherCert());
  u.local = ice::MakeIceCredentials(kNewLocalUfrag, kNewLocalPwd);
  leg_->Announce(u);
  EXPECT_TRUE(u.announced);
  Stun(Check(true), kPeer);  // the old credentials still hold until it is applied
  ASSERT_EQ(TakeEvents().size(), 1u);
  control::HandshakeView v = leg_->View(now_, true);
  EXPECT_EQ(v.ice->ufrag, kNewLocalUfrag);
  EXPECT_EQ(v.ice->pwd, kNewLocalPwd);
  EXPECT_EQ(v.ice->selected, kPeer) << "what is not announced is published";
  EXPECT_EQ(v.dtls->setup, "active");
  EXPECT_EQ(v.dtls->state, "new");

  ASSERT_TRUE(leg_->Apply(std::move(u)).ok());
  Stun(Check(true), kPeer);  // still answered: the selected pair's old credentials
  v = leg_->View(now_, true);
  EXPECT_EQ(v.ice->ufrag, kNewLocalUfrag);
  EXPECT_EQ(v.dtls->setup, "active");
  // Applied: the snapshot follows the leg again (the new client has begun).
  Timer();
  EXPECT_EQ(leg_->View(now_, false).dtls->state, "handshaking");
}

TEST_F(WebRtcLegTest, IceRestartIsMakeBeforeBreak) {
  Make({});
  Stun(Check(true), kPeer);
  TakeEvents();
  WebRtcLegUpdate restart;
  restart.id = {"call-1", 0, 2};
  restart.local = ice::MakeIceCredentials(kNewLocalUfrag, kNewLocalPwd);
  restart.peer = ice::MakeIceCredentials(kNewPeerUfrag, kNewPeerPwd);
  ASSERT_TRUE(leg_->Apply(std::move(restart)).ok());
  EXPECT_EQ(leg_->View(now_, false).ice->ufrag, kNewLocalUfrag);
  EXPECT_EQ(leg_->View(now_, true).ice->pwd, kNewLocalPwd);

  // The old credentials still refresh the selected pair's consent...
  now_ += 20000;
  Stun(Check(false), kPeer);
  now_ += 20000;
  Timer();
  EXPECT_TRUE(TakeEvents().empty()) << "consent was refreshed under the old credentials";
  // ...but select nothing elsewhere.
  Stun(Check(true), kPeer2);
  EXPECT_TRUE(TakeEvents().empty());
  send_.out.clear();

  Stun(Check(true, kNewLocalUfrag, kNewPeerUfrag, kNewLocalPwd), kPeer2);
  std::vector<HandshakeEvent> events = TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kSelected);
  EXPECT_EQ(events[0].peer, kPeer2);
  EXPECT_EQ(events[0].id.generation, 2u);
  // The restart is complete: the old credentials are gone.
  send_.out.clear();
  Stun(Check(false), kPeer);
  std::vector<FakeSender::Out> out = send_.Take(false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ice::ParseStun(out[0].payload).message.error_code->code, 401);
}

TEST_F(WebRtcLegTest, NewPeerCredentialsAreChecked) {
  Make({});
  WebRtcLegUpdate peer;
  peer.id = {"call-1", 0, 1};
  peer.peer = ice::MakeIceCredentials(kNewPeerUfrag, kNewPeerPwd);
  ASSERT_TRUE(leg_->Apply(std::move(peer)).ok());
  Stun(Check(true), kPeer);  // the old peer ufrag
  EXPECT_TRUE(TakeEvents().empty());
  Stun(Check(true, kLocalUfrag, kNewPeerUfrag), kPeer);
  ASSERT_EQ(TakeEvents().size(), 1u);
}

}  // namespace
}  // namespace sluice::webrtc
