#include "sluice/dtls/endpoint.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handshake_pipe.h"
#include "libsrtp_peer.h"
#include "sluice/crypto/suite.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/fingerprint.h"
#include "sluice/srtp/master_key.h"

namespace sluice::dtls {
namespace {

using ::sluice::dtls::testing::Datagram;
using ::sluice::dtls::testing::HandshakePipe;
using ::sluice::dtls::testing::Sent;
using ::sluice::testing::LibsrtpPeer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// --- Live bytes OpenSSL holds, counted from before its first allocation, so
// a flood test can see whether the endpoint's memory grows.
std::atomic<int64_t> g_openssl_live_bytes{0};

void* CountingMalloc(size_t n, const char*, int) {
  auto* p = static_cast<size_t*>(std::malloc(n + 16));
  if (p == nullptr) return nullptr;
  *p = n;
  g_openssl_live_bytes += static_cast<int64_t>(n);
  return reinterpret_cast<char*>(p) + 16;
}
void CountingFree(void* ptr, const char*, int) {
  if (ptr == nullptr) return;
  auto* p = reinterpret_cast<size_t*>(static_cast<char*>(ptr) - 16);
  g_openssl_live_bytes -= static_cast<int64_t>(*p);
  std::free(p);
}
void* CountingRealloc(void* ptr, size_t n, const char* file, int line) {
  if (ptr == nullptr) return CountingMalloc(n, file, line);
  auto* p = reinterpret_cast<size_t*>(static_cast<char*>(ptr) - 16);
  const size_t old = *p;
  auto* q = static_cast<size_t*>(std::realloc(p, n + 16));
  if (q == nullptr) return nullptr;
  *q = n;
  g_openssl_live_bytes += static_cast<int64_t>(n) - static_cast<int64_t>(old);
  return reinterpret_cast<char*>(q) + 16;
}
const bool g_counting =
    CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree) == 1;

constexpr SrtpProfile kAllProfiles[] = {SrtpProfile::kAes128CmSha1_80,
                                        SrtpProfile::kAes128CmSha1_32,
                                        SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAeadAes256Gcm};

const Certificate& ClientCert() {
  static const Certificate cert = *Certificate::Generate();
  return cert;
}
const Certificate& ServerCert() {
  static const Certificate cert = *Certificate::Generate();
  return cert;
}

EndpointOptions Options(Role role, const Certificate& peer) {
  EndpointOptions o;
  o.role = role;
  o.peer_fingerprints = {peer.GetFingerprint()};
  o.initial_retransmit_ms = 50;
  o.handshake_timeout_ms = 10000;
  return o;
}

std::unique_ptr<Endpoint> Make(const Certificate& own, const EndpointOptions& o) {
  auto e = Endpoint::Create(own, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

struct Pair {
  std::unique_ptr<Endpoint> client;
  std::unique_ptr<Endpoint> server;
};

Pair MakePair(EndpointOptions client_options, EndpointOptions server_options) {
  return {Make(ClientCert(), client_options), Make(ServerCert(), server_options)};
}
Pair MakePair() {
  return MakePair(Options(Role::kClient, ServerCert()), Options(Role::kServer, ClientCert()));
}

std::vector<uint8_t> Bytes(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }

void ExpectCrosswise(const SrtpKeys& client, const SrtpKeys& server, SrtpProfile profile) {
  const crypto::SuiteInfo& suite = crypto::GetSuiteInfo(GetSrtpProfileInfo(profile).suite);
  for (const srtp::MasterKey* k : {&client.send, &client.receive, &server.send, &server.receive}) {
    EXPECT_EQ(k->suite, suite.suite);
    EXPECT_EQ(k->mki_len, 0);
    EXPECT_EQ(k->lifetime, 0u);
  }
  EXPECT_EQ(client.profile, profile);
  EXPECT_EQ(server.profile, profile);
  EXPECT_EQ(Bytes(client.send.key_bytes()), Bytes(server.receive.key_bytes()));
  EXPECT_EQ(Bytes(client.send.salt_bytes()), Bytes(server.receive.salt_bytes()));
  EXPECT_EQ(Bytes(client.receive.key_bytes()), Bytes(server.send.key_bytes()));
  EXPECT_EQ(Bytes(client.receive.salt_bytes()), Bytes(server.send.salt_bytes()));
  EXPECT_NE(Bytes(client.send.key_bytes()), Bytes(client.receive.key_bytes()));
}

std::vector<uint8_t> RtpPacket(uint16_t seq) {
  std::vector<uint8_t> p = {0x80, 0x00, static_cast<uint8_t>(seq >> 8), static_cast<uint8_t>(seq),
                            0, 0, 0x12, 0x34, 0xca, 0xfe, 0xba, 0xbe};
  for (int i = 0; i < 160; ++i) p.push_back(static_cast<uint8_t>(i * 7));
  return p;
}

// One RTP packet protected by libsrtp with `send` and unprotected with
// `receive`: true when it comes back whole.
bool SrtpRoundTrip(const srtp::MasterKey& send, const srtp::MasterKey& receive) {
  LibsrtpPeer::Init();
  auto tx = LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&send, 1}, {});
  auto rx = LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&receive, 1}, {});
  if (!tx.ok() || !rx.ok()) return false;
  const std::vector<uint8_t> plain = RtpPacket(1);
  std::vector<uint8_t> packet = plain;
  if ((*tx)->ProtectRtp(packet) != srtp_err_status_ok || packet == plain) return false;
  return (*rx)->UnprotectRtp(packet) == srtp_err_status_ok && packet == plain;
}

