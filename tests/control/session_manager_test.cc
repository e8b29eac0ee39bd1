// The session manager behind the real protocol codec: every operation and
// error code, key handling, port allocation and clean failure, on an
// in-process flow table.
#include "sluice/control/session_manager.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "eal_environment.h"
#include "log_capture.h"
#include "sluice/control/protocol.h"
#include "sluice/dpdk/eal.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow_table.h"
#include "sluice/srtp/sdes.h"

namespace sluice::control {
namespace {

using json = nlohmann::json;

const auto* const kEnv = sluice::testing::AddEalEnvironment("session_manager_test", 128);

constexpr char kKey1[] = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
constexpr char kKey2[] = "AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
constexpr char kKey3[] = "AEAD_AES_128_GCM inline:KCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQw==";

// A key of its own for session i (no key may serve two sessions).
std::string UniqueKey(uint32_t i) {
  std::string raw(30, '\x5a');
  for (int b = 0; b < 4; ++b) raw[static_cast<size_t>(b)] = static_cast<char>(i >> (8 * b));
  return absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", absl::Base64Escape(raw));
}

class SessionManagerTest : public ::testing::Test {
 protected:
  void MakeManager(uint16_t port_min, uint16_t port_max, uint32_t reuse_delay_s,
                   uint32_t max_sessions = 100) {
    manager_.reset();  // before the table it uses
    table_.reset();
    config_.media.port_min = port_min;
    config_.media.port_max = port_max;
    config_.media.port_reuse_delay_s = reuse_delay_s;
    config_.limits.max_sessions = max_sessions;
    std::vector<InterfaceInfo> ifaces(2);
    ifaces[0].name = "a";
    ifaces[0].port_id = 0;
    ifaces[0].ipv4 = *packet::Prefix::Parse("10.0.1.1/24");
    ifaces[0].ipv6 = *packet::Prefix::Parse("fd00:1::1/64");
    ifaces[1].name = "b";
    ifaces[1].port_id = 1;
    ifaces[1].ipv4 = *packet::Prefix::Parse("10.0.2.1/24");
    ifaces[1].vlan = 7;
    table_ = *session::FlowTable::Create("sm_flows_" + std::to_string(counter_++), 1024, 1);
    manager_ = std::make_unique<SessionManager>(config_, ifaces, *table_, 1, 1000000000);
  }
  void SetUp() override { MakeManager(30000, 30099, 60); }
  void TearDown() override {
    manager_.reset();
    table_.reset();
  }

