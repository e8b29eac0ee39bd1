// The ng command handler on the real session manager (in-process flow
// table): offer/answer with SDES, re-offers that re-key, reused keys, plain
// to SRTP, SDES flags, warnings, delete/query/list/statistics, the same
// session seen through the native protocol, and WebRTC sections (at the end).
#include "sluice/ng/handler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eal_environment.h"
#include "sluice/control/media_handshakes.h"
#include "sluice/control/protocol.h"
#include "sluice/control/session_manager.h"
#include "sluice/dpdk/eal.h"
#include "sluice/session/flow_table.h"

namespace sluice::ng {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const auto* const kEnv = sluice::testing::AddEalEnvironment("ng_handler_test", 128);

constexpr char kKey1[] = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
constexpr char kKey2[] = "inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
constexpr char kKey3[] = "inline:KCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RF";
constexpr char kKey4[] = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
constexpr char kKey5[] = "inline:YW5vdGhlciBjYWxsIGhvbGRzIHRoaXMga2V5ISEh";

std::string Sdp(const std::string& ip, int port, const std::string& proto,
                const std::string& crypto_lines, const std::string& extra = "") {
  return "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
         std::to_string(port) + " " + proto + " 0 101\r\na=rtpmap:0 PCMU/8000\r\n" +
         crypto_lines + extra + "a=sendrecv\r\n";
}

std::string S(const Value* v) { return v && v->is_string() ? std::string(v->str()) : "<none>"; }

class HandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.media.port_min = 30000;
    config_.media.port_max = 30099;
    std::vector<control::InterfaceInfo> ifaces(2);
    ifaces[0].name = "a";
    ifaces[0].ipv4 = *packet::Prefix::Parse("10.0.1.1/24");
    ifaces[1].name = "b";
    ifaces[1].port_id = 1;
    ifaces[1].ipv4 = *packet::Prefix::Parse("10.0.2.1/24");
    ifaces[1].ipv6 = *packet::Prefix::Parse("fd00:2::1/64");  // dual stack; a is IPv4 only
    table_ = *session::FlowTable::Create("ng_flows_" + std::to_string(counter_++), 1024, 1);
    manager_ = std::make_unique<control::SessionManager>(config_, ifaces, *table_, 1, 1000000000);
    handler_ = std::make_unique<Handler>(*manager_, Immediate());
  }
  // Deletes take effect at once here; DeleteDelayDefersTheDelete has the
  // default.
  static HandlerOptions Immediate() {
    HandlerOptions options{"a"};
    options.delete_delay_ms = 0;
    return options;
  }
  void TearDown() override {
    handler_.reset();
    manager_.reset();
    table_.reset();
  }

  Value Request(const std::string& command, const std::string& call_id = "call-1@host") {
    Value r(Value::Dict{});
    r.Set("command", command);
    if (!call_id.empty()) r.Set("call-id", call_id);
    return r;
  }
  Value Offer(const std::string& sdp, const std::string& call_id = "call-1@host",
              const std::string& from_tag = "alice") {
    Value r = Request("offer", call_id);
    r.Set("from-tag", from_tag);
    r.Set("sdp", sdp);
    r.Set("flags", Value(Value::List{"trust-address"}));
    r.Set("direction", Value(Value::List{"a", "b"}));
    return r;
  }
  Value Answer(const std::string& sdp, const std::string& call_id = "call-1@host",
               const std::string& from_tag = "alice", const std::string& to_tag = "bob") {
    Value r = Offer(sdp, call_id, from_tag);
    r.Set("command", "answer");
    r.Set("to-tag", to_tag);
    return r;
  }
  // The parsed SDP of an ok reply.
  ng::Sdp ReplySdp(const Value& reply) {
    EXPECT_EQ(S(reply.Find("result")), "ok") << S(reply.Find("error-reason"));
    const Value* sdp = reply.Find("sdp");
    if (sdp == nullptr) return {};
    absl::StatusOr<ng::Sdp> parsed = ParseSdp(sdp->str());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : ng::Sdp{};
  }
  control::SessionInfo Get(const std::string& name) {
    absl::StatusOr<control::SessionInfo> info = manager_->Get(name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : control::SessionInfo{};
  }

  static inline int counter_ = 0;
  config::Config config_;
  std::unique_ptr<session::FlowTable> table_;
  std::unique_ptr<control::SessionManager> manager_;
  std::unique_ptr<Handler> handler_;
};

TEST_F(HandlerTest, PingPongs) {
  Value reply = handler_->Handle(Request("ping", ""));
  EXPECT_EQ(S(reply.Find("result")), "pong");
  EXPECT_EQ(reply.Find("warning"), nullptr);
}

TEST_F(HandlerTest, SrtpOfferAnswerBuildsOneSessionWithSluicesKeys) {
  const std::string offer_crypto =
      std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n" +
      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 " + kKey2 + "\r\n";
  Value reply = handler_->Handle(
      Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", offer_crypto,
                "a=ice-ufrag:x\r\na=candidate:1 1 UDP 1 10.0.1.2 4000 typ host\r\n")));
  ng::Sdp out = ReplySdp(reply);
  ASSERT_EQ(out.media.size(), 1u);
  control::SessionInfo info = Get("call-1@host");
  ASSERT_EQ(info.legs.size(), 2u);
  // The offer goes on toward the answerer from Sluice's leg b.
  EXPECT_EQ(out.connection->ToString(), "10.0.2.1");
  EXPECT_EQ(out.media[0].port, info.legs[1].local.port);
  EXPECT_EQ(out.media[0].proto, "RTP/SAVP");
  EXPECT_EQ(out.media[0].rtcp_port, info.legs[1].local.port + 1);
  ASSERT_EQ(out.media[0].crypto.size(), 2u);
  EXPECT_EQ(out.media[0].crypto[0].tag, 1u);
  EXPECT_EQ(out.media[0].crypto[0].suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(out.media[0].crypto[1].suite_name, "AES_CM_128_HMAC_SHA1_32");
  const std::string sent(S(reply.Find("sdp")));
  EXPECT_THAT(sent, Not(HasSubstr(kKey1 + 7)));  // the offerer's keys stay with Sluice
  EXPECT_THAT(sent, Not(HasSubstr(kKey2 + 7)));
  EXPECT_THAT(sent, Not(HasSubstr("a=ice-ufrag")));
  EXPECT_THAT(sent, Not(HasSubstr("a=candidate")));
  EXPECT_THAT(sent, HasSubstr("a=rtpmap:0 PCMU/8000\r\n"));
  EXPECT_EQ(info.legs[0].rx_suite, "AES_CM_128_HMAC_SHA1_80");  // the offerer's first crypto
  EXPECT_EQ(info.legs[0].remote->ToString(), "10.0.1.2:4000");
  EXPECT_EQ(info.legs[0].interface, "a");
  EXPECT_EQ(info.legs[1].interface, "b");
  EXPECT_EQ(info.legs[1].rx_suite, "plain");  // until the answer

  // The answerer takes Sluice's second suite.
  const std::string answer_crypto = std::string("a=crypto:2 AES_CM_128_HMAC_SHA1_32 ") + kKey3 + "\r\n";
  Value answered = handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", answer_crypto)));
  ng::Sdp back = ReplySdp(answered);
  ASSERT_EQ(back.media.size(), 1u);
  info = Get("call-1@host");
  EXPECT_EQ(back.connection->ToString(), "10.0.1.1");
  EXPECT_EQ(back.media[0].port, info.legs[0].local.port);
  ASSERT_EQ(back.media[0].crypto.size(), 1u);
  EXPECT_EQ(back.media[0].crypto[0].tag, 1u);  // the offerer's tag, Sluice's key
  EXPECT_EQ(back.media[0].crypto[0].suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_THAT(std::string(S(answered.Find("sdp"))), Not(HasSubstr(kKey3 + 7)));
  EXPECT_THAT(std::string(S(answered.Find("sdp"))), Not(HasSubstr(kKey1 + 7)));
  EXPECT_EQ(info.legs[0].tx_suite, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(info.legs[1].rx_suite, "AES_CM_128_HMAC_SHA1_32");
  EXPECT_EQ(info.legs[1].tx_suite, "AES_CM_128_HMAC_SHA1_32");
  EXPECT_EQ(info.legs[1].remote->ToString(), "10.0.2.2:5000");

  // The native protocol sees the same session, without keys.
  const std::string line = control::HandleLine(
      *manager_, R"({"id":1,"op":"session.get","session":"call-1@host"})");
  EXPECT_THAT(line, HasSubstr("\"ok\":true"));
  EXPECT_THAT(line, Not(HasSubstr("inline:")));

  Value deleted = handler_->Handle(Request("delete"));
  EXPECT_EQ(S(deleted.Find("result")), "ok");
  EXPECT_FALSE(manager_->Get("call-1@host").ok());
  EXPECT_EQ(S(handler_->Handle(Request("query")).Find("result")), "error");
  EXPECT_EQ(handler_->call_count(), 0u);
  // Deleting it again is no failure (a resent BYE), as with rtpengine.
  Value again = handler_->Handle(Request("delete"));
  EXPECT_EQ(S(again.Find("result")), "ok");
  EXPECT_EQ(S(again.Find("warning")), "Call-ID not found");
}

TEST_F(HandlerTest, ReOfferReKeysWithFreshKeysAndAReusedKeyIsRefused) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  const std::string c3 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey3 + "\r\n";
  const std::string c4 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey4 + "\r\n";
  ng::Sdp offer1 = ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1))));
  ng::Sdp answer1 = ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c2))));
  // Re-INVITE from the same side with a new key.
  ng::Sdp offer2 = ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c3))));
  ng::Sdp answer2 = ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c4))));
  ASSERT_EQ(offer2.media.size(), 1u);
  ASSERT_EQ(answer2.media.size(), 1u);
  EXPECT_EQ(offer2.media[0].port, offer1.media[0].port);  // same session, same ports
  EXPECT_EQ(answer2.media[0].port, answer1.media[0].port);
  EXPECT_NE(offer2.media[0].crypto[0].value, offer1.media[0].crypto[0].value);  // fresh keys
  EXPECT_NE(answer2.media[0].crypto[0].value, answer1.media[0].crypto[0].value);
  EXPECT_EQ(manager_->session_count(), 1u);

  // A re-offer that repeats the key in use is no re-key and no reuse.
  Value same = handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c3)));
  EXPECT_EQ(S(same.Find("result")), "ok");
  EXPECT_EQ(S(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c4))).Find("result")), "ok");

  // Going back to the first key is a two-time pad: refused.
  ASSERT_EQ(S(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1))).Find("result")), "ok");
  Value refused = handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c4)));
  EXPECT_EQ(S(refused.Find("result")), "error");
  EXPECT_THAT(S(refused.Find("error-reason")), HasSubstr("key_reuse"));
  EXPECT_THAT(S(refused.Find("error-reason")), Not(HasSubstr("inline")));

  // A re-INVITE from the other side (its tag as from-tag) re-keys too.
  ng::Sdp offer3 = ReplySdp(handler_->Handle(
      Offer(Sdp("10.0.2.2", 5000, "RTP/SAVP",
                "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:lpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKz\r\n"),
            "call-1@host", "bob")));
  ASSERT_EQ(offer3.media.size(), 1u);
  EXPECT_EQ(offer3.media[0].port, answer1.media[0].port);  // toward alice: leg a
  EXPECT_EQ(offer3.connection->ToString(), "10.0.1.1");
}

