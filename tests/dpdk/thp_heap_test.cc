// A DPDK heap on transparent hugepages: allocations, mempools and the flow
// table land in its memory, it refuses to grow past its size, and it goes
// away cleanly (or stays mapped while something still uses it).
#include "sluice/dpdk/thp_heap.h"

#include <gtest/gtest.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include <cstring>

#include "eal_environment.h"
#include "sluice/dpdk/eal.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow.h"
#include "sluice/session/flow_table.h"
#include "smaps.h"

namespace sluice::dpdk {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

const auto* const kEnv = sluice::testing::AddEalEnvironment("thp_heap_test", 64);

bool Inside(const ThpHeap& heap, const void* p, size_t len) {
  const auto* base = static_cast<const uint8_t*>(heap.base());
  const auto* q = static_cast<const uint8_t*>(p);
  return q >= base && q + len <= base + heap.bytes();
}

TEST(ThpHeapTest, IsHugepageAlignedAndHasItsOwnSocket) {
  auto heap = ThpHeap::Create("thp_align", 7 * kMiB + 1);
  ASSERT_TRUE(heap.ok()) << heap.status();
  EXPECT_EQ((*heap)->bytes(), 8 * kMiB);  // rounded up to whole 2 MiB pages
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*heap)->base()) % (2 * kMiB), 0u);
  EXPECT_GE((*heap)->socket_id(), 0);
  EXPECT_NE((*heap)->socket_id(), static_cast<int>(rte_socket_id()));
  EXPECT_EQ(rte_malloc_heap_get_socket("thp_align"), (*heap)->socket_id());
}

TEST(ThpHeapTest, AllocationsComeFromItsMemoryAndStopAtItsSize) {
  auto heap = ThpHeap::Create("thp_alloc", 4 * kMiB);
  ASSERT_TRUE(heap.ok()) << heap.status();
  const int socket = (*heap)->socket_id();
  void* a = rte_malloc_socket("a", 1 * kMiB, 64, socket);
  void* b = rte_zmalloc_socket("b", 1 * kMiB, 64, socket);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(Inside(**heap, a, kMiB));
  EXPECT_TRUE(Inside(**heap, b, kMiB));
  std::memset(a, 0x5a, kMiB);
  EXPECT_EQ(static_cast<uint8_t*>(b)[kMiB - 1], 0);
  EXPECT_EQ(static_cast<uint8_t*>(a)[kMiB - 1], 0x5a);
  // A heap of 4 MiB cannot hold another 4 MiB, and does not spill elsewhere.
  EXPECT_EQ(rte_malloc_socket("c", 4 * kMiB, 64, socket), nullptr);
  rte_malloc_socket_stats stats;
  ASSERT_EQ(rte_malloc_get_socket_stats(socket, &stats), 0);
  EXPECT_GE(stats.heap_allocsz_bytes, 2 * kMiB);
  rte_free(a);
  rte_free(b);
  ASSERT_EQ(rte_malloc_get_socket_stats(socket, &stats), 0);
  EXPECT_EQ(stats.heap_allocsz_bytes, 0u);
}

TEST(ThpHeapTest, IsAdvisedForTransparentHugepages) {
  if (!testing::ThpAvailable()) {
    GTEST_SKIP() << "transparent hugepages are off on this kernel (" << testing::ThpMode() << ")";
  }
  auto heap = ThpHeap::Create("thp_advised", 4 * kMiB);
  ASSERT_TRUE(heap.ok()) << heap.status();
  void* p = rte_zmalloc_socket("p", 4096, 64, (*heap)->socket_id());
  ASSERT_NE(p, nullptr);
  const std::string eligible = testing::ThpEligible(p);
  ASSERT_FALSE(eligible.empty()) << "no THPeligible field for the heap's mapping";
  EXPECT_EQ(std::stoi(eligible), 1) << "THP mode: " << testing::ThpMode();
  rte_free(p);
}