  json Call(json request) {
    request["id"] = ++id_;
    const std::string reply = HandleLine(*manager_, request.dump());
    json parsed = json::parse(reply, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << reply;
    return parsed;
  }
  static std::string Code(const json& reply) {
    return reply.contains("error") ? reply["error"]["code"].get<std::string>() : "ok";
  }
  json Create(const std::string& name, const std::string& rx_a = kKey1,
              const std::string& iface_b = "b", const std::string& remote_a = "10.0.1.2:4000") {
    json leg_a = {{"name", "a"}, {"interface", "a"}, {"remote", remote_a},
                  {"rx", {{"crypto", rx_a}}}, {"tx", {{"suite", "AEAD_AES_256_GCM"}}}};
    json leg_b = {{"name", "b"}, {"interface", iface_b}, {"rtcp", "mux"},
                  {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}};
    return Call({{"op", "session.create"}, {"session", name}, {"legs", {leg_a, leg_b}}});
  }

  config::Config config_;
  std::unique_ptr<session::FlowTable> table_;
  std::unique_ptr<SessionManager> manager_;
  int id_ = 0;
  inline static int counter_ = 0;
};

TEST_F(SessionManagerTest, CreateAllocatesEvenPortsAndReturnsOnlyGeneratedKeys) {
  json r = Create("call-1");
  ASSERT_EQ(Code(r), "ok") << r.dump();
  const packet::Endpoint a = *packet::Endpoint::Parse(r["legs"][0]["local"].get<std::string>());
  const packet::Endpoint b = *packet::Endpoint::Parse(r["legs"][1]["local"].get<std::string>());
  EXPECT_EQ(a.ip.ToString(), "10.0.1.1");
  EXPECT_EQ(b.ip.ToString(), "10.0.2.1");
  for (uint16_t port : {a.port, b.port}) {
    EXPECT_EQ(port % 2, 0) << port;
    EXPECT_GE(port, 30000);
    EXPECT_LE(port, 30098);
  }
  EXPECT_EQ(r["legs"][0]["rx_suite"], "AES_CM_128_HMAC_SHA1_80");
  ASSERT_TRUE(r["legs"][0].contains("tx"));
  auto generated = srtp::ParseSdesCrypto(r["legs"][0]["tx"]["crypto"].get<std::string>());
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_EQ(generated->key.suite, crypto::Suite::kAeadAes256Gcm);
  EXPECT_FALSE(r["legs"][1].contains("tx")) << "a plain leg has no key";
  // RTP on the even port; with RTCP on port + 1 (leg a), the table holds both.
  EXPECT_EQ(table_->size(), 3u);
  json g = Call({{"op", "session.get"}, {"session", "call-1"}});
  EXPECT_EQ(Code(g), "ok");
  EXPECT_EQ(g.dump().find("inline:"), std::string::npos) << "no key in session.get: " << g.dump();
  json second = Create("call-2", kKey2);
  EXPECT_NE(second["legs"][0]["local"], r["legs"][0]["local"]);
  // A generated key differs every time.
  json third = Create("call-3", kKey3);
  EXPECT_NE(third["legs"][0]["tx"]["crypto"], r["legs"][0]["tx"]["crypto"]);
}

// An HA standby (docs/ha.md) creates nothing until promoted.
TEST_F(SessionManagerTest, StandbyRefusesCreatesUntilPromoted) {
  manager_->SetStandbyRefusal("an HA standby");
  json r = Create("call-1");
  EXPECT_EQ(Code(r), "failed_precondition") << r.dump();
  EXPECT_EQ(r["error"]["message"], "an HA standby");
  EXPECT_EQ(manager_->GetStats().sessions, 0u);
  manager_->SetStandbyRefusal("");
  r = Create("call-1");
  EXPECT_EQ(Code(r), "ok") << r.dump();
}

TEST_F(SessionManagerTest, Ipv6RemoteGetsTheInterfacesIpv6Address) {
  json r = Create("v6", kKey1, "b", "[fd00:1::2]:4000");
  ASSERT_EQ(Code(r), "ok") << r.dump();
  EXPECT_EQ(r["legs"][0]["local"].get<std::string>().rfind("[fd00:1::1]:", 0), 0u) << r.dump();
  json bad = Call({{"op", "session.create"}, {"session", "v6b"}, {"legs", {
      {{"name", "a"}, {"interface", "b"}, {"remote", "[fd00:2::2]:4000"},
       {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}},
      {{"name", "b"}, {"interface", "a"}, {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}}}}});
  EXPECT_EQ(Code(bad), "invalid_argument");
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("legs[0].remote"), std::string::npos)
      << bad.dump();
}

// A leg with no remote yet takes the family it asks for, so one leg can be
// IPv4 and the other IPv6 on a dual-stack interface before the peer is known.
TEST_F(SessionManagerTest, LegWithoutRemoteTakesTheFamilyItAsksFor) {
  auto create = [&](const std::string& name, const std::string& family, const json& remote) {
    json leg_b = {{"name", "b"}, {"interface", "a"}, {"family", family},
                  {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}};
    if (!remote.is_null()) leg_b["remote"] = remote;
    json leg_a = {{"name", "a"}, {"interface", "b"}, {"remote", "10.0.2.2:4000"},
                  {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}};
    return Call({{"op", "session.create"}, {"session", name}, {"legs", {leg_a, leg_b}}});
  };
  json r = create("fam6", "ipv6", nullptr);
  ASSERT_EQ(Code(r), "ok") << r.dump();
  EXPECT_EQ(r["legs"][0]["local"].get<std::string>().rfind("10.0.2.1:", 0), 0u) << r.dump();
  EXPECT_EQ(r["legs"][1]["local"].get<std::string>().rfind("[fd00:1::1]:", 0), 0u) << r.dump();
  r = create("fam4", "ipv4", nullptr);
  ASSERT_EQ(Code(r), "ok") << r.dump();
  EXPECT_EQ(r["legs"][1]["local"].get<std::string>().rfind("10.0.1.1:", 0), 0u) << r.dump();
  json clash = create("clash", "ipv6", "10.0.1.2:4000");
  EXPECT_EQ(Code(clash), "invalid_argument");
  EXPECT_NE(clash["error"]["message"].get<std::string>().find("legs[1].family"), std::string::npos)
      << clash.dump();
  // Interface b has no IPv6 address.
  json none = Call({{"op", "session.create"}, {"session", "none"}, {"legs", {
      {{"name", "a"}, {"interface", "a"}, {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}},
      {{"name", "b"}, {"interface", "b"}, {"family", "ipv6"},
       {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}}}}});
  EXPECT_EQ(Code(none), "invalid_argument");
  EXPECT_NE(none["error"]["message"].get<std::string>().find(
                "legs[1].family: interface b has no IPv6"),
            std::string::npos)
      << none.dump();
  EXPECT_EQ(Code(Call({{"op", "session.get"}, {"session", "none"}})), "not_found");
}

TEST_F(SessionManagerTest, ErrorsNameTheFieldAndLeaveNothingBehind) {
  MakeManager(30000, 30001, 60);  // one port per interface
  json unknown = Create("x", kKey1, "nope");
  EXPECT_EQ(Code(unknown), "invalid_argument");
  EXPECT_NE(unknown["error"]["message"].get<std::string>().find("legs[1].interface"),
            std::string::npos)
      << unknown.dump();
  const std::string bad_key = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubG!!";
  json bad = Create("y", bad_key);
  EXPECT_EQ(Code(bad), "invalid_argument");
  EXPECT_EQ(bad.dump().find("WVNfX19zZW1jdGwg"), std::string::npos) << "no key in errors";
  json short_key = Create("z", "AES_256_CM_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz");
  EXPECT_EQ(Code(short_key), "invalid_argument");
  EXPECT_EQ(table_->size(), 0u);
  // Nothing leaked: the only port is still there.
  json ok = Create("w");
  EXPECT_EQ(ok["legs"][0]["local"], "10.0.1.1:30000") << ok.dump();
  EXPECT_EQ(Code(Create("w", kKey2)), "already_exists");
  EXPECT_EQ(Code(Call({{"op", "session.get"}, {"session", "none"}})), "not_found");
  EXPECT_EQ(Code(Call({{"op", "session.delete"}, {"session", "none"}})), "not_found");
  EXPECT_EQ(Code(Call({{"op", "session.update"}, {"session", "w"}, {"leg", "c"},
                       {"remote", "10.0.1.3:4000"}})),
            "not_found");
}

TEST_F(SessionManagerTest, KeyReuseIsRefusedEverywhereInTheSession) {
  // The same key for a's rx and b's tx.
  json legs = {{{"name", "a"}, {"interface", "a"}, {"rx", {{"crypto", kKey1}}},
                {"tx", {{"plain", true}}}},
               {{"name", "b"}, {"interface", "b"}, {"rx", {{"plain", true}}},
                {"tx", {{"crypto", kKey1}}}}};
  json r = Call({{"op", "session.create"}, {"session", "reuse"}, {"legs", legs}});
  EXPECT_EQ(Code(r), "key_reuse") << r.dump();
  // The same key under a suite that only changes the tag length is the same key.
  std::string k32 = kKey1;
  k32.replace(k32.find("_80"), 3, "_32");
  legs[1]["tx"] = {{"crypto", k32}};
  EXPECT_EQ(Code(Call({{"op", "session.create"}, {"session", "reuse"}, {"legs", legs}})),
            "key_reuse");
  ASSERT_EQ(Code(Create("s")), "ok");
  // A re-INVITE to a new key, then back to the first: refused.
  json up = Call({{"op", "session.update"}, {"session", "s"}, {"leg", "a"},
                  {"rx", {{"crypto", kKey2}}}});
  ASSERT_EQ(Code(up), "ok") << up.dump();
  EXPECT_EQ(Code(Call({{"op", "session.update"}, {"session", "s"}, {"leg", "a"},
                       {"rx", {{"crypto", kKey1}}}})),
            "key_reuse");
  // A re-offer of the key in use changes nothing and is fine.
  EXPECT_EQ(Code(Call({{"op", "session.update"}, {"session", "s"}, {"leg", "a"},
                       {"rx", {{"crypto", kKey2}}}})),
            "ok");
  // A generated tx key in an update comes back once.
  json tx = Call({{"op", "session.update"}, {"session", "s"}, {"leg", "a"},
                  {"tx", {{"suite", "AES_CM_128_HMAC_SHA1_32"}}}});
  ASSERT_EQ(Code(tx), "ok");
  EXPECT_TRUE(tx["legs"][0].contains("tx"));
  EXPECT_EQ(tx["legs"][0]["tx_suite"], "AES_CM_128_HMAC_SHA1_32");
}

// The send side's rollover counter on a re-key: kept when the new key comes
// without a new address (RFC 3711 §3.3.1), reset with one (RFC 4568
// §7.1.4), unless roc_on_rekey forces either.
TEST_F(SessionManagerTest, SendRocRuleOnRekeyFollowsTheRfcsUnlessForced) {
  const json created = Create("roc", kKey1);
  ASSERT_EQ(Code(created), "ok");
  // Leg a's send context is read by the flow arriving at b.
  const session::FlowKey key = session::FlowKey::From(
      *packet::Endpoint::Parse(created["legs"][1]["local"].get<std::string>()));
  session::FlowRef ref{};
  table_->LookupBulk(&key, 1, &ref);
  ASSERT_NE(ref.flow, nullptr);
  auto rule_after = [&](json update) {
    update["op"] = "session.update";
    update["session"] = "roc";
    update["leg"] = "a";
    update["tx"] = {{"suite", "AEAD_AES_256_GCM"}};
    const json reply = Call(update);
    EXPECT_EQ(Code(reply), "ok") << reply.dump();
    const srtp::Context* next = ref.flow->tx_next.load();
    return next != nullptr ? next->roc_on_rekey() : srtp::RocOnRekey::kDetect;
  };
  EXPECT_EQ(rule_after(json::object()), srtp::RocOnRekey::kKeep) << "same remote";
  EXPECT_EQ(rule_after({{"remote", "10.0.1.2:4000"}}), srtp::RocOnRekey::kKeep) << "unchanged";
  EXPECT_EQ(rule_after({{"remote", "10.0.1.9:4100"}}), srtp::RocOnRekey::kReset) << "moved";
  EXPECT_EQ(rule_after({{"remote", "10.0.1.10:4102"}, {"roc_on_rekey", "keep"}}),
            srtp::RocOnRekey::kKeep);
  EXPECT_EQ(rule_after({{"roc_on_rekey", "reset"}}), srtp::RocOnRekey::kReset);
}

// A restored plain-sourced leg's SEQ shift (docs/ha.md, rule 2) is in its
// send context from the start and in every one a re-key makes after it,
// so its receiver sees the SEQ go on; the leg that sends plain has none.
TEST_F(SessionManagerTest, RestoredSeqShiftCarriesOverTxRekeys) {
  CreateRequest request;
  request.session = "shifted";
  for (int i = 0; i < 2; ++i) {
    LegRequest& leg = request.legs.emplace_back();
    leg.name = i == 0 ? "a" : "b";
    leg.interface = leg.name;
    leg.remote = packet::Endpoint::Parse(i == 0 ? "10.0.1.2:4000" : "10.0.2.2:5000");
  }
  request.legs[0].tx.kind = CryptoSpec::Kind::kGenerate;  // leg a sends SRTP of b's plain
  request.legs[0].tx_seq_offset = 2601;
  absl::StatusOr<SessionInfo> created = manager_->Create(request);
  ASSERT_TRUE(created.ok()) << created.status();
  const session::FlowKey key = session::FlowKey::From(created->legs[1].local);
  session::FlowRef ref{};
  table_->LookupBulk(&key, 1, &ref);
  ASSERT_NE(ref.flow, nullptr);
  ASSERT_NE(ref.flow->tx, nullptr);
  EXPECT_EQ(ref.flow->tx->options().rtp_seq_offset, 2601);
  for (const char* roc : {"keep", "reset"}) {
    const json reply = Call({{"op", "session.update"}, {"session", "shifted"}, {"leg", "a"},
                             {"tx", {{"suite", "AES_CM_128_HMAC_SHA1_80"}}}, {"roc_on_rekey", roc}});
    ASSERT_EQ(Code(reply), "ok") << reply.dump();
    const srtp::Context* next = ref.flow->tx_next.load();
    ASSERT_NE(next, nullptr);
    EXPECT_EQ(next->options().rtp_seq_offset, 2601) << roc;
  }
}

// An ng call's forked branches all receive with the caller's key: sessions
// of one key group share it, a session of another group (or none) may not,
// and the group ends with its last session.
TEST_F(SessionManagerTest, SessionsOfOneKeyGroupShareKeys) {
  auto create = [&](const std::string& name, const std::string& group) {
    CreateRequest request;
    request.session = name;
    request.key_group = group;
    LegRequest a, b;
    a.name = "a";
    a.interface = "a";
    a.remote = packet::Endpoint::Parse("10.0.1.2:4000");
    a.rx.kind = CryptoSpec::Kind::kSdes;
    a.rx.sdes = kKey1;
    a.tx.kind = CryptoSpec::Kind::kGenerate;
    b.name = "b";
    b.interface = "b";
    request.legs = {a, b};
    return manager_->Create(request).status();
  };
  ASSERT_TRUE(create("call:0", "call").ok());
  ASSERT_TRUE(create("call:b1", "call").ok()) << "a branch of the same call";
  absl::Status other = create("other", "another-call");
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("key_reuse"), std::string::npos) << other;
  EXPECT_EQ(create("lone", "").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(manager_->Delete("call:0").ok());
  ASSERT_TRUE(manager_->Delete("call:b1").ok());
  EXPECT_EQ(create("later", "call").code(), absl::StatusCode::kFailedPrecondition)
      << "released: refused for the window, even to a group of the same name";
}

TEST_F(SessionManagerTest, KeyReuseIsRefusedAcrossSessionsAndForTheWindow) {
  ASSERT_EQ(Code(Create("first", kKey1)), "ok");
  // The same rx key in a second session, while the first uses it.
  json r = Create("second", kKey1);
  EXPECT_EQ(Code(r), "key_reuse") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("another session"), std::string::npos)
      << r.dump();
  EXPECT_EQ(r.dump().find("WVNfX19zZW1jdGwg"), std::string::npos) << "no key in errors";
  // The same key as another session's tx key, at create and in an update.
  json legs = {{{"name", "a"}, {"interface", "a"}, {"rx", {{"plain", true}}},
                {"tx", {{"crypto", kKey1}}}},
               {{"name", "b"}, {"interface", "b"}, {"rx", {{"plain", true}}},
                {"tx", {{"plain", true}}}}};
  EXPECT_EQ(Code(Call({{"op", "session.create"}, {"session", "tx"}, {"legs", legs}})),
            "key_reuse");
  ASSERT_EQ(Code(Create("third", kKey2)), "ok");
  EXPECT_EQ(Code(Call({{"op", "session.update"}, {"session", "third"}, {"leg", "a"},
                       {"rx", {{"crypto", kKey1}}}})),
            "key_reuse");
  // The refused ones took nothing: the first session's own re-offer is fine.
  EXPECT_EQ(Code(Call({{"op", "session.update"}, {"session", "first"}, {"leg", "a"},
                       {"rx", {{"crypto", kKey1}}}})),
            "ok");
  // Released, the key is still refused within the window.
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "first"}})), "ok");
  EXPECT_EQ(Code(Create("fourth", kKey1)), "key_reuse");
}