TEST_F(HandlerTest, PlainTrunkBridgesToSrtpWithTheSuitesTheFlagsAllow) {
  Value offer = Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", "", "a=rtcp-mux\r\n"));
  offer.Set("transport-protocol", "RTP/SAVP");
  offer.Set("SDES", Value(Value::List{"no-AES_CM_128_HMAC_SHA1_32", "no-AEAD_AES_256_GCM", "pad"}));
  Value reply = handler_->Handle(offer);
  ng::Sdp out = ReplySdp(reply);
  ASSERT_EQ(out.media.size(), 1u);
  EXPECT_EQ(out.media[0].proto, "RTP/SAVP");
  EXPECT_TRUE(out.media[0].rtcp_mux);
  EXPECT_FALSE(out.media[0].rtcp_port.has_value());
  ASSERT_EQ(out.media[0].crypto.size(), 4u);  // Sluice's six defaults less the two refused
  EXPECT_EQ(out.media[0].crypto[0].suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(out.media[0].crypto[1].suite_name, "AES_256_CM_HMAC_SHA1_80");
  EXPECT_EQ(out.media[0].crypto[2].suite_name, "AES_256_CM_HMAC_SHA1_32");
  EXPECT_EQ(out.media[0].crypto[3].suite_name, "AEAD_AES_128_GCM");
  EXPECT_EQ(out.media[0].crypto[3].tag, 4u);
  EXPECT_THAT(S(reply.Find("warning")), HasSubstr("SDES flags ignored: pad"));
  control::SessionInfo info = Get("call-1@host");
  EXPECT_EQ(info.legs[0].rx_suite, "plain");
  EXPECT_EQ(info.legs[0].rtcp, control::RtcpMode::kMux);

  Value answer = Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP",
                            std::string("a=crypto:2 AES_256_CM_HMAC_SHA1_80 ") +
                                "inline:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkQ==\r\n",
                            "a=rtcp-mux\r\n"));
  ng::Sdp back = ReplySdp(handler_->Handle(answer));
  ASSERT_EQ(back.media.size(), 1u);
  EXPECT_EQ(back.media[0].proto, "RTP/AVP");  // the trunk's profile, no keys
  EXPECT_TRUE(back.media[0].crypto.empty());
  info = Get("call-1@host");
  EXPECT_EQ(info.legs[0].tx_suite, "plain");
  EXPECT_EQ(info.legs[1].rx_suite, "AES_256_CM_HMAC_SHA1_80");
  EXPECT_EQ(info.legs[1].tx_suite, "AES_256_CM_HMAC_SHA1_80");
}

TEST_F(HandlerTest, DisabledSectionsStayDisabledAndGetNoSession) {
  const std::string sdp = Sdp("10.0.1.2", 4000, "RTP/AVP", "") + "m=video 0 RTP/AVP 96\r\n";
  ng::Sdp out = ReplySdp(handler_->Handle(Offer(sdp)));
  ASSERT_EQ(out.media.size(), 2u);
  EXPECT_TRUE(out.media[1].disabled());
  EXPECT_EQ(manager_->session_count(), 1u);
  EXPECT_FALSE(manager_->Get(SessionName("call-1@host", 1)).ok());
  // The answerer may also refuse a section: it then stays refused for the offerer.
  const std::string answer = Sdp("10.0.2.2", 0, "RTP/AVP", "") + "m=video 0 RTP/AVP 96\r\n";
  ng::Sdp back = ReplySdp(handler_->Handle(Answer(answer)));
  ASSERT_EQ(back.media.size(), 2u);
  EXPECT_TRUE(back.media[0].disabled());
}

TEST_F(HandlerTest, UnknownKeysAndFlagsAreWarningsAndErrorsAreReplies) {
  Value offer = Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""));
  offer.Set("flags", Value(Value::List{"trust-address", "loop-protect"}));
  offer.Set("record-call", "yes");
  Value reply = handler_->Handle(offer);
  EXPECT_EQ(S(reply.Find("result")), "ok");
  EXPECT_THAT(S(reply.Find("warning")), HasSubstr("unknown keys ignored: record-call"));
  EXPECT_THAT(S(reply.Find("warning")), HasSubstr("unknown flags ignored: loop-protect"));

  EXPECT_EQ(S(handler_->Handle(Request("bogus")).Find("error-reason")), "unknown command \"bogus\"");
  EXPECT_EQ(S(handler_->Handle(Value("x")).Find("result")), "error");
  Value no_sdp = Request("offer", "c2");
  no_sdp.Set("from-tag", "t");
  EXPECT_EQ(S(handler_->Handle(no_sdp).Find("error-reason")), "offer: no sdp");
  Value bad_sdp = Offer("v=1\r\n", "c3");
  EXPECT_THAT(S(handler_->Handle(bad_sdp).Find("error-reason")), HasSubstr("sdp: line 1"));
  Value dtls = Offer(Sdp("10.0.1.2", 4000, "UDP/TLS/RTP/SAVPF", ""), "c4");
  EXPECT_THAT(S(handler_->Handle(dtls).Find("error-reason")),
              HasSubstr("UDP/TLS/RTP/SAVPF without a=fingerprint"));
  Value dtls_fp = Offer(Sdp("10.0.1.2", 4000, "UDP/TLS/RTP/SAVPF", "",
                            "a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n"), "c4");
  // Without a handshake thread (sluiced always has one) WebRTC legs are refused.
  EXPECT_THAT(S(handler_->Handle(dtls_fp).Find("error-reason")),
              HasSubstr("WebRTC legs are not available"));
  Value other = Offer(Sdp("10.0.1.2", 4000, "TCP/MRCPv2", ""), "c4");
  EXPECT_THAT(S(handler_->Handle(other).Find("error-reason")), HasSubstr("not relayed by Sluice"));
  Value no_crypto = Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", ""), "c5");
  EXPECT_THAT(S(handler_->Handle(no_crypto).Find("error-reason")),
              HasSubstr("no a=crypto line Sluice supports"));
  EXPECT_EQ(S(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""), "nope")).Find("error-reason")),
            "Unknown call-id");
  Value wrong_iface = Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""), "c6");
  wrong_iface.Set("direction", Value(Value::List{"a", "zz"}));
  EXPECT_THAT(S(handler_->Handle(wrong_iface).Find("error-reason")), HasSubstr("unknown interface"));
  // Nothing was left behind by the failures.
  EXPECT_EQ(manager_->session_count(), 1u);
  EXPECT_EQ(handler_->call_count(), 1u);
}

