// A call as the data plane carries it: what Session::Create builds from two
// leg specifications, and how a session enters and leaves the flow table.
#include "sluice/session/session.h"

#include <gtest/gtest.h>

#include "eal_environment.h"
#include "sluice/dpdk/eal.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/rekey.h"

namespace sluice::session {
namespace {

const auto* const kEnv = sluice::testing::AddEalEnvironment("session_test", 64);

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

srtp::MasterKey Key(uint8_t fill) {
  srtp::MasterKey key;
  key.key.fill(fill);
  key.salt.fill(static_cast<uint8_t>(fill ^ 0x5a));
  return key;
}

// Leg a: keyed both ways, on port 1 with VLAN 10; leg b: plain, port 2.
std::pair<LegSpec, LegSpec> Legs() {
  LegSpec a;
  a.name = "a";
  a.port_id = 1;
  a.port_mac = {2, 0, 0, 0, 0, 1};
  a.vlan = 10;
  a.local = Ep("10.0.0.1:20000");
  a.remote = Ep("192.0.2.10:4000");
  a.remote_mac = packet::MacAddress{2, 0, 0, 0, 0, 0x10};
  a.rx_keys = {Key(1)};
  a.tx_keys = {Key(2)};
  LegSpec b;
  b.name = "b";
  b.port_id = 2;
  b.port_mac = {2, 0, 0, 0, 0, 2};
  b.local = Ep("10.1.0.1:30000");
  b.rtcp_mux = false;
  return {a, b};
}

TEST(SessionTest, EachFlowCarriesOneLegsPacketsToTheOther) {
  auto [a, b] = Legs();
  auto s = Session::Create(7, a, b, {});
  ASSERT_TRUE(s.ok()) << s.status();
  const Flow& f0 = (*s)->flow(0);
  const Flow& f1 = (*s)->flow(1);
  EXPECT_EQ(f0.id, 14u);
  EXPECT_EQ(f1.id, 15u);
  // a's packets: unprotected with a's receive key, sent plain from b.
  EXPECT_NE(f0.rx, nullptr);
  EXPECT_EQ(f0.tx, nullptr);
  EXPECT_EQ(f0.in_port, 1);  // a's packets arrive through a's interface only
  EXPECT_EQ(f0.in_vlan, 10);
  EXPECT_TRUE(ArrivedOnLeg(f0, 1, 10));
  EXPECT_FALSE(ArrivedOnLeg(f0, 2, 10));
  EXPECT_FALSE(ArrivedOnLeg(f0, 1, 0));
  EXPECT_EQ(f1.in_port, 2);
  EXPECT_EQ(f1.in_vlan, 0);
  EXPECT_EQ(f0.out_port, 2);
  EXPECT_EQ(f0.out_local, Ep("10.1.0.1:30000"));
  EXPECT_FALSE(f0.out_rtcp_mux);
  EXPECT_TRUE(f0.rtcp_mux);
  // b's packets: plain in, protected with a's send key, out of port 1 on VLAN 10.
  EXPECT_EQ(f1.rx, nullptr);
  EXPECT_NE(f1.tx, nullptr);
  EXPECT_EQ(f1.out_port, 1);
  EXPECT_EQ(f1.out_vlan, 10);
  EXPECT_EQ(f1.out_src_mac, a.port_mac);
  EXPECT_FALSE(f1.rtcp_mux);
  EXPECT_EQ(f0.in_remote, f1.out_remote);
  EXPECT_EQ(f1.in_remote, f0.out_remote);
  // The given peer, with its next hop; the other is not known yet.
  EXPECT_TRUE((*s)->remote(0).known);
  EXPECT_TRUE((*s)->remote(0).has_mac);
  EXPECT_EQ((*s)->remote(0).endpoint, Ep("192.0.2.10:4000"));
  EXPECT_FALSE((*s)->remote(1).known);
  EXPECT_EQ((*s)->local(0), a.local);
  EXPECT_EQ((*s)->local(1), b.local);
  EXPECT_EQ((*s)->newest_rx(0), f0.rx);
}

TEST(SessionTest, CreateRefusesLegsItCannotCarry) {
  auto [a, b] = Legs();
  LegSpec no_local = a;
  no_local.local = packet::Endpoint{};
  EXPECT_FALSE(Session::Create(1, no_local, b, {}).ok());
  LegSpec other_family = a;
  other_family.remote = Ep("[2001:db8::1]:4000");
  auto s = Session::Create(1, other_family, b, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("family"), std::string::npos) << s.status();
  LegSpec strict = b;
  strict.strict_source = true;
  EXPECT_FALSE(Session::Create(1, a, strict, {}).ok());
  LegSpec bad_key = a;
  bad_key.rx_keys = {Key(1), Key(1)};  // two keys, no MKIs, no trial keys
  s = Session::Create(1, bad_key, b, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("legs[0].rx"), std::string::npos) << s.status();
}

TEST(SessionTest, PublishAddsEveryPortAndUnpublishRemovesThem) {
  auto table = FlowTable::Create("session_test_publish", 64, 1);
  ASSERT_TRUE(table.ok()) << table.status();
  auto [a, b] = Legs();
  auto s = Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Publish(**table).ok());
  EXPECT_EQ((*table)->size(), 3u) << "a's RTP port, b's RTP and RTCP ports";
  const FlowKey keys[] = {FlowKey::From(Ep("10.0.0.1:20000")), FlowKey::From(Ep("10.1.0.1:30000")),
                          FlowKey::From(Ep("10.1.0.1:30001")), FlowKey::From(Ep("10.0.0.1:20001"))};
  FlowRef refs[4];
  (*table)->LookupBulk(keys, 4, refs);
  EXPECT_EQ(refs[0].flow, &(*s)->flow(0));
  EXPECT_FALSE(refs[0].rtcp_port);
  EXPECT_EQ(refs[1].flow, &(*s)->flow(1));
  EXPECT_FALSE(refs[1].rtcp_port);
  EXPECT_EQ(refs[2].flow, &(*s)->flow(1));
  EXPECT_TRUE(refs[2].rtcp_port);
  EXPECT_EQ(refs[3].flow, nullptr) << "a muxes RTCP";

