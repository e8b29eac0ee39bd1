#include "sluice/memory/hot_arena.h"

#include <linux/mman.h>
#include <sys/mman.h>

#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_HOT_ARENA_REGIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_HOT_ARENA_REGIONS 0
#endif
#endif
#ifndef SLUICE_HOT_ARENA_REGIONS
#define SLUICE_HOT_ARENA_REGIONS 1
#endif

namespace sluice::memory {
namespace {

constexpr size_t kRegionBytes = size_t{2} << 20;  // one x86-64 hugepage
// Larger blocks (a context with thousands of streams) come from operator
// new: they would leave too much of a region unused.
constexpr size_t kMaxPooledBytes = size_t{256} << 10;
constexpr size_t kClasses = kMaxPooledBytes / kHotAlignment + 1;

size_t Rounded(size_t bytes) { return (bytes + kHotAlignment - 1) & ~(kHotAlignment - 1); }

class Arena {
 public:
  void* Allocate(size_t bytes) {
    const size_t size = Rounded(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* block = free_[size / kHotAlignment];
    if (block != nullptr) {
      free_[size / kHotAlignment] = *static_cast<void**>(block);
    } else {
      if (static_cast<size_t>(end_ - next_) < size) NewRegion();
      block = next_;
      next_ += size;
    }
    in_use_ += size;
    ++blocks_;
    return block;
  }

  void Free(void* block, size_t bytes) noexcept {
    const size_t size = Rounded(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    *static_cast<void**>(block) = free_[size / kHotAlignment];
    free_[size / kHotAlignment] = block;
    in_use_ -= size;
    --blocks_;
  }

  HotArenaStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return HotArenaStats{blocks_,   in_use_,           regions_ * kRegionBytes,
                         regions_, unlocked_regions_, hugetlb_regions_};
  }

  void SetSource(HugepageSource source) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    source_ = source;
  }

 private:
  // A region on one hugepage from the host's reserved pool (hugetlbfs,
  // nr_hugepages) when it has one free: a hugepage for certain, where
  // transparent ones are only asked for. Falls back to transparent hugepages.
  char* HugetlbRegion() {
    void* raw = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    ++hugetlb_regions_;
    return static_cast<char*>(raw);
  }

  // A 2 MiB-aligned region (mapped with room to trim to the alignment), so
  // that the kernel can back it with one hugepage.
  char* TransparentRegion() {
    const size_t span = 2 * kRegionBytes;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kRegionBytes - 1) & ~(kRegionBytes - 1);
    if (aligned > start) munmap(raw, aligned - start);
    if (start + span > aligned + kRegionBytes) {
      munmap(reinterpret_cast<void*>(aligned + kRegionBytes), start + span - aligned - kRegionBytes);
    }
    // Advice only: without transparent hugepages the region works the same
    // on small pages.
    madvise(reinterpret_cast<void*>(aligned), kRegionBytes, MADV_HUGEPAGE);
    return reinterpret_cast<char*>(aligned);
  }

  void NewRegion() {
    char* region = source_ == HugepageSource::kAuto ? HugetlbRegion() : nullptr;
    if (region == nullptr) region = TransparentRegion();
    const uintptr_t aligned = reinterpret_cast<uintptr_t>(region);
    // Session keys live here: never in a core dump, never swapped out (a
    // page of the reserved pool never is; the kernel ignores the lock there). The
    // lock takes pages as they are first touched (MLOCK_ONFAULT), so an
    // unused region costs no locked memory; when RLIMIT_MEMLOCK refuses it
    // (sluiced checks the limit at start-up) the region is counted unlocked.
    madvise(reinterpret_cast<void*>(aligned), kRegionBytes, MADV_DONTDUMP);
    if (mlock2(reinterpret_cast<void*>(aligned), kRegionBytes, MLOCK_ONFAULT) != 0) {
      ++unlocked_regions_;
    }
    next_ = reinterpret_cast<char*>(aligned);
    end_ = next_ + kRegionBytes;
    ++regions_;
  }

  std::mutex mu_;
  std::vector<void*> free_ = std::vector<void*>(kClasses, nullptr);  // by size / 64
  char* next_ = nullptr;  // the current region's unused part
  char* end_ = nullptr;
  uint64_t blocks_ = 0;
  uint64_t in_use_ = 0;
  uint64_t regions_ = 0;
  uint64_t unlocked_regions_ = 0;  // mlock2 refused (RLIMIT_MEMLOCK)
  uint64_t hugetlb_regions_ = 0;   // from the reserved hugepage pool
  HugepageSource source_ = HugepageSource::kAuto;
};

// Never destroyed: blocks may be freed by static destructors of any order.
Arena& TheArena() {
  static Arena* arena = new Arena();
  return *arena;
}

// Blocks not from regions: operator new (and malloc's statistics).
void* AllocateDirect(size_t bytes) { return ::operator new(bytes, std::align_val_t{kHotAlignment}); }

void FreeDirect(void* block) noexcept {
  ::operator delete(block, std::align_val_t{kHotAlignment});
}

}  // namespace

bool HotArenaUsesRegions() { return SLUICE_HOT_ARENA_REGIONS != 0; }

void* AllocateHot(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (!HotArenaUsesRegions() || bytes > kMaxPooledBytes) return AllocateDirect(bytes);
  return TheArena().Allocate(bytes);
}

void FreeHot(void* block, size_t bytes) noexcept {
  if (block == nullptr) return;
  if (bytes == 0) bytes = 1;
  if (!HotArenaUsesRegions() || bytes > kMaxPooledBytes) {
    FreeDirect(block);
    return;
  }
  TheArena().Free(block, bytes);
}

void SetHotArenaHugepageSource(HugepageSource source) noexcept {
  if (HotArenaUsesRegions()) TheArena().SetSource(source);
}

HotArenaStats GetHotArenaStats() {
  return HotArenaUsesRegions() ? TheArena().Stats() : HotArenaStats{};
}

}  // namespace sluice::memory