TEST_F(HandlerTest, ListQueryAndStatistics) {
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.3", 4002, "RTP/AVP", ""), "call/2 with spaces")));
  Value list = handler_->Handle(Request("list", ""));
  ASSERT_TRUE(list.Find("calls")->is_list());
  EXPECT_EQ(list.Find("calls")->as_list().size(), 2u);
  // A call-id a session name cannot hold gets a digest name.
  EXPECT_THAT(SessionName("call/2 with spaces", 0), ::testing::StartsWith("ng-"));
  EXPECT_TRUE(manager_->Get(SessionName("call/2 with spaces", 0)).ok());
  Value query = handler_->Handle(Request("query"));
  EXPECT_EQ(S(query.Find("result")), "ok");
  ASSERT_EQ(query.Find("streams")->as_list().size(), 1u);
  EXPECT_EQ(query.Find("totals")->Find("RTP")->Find("packets")->as_int(), 0);
  Value stats = handler_->Handle(Request("statistics", ""));
  EXPECT_EQ(stats.Find("statistics")->Find("currentstatistics")->Find("sessionsown")->as_int(), 2);
}

// An answer is all or nothing: when the answerer's half would be refused,
// the offerer's half of the same answer is not applied either.
TEST_F(HandlerTest, AnAnswerWhoseSecondHalfFailsChangesNothing) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  const std::string c3 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey3 + "\r\n";
  const std::string c4 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey4 + "\r\n";
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1))));
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c2))));
  // A re-offer that moves the offerer and re-keys it.
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.3", 4002, "RTP/SAVP", c3))));
  const std::string session = SessionName("call-1@host", 0);
  const Value query_before = handler_->Handle(Request("query"));
  const std::string remote_a = Get(session).legs[0].remote->ToString();
  ASSERT_EQ(remote_a, "10.0.1.2:4000");

  // The answerer's key repeats the offerer's first key: refused.
  Value reused = handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c1)));
  EXPECT_EQ(S(reused.Find("result")), "error");
  EXPECT_THAT(S(reused.Find("error-reason")), HasSubstr("key_reuse"));
  EXPECT_THAT(S(reused.Find("error-reason")), HasSubstr("answerer"));
  // The answerer moves to an IPv6 address on an IPv4 leg: refused.
  std::string v6 = Sdp("10.0.2.2", 5000, "RTP/SAVP", c4);
  v6.replace(v6.find("c=IN IP4 10.0.2.2"), 17, "c=IN IP6 fd00::2");
  Value family = handler_->Handle(Answer(v6));
  EXPECT_EQ(S(family.Find("result")), "error");
  EXPECT_THAT(S(family.Find("error-reason")), HasSubstr("address family"));
  // The answerer's key is another call's: refused by the process-wide
  // registry before the offerer's half is applied.
  const std::string c5 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey5 + "\r\n";
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.9", 4010, "RTP/SAVP", c5), "call-2@host")));
  Value elsewhere = handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c5)));
  EXPECT_EQ(S(elsewhere.Find("result")), "error");
  EXPECT_THAT(S(elsewhere.Find("error-reason")), HasSubstr("key_reuse"));

  // None touched the offerer's leg: media still goes to the old address.
  EXPECT_EQ(Get(session).legs[0].remote->ToString(), remote_a);
  EXPECT_EQ(Get(session).legs[1].remote->ToString(), "10.0.2.2:5000");
  EXPECT_EQ(handler_->Handle(Request("query")), query_before);
  // The offer still waits, and a good answer applies both halves.
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.4", 5002, "RTP/SAVP", c4))));
  EXPECT_EQ(Get(session).legs[0].remote->ToString(), "10.0.1.3:4002");
  EXPECT_EQ(Get(session).legs[1].remote->ToString(), "10.0.2.4:5002");
}

TEST_F(HandlerTest, UnauthenticatedSuitesAreNeitherAcceptedNorOfferedUnlessAllowed) {
  const std::string null_auth =
      std::string("a=crypto:1 AES_CM_128_NULL_AUTH ") + kKey1 + "\r\n";
  Value only_null = handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", null_auth)));
  EXPECT_EQ(S(only_null.Find("result")), "error");
  EXPECT_THAT(S(only_null.Find("error-reason")), HasSubstr("allow_null_auth"));
  EXPECT_EQ(manager_->session_count(), 0u);
  EXPECT_EQ(handler_->call_count(), 0u);

  // Listed beside an authenticated suite: that one is taken, and NULL_AUTH
  // is not passed on to the answerer.
  const std::string both =
      null_auth + "a=crypto:2 AES_CM_128_HMAC_SHA1_80 " + kKey2 + "\r\n";
  ng::Sdp out = ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", both))));
  ASSERT_EQ(out.media.size(), 1u);
  ASSERT_EQ(out.media[0].crypto.size(), 1u);
  EXPECT_EQ(out.media[0].crypto[0].suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(Get(SessionName("call-1@host", 0)).legs[0].rx_suite, "AES_CM_128_HMAC_SHA1_80");

  // No SDES flag turns it on for a plain offer either.
  Value plain = Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""), "call-2");
  plain.Set("transport-protocol", "RTP/SAVP");
  plain.Set("SDES", Value(Value::List{"only-AES_CM_128_NULL_AUTH"}));
  EXPECT_THAT(S(handler_->Handle(plain).Find("error-reason")), HasSubstr("leave no suite"));

  // Allowed by the configuration, it is accepted and offered.
  HandlerOptions options = Immediate();
  options.allow_null_auth = true;
  handler_ = std::make_unique<Handler>(*manager_, options);
  ng::Sdp allowed =
      ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", null_auth), "call-3")));
  ASSERT_EQ(allowed.media.size(), 1u);
  ASSERT_EQ(allowed.media[0].crypto.size(), 1u);
  EXPECT_EQ(allowed.media[0].crypto[0].suite_name, "AES_CM_128_NULL_AUTH");
}

TEST_F(HandlerTest, CallsAreBoundedAndUnansweredOffersExpire) {
  uint64_t now = 1000;
  HandlerOptions options = Immediate();
  options.max_calls = 2;
  options.offer_timeout_ms = 60000;
  options.now_ms = [&now] { return now; };
  handler_ = std::make_unique<Handler>(*manager_, options);
  // Every port 0: a call with no session at all still counts.
  const std::string held = Sdp("10.0.1.2", 0, "RTP/AVP", "");
  EXPECT_EQ(S(handler_->Handle(Offer(held, "zero-1")).Find("result")), "ok");
  EXPECT_EQ(S(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""), "live")).Find("result")),
            "ok");
  EXPECT_EQ(handler_->call_count(), 2u);
  EXPECT_EQ(manager_->session_count(), 1u);
  Value refused = handler_->Handle(Offer(held, "zero-2"));
  EXPECT_EQ(S(refused.Find("result")), "error");
  // rtpengine's exact words, which Kamailio matches to try its next node.
  EXPECT_EQ(S(refused.Find("error-reason")), "Parallel session limit reached");
  EXPECT_THAT(S(refused.Find("warning")), HasSubstr("max_calls"));
  EXPECT_EQ(handler_->call_count(), 2u);
  // A controller that supports rtpengine's "load limit" is told so, and
  // tries the next relay of its set.
  Value limited = Offer(held, "zero-2");
  limited.Set("supports", Value(Value::List{"load limit"}));
  refused = handler_->Handle(limited);
  EXPECT_EQ(S(refused.Find("result")), "load limit");
  EXPECT_THAT(S(refused.Find("message")), HasSubstr("Parallel session limit reached"));
  EXPECT_EQ(refused.Find("sdp"), nullptr);
  EXPECT_EQ(handler_->call_count(), 2u);
  // A re-offer of a call that exists is no new call.
  EXPECT_EQ(S(handler_->Handle(Offer(held, "zero-1")).Find("result")), "ok");

  // "live" is answered; "zero-1" never is.
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""), "live")));
  now += 59999;
  handler_->ExpireUnanswered();
  EXPECT_EQ(handler_->call_count(), 2u);
  now += 1;
  handler_->ExpireUnanswered();
  EXPECT_EQ(handler_->call_count(), 1u);
  EXPECT_EQ(manager_->session_count(), 1u);
  EXPECT_EQ(S(handler_->Handle(Offer(held, "zero-2")).Find("result")), "ok");

  // An unanswered call with sessions loses them when it expires.
  handler_->Handle(Request("delete", "zero-2"));
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4002, "RTP/AVP", ""), "ringing")));
  EXPECT_EQ(manager_->session_count(), 2u);
  now += 60000;
  EXPECT_EQ(S(handler_->Handle(Request("ping", "")).Find("result")), "pong");
  EXPECT_EQ(handler_->call_count(), 1u);
  EXPECT_EQ(manager_->session_count(), 1u);
  EXPECT_EQ(S(handler_->Handle(Request("query", "live")).Find("result")), "ok");
}

