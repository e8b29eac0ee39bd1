// Hostile input to WebRTC legs, end to end (issue 23): the real sluiced in a
// network namespace, simulated browsers (tests/testing/webrtc_browsers.h)
// and attackers in another. An attacker floods a WebRTC leg's port with DTLS
// garbage, truncated DTLS records, replayed ClientHellos, and STUN with a
// wrong MESSAGE-INTEGRITY, a wrong USERNAME, none at all, indications and
// unsolicited responses, from addresses that never passed a check. Every
// datagram must be answered or dropped as RFC 8489 §6.3 and §9.1.3 and RFC
// 8445 §7.3 say and counted under its reason, no attacker may become the
// leg's peer, sluiced must not crash, and meanwhile another WebRTC call keys
// in time and running calls lose no packet. A keyed call stays keyed and
// keeps relaying when DTLS garbage comes from its own peer's address.
//
// Every loop is bounded; the file runs in well under a minute.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "libsrtp_peer.h"
#include "media_calls.h"
#include "session_requests.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/ice/stun.h"
#include "webrtc_browsers.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kPlainPhonePort = 40012;
constexpr uint16_t kAttackerPort = 45000;
constexpr int kAttackerSockets = 8;  // per attacker address; two addresses
constexpr double kKeyedBoundMs = 3000;  // a call keying alone during a flood

// What an attacker sends, and how sluiced must treat each.
enum class Hostile : uint8_t {
  kDtlsGarbage,      // first byte 20..63, random bytes: DTLS from an unchecked address
  kTruncatedRecord,  // a DTLS record header longer than what follows
  kClientHello,      // a real ClientHello, replayed
  kBadIntegrity,     // the right USERNAME, MESSAGE-INTEGRITY under a wrong password: 401
  kWrongUsername,    // signed with the right password, another USERNAME: 401
  kNoIntegrity,      // a nominating check without MESSAGE-INTEGRITY: 400
  kIndication,       // a Binding indication: ignored
  kResponse,         // an unsolicited Binding success response: ignored
};
constexpr int kHostileKinds = 8;

