#include "sluice/memory/hot_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "sluice/session/session.h"
#include "smaps.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/master_key.h"

namespace sluice::memory {
namespace {

struct Block {
  uint8_t* p;
  size_t bytes;
  uint8_t fill;
};

void Fill(const Block& b) { std::memset(b.p, b.fill, b.bytes); }

bool Intact(const Block& b) {
  for (size_t i = 0; i < b.bytes; ++i) {
    if (b.p[i] != b.fill) return false;
  }
  return true;
}

TEST(HotArenaTest, BlocksAreAlignedSeparateAndKeepTheirContents) {
  std::mt19937 rng(5);
  std::vector<Block> blocks;
  // Sizes of every kind: tiny, session- and context-sized, a region's worth
  // in several blocks, and past what regions serve.
  const std::vector<size_t> sizes = {1, 63, 64, 65, 2000, 3520, 8192, 100000, 300000, 3 << 20};
  for (int round = 0; round < 40; ++round) {
    for (size_t size : sizes) {
      Block b{static_cast<uint8_t*>(AllocateHot(size)), size, static_cast<uint8_t>(rng())};
      ASSERT_NE(b.p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.p) % kHotAlignment, 0u) << size;
      Fill(b);
      blocks.push_back(b);
    }
    // Free a random third as we go, so later blocks reuse freed ones.
    std::shuffle(blocks.begin(), blocks.end(), rng);
    for (size_t i = 0; i < blocks.size() / 3; ++i) {
      ASSERT_TRUE(Intact(blocks.back())) << "a block was overwritten";
      FreeHot(blocks.back().p, blocks.back().bytes);
      blocks.pop_back();
    }
  }
  for (const Block& b : blocks) {
    ASSERT_TRUE(Intact(b)) << "a block of " << b.bytes << " bytes was overwritten";
    FreeHot(b.p, b.bytes);
  }
}

TEST(HotArenaTest, CountsWhatIsInUseAndReusesFreedBlocksOfTheSameSize) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  const HotArenaStats before = GetHotArenaStats();
  void* a = AllocateHot(1000);  // 1024 with rounding
  void* b = AllocateHot(1024);
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes + 2048);
  EXPECT_EQ(GetHotArenaStats().in_use_blocks, before.in_use_blocks + 2);
  FreeHot(a, 1000);
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes + 1024);
  void* c = AllocateHot(1020);  // the same size class as the freed block
  EXPECT_EQ(c, a);
  // More than a region holds, in the largest blocks regions serve.
  std::vector<void*> large;
  for (int i = 0; i < 9; ++i) large.push_back(AllocateHot(256 << 10));
  const HotArenaStats during = GetHotArenaStats();
  EXPECT_EQ(during.in_use_bytes, before.in_use_bytes + 2048 + 9 * (256 << 10));
  EXPECT_GE(during.regions, before.regions + 1);
  EXPECT_EQ(during.mapped_bytes, during.regions * (2u << 20));
  for (void* p : large) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHotAlignment, 0u);
    FreeHot(p, 256 << 10);
  }
  for (void* p : {b, c}) FreeHot(p, 1024);
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes);
}

TEST(HotArenaTest, RegionsAreAdvisedForTransparentHugepages) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  if (!testing::ThpAvailable()) {
    GTEST_SKIP() << "transparent hugepages are off on this kernel (" << testing::ThpMode() << ")";
  }
  void* p = AllocateHot(4096);
  if (GetHotArenaStats().hugetlb_regions > 0) {
    FreeHot(p, 4096);
    GTEST_SKIP() << "the host has reserved hugepages: regions come from that pool "
                    "(RegionsComeFromReservedHugepagesWhenTheHostHasThem)";
  }
  const std::string eligible = testing::ThpEligible(p);
  ASSERT_FALSE(eligible.empty()) << "no THPeligible field for the block's mapping";
  EXPECT_EQ(std::stoi(eligible), 1) << "THP mode: " << testing::ThpMode();
  FreeHot(p, 4096);
}