// rtpengine_manage sends an answer for a 183 with SDP and again for the
// 200: the same SDP changes nothing and gets the same reply; a changed one
// re-targets and re-keys the answerer's leg, and the offerer keeps its
// port and key.
TEST_F(HandlerTest, RepeatedAnswerIsIdempotentAndAChangedOneReKeys) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1))));
  const std::string early =
      Sdp("10.0.2.2", 5000, "RTP/SAVP", std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey3 + "\r\n");
  Value first = handler_->Handle(Answer(early));
  ng::Sdp back = ReplySdp(first);
  const control::SessionInfo before = Get("call-1@host");
  Value second = handler_->Handle(Answer(early));
  EXPECT_EQ(S(second.Find("sdp")), S(first.Find("sdp")));
  EXPECT_EQ(second.Find("warning"), nullptr);
  const control::SessionInfo after = Get("call-1@host");
  EXPECT_EQ(after.legs[1].remote->ToString(), "10.0.2.2:5000");
  EXPECT_EQ(after.legs[0].local.port, before.legs[0].local.port);
  EXPECT_EQ(manager_->session_count(), 1u);

  // The 200 brings a new key and port from the answerer.
  const std::string final_sdp =
      Sdp("10.0.2.2", 5002, "RTP/SAVP", std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey4 + "\r\n");
  Value changed = handler_->Handle(Answer(final_sdp));
  ng::Sdp again = ReplySdp(changed);
  ASSERT_EQ(again.media.size(), 1u);
  EXPECT_EQ(again.media[0].port, back.media[0].port);
  ASSERT_EQ(again.media[0].crypto.size(), 1u);
  EXPECT_EQ(again.media[0].crypto[0].value, back.media[0].crypto[0].value);  // no new key toward the caller
  EXPECT_EQ(Get("call-1@host").legs[1].remote->ToString(), "10.0.2.2:5002");
  EXPECT_EQ(manager_->session_count(), 1u);
}

// A retransmitted or re-sent INVITE with the same SDP: the same reply, the
// same ports and keys, no second session.
TEST_F(HandlerTest, RepeatedOfferIsIdempotent) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string offer = Sdp("10.0.1.2", 4000, "RTP/SAVP", c1);
  Value first = handler_->Handle(Offer(offer));
  ReplySdp(first);
  Value second = handler_->Handle(Offer(offer));
  EXPECT_EQ(S(second.Find("sdp")), S(first.Find("sdp")));
  EXPECT_EQ(manager_->session_count(), 1u);
  // The answer to it still goes through, once.
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP",
                                       std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey3 + "\r\n"))));
  // A changed offer is a re-offer with fresh keys toward the answerer.
  Value third = handler_->Handle(Offer(Sdp("10.0.1.2", 4002, "RTP/SAVP", c1)));
  ng::Sdp out = ReplySdp(third);
  ASSERT_EQ(out.media.size(), 1u);
  EXPECT_NE(S(third.Find("sdp")), S(first.Find("sdp")));
  EXPECT_EQ(manager_->session_count(), 1u);
}

// A proxy that forks and offers per branch (Kamailio's via-branch): each
// branch gets its own sessions; both ring with early media; the caller's
// media goes to the branch whose answer it got last; a delete with the
// loser's to-tag frees its sessions only.
TEST_F(HandlerTest, ForkedBranchesHaveTheirOwnLegsAndTheLoserIsFreed) {
  const std::string offer = Sdp("10.0.1.2", 4000, "RTP/AVP", "");
  Value o1 = Offer(offer);
  o1.Set("via-branch", "z9hG4bK-1");
  Value o2 = Offer(offer);
  o2.Set("via-branch", "z9hG4bK-2");
  ng::Sdp to1 = ReplySdp(handler_->Handle(o1));
  ng::Sdp to2 = ReplySdp(handler_->Handle(o2));
  ASSERT_EQ(manager_->session_count(), 2u);
  EXPECT_NE(to1.media[0].port, to2.media[0].port);  // each branch its own port toward its callee

  Value a1 = Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""), "call-1@host", "alice", "bob-1");
  a1.Set("via-branch", "z9hG4bK-1");
  Value a2 = Answer(Sdp("10.0.2.3", 5002, "RTP/AVP", ""), "call-1@host", "alice", "bob-2");
  a2.Set("via-branch", "z9hG4bK-2");
  ng::Sdp early1 = ReplySdp(handler_->Handle(a1));
  ng::Sdp early2 = ReplySdp(handler_->Handle(a2));
  EXPECT_NE(early1.media[0].port, early2.media[0].port);
  const control::SessionInfo b1 = Get("call-1@host");
  const control::SessionInfo b2 = Get("call-1@host:b1");
  EXPECT_EQ(b1.legs[1].remote->ToString(), "10.0.2.2:5000");
  EXPECT_EQ(b2.legs[1].remote->ToString(), "10.0.2.3:5002");
  EXPECT_EQ(early1.media[0].port, b1.legs[0].local.port);
  EXPECT_EQ(early2.media[0].port, b2.legs[0].local.port);

  // bob-1 answers 200 (the same SDP again, without the via-branch); bob-2 is cancelled.
  Value final1 = Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""), "call-1@host", "alice", "bob-1");
  EXPECT_EQ(ReplySdp(handler_->Handle(final1)).media[0].port, b1.legs[0].local.port);
  Value cancel = Request("delete");
  cancel.Set("from-tag", "alice");
  cancel.Set("to-tag", "bob-2");
  EXPECT_EQ(S(handler_->Handle(cancel).Find("result")), "ok");
  EXPECT_FALSE(manager_->Get("call-1@host:b1").ok());
  EXPECT_EQ(Get("call-1@host").legs[1].remote->ToString(), "10.0.2.2:5000");
  EXPECT_EQ(handler_->call_count(), 1u);

  // The BYE deletes the call with its last branch.
  Value bye = Request("delete");
  bye.Set("from-tag", "alice");
  bye.Set("to-tag", "bob-1");
  EXPECT_EQ(S(handler_->Handle(bye).Find("result")), "ok");
  EXPECT_EQ(manager_->session_count(), 0u);
  EXPECT_EQ(handler_->call_count(), 0u);
}

// Forks behind one offer share its legs: a second to-tag's answer
// re-targets them, and deleting the earlier to-tag frees nothing.
TEST_F(HandlerTest, ForksBehindOneOfferShareItsLegs) {
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(
      Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""), "call-1@host", "alice", "bob-1")));
  ReplySdp(handler_->Handle(
      Answer(Sdp("10.0.2.3", 5002, "RTP/AVP", ""), "call-1@host", "alice", "bob-2")));
  EXPECT_EQ(Get("call-1@host").legs[1].remote->ToString(), "10.0.2.3:5002");
  Value cancel = Request("delete");
  cancel.Set("from-tag", "alice");
  cancel.Set("to-tag", "bob-1");
  EXPECT_EQ(S(handler_->Handle(cancel).Find("result")), "ok");
  EXPECT_EQ(Get("call-1@host").legs[1].remote->ToString(), "10.0.2.3:5002");
  // A tag the call never saw: a warning, or an error with "fatal".
  cancel.Set("flags", Value(Value::List{"fatal"}));
  EXPECT_EQ(S(handler_->Handle(cancel).Find("result")), "error");
  EXPECT_EQ(manager_->session_count(), 1u);
}

// "delete-delay" keeps a deleted call until it passes.
TEST_F(HandlerTest, DeleteDelayDefersTheDelete) {
  uint64_t now = 1000;
  HandlerOptions options{"a"};
  options.now_ms = [&now] { return now; };
  handler_ = std::make_unique<Handler>(*manager_, options);
  // Without the key, rtpengine's 30 s.
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  EXPECT_EQ(S(handler_->Handle(Request("delete")).Find("result")), "ok");
  now += 29999;
  handler_->Handle(Request("ping", ""));
  EXPECT_EQ(manager_->session_count(), 1u);
  now += 1;
  handler_->Handle(Request("ping", ""));
  EXPECT_EQ(manager_->session_count(), 0u);
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  Value del = Request("delete");
  del.Set("delete-delay", int64_t{5});
  EXPECT_EQ(S(handler_->Handle(del).Find("result")), "ok");
  EXPECT_EQ(manager_->session_count(), 1u);
  now += 5000;
  handler_->Handle(Request("ping", ""));
  EXPECT_EQ(manager_->session_count(), 0u);
  EXPECT_EQ(handler_->call_count(), 0u);
  del.Set("delete-delay", "soon");
  EXPECT_THAT(S(handler_->Handle(del).Find("error-reason")), HasSubstr("delete-delay"));
}

// The string form of the flags drives the same request as the keys; what
// Sluice does not do is a warning, a malformed flag an error naming it.
TEST_F(HandlerTest, RtppFlagsStringActsAsTheKeys) {
  Value offer = Request("offer");
  offer.Set("from-tag", "alice");
  offer.Set("sdp", Sdp("10.0.1.2", 4000, "RTP/AVP", ""));
  offer.Set("rtpp-flags", "trust-address direction=a direction=b transport-protocol=RTP/SAVP "
                          "SDES-no-AES_CM_128_HMAC_SHA1_32 loop-protect");
  Value reply = handler_->Handle(offer);
  ng::Sdp out = ReplySdp(reply);
  ASSERT_EQ(out.media.size(), 1u);
  EXPECT_EQ(out.media[0].proto, "RTP/SAVP");
  for (const SdpCrypto& c : out.media[0].crypto) EXPECT_NE(c.suite_name, "AES_CM_128_HMAC_SHA1_32");
  EXPECT_FALSE(out.media[0].crypto.empty());
  EXPECT_THAT(S(reply.Find("warning")), HasSubstr("loop-protect"));
  const control::SessionInfo info = Get("call-1@host");
  EXPECT_EQ(info.legs[1].interface, "b");
  EXPECT_EQ(info.legs[0].remote->ToString(), "10.0.1.2:4000");

  Value bad = Request("offer", "call-2");
  bad.Set("from-tag", "alice");
  bad.Set("sdp", Sdp("10.0.1.2", 4002, "RTP/AVP", ""));
  bad.Set("rtpp-flags", "trust-address ICE=");
  Value refused = handler_->Handle(bad);
  EXPECT_EQ(S(refused.Find("result")), "error");
  EXPECT_THAT(S(refused.Find("error-reason")), HasSubstr("\"ICE=\""));
  EXPECT_EQ(handler_->call_count(), 1u);
}

