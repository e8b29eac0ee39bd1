// sluiced driven over the ng protocol end to end: the real daemon with its
// [ng] UDP listener, the SBC's side played by bencoded offer/answer requests
// on the daemon namespace's loopback, and phones in two more namespaces
// sending and receiving libsrtp2-protected RTP with the keys the rewritten
// SDP carries. Every packet is verified.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "ng_peer.h"

namespace sluice::testing {
namespace {

using ::testing::HasSubstr;

class NgRelayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LibsrtpPeer::Init();
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "ng-relay";
    options.subnet_a = "10.203.1";
    options.subnet_b = "10.203.2";
    options.ipv6_b = "fd00:203:2";
    options.extra_config = "[media]\nport_min = 31000\nport_max = 31999\n[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\n"
        "allowed_sources = [\"127.0.0.1\"]\n";
    skip_reason_ = daemon_->Start(options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running());
    ASSERT_TRUE(ng_.Open(daemon_->topology(), "relay", "127.0.0.1", 2223));
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  NgClient ng_;
  ControlClient control_;
};

// An IPv4 phone calls an IPv6 phone: the offer goes on with address-family
// IP6 (the answerer's leg on interface b's IPv6 address), the IPv6 phone's
// answer comes back to the IPv4 phone as IPv4, and SRTP flows both ways,
// every packet verified by the phones' libsrtp2.
TEST_F(NgRelayTest, Ipv4PhoneCallsIpv6Phone) {
  const std::string call = "ng-e2e-v4v6@sbc.example";
  const std::string ka = NewSdesKey(), kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40020, 0x4141);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip6(), 40022, 0x6161);

  ng::Value offer =
      NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), 40020, "RTP/SAVP", {ka}));
  offer.Set("rtpp-flags", "address-family=IP6 replace-origin");
  ng::Value reply = ng_.Call(offer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_b = ViewSdp(reply);
  EXPECT_EQ(to_b.ip, daemon_->relay_ip6());
  EXPECT_THAT(std::string(reply.Find("sdp")->str()),
              HasSubstr("IN IP6 " + daemon_->relay_ip6() + "\r\n"));
  ASSERT_EQ(to_b.crypto.size(), 1u);
  reply = ng_.Call(NgAnswer(call, "tag-a", "tag-b",
                            PhoneSdp(daemon_->phone_ip6(), 40022, "RTP/SAVP", {kb})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_a = ViewSdp(reply);
  EXPECT_EQ(to_a.ip, daemon_->relay_ip(0));
  ASSERT_EQ(to_a.crypto.size(), 1u);

  a.relay = Addr(to_a.ip, to_a.port);
  b.relay6 = Addr6(to_b.ip, to_b.port);
  Arm(a, ka, to_a.crypto[0]);
  Arm(b, kb, to_b.crypto[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP and ND for the peers
  ExchangeResult result = Exchange(a, b, 50);
  EXPECT_TRUE(result.Perfect()) << result.Describe();
  nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", call}});
  ASSERT_EQ(get["ok"], true) << get.dump();
  EXPECT_EQ(get["legs"][1]["remote"], "[" + daemon_->phone_ip6() + "]:40022") << get.dump();
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
}

TEST_F(NgRelayTest, SrtpCallReKeyedByAReOfferThenDeleted) {
  const std::string call = "ng-e2e-1@sbc.example";
  const std::string ka = NewSdesKey(), kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40000, 0x1111);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40002, 0x2222);

  ng::Value offer = NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), 40000, "RTP/SAVP", {ka}));
  ng::Value reply = ng_.Call(offer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_b = ViewSdp(reply);
  ASSERT_EQ(to_b.crypto.size(), 1u);  // one per offered suite
  ng::Value answer = NgAnswer(call, "tag-a", "tag-b",
                              PhoneSdp(daemon_->phone_ip(1), 40002, "RTP/SAVP", {kb}));
  reply = ng_.Call(answer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_a = ViewSdp(reply);
  ASSERT_EQ(to_a.crypto.size(), 1u);
  EXPECT_EQ(to_a.ip, daemon_->relay_ip(0));
  EXPECT_EQ(to_b.ip, daemon_->relay_ip(1));

  a.relay = Addr(to_a.ip, to_a.port);
  b.relay = Addr(to_b.ip, to_b.port);
  Arm(a, ka, to_a.crypto[0]);
  Arm(b, kb, to_b.crypto[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for both peers
  ExchangeResult first = Exchange(a, b, 50);
  EXPECT_TRUE(first.Perfect()) << first.Describe();

  // The same session through the native protocol (what sluicectl shows).
  nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", call}});
  ASSERT_EQ(get["ok"], true) << get.dump();
  EXPECT_EQ(get["legs"][0]["rx_suite"], "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(get["legs"][1]["tx_suite"], "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(get["legs"][0]["counters"]["rx_packets"], 50);
  EXPECT_THAT(get.dump(), ::testing::Not(HasSubstr("inline:")));

  // re-INVITE: new keys on both sides, fresh keys from Sluice.
  const std::string ka2 = NewSdesKey(), kb2 = NewSdesKey();
  reply = ng_.Call(NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), 40000, "RTP/SAVP", {ka2})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_b2 = ViewSdp(reply);
  reply = ng_.Call(NgAnswer(call, "tag-a", "tag-b",
                            PhoneSdp(daemon_->phone_ip(1), 40002, "RTP/SAVP", {kb2})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_a2 = ViewSdp(reply);
  EXPECT_EQ(to_a2.port, to_a.port);
  EXPECT_EQ(to_b2.port, to_b.port);
  EXPECT_NE(to_a2.crypto[0], to_a.crypto[0]);
  EXPECT_NE(to_b2.crypto[0], to_b.crypto[0]);
  Arm(a, ka2, to_a2.crypto[0]);
  Arm(b, kb2, to_b2.crypto[0]);
  ExchangeResult second = Exchange(a, b, 50);
  EXPECT_TRUE(second.Perfect()) << second.Describe();

  // Back to the first key: refused, and media keeps flowing on the current one.
  reply = ng_.Call(NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), 40000, "RTP/SAVP", {ka})));
  ASSERT_EQ(Result(reply), "ok");
  reply = ng_.Call(NgAnswer(call, "tag-a", "tag-b",
                            PhoneSdp(daemon_->phone_ip(1), 40002, "RTP/SAVP", {kb2})));
  EXPECT_EQ(Result(reply), "error");
  EXPECT_THAT(ErrorReason(reply), HasSubstr("key_reuse"));

  reply = ng_.Call(NgCommand("delete", call));
  EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
  get = control_.Call({{"op", "session.get"}, {"session", call}});
  EXPECT_EQ(get["error"]["code"], "not_found") << get.dump();
}

TEST_F(NgRelayTest, PlainTrunkBridgedToAnSrtpPhone) {
  const std::string call = "ng-e2e-plain";
  const std::string kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40010, 0x3333);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40012, 0x4444);
  ng::Value offer = NgOffer(call, "trunk", PhoneSdp(daemon_->phone_ip(0), 40010, "RTP/AVP", {}));
  offer.Set("transport-protocol", "RTP/SAVP");
  offer.Set("SDES", ng::Value(ng::Value::List{"only-AES_CM_128_HMAC_SHA1_80"}));
  ng::Value reply = ng_.Call(offer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_b = ViewSdp(reply);
  EXPECT_EQ(to_b.proto, "RTP/SAVP");
  ASSERT_EQ(to_b.crypto.size(), 1u);
  reply = ng_.Call(NgAnswer(call, "trunk", "phone",
                            PhoneSdp(daemon_->phone_ip(1), 40012, "RTP/SAVP", {kb})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  SdpView to_a = ViewSdp(reply);
  EXPECT_EQ(to_a.proto, "RTP/AVP");
  EXPECT_TRUE(to_a.crypto.empty());
  a.relay = Addr(to_a.ip, to_a.port);
  b.relay = Addr(to_b.ip, to_b.port);
  Arm(b, kb, to_b.crypto[0]);  // a stays plain
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExchangeResult r = Exchange(a, b, 50);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
}

TEST_F(NgRelayTest, RetransmittedOfferIsAnsweredFromTheCache) {
  ng::Value offer = NgOffer("ng-e2e-retx", "t", PhoneSdp(daemon_->phone_ip(0), 40020, "RTP/AVP", {}));
  const std::string first = ng_.Raw("retx-1", offer);
  const std::string again = ng_.Raw("retx-1", offer);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, again);
  EXPECT_THAT(first, HasSubstr("6:result2:ok"));
  EXPECT_THAT(ng_.RawText("no-dictionary"), ::testing::IsEmpty());  // no cookie: no reply
  EXPECT_THAT(ng_.RawText("c9 i1e"), HasSubstr("not a dictionary"));
  EXPECT_EQ(Result(ng_.Call(NgCommand("ping", ""))), "pong");  // still serving
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", "ng-e2e-retx"))), "ok");
}

// Another local process (here from 127.0.0.2, outside allowed_sources) gets
// no reply to anything and changes nothing: it can neither list, query,
// redirect nor delete a call.
TEST_F(NgRelayTest, ALocalClientNotAllowedGetsNoReplyAndChangesNothing) {
  const std::string call = "ng-e2e-stranger";
  ASSERT_EQ(Result(ng_.Call(
                NgOffer(call, "t", PhoneSdp(daemon_->phone_ip(0), 40030, "RTP/AVP", {})))),
            "ok");
  const ng::Value query_before = ng_.Call(NgCommand("query", call));
  ASSERT_EQ(Result(query_before), "ok");
  NgClient stranger;
  ASSERT_TRUE(stranger.Open(daemon_->topology(), "relay", "127.0.0.1", 2223, "127.0.0.2"));
  EXPECT_EQ(stranger.Raw("s1", NgCommand("list", "")), "");
  EXPECT_EQ(stranger.Raw("s2", NgCommand("query", call)), "");
  EXPECT_EQ(stranger.Raw("s3", NgOffer(call, "t", PhoneSdp("10.9.9.9", 40040, "RTP/AVP", {}))),
            "");
  EXPECT_EQ(stranger.Raw("s4", NgCommand("delete", call)), "");
  EXPECT_EQ(stranger.RawText("garbage"), "");
  // The call is as it was, and the refusals are counted.
  EXPECT_EQ(ng_.Call(NgCommand("query", call)), query_before);
  const ng::Value stats = ng_.Call(NgCommand("statistics", ""));
  const ng::Value* ng_stats = stats.Find("ng");
  ASSERT_NE(ng_stats, nullptr);
  ASSERT_NE(ng_stats->Find("refused"), nullptr);
  EXPECT_GE(ng_stats->Find("refused")->as_int(), 5);
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
}

// BYE lost: a call carries media, then nothing more comes, neither media
// nor a delete. With [media] timeout_s = 2 its session is deleted within a
// bounded time, the ng call is gone, and its ports (the range holds one per
// interface) are handed to the next call, which carries media.
class NgTimeoutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LibsrtpPeer::Init();
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "ng-timeout";
    options.subnet_a = "10.203.5";
    options.subnet_b = "10.203.6";
    options.extra_config =
        "[media]\nport_min = 31100\nport_max = 31101\nport_reuse_delay_s = 0\ntimeout_s = 2\n"
        "[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\nallowed_sources = [\"127.0.0.1\"]\n";
    skip_reason_ = daemon_->Start(options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running());
    ASSERT_TRUE(ng_.Open(daemon_->topology(), "relay", "127.0.0.1", 2223));
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }
  // An SRTP call from a (port 40100) to b (40102) that carries n packets
  // each way; its relay ports.
  std::pair<uint16_t, uint16_t> CallWithMedia(const std::string& call, uint32_t ssrc) {
    const std::string ka = NewSdesKey(), kb = NewSdesKey();
    Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40100, ssrc);
    Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40102, ssrc + 1);
    ng::Value reply =
        ng_.Call(NgOffer(call, "tag-a", PhoneSdp(daemon_->phone_ip(0), 40100, "RTP/SAVP", {ka})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    if (Result(reply) != "ok") return {0, 0};
    const SdpView to_b = ViewSdp(reply);
    reply = ng_.Call(NgAnswer(call, "tag-a", "tag-b",
                              PhoneSdp(daemon_->phone_ip(1), 40102, "RTP/SAVP", {kb})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    if (Result(reply) != "ok") return {0, 0};
    const SdpView to_a = ViewSdp(reply);
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, ka, to_a.crypto[0]);
    Arm(b, kb, to_b.crypto[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for both peers
    EXPECT_TRUE(Flows(a, b, 20));
    return {to_a.port, to_b.port};
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  NgClient ng_;
  ControlClient control_;
};

TEST_F(NgTimeoutTest, ByeLostTheCallTimesOutAndItsPortsAreReused) {
  const std::string call = "ng-bye-lost@sbc.example";
  const auto ports = CallWithMedia(call, 0x5151);
  ASSERT_NE(ports.first, 0);
  EXPECT_EQ(Result(ng_.Call(NgOffer("ng-no-room", "t",
                                    PhoneSdp(daemon_->phone_ip(0), 40110, "RTP/AVP", {})))),
            "error")
      << "the range has one port per interface, and the call holds it";
  // Media stops; no delete comes.
  const auto stopped = std::chrono::steady_clock::now();
  nlohmann::json get;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    get = control_.Call({{"op", "session.get"}, {"session", call}});
  } while (get["ok"] == true && std::chrono::steady_clock::now() - stopped < std::chrono::seconds(10));
  const auto took = std::chrono::steady_clock::now() - stopped;
  EXPECT_EQ(get["error"]["code"], "not_found") << get.dump();
  EXPECT_LT(took, std::chrono::seconds(5));  // 2 s, and a sweep (the exact times: unit tests)
  const nlohmann::json stats = control_.Call({{"op", "stats"}});
  EXPECT_EQ(stats["sessions_timed_out"]["timeout"], 1) << stats.dump();
  // The ng call went with it: a late query or BYE finds it gone.
  EXPECT_EQ(ErrorReason(ng_.Call(NgCommand("query", call))), "Unknown call-id");
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
  // The next call gets the very same ports, and media flows.
  const auto next = CallWithMedia("ng-after-timeout@sbc.example", 0x6161);
  EXPECT_EQ(next, ports);
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", "ng-after-timeout@sbc.example"))), "ok");
}

}  // namespace
}  // namespace sluice::testing
