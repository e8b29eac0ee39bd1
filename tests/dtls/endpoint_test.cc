#include "sluice/dtls/endpoint.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
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
  EXPECT_TRUE(p.server->has_session());  // lingers for a lost last flight
  EXPECT_TRUE(p.client->TakeKeys());
  EXPECT_FALSE(p.client->TakeKeys());
  EXPECT_EQ(p.client->state(), State::kKeyed);
  p.server->ReleaseSession();
  EXPECT_FALSE(p.server->has_session());
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
  EXPECT_TRUE(p.server->has_session());
  p.server->OnTimer(end);
  EXPECT_FALSE(p.server->has_session());
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

}  // namespace
}  // namespace sluice::dtls