// As rtpengine: media goes to the SDP's address unless "SIP source
// address" says to use where the SIP message came from ("received-from").
TEST_F(HandlerTest, SdpAddressIsTrustedUnlessSipSourceAddress) {
  Value offer = Request("offer");
  offer.Set("from-tag", "alice");
  offer.Set("sdp", Sdp("10.0.1.2", 4000, "RTP/AVP", ""));
  offer.Set("direction", Value(Value::List{"a", "b"}));
  offer.Set("received-from", Value(Value::List{"IP4", "10.0.1.9"}));
  ReplySdp(handler_->Handle(offer));
  EXPECT_EQ(Get("call-1@host").legs[0].remote->ToString(), "10.0.1.2:4000");

  offer.Set("call-id", "call-2");
  offer.Set("flags", Value(Value::List{"SIP source address"}));
  ReplySdp(handler_->Handle(offer));
  EXPECT_EQ(Get("call-2").legs[0].remote->ToString(), "10.0.1.9:4000");
}

// Kamailio's $rtpstat reads totals.RTP and totals.RTCP of a query: what
// the legs received, RTCP apart from RTP (the native session.get counts
// both in rx_packets, and the RTCP among them in rx_rtcp_packets).
TEST_F(HandlerTest, QueryHasRtpAndRtcpTotals) {
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  const session::FlowKey key = session::FlowKey::From(Get("call-1@host").legs[0].local);
  session::FlowRef ref{};
  table_->LookupBulk(&key, 1, &ref);
  ASSERT_NE(ref.flow, nullptr);
  using session::FlowCounters;
  FlowCounters& c = ref.flow->counters;  // as the worker counts 3 RTP and 1 RTCP
  FlowCounters::Add(c.rx_packets[FlowCounters::kRtp], 3);
  FlowCounters::Add(c.rx_bytes[FlowCounters::kRtp], 3 * 172);
  FlowCounters::Add(c.rx_packets[FlowCounters::kRtcp], 1);
  FlowCounters::Add(c.rx_bytes[FlowCounters::kRtcp], 32);
  Value reply = handler_->Handle(Request("query"));
  const Value* totals = reply.Find("totals");
  ASSERT_NE(totals, nullptr);
  for (const char* kind : {"RTP", "RTCP"}) {
    const Value* t = totals->Find(kind);
    ASSERT_NE(t, nullptr) << kind;
    for (const char* key : {"packets", "bytes", "errors"}) {
      ASSERT_NE(t->Find(key), nullptr) << kind << " " << key;
      EXPECT_TRUE(t->Find(key)->is_int());
    }
  }
  EXPECT_EQ(totals->Find("RTP")->Find("packets")->as_int(), 3);
  EXPECT_EQ(totals->Find("RTP")->Find("bytes")->as_int(), 3 * 172);
  EXPECT_EQ(totals->Find("RTCP")->Find("packets")->as_int(), 1);
  EXPECT_EQ(totals->Find("RTCP")->Find("bytes")->as_int(), 32);
  const control::LegCounters native = Get("call-1@host").legs[0].counters;
  EXPECT_EQ(native.rx_packets, 4u);
  EXPECT_EQ(native.rx_bytes, 3u * 172 + 32);
  EXPECT_EQ(native.rx_rtcp_packets, 1u);
  EXPECT_EQ(native.rx_rtcp_bytes, 32u);
}

// A call whose BYE is lost: its session times out in the session manager
// ([media] timeout_s), which tells the handler; the call is freed, and a
// late query or delete is answered as for any call already gone.
TEST_F(HandlerTest, ATimedOutSessionEndsItsCall) {
  uint64_t now = 1000000;
  manager_->SetClock([&now] { return now; });
  manager_->SetOnExpired([this](const std::string& name) { handler_->SessionExpired(name); });
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.3", 4000, "RTP/AVP", ""), "call-2@host")));
  ASSERT_EQ(handler_->call_count(), 2u);
  now += 59000;
  manager_->Tick();
  EXPECT_EQ(handler_->call_count(), 2u);
  now += 1000;
  manager_->Tick();
  EXPECT_EQ(manager_->session_count(), 1u) << "the unanswered call waits for its offer timeout";
  EXPECT_EQ(handler_->call_count(), 1u);
  EXPECT_EQ(S(handler_->Handle(Request("query")).Find("error-reason")), "Unknown call-id");
  Value late_bye = handler_->Handle(Request("delete"));
  EXPECT_EQ(S(late_bye.Find("result")), "ok");
  EXPECT_EQ(S(late_bye.Find("warning")), "Call-ID not found");
  EXPECT_EQ(S(handler_->Handle(Request("query", "call-2@host")).Find("result")), "ok");
}


// A re-INVITE that puts the call on hold (a=inactive) gives its session
// [media] silent_timeout_s in place of timeout_s; one with a=sendrecv on
// both sides takes it off hold.
TEST_F(HandlerTest, AHoldReOfferTradesTimeoutForSilentTimeout) {
  uint64_t now = 1000000;
  manager_->SetClock([&now] { return now; });
  const auto inactive = [](std::string sdp) {
    return sdp.replace(sdp.find("a=sendrecv"), 10, "a=inactive");
  };
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Offer(inactive(Sdp("10.0.1.2", 4000, "RTP/AVP", "")))));
  ReplySdp(handler_->Handle(Answer(inactive(Sdp("10.0.2.2", 5000, "RTP/AVP", "")))));
  now += 3599000;  // config_.media: timeout_s 60, silent_timeout_s 3600
  manager_->Tick();
  EXPECT_EQ(manager_->session_count(), 1u) << "on hold, quiet both ways for an hour less 1 s";
  ReplySdp(handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""))));
  ReplySdp(handler_->Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/AVP", ""))));
  now += 59000;
  manager_->Tick();
  EXPECT_EQ(manager_->session_count(), 1u);
  now += 1000;
  manager_->Tick();
  EXPECT_EQ(manager_->session_count(), 0u) << "off hold: timeout_s";
}
// What the handler asks of the session manager, passed on to it.
class RecordingOperations : public control::Operations {
 public:
  explicit RecordingOperations(control::Operations& inner) : inner_(inner) {}
  std::string Version() const override { return inner_.Version(); }
  uint32_t Workers() const override { return inner_.Workers(); }
  absl::StatusOr<control::SessionInfo> Create(const control::CreateRequest& request) override {
    creates.push_back(request);
    return inner_.Create(request);
  }
  absl::StatusOr<control::SessionInfo> Update(const control::UpdateRequest& request) override {
    updates.push_back(request);
    return inner_.Update(request);
  }
  absl::StatusOr<control::SessionInfo> Delete(const std::string& session) override {
    return inner_.Delete(session);
  }
  absl::StatusOr<control::SessionInfo> Get(const std::string& session) override {
    return inner_.Get(session);
  }
  control::ListResult List(uint64_t offset, uint64_t limit) override {
    return inner_.List(offset, limit);
  }
  control::Stats GetStats() override { return inner_.GetStats(); }

  std::vector<control::CreateRequest> creates;
  std::vector<control::UpdateRequest> updates;

 private:
  control::Operations& inner_;
};

// SDES-ROC-reset / SDES-ROC-keep force the rollover counter rule of the leg
// of whoever sent the SDP: the offerer's at its offer (and its re-offer's
// update), the answerer's at its answer; without them the rule is automatic.
TEST_F(HandlerTest, RocFlagsForceTheRuleOfTheSendersLeg) {
  RecordingOperations recording(*manager_);
  Handler handler(recording, HandlerOptions{"a"});
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  const std::string c3 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey3 + "\r\n";
  Value offer = Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1));
  offer.Set("flags", Value(Value::List{"trust-address", "SDES-ROC-reset"}));
  ReplySdp(handler.Handle(offer));
  ASSERT_EQ(recording.creates.size(), 1u);
  EXPECT_EQ(recording.creates[0].legs[0].roc_on_rekey, control::RocOnRekey::kReset);
  EXPECT_EQ(recording.creates[0].legs[1].roc_on_rekey, control::RocOnRekey::kAuto);

  Value answer = Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c2));
  answer.Set("flags", Value(Value::List{"trust-address", "SDES-ROC-keep"}));
  ReplySdp(handler.Handle(answer));
  ASSERT_EQ(recording.updates.size(), 2u);
  for (const control::UpdateRequest& u : recording.updates) {
    EXPECT_EQ(u.roc_on_rekey, u.leg == "a" ? std::optional(control::RocOnRekey::kReset)
                                           : std::optional(control::RocOnRekey::kKeep))
        << u.leg;
  }
  // A re-offer without a flag leaves the rule as it is (none in the update).
  ReplySdp(handler.Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c3))));
  ReplySdp(handler.Handle(Answer(Sdp("10.0.2.2", 5000, "RTP/SAVP", c2))));
  ASSERT_EQ(recording.updates.size(), 4u);
  EXPECT_FALSE(recording.updates[2].roc_on_rekey.has_value());
  EXPECT_FALSE(recording.updates[3].roc_on_rekey.has_value());

  Value both = Offer(Sdp("10.0.1.2", 4000, "RTP/SAVP", c1), "call-2@host");
  both.Set("flags", Value(Value::List{"SDES-ROC-reset", "SDES-ROC-keep"}));
  Value refused = handler.Handle(both);
  EXPECT_EQ(S(refused.Find("result")), "error");
  EXPECT_THAT(S(refused.Find("error-reason")), HasSubstr("contradict"));
}

}  // namespace
}  // namespace sluice::ng