// A key's count started near its limit (no test sends 2^48 packets): the
// leg says how far in session.get, stats lists it for the SBC to poll, and
// the control loop's pass logs it once, by session and leg, never a key.
TEST_F(SessionManagerTest, KeysNearTheirLimitAreReported) {
  testing::LogCapture capture;
  const json created = Create("near", kKey1);
  ASSERT_EQ(Code(created), "ok");
  auto flow_at = [&](const json& local) {
    session::FlowKey key =
        session::FlowKey::From(*packet::Endpoint::Parse(local.get<std::string>()));
    session::FlowRef ref{};
    table_->LookupBulk(&key, 1, &ref);
    return ref.flow;
  };
  // Leg a's receive key is read by flow 0 (arriving at a); its send key by
  // flow 1 (arriving at b, leaving from a).
  session::Flow* in_a = flow_at(created["legs"][0]["local"]);
  session::Flow* in_b = flow_at(created["legs"][1]["local"]);
  ASSERT_TRUE(in_a != nullptr && in_b != nullptr && in_a->rx != nullptr && in_b->tx != nullptr);
  const uint64_t srtp_limit = uint64_t{1} << 48, srtcp_limit = uint64_t{1} << 31;
  manager_->CheckKeyLimits();
  EXPECT_EQ(Call({{"op", "stats"}})["keys_near_limit"], 0);
  in_a->rx->SetKeyCountsForTesting(0, srtp_limit / 100 * 95 + 100, 0);
  json g = Call({{"op", "session.get"}, {"session", "near"}});
  EXPECT_EQ(g["legs"][0]["key_used_percent"]["rx"], 95) << g.dump();
  EXPECT_EQ(g["legs"][0]["key_used_percent"]["tx"], 0);
  EXPECT_EQ(g["legs"][0]["rekey_needed"], json::array({"rx"}));
  EXPECT_FALSE(g["legs"][1]["key_used_percent"].contains("rx")) << "plain";
  EXPECT_EQ(g["legs"][1]["rekey_needed"], json::array());
  // SRTCP against its own 2^31.
  in_b->tx->SetKeyCountsForTesting(0, 0, srtcp_limit / 100 * 92 + 100);
  manager_->CheckKeyLimits();
  json st = Call({{"op", "stats"}});
  EXPECT_EQ(st["keys_near_limit"], 1) << "one leg, two directions";
  ASSERT_EQ(st["rekey_needed"].size(), 2u) << st.dump();
  EXPECT_EQ(st["rekey_needed"][0],
            json({{"session", "near"}, {"leg", "a"}, {"direction", "rx"}, {"used_percent", 95}}));
  EXPECT_EQ(st["rekey_needed"][1]["direction"], "tx");
  EXPECT_EQ(st["rekey_needed"][1]["used_percent"], 92);
  std::vector<std::string> logged = capture.Of("key.near_limit");
  ASSERT_EQ(logged.size(), 2u);
  EXPECT_NE(logged[0].find("session=near leg=a direction=rx used_percent=95 "), std::string::npos)
      << logged[0];
  for (const std::string& line : logged) {
    EXPECT_EQ(line.find("inline:"), std::string::npos);
    EXPECT_EQ(line.find("WVNfX19zZW1jdGwg"), std::string::npos);
  }
  manager_->CheckKeyLimits();
  EXPECT_EQ(capture.Of("key.near_limit").size(), 2u) << "logged once";
  // Below the warning nothing is reported.
  in_b->tx->SetKeyCountsForTesting(0, 0, srtcp_limit / 100 * 80);
  // A re-key of rx: the new key starts afresh (the previous one, carried for
  // the overlap with its count, is not what needs re-keying).
  ASSERT_EQ(Code(Call({{"op", "session.update"}, {"session", "near"}, {"leg", "a"},
                       {"rx", {{"crypto", kKey2}}}})),
            "ok");
  manager_->CheckKeyLimits();
  st = Call({{"op", "stats"}});
  EXPECT_EQ(st["keys_near_limit"], 0) << st.dump();
  EXPECT_EQ(st["rekey_needed"], json::array());
}