// Free 2 MiB pages in the host's reserved pool (HugePages_Free).
long FreeHugepages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long value = 0;
  while (meminfo >> key >> value) {
    if (key == "HugePages_Free:") return value;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

// A new region is a page of the reserved pool while it has one free (the
// mapping's page size says so), and on transparent hugepages otherwise,
// counted apart either way.
TEST(HotArenaTest, RegionsComeFromReservedHugepagesWhenTheHostHasThem) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  const HotArenaStats before = GetHotArenaStats();
  const long free_pages = FreeHugepages();
  // Large blocks of a size no other test frees (so none is reused), more
  // than a region holds.
  constexpr size_t kBytes = (256 << 10) - 3 * 64;
  std::vector<void*> blocks;
  for (int i = 0; i < 9; ++i) blocks.push_back(AllocateHot(kBytes));
  const HotArenaStats during = GetHotArenaStats();
  ASSERT_GE(during.regions, before.regions + 1);
  const std::string page_size = testing::SmapsField(blocks.back(), "KernelPageSize:");
  if (free_pages > 1) {  // another process may take one meanwhile
    EXPECT_GT(during.hugetlb_regions, before.hugetlb_regions);
    EXPECT_NE(page_size.find("2048"), std::string::npos) << page_size;
  } else if (free_pages == 0) {
    EXPECT_EQ(during.hugetlb_regions, before.hugetlb_regions);
    EXPECT_NE(page_size.find("4 kB"), std::string::npos) << page_size;
  }
  EXPECT_LE(during.hugetlb_regions, during.regions);
  for (void* p : blocks) FreeHot(p, kBytes);
}

// The host's reserved pool size (nr_hugepages), read and written.
long ReservedHugepages() {
  std::ifstream in("/proc/sys/vm/nr_hugepages");
  long n = -1;
  in >> n;
  return n;
}

bool SetReservedHugepages(long n) {
  std::ofstream out("/proc/sys/vm/nr_hugepages");
  out << n;
  out.flush();
  return out.good();
}

// [limits] session_hugepages = "transparent" leaves the reserved pool to
// DPDK: regions stay off it though it has free pages, and "auto" takes them
// again. The test reserves two pages of its own (as root) and gives them
// back.
TEST(HotArenaTest, TransparentSourceLeavesTheReservedPoolAlone) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  const long reserved = ReservedHugepages();
  if (reserved < 0 || !SetReservedHugepages(reserved + 2) || FreeHugepages() < 2) {
    SetReservedHugepages(std::max(reserved, 0L));
    GTEST_SKIP() << "cannot reserve two hugepages here (not root, or no memory for them)";
  }
  // Blocks of sizes no other test uses, each more than half a region, so
  // each one needs a region of its own.
  constexpr size_t kTransparentBytes = (256 << 10) - 5 * 64;
  constexpr size_t kAutoBytes = (256 << 10) - 7 * 64;
  SetHotArenaHugepageSource(HugepageSource::kTransparent);
  const HotArenaStats before = GetHotArenaStats();
  std::vector<void*> transparent;
  for (int i = 0; i < 9; ++i) transparent.push_back(AllocateHot(kTransparentBytes));
  const HotArenaStats after_transparent = GetHotArenaStats();
  EXPECT_GT(after_transparent.regions, before.regions);
  EXPECT_EQ(after_transparent.hugetlb_regions, before.hugetlb_regions);
  EXPECT_EQ(testing::SmapsField(transparent.back(), "KernelPageSize:").find("2048"),
            std::string::npos);

  SetHotArenaHugepageSource(HugepageSource::kAuto);
  std::vector<void*> automatic;
  for (int i = 0; i < 9; ++i) automatic.push_back(AllocateHot(kAutoBytes));
  EXPECT_GT(GetHotArenaStats().hugetlb_regions, after_transparent.hugetlb_regions);

  for (void* p : transparent) FreeHot(p, kTransparentBytes);
  for (void* p : automatic) FreeHot(p, kAutoBytes);
  // Pages the arena keeps become surplus and go back when the process ends.
  SetReservedHugepages(reserved);
}