class EndpointProfileTest : public ::testing::TestWithParam<SrtpProfile> {};

// Each profile alone: both sides keyed, the keys agree crosswise, and
// libsrtp carries RTP both ways with them.
TEST_P(EndpointProfileTest, HandshakeKeysBothSidesAndTheKeysWork) {
  EndpointOptions c = Options(Role::kClient, ServerCert());
  EndpointOptions s = Options(Role::kServer, ClientCert());
  c.profiles = s.profiles = {GetParam()};
  Pair p = MakePair(c, s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  ASSERT_EQ(p.client->state(), State::kKeyed) << p.client->failure_reason();
  ASSERT_EQ(p.server->state(), State::kKeyed) << p.server->failure_reason();
  EXPECT_EQ(p.client->profile(), GetParam());
  std::optional<SrtpKeys> ck = p.client->TakeKeys();
  std::optional<SrtpKeys> sk = p.server->TakeKeys();
  ASSERT_TRUE(ck && sk);
  ExpectCrosswise(*ck, *sk, GetParam());
  EXPECT_TRUE(SrtpRoundTrip(ck->send, sk->receive));
  EXPECT_TRUE(SrtpRoundTrip(sk->send, ck->receive));
  // The wrong pairing fails: the round trip can tell.
  EXPECT_FALSE(SrtpRoundTrip(ck->send, ck->receive));
  EXPECT_EQ(p.client->counters().retransmissions, 0u);
}

INSTANTIATE_TEST_SUITE_P(Profiles, EndpointProfileTest, ::testing::ValuesIn(kAllProfiles),
                         [](const auto& info) {
                           return std::string(GetSrtpProfileInfo(info.param).name);
                         });

// The server picks by its own order of preference (RFC 5764 §4.1.1 leaves it
// the choice), among the profiles the client offered.
TEST(EndpointTest, ServerPreferenceDecidesTheProfile) {
  EndpointOptions c = Options(Role::kClient, ServerCert());
  EndpointOptions s = Options(Role::kServer, ClientCert());
  c.profiles = {SrtpProfile::kAes128CmSha1_80, SrtpProfile::kAeadAes256Gcm,
                SrtpProfile::kAeadAes128Gcm};
  s.profiles = {SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAeadAes256Gcm};
  Pair p = MakePair(c, s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.client->profile(), SrtpProfile::kAeadAes128Gcm);
  EXPECT_EQ(p.server->profile(), SrtpProfile::kAeadAes128Gcm);
}

TEST(EndpointTest, KeysAreHandedOverOnceAndTheClientSessionIsFreedAtKeying) {
  Pair p = MakePair();
  EXPECT_EQ(p.client->state(), State::kNew);
  EXPECT_EQ(p.server->state(), State::kNew);
  EXPECT_FALSE(p.client->TakeKeys());
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  ASSERT_EQ(p.client->state(), State::kKeyed);
  EXPECT_FALSE(p.client->has_session());
  EXPECT_FALSE(p.client->lingering());
  EXPECT_FALSE(p.server->has_session()) << "freed at keying";
  EXPECT_TRUE(p.server->lingering());  // its last flight, for a lost one
  EXPECT_TRUE(p.client->TakeKeys());
  EXPECT_FALSE(p.client->TakeKeys());
  EXPECT_EQ(p.client->state(), State::kKeyed);
  p.server->ReleaseSession();
  EXPECT_FALSE(p.server->lingering());
  EXPECT_FALSE(p.server->NextTimeoutMs());
  EXPECT_TRUE(p.server->TakeKeys());
}

TEST(EndpointTest, ServerFreesItsSessionWhenTheLingerEnds) {
  EndpointOptions s = Options(Role::kServer, ClientCert());
  s.linger_ms = 5000;
  Pair p = MakePair(Options(Role::kClient, ServerCert()), s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  ASSERT_EQ(p.server->state(), State::kKeyed);
  ASSERT_TRUE(p.server->NextTimeoutMs());
  const uint64_t end = *p.server->NextTimeoutMs();
  EXPECT_GE(end, pipe.now() + 4000);
  p.server->OnTimer(end - 1);
  EXPECT_TRUE(p.server->lingering());
  p.server->OnTimer(end);
  EXPECT_FALSE(p.server->lingering());
  EXPECT_FALSE(p.server->NextTimeoutMs());
  EXPECT_EQ(p.server->state(), State::kKeyed);
  // Late DTLS is counted, not processed.
  p.server->Feed(pipe.sent().front().bytes, end + 1);
  EXPECT_EQ(p.server->counters().dropped_no_session, 1u);
}

// RFC 6347 §4.2.4: every flight can be lost once; the timers (or, for the
// server's last flight, the client's retransmission answered by the keyed
// server) recover it. Flights: ClientHello; ServerHello..ServerHelloDone;
// Certificate..Finished; ChangeCipherSpec, Finished.
TEST(EndpointTest, AnySingleLostFlightIsRecovered) {
  for (int lost = 0; lost < 4; ++lost) {
    SCOPED_TRACE(lost);
    Pair p = MakePair();
    HandshakePipe pipe(p.client.get(), p.server.get());
    pipe.Run([lost](const Sent& s) { return s.batch == lost; });
    ASSERT_EQ(p.client->state(), State::kKeyed) << p.client->failure_reason();
    ASSERT_EQ(p.server->state(), State::kKeyed) << p.server->failure_reason();
    const uint64_t retransmissions =
        p.client->counters().retransmissions + p.server->counters().retransmissions;
    EXPECT_GE(retransmissions, 1u);
    std::optional<SrtpKeys> ck = p.client->TakeKeys();
    std::optional<SrtpKeys> sk = p.server->TakeKeys();
    ASSERT_TRUE(ck && sk);
    ExpectCrosswise(*ck, *sk, SrtpProfile::kAes128CmSha1_80);
  }
}

// RFC 6347 §4.2.4, as Endpoint keeps it: the server's OpenSSL session (and
// its master secret) is gone at keying; its last flight is lost, and the
// client's retransmitted flight is answered with the same bytes from the
// kept copy, which keys the client with the server's keys. Beyond
// kMaxFinalFlightResends, after ReleaseSession, and for what carries no
// Finished, nothing is sent.
TEST(EndpointTest, AKeyedServerAnswersARetransmittedLastFlightWithoutItsSession) {
  Pair p = MakePair();
  HandshakePipe pipe(p.client.get(), p.server.get());
  // Batch 3 is the server's last flight: lost.
  pipe.Run([](const Sent& s) { return s.batch == 3; });
  ASSERT_EQ(p.client->state(), State::kKeyed) << p.client->failure_reason();
  ASSERT_EQ(p.server->state(), State::kKeyed);
  EXPECT_FALSE(p.server->has_session());
  EXPECT_EQ(p.server->counters().final_flight_resends, 1u);
  std::vector<Datagram> last, again;
  for (const Sent& s : pipe.sent()) {
    if (!s.from_client && s.batch == 3) last.push_back(s.bytes);
    if (!s.from_client && s.batch > 3) again.push_back(s.bytes);
  }
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(again, last) << "the same flight, sent again";
  std::optional<SrtpKeys> ck = p.client->TakeKeys();
  std::optional<SrtpKeys> sk = p.server->TakeKeys();
  ASSERT_TRUE(ck && sk);
  ExpectCrosswise(*ck, *sk, SrtpProfile::kAes128CmSha1_80);

  // The client's flight once more (its Finished is the record of epoch 1):
  // answered up to the bound; its ClientHello never is.
  Datagram finished;
  for (const Sent& s : pipe.sent()) {
    if (s.from_client && s.batch == 2) finished = s.bytes;
  }
  ASSERT_FALSE(finished.empty());
  const uint64_t dropped = p.server->counters().dropped_no_session;
  p.server->Feed(pipe.sent().front().bytes, pipe.now());
  EXPECT_TRUE(p.server->TakeOutgoing().empty()) << "a ClientHello is not a retransmitted Finished";
  for (uint32_t i = 1; i < kMaxFinalFlightResends + 3; ++i) {
    p.server->Feed(finished, pipe.now());
    EXPECT_EQ(p.server->TakeOutgoing().empty(), i >= kMaxFinalFlightResends) << i;
  }
  EXPECT_EQ(p.server->counters().final_flight_resends, kMaxFinalFlightResends);
  EXPECT_EQ(p.server->counters().dropped_no_session, dropped + 3u + 1u);
}

TEST(EndpointTest, AfterReleaseSessionARetransmittedLastFlightIsDropped) {
  Pair p = MakePair();
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  ASSERT_EQ(p.server->state(), State::kKeyed);
  ASSERT_TRUE(p.server->lingering());
  p.server->ReleaseSession();
  EXPECT_FALSE(p.server->lingering());
  for (const Sent& s : pipe.sent()) {
    if (s.from_client && s.batch == 2) p.server->Feed(s.bytes, pipe.now());
  }
  EXPECT_TRUE(p.server->TakeOutgoing().empty());
  EXPECT_EQ(p.server->counters().final_flight_resends, 0u);
  EXPECT_EQ(p.server->counters().dropped_no_session, 1u);
}

// At the default MTU each flight is one datagram, and nothing is resent.
TEST(EndpointTest, WithoutLossNothingIsRetransmitted) {
  Pair p = MakePair();
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(pipe.batches(), 4);
  EXPECT_EQ(pipe.sent().size(), 4u);
  EXPECT_EQ(p.client->counters().retransmissions + p.server->counters().retransmissions, 0u);
  EXPECT_EQ(p.client->counters().datagrams_sent, 2u);
  EXPECT_EQ(p.server->counters().datagrams_received, 2u);
}

// A path MTU of 300 bytes fragments the certificate flights; every datagram
// fits, and the handshake completes.
TEST(EndpointTest, SmallMtuFragmentsAndCompletes) {
  EndpointOptions c = Options(Role::kClient, ServerCert());
  EndpointOptions s = Options(Role::kServer, ClientCert());
  c.mtu = s.mtu = 300;
  Pair p = MakePair(c, s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  ASSERT_EQ(p.client->state(), State::kKeyed) << p.client->failure_reason();
  ASSERT_EQ(p.server->state(), State::kKeyed) << p.server->failure_reason();
  size_t largest = 0;
  for (const Sent& d : pipe.sent()) largest = std::max(largest, d.bytes.size());
  EXPECT_LE(largest, 300u);
  EXPECT_GT(largest, 200u);
  EXPECT_GT(pipe.sent().size(), 6u);  // more datagrams than flights
}

// --- Failures: each with its reason, and no keys on either side.

void ExpectNoKeys(Endpoint& e) {
  EXPECT_FALSE(e.TakeKeys());
  EXPECT_FALSE(e.profile());
  EXPECT_FALSE(e.has_session());
  EXPECT_FALSE(e.NextTimeoutMs());
}

TEST(EndpointTest, ServerRefusesAClientCertificateThatMatchesNoFingerprint) {
  const Certificate stranger = *Certificate::Generate();
  Pair p = MakePair(Options(Role::kClient, ServerCert()), Options(Role::kServer, stranger));
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.server->state(), State::kFailed);
  EXPECT_EQ(p.server->failure(), Failure::kFingerprintMismatch);
  EXPECT_THAT(p.server->failure_reason(), StartsWith("fingerprint mismatch"));
  // The client hears the server's alert.
  EXPECT_EQ(p.client->state(), State::kFailed);
  EXPECT_EQ(p.client->failure(), Failure::kAlertReceived);
  EXPECT_THAT(p.client->failure_reason(), HasSubstr("bad certificate"));
  ExpectNoKeys(*p.server);
  ExpectNoKeys(*p.client);
}

TEST(EndpointTest, ClientRefusesAServerCertificateThatMatchesNoFingerprint) {
  const Certificate stranger = *Certificate::Generate();
  Pair p = MakePair(Options(Role::kClient, stranger), Options(Role::kServer, ClientCert()));
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.client->failure(), Failure::kFingerprintMismatch);
  EXPECT_THAT(p.client->failure_reason(), StartsWith("fingerprint mismatch"));
  EXPECT_EQ(p.server->state(), State::kFailed);
  ExpectNoKeys(*p.client);
  ExpectNoKeys(*p.server);
}

// RFC 8122 §5: a correct SHA-1 fingerprint does not rescue a wrong SHA-256
// one; only the strongest hash's set counts.
TEST(EndpointTest, OnlyTheStrongestOfferedHashCounts) {
  EndpointOptions s = Options(Role::kServer, ClientCert());
  Fingerprint wrong = ClientCert().GetFingerprint(HashFunction::kSha256);
  wrong.digest[0] ^= 1;
  s.peer_fingerprints = {ClientCert().GetFingerprint(HashFunction::kSha1), wrong};
  Pair p = MakePair(Options(Role::kClient, ServerCert()), s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.server->failure(), Failure::kFingerprintMismatch);

  s.peer_fingerprints = {wrong, ClientCert().GetFingerprint(HashFunction::kSha1),
                         ClientCert().GetFingerprint(HashFunction::kSha256)};
  Pair q = MakePair(Options(Role::kClient, ServerCert()), s);
  HandshakePipe pipe2(q.client.get(), q.server.get());
  pipe2.Run();
  EXPECT_EQ(q.server->state(), State::kKeyed) << q.server->failure_reason();
}

TEST(EndpointTest, NoCommonProfileFailsBothSides) {
  EndpointOptions c = Options(Role::kClient, ServerCert());
  EndpointOptions s = Options(Role::kServer, ClientCert());
  c.profiles = {SrtpProfile::kAeadAes256Gcm, SrtpProfile::kAes128CmSha1_32};
  s.profiles = {SrtpProfile::kAes128CmSha1_80, SrtpProfile::kAeadAes128Gcm};
  Pair p = MakePair(c, s);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.server->failure(), Failure::kNoCommonProfile);
  EXPECT_THAT(p.server->failure_reason(), StartsWith("no common SRTP profile"));
  EXPECT_EQ(p.client->failure(), Failure::kAlertReceived);
  EXPECT_THAT(p.client->failure_reason(), HasSubstr("handshake failure"));
  ExpectNoKeys(*p.server);
  ExpectNoKeys(*p.client);
}

