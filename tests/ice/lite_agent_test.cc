#include "sluice/ice/lite_agent.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sluice::ice {
namespace {

constexpr const char* kLocalUfrag = "sluiceA1";
constexpr const char* kLocalPwd = "L0calPasswordOfTheLeg+/x";
constexpr const char* kPeerUfrag = "peerB2";
constexpr const char* kPeerPwd = "PeerPasswordNotUsedByLite";

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

// A connectivity check as a controlling peer sends it (RFC 8445 §7.2.2).
struct Check {
  std::string username = std::string(kLocalUfrag) + ":" + kPeerUfrag;
  std::string pwd = kLocalPwd;
  bool with_username = true;
  bool with_integrity = true;
  bool with_fingerprint = true;
  bool with_priority = true;
  bool use_candidate = false;
  bool controlled = false;  // ICE-CONTROLLED instead of ICE-CONTROLLING
  uint16_t extra_attribute = 0;
  StunClass cls = StunClass::kRequest;
  uint8_t id = 1;

  std::vector<uint8_t> Bytes() const {
    StunTransactionId tid{};
    tid.fill(id);
    StunBuilder b(kStunBindingMethod, cls, tid);
    if (with_username) b.AddUsername(username);
    if (with_priority) b.AddPriority(0x6e7f1eff);
    if (controlled) {
      b.AddIceControlled(0x1122334455667788);
    } else {
      b.AddIceControlling(0x8877665544332211);
    }
    if (use_candidate) b.AddUseCandidate();
    if (extra_attribute != 0) b.AddAttribute(extra_attribute, StunKey("abcd"));
    if (with_integrity) b.AddMessageIntegrity(StunKey(pwd));
    if (with_fingerprint) b.AddFingerprint();
    return std::move(b).Take();
  }
};

Check Nominate() {
  Check c;
  c.use_candidate = true;
  return c;
}

LiteAgent MakeAgent(LiteAgentOptions options = {}) {
  auto a = LiteAgent::Create(MakeIceCredentials(kLocalUfrag, kLocalPwd),
                             MakeIceCredentials(kPeerUfrag, kPeerPwd), options);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(*a);
}

const packet::Endpoint kPeerA = Ep("198.51.100.10:50000");
const packet::Endpoint kPeerB = Ep("[2001:db8::20]:50002");
const packet::Endpoint kAttacker = Ep("203.0.113.66:4444");

// The error code of an error response, after checking its FINGERPRINT and
// whether it carries MESSAGE-INTEGRITY under `pwd` (empty: it must not).
int ErrorCode(const CheckResult& r, const std::string& pwd = "") {
  const StunParse p = ParseStun(r.response);
  EXPECT_TRUE(p.ok()) << StunParseStatusName(p.status);
  EXPECT_EQ(p.message.cls, StunClass::kErrorResponse);
  EXPECT_TRUE(p.message.has_fingerprint);
  if (pwd.empty()) {
    EXPECT_FALSE(p.message.integrity_offset);
  } else {
    EXPECT_TRUE(VerifyStunIntegrity(r.response, p.message, StunKey(pwd)));
  }
  return p.message.error_code ? p.message.error_code->code : 0;
}

// Recomputes the FINGERPRINT in the last 8 bytes, as anyone can.
void Refingerprint(std::vector<uint8_t>& d) {
  const size_t end = d.size() - 8;
  const uint32_t crc = static_cast<uint32_t>(crc32(0L, d.data(), static_cast<uInt>(end))) ^
                       0x5354554e;
  for (int i = 0; i < 4; ++i) d[end + 4 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
}

uint64_t Dropped(const LiteAgent& a, IceDropReason reason) {
  return a.counters().dropped[static_cast<size_t>(reason)];
}

TEST(LiteAgent, GeneratesCredentialsWhenNotGiven) {
  auto a = LiteAgent::Create();
  auto b = LiteAgent::Create();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->local_ufrag().size(), kGeneratedUfragChars);
  EXPECT_EQ(a->local_pwd().size(), kGeneratedPwdChars);
  EXPECT_TRUE(IsIceChars(a->local_ufrag()));
  EXPECT_NE(a->local_ufrag(), b->local_ufrag());
  EXPECT_NE(a->local_pwd(), b->local_pwd());
  EXPECT_FALSE(a->peer_ufrag());
}

TEST(LiteAgent, RefusesInvalidCredentials) {
  EXPECT_FALSE(LiteAgent::Create(MakeIceCredentials("abc", kLocalPwd)).ok());
  EXPECT_FALSE(LiteAgent::Create(MakeIceCredentials(kLocalUfrag, "short")).ok());
  auto peer = LiteAgent::Create(std::nullopt, MakeIceCredentials("a:b:", kPeerPwd));
  ASSERT_FALSE(peer.ok());
  EXPECT_NE(peer.status().message().find("peer"), std::string::npos);
}

TEST(LiteAgent, AnswersAnAuthenticatedCheckWithTheMappedAddress) {
  LiteAgent a = MakeAgent();
  const CheckResult r = a.Handle(Check().Bytes(), kPeerA, 1000);
  ASSERT_EQ(r.outcome, CheckOutcome::kAnswered);
  const StunParse p = ParseStun(r.response);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.message.cls, StunClass::kSuccessResponse);
  StunTransactionId ones;
  ones.fill(1);
  EXPECT_EQ(p.message.transaction_id, ones);
  EXPECT_EQ(p.message.xor_mapped_address, kPeerA);
  EXPECT_TRUE(p.message.has_fingerprint);
  EXPECT_TRUE(VerifyStunIntegrity(r.response, p.message, StunKey(kLocalPwd)));
  // Without USE-CANDIDATE nothing is selected.
  EXPECT_FALSE(r.selected_changed);
  EXPECT_FALSE(a.selected());
  EXPECT_FALSE(a.HasConsent(1000));
  EXPECT_EQ(a.counters().answered, 1u);
  EXPECT_EQ(a.counters().nominations, 0u);
}