std::vector<uint8_t> Random(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// The checks and messages an attacker forges against one leg.
struct Forger {
  std::string leg_ufrag, browser_ufrag;
  std::string leg_pwd;
  std::vector<uint8_t> client_hello;

  std::vector<uint8_t> Stun(std::mt19937& rng, ice::StunClass cls, const std::string& username,
                            const std::string& key) const {
    ice::StunTransactionId tid;
    for (auto& b : tid) b = static_cast<uint8_t>(rng());
    ice::StunBuilder s(ice::kStunBindingMethod, cls, tid);
    if (!username.empty()) s.AddUsername(username);
    if (cls == ice::StunClass::kRequest) {
      s.AddPriority(0x7e0000ff).AddIceControlling(rng()).AddUseCandidate();
    }
    if (!key.empty()) s.AddMessageIntegrity(ice::StunKey(key));
    s.AddFingerprint();
    return std::move(s).Take();
  }

  std::vector<uint8_t> Next(Hostile kind, std::mt19937& rng) const {
    const std::string username = leg_ufrag + ":" + browser_ufrag;
    switch (kind) {
      case Hostile::kDtlsGarbage: {
        std::vector<uint8_t> d = Random(rng, 1 + rng() % 300);
        d[0] = static_cast<uint8_t>(20 + rng() % 44);
        return d;
      }
      case Hostile::kTruncatedRecord: {
        std::vector<uint8_t> d = Random(rng, 13 + rng() % 40);
        d[0] = 22;  // handshake, DTLS 1.2, epoch 0, claims 512 bytes
        d[1] = 0xfe;
        d[2] = 0xfd;
        d[3] = d[4] = 0;
        d[11] = 2;
        d[12] = 0;
        return d;
      }
      case Hostile::kClientHello: return client_hello;
      case Hostile::kBadIntegrity:
        return Stun(rng, ice::StunClass::kRequest, username, "NotTheLegsPassword0123456");
      case Hostile::kWrongUsername:
        return Stun(rng, ice::StunClass::kRequest, "evil:" + browser_ufrag, leg_pwd);
      case Hostile::kNoIntegrity: return Stun(rng, ice::StunClass::kRequest, username, "");
      case Hostile::kIndication: return Stun(rng, ice::StunClass::kIndication, "", "");
      case Hostile::kResponse: return Stun(rng, ice::StunClass::kSuccessResponse, "", leg_pwd);
    }
    return {};
  }
};

// Attackers: sockets on the browsers' side, on the phone's address and on a
// second one, sending a round of every kind at a steady rate and counting
// the STUN error responses they get back.
class Attack {
 public:
  Attack(Daemon& daemon, Forger forger, const sockaddr_in& target) : forger_(std::move(forger)) {
    for (const std::string& ip : {daemon.phone_ip(0), daemon.spoof_ip()}) {
      for (int k = 0; k < kAttackerSockets; ++k) {
        Phone p = daemon.MakePhone(0, ip, static_cast<uint16_t>(kAttackerPort + k), 0);
        p.relay = target;
        sockets_.push_back(std::move(p));
      }
    }
  }
  // `n` datagrams, `per_ms` a millisecond, until `stop`.
  void Run(int n, int per_ms, const std::atomic<bool>& stop) {
    std::mt19937 rng(23);
    for (int i = 0; i < n && !stop.load(); ++i) {
      const auto kind = static_cast<Hostile>(i % kHostileKinds);
      sockets_[static_cast<size_t>(i / kHostileKinds) % sockets_.size()].SendRaw(
          forger_.Next(kind, rng));
      ++sent_[static_cast<int>(kind)];
      if (i % per_ms == per_ms - 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // As fast as sendmmsg goes, `per_ms` a millisecond: datagrams built
  // beforehand (kHostileKinds * 64 of them, in turn), in batches of 64.
  void Blast(int n, int per_ms, const std::atomic<bool>& stop) {
    std::mt19937 rng(29);
    std::vector<std::vector<uint8_t>> built;
    for (int i = 0; i < kHostileKinds * 64; ++i) {
      built.push_back(forger_.Next(static_cast<Hostile>(i % kHostileKinds), rng));
    }
    for (int i = 0; i < n && !stop.load(); i += 64) {
      mmsghdr msgs[64] = {};
      iovec iov[64];
      for (int k = 0; k < 64; ++k) {
        std::vector<uint8_t>& d = built[static_cast<size_t>(i + k) % built.size()];
        iov[k] = {d.data(), d.size()};
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        ++sent_[(i + k) % kHostileKinds];
      }
      Phone& from = sockets_[static_cast<size_t>(i / 64) % sockets_.size()];
      for (int k = 0; k < 64; ++k) {
        msgs[k].msg_hdr.msg_name = &from.relay;
        msgs[k].msg_hdr.msg_namelen = sizeof from.relay;
      }
      for (int done = 0; done < 64;) {
        const int r = sendmmsg(from.fd, msgs + done, static_cast<unsigned>(64 - done), 0);
        if (r <= 0) break;
        done += r;
      }
      if ((i / 64) % std::max(per_ms / 64, 1) == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  const Forger& forger() const { return forger_; }
  uint64_t sent(Hostile kind) const { return sent_[static_cast<int>(kind)]; }
  uint64_t sent_dtls() const {
    return sent(Hostile::kDtlsGarbage) + sent(Hostile::kTruncatedRecord) +
           sent(Hostile::kClientHello);
  }
  uint64_t total() const {
    uint64_t t = 0;
    for (uint64_t s : sent_) t += s;
    return t;
  }
  // What came back: STUN error responses by code (none may carry
  // MESSAGE-INTEGRITY: the request proved no key), and anything else.
  struct Replies {
    uint64_t e400 = 0, e401 = 0, with_integrity = 0, other = 0;
  };
  Replies Collect() {
    Replies r;
    for (Phone& p : sockets_) {
      for (const std::vector<uint8_t>& d : p.Receive(0)) {
        const ice::StunParse parse = ice::ParseStun(d);
        if (!parse.ok() || !parse.message.error_code) {
          ++r.other;
          continue;
        }
        if (parse.message.integrity_offset) ++r.with_integrity;
        if (parse.message.error_code->code == 400) ++r.e400;
        if (parse.message.error_code->code == 401) ++r.e401;
      }
    }
    return r;
  }

 private:
  Forger forger_;
  std::vector<Phone> sockets_;
  uint64_t sent_[kHostileKinds] = {};
};

uint64_t Count(const json& counts, const char* name) {
  return counts.is_object() && counts.contains(name) ? counts[name].get<uint64_t>() : 0;
}
// Every datagram a WebRTC leg was given, as session.get counts them: STUN
// answered or dropped, DTLS fed to the handshake (its own drops among them)
// or refused before.
uint64_t LegTotal(const json& leg) {
  uint64_t n = 0;
  if (leg.contains("ice")) {
    n += leg["ice"].value("answered", uint64_t{0});
    for (const auto& [reason, count] : leg["ice"]["dropped"].items()) n += count.get<uint64_t>();
  }
  if (leg.contains("dtls")) {
    n += leg["dtls"].value("received", uint64_t{0});
    n += Count(leg["dtls"]["dropped"], "unchecked_source");
    n += Count(leg["dtls"]["dropped"], "stun_without_ice");
  }
  return n;
}

uint64_t WorkerSum(const json& stats, const char* field, const char* drop = nullptr) {
  uint64_t sum = 0;
  for (const json& w : stats["workers"]) {
    sum += drop == nullptr ? w.value(field, uint64_t{0}) : Count(w["drops"], drop);
  }
  return sum;
}

class WebRtcAdversarialTest : public ::testing::Test {
 protected:
  // sluiced with `webrtc` as its [webrtc] settings; one per test suite.
  static void StartDaemon(const std::string& webrtc) {
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "webrtc-adversarial";
    options.subnet_a = "10.211.1";
    options.subnet_b = "10.211.2";
    options.extra_config = "[media]\nport_min = 33000\nport_max = 33999\n[webrtc]\n" + webrtc;
    skip_reason_ = daemon_->Start(options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running());
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
    absl::StatusOr<control::Client> raw = control::Client::Connect(daemon_->socket_path());
    ASSERT_TRUE(raw.ok()) << raw.status();
    raw_.emplace(*std::move(raw));
    absl::StatusOr<std::unique_ptr<BrowserFleet>> fleet = BrowserFleet::Create();
    ASSERT_TRUE(fleet.ok());
    fleet_ = *std::move(fleet);
  }
  void TearDown() override {
    if (skip_reason_.empty()) {
      EXPECT_TRUE(daemon_->Alive()) << "sluiced must survive every test";
    }
  }

  json Get(const std::string& session) {
    return control_.Call({{"op", "session.get"}, {"session", session}});
  }
  json Stats() { return control_.Call({{"op", "stats"}}); }
  // Ten SRTP calls between the phones, relaying while a test attacks
  // (nullptr, with the failure recorded, if they cannot start).
  std::unique_ptr<MediaCalls> StartMediaCalls() {
    MediaCallsOptions m;
    m.calls = 10;
    m.session_prefix = "adv-media-";
    m.ns_a = daemon_->phone_ns(0);
    m.ip_a = daemon_->phone_ip(0);
    m.ns_b = daemon_->phone_ns(1);
    m.ip_b = daemon_->phone_ip(1);
    absl::StatusOr<std::unique_ptr<MediaCalls>> media =
        MediaCalls::Create(*raw_, daemon_->topology(), m);
    EXPECT_TRUE(media.ok()) << media.status();
    if (!media.ok()) return nullptr;
    const absl::Status started = (*media)->Start();
    EXPECT_TRUE(started.ok()) << started;
    return started.ok() ? *std::move(media) : nullptr;
  }

  // A WebRTC session `name`: leg a a browser on `port` (not started), leg b
  // a plain phone. Returns the browser's index.
  size_t MakeWebRtcCall(const std::string& name, uint16_t port, bool dtls_client) {
    absl::StatusOr<int> fd = daemon_->topology().Socket(daemon_->phone_ns(0), AF_INET, SOCK_DGRAM);
    EXPECT_TRUE(fd.ok());
    const sockaddr_in at = Addr(daemon_->phone_ip(0), port);
    EXPECT_EQ(bind(*fd, reinterpret_cast<const sockaddr*>(&at), sizeof at), 0);
    const size_t i = *fleet_->Add(*fd, dtls_client);
    absl::StatusOr<json> reply = CreateSession(
        *raw_, name, BrowserLeg("a", "a", fleet_->offer(i)),
        PlainLeg("b", "b", daemon_->phone_ip(1) + ":" + std::to_string(kPlainPhonePort)));
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return i;
    replies_.push_back(*reply);
    absl::StatusOr<BrowserAnswer> answer = AnswerFromLeg((*reply)["legs"][0]);
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (answer.ok()) {
      EXPECT_TRUE(fleet_->SetAnswer(i, *answer).ok());
    }
    return i;
  }

  // Polls the browsers until session.get says `session` is keyed; the time
  // from `since`, or nullopt after timeout_ms.
  std::optional<double> WaitKeyed(const std::string& session, Clock::time_point since,
                                  int timeout_ms) {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      fleet_->Poll(2);
      const json g = Get(session);
      if (g.value("ok", false) && g["legs"][0]["dtls"]["state"] == "keyed") {
        return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
      }
    }
    return std::nullopt;
  }

  // A forger against browser i's leg, with a ClientHello of its own.
  Forger ForgerFor(size_t i, const json& reply) {
    Forger f;
    f.leg_ufrag = reply["legs"][0]["ice"]["ufrag"];
    f.leg_pwd = reply["legs"][0]["ice"]["pwd"];
    f.browser_ufrag = fleet_->offer(i).ufrag;
    dtls::EndpointOptions o;
    o.role = dtls::Role::kClient;
    o.peer_fingerprints = {*dtls::ParseFingerprint(reply["legs"][0]["dtls"]["fingerprint"])};
    auto hello = dtls::Endpoint::Create(*dtls::Certificate::Generate(), o);
    (*hello)->Start(0);
    f.client_hello = (*hello)->TakeOutgoing().at(0);
    return f;
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  ControlClient control_;
  std::optional<control::Client> raw_;
  std::unique_ptr<BrowserFleet> fleet_;
  std::vector<json> replies_;
};

// Every datagram reaches the handshake thread (no per-leg rate), so each
// is seen handled as the RFCs say.
class UnlimitedHandshakes : public WebRtcAdversarialTest {
 protected:
  static void SetUpTestSuite() { StartDaemon("handshake_max_pps = 0\n"); }
};

// A flood of every hostile kind at a leg no browser has checked yet, while
// another WebRTC call keys and SRTP calls relay: nothing is learned, each
// datagram is counted under its reason and answered as the RFCs say, the
// other calls do not notice, and the leg's own browser keys afterwards.
TEST_F(UnlimitedHandshakes, FloodAtAnUncheckedLegIsCountedAndLearnsNothing) {
  std::unique_ptr<MediaCalls> media = StartMediaCalls();
  ASSERT_NE(media, nullptr);

  const size_t target = MakeWebRtcCall("target", 42000, /*dtls_client=*/true);
  const size_t other = MakeWebRtcCall("other", 42002, /*dtls_client=*/false);
  ASSERT_FALSE(HasFailure());
  Attack attack(*daemon_, ForgerFor(target, replies_[0]), *LocalAddress(replies_[0]["legs"][0]));
  const json stats_before = Stats();
  media->Mark();

  std::atomic<bool> stop{false};
  std::thread attacker([&] { attack.Run(120000, 100, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Clock::time_point started = Clock::now();
  fleet_->Start(other);
  const std::optional<double> other_keyed_ms = WaitKeyed("other", started, 10000);
  attacker.join();
  const MediaCallsResult lost = media->Stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Attack::Replies replies = attack.Collect();
  const json stats_after = Stats();
  const json t = Get("target");

  std::printf("hostile: %llu datagrams; the other call keyed in %.0f ms; media %llu sent, "
              "%llu lost; replies 400 %llu, 401 %llu, other %llu\n",
              static_cast<unsigned long long>(attack.total()), other_keyed_ms.value_or(-1),
              static_cast<unsigned long long>(lost.sent), static_cast<unsigned long long>(lost.lost),
              static_cast<unsigned long long>(replies.e400),
              static_cast<unsigned long long>(replies.e401),
              static_cast<unsigned long long>(replies.other));
  ASSERT_TRUE(other_keyed_ms.has_value()) << "the other call did not key during the flood";
  EXPECT_LE(*other_keyed_ms, kKeyedBoundMs);
  EXPECT_EQ(lost.lost, 0u);
  EXPECT_GT(lost.sent, 0u);
  EXPECT_EQ(WorkerSum(stats_after, nullptr, "handshake_full"),
            WorkerSum(stats_before, nullptr, "handshake_full"));

  // Never a learned peer.
  const json& leg = t["legs"][0];
  EXPECT_TRUE(leg["ice"]["selected"].is_null()) << leg.dump();
  EXPECT_TRUE(leg["remote"].is_null()) << leg.dump();
  EXPECT_EQ(leg["dtls"]["state"], "new");
  EXPECT_EQ(leg["ice"]["answered"], 0);
  EXPECT_EQ(leg["dtls"]["received"], 0);
  // Every datagram the workers took is accounted for: handed to the
  // handshake thread, dispatched to a leg, counted there under a reason.
  const json& hs_before = stats_before["webrtc"]["handshake_thread"];
  const json& hs_after = stats_after["webrtc"]["handshake_thread"];
  EXPECT_EQ(Count(hs_after, "received") - Count(hs_before, "received"),
            WorkerSum(stats_after, "handshake_packets") -
                WorkerSum(stats_before, "handshake_packets"));
  EXPECT_EQ(Count(hs_after, "dispatched") - Count(hs_before, "dispatched"),
            LegTotal(leg) + LegTotal(Get("other")["legs"][0]));
  const json& ice = leg["ice"]["dropped"];
  const json& dtls = leg["dtls"]["dropped"];
  if (LegTotal(leg) != attack.total()) {
    // The kernel dropped some before sluiced saw them (a loaded machine):
    // what never arrived is not sluiced's to count.
    std::printf("note: %llu hostile datagrams never reached sluiced\n",
                static_cast<unsigned long long>(attack.total() - LegTotal(leg)));
    EXPECT_LT(LegTotal(leg), attack.total());
    EXPECT_GT(Count(ice, "bad_integrity"), 0u);
    EXPECT_GT(Count(dtls, "unchecked_source"), 0u);
    return;
  }
  EXPECT_EQ(Count(dtls, "unchecked_source"), attack.sent_dtls());
  EXPECT_EQ(Count(ice, "bad_integrity"), attack.sent(Hostile::kBadIntegrity));
  EXPECT_EQ(Count(ice, "wrong_username"), attack.sent(Hostile::kWrongUsername));
  EXPECT_EQ(Count(ice, "missing_attribute"), attack.sent(Hostile::kNoIntegrity));
  EXPECT_EQ(Count(ice, "indication"), attack.sent(Hostile::kIndication));
  EXPECT_EQ(Count(ice, "not_a_request"), attack.sent(Hostile::kResponse));
  // RFC 8489 §9.1.3: 400 without integrity, 401 for a bad USERNAME or
  // integrity, neither with MESSAGE-INTEGRITY; nothing for the rest.
  EXPECT_EQ(replies.e400, attack.sent(Hostile::kNoIntegrity));
  EXPECT_EQ(replies.e401,
            attack.sent(Hostile::kBadIntegrity) + attack.sent(Hostile::kWrongUsername));
  EXPECT_EQ(replies.with_integrity, 0u);
  EXPECT_EQ(replies.other, 0u);

  // The leg was not harmed: its own browser keys it now.
  fleet_->Start(target);
  EXPECT_TRUE(WaitKeyed("target", Clock::now(), 5000).has_value());
  EXPECT_EQ(Get("target")["legs"][0]["ice"]["selected"],
            daemon_->phone_ip(0) + ":42000");
  EXPECT_TRUE(media->Delete(*raw_).ok());
  EXPECT_TRUE(DeleteSessions(*raw_, std::vector<std::string>{"target", "other"}).ok());
}

// sluiced as configured by default: a leg's port hands the handshake thread
// at most [webrtc] handshake_max_pps (its peer's address keeping a reserve
// of the burst).
class DefaultHandshakeRate : public WebRtcAdversarialTest {
 protected:
  static void SetUpTestSuite() { StartDaemon(""); }
};

// A flood as fast as the attacker's sockets go at one port: the worker
// holds it to the leg's rate (handshake_rate), the handshake ring never
// fills, another call keys at once, running calls lose nothing.
TEST_F(DefaultHandshakeRate, AFloodAtOnePortIsHeldToTheLegsRate) {
  std::unique_ptr<MediaCalls> media = StartMediaCalls();
  ASSERT_NE(media, nullptr);
  const size_t target = MakeWebRtcCall("target", 42000, /*dtls_client=*/true);
  const size_t other = MakeWebRtcCall("other", 42002, /*dtls_client=*/false);
  ASSERT_FALSE(HasFailure());
  Attack attack(*daemon_, ForgerFor(target, replies_[0]), *LocalAddress(replies_[0]["legs"][0]));
  const json stats_before = Stats();
  media->Mark();

  std::atomic<bool> stop{false};
  const Clock::time_point flood_start = Clock::now();
  std::thread attacker([&] { attack.Blast(120000, 64, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Clock::time_point started = Clock::now();
  fleet_->Start(other);
  const std::optional<double> other_keyed_ms = WaitKeyed("other", started, 10000);
  attacker.join();
  const double flood_s = std::chrono::duration<double>(Clock::now() - flood_start).count();
  const MediaCallsResult lost = media->Stop();
  const json stats_after = Stats();
  const json leg = Get("target")["legs"][0];
  const uint64_t rate_drops = WorkerSum(stats_after, nullptr, "handshake_rate") -
                              WorkerSum(stats_before, nullptr, "handshake_rate");

  std::printf("flood: %llu datagrams in %.2f s, %llu dropped at the leg's rate, %llu reached "
              "the leg; the other call keyed in %.0f ms; media %llu sent, %llu lost\n",
              static_cast<unsigned long long>(attack.total()), flood_s,
              static_cast<unsigned long long>(rate_drops),
              static_cast<unsigned long long>(LegTotal(leg)), other_keyed_ms.value_or(-1),
              static_cast<unsigned long long>(lost.sent),
              static_cast<unsigned long long>(lost.lost));
  ASSERT_TRUE(other_keyed_ms.has_value());
  EXPECT_LE(*other_keyed_ms, kKeyedBoundMs);
  EXPECT_EQ(lost.lost, 0u);
  EXPECT_EQ(WorkerSum(stats_after, nullptr, "handshake_full"),
            WorkerSum(stats_before, nullptr, "handshake_full"));
  // At most a burst and 200 a second reached the leg; the rest was counted.
  EXPECT_LE(LegTotal(leg), 64 + static_cast<uint64_t>(200 * (flood_s + 0.1)));
  EXPECT_GT(LegTotal(leg), 0u);
  EXPECT_GT(rate_drops, attack.total() / 2);
  EXPECT_LE(rate_drops + LegTotal(leg), attack.total());
  EXPECT_TRUE(leg["ice"]["selected"].is_null());
  EXPECT_TRUE(media->Delete(*raw_).ok());
  EXPECT_TRUE(DeleteSessions(*raw_, std::vector<std::string>{"target", "other"}).ok());
}

// A keyed call under attack: strangers flood its port with nominating
// checks that do not authenticate, ClientHellos and garbage, and its own
// peer's address sends DTLS garbage, truncated records and a ClientHello
// between its media. The call keeps its peer and its keys, every media
// packet arrives in order, and the peer's consent checks are all answered.
TEST_F(DefaultHandshakeRate, AKeyedCallKeepsItsPeerKeysAndMediaUnderAttack) {
  const size_t k = MakeWebRtcCall("keyed", 42010, /*dtls_client=*/true);
  ASSERT_FALSE(HasFailure());
  fleet_->Start(k);
  ASSERT_TRUE(WaitKeyed("keyed", Clock::now(), 5000).has_value());
  std::optional<dtls::SrtpKeys> keys = fleet_->TakeKeys(k);
  ASSERT_TRUE(keys.has_value());
  auto srtp = LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&keys->send, 1}, {});
  ASSERT_TRUE(srtp.ok());
  Phone phone = daemon_->MakePhone(1, daemon_->phone_ip(1), kPlainPhonePort, 0);
  const std::string browser = daemon_->phone_ip(0) + ":42010";
  const json before = Get("keyed")["legs"][0];
  ASSERT_EQ(before["ice"]["selected"], browser);
  const uint64_t answered_before = fleet_->counters().responses_ok;
  Attack attack(*daemon_, ForgerFor(k, replies_[0]), *LocalAddress(replies_[0]["legs"][0]));

  std::atomic<bool> stop{false};
  std::thread attacker([&] { attack.Run(8000, 8, stop); });
  std::mt19937 rng(31);
  const Hostile garbage[] = {Hostile::kDtlsGarbage, Hostile::kTruncatedRecord,
                             Hostile::kClientHello};
  std::vector<std::vector<uint8_t>> sent;
  for (uint16_t i = 0; i < 100; ++i) {
    Phone p;  // an RTP packet of the browser's stream (ssrc 0x4242), never sent itself
    p.ssrc = 0x4242;
    std::vector<uint8_t> rtp = p.Rtp(i);
    sent.push_back(rtp);
    ASSERT_EQ((*srtp)->ProtectRtp(rtp), srtp_err_status_ok);
    fleet_->Send(k, rtp);
    fleet_->Send(k, attack.forger().Next(garbage[i % 3], rng));
    if (i % 10 == 0) fleet_->CheckAgain(k);
    fleet_->Poll(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  attacker.join();
  for (int i = 0; i < 20; ++i) fleet_->Poll(10);
  const std::vector<std::vector<uint8_t>> got = phone.Receive(300);
  const json after = Get("keyed")["legs"][0];

  EXPECT_EQ(got, sent) << got.size() << " of " << sent.size() << " media packets arrived";
  EXPECT_EQ(fleet_->counters().responses_ok - answered_before, 10u) << "consent checks";
  EXPECT_EQ(after["dtls"]["state"], "keyed") << after.dump();
  EXPECT_EQ(after["ice"]["selected"], browser);
  EXPECT_EQ(after["remote"], browser);
  EXPECT_EQ(after["counters"]["remote_changes"], before["counters"]["remote_changes"]);
  EXPECT_GT(Count(after["ice"]["dropped"], "bad_integrity"), 0u);
  EXPECT_GT(Count(after["dtls"]["dropped"], "unchecked_source"), 0u);
  EXPECT_TRUE(DeleteSessions(*raw_, std::vector<std::string>{"keyed"}).ok());
}

}  // namespace
}  // namespace sluice::testing