TEST_F(SessionManagerTest, ReleasedKeysAgeOutAfterTheWindow) {
  config_.security.key_reuse_window_s = 0;
  MakeManager(30000, 30099, 0);
  ASSERT_EQ(Code(Create("first", kKey1)), "ok");
  EXPECT_EQ(Code(Create("second", kKey1)), "key_reuse") << "in use: refused whatever the window";
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "first"}})), "ok");
  EXPECT_EQ(Code(Create("second", kKey1)), "ok");
}

TEST_F(SessionManagerTest, PortsRestBeforeReuseAndTheRangeRunsOut) {
  MakeManager(30000, 30003, 60);  // two even ports per interface
  ASSERT_EQ(Code(Create("p1")), "ok");
  ASSERT_EQ(Code(Create("p2", kKey2)), "ok");
  json full = Create("p3", kKey3);
  EXPECT_EQ(Code(full), "resource_exhausted") << full.dump();
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "p1"}})), "ok");
  EXPECT_EQ(Code(Create("p3", kKey3)), "resource_exhausted") << "a freed port rests 60 s";
  MakeManager(30000, 30003, 0);
  ASSERT_EQ(Code(Create("p1")), "ok");
  ASSERT_EQ(Code(Create("p2", kKey2)), "ok");
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "p1"}})), "ok");
  EXPECT_EQ(Code(Create("p3", kKey3)), "ok");
}

// Ports are drawn at random from the range, so a leg's port does not tell
// the next one's; every even port is handed out once, then the range is
// exhausted.
TEST_F(SessionManagerTest, PortsAreRandomWithinTheRange) {
  MakeManager(30000, 30099, 60);  // 50 even ports per interface
  const json plain = {{"plain", true}};
  std::vector<uint16_t> ports;
  for (int i = 0; i < 50; ++i) {
    json legs = {{{"name", "a"}, {"interface", "a"}, {"rx", plain}, {"tx", plain}},
                 {{"name", "b"}, {"interface", "b"}, {"rx", plain}, {"tx", plain}}};
    json r = Call({{"op", "session.create"}, {"session", "r" + std::to_string(i)}, {"legs", legs}});
    ASSERT_EQ(Code(r), "ok") << i << r.dump();
    const auto local = packet::Endpoint::Parse(r["legs"][0]["local"].get<std::string>());
    ASSERT_TRUE(local.has_value());
    EXPECT_EQ(local->port % 2, 0);
    EXPECT_GE(local->port, 30000);
    EXPECT_LE(local->port, 30098);
    ports.push_back(local->port);
  }
  // In order, each port would be 2 above the one before: at random, fewer
  // than half are (on average one in 25).
  int in_order = 0;
  for (size_t i = 1; i < ports.size(); ++i) in_order += ports[i] == ports[i - 1] + 2;
  EXPECT_LT(in_order, 25);
  std::vector<uint16_t> sorted = ports;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(sorted, ports);
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "a port handed out twice";
  json legs = {{{"name", "a"}, {"interface", "a"}, {"rx", plain}, {"tx", plain}},
               {{"name", "b"}, {"interface", "b"}, {"rx", plain}, {"tx", plain}}};
  json full = Call({{"op", "session.create"}, {"session", "r50"}, {"legs", legs}});
  EXPECT_EQ(Code(full), "resource_exhausted") << full.dump();
  EXPECT_NE(full["error"]["message"].get<std::string>().find("no free media port"),
            std::string::npos);
}