TEST(LiteAgent, WrongUsernameGets401WithoutIntegrity) {
  LiteAgent a = MakeAgent();
  for (const char* username : {"other:peerB2", "sluiceA1:other", "sluiceA1:", "sluiceA1",
                               "peerB2:sluiceA1", "sluiceA1x:peerB2"}) {
    Check c = Nominate();
    c.username = username;
    const CheckResult r = a.Handle(c.Bytes(), kPeerA, 1000);
    EXPECT_EQ(r.outcome, CheckOutcome::kRefused) << username;
    EXPECT_EQ(r.reason, IceDropReason::kWrongUsername) << username;
    EXPECT_EQ(ErrorCode(r), 401) << username;
  }
  EXPECT_FALSE(a.selected());
  EXPECT_EQ(Dropped(a, IceDropReason::kWrongUsername), 6u);
  EXPECT_EQ(a.counters().error_responses, 6u);
}

TEST(LiteAgent, PeerHalfOfUsernameIsCheckedOnceKnown) {
  auto a = LiteAgent::Create(MakeIceCredentials(kLocalUfrag, kLocalPwd));
  ASSERT_TRUE(a.ok());
  Check c;
  c.username = std::string(kLocalUfrag) + ":anyPeer";
  EXPECT_EQ(a->Handle(c.Bytes(), kPeerA, 0).outcome, CheckOutcome::kAnswered);
  c.username = std::string(kLocalUfrag) + ":";
  EXPECT_EQ(a->Handle(c.Bytes(), kPeerA, 0).reason, IceDropReason::kWrongUsername);
  ASSERT_TRUE(a->SetPeerCredentials(MakeIceCredentials(kPeerUfrag, kPeerPwd)).ok());
  EXPECT_EQ(a->peer_ufrag(), kPeerUfrag);
  c.username = std::string(kLocalUfrag) + ":anyPeer";
  EXPECT_EQ(a->Handle(c.Bytes(), kPeerA, 0).reason, IceDropReason::kWrongUsername);
  EXPECT_EQ(a->Handle(Check().Bytes(), kPeerA, 0).outcome, CheckOutcome::kAnswered);
}