  // A second session on one of those addresses is refused, and leaves
  // nothing of its own behind.
  LegSpec c = a;
  c.local = Ep("10.0.0.2:20000");
  auto clash = Session::Create(2, c, b, {});
  ASSERT_TRUE(clash.ok());
  EXPECT_FALSE((*clash)->Publish(**table).ok());
  const FlowKey clash_key = FlowKey::From(Ep("10.0.0.2:20000"));
  FlowRef clash_ref;
  (*table)->LookupBulk(&clash_key, 1, &clash_ref);
  EXPECT_EQ(clash_ref.flow, nullptr);
  (*table)->LookupBulk(keys, 4, refs);
  EXPECT_EQ(refs[1].flow, &(*s)->flow(1)) << "the first session keeps its ports";

  (*s)->Unpublish(**table);
  (*table)->Synchronize();
  (*table)->LookupBulk(keys, 4, refs);
  for (const FlowRef& ref : refs) EXPECT_EQ(ref.flow, nullptr);
}

TEST(SessionTest, HandOverGoesThroughTheRekeyProtocol) {
  auto [a, b] = Legs();
  auto s = Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok());
  Session& session = **s;
  srtp::Context* old_rx = session.flow(0).rx;
  const srtp::MasterKey k = Key(9);
  auto next = srtp::Context::Create(std::span<const srtp::MasterKey>(&k, 1), {});
  ASSERT_TRUE(next.ok());
  srtp::Context* next_ptr = next->get();
  session.HandOverRx(0, *std::move(next));
  EXPECT_EQ(session.newest_rx(0), next_ptr);
  EXPECT_TRUE(session.HandOverPending());
  EXPECT_EQ(session.CollectRetired(), 0) << "not adopted yet";
  // The owning worker adopts on its next burst.
  rekey::Adopt(session.mutable_flow(0), 0);
  EXPECT_EQ(session.flow(0).rx, next_ptr);
  EXPECT_EQ(session.flow(0).rx_retired.load(), old_rx);
  EXPECT_EQ(session.CollectRetired(), 1);
  EXPECT_FALSE(session.HandOverPending());