TEST(EndpointTest, ServerWithoutClientHelloFailsAtTheDeadline) {
  Pair p = MakePair();
  p.server->Start(1000);
  EXPECT_EQ(p.server->NextTimeoutMs(), 11000u);
  p.server->OnTimer(10999);
  EXPECT_EQ(p.server->state(), State::kNew);
  p.server->OnTimer(11000);
  EXPECT_EQ(p.server->state(), State::kFailed);
  EXPECT_EQ(p.server->failure(), Failure::kDeadlinePassed);
  EXPECT_THAT(p.server->failure_reason(), StartsWith("handshake deadline passed"));
  ExpectNoKeys(*p.server);
}

TEST(EndpointTest, ClientWithoutAnswerFailsAtTheDeadline) {
  Pair p = MakePair();
  p.client->Start(1000);
  EXPECT_EQ(p.client->state(), State::kHandshaking);
  EXPECT_EQ(p.client->TakeOutgoing().size(), 1u);  // the ClientHello
  ASSERT_TRUE(p.client->NextTimeoutMs());
  EXPECT_LE(*p.client->NextTimeoutMs(), 1000u + 50u);  // the retransmission timer
  p.client->OnTimer(11000);
  EXPECT_EQ(p.client->failure(), Failure::kDeadlinePassed);
  ExpectNoKeys(*p.client);
}