// An ng offer's answerer leg learns no peer from unauthenticated traffic
// until an update answers it; [media] learn_before_answer lifts that. A
// native create (no await_answer) learns as it always has.
TEST_F(SessionManagerTest, AnswererLegAwaitsItsAnswer) {
  for (const bool learn_before_answer : {false, true}) {
    SCOPED_TRACE(learn_before_answer);
    config_.media.learn_before_answer = learn_before_answer;
    MakeManager(30000, 30099, 60);
    CreateRequest create;
    create.session = "ng";
    create.legs.resize(2);
    create.legs[0].name = create.legs[0].interface = "a";
    create.legs[1].name = create.legs[1].interface = "b";
    create.legs[0].remote = packet::Endpoint::Parse("10.0.1.2:4000");
    create.legs[1].await_answer = true;
    absl::StatusOr<SessionInfo> info = manager_->Create(create);
    ASSERT_TRUE(info.ok()) << info.status();
    auto flow_at = [&](const packet::Endpoint& local) {
      const session::FlowKey key = session::FlowKey::From(local);
      session::FlowRef ref{};
      table_->LookupBulk(&key, 1, &ref);
      return ref.flow;
    };
    const session::Flow* into_a = flow_at(info->legs[0].local);
    const session::Flow* into_b = flow_at(info->legs[1].local);
    ASSERT_TRUE(into_a != nullptr && into_b != nullptr);
    EXPECT_FALSE(into_a->awaiting_answer.load());
    EXPECT_EQ(into_b->awaiting_answer.load(), !learn_before_answer);
    UpdateRequest update;
    update.session = "ng";
    update.leg = "b";
    ASSERT_TRUE(manager_->Update(update).ok());
    EXPECT_EQ(into_b->awaiting_answer.load(), !learn_before_answer) << "not the answer";
    update.answer = true;
    ASSERT_TRUE(manager_->Update(update).ok());
    EXPECT_FALSE(into_b->awaiting_answer.load());
  }
  config_.media.learn_before_answer = false;
}

TEST_F(SessionManagerTest, PassthroughOnlyWhenBothEndsOfADirectionAskForIt) {
  json both = {{{"name", "a"}, {"interface", "a"}, {"rx", {{"passthrough", true}}},
                {"tx", {{"passthrough", true}}}},
               {{"name", "b"}, {"interface", "b"}, {"rx", {{"passthrough", true}}},
                {"tx", {{"passthrough", true}}}}};
  json r = Call({{"op", "session.create"}, {"session", "pt"}, {"legs", both}});
  ASSERT_EQ(Code(r), "ok") << r.dump();
  EXPECT_EQ(r["legs"][0]["rx_suite"], "passthrough");
  EXPECT_EQ(r["legs"][1]["tx_suite"], "passthrough");
  json half = both;
  half[1]["tx"] = {{"plain", true}};
  json refused = Call({{"op", "session.create"}, {"session", "pt2"}, {"legs", half}});
  EXPECT_EQ(Code(refused), "invalid_argument");
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("legs[0].rx"), std::string::npos)
      << refused.dump();
}

TEST_F(SessionManagerTest, SessionLimitAndListPaging) {
  MakeManager(30000, 30099, 60, /*max_sessions=*/3);
  const char* keys[] = {kKey1, kKey2, kKey3};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Code(Create("s" + std::to_string(i), keys[i])), "ok");
  EXPECT_EQ(Code(Create("s3")), "resource_exhausted");
  json page = Call({{"op", "session.list"}, {"offset", 1}, {"limit", 1}});
  EXPECT_EQ(page["total"], 3);
  ASSERT_EQ(page["sessions"].size(), 1u);
  EXPECT_EQ(page["sessions"][0]["session"], "s1");
  json d = Call({{"op", "session.delete"}, {"session", "s1"}});
  EXPECT_EQ(Code(d), "ok");
  EXPECT_EQ(d["legs"][0]["counters"]["rx_packets"], 0) << "final counters come back";
  EXPECT_EQ(Call({{"op", "stats"}})["sessions"], 2);
  EXPECT_EQ(Call({{"op", "ping"}})["workers"], 1);
}

// stats reports the memory of the state packets read: a session and its
// contexts, from the hot arena, given back when the session is deleted.
// Each flow is installed with its leg's interface, port and VLAN, so that a
// packet addressed to it through another interface is refused.
TEST_F(SessionManagerTest, FlowsKnowTheInterfaceTheirLegIsOn) {
  json r = Create("ingress");
  ASSERT_EQ(Code(r), "ok") << r.dump();
  session::FlowKey keys[2] = {
      session::FlowKey::From(*packet::Endpoint::Parse(r["legs"][0]["local"].get<std::string>())),
      session::FlowKey::From(*packet::Endpoint::Parse(r["legs"][1]["local"].get<std::string>()))};
  session::FlowRef refs[2];
  table_->LookupBulk(keys, 2, refs);
  ASSERT_NE(refs[0].flow, nullptr);
  ASSERT_NE(refs[1].flow, nullptr);
  EXPECT_EQ(refs[0].flow->in_port, 0);
  EXPECT_EQ(refs[0].flow->in_vlan, 0);
  EXPECT_EQ(refs[1].flow->in_port, 1);
  EXPECT_EQ(refs[1].flow->in_vlan, 7);
  EXPECT_FALSE(session::ArrivedOnLeg(*refs[0].flow, 1, 7)) << "leg a's address, b's interface";
}

TEST_F(SessionManagerTest, StatsCountTheSessionsStateMemory) {
  if (!memory::HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: the hot arena passes blocks to the heap";
  }
  const json before = Call({{"op", "stats"}})["memory"];
  ASSERT_TRUE(before.is_object()) << before.dump();
  ASSERT_EQ(Code(Create("m1")), "ok");
  const json after = Call({{"op", "stats"}})["memory"];
  // Leg a receives AES-CM and sends AES-256-GCM, leg b is plain: the
  // session and two contexts.
  EXPECT_EQ(after["session_state_blocks"].get<uint64_t>() -
                before["session_state_blocks"].get<uint64_t>(),
            3u);
  EXPECT_GE(after["session_state_bytes"].get<uint64_t>() -
                before["session_state_bytes"].get<uint64_t>(),
            sizeof(session::Session));
  const uint64_t mapped = after["mapped_bytes"].get<uint64_t>();
  EXPECT_EQ(mapped % (2u << 20), 0u) << "whole 2 MiB regions";
  EXPECT_GE(mapped, after["session_state_bytes"].get<uint64_t>());
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "m1"}})), "ok");
  const json deleted = Call({{"op", "stats"}})["memory"];
  EXPECT_EQ(deleted["session_state_blocks"], before["session_state_blocks"]) << deleted.dump();
  EXPECT_EQ(deleted["session_state_bytes"], before["session_state_bytes"]);
}

