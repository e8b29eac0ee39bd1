// The session manager's WebRTC side against a recording MediaHandshakes:
// what a dtls or ice leg asks of the handshakes at create, update and
// delete, what its flows do while keys are pending, and how each event
// (selected peer, keys, failure, lost consent) changes the session.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eal_environment.h"
#include "sluice/control/protocol.h"
#include "sluice/control/session_manager.h"
#include "sluice/session/flow_table.h"
#include "sluice/srtp/sdes.h"

namespace sluice::control {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const auto* const kEnv = sluice::testing::AddEalEnvironment("session_handshakes_test", 128);

constexpr char kFp[] =
    "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AA:3A:8F:B6:0C:E3:"
    "2E:9C:F6:47:2D";

// Records what the manager asks; answers with a fixed view.
class RecordingHandshakes : public MediaHandshakes {
 public:
  struct Leg {
    HandshakeLegId id;
    bool dtls = false, ice = false;
    std::optional<packet::Endpoint> remote;
    int updates = 0;
  };
  absl::StatusOr<HandshakeView> Add(const HandshakeLegId& id, const packet::Endpoint& local,
                                    const std::optional<DtlsSpec>& dtls,
                                    const std::optional<IceSpec>& ice,
                                    const std::optional<packet::Endpoint>& remote) override {
    if (dtls && dtls->fingerprints[0] == "bad") {
      return absl::InvalidArgumentError("dtls.fingerprints[0]: not a fingerprint");
    }
    legs[local.ToString()] = Leg{id, dtls.has_value(), ice.has_value(), remote, 0};
    return ViewOf(local);
  }
  absl::StatusOr<HandshakeView> Update(const HandshakeLegId& id, const packet::Endpoint& local,
                                       const std::optional<DtlsSpec>& dtls,
                                       const std::optional<IceSpec>& ice) override {
    Leg& leg = legs.at(local.ToString());
    leg.id = id;
    ++leg.updates;
    return ViewOf(local);
  }
  void Remove(const packet::Endpoint& local) override {
    legs.erase(local.ToString());
    removed.push_back(local.ToString());
  }
  std::optional<HandshakeView> View(const packet::Endpoint& local) const override {
    if (legs.count(local.ToString()) == 0) return std::nullopt;
    return ViewOf(local);
  }
  HandshakeView ViewOf(const packet::Endpoint& local) const {
    const Leg& leg = legs.at(local.ToString());
    HandshakeView v;
    if (leg.dtls) v.dtls = LegInfo::Dtls{dtls_state, "", "passive", kFp, dtls_profile};
    if (leg.ice) v.ice = LegInfo::Ice{"ufrg", "PWDPWDPWDPWDPWDPWDPWDPWD", {"c"}, {}, {}};
    return v;
  }
  std::map<std::string, Leg> legs;
  std::vector<std::string> removed;
  // What the handshake thread's view says of every DTLS leg.
  std::string dtls_state = "handshaking";
  std::string dtls_profile;
};

srtp::MasterKey FreshKey(uint8_t fill) {
  srtp::MasterKey k;
  k.suite = crypto::Suite::kAesCm128HmacSha1_80;
  k.key.fill(fill);
  k.salt.fill(static_cast<uint8_t>(fill + 1));
  return k;
}

class SessionHandshakesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.media.port_min = 30000;
    config_.media.port_max = 30099;
    std::vector<InterfaceInfo> ifaces(2);
    ifaces[0].name = "a";
    ifaces[0].ipv4 = *packet::Prefix::Parse("10.0.1.1/24");
    ifaces[1].name = "b";
    ifaces[1].port_id = 1;
    ifaces[1].ipv4 = *packet::Prefix::Parse("10.0.2.1/24");
    table_ = *session::FlowTable::Create("hs_flows_" + std::to_string(counter_++), 1024, 1);
    manager_ = std::make_unique<SessionManager>(config_, ifaces, *table_, 1, 1000000000);
    manager_->SetMediaHandshakes(&handshakes_);
  }
  void TearDown() override {
    manager_.reset();
    table_.reset();
  }
  json Call(json request) {
    request["id"] = 1;
    return json::parse(HandleLine(*manager_, request.dump()));
  }
  // Leg a: a browser (dtls and ice); leg b: a plain phone.
  json CreateWebRtc(const std::string& name, const std::string& fingerprint = kFp) {
    json a = {{"name", "a"}, {"interface", "a"}, {"rtcp", "mux"},
              {"dtls", {{"setup", "actpass"}, {"fingerprints", {fingerprint}}}}, {"ice", json::object()}};
    json b = {{"name", "b"}, {"interface", "b"}, {"remote", "10.0.2.2:5000"},
              {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}};
    return Call({{"op", "session.create"}, {"session", name}, {"legs", {a, b}}});
  }
  session::Flow* FlowOf(const json& created, int leg) {
    const session::FlowKey key = session::FlowKey::From(
        *packet::Endpoint::Parse(created["legs"][leg]["local"].get<std::string>()));
    session::FlowRef ref{};
    table_->LookupBulk(&key, 1, &ref);
    return ref.flow;
  }
  HandshakeEvent Event(HandshakeEvent::Kind kind, const std::string& session, int leg) {
    HandshakeEvent e;
    e.kind = kind;
    e.id = handshakes_.legs.begin()->second.id;
    e.id.session = session;
    e.id.leg = leg;
    return e;
  }

  config::Config config_;
  RecordingHandshakes handshakes_;
  std::unique_ptr<session::FlowTable> table_;
  std::unique_ptr<SessionManager> manager_;
  inline static int counter_ = 0;
};