namespace sluice::ng {
namespace {

// An SDP whose addresses are `ip` with the family token that fits it.
std::string SdpAt(const std::string& ip, int port, const std::string& crypto_lines) {
  std::string sdp = Sdp(ip, port, "RTP/SAVP", crypto_lines);
  if (ip.find(':') == std::string::npos) return sdp;
  for (size_t at; (at = sdp.find("IN IP4")) != std::string::npos;) sdp.replace(at, 6, "IN IP6");
  return sdp;
}

std::string Line(const Value& reply, char kind) {
  const std::string sdp = S(reply.Find("sdp"));
  const size_t at = sdp.find(std::string(1, kind) + "=");
  return at == std::string::npos ? "" : sdp.substr(at, sdp.find("\r\n", at) - at);
}

// address-family: an IPv4 phone's offer goes to the other side as IPv6
// (the answerer's leg on the interface's IPv6 address), the IPv6 answer
// comes back to the offerer as IPv4.
TEST_F(HandlerTest, AddressFamilyBridgesAnIpv4OffererToAnIpv6Answerer) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  Value offer = Offer(SdpAt("10.0.1.2", 4000, c1));
  offer.Set("address-family", "IP6");
  offer.Set("replace", Value(Value::List{"origin"}));
  const Value offered = handler_->Handle(offer);
  ng::Sdp out = ReplySdp(offered);
  ASSERT_EQ(out.media.size(), 1u);
  const control::SessionInfo info = Get(SessionName("call-1@host", 0));
  EXPECT_EQ(info.legs[1].local.ip.ToString(), "fd00:2::1");
  EXPECT_EQ(Line(offered, 'c'), "c=IN IP6 fd00:2::1");
  EXPECT_EQ(Line(offered, 'o'), "o=- 1 1 IN IP6 fd00:2::1");
  EXPECT_EQ(out.media[0].port, info.legs[1].local.port);

  Value answer = Answer(SdpAt("fd00:2::2", 5000, c2));
  answer.Set("replace", Value(Value::List{"origin"}));
  const Value answered = handler_->Handle(answer);
  ReplySdp(answered);
  EXPECT_EQ(Line(answered, 'c'), "c=IN IP4 10.0.1.1");
  EXPECT_EQ(Line(answered, 'o'), "o=- 1 1 IN IP4 10.0.1.1");
  const control::SessionInfo both = Get(SessionName("call-1@host", 0));
  EXPECT_EQ(both.legs[0].remote->ToString(), "10.0.1.2:4000");
  EXPECT_EQ(both.legs[1].remote->ToString(), "[fd00:2::2]:5000");
}

TEST_F(HandlerTest, AddressFamilyIsCheckedBeforeAnythingIsCreated) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  Value bad = Offer(SdpAt("10.0.1.2", 4000, c1));
  bad.Set("address-family", "IPv6");
  EXPECT_THAT(S(handler_->Handle(bad).Find("error-reason")), HasSubstr("address-family"));
  bad = Offer(SdpAt("10.0.1.2", 4000, c1));
  bad.Set("media-address", "public.example");
  EXPECT_THAT(S(handler_->Handle(bad).Find("error-reason")), HasSubstr("media-address"));
  // Interface a has no IPv6 address: refused, no session left.
  Value none = Offer(SdpAt("10.0.1.2", 4000, c1));
  none.Set("direction", Value(Value::List{"b", "a"}));
  none.Set("address-family", "IP6");
  const Value refused = handler_->Handle(none);
  EXPECT_EQ(S(refused.Find("result")), "error");
  EXPECT_THAT(S(refused.Find("error-reason")), HasSubstr("interface a has no IPv6"));
  EXPECT_FALSE(manager_->Get(SessionName("call-1@host", 0)).ok());
  // The string form says the same.
  Value flags = Offer(SdpAt("10.0.1.2", 4000, c1));
  flags.Set("rtpp-flags", "address-family=IP6");
  EXPECT_EQ(Line(handler_->Handle(flags), 'c'), "c=IN IP6 fd00:2::1");
  // The IPv6 leg refuses an IPv4 answer and keeps waiting for a good one.
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  const Value wrong = handler_->Handle(Answer(SdpAt("10.0.2.2", 5000, c2)));
  EXPECT_THAT(S(wrong.Find("error-reason")), HasSubstr("address family"));
  EXPECT_FALSE(Get(SessionName("call-1@host", 0)).legs[1].remote.has_value());
  ReplySdp(handler_->Handle(Answer(SdpAt("fd00:2::2", 5000, c2))));
}

// media-address: the address written into the SDP in place of Sluice's own
// (a public address in front of a NAT), with its family's token, in c= and
// in o= with replace-origin; the port and the sessions stay Sluice's.
TEST_F(HandlerTest, MediaAddressIsWrittenIntoTheSdp) {
  const std::string c1 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey1 + "\r\n";
  const std::string c2 = std::string("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") + kKey2 + "\r\n";
  Value offer = Offer(SdpAt("10.0.1.2", 4000, c1));
  offer.Set("media-address", "203.0.113.7");
  offer.Set("replace", Value(Value::List{"origin"}));
  const Value offered = handler_->Handle(offer);
  ng::Sdp out = ReplySdp(offered);
  EXPECT_EQ(Line(offered, 'c'), "c=IN IP4 203.0.113.7");
  EXPECT_EQ(Line(offered, 'o'), "o=- 1 1 IN IP4 203.0.113.7");
  const control::SessionInfo info = Get(SessionName("call-1@host", 0));
  EXPECT_EQ(info.legs[1].local.ip.ToString(), "10.0.2.1");
  ASSERT_EQ(out.media.size(), 1u);
  EXPECT_EQ(out.media[0].port, info.legs[1].local.port);
  // The same offer with another media-address is not a repeat.
  offer.Set("media-address", "198.51.100.9");
  EXPECT_EQ(Line(handler_->Handle(offer), 'c'), "c=IN IP4 198.51.100.9");

  Value answer = Answer(SdpAt("10.0.2.2", 5000, c2));
  answer.Set("media-address", "2001:db8::7");
  EXPECT_EQ(Line(handler_->Handle(answer), 'c'), "c=IN IP6 2001:db8::7");
  // address-family in an answer cannot move the offerer's leg: a warning.
  Value again = Answer(SdpAt("10.0.2.2", 5000, c2));
  again.Set("address-family", "IP6");
  const Value warned = handler_->Handle(again);
  EXPECT_EQ(Line(warned, 'c'), "c=IN IP4 10.0.1.1");
  EXPECT_THAT(S(warned.Find("warning")), HasSubstr("address-family"));
}


// --- WebRTC: the SDP translation to and from a browser's side, on a
// MediaHandshakes that records what the legs are asked and answers as
// Sluice's would (roles per RFC 4145/5763, credentials, candidates): a
// browser's UDP/TLS/RTP/SAVPF offer to an SDES or plain SIP side and back,
// a SIP offer toward a browser and its answer, the ICE=, DTLS=,
// transport-protocol, SDES-off, rtcp-mux and generate-mid flags, re-offers
// (idempotent, re-key by a new fingerprint, ICE restart), audio and video
// without BUNDLE, and what is refused.

constexpr char kSluiceFp[] = "sha-256 5C:1E:0C:E5:5C:1E:0C:E5:5C:1E:0C:E5:5C:1E:0C:E5";
constexpr char kBrowserFp[] =
    "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AA:3A:8F:B6:0C:E3:"
    "2E:9C:F6:47:2D";
constexpr char kNewBrowserFp[] =
    "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:"
    "BB:CC:DD:EE:FF";