  // b's send side (flow 0's protect side) to plain, then a second offer
  // before the worker looked: the first is freed, the second adopted.
  session.HandOverTx(1, nullptr);
  const srtp::MasterKey k2 = Key(10);
  auto tx = srtp::Context::Create(std::span<const srtp::MasterKey>(&k2, 1), {});
  srtp::Context* tx_ptr = tx->get();
  session.HandOverTx(1, *std::move(tx));
  rekey::Adopt(session.mutable_flow(0), 0);
  EXPECT_EQ(session.flow(0).tx, tx_ptr);
  EXPECT_EQ(session.CollectRetired(), 0) << "flow 0 sent plain before";
}

// A WebRTC leg: the handshake flag is its own flow's (what arrives at its
// port); pending keys stop both flows, which carry its receive keys and its
// send keys.
TEST(SessionTest, HandshakeIsTheLegsFlowsAndPendingKeysStopBothFlows) {
  auto [a, b] = Legs();
  b.handshake = true;
  b.keys_pending = true;
  auto s = Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok());
  Session& session = **s;
  EXPECT_FALSE(session.flow(0).handshake.load());
  EXPECT_TRUE(session.flow(1).handshake.load());
  EXPECT_TRUE(session.flow(0).keys_pending.load()) << "b's send keys";
  EXPECT_TRUE(session.flow(1).keys_pending.load()) << "b's receive keys";
  session.SetKeysPending(0, true);
  session.SetKeysPending(1, false);
  EXPECT_TRUE(session.flow(0).keys_pending.load()) << "a's are still pending";
  EXPECT_TRUE(session.flow(1).keys_pending.load());
  session.SetKeysPending(0, false);
  EXPECT_FALSE(session.flow(0).keys_pending.load());
  EXPECT_FALSE(session.flow(1).keys_pending.load());
  session.SetHandshake(1, false);
  session.SetHandshake(0, true);
  EXPECT_TRUE(session.flow(0).handshake.load());
  EXPECT_FALSE(session.flow(1).handshake.load());
}

// Keys from a handshake replace contexts the worker parked when the leg
// went pending: clearing the flag collects them first, so the worker's next
// burst adopts the new keys (it adopts only with nothing parked).
TEST(SessionTest, ClearingPendingKeysLetsTheWorkerAdoptTheNewOnes) {
  auto [a, b] = Legs();  // a keyed (SDES)
  auto s = Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok());
  Session& session = **s;
  session.SetKeysPending(0, true);
  session.HandOverRx(0, nullptr);  // a's keys will come from a handshake
  rekey::Adopt(session.mutable_flow(0), 0);
  ASSERT_EQ(session.flow(0).rx, nullptr);
  ASSERT_NE(session.flow(0).rx_retired.load(), nullptr) << "parked, not collected yet";
  const srtp::MasterKey k = Key(11);
  auto keyed = srtp::Context::Create(std::span<const srtp::MasterKey>(&k, 1), {});
  ASSERT_TRUE(keyed.ok());
  srtp::Context* keyed_ptr = keyed->get();
  session.HandOverRx(0, *std::move(keyed));
  session.SetKeysPending(0, false);
  EXPECT_EQ(session.flow(0).rx_retired.load(), nullptr);
  rekey::Adopt(session.mutable_flow(0), 0);
  EXPECT_EQ(session.flow(0).rx, keyed_ptr);
}

TEST(SessionTest, RateLimitAndRemoteApplyToTheFlows) {
  auto [a, b] = Legs();
  auto s = Session::Create(1, a, b, {});
  ASSERT_TRUE(s.ok());
  (*s)->SetRateLimit(1000, 1'000'000'000);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*s)->flow(i).rate_interval_tsc, 1'000'000u);
    EXPECT_GT((*s)->flow(i).rate_tolerance_tsc, 0u);
  }
  (*s)->SetRateLimit(0, 1'000'000'000);
  EXPECT_EQ((*s)->flow(0).rate_interval_tsc, 0u);
  (*s)->SetRemote(1, Ep("198.51.100.1:6000"));
  EXPECT_TRUE((*s)->remote(1).known);
  EXPECT_FALSE((*s)->remote(1).learned);
  EXPECT_EQ((*s)->remote(1).endpoint, Ep("198.51.100.1:6000"));
  (*s)->SetOwner(3);
  EXPECT_EQ((*s)->flow(0).owner, 3);
  EXPECT_EQ((*s)->flow(1).owner, 3);
}

}  // namespace
}  // namespace sluice::session