TEST_F(SessionHandshakesTest, WebRtcLegWaitsForKeysThenRelays) {
  const json r = CreateWebRtc("call");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  ASSERT_EQ(handshakes_.legs.size(), 1u);
  EXPECT_EQ(handshakes_.legs.begin()->first, r["legs"][0]["local"]);
  EXPECT_EQ(r["legs"][0]["dtls"]["state"], "handshaking");
  EXPECT_EQ(r["legs"][0]["ice"]["pwd"], "PWDPWDPWDPWDPWDPWDPWDPWD");  // create reply only
  EXPECT_EQ(r["legs"][0]["rx_suite"], "pending");
  session::Flow* in = FlowOf(r, 0);
  session::Flow* out = FlowOf(r, 1);
  ASSERT_TRUE(in != nullptr && out != nullptr);
  EXPECT_TRUE(in->handshake.load());
  EXPECT_FALSE(out->handshake.load());
  // Nothing relays, either way, until the handshake's keys come.
  EXPECT_TRUE(in->keys_pending.load());
  EXPECT_TRUE(out->keys_pending.load());
  const json got = Call({{"op", "session.get"}, {"session", "call"}});
  EXPECT_FALSE(got["legs"][0]["ice"].contains("pwd"));

  HandshakeEvent selected = Event(HandshakeEvent::Kind::kSelected, "call", 0);
  selected.peer = *packet::Endpoint::Parse("10.0.1.9:6000");
  manager_->OnHandshakeEvent(selected);
  EXPECT_EQ(manager_->Get("call")->legs[0].remote->ToString(), "10.0.1.9:6000");
  EXPECT_TRUE(in->keys_pending.load()) << "a selected peer is no key";

  HandshakeEvent keyed = Event(HandshakeEvent::Kind::kKeyed, "call", 0);
  keyed.rx = FreshKey(1);
  keyed.tx = FreshKey(3);
  manager_->OnHandshakeEvent(keyed);
  EXPECT_FALSE(in->keys_pending.load());
  EXPECT_FALSE(out->keys_pending.load());
  EXPECT_EQ(manager_->Get("call")->legs[0].rx_suite, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(manager_->Get("call")->legs[0].tx_suite, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(manager_->GetStats().webrtc.dtls_keyed, 1u);
  EXPECT_EQ(manager_->GetStats().webrtc.ice_selected, 1u);

  // Consent lost: media stops both ways until the peer checks again.
  manager_->OnHandshakeEvent(Event(HandshakeEvent::Kind::kConsentLost, "call", 0));
  EXPECT_TRUE(in->keys_pending.load());
  manager_->OnHandshakeEvent(selected);
  EXPECT_FALSE(in->keys_pending.load());

  const std::string local = r["legs"][0]["local"];
  ASSERT_TRUE(manager_->Delete("call").ok());
  EXPECT_THAT(handshakes_.removed, ::testing::ElementsAre(local));
}

// The handshake thread's view says keyed a moment before the control
// thread has installed the keys (the kKeyed event is still queued): the
// reply says keyed only with the keys in, so "keyed" never goes with
// rx_suite "pending". The same for a re-key's new handshake; keys the
// manager refuses show as failed, with why.
TEST_F(SessionHandshakesTest, KeyedIsShownOnlyOnceTheKeysAreInstalled) {
  const json r = CreateWebRtc("call");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  handshakes_.dtls_state = "keyed";
  handshakes_.dtls_profile = "AES_CM_128_HMAC_SHA1_80";
  auto get = [&] { return Call({{"op", "session.get"}, {"session", "call"}})["legs"][0]; };
  json leg = get();
  EXPECT_EQ(leg["dtls"]["state"], "handshaking") << leg.dump();
  EXPECT_TRUE(leg["dtls"]["profile"].is_null()) << leg.dump();
  EXPECT_EQ(leg["rx_suite"], "pending");

  // The current handshake's keys (the first's again, the second time).
  auto deliver_keys = [&] {
    HandshakeEvent keyed = Event(HandshakeEvent::Kind::kKeyed, "call", 0);
    keyed.rx = FreshKey(11);
    keyed.tx = FreshKey(13);
    manager_->OnHandshakeEvent(keyed);
    return get();
  };
  leg = deliver_keys();
  EXPECT_EQ(leg["dtls"]["state"], "keyed") << leg.dump();
  EXPECT_EQ(leg["dtls"]["profile"], "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(leg["rx_suite"], "AES_CM_128_HMAC_SHA1_80");

  // A re-key: its handshake keyed on the handshake thread, its keys not in.
  const json updated = Call({{"op", "session.update"}, {"session", "call"}, {"leg", "a"},
                             {"dtls", {{"setup", "active"}, {"fingerprints", {kFp}}}}});
  ASSERT_FALSE(updated.contains("error")) << updated.dump();
  EXPECT_EQ(get()["dtls"]["state"], "handshaking");
  // Its keys repeat the first handshake's: refused, and shown as failed.
  leg = deliver_keys();
  EXPECT_EQ(leg["dtls"]["state"], "failed") << leg.dump();
  EXPECT_THAT(leg["dtls"]["reason"].get<std::string>(), HasSubstr("keys refused")) << leg.dump();
  EXPECT_EQ(manager_->GetStats().webrtc.dtls_failed, 1u);
}

TEST_F(SessionHandshakesTest, StaleAndForeignEventsChangeNothing) {
  const json r = CreateWebRtc("call");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  session::Flow* in = FlowOf(r, 0);
  // A re-key by a new handshake: keys of the replaced one are ignored.
  HandshakeEvent old_keys = Event(HandshakeEvent::Kind::kKeyed, "call", 0);
  old_keys.rx = FreshKey(5);
  old_keys.tx = FreshKey(7);
  const json updated = Call({{"op", "session.update"}, {"session", "call"}, {"leg", "a"},
                             {"dtls", {{"setup", "active"}, {"fingerprints", {kFp}}}}});
  ASSERT_FALSE(updated.contains("error")) << updated.dump();
  EXPECT_EQ(handshakes_.legs.begin()->second.updates, 1);
  manager_->OnHandshakeEvent(old_keys);
  EXPECT_TRUE(in->keys_pending.load());
  EXPECT_EQ(manager_->GetStats().webrtc.dtls_keyed, 0u);
  // Another session's name, or a leg out of range: ignored.
  HandshakeEvent foreign = Event(HandshakeEvent::Kind::kKeyed, "nosuch", 0);
  manager_->OnHandshakeEvent(foreign);
  foreign.id.session = "call";
  foreign.id.leg = 7;
  manager_->OnHandshakeEvent(foreign);
  EXPECT_TRUE(in->keys_pending.load());
  // A failure of the current handshake is counted; the leg stays closed.
  HandshakeEvent failed = Event(HandshakeEvent::Kind::kFailed, "call", 0);
  failed.reason = "fingerprint mismatch";
  manager_->OnHandshakeEvent(failed);
  EXPECT_EQ(manager_->GetStats().webrtc.dtls_failed, 1u);
  EXPECT_TRUE(in->keys_pending.load());
}

TEST_F(SessionHandshakesTest, RefusalsLeaveNothingBehind) {
  json r = CreateWebRtc("call", "bad");
  EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("legs[0].dtls.fingerprints[0]"));
  EXPECT_TRUE(handshakes_.legs.empty());
  EXPECT_EQ(manager_->session_count(), 0u);
  // rx/tx on a DTLS leg, dtls on a leg without it.
  ASSERT_FALSE(CreateWebRtc("call").contains("error"));
  r = Call({{"op", "session.update"}, {"session", "call"}, {"leg", "a"},
            {"rx", {{"plain", true}}}});
  EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("DTLS handshake"));
  r = Call({{"op", "session.update"}, {"session", "call"}, {"leg", "b"},
            {"dtls", {{"setup", "active"}, {"fingerprints", {kFp}}}}});
  EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("dtls: the leg was not created with it"));
  // Without a handshake thread, WebRTC legs are refused.
  manager_->SetMediaHandshakes(nullptr);
  r = CreateWebRtc("other");
  EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("no handshake thread"));
}

}  // namespace
}  // namespace sluice::control