// Records each leg's specs; its views resolve roles as WebRtcLegs does.
class FakeHandshakes : public control::MediaHandshakes {
 public:
  struct Leg {
    std::optional<control::DtlsSpec> dtls;  // the latest asked for
    bool ice = false;
    std::string peer_ufrag;
    std::string setup;  // Sluice's
    int dtls_updates = 0, ice_updates = 0, restarts = 0;
    packet::Endpoint local;
  };
  absl::StatusOr<control::HandshakeView> Add(const control::HandshakeLegId&,
                                             const packet::Endpoint& local,
                                             const std::optional<control::DtlsSpec>& dtls,
                                             const std::optional<control::IceSpec>& ice,
                                             const std::optional<packet::Endpoint>&) override {
    Leg leg;
    leg.local = local;
    leg.ice = ice.has_value();
    if (ice) leg.peer_ufrag = ice->ufrag;
    if (dtls) {
      absl::StatusOr<std::string> setup = Role(*dtls);
      if (!setup.ok()) return setup.status();
      leg.setup = *setup;
      leg.dtls = dtls;
    }
    legs[local.port] = leg;
    return ViewOf(legs[local.port]);
  }
  absl::StatusOr<control::HandshakeView> Update(const control::HandshakeLegId&,
                                                const packet::Endpoint& local,
                                                const std::optional<control::DtlsSpec>& dtls,
                                                const std::optional<control::IceSpec>& ice) override {
    Leg& leg = legs.at(local.port);
    if (dtls) {
      absl::StatusOr<std::string> setup = Role(*dtls);
      if (!setup.ok()) return setup.status();
      leg.setup = *setup;
      leg.dtls = dtls;
      ++leg.dtls_updates;
    }
    if (ice) {
      leg.peer_ufrag = ice->ufrag;
      ++leg.ice_updates;
      leg.restarts += ice->restart ? 1 : 0;
    }
    return ViewOf(leg);
  }
  void Remove(const packet::Endpoint& local) override { legs.erase(local.port); }
  std::optional<control::HandshakeView> View(const packet::Endpoint& local) const override {
    auto it = legs.find(local.port);
    if (it == legs.end()) return std::nullopt;
    return ViewOf(it->second);
  }

  static absl::StatusOr<std::string> Role(const control::DtlsSpec& d) {
    if (d.setup.empty()) return d.local_setup.empty() ? "actpass" : d.local_setup;
    if (d.setup == d.local_setup) {
      return absl::InvalidArgumentError(absl::StrCat("dtls.setup: both sides are ", d.setup));
    }
    if (d.setup == "actpass") return d.local_setup.empty() ? "active" : d.local_setup;
    return d.setup == "active" ? "passive" : "active";
  }
  static control::HandshakeView ViewOf(const Leg& leg) {
    control::HandshakeView v;
    if (leg.dtls) v.dtls = control::LegInfo::Dtls{"new", "", leg.setup, kSluiceFp, "", {}};
    if (leg.ice) {
      control::LegInfo::Ice ice;
      ice.ufrag = absl::StrCat("sLu", leg.restarts);
      ice.pwd = absl::StrCat("sluicepasswordsluicepw", leg.restarts, "x");
      ice.candidates = {absl::StrCat("candidate:1 1 UDP 2130706431 ", leg.local.ip.ToString(), " ",
                                     leg.local.port, " typ host")};
      v.ice = std::move(ice);
    }
    return v;
  }
  std::map<uint16_t, Leg> legs;  // by local port
};

// A browser's offer or answer: one section per entry of `media` ("audio",
// "video"), each with its own port, credentials and mid, bundled.
std::string BrowserSdp(const std::string& setup, const std::vector<std::string>& media = {"audio"},
                       const std::string& fp = kBrowserFp, const std::string& ufrag = "Brws",
                       bool bundle = true) {
  std::string s = "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  if (bundle) s += media.size() == 2 ? "a=group:BUNDLE 0 1\r\n" : "a=group:BUNDLE 0\r\n";
  for (size_t i = 0; i < media.size(); ++i) {
    const int port = 50000 + static_cast<int>(i) * 2;
    s += absl::StrCat("m=", media[i], " ", port, " UDP/TLS/RTP/SAVPF ",
                      media[i] == "audio" ? "0" : "96", "\r\nc=IN IP4 10.0.1.2\r\n",
                      "a=candidate:1 1 udp 2122260223 10.0.1.2 ", port, " typ host\r\n",
                      "a=ice-ufrag:", ufrag, i, "\r\na=ice-pwd:browserpasswordbrowserpw", i,
                      "\r\na=ice-options:trickle\r\na=fingerprint:", fp, "\r\na=setup:", setup,
                      "\r\na=mid:", i, "\r\na=sendrecv\r\na=rtcp-mux\r\n");
  }
  return s;
}

std::string PhoneSdp(const std::string& proto, const std::string& crypto = "") {
  return "v=0\r\no=- 1 1 IN IP4 10.0.2.2\r\ns=-\r\nc=IN IP4 10.0.2.2\r\nt=0 0\r\n"
         "m=audio 4000 " + proto + " 0\r\na=rtpmap:0 PCMU/8000\r\n" + crypto + "a=sendrecv\r\n";
}

// HandlerTest's manager with the recording handshakes: WebRTC legs.
class HandlerWebrtcTest : public HandlerTest {
 protected:
  void SetUp() override {
    HandlerTest::SetUp();
    manager_->SetMediaHandshakes(&handshakes_);
  }

  // An offer or answer from `from` (the browser on interface a, the phone
  // on b) with rtpengine's string flags, as Kamailio sends them.
  Value Request(const std::string& command, const std::string& sdp, const std::string& flags,
                bool browser_side) {
    Value r(Value::Dict{});
    r.Set("command", command);
    r.Set("call-id", "rtc-1");
    r.Set("from-tag", browser_side == (command == "offer") ? "browser" : "phone");
    if (command == "answer") r.Set("to-tag", browser_side ? "browser" : "phone");
    r.Set("sdp", sdp);
    r.Set("rtpp-flags", flags + (browser_side == (command == "offer") ? " direction=a direction=b"
                                                                      : " direction=b direction=a"));
    return r;
  }
  // The reply's SDP, parsed, and its text.
  ng::Sdp Reply(const Value& reply, std::string* text = nullptr) {
    EXPECT_EQ(S(reply.Find("result")), "ok") << S(reply.Find("error-reason"));
    const Value* sdp = reply.Find("sdp");
    if (sdp == nullptr) return {};
    if (text != nullptr) *text = std::string(sdp->str());
    absl::StatusOr<ng::Sdp> parsed = ParseSdp(sdp->str());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : ng::Sdp{};
  }
  FakeHandshakes::Leg& LegAt(uint16_t port) { return handshakes_.legs.at(port); }

  static constexpr char kToSip[] = "ICE=remove DTLS=off rtcp-mux-demux RTP/AVP";
  static constexpr char kToBrowser[] =
      "ICE=force DTLS=passive UDP/TLS/RTP/SAVPF SDES-off rtcp-mux-offer generate-mid";

  FakeHandshakes handshakes_;
};

// Browser offers, an SDES phone answers: the browser's leg is DTLS-SRTP
// with ICE-lite, the phone's SDES; neither side sees the other's transport.
TEST_F(HandlerWebrtcTest, BrowserOffersToAnSdesPhone) {
  std::string text;
  ng::Sdp to_phone = Reply(handler_->Handle(Request(
      "offer", BrowserSdp("actpass"), std::string(kToSip) + " SRTP", true)), &text);
  ASSERT_EQ(to_phone.media.size(), 1u);
  const SdpMedia& m = to_phone.media[0];
  EXPECT_EQ(m.proto, "RTP/SAVP");
  EXPECT_FALSE(m.crypto.empty());
  EXPECT_FALSE(m.rtcp_mux) << "rtcp-mux-demux";
  EXPECT_EQ(m.rtcp_port, m.port + 1);
  for (const char* gone : {"a=fingerprint", "a=setup", "a=ice-", "a=candidate", "BUNDLE", "a=ice-lite"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone << ":\n" << text;
  }
  // The browser's leg: its fingerprint and setup, its ICE credentials.
  control::SessionInfo info = *manager_->Get("rtc-1");
  FakeHandshakes::Leg& web = LegAt(info.legs[0].local.port);
  ASSERT_TRUE(web.dtls.has_value());
  EXPECT_EQ(web.dtls->setup, "actpass");
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kBrowserFp));
  EXPECT_TRUE(web.ice);
  EXPECT_EQ(web.peer_ufrag, "Brws0");
  EXPECT_EQ(info.legs[0].rtcp, control::RtcpMode::kMux);
  EXPECT_EQ(handshakes_.legs.count(info.legs[1].local.port), 0u) << "the phone's leg is SDES";

  const std::string crypto = absl::StrCat("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ", kKey1, "\r\n");
  ng::Sdp to_browser = Reply(handler_->Handle(
      Request("answer", PhoneSdp("RTP/SAVP", crypto), "ICE=force", false)), &text);
  ASSERT_EQ(to_browser.media.size(), 1u);
  const SdpMedia& a = to_browser.media[0];
  EXPECT_EQ(a.proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_EQ(a.port, info.legs[0].local.port);
  EXPECT_TRUE(a.crypto.empty()) << text;
  EXPECT_THAT(a.fingerprints, ElementsAre(kSluiceFp));
  EXPECT_EQ(a.setup, "active") << "RFC 5763 §5: the answerer to actpass";
  EXPECT_EQ(a.ice_ufrag, "sLu0");
  EXPECT_TRUE(a.rtcp_mux);
  EXPECT_EQ(a.mid, "0") << "the offer's mid (RFC 8843 §9.2)";
  EXPECT_NE(text.find("\r\na=ice-lite\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat("a=candidate:1 1 UDP 2130706431 10.0.1.1 ", a.port, " typ host")),
            std::string::npos) << text;
  EXPECT_EQ(text.find("BUNDLE"), std::string::npos) << "no bundling (RFC 8843 §7.3.3)";
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0) << "the answer changed nothing of the browser's";
  info = *manager_->Get("rtc-1");
  EXPECT_EQ(info.legs[1].rx_suite, "AES_CM_128_HMAC_SHA1_80");
}