TEST(ThpHeapTest, HoldsAPacketPool) {
  auto heap = ThpHeap::Create("thp_pool", 16 * kMiB);
  ASSERT_TRUE(heap.ok()) << heap.status();
  rte_mempool* pool = rte_pktmbuf_pool_create("thp_mbufs", 1023, 32, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, (*heap)->socket_id());
  ASSERT_NE(pool, nullptr) << rte_strerror(rte_errno);
  rte_mbuf* m[8];
  ASSERT_EQ(rte_pktmbuf_alloc_bulk(pool, m, 8), 0);
  for (rte_mbuf* mb : m) {
    EXPECT_TRUE(Inside(**heap, mb, sizeof(rte_mbuf)));
    char* data = rte_pktmbuf_append(mb, 1000);
    ASSERT_NE(data, nullptr);
    EXPECT_TRUE(Inside(**heap, data, 1000));
    std::memset(data, 0xab, 1000);
  }
  rte_pktmbuf_free_bulk(m, 8);
  rte_mempool_free(pool);
}

TEST(ThpHeapTest, HoldsTheFlowTable) {
  auto heap = ThpHeap::Create("thp_flows", 32 * kMiB);
  ASSERT_TRUE(heap.ok()) << heap.status();
  const int socket = (*heap)->socket_id();
  rte_malloc_socket_stats stats;
  ASSERT_EQ(rte_malloc_get_socket_stats(socket, &stats), 0);
  const uint64_t before = stats.heap_allocsz_bytes;
  {
    auto table = session::FlowTable::Create("thp_flow_table", 4096, 1, socket);
    ASSERT_TRUE(table.ok()) << table.status();
    ASSERT_EQ(rte_malloc_get_socket_stats(socket, &stats), 0);
    // Buckets and key slots for 4096 keys: well over 100 KiB.
    EXPECT_GT(stats.heap_allocsz_bytes, before + 100 * 1024);

    session::Flow flow{};
    const packet::Endpoint local = *packet::Endpoint::Parse("10.1.2.3:4000");
    ASSERT_TRUE((*table)->Add(local, &flow, false).ok());
    const session::FlowKey key = session::FlowKey::From(local);
    session::FlowRef ref{};
    (*table)->LookupBulk(&key, 1, &ref);
    EXPECT_EQ(ref.flow, &flow);
    ASSERT_TRUE((*table)->Remove(local).ok());
  }
  ASSERT_EQ(rte_malloc_get_socket_stats(socket, &stats), 0);
  EXPECT_EQ(stats.heap_allocsz_bytes, before);
}

TEST(ThpHeapTest, GoesAwayWhenEmptyAndCanBeMadeAgain) {
  {
    auto heap = ThpHeap::Create("thp_again", 2 * kMiB);
    ASSERT_TRUE(heap.ok()) << heap.status();
    void* p = rte_malloc_socket("p", 4096, 64, (*heap)->socket_id());
    ASSERT_NE(p, nullptr);
    rte_free(p);
  }
  EXPECT_LT(rte_malloc_heap_get_socket("thp_again"), 0);
  auto again = ThpHeap::Create("thp_again", 2 * kMiB);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(ThpHeapTest, StaysMappedWhileSomethingIsStillAllocated) {
  void* p = nullptr;
  int socket = -1;
  {
    auto heap = ThpHeap::Create("thp_busy", 2 * kMiB);
    ASSERT_TRUE(heap.ok()) << heap.status();
    socket = (*heap)->socket_id();
    p = rte_malloc_socket("p", 4096, 64, socket);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x77, 4096);
  }
  // The heap object is gone but DPDK still holds the memory: it is readable
  // and writable, and freeing it is legal.
  EXPECT_EQ(rte_malloc_heap_get_socket("thp_busy"), socket);
  EXPECT_EQ(static_cast<uint8_t*>(p)[4095], 0x77);
  std::memset(p, 0x11, 4096);
  rte_free(p);
}

TEST(ThpHeapTest, RefusesBadRequests) {
  auto empty = ThpHeap::Create("thp_empty", 0);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  auto first = ThpHeap::Create("thp_twice", 2 * kMiB);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ThpHeap::Create("thp_twice", 2 * kMiB);
  EXPECT_FALSE(second.ok());
  // The first heap is untouched by the refused second one.
  void* p = rte_malloc_socket("p", 4096, 64, (*first)->socket_id());
  EXPECT_NE(p, nullptr);
  rte_free(p);
}

}  // namespace
}  // namespace sluice::dpdk
