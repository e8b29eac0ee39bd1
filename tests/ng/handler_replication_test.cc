// The ng handler's state of a session as [ha] replicates it: exported by
// one handler and taken back by another (a restarted sluiced's) on the same
// session manager, the call is whole again; damaged states are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eal_environment.h"
#include "sluice/control/session_manager.h"
#include "sluice/ng/handler.h"
#include "sluice/session/flow_table.h"
#include "sluice/srtp/sdes.h"

namespace sluice::ng {
namespace {

using ::testing::HasSubstr;

const auto* const kEnv = sluice::testing::AddEalEnvironment("ng_handler_replication_test", 128);

// A fresh a=crypto line (tag 1): each key of a session must be new.
std::string Crypto() {
  absl::StatusOr<srtp::SdesCrypto> c =
      srtp::GenerateSdesCrypto(crypto::Suite::kAesCm128HmacSha1_80);
  return "a=crypto:1 " + srtp::FormatSdesCrypto(*c) + "\r\n";
}

// A phone's SDP: one audio section at ip:port, SDES.
std::string Sdp(const std::string& ip, int port, const std::string& crypto_line) {
  return absl::StrCat("v=0\r\no=- 1 1 IN IP4 ", ip, "\r\ns=-\r\nc=IN IP4 ", ip,
                      "\r\nt=0 0\r\nm=audio ", port, " RTP/SAVP 0\r\n", crypto_line);
}

std::string S(const Value* v) { return v && v->is_string() ? std::string(v->str()) : "<none>"; }

class HandlerReplicationTest : public ::testing::Test {
 protected:
  HandlerReplicationTest()
      : table_(*session::FlowTable::Create("ng_repl_" + std::to_string(counter_++), 256, 1)),
        manager_(Config(), Interfaces(), *table_, 1, 1000000000),
        handler_(manager_, Immediate()) {}

  static config::Config Config() {
    config::Config c;
    c.media.port_min = 30000;
    c.media.port_max = 30099;
    return c;
  }
  static std::vector<control::InterfaceInfo> Interfaces() {
    std::vector<control::InterfaceInfo> ifaces(2);
    for (uint16_t i = 0; i < 2; ++i) {  // a: 10.0.1.1 on port 0, b: 10.0.2.1 on port 1
      ifaces[i].name = i == 0 ? "a" : "b";
      ifaces[i].port_id = i;
      ifaces[i].ipv4 = *packet::Prefix::Parse(absl::StrCat("10.0.", i + 1, ".1/24"));
    }
    return ifaces;
  }
  static HandlerOptions Immediate() {
    HandlerOptions options{"a"};
    options.delete_delay_ms = 0;
    return options;
  }
  static Value Request(const std::string& command) {
    Value r(Value::Dict{});
    r.Set("command", command);
    r.Set("call-id", "call-1@host");
    return r;
  }
  static Value Offer(const std::string& sdp) {
    Value r = Request("offer");
    r.Set("from-tag", "alice");
    r.Set("sdp", sdp);
    r.Set("direction", Value(Value::List{"a", "b"}));
    return r;
  }
  static Value Answer(const std::string& sdp) {
    Value r = Offer(sdp);
    r.Set("command", "answer");
    r.Set("to-tag", "bob");
    return r;
  }
  static void ReplySdp(const Value& reply) {
    EXPECT_EQ(S(reply.Find("result")), "ok") << S(reply.Find("error-reason"));
  }

  static inline int counter_ = 0;
  std::unique_ptr<session::FlowTable> table_;
  control::SessionManager manager_;
  Handler handler_;
};

// [ha]: a session's ng state, exported and taken back by another handler
// (a restarted sluiced's), makes its call whole again: query, a repeated
// answer answered as before (the same keys), a re-offer that re-keys,
// delete.
TEST_F(HandlerReplicationTest, ExportedSessionStateRestoresTheCallInAnotherHandler) {
  ReplySdp(handler_.Handle(Offer(Sdp("10.0.1.2", 4000, Crypto()))));
  const Value answer = Answer(Sdp("10.0.2.2", 5000, Crypto()));
  const Value answered = handler_.Handle(answer);
  ReplySdp(answered);
  std::optional<String> state = handler_.ExportSession("call-1@host");
  ASSERT_TRUE(state.has_value());
  EXPECT_FALSE(handler_.ExportSession("no-such-session").has_value());

  Handler restarted(manager_, Immediate());
  control::CreateRequest create;
  create.session = "call-1@host";
  create.legs.resize(2);
  ASSERT_TRUE(restarted.RestoreSession(std::string_view(state->data(), state->size()), create).ok());
  EXPECT_EQ(restarted.call_count(), 1u);
  Value reply = restarted.Handle(Request("query"));
  ASSERT_EQ(S(reply.Find("result")), "ok") << S(reply.Find("error-reason"));
  EXPECT_EQ(S(reply.Find("streams")->as_list()[0].Find("legs")->as_list()[1].Find("tag")), "bob");
  EXPECT_EQ(S(restarted.Handle(answer).Find("sdp")), S(answered.Find("sdp")));
  // A re-INVITE with new keys both ways: Sluice's new key toward the offerer.
  ReplySdp(restarted.Handle(Offer(Sdp("10.0.1.2", 4000, Crypto()))));
  const Value rekeyed = restarted.Handle(Answer(Sdp("10.0.2.2", 5000, Crypto())));
  ReplySdp(rekeyed);
  EXPECT_NE(S(rekeyed.Find("sdp")), S(answered.Find("sdp")));
  reply = restarted.Handle(Request("delete"));
  EXPECT_EQ(S(reply.Find("result")), "ok");
  EXPECT_EQ(reply.Find("warning"), nullptr) << S(reply.Find("warning"));
  EXPECT_FALSE(manager_.Get("call-1@host").ok());
}

// A damaged state (any truncation, another version, another session's) is
// refused and changes nothing.
TEST_F(HandlerReplicationTest, DamagedSessionStateIsRefused) {
  ReplySdp(handler_.Handle(Offer(Sdp("10.0.1.2", 4000, Crypto()))));
  std::optional<String> exported = handler_.ExportSession("call-1@host");
  ASSERT_TRUE(exported.has_value());
  const std::string state(exported->data(), exported->size());
  ASSERT_TRUE(Handler::CheckSessionState(state, "call-1@host").ok());
  for (size_t n = 0; n < state.size(); ++n) {
    EXPECT_FALSE(Handler::CheckSessionState(state.substr(0, n), "call-1@host").ok()) << n;
  }
  EXPECT_FALSE(Handler::CheckSessionState(state, "call-2@host").ok());
  std::string v2 = state;
  ASSERT_NE(v2.find("1:vi1e"), std::string::npos);
  v2.replace(v2.find("1:vi1e"), 6, "1:vi2e");
  EXPECT_THAT(std::string(Handler::CheckSessionState(v2, "call-1@host").message()),
              HasSubstr("unknown version"));
  std::string bad_side = state;  // the offerer is leg 0 or 1
  ASSERT_NE(bad_side.find("7:offereri0e"), std::string::npos);
  bad_side.replace(bad_side.find("7:offereri0e"), 12, "7:offereri7e");
  EXPECT_FALSE(Handler::CheckSessionState(bad_side, "call-1@host").ok());
  Handler restarted(manager_, Immediate());
  control::CreateRequest create;
  create.session = "call-1@host";
  EXPECT_FALSE(restarted.RestoreSession(v2, create).ok());
  EXPECT_EQ(restarted.call_count(), 0u);
}

}  // namespace
}  // namespace sluice::ng