// Session keys live in the regions: locked (never swapped) and left out of
// core dumps. The lock needs RLIMIT_MEMLOCK room (or root, as the tests run).
TEST(HotArenaTest, RegionsHoldingKeysAreLockedAndNotDumped) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  srtp::MasterKey key;
  key.suite = crypto::Suite::kAesCm128HmacSha1_80;
  key.key.fill(7);
  auto ctx = srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), {});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const std::string flags = testing::VmFlags(ctx->get());
  ASSERT_FALSE(flags.empty()) << "no VmFlags for the context's mapping";
  EXPECT_NE(flags.find(" dd "), std::string::npos) << "not MADV_DONTDUMP: " << flags;
  if (flags.find(" ht ") != std::string::npos) {
    // A page of the reserved pool: never swapped, locked or not (the kernel
    // leaves hugetlb mappings unmarked by mlock).
    EXPECT_GT(GetHotArenaStats().hugetlb_regions, 0u);
  } else if (GetHotArenaStats().unlocked_regions == 0) {
    EXPECT_NE(flags.find(" lo "), std::string::npos) << "not locked: " << flags;
  } else {
    ADD_FAILURE() << "RLIMIT_MEMLOCK refused to lock a region (run as root or raise it)";
  }
}

TEST(HotArenaTest, ThreadsAllocateAndFreeConcurrently) {
  const HotArenaStats before = GetHotArenaStats();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      std::mt19937 rng(t);
      std::vector<Block> mine;
      for (int i = 0; i < 5000; ++i) {
        if (mine.size() > 50 || (!mine.empty() && rng() % 3 == 0)) {
          const size_t k = rng() % mine.size();
          if (!Intact(mine[k])) ++failures[t];
          FreeHot(mine[k].p, mine[k].bytes);
          mine[k] = mine.back();
          mine.pop_back();
          continue;
        }
        const size_t size = 64 * (1 + rng() % 80);
        Block b{static_cast<uint8_t*>(AllocateHot(size)), size, static_cast<uint8_t>(t * 50 + i)};
        Fill(b);
        mine.push_back(b);
      }
      for (const Block& b : mine) {
        if (!Intact(b)) ++failures[t];
        FreeHot(b.p, b.bytes);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes);
}

TEST(HotArenaTest, SrtpContextsLiveInTheArena) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  srtp::MasterKey key;
  key.suite = crypto::Suite::kAesCm128HmacSha1_80;
  for (size_t i = 0; i < key.key.size(); ++i) key.key[i] = static_cast<uint8_t>(i);
  const HotArenaStats before = GetHotArenaStats();
  absl::StatusOr<std::unique_ptr<srtp::Context>> ctx =
      srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), srtp::ContextOptions{});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const size_t bytes = (*ctx)->memory_bytes();
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes + bytes);
  ctx->reset();
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes);
}

TEST(HotArenaTest, SessionsLiveInTheArena) {
  if (!HotArenaUsesRegions()) {
    GTEST_SKIP() << "built with AddressSanitizer: blocks come from operator new";
  }
  session::LegSpec a, b;
  a.local = *packet::Endpoint::Parse("10.0.1.1:30000");
  b.local = *packet::Endpoint::Parse("10.0.2.1:30000");
  const HotArenaStats before = GetHotArenaStats();
  absl::StatusOr<std::unique_ptr<session::Session>> s =
      session::Session::Create(1, a, b, session::SessionOptions{});
  ASSERT_TRUE(s.ok()) << s.status();
  // Plain legs: no context, the session alone.
  EXPECT_EQ(GetHotArenaStats().in_use_blocks, before.in_use_blocks + 1);
  EXPECT_GE(GetHotArenaStats().in_use_bytes, before.in_use_bytes + sizeof(session::Session));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s->get()) % kHotAlignment, 0u);
  s->reset();
  EXPECT_EQ(GetHotArenaStats().in_use_blocks, before.in_use_blocks);
  EXPECT_EQ(GetHotArenaStats().in_use_bytes, before.in_use_bytes);
}

}  // namespace
}  // namespace sluice::memory