// A flight that arrives after the deadline, before the timer ran, is not
// processed: the deadline holds whatever the order of events.
TEST(EndpointTest, FlightAfterTheDeadlineIsNotProcessed) {
  Pair p = MakePair();
  p.client->Start(1000);
  p.server->Start(1000);
  p.server->Feed(p.client->TakeOutgoing().front(), 11000);
  EXPECT_EQ(p.server->failure(), Failure::kDeadlinePassed);
  EXPECT_TRUE(p.server->TakeOutgoing().empty());
  EXPECT_EQ(p.server->counters().dropped_no_session, 1u);
}

// A plaintext (epoch 0) alert record, as a peer sends it mid-handshake.
Datagram AlertRecord(uint8_t level, uint8_t description) {
  return {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 100, 0, 2, level, description};
}

TEST(EndpointTest, AlertsFromThePeerFailTheHandshakeWithTheirName) {
  struct Case {
    uint8_t level, description;
    const char* reason;
  };
  for (const Case& c : {Case{1, 0, "alert received: close notify"},
                        Case{2, 40, "alert received: handshake failure"}}) {
    SCOPED_TRACE(c.reason);
    Pair p = MakePair();
    p.client->Start(1000);
    p.server->Feed(p.client->TakeOutgoing().front(), 1001);
    ASSERT_EQ(p.server->state(), State::kHandshaking);
    p.server->Feed(AlertRecord(c.level, c.description), 1002);
    EXPECT_EQ(p.server->failure(), Failure::kAlertReceived);
    EXPECT_EQ(p.server->failure_reason(), c.reason);
    EXPECT_EQ(p.server->counters().alerts_received, 1u);
    ExpectNoKeys(*p.server);
  }
}

