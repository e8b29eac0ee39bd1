// [ha] with the ng front end, end to end: calls set up by ng offer/answer
// (SDES both ways, libsrtp2 phones) survive SIGKILL and a restart of
// sluiced, and the restarted sluiced knows their ng state: query answers,
// a re-INVITE re-keys both sides, an offer made before the crash is
// answered after it, delete ends a call. Redis holds none of their keys.
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "harness.h"
#include "ng_peer.h"
#include "redis_server.h"
#include "sluice/ng/handler.h"

namespace sluice::testing {
namespace {

using ::testing::HasSubstr;
constexpr char kPrefix[] = "sluice:hang:s:";
constexpr uint16_t kNgPort = 2231;

class HaNgTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LibsrtpPeer::Init();
    if (!RedisServer::Installed()) {
      skip_reason_ = "redis-server is not installed (scripts/setup-deps)";
      return;
    }
    redis_ = new RedisServer();
    if (!redis_->Start()) {
      skip_reason_ = "redis-server did not start";
      return;
    }
    const std::string kek = redis_->dir() + "/kek";
    std::string bytes(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), 32);
    std::ofstream(kek, std::ios::binary | std::ios::trunc) << bytes;
    chmod(kek.c_str(), 0600);
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "ha-ng";
    options.subnet_a = "10.212.1";
    options.subnet_b = "10.212.2";
    options.extra_config = absl::StrCat(
        "[media]\nport_min = 31000\nport_max = 31999\n[ng]\nlisten = \"127.0.0.1:", kNgPort,
        "\"\ndelete_delay_ms = 0\nallowed_sources = [\"127.0.0.1\"]\n[ha]\nredis = \"unix:",
        redis_->socket(), "\"\ninstance = \"hang\"\nkek_file = \"", kek,
        "\"\ncheckpoint_ms = 100\n");
    skip_reason_ = daemon_->Start(options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running());
    Connect();
  }
  void Connect() {
    ng_ = std::make_unique<NgClient>();
    ASSERT_TRUE(ng_->Open(daemon_->topology(), "relay", "127.0.0.1", kNgPort));
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }
  nlohmann::json Stats() { return control_.Call({{"op", "stats"}}); }
  // Waits (at most 10 s) until Redis has every change.
  bool WaitSynced() {
    for (int i = 0; i < 500; ++i) {
      const nlohmann::json s = Stats();
      if (s.contains("ha") && s["ha"]["connected"] == true && s["ha"]["backlog"] == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::string RedisRecord(const std::string& session) {
    return redis_->Command({"HGET", kPrefix + session, "record"}).value_or("");
  }

  // Offer from `a` with key ka, answer from `b` with kb: the phones armed
  // with the keys the replies carry. The ports Sluice gave each side.
  std::pair<SdpView, SdpView> OfferAnswer(const std::string& call, Phone& a, Phone& b,
                                          const std::string& ka, const std::string& kb,
                                          uint16_t port) {
    ng::Value reply =
        ng_->Call(NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), port, "RTP/SAVP", {ka})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    const SdpView to_b = ViewSdp(reply);
    reply = ng_->Call(NgAnswer(call, "tag-a", "tag-b",
                               PhoneSdp(daemon_->phone_ip(1), port + 2, "RTP/SAVP", {kb})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    const SdpView to_a = ViewSdp(reply);
    if (to_a.crypto.empty() || to_b.crypto.empty()) return {to_a, to_b};
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, ka, to_a.crypto[0]);
    Arm(b, kb, to_b.crypto[0]);
    keys_.insert(keys_.end(), {ka, kb, to_a.crypto[0], to_b.crypto[0]});
    return {to_a, to_b};
  }

  // Packets each way until one gets through both ways (the restart's ARP),
  // bounded; false when none did. What arrives must verify.
  static bool Through(Phone& a, Phone& b, int* bad) {
    bool got[2] = {false, false};
    for (int i = 0; i < 500 && !(got[0] && got[1]); ++i) {
      a.SendNext();
      b.SendNext();
      got[0] = !b.Receive(10, bad).empty() || got[0];
      got[1] = !a.Receive(0, bad).empty() || got[1];
    }
    a.Receive(100, bad);
    b.Receive(100, bad);
    return got[0] && got[1];
  }

  inline static RedisServer* redis_ = nullptr;
  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  std::unique_ptr<NgClient> ng_;
  ControlClient control_;
  std::vector<std::string> keys_;  // every SDES key of the calls
};

TEST_F(HaNgTest, NgCallsSurviveSigkillThenQueryReofferAnswerAndDelete) {
  const std::string call = "ng-ha-1@sbc.example", pending = "ng-ha-2@sbc.example";
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40100, 0x7100);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40102, 0x7200);
  const auto [to_a, to_b] = OfferAnswer(call, a, b, NewSdesKey(), NewSdesKey(), 40100);
  ASSERT_FALSE(to_a.crypto.empty() || to_b.crypto.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for both peers
  EXPECT_TRUE(Flows(a, b, 50));
  // A second call, offered and not yet answered at the crash.
  const std::string kc = NewSdesKey();
  ng::Value reply = ng_->Call(
      NgOffer(pending, "tag-c", PhoneSdp(daemon_->phone_ip(0), 40110, "RTP/SAVP", {kc})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_d = ViewSdp(reply);
  ASSERT_EQ(to_d.crypto.size(), 1u);
  ASSERT_TRUE(WaitSynced());
  EXPECT_THAT(RedisRecord(call), HasSubstr("\"ng\":{\"sealed\""));

  daemon_->Kill();
  for (int i = 0; i < 20; ++i) {  // into the void
    a.SendNext();
    b.SendNext();
  }
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  Connect();
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["ha"]["restored"], 2) << stats.dump();
  EXPECT_EQ(stats["ha"]["refused"]["corrupt"], 0) << stats.dump();

  // query: the call is known, with its tags and its one stream.
  reply = ng_->Call(NgCommand("query", call));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const ng::Value* streams = reply.Find("streams");
  ASSERT_TRUE(streams != nullptr && streams->is_list() && streams->as_list().size() == 1u);
  const ng::Value* legs = streams->as_list()[0].Find("legs");
  ASSERT_TRUE(legs != nullptr && legs->as_list().size() == 2u);
  EXPECT_EQ(legs->as_list()[0].Find("tag")->str(), "tag-a");
  EXPECT_EQ(legs->as_list()[1].Find("tag")->str(), "tag-b");
  reply = ng_->Call(NgCommand("list", ""));
  EXPECT_EQ(reply.Find("calls")->as_list().size(), 2u);

  // Media on the restored keys: every packet verifies.
  int bad = 0;
  ASSERT_TRUE(Through(a, b, &bad)) << "no packet through after the restart";
  EXPECT_EQ(bad, 0);
  EXPECT_TRUE(Flows(a, b, 50));

  // re-INVITE with new keys on both sides: Sluice re-keys both legs.
  const auto [to_a2, to_b2] = OfferAnswer(call, a, b, NewSdesKey(), NewSdesKey(), 40100);
  ASSERT_FALSE(to_a2.crypto.empty() || to_b2.crypto.empty());
  EXPECT_EQ(to_a2.port, to_a.port);
  EXPECT_EQ(to_b2.port, to_b.port);
  EXPECT_NE(to_a2.crypto[0], to_a.crypto[0]);
  EXPECT_NE(to_b2.crypto[0], to_b.crypto[0]);
  EXPECT_TRUE(Flows(a, b, 50));

  // The offer made before the crash, answered after it.
  Phone c = daemon_->MakePhone(0, daemon_->phone_ip(0), 40110, 0x7300);
  Phone d = daemon_->MakePhone(1, daemon_->phone_ip(1), 40112, 0x7400);
  const std::string kd = NewSdesKey();
  reply = ng_->Call(NgAnswer(pending, "tag-c", "tag-d",
                             PhoneSdp(daemon_->phone_ip(1), 40112, "RTP/SAVP", {kd})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_c = ViewSdp(reply);
  ASSERT_EQ(to_c.crypto.size(), 1u);
  c.relay = Addr(to_c.ip, to_c.port);
  d.relay = Addr(to_d.ip, to_d.port);
  Arm(c, kc, to_c.crypto[0]);
  Arm(d, kd, to_d.crypto[0]);
  keys_.insert(keys_.end(), {kc, kd, to_c.crypto[0], to_d.crypto[0]});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(Flows(c, d, 50));

  // Redis holds none of the calls' keys (nor their replies' SDP): no key
  // text, no key bytes.
  ASSERT_TRUE(WaitSynced());
  std::string everything;
  for (const std::string& s : {ng::SessionName(call, 0), ng::SessionName(pending, 0)}) {
    everything += RedisRecord(s) + redis_->Command({"HGET", kPrefix + s, "streams"}).value_or("");
  }
  ASSERT_THAT(everything, HasSubstr("\"ng\""));
  EXPECT_THAT(everything, ::testing::Not(HasSubstr("inline:")));
  EXPECT_THAT(everything, ::testing::Not(HasSubstr("tag-a")));  // the ng state is sealed whole
  for (const std::string& k : keys_) {
    const std::string b64 = k.substr(k.find("inline:") + 7, 40);
    std::string raw;
    ASSERT_TRUE(absl::Base64Unescape(b64, &raw));
    EXPECT_EQ(everything.find(b64), std::string::npos);
    EXPECT_EQ(everything.find(raw.substr(0, 16)), std::string::npos);
  }

  // delete ends both calls: sessions gone, Redis records gone.
  for (const std::string& id : {call, pending}) {
    reply = ng_->Call(NgCommand("delete", id));
    EXPECT_EQ(Result(reply), "ok");
    EXPECT_EQ(reply.Find("warning"), nullptr) << reply.Find("warning")->str();
  }
  EXPECT_EQ(Stats()["sessions"], 0);
  ASSERT_TRUE(WaitSynced());
  EXPECT_EQ(RedisRecord(ng::SessionName(call, 0)), "");
  EXPECT_EQ(Result(ng_->Call(NgCommand("query", call))), "error");
  if (HasFailure()) std::printf("%s\n", daemon_->Log().c_str());
}

}  // namespace
}  // namespace sluice::testing