// A worker that never reports a quiescent state (reader 0, registered here
// and never quiescent) must not hold up the control thread: delete returns
// at once and takes the session out of the flow table, but its memory, keys
// and ports stay until the worker has passed a quiescent state, and stats
// shows the worker stalled meanwhile.
TEST_F(SessionManagerTest, DeleteDoesNotWaitForAStalledWorkerAndReclaimsWhenItReports) {
  config_.workers.stall_ms = 20;
  MakeManager(30000, 30001, 0);  // one session's ports per interface
  table_->RegisterReader(0);
  const bool arena = memory::HotArenaUsesRegions();
  const json before = Call({{"op", "stats"}})["memory"];
  const json created = Create("s1");
  ASSERT_EQ(Code(created), "ok");

  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "s1"}})), "ok");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_EQ(Code(Call({{"op", "session.get"}, {"session", "s1"}})), "not_found");
  EXPECT_EQ(manager_->reclaiming_count(), 1u);
  // Not freed while the worker may hold a flow of it: its state memory, and
  // its ports (the only ones in the range) are still taken.
  if (arena) {
    EXPECT_NE(Call({{"op", "stats"}})["memory"]["session_state_blocks"],
              before["session_state_blocks"]);
  }
  EXPECT_EQ(Code(Create("s2", kKey2)), "resource_exhausted") << "its ports are not free yet";

  // The control loop carries on; after stall_ms the worker shows stalled.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  json stats;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    manager_->Tick();
    stats = Call({{"op", "stats"}});
  } while (!stats["workers"][0]["stalled"].get<bool>() &&
           std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(stats["workers"].size(), 1u) << stats.dump();
  EXPECT_TRUE(stats["workers"][0]["stalled"].get<bool>()) << stats.dump();
  EXPECT_GE(stats["workers"][0]["quiescent_ms_ago"].get<uint64_t>(), 20u);
  EXPECT_EQ(stats["sessions_reclaiming"], 1);
  EXPECT_EQ(manager_->reclaiming_count(), 1u) << "Tick frees nothing before the worker reports";

  table_->Quiescent(0);
  manager_->Tick();
  EXPECT_EQ(manager_->reclaiming_count(), 0u);
  stats = Call({{"op", "stats"}});
  EXPECT_FALSE(stats["workers"][0]["stalled"].get<bool>()) << stats.dump();
  EXPECT_EQ(stats["sessions_reclaiming"], 0);
  if (arena) {
    EXPECT_EQ(stats["memory"]["session_state_blocks"], before["session_state_blocks"]);
  }
  EXPECT_EQ(Code(Create("s2", kKey2)), "ok") << "ports come back once reclaimed";
  table_->UnregisterReader(0);
}

// Sessions waiting to be reclaimed count against max_sessions: a stalled
// worker cannot make deleted sessions pile up without bound.
TEST_F(SessionManagerTest, SessionsWaitingForReclaimCountAgainstTheSessionLimit) {
  MakeManager(30000, 30099, 0, /*max_sessions=*/2);
  table_->RegisterReader(0);
  ASSERT_EQ(Code(Create("s1")), "ok");
  ASSERT_EQ(Code(Create("s2", kKey2)), "ok");
  ASSERT_EQ(Code(Call({{"op", "session.delete"}, {"session", "s1"}})), "ok");
  EXPECT_EQ(Code(Create("s3", kKey3)), "resource_exhausted");
  table_->Quiescent(0);
  manager_->Tick();
  EXPECT_EQ(Code(Create("s3", kKey3)), "ok");
  table_->UnregisterReader(0);
}

// Timeouts ([media] timeout_s, silent_timeout_s, final_timeout_s) on an
// injected clock: Tick samples each direction's relayed-packet counter (a
// flow's tx_packets, which a worker bumps for each packet it relays).
class SessionTimeoutTest : public SessionManagerTest {
 protected:
  void Start(uint32_t timeout_s, uint32_t silent_timeout_s, uint32_t final_timeout_s,
             uint16_t port_max = 30003, uint32_t max_sessions = 100) {
    config_.media.timeout_s = timeout_s;
    config_.media.silent_timeout_s = silent_timeout_s;
    config_.media.final_timeout_s = final_timeout_s;
    MakeManager(30000, port_max, 0, max_sessions);
    manager_->SetClock([this] { return now_ms_; });
    manager_->SetOnExpired([this](const std::string& name) { expired_.push_back(name); });
  }
  void TearDown() override {
    SessionManagerTest::TearDown();
    config_.media = config::MediaConfig();
  }
  // The flows of a session: [i] carries what arrives on leg i.
  std::array<session::Flow*, 2> Flows(const json& created) {
    std::array<session::Flow*, 2> flows{};
    for (int i = 0; i < 2; ++i) {
      const session::FlowKey key = session::FlowKey::From(
          *packet::Endpoint::Parse(created["legs"][i]["local"].get<std::string>()));
      session::FlowRef ref{};
      table_->LookupBulk(&key, 1, &ref);
      flows[static_cast<size_t>(i)] = ref.flow;
    }
    return flows;
  }
  static void Relay(session::Flow* flow) {
    session::FlowCounters::Add(flow->counters.tx_packets[session::FlowCounters::kRtp], 1);
  }
  // Moves the clock to `at_s` seconds after the start, then ticks.
  void TickAt(uint64_t at_s) {
    now_ms_ = kStartMs + at_s * 1000;
    manager_->Tick();
  }
  bool Alive(const std::string& name) {
    return Code(Call({{"op", "session.get"}, {"session", name}})) == "ok";
  }

  static constexpr uint64_t kStartMs = 5000000;
  uint64_t now_ms_ = kStartMs;
  testing::LogCapture capture_;
  std::vector<std::string> expired_;
};

TEST_F(SessionTimeoutTest, NoMediaEitherWayForTimeoutDeletesTheSessionAndFreesItsPorts) {
  Start(60, 3600, 0);
  const json created = Create("bye-lost");
  ASSERT_EQ(Code(created), "ok");
  ASSERT_EQ(Code(Create("other", kKey2)), "ok");  // both ports of each interface taken
  const std::array<session::Flow*, 2> flows = Flows(created);
  ASSERT_TRUE(flows[0] != nullptr && flows[1] != nullptr);
  TickAt(30);
  Relay(flows[0]);
  Relay(flows[1]);
  TickAt(40);  // the last packets seen moving at 40 s
  TickAt(99);
  EXPECT_TRUE(Alive("bye-lost")) << "59 s without media";
  EXPECT_FALSE(Alive("other")) << "no media at all since it was created 99 s ago";
  EXPECT_EQ(expired_, std::vector<std::string>{"other"});
  TickAt(100);
  EXPECT_FALSE(Alive("bye-lost"));
  EXPECT_EQ(expired_, (std::vector<std::string>{"other", "bye-lost"}));
  const json stats = Call({{"op", "stats"}});
  EXPECT_EQ(stats["sessions_timed_out"]["timeout"], 2) << stats.dump();
  EXPECT_EQ(stats["sessions_timed_out"]["silent_timeout"], 0);
  EXPECT_EQ(stats["sessions_timed_out"]["final_timeout"], 0);
  const std::vector<std::string> log = capture_.Of("session.timed_out");
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1], "sluiced: level=notice event=session.timed_out session=bye-lost id=1 "
                    "reason=timeout detail=\"no packet relayed in either direction for 60 s\"");
  for (const std::string& line : capture_.lines()) EXPECT_EQ(line.find("inline:"), std::string::npos);
  // The normal delete path: the ports come back (no reuse delay here).
  EXPECT_EQ(Code(Create("next", kKey3)), "ok");
  EXPECT_EQ(Code(Create("next2", UniqueKey(2))), "ok");
}