// --- Hostile input.

TEST(EndpointTest, WhatIsNotDtlsIsCountedAndDropped) {
  Pair p = MakePair();
  const std::vector<Datagram> junk = {
      {},                                   // empty
      {22, 0xfe, 0xfd},                     // shorter than a record header
      Datagram(40, 0x00),                   // STUN's range (RFC 7983)
      Datagram(40, 0x80),                   // RTP's range
      Datagram(40, 19), Datagram(40, 64),   // just outside DTLS's range
  };
  for (const Datagram& d : junk) p.server->Feed(d, 1000);
  p.server->Feed(Datagram(kMaxDatagramLen + 1, 22), 1000);
  EXPECT_EQ(p.server->counters().dropped_not_dtls, junk.size());
  EXPECT_EQ(p.server->counters().dropped_oversize, 1u);
  EXPECT_EQ(p.server->counters().datagrams_received, junk.size() + 1);
  EXPECT_EQ(p.server->state(), State::kNew);
  HandshakePipe pipe(p.client.get(), p.server.get());
  pipe.Run();
  EXPECT_EQ(p.server->state(), State::kKeyed);
}

// Every truncation of every datagram of a handshake reaches the peer before
// the datagram itself; the handshake still completes (RFC 6347 §4.1.2.7:
// bad records are discarded).
TEST(EndpointTest, TruncatedRecordsAreDiscarded) {
  Pair p = MakePair();
  p.client->Start(1000);
  p.server->Start(1000);
  for (int round = 0; round < 10; ++round) {
    for (auto [from, to] : {std::pair{p.client.get(), p.server.get()},
                            std::pair{p.server.get(), p.client.get()}}) {
      for (const Datagram& d : from->TakeOutgoing()) {
        for (size_t len = 0; len < d.size(); ++len) {
          to->Feed(std::span<const uint8_t>(d.data(), len), 1000);
        }
        to->Feed(d, 1000);
      }
    }
  }
  EXPECT_EQ(p.client->state(), State::kKeyed) << p.client->failure_reason();
  EXPECT_EQ(p.server->state(), State::kKeyed) << p.server->failure_reason();
  std::optional<SrtpKeys> ck = p.client->TakeKeys();
  std::optional<SrtpKeys> sk = p.server->TakeKeys();
  ASSERT_TRUE(ck && sk);
  ExpectCrosswise(*ck, *sk, SrtpProfile::kAes128CmSha1_80);
}