TEST(LiteAgent, WrongPasswordGets401AndSelectsNothing) {
  LiteAgent a = MakeAgent();
  Check c = Nominate();
  c.pwd = "NotTheLocalPasswordAtAll";
  const CheckResult r = a.Handle(c.Bytes(), kPeerA, 1000);
  EXPECT_EQ(r.outcome, CheckOutcome::kRefused);
  EXPECT_EQ(r.reason, IceDropReason::kBadIntegrity);
  EXPECT_EQ(ErrorCode(r), 401);
  // The peer's password is not the key of checks sent to us either.
  c.pwd = kPeerPwd;
  EXPECT_EQ(a.Handle(c.Bytes(), kPeerA, 1000).reason, IceDropReason::kBadIntegrity);
  EXPECT_FALSE(a.selected());
  EXPECT_EQ(Dropped(a, IceDropReason::kBadIntegrity), 2u);
}

TEST(LiteAgent, MissingIntegrityOrUsernameGets400) {
  LiteAgent a = MakeAgent();
  Check no_integrity = Nominate();
  no_integrity.with_integrity = false;
  CheckResult r = a.Handle(no_integrity.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.reason, IceDropReason::kMissingAttribute);
  EXPECT_EQ(ErrorCode(r), 400);
  Check no_username = Nominate();
  no_username.with_username = false;
  r = a.Handle(no_username.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.reason, IceDropReason::kMissingAttribute);
  EXPECT_EQ(ErrorCode(r), 400);
  EXPECT_FALSE(a.selected());
}

TEST(LiteAgent, AuthenticatedCheckWithoutPriorityGets400WithIntegrity) {
  LiteAgent a = MakeAgent();
  Check c = Nominate();
  c.with_priority = false;
  const CheckResult r = a.Handle(c.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.reason, IceDropReason::kMissingAttribute);
  EXPECT_EQ(ErrorCode(r, kLocalPwd), 400);
  EXPECT_FALSE(a.selected());
}

TEST(LiteAgent, UnknownRequiredAttributeGets420NamingIt) {
  LiteAgent a = MakeAgent();
  Check c = Nominate();
  c.extra_attribute = 0x0003;
  const CheckResult r = a.Handle(c.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.reason, IceDropReason::kUnknownAttribute);
  EXPECT_EQ(ErrorCode(r, kLocalPwd), 420);
  EXPECT_FALSE(a.selected());
  c.extra_attribute = 0x8003;  // comprehension-optional: ignored
  EXPECT_EQ(a.Handle(c.Bytes(), kPeerA, 0).outcome, CheckOutcome::kAnswered);
}

TEST(LiteAgent, WhatIsNotACheckIsDroppedSilently) {
  LiteAgent a = MakeAgent();
  Check no_fp = Nominate();
  no_fp.with_fingerprint = false;
  Check indication;
  indication.cls = StunClass::kIndication;
  Check response;
  response.cls = StunClass::kSuccessResponse;
  auto bad_fp = Nominate().Bytes();
  bad_fp.back() ^= 1;
  auto other_method = Nominate().Bytes();
  other_method[1] = 0x03;  // Allocate: its FINGERPRINT no longer matches either
  const struct {
    std::vector<uint8_t> bytes;
    IceDropReason reason;
  } cases[] = {
      {no_fp.Bytes(), IceDropReason::kNoFingerprint},
      {indication.Bytes(), IceDropReason::kIndication},
      {response.Bytes(), IceDropReason::kNotARequest},
      {bad_fp, IceDropReason::kBadFingerprint},
      {other_method, IceDropReason::kBadFingerprint},
      {{0x80, 0x00, 0x00, 0x01}, IceDropReason::kMalformed},
      {{}, IceDropReason::kMalformed},
  };
  for (const auto& c : cases) {
    const CheckResult r = a.Handle(c.bytes, kPeerA, 0);
    EXPECT_EQ(r.outcome, CheckOutcome::kDropped) << IceDropReasonName(c.reason);
    EXPECT_EQ(r.reason, c.reason) << IceDropReasonName(r.reason);
    EXPECT_TRUE(r.response.empty());
  }
  StunBuilder allocate(0x003, StunClass::kRequest, StunTransactionId{});
  allocate.AddFingerprint();
  EXPECT_EQ(a.Handle(allocate.bytes(), kPeerA, 0).reason, IceDropReason::kNotBinding);
  EXPECT_EQ(a.Handle(Nominate().Bytes(), packet::Endpoint{}, 0).reason, IceDropReason::kMalformed);
  EXPECT_FALSE(a.selected());
  EXPECT_EQ(a.counters().error_responses, 0u);
}

