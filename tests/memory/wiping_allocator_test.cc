#include "sluice/memory/wiping_allocator.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "gtest/gtest.h"

// This binary replaces the global operator new and delete so that a test can
// see the bytes of one watched block at the moment it is freed.
namespace {

constexpr size_t kSeenMax = 256;
const void* g_watched = nullptr;
unsigned char g_seen[kSeenMax];
size_t g_seen_len = 0;
bool g_freed = false;

void Watch(const void* p, size_t n) {
  g_watched = p;
  g_seen_len = n < kSeenMax ? n : kSeenMax;
  g_freed = false;
  std::memset(g_seen, 0xee, sizeof(g_seen));
}

void Free(void* p) noexcept {
  if (p != nullptr && p == g_watched) {
    std::memcpy(g_seen, p, g_seen_len);
    g_freed = true;
    g_watched = nullptr;
  }
  std::free(p);
}

}  // namespace

void* operator new(size_t n) {
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete(void* p, size_t) noexcept { Free(p); }

namespace sluice::memory {
namespace {

using WipingString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;

bool AllZero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

TEST(WipingAllocatorTest, TheHookSeesWhatAPlainAllocatorLeavesBehind) {
  std::allocator<char> plain;
  char* p = plain.allocate(64);
  std::memset(p, 'K', 64);
  Watch(p, 64);
  plain.deallocate(p, 64);
  ASSERT_TRUE(g_freed);
  EXPECT_EQ(g_seen[0], 'K');
  EXPECT_EQ(g_seen[63], 'K');
}

TEST(WipingAllocatorTest, DeallocateWipesTheBlockBeforeFreeingIt) {
  WipingAllocator<char> wiping;
  char* p = wiping.allocate(64);
  std::memset(p, 'K', 64);
  Watch(p, 64);
  wiping.deallocate(p, 64);
  ASSERT_TRUE(g_freed);
  EXPECT_TRUE(AllZero(g_seen, 64));
}

TEST(WipingAllocatorTest, WipesEveryElementOfAWiderType) {
  WipingAllocator<uint64_t> wiping;
  uint64_t* p = wiping.allocate(8);
  for (int i = 0; i < 8; ++i) p[i] = ~uint64_t{0};
  Watch(p, 8 * sizeof(uint64_t));
  wiping.deallocate(p, 8);
  ASSERT_TRUE(g_freed);
  EXPECT_TRUE(AllZero(g_seen, 8 * sizeof(uint64_t)));
}

TEST(WipingAllocatorTest, AStringThatGrowsLeavesNoCopyInItsOldBuffer) {
  WipingString s(100, 'K');
  const void* old_buffer = s.data();
  Watch(old_buffer, 101);
  s.reserve(1000);  // moves to a new buffer, frees the old one
  ASSERT_TRUE(g_freed);
  EXPECT_NE(static_cast<const void*>(s.data()), old_buffer);
  EXPECT_TRUE(AllZero(g_seen, 101));
  EXPECT_EQ(s, WipingString(100, 'K'));
}

TEST(WipeMemoryTest, ZeroesExactlyTheRange) {
  unsigned char bytes[16];
  std::memset(bytes, 0xa5, sizeof(bytes));
  WipeMemory(bytes + 4, 8);
  for (size_t i = 0; i < sizeof(bytes); ++i) {
    EXPECT_EQ(bytes[i], (i >= 4 && i < 12) ? 0 : 0xa5) << i;
  }
  WipeMemory(nullptr, 8);  // nothing to wipe: no crash
  WipeMemory(bytes, 0);
  EXPECT_EQ(bytes[0], 0xa5);
}

TEST(WipeStringTest, WipesTheWholeCapacityAndKeepsIt) {
  std::string s(200, 'K');
  s = "short";  // the tail of the longer value is still in the buffer
  const size_t capacity = s.capacity();
  const char* buffer = s.data();
  WipeString(s);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.capacity(), capacity);
  EXPECT_EQ(s.data(), buffer);
  EXPECT_TRUE(AllZero(reinterpret_cast<const unsigned char*>(buffer), capacity));
}

TEST(WipeStringTest, TheBufferIsFreedWiped) {
  auto* s = new std::string(200, 'K');
  const size_t capacity = s->capacity();
  WipeString(*s);
  Watch(s->data(), capacity);
  delete s;
  ASSERT_TRUE(g_freed);
  EXPECT_TRUE(AllZero(g_seen, capacity < kSeenMax ? capacity : kSeenMax));
}

}  // namespace
}  // namespace sluice::memory