// Random records (any content type of 20..63, random version, epoch,
// sequence, length and body) at every stage of a handshake: no crash, and
// the endpoint ends in a defined state.
TEST(EndpointTest, RandomRecordsNeverCrash) {
  std::mt19937 rng(1234);
  auto random_datagram = [&rng] {
    Datagram d(13 + rng() % 300);
    for (uint8_t& b : d) b = static_cast<uint8_t>(rng());
    d[0] = static_cast<uint8_t>(20 + rng() % 44);
    if (rng() % 2 != 0) {  // a plausible header: DTLS 1.2, epoch 0 or 1
      d[1] = 0xfe, d[2] = 0xfd, d[3] = 0, d[4] = static_cast<uint8_t>(rng() % 2);
    }
    return d;
  };
  for (int stage = 0; stage < 4; ++stage) {
    Pair p = MakePair();
    HandshakePipe pipe(p.client.get(), p.server.get());
    bool fired = false;
    pipe.Run([&](const Sent& s) {
      if (s.batch == stage && !fired) {
        fired = true;
        for (int i = 0; i < 500; ++i) (s.from_client ? p.server : p.client)->Feed(random_datagram(), pipe.now());
      }
      return false;
    });
    for (int i = 0; i < 500; ++i) p.server->Feed(random_datagram(), pipe.now());
    EXPECT_TRUE(fired);
    for (Endpoint* e : {p.client.get(), p.server.get()}) {
      EXPECT_TRUE(e->state() == State::kKeyed || e->state() == State::kFailed);
      EXPECT_EQ(e->state() == State::kFailed, e->failure() != Failure::kNone);
    }
  }
}

