// session::FlowTable: keys by (local address, local port), bulk lookups with
// hits and misses, the RTCP-port flag, its capacity, and the RCU grace period
// that keeps a removed key's slot from being reused while a worker may still
// read it. EAL runs in process without hugepages.
#include "sluice/session/flow_table.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "eal_environment.h"
#include "absl/status/status.h"
#include "sluice/dpdk/eal.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow.h"

namespace sluice::session {
namespace {

using packet::Endpoint;
using packet::IpAddress;

const auto* const kEnv = sluice::testing::AddEalEnvironment("flow_table_test", 64);

// A fresh table per test: rte_hash names are global to the process.
std::unique_ptr<FlowTable> MakeTable(uint32_t capacity, uint32_t readers) {
  static int serial = 0;
  auto table = FlowTable::Create("flow_table_test" + std::to_string(serial++), capacity, readers);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : nullptr;
}

Endpoint V4(uint32_t ip, uint16_t port) { return {IpAddress::V4(ip), port}; }

// Every worker-side lookup goes through LookupBulk; one key is a burst of one.
FlowRef Lookup(const FlowTable& table, const Endpoint& local) {
  const FlowKey key = FlowKey::From(local);
  FlowRef ref{};
  table.LookupBulk(&key, 1, &ref);
  return ref;
}

TEST(FlowTableTest, AddLookupRemove) {
  auto table = MakeTable(64, 1);
  ASSERT_NE(table, nullptr);
  Flow flow;
  const Endpoint local = V4(0x0a000001, 30000);
  EXPECT_EQ(Lookup(*table, local).flow, nullptr);
  ASSERT_TRUE(table->Add(local, &flow, false).ok());
  EXPECT_EQ(table->size(), 1u);
  const FlowRef ref = Lookup(*table, local);
  EXPECT_EQ(ref.flow, &flow);
  EXPECT_FALSE(ref.rtcp_port);
  // Another port or another address on the same port is another key.
  EXPECT_EQ(Lookup(*table, V4(0x0a000001, 30002)).flow, nullptr);
  EXPECT_EQ(Lookup(*table, V4(0x0a000002, 30000)).flow, nullptr);

  ASSERT_TRUE(table->Remove(local).ok());
  EXPECT_EQ(Lookup(*table, local).flow, nullptr);
  EXPECT_EQ(table->Remove(local).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(table->Add(local, &flow, true).ok());  // the key can be added again
  EXPECT_TRUE(Lookup(*table, local).rtcp_port);
}

TEST(FlowTableTest, RtcpPortFlagComesBackWithItsFlow) {
  auto table = MakeTable(64, 1);
  ASSERT_NE(table, nullptr);
  Flow flow;
  const Endpoint rtp = V4(0x0a000001, 30000), rtcp = V4(0x0a000001, 30001);
  ASSERT_TRUE(table->Add(rtp, &flow, false).ok());
  ASSERT_TRUE(table->Add(rtcp, &flow, true).ok());
  const FlowRef a = Lookup(*table, rtp), b = Lookup(*table, rtcp);
  EXPECT_EQ(a.flow, &flow);
  EXPECT_FALSE(a.rtcp_port);
  EXPECT_EQ(b.flow, &flow);  // the flag does not disturb the pointer
  EXPECT_TRUE(b.rtcp_port);
}

TEST(FlowTableTest, DuplicateAddIsRefusedAndKeepsTheFirstFlow) {
  auto table = MakeTable(64, 1);
  ASSERT_NE(table, nullptr);
  Flow first, second;
  const Endpoint local = V4(0x0a000001, 30000);
  ASSERT_TRUE(table->Add(local, &first, false).ok());
  EXPECT_EQ(table->Add(local, &second, true).code(), absl::StatusCode::kAlreadyExists);
  const FlowRef ref = Lookup(*table, local);
  EXPECT_EQ(ref.flow, &first);
  EXPECT_FALSE(ref.rtcp_port);
  EXPECT_EQ(table->size(), 1u);
}

TEST(FlowTableTest, Ipv4AndIpv6KeysAreDistinct) {
  auto table = MakeTable(64, 1);
  ASSERT_NE(table, nullptr);
  // The IPv6 address starts with the IPv4 address's bytes: only the family
  // tells the keys apart.
  const Endpoint v4 = V4(0x0a000001, 30000);
  uint8_t bytes[16] = {};
  std::memcpy(bytes, v4.ip.bytes.data(), 4);
  const Endpoint v6{IpAddress::V6Bytes(bytes), 30000};
  const FlowKey key4 = FlowKey::From(v4), key6 = FlowKey::From(v6);
  EXPECT_NE(std::memcmp(&key4, &key6, sizeof(FlowKey)), 0);

  Flow flow4, flow6;
  ASSERT_TRUE(table->Add(v4, &flow4, false).ok());
  EXPECT_EQ(Lookup(*table, v6).flow, nullptr);
  ASSERT_TRUE(table->Add(v6, &flow6, false).ok());
  EXPECT_EQ(Lookup(*table, v4).flow, &flow4);
  EXPECT_EQ(Lookup(*table, v6).flow, &flow6);
  ASSERT_TRUE(table->Remove(v4).ok());
  EXPECT_EQ(Lookup(*table, v4).flow, nullptr);
  EXPECT_EQ(Lookup(*table, v6).flow, &flow6);
}

TEST(FlowTableTest, LookupBulkAnswersEveryKeyOfABurst) {
  auto table = MakeTable(256, 1);
  ASSERT_NE(table, nullptr);
  constexpr uint32_t kBurst = 64;  // the most one call takes
  std::array<Flow, kBurst> flows;
  // Even slots of the burst are in the table, every fourth with the RTCP-port
  // flag; odd slots are not.
  std::array<FlowKey, kBurst> keys;
  for (uint32_t i = 0; i < kBurst; ++i) {
    const Endpoint local = V4(0x0a000001 + i / 8, static_cast<uint16_t>(20000 + 2 * i));
    keys[i] = FlowKey::From(local);
    if (i % 2 == 0) {
      ASSERT_TRUE(table->Add(local, &flows[i], i % 4 == 0).ok());
    }
  }
  std::array<FlowRef, kBurst> refs;
  refs.fill(FlowRef{&flows[0], true});  // overwritten for hits and misses alike
  table->LookupBulk(keys.data(), kBurst, refs.data());
  for (uint32_t i = 0; i < kBurst; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(refs[i].flow, &flows[i]) << "key " << i;
      EXPECT_EQ(refs[i].rtcp_port, i % 4 == 0) << "key " << i;
    } else {
      EXPECT_EQ(refs[i].flow, nullptr) << "key " << i;
      EXPECT_FALSE(refs[i].rtcp_port) << "key " << i;
    }
  }
  EXPECT_EQ(table->size(), kBurst / 2);
}

TEST(FlowTableTest, LookupBulkAnswersRepeatedKeysEachTheirOwn) {
  // Runs of one key (a flow's packets back to back) take their first key's
  // answer; a key that comes back after another, a miss among hits and a
  // run of misses are answered each on its own.
  auto table = MakeTable(64, 1);
  ASSERT_NE(table, nullptr);
  Flow a, b;
  const Endpoint la = V4(0x0a000001, 30000), lb = V4(0x0a000001, 30001);
  const Endpoint absent = V4(0x0a000002, 30000);
  ASSERT_TRUE(table->Add(la, &a, false).ok());
  ASSERT_TRUE(table->Add(lb, &b, true).ok());
  const Endpoint burst[] = {la, la, la, lb, lb, absent, absent, la, lb, absent, la, la};
  constexpr uint32_t kN = std::size(burst);
  std::array<FlowKey, kN> keys;
  for (uint32_t i = 0; i < kN; ++i) keys[i] = FlowKey::From(burst[i]);
  std::array<FlowRef, kN> refs;
  refs.fill(FlowRef{&a, true});
  table->LookupBulk(keys.data(), kN, refs.data());
  for (uint32_t i = 0; i < kN; ++i) {
    const Flow* want = burst[i] == la ? &a : burst[i] == lb ? &b : nullptr;
    EXPECT_EQ(refs[i].flow, want) << "key " << i;
    EXPECT_EQ(refs[i].rtcp_port, want == &b) << "key " << i;
  }
}

TEST(FlowTableTest, RefusesKeysBeyondItsCapacity) {
  constexpr uint32_t kCapacity = 64;
  auto table = MakeTable(kCapacity, 1);
  ASSERT_NE(table, nullptr);
  Flow flow;
  for (uint32_t i = 0; i < kCapacity; ++i) {
    ASSERT_TRUE(table->Add(V4(0x0a000001, static_cast<uint16_t>(10000 + i)), &flow, false).ok())
        << "key " << i;
  }
  EXPECT_EQ(table->size(), kCapacity);
  const Endpoint extra = V4(0x0a000002, 10000);
  EXPECT_EQ(table->Add(extra, &flow, false).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Lookup(*table, extra).flow, nullptr);
  EXPECT_EQ(table->size(), kCapacity);
}

// Fills the table, removes one key and adds another while reader 0 is online
// and has not reported quiescence since the removal: the removed key's slot
// must not be reused (a worker may still be reading it) until it does.
TEST(FlowTableTest, RemovedSlotIsReusedOnlyAfterEveryReaderIsQuiescent) {
  constexpr uint32_t kCapacity = 64;
  auto table = MakeTable(kCapacity, 2);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);
  table->RegisterReader(1);
  Flow flow;
  for (uint32_t i = 0; i < kCapacity; ++i) {
    ASSERT_TRUE(table->Add(V4(0x0a000001, static_cast<uint16_t>(10000 + i)), &flow, false).ok());
  }
  const Endpoint removed = V4(0x0a000001, 10000), added = V4(0x0a000002, 10000);
  ASSERT_TRUE(table->Remove(removed).ok());
  EXPECT_EQ(Lookup(*table, removed).flow, nullptr);  // gone for new lookups at once
  EXPECT_EQ(table->size(), kCapacity);  // size() counts its slot until it is reclaimed
  EXPECT_EQ(table->Add(added, &flow, false).code(), absl::StatusCode::kResourceExhausted);