TEST_F(SessionTimeoutTest, OneWayMediaEndsAfterSilentTimeout) {
  Start(60, 120, 0);
  const json created = Create("one-way");
  ASSERT_EQ(Code(created), "ok");
  const std::array<session::Flow*, 2> flows = Flows(created);
  for (uint64_t t = 10; t <= 110; t += 10) {
    Relay(flows[0]);  // leg a's peer sends; nothing comes back
    TickAt(t);
  }
  TickAt(119);
  EXPECT_TRUE(Alive("one-way")) << "one way is not inactivity";
  Relay(flows[0]);
  TickAt(120);
  EXPECT_FALSE(Alive("one-way"));
  EXPECT_EQ(manager_->GetStats().timed_out.silent_timeout, 1u);
  EXPECT_EQ(manager_->GetStats().timed_out.timeout, 0u);
  const std::vector<std::string> log = capture_.Of("session.timed_out");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("reason=silent_timeout detail=\"one direction relayed no packet for 120 s\""),
            std::string::npos)
      << log[0];
}

TEST_F(SessionTimeoutTest, FinalTimeoutBoundsALiveSession) {
  Start(60, 3600, 300);
  const json created = Create("long");
  ASSERT_EQ(Code(created), "ok");
  const std::array<session::Flow*, 2> flows = Flows(created);
  for (uint64_t t = 10; t < 300; t += 10) {
    Relay(flows[0]);
    Relay(flows[1]);
    TickAt(t);
  }
  EXPECT_TRUE(Alive("long"));
  Relay(flows[0]);
  Relay(flows[1]);
  TickAt(300);
  EXPECT_FALSE(Alive("long"));
  EXPECT_EQ(manager_->GetStats().timed_out.final_timeout, 1u);
  const std::vector<std::string> log = capture_.Of("session.timed_out");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("reason=final_timeout detail=\"300 s since it was created\""), std::string::npos)
      << log[0];
}

TEST_F(SessionTimeoutTest, MediaThatKeepsFlowingIsNeverReaped) {
  Start(60, 3600, 0);
  const json created = Create("talk");
  ASSERT_EQ(Code(created), "ok");
  const std::array<session::Flow*, 2> flows = Flows(created);
  for (uint64_t t = 20; t <= 4 * 3600; t += 20) {  // four hours, a packet each way every 20 s
    Relay(flows[0]);
    Relay(flows[1]);
    TickAt(t);
  }
  EXPECT_TRUE(Alive("talk"));
  EXPECT_TRUE(capture_.Of("session.timed_out").empty());
  EXPECT_EQ(manager_->GetStats().timed_out.timeout + manager_->GetStats().timed_out.silent_timeout,
            0u);
}

// A session made at the offer waits for its answer (or its first relayed
// packet) before its clocks run; an update restarts them.
TEST_F(SessionTimeoutTest, ClocksStartAtTheAnswerAndRestartOnUpdates) {
  Start(60, 3600, 0);
  CreateRequest create;
  create.session = "ringing";
  create.legs.resize(2);
  create.legs[0].name = create.legs[0].interface = "a";
  create.legs[1].name = create.legs[1].interface = "b";
  create.legs[1].await_answer = true;
  ASSERT_TRUE(manager_->Create(create).ok());
  TickAt(2 * 3600);
  EXPECT_TRUE(Alive("ringing")) << "no answer, no media: the controller's to end";
  UpdateRequest update;
  update.session = "ringing";
  update.leg = "b";
  update.answer = true;
  ASSERT_TRUE(manager_->Update(update).ok());
  TickAt(2 * 3600 + 50);
  update.answer = false;  // a re-INVITE
  ASSERT_TRUE(manager_->Update(update).ok());
  TickAt(2 * 3600 + 109);
  EXPECT_TRUE(Alive("ringing"));
  TickAt(2 * 3600 + 110);
  EXPECT_FALSE(Alive("ringing"));
  EXPECT_EQ(expired_, std::vector<std::string>{"ringing"});
}

// A call on hold (a=sendonly, a=recvonly, a=inactive) may send nothing
// either way: silent_timeout_s applies in place of timeout_s, until an
// update takes it off hold.
TEST_F(SessionTimeoutTest, AHeldSessionLastsUntilSilentTimeout) {
  Start(60, 600, 0);
  const json created = Create("held");
  ASSERT_EQ(Code(created), "ok");
  ASSERT_EQ(Code(Create("not-held", kKey2)), "ok");
  const std::array<session::Flow*, 2> flows = Flows(created);
  Relay(flows[0]);
  Relay(flows[1]);
  TickAt(10);  // media both ways, then the hold
  UpdateRequest hold;
  hold.session = "held";
  hold.leg = "b";
  hold.hold = true;
  EXPECT_FALSE(manager_->Get("held")->hold);
  ASSERT_TRUE(manager_->Update(hold).ok());
  EXPECT_TRUE(manager_->Get("held")->hold);  // session.get says so
  TickAt(10 + 599);
  EXPECT_TRUE(Alive("held")) << "quiet both ways on hold for 599 s";
  EXPECT_FALSE(Alive("not-held"));
  TickAt(10 + 600);
  EXPECT_FALSE(Alive("held"));
  EXPECT_EQ(manager_->GetStats().timed_out.silent_timeout, 1u);
  EXPECT_EQ(manager_->GetStats().timed_out.timeout, 1u);  // not-held

  // Off hold again, timeout_s applies.
  const json back = Create("back", kKey3);
  ASSERT_EQ(Code(back), "ok");
  hold.session = "back";
  ASSERT_TRUE(manager_->Update(hold).ok());
  TickAt(1000);
  hold.hold = false;
  ASSERT_TRUE(manager_->Update(hold).ok());
  EXPECT_FALSE(manager_->Get("back")->hold);
  TickAt(1059);
  EXPECT_TRUE(Alive("back"));
  TickAt(1060);
  EXPECT_FALSE(Alive("back"));
  EXPECT_EQ(manager_->GetStats().timed_out.timeout, 2u);
}

TEST_F(SessionTimeoutTest, EachTickLooksAtABoundedNumberOfSessions) {
  // A flow table of 1024 keys holds 341 sessions of three ports.
  constexpr size_t kSessions = SessionManager::kExpiryChecksPerTick + 50;
  Start(60, 3600, 0, /*port_max=*/31999, /*max_sessions=*/1000);
  for (size_t i = 0; i < kSessions; ++i) {
    ASSERT_EQ(Code(Create("s" + std::to_string(i), UniqueKey(static_cast<uint32_t>(i)))), "ok")
        << i;
  }
  TickAt(60);
  EXPECT_EQ(manager_->session_count(), kSessions - SessionManager::kExpiryChecksPerTick);
  TickAt(61);
  EXPECT_EQ(manager_->session_count(), 0u);
  EXPECT_EQ(manager_->GetStats().timed_out.timeout, kSessions);
}