// The SIP side (plain RTP) offers, the browser answers: Sluice offers it
// DTLS-SRTP (passive, as DTLS=passive asks) with ICE-lite, and its answer
// keys the leg; the phone's answer is plain.
TEST_F(HandlerWebrtcTest, PlainPhoneOffersToABrowser) {
  std::string text;
  ng::Sdp to_browser =
      Reply(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"), kToBrowser, false)), &text);
  ASSERT_EQ(to_browser.media.size(), 1u);
  const SdpMedia& m = to_browser.media[0];
  EXPECT_EQ(m.proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_TRUE(m.crypto.empty()) << "SDES-off";
  EXPECT_EQ(m.setup, "passive");
  EXPECT_THAT(m.fingerprints, ElementsAre(kSluiceFp));
  EXPECT_EQ(m.ice_ufrag, "sLu0");
  EXPECT_TRUE(m.rtcp_mux);
  EXPECT_EQ(m.mid, "0") << "generate-mid";
  EXPECT_NE(text.find("a=ice-lite"), std::string::npos) << text;
  FakeHandshakes::Leg& web = LegAt(m.port);
  ASSERT_TRUE(web.dtls.has_value());
  EXPECT_TRUE(web.dtls->setup.empty() && web.dtls->fingerprints.empty()) << "awaits the answer";
  EXPECT_EQ(web.dtls->local_setup, "passive");

  // A browser answering passive as well is refused before anything changes.
  Value both = handler_->Handle(Request("answer", BrowserSdp("passive"), kToSip, true));
  EXPECT_EQ(S(both.Find("result")), "error");
  // Found by the handler before any update (the session manager would
  // refuse it only after the phone's leg had taken the answer).
  EXPECT_THAT(S(both.Find("error-reason")),
              HasSubstr("DTLS=passive and the peer's a=setup:passive: both sides are passive"));
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0);

  ng::Sdp to_phone = Reply(handler_->Handle(Request("answer", BrowserSdp("active"), kToSip, true)), &text);
  EXPECT_EQ(web.dtls_updates, 1);
  EXPECT_EQ(web.dtls->setup, "active");
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kBrowserFp));
  EXPECT_EQ(web.dtls->local_setup, "passive");
  EXPECT_EQ(web.ice_updates, 1);
  EXPECT_EQ(web.peer_ufrag, "Brws0");
  ASSERT_EQ(to_phone.media.size(), 1u);
  EXPECT_EQ(to_phone.media[0].proto, "RTP/AVP");
  EXPECT_EQ(text.find("a=fingerprint"), std::string::npos) << text;
  EXPECT_EQ(text.find("a=ice-"), std::string::npos) << text;
  EXPECT_EQ(manager_->Get("rtc-1")->legs[0].remote->ToString(), "10.0.2.2:4000");
}

// Re-offers from the browser: the same offer again is the same reply and
// no change; a new fingerprint is a new handshake at the answer; new ICE
// credentials an ICE restart, whose new credentials go in the answer.
TEST_F(HandlerWebrtcTest, BrowserReoffersRekeyAndRestartIce) {
  const std::string offer = BrowserSdp("actpass");
  const Value first = handler_->Handle(Request("offer", offer, kToSip, true));
  EXPECT_EQ(S(first.Find("sdp")), S(handler_->Handle(Request("offer", offer, kToSip, true)).Find("sdp")));
  Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  const uint16_t port = manager_->Get("rtc-1")->legs[0].local.port;
  FakeHandshakes::Leg& web = LegAt(port);

  // The same transport in a new SDP version: nothing restarts.
  std::string same = offer;
  same.replace(same.find("4611 2"), 6, "4611 3");
  Reply(handler_->Handle(Request("offer", same, kToSip, true)));
  Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0);

  Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio"}, kNewBrowserFp), kToSip, true)));
  ng::Sdp answer = Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates, 1);
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kNewBrowserFp));
  EXPECT_EQ(web.ice_updates, 0);

  Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio"}, kNewBrowserFp, "Rst"),
                                 kToSip, true)));
  answer = Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates, 1) << "same fingerprint: no new handshake";
  EXPECT_EQ(web.restarts, 1);
  EXPECT_EQ(web.peer_ufrag, "Rst0");
  ASSERT_EQ(answer.media.size(), 1u);
  EXPECT_EQ(answer.media[0].ice_ufrag, "sLu1") << "Sluice's new credentials (RFC 8445 §9)";
}

// A browser's audio and video: a session (legs and ports) per section, no
// BUNDLE group in either direction, each section with its own transport.
TEST_F(HandlerWebrtcTest, AudioAndVideoEachTheirOwnLegsWithoutBundle) {
  std::string text;
  ng::Sdp to_phone = Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio", "video"}),
                                                kToSip, true)), &text);
  ASSERT_EQ(to_phone.media.size(), 2u);
  EXPECT_EQ(text.find("BUNDLE"), std::string::npos) << text;
  EXPECT_NE(to_phone.media[0].port, to_phone.media[1].port);
  const std::string phone2 = PhoneSdp("RTP/AVP") + "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  ng::Sdp to_browser = Reply(handler_->Handle(Request("answer", phone2, "", false)), &text);
  ASSERT_EQ(to_browser.media.size(), 2u);
  EXPECT_FALSE(to_browser.bundle);
  for (size_t i = 0; i < 2; ++i) {
    const control::SessionInfo info = *manager_->Get(SessionName("rtc-1", i));
    EXPECT_EQ(to_browser.media[i].port, info.legs[0].local.port);
    EXPECT_EQ(to_browser.media[i].mid, std::to_string(i));
    EXPECT_EQ(to_browser.media[i].setup, "active");
    EXPECT_EQ(LegAt(info.legs[0].local.port).peer_ufrag, absl::StrCat("Brws", i));
  }
  EXPECT_NE(to_browser.media[0].ice_ufrag.size(), 0u);
}

// What the flags and answers may not ask: DTLS toward an answerer without
// ICE, DTLS=off with a DTLS transport, an answer that declines DTLS or
// lacks a fingerprint; unknown ICE= values are warned about.
TEST_F(HandlerWebrtcTest, RefusedCombinations) {
  auto error = [&](const Value& reply) {
    EXPECT_EQ(S(reply.Find("result")), "error");
    return S(reply.Find("error-reason"));
  };
  EXPECT_THAT(error(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"),
                                             "ICE=remove UDP/TLS/RTP/SAVPF", false))),
              HasSubstr("needs ICE"));
  EXPECT_THAT(error(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"),
                                             "DTLS=off UDP/TLS/RTP/SAVPF", false))),
              HasSubstr("DTLS=off"));
  std::string no_fp = BrowserSdp("actpass");
  no_fp.erase(no_fp.find("a=fingerprint:"), std::strlen("a=fingerprint:\r\n") + std::strlen(kBrowserFp));
  EXPECT_THAT(error(handler_->Handle(Request("offer", no_fp, kToSip, true))),
              HasSubstr("without a=fingerprint"));
  EXPECT_EQ(handler_->call_count(), 0u);

  Value warned = handler_->Handle(
      Request("offer", PhoneSdp("RTP/AVP"), "ICE=force-relay UDP/TLS/RTP/SAVPF", false));
  EXPECT_THAT(S(warned.Find("warning")), HasSubstr("ICE=force-relay"));
  EXPECT_THAT(error(handler_->Handle(Request("answer", PhoneSdp("RTP/SAVP"), "", true))),
              HasSubstr("declines DTLS-SRTP"));
  EXPECT_THAT(error(handler_->Handle(Request("answer", BrowserSdp("actpass"), "", true))),
              HasSubstr("active or passive (RFC 5763"));
}

// [media] require_encryption holds for ng too: it is the session manager's
// create and update that enforce it.
class RequireEncryptionHandlerTest : public HandlerTest {
 protected:
  void SetUp() override {
    config_.media.require_encryption = config::RequireEncryption::kOneLeg;
    HandlerTest::SetUp();
  }
};

TEST_F(RequireEncryptionHandlerTest, APlainToPlainOfferIsRefusedAndAPlainTrunkToSrtpIsNot) {
  Value refused = handler_->Handle(Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", "")));
  EXPECT_EQ(S(refused.Find("result")), "error");
  EXPECT_THAT(S(refused.Find("error-reason")), HasSubstr("require_encryption"));
  EXPECT_EQ(manager_->session_count(), 0u);
  Value bridged = Offer(Sdp("10.0.1.2", 4000, "RTP/AVP", ""), "call-2@host");
  bridged.Set("transport-protocol", "RTP/SAVP");
  ng::Sdp out = ReplySdp(handler_->Handle(bridged));
  ASSERT_EQ(out.media.size(), 1u);
  EXPECT_EQ(out.media[0].proto, "RTP/SAVP");
}

}  // namespace
}  // namespace sluice::ng