  table->Quiescent(0);  // one reader is not enough
  EXPECT_EQ(table->Add(added, &flow, false).code(), absl::StatusCode::kResourceExhausted);
  table->Quiescent(1);
  EXPECT_TRUE(table->Add(added, &flow, false).ok());
  EXPECT_EQ(Lookup(*table, added).flow, &flow);
  table->UnregisterReader(0);
  table->UnregisterReader(1);
}

TEST(FlowTableTest, SynchronizeWaitsForEveryRegisteredReader) {
  auto table = MakeTable(64, 2);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);
  table->RegisterReader(1);
  Flow flow;
  const Endpoint local = V4(0x0a000001, 30000);
  ASSERT_TRUE(table->Add(local, &flow, false).ok());
  ASSERT_TRUE(table->Remove(local).ok());

  std::atomic<bool> done{false};
  std::thread control([&] {
    table->Synchronize();
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load()) << "returned while both readers could still hold the flow";
  table->Quiescent(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load()) << "returned while reader 1 could still hold the flow";
  table->Quiescent(1);
  control.join();
  EXPECT_TRUE(done.load());
  table->UnregisterReader(0);
  table->UnregisterReader(1);
}

TEST(FlowTableTest, SynchronizeIgnoresUnregisteredReaders) {
  auto table = MakeTable(64, 2);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);
  table->RegisterReader(1);
  table->UnregisterReader(1);  // a stopped worker holds nothing
  std::atomic<bool> done{false};
  std::thread control([&] {
    table->Synchronize();
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());
  table->Quiescent(0);
  control.join();
  EXPECT_TRUE(done.load());
  table->UnregisterReader(0);
}

// The control loop's grace period: a token, polled, never waited for.
TEST(FlowTableTest, GracePeriodIsOverOnceEveryOnlineReaderHasReported) {
  auto table = MakeTable(64, 3);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);
  table->RegisterReader(1);
  table->RegisterReader(2);
  table->UnregisterReader(2);  // offline: holds nothing
  EXPECT_EQ(table->ReaderCounter(2), 0u);
  EXPECT_NE(table->ReaderCounter(0), 0u) << "online";
  Flow flow;
  const Endpoint local = V4(0x0a000001, 30000);
  ASSERT_TRUE(table->Add(local, &flow, false).ok());
  ASSERT_TRUE(table->Remove(local).ok());
  const uint64_t token = table->StartGracePeriod();
  EXPECT_FALSE(table->GracePeriodOver(token));
  EXPECT_LT(table->ReaderCounter(0), token);
  table->Quiescent(0);
  EXPECT_GE(table->ReaderCounter(0), token);
  // Reader 1 stalls: however often the control loop asks, not over.
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(table->GracePeriodOver(token));
  const uint64_t later = table->StartGracePeriod();
  EXPECT_GT(later, token);
  table->Quiescent(1);
  EXPECT_TRUE(table->GracePeriodOver(token));
  EXPECT_FALSE(table->GracePeriodOver(later)) << "reader 0 has not reported since";
  // Reader 1 reported after `later` began; a reader that stops ends every
  // grace period it held up.
  table->UnregisterReader(0);
  EXPECT_TRUE(table->GracePeriodOver(later));
  table->UnregisterReader(1);
  EXPECT_EQ(table->ReaderCounter(1), 0u);
}

}  // namespace
}  // namespace sluice::session