TEST(LiteAgent, UseCandidateSelectsThePeerAddress) {
  LiteAgent a = MakeAgent();
  CheckResult r = a.Handle(Nominate().Bytes(), kPeerA, 1000);
  ASSERT_EQ(r.outcome, CheckOutcome::kAnswered);
  EXPECT_TRUE(r.selected_changed);
  EXPECT_EQ(a.selected(), kPeerA);
  EXPECT_TRUE(a.HasConsent(1000));
  EXPECT_EQ(a.counters().nominations, 1u);
  // Nominating the same pair again changes nothing.
  r = a.Handle(Nominate().Bytes(), kPeerA, 1100);
  EXPECT_FALSE(r.selected_changed);
  EXPECT_EQ(a.counters().nominations, 1u);
}

TEST(LiteAgent, ALaterAuthenticatedNominationMovesThePair) {
  LiteAgent a = MakeAgent();
  a.Handle(Nominate().Bytes(), kPeerA, 1000);
  // A check from B without USE-CANDIDATE is answered but does not move it.
  EXPECT_EQ(a.Handle(Check().Bytes(), kPeerB, 1500).outcome, CheckOutcome::kAnswered);
  EXPECT_EQ(a.selected(), kPeerA);
  const CheckResult r = a.Handle(Nominate().Bytes(), kPeerB, 2000);
  EXPECT_TRUE(r.selected_changed);
  EXPECT_EQ(a.selected(), kPeerB);
  EXPECT_EQ(a.counters().nominations, 2u);
}

TEST(LiteAgent, ForgedChecksNeverMoveThePair) {
  LiteAgent a = MakeAgent();
  a.Handle(Nominate().Bytes(), kPeerA, 1000);
  Check bad_integrity = Nominate();
  bad_integrity.pwd = "GuessedPasswordGuessed12";
  Check bad_username = Nominate();
  bad_username.username = "sluiceA1:attacker";
  Check unauthenticated = Nominate();
  unauthenticated.with_integrity = false;
  // A captured check replayed with a higher priority and a fresh FINGERPRINT
  // (which needs no key): the HMAC no longer verifies.
  auto tampered = Nominate().Bytes();
  tampered[47] ^= 0x01;  // PRIORITY's last byte
  Refingerprint(tampered);
  for (const auto& bytes : {bad_integrity.Bytes(), bad_username.Bytes(), unauthenticated.Bytes()}) {
    const CheckResult r = a.Handle(bytes, kAttacker, 2000);
    EXPECT_NE(r.outcome, CheckOutcome::kAnswered);
    EXPECT_FALSE(r.selected_changed);
  }
  EXPECT_EQ(a.Handle(tampered, kAttacker, 2000).reason, IceDropReason::kBadIntegrity);
  EXPECT_EQ(a.selected(), kPeerA);
  EXPECT_EQ(a.counters().nominations, 1u);
  // Nor do they refresh consent of the selected pair, from its own address.
  EXPECT_NE(a.Handle(bad_integrity.Bytes(), kPeerA, 25000).outcome, CheckOutcome::kAnswered);
  EXPECT_FALSE(a.HasConsent(31001));
}

TEST(LiteAgent, ConsentExpiresWithoutAuthenticatedChecksFromThePair) {
  LiteAgent a = MakeAgent();
  EXPECT_FALSE(a.ConsentExpired(0));  // nothing selected: nothing to expire
  EXPECT_FALSE(a.ConsentAgeMs(0));
  a.Handle(Nominate().Bytes(), kPeerA, 1000);
  EXPECT_TRUE(a.HasConsent(31000));
  EXPECT_EQ(a.ConsentAgeMs(31000), 30000u);
  EXPECT_FALSE(a.HasConsent(31001));
  EXPECT_TRUE(a.ConsentExpired(31001));
  // A check from another address does not refresh the selected pair's consent;
  // one from the pair's address does, USE-CANDIDATE or not.
  a.Handle(Check().Bytes(), kPeerB, 20000);
  EXPECT_TRUE(a.ConsentExpired(31001));
  a.Handle(Check().Bytes(), kPeerA, 25000);
  EXPECT_TRUE(a.HasConsent(55000));
  EXPECT_TRUE(a.ConsentExpired(55001));
  EXPECT_EQ(a.ConsentAgeMs(24000), 0u);  // a clock that went back: age 0
}