// DTLS 1.2 record (RFC 6347 §4.1) of a handshake fragment (§4.2.2):
// message `seq` claims `msg_len` bytes, this record carries 100 of them.
Datagram HandshakeFragment(uint64_t record_seq, uint16_t message_seq, uint32_t msg_len) {
  Datagram d = {22, 0xfe, 0xfd, 0, 0};
  for (int i = 5; i >= 0; --i) d.push_back(static_cast<uint8_t>(record_seq >> (8 * i)));
  const uint16_t body = 12 + 100;
  d.insert(d.end(), {static_cast<uint8_t>(body >> 8), static_cast<uint8_t>(body)});
  d.insert(d.end(), {11, static_cast<uint8_t>(msg_len >> 16), static_cast<uint8_t>(msg_len >> 8),
                     static_cast<uint8_t>(msg_len), static_cast<uint8_t>(message_seq >> 8),
                     static_cast<uint8_t>(message_seq), 0, 0, 0, 0, 0, 100});
  d.resize(d.size() + 100, 0xab);
  return d;
}

// A record for the next epoch (1), which OpenSSL would buffer until the
// ChangeCipherSpec.
Datagram NextEpochRecord(std::mt19937& rng) {
  Datagram d(1000);
  for (uint8_t& b : d) b = static_cast<uint8_t>(rng());
  d[0] = 22, d[1] = 0xfe, d[2] = 0xfd, d[3] = 0, d[4] = 1;
  d[11] = 0x03, d[12] = 0xdb;  // 987 bytes
  return d;
}

// Floods at a server mid-handshake (ClientHellos from many clients, records
// for the next epoch, fragments of handshake messages yet to come): the
// memory OpenSSL holds for it stays bounded and small, and so does the
// queue of datagrams to send.
TEST(EndpointTest, FloodsDoNotGrowMemory) {
  ASSERT_TRUE(g_counting) << "OpenSSL allocated before the test could count";
  Pair p = MakePair();
  p.client->Start(1000);
  p.server->Feed(p.client->TakeOutgoing().front(), 1000);
  p.server->TakeOutgoing();
  std::vector<Datagram> hellos;
  for (int i = 0; i < 20; ++i) {
    auto c = Make(ClientCert(), Options(Role::kClient, ServerCert()));
    c->Start(1000);
    hellos.push_back(c->TakeOutgoing().front());
  }
  std::mt19937 rng(99);
  uint64_t record_seq = 1000;
  auto flood = [&](int n) {
    for (int i = 0; i < n; ++i) {
      p.server->Feed(hellos[static_cast<size_t>(i) % hellos.size()], 1000);
      p.server->Feed(NextEpochRecord(rng), 1000);
      p.server->Feed(HandshakeFragment(record_seq++, static_cast<uint16_t>(1 + i % 40), 16000),
                     1000);
    }
  };
  const int64_t before = g_openssl_live_bytes.load();
  flood(200);
  const int64_t after_warmup = g_openssl_live_bytes.load();
  flood(5000);
  const int64_t after = g_openssl_live_bytes.load();
  // Up to ten messages of 16 KB being reassembled, and a few early records.
  EXPECT_LT(after - before, 384 * 1024) << "OpenSSL holds " << after - before << " more bytes";
  EXPECT_LT(after - after_warmup, 16 * 1024) << "still growing";
  EXPECT_GT(p.server->counters().dropped_early_epoch, 0u);
  EXPECT_LE(p.server->TakeOutgoing().size(), kMaxQueuedDatagrams);
  EXPECT_NE(p.server->state(), State::kKeyed);
  std::printf("flood: %lld bytes held, %lld more after warm-up\n",
              static_cast<long long>(after - before), static_cast<long long>(after - after_warmup));
}