TEST_F(SessionTimeoutTest, ZeroTurnsEachOff) {
  Start(0, 0, 0);
  ASSERT_EQ(Code(Create("forever")), "ok");
  TickAt(100 * 24 * 3600);
  EXPECT_TRUE(Alive("forever"));
}

}  // namespace
}  // namespace sluice::control

namespace sluice::control {
namespace {

class RequireEncryptionTest : public SessionManagerTest {
 protected:
  void Require(config::RequireEncryption need) {
    config_.media.require_encryption = need;
    MakeManager(30000, 30099, 60);
  }
  static json SdesLeg(const std::string& name, const std::string& rx) {
    return {{"name", name}, {"interface", name}, {"rx", {{"crypto", rx}}},
            {"tx", {{"suite", "AEAD_AES_128_GCM"}}}};
  }
  static json PlainLeg(const std::string& name) {
    return {{"name", name}, {"interface", name}, {"rx", {{"plain", true}}},
            {"tx", {{"plain", true}}}};
  }
  json CreateLegs(const std::string& session, json a, json b) {
    return Call({{"op", "session.create"}, {"session", session}, {"legs", {a, b}}});
  }
};

TEST_F(RequireEncryptionTest, GetAndListSayHowEachLegAndTheCallAreProtected) {
  ASSERT_EQ(Code(Create("mixed")), "ok");
  json g = Call({{"op", "session.get"}, {"session", "mixed"}});
  EXPECT_EQ(g["encryption"], "plain") << g.dump();
  EXPECT_EQ(g["legs"][0]["encryption"], "encrypted") << g.dump();
  EXPECT_EQ(g["legs"][1]["encryption"], "plain") << g.dump();
  json l = Call({{"op", "session.list"}});
  EXPECT_EQ(l["sessions"][0]["encryption"], "plain") << l.dump();
  ASSERT_EQ(Code(CreateLegs("null-auth", SdesLeg("a", kKey2),
                            SdesLeg("b", "AES_CM_128_NULL_AUTH inline:" + std::string(40, 'A')))),
            "ok");
  EXPECT_EQ(Call({{"op", "session.get"}, {"session", "null-auth"}})["encryption"],
            "unauthenticated");
  const Stats stats = manager_->GetStats();
  ASSERT_EQ(stats.sessions_by_encryption.size(), 3u);
  EXPECT_EQ(stats.sessions_by_encryption[0].second, 1u);  // plain
  EXPECT_EQ(stats.sessions_by_encryption[1].second, 1u);  // unauthenticated
}

TEST_F(RequireEncryptionTest, AllLegsRefusesACallWithAPlainLegAndLeavesNothingBehind) {
  Require(config::RequireEncryption::kAllLegs);
  testing::LogCapture capture;
  json r = Create("mixed");
  const std::vector<std::string> refused = capture.Of("session.encryption_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0], "sluiced: level=warning event=session.encryption_refused session=mixed "
                        "require_encryption=all-legs legs=\"legs[0] is encrypted, legs[1] is plain\"");
  EXPECT_EQ(Code(r), "encryption_required") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("legs[1] is plain"), std::string::npos)
      << r.dump();
  EXPECT_EQ(r.dump().find("inline:"), std::string::npos) << "no key in the error";
  EXPECT_EQ(manager_->session_count(), 0u);
  EXPECT_EQ(table_->size(), 0u);
  EXPECT_EQ(manager_->GetStats().encryption_refusals, 1u);
  // The same key is not burnt: an encrypted call with it is created.
  json ok = CreateLegs("srtp", SdesLeg("a", kKey1), SdesLeg("b", kKey2));
  ASSERT_EQ(Code(ok), "ok") << ok.dump();
  // A re-key to plain would take it below the requirement: refused too.
  json down = Call({{"op", "session.update"}, {"session", "srtp"}, {"leg", "b"},
                    {"rx", {{"plain", true}}}});
  EXPECT_EQ(Code(down), "encryption_required") << down.dump();
  EXPECT_EQ(Call({{"op", "session.get"}, {"session", "srtp"}})["legs"][1]["rx_suite"],
            "AES_CM_128_HMAC_SHA1_80");
}

TEST_F(RequireEncryptionTest, OneLegAllowsABridgeToAPlainTrunkButNotTwoPlainLegs) {
  Require(config::RequireEncryption::kOneLeg);
  testing::LogCapture capture;
  EXPECT_EQ(Code(Create("bridge")), "ok");
  const std::vector<std::string> below = capture.Of("session.not_all_encrypted");
  ASSERT_EQ(below.size(), 1u);
  EXPECT_NE(below[0].find("session=bridge encryption=plain legs=\"a encrypted, b plain\""),
            std::string::npos)
      << below[0];
  EXPECT_EQ(Code(CreateLegs("clear", PlainLeg("a"), PlainLeg("b"))), "encryption_required");
  EXPECT_EQ(Code(CreateLegs("null-auth",
                            SdesLeg("a", "AES_CM_128_NULL_AUTH inline:" + std::string(40, 'B')),
                            PlainLeg("b"))),
            "encryption_required");
}

// ng's offer (only ng makes a leg await its answer): the answerer leg has
// no receive key until the answer's update brings it.
TEST_F(RequireEncryptionTest, AnOfferAwaitingItsAnswerIsJudgedByWhatItSends) {
  Require(config::RequireEncryption::kAllLegs);
  CreateRequest offer;
  offer.session = "offer";
  offer.legs.resize(2);
  for (int i = 0; i < 2; ++i) {
    LegRequest& leg = offer.legs[static_cast<size_t>(i)];
    leg.name = leg.interface = i == 0 ? "a" : "b";
    leg.tx.kind = CryptoSpec::Kind::kGenerate;
  }
  offer.legs[0].rx.kind = CryptoSpec::Kind::kSdes;
  offer.legs[0].rx.sdes = kKey1;
  offer.legs[1].await_answer = true;
  absl::StatusOr<SessionInfo> created = manager_->Create(offer);
  ASSERT_TRUE(created.ok()) << created.status();
  UpdateRequest answer;
  answer.session = "offer";
  answer.leg = "b";
  answer.answer = true;
  answer.rx.emplace();
  answer.rx->kind = CryptoSpec::Kind::kPlain;
  absl::StatusOr<SessionInfo> plain = manager_->Update(answer);
  EXPECT_EQ(ErrorCodeFromStatus(plain.status()), ErrorCode::kEncryptionRequired) << plain.status();
  answer.rx->kind = CryptoSpec::Kind::kSdes;
  answer.rx->sdes = kKey3;
  absl::StatusOr<SessionInfo> answered = manager_->Update(answer);
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->encryption, "encrypted");
}

}  // namespace
}  // namespace sluice::control