TEST(LiteAgent, ConsentTimeoutIsConfigurable) {
  LiteAgent a = MakeAgent(LiteAgentOptions{.consent_timeout_ms = 5000});
  a.Handle(Nominate().Bytes(), kPeerA, 0);
  EXPECT_TRUE(a.HasConsent(5000));
  EXPECT_TRUE(a.ConsentExpired(5001));
}

TEST(LiteAgent, RoleConflictGets487AndSelectsNothing) {
  LiteAgent a = MakeAgent();
  Check c = Nominate();
  c.controlled = true;
  CheckResult r = a.Handle(c.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.outcome, CheckOutcome::kRefused);
  EXPECT_EQ(r.reason, IceDropReason::kRoleConflict);
  EXPECT_EQ(ErrorCode(r, kLocalPwd), 487);
  EXPECT_FALSE(a.selected());
  // Authentication comes first: an unauthenticated one is a 401.
  c.pwd = "GuessedPasswordGuessed12";
  r = a.Handle(c.Bytes(), kPeerA, 0);
  EXPECT_EQ(r.reason, IceDropReason::kBadIntegrity);
  EXPECT_EQ(ErrorCode(r), 401);
  EXPECT_EQ(Dropped(a, IceDropReason::kRoleConflict), 1u);
}

Check Under(const char* local_ufrag, const char* local_pwd, const char* peer_ufrag,
            bool use_candidate) {
  Check c;
  c.username = std::string(local_ufrag) + ":" + peer_ufrag;
  c.pwd = local_pwd;
  c.use_candidate = use_candidate;
  return c;
}

constexpr const char* kNewUfrag = "sluiceA2";
constexpr const char* kNewPwd = "NewLocalPasswordAfterRst";
constexpr const char* kNewPeerUfrag = "peerB3";

TEST(LiteAgent, RestartIsMakeBeforeBreak) {
  LiteAgent a = MakeAgent();
  a.Handle(Nominate().Bytes(), kPeerA, 1000);
  ASSERT_TRUE(
      a.Restart(MakeIceCredentials(kNewUfrag, kNewPwd), MakeIceCredentials(kNewPeerUfrag, kPeerPwd))
          .ok());
  EXPECT_EQ(a.local_ufrag(), kNewUfrag);
  EXPECT_TRUE(a.restart_pending());
  EXPECT_EQ(a.selected(), kPeerA);
  // Old credentials, from the selected address: answered under the old
  // password, consent refreshed.
  CheckResult r = a.Handle(Under(kLocalUfrag, kLocalPwd, kPeerUfrag, false).Bytes(), kPeerA, 20000);
  ASSERT_EQ(r.outcome, CheckOutcome::kAnswered);
  const StunParse p = ParseStun(r.response);
  EXPECT_TRUE(VerifyStunIntegrity(r.response, p.message, StunKey(kLocalPwd)));
  EXPECT_TRUE(a.HasConsent(49000));
  // Old credentials from elsewhere: refused, and they nominate nothing.
  r = a.Handle(Under(kLocalUfrag, kLocalPwd, kPeerUfrag, true).Bytes(), kPeerB, 20000);
  EXPECT_EQ(r.reason, IceDropReason::kStaleCredentials);
  EXPECT_EQ(ErrorCode(r), 401);
  EXPECT_EQ(a.selected(), kPeerA);
  // New credentials from B, not nominating yet: media stays on A.
  r = a.Handle(Under(kNewUfrag, kNewPwd, kNewPeerUfrag, false).Bytes(), kPeerB, 21000);
  EXPECT_EQ(r.outcome, CheckOutcome::kAnswered);
  EXPECT_EQ(a.selected(), kPeerA);
  EXPECT_TRUE(a.restart_pending());
  EXPECT_EQ(a.Handle(Under(kLocalUfrag, kLocalPwd, kPeerUfrag, false).Bytes(), kPeerA, 22000)
                .outcome,
            CheckOutcome::kAnswered);
  // The new credentials nominate B: the pair moves and the old ones go.
  r = a.Handle(Under(kNewUfrag, kNewPwd, kNewPeerUfrag, true).Bytes(), kPeerB, 23000);
  EXPECT_TRUE(r.selected_changed);
  EXPECT_EQ(a.selected(), kPeerB);
  EXPECT_FALSE(a.restart_pending());
  r = a.Handle(Under(kLocalUfrag, kLocalPwd, kPeerUfrag, false).Bytes(), kPeerA, 24000);
  EXPECT_EQ(r.reason, IceDropReason::kWrongUsername);
}