// Handshakes leave nothing behind in OpenSSL once their endpoints are gone
// (sessions, BIOs, buffers): a long-running handshake thread does not grow.
TEST(EndpointTest, EndpointsFreeWhatTheyHold) {
  ASSERT_TRUE(g_counting);
  auto handshakes = [](int n) {
    for (int i = 0; i < n; ++i) {
      Pair p = MakePair();
      HandshakePipe pipe(p.client.get(), p.server.get());
      pipe.Run();
      ASSERT_EQ(p.server->state(), State::kKeyed);
    }
  };
  handshakes(5);  // OpenSSL's lazily built tables
  const int64_t before = g_openssl_live_bytes.load();
  handshakes(50);
  EXPECT_LT(g_openssl_live_bytes.load() - before, 1024);
}

// --- Re-key and independence: endpoints share nothing that blocks another.

TEST(EndpointTest, ReKeyIsANewEndpointBesideTheOldOne) {
  Pair old_pair = MakePair();
  HandshakePipe old_pipe(old_pair.client.get(), old_pair.server.get());
  old_pipe.Run();
  ASSERT_EQ(old_pair.server->state(), State::kKeyed);
  std::optional<SrtpKeys> old_keys = old_pair.server->TakeKeys();
  ASSERT_TRUE(old_keys);

  // The re-offer brings a new client certificate; the old server endpoint
  // still lingers while the new one handshakes.
  const Certificate new_client_cert = *Certificate::Generate();
  auto client = Make(new_client_cert, Options(Role::kClient, ServerCert()));
  auto server = Make(ServerCert(), Options(Role::kServer, new_client_cert));
  HandshakePipe pipe(client.get(), server.get());
  pipe.Run();
  ASSERT_EQ(server->state(), State::kKeyed) << server->failure_reason();
  EXPECT_TRUE(old_pair.server->lingering());
  std::optional<SrtpKeys> new_keys = server->TakeKeys();
  ASSERT_TRUE(new_keys);
  EXPECT_FALSE(new_keys->receive.SameKeyAs(old_keys->receive));
  EXPECT_FALSE(new_keys->send.SameKeyAs(old_keys->send));
}

// Two handshakes interleaved message by message on one thread.
TEST(EndpointTest, InterleavedHandshakesAreIndependent) {
  Pair a = MakePair();
  Pair b = MakePair();
  for (Pair* p : {&a, &b}) p->client->Start(1000), p->server->Start(1000);
  for (int round = 0; round < 6; ++round) {
    for (Pair* p : {&a, &b}) {
      for (const Datagram& d : p->client->TakeOutgoing()) p->server->Feed(d, 1000);
      for (const Datagram& d : p->server->TakeOutgoing()) p->client->Feed(d, 1000);
    }
  }
  for (Pair* p : {&a, &b}) {
    EXPECT_EQ(p->client->state(), State::kKeyed);
    EXPECT_EQ(p->server->state(), State::kKeyed);
  }
  EXPECT_FALSE(a.client->TakeKeys()->send.SameKeyAs(b.client->TakeKeys()->send));
}

TEST(EndpointTest, CreateRefusesOptionsOutOfRange) {
  auto refused = [](const EndpointOptions& o) {
    absl::StatusOr<std::unique_ptr<Endpoint>> e = Endpoint::Create(ServerCert(), o);
    return !e.ok() && e.status().code() == absl::StatusCode::kInvalidArgument;
  };
  const EndpointOptions good = Options(Role::kServer, ClientCert());
  EXPECT_FALSE(refused(good));
  EndpointOptions o = good;
  o.peer_fingerprints.clear();
  EXPECT_TRUE(refused(o));
  o = good;
  o.profiles.clear();
  EXPECT_TRUE(refused(o));
  o = good;
  o.profiles = {SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAeadAes128Gcm};
  EXPECT_TRUE(refused(o));
  for (uint32_t mtu : {kMinMtu - 1, kMaxMtu + 1}) {
    o = good;
    o.mtu = mtu;
    EXPECT_TRUE(refused(o)) << mtu;
  }
  for (uint32_t mtu : {kMinMtu, kMaxMtu}) {
    o = good;
    o.mtu = mtu;
    EXPECT_FALSE(refused(o)) << mtu;
  }
  o = good;
  o.initial_retransmit_ms = kMinInitialRetransmitMs - 1;
  EXPECT_TRUE(refused(o));
}

TEST(EndpointTest, StateNames) {
  EXPECT_EQ(StateName(State::kNew), "new");
  EXPECT_EQ(StateName(State::kHandshaking), "handshaking");
  EXPECT_EQ(StateName(State::kKeyed), "keyed");
  EXPECT_EQ(StateName(State::kFailed), "failed");
}

}  // namespace
}  // namespace sluice::dtls