TEST(LiteAgent, RestartWithoutASelectedPairDropsOldCredentialsAtOnce) {
  LiteAgent a = MakeAgent();
  ASSERT_TRUE(a.Restart(MakeIceCredentials(kNewUfrag, kNewPwd), std::nullopt).ok());
  EXPECT_FALSE(a.restart_pending());
  EXPECT_EQ(a.Handle(Nominate().Bytes(), kPeerA, 0).reason, IceDropReason::kWrongUsername);
  EXPECT_EQ(a.Handle(Under(kNewUfrag, kNewPwd, "anyone", true).Bytes(), kPeerA, 0).outcome,
            CheckOutcome::kAnswered);
}

TEST(LiteAgent, RestartNeedsNewUfragAndPassword) {
  LiteAgent a = MakeAgent();
  EXPECT_FALSE(a.Restart(MakeIceCredentials(kLocalUfrag, kNewPwd), std::nullopt).ok());
  EXPECT_FALSE(a.Restart(MakeIceCredentials(kNewUfrag, kLocalPwd), std::nullopt).ok());
  EXPECT_FALSE(a.Restart(MakeIceCredentials("ab", kNewPwd), std::nullopt).ok());
  EXPECT_EQ(a.local_ufrag(), kLocalUfrag);  // a refused restart changes nothing
  ASSERT_TRUE(a.Restart(std::nullopt, std::nullopt).ok());  // generated
  EXPECT_NE(a.local_ufrag(), kLocalUfrag);
}

TEST(LiteAgent, SecondRestartKeepsTheSelectedPairsCredentials) {
  LiteAgent a = MakeAgent();
  a.Handle(Nominate().Bytes(), kPeerA, 1000);
  ASSERT_TRUE(
      a.Restart(MakeIceCredentials(kNewUfrag, kNewPwd), MakeIceCredentials(kNewPeerUfrag, kPeerPwd))
          .ok());
  ASSERT_TRUE(
      a.Restart(MakeIceCredentials("sluiceA3", "ThirdLocalPasswordOfLeg3"), std::nullopt).ok());
  EXPECT_EQ(a.Handle(Under(kLocalUfrag, kLocalPwd, kPeerUfrag, false).Bytes(), kPeerA, 2000)
                .outcome,
            CheckOutcome::kAnswered);
  EXPECT_EQ(a.Handle(Under(kNewUfrag, kNewPwd, kNewPeerUfrag, false).Bytes(), kPeerA, 2000)
                .reason,
            IceDropReason::kWrongUsername);
}

TEST(LiteAgent, EveryDatagramIsCountedOnce) {
  LiteAgent a = MakeAgent();
  std::mt19937 rng(7);
  const auto valid = Nominate().Bytes();
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    auto d = valid;
    d[rng() % d.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    if (rng() % 3 == 0) d.resize(rng() % d.size());
    a.Handle(d, kAttacker, static_cast<uint64_t>(i));
  }
  uint64_t total = a.counters().answered;
  for (uint64_t c : a.counters().dropped) total += c;
  EXPECT_EQ(total, static_cast<uint64_t>(n));
  EXPECT_EQ(a.counters().answered, 0u);  // one flipped bit never authenticates
  EXPECT_FALSE(a.selected());
}

TEST(IceDropReasonName, EveryReasonHasItsOwnName) {
  std::set<std::string> names;
  for (int i = 0; i < kIceDropReasonCount; ++i) {
    names.insert(IceDropReasonName(static_cast<IceDropReason>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kIceDropReasonCount));
  EXPECT_EQ(names.count("unknown"), 0u);
}

}  // namespace
}  // namespace sluice::ice
