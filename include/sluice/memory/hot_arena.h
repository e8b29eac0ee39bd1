// Memory for the per-session state every packet reads: SRTP contexts and
// sessions (their flows and peer slots).
//
// With a million sessions that state is gigabytes, and a packet's dozens of
// lines land on as many pages: with 4 KiB pages nearly every one is also a
// TLB miss and a page-table walk (on a VM, a nested one). The hot arena
// carves blocks out of 2 MiB regions that the kernel is asked to back with
// hugepages: from the host's reserved pool (nr_hugepages, MAP_HUGETLB) while
// it has free pages, else transparent hugepages (madvise(MADV_HUGEPAGE),
// which takes effect where /sys/kernel/mm/transparent_hugepage/enabled is
// "always" or "madvise", the default), so one TLB entry covers hundreds of
// sessions, whatever the process's malloc does. The pool is shared with
// DPDK's heap, which takes its pages as it grows: reserve enough for both
// (about 8 KiB a session here, docs/performance.md). Only the blocks live there: a session's strings
// and vectors stay on the ordinary heap.
//
// Blocks are 64-byte aligned, rounded up to 64 bytes, and kept by size:
// a freed block goes back to the list of its size and serves the next
// allocation of that size (sessions of one deployment come in a few
// sizes). Memory is not returned to the kernel. Thread-safe (a mutex: the
// control plane allocates, never a worker). Built with AddressSanitizer,
// every block comes from operator new instead, so that use after free is
// still caught.
#ifndef SLUICE_MEMORY_HOT_ARENA_H_
#define SLUICE_MEMORY_HOT_ARENA_H_

#include <cstddef>
#include <cstdint>

namespace sluice::memory {

inline constexpr size_t kHotAlignment = 64;

// A block of at least `bytes` (> 0), aligned to kHotAlignment. Throws
// std::bad_alloc when the kernel has no memory for it, as operator new.
void* AllocateHot(size_t bytes);

// Frees a block AllocateHot returned; `bytes` is what was asked for.
void FreeHot(void* block, size_t bytes) noexcept;

// Of the regions; blocks from operator new (too large for a region, or
// under AddressSanitizer) are in malloc's statistics instead.
struct HotArenaStats {
  uint64_t in_use_blocks = 0;
  uint64_t in_use_bytes = 0;    // in live blocks (rounded up to 64 bytes)
  uint64_t mapped_bytes = 0;    // of regions mapped from the kernel
  uint64_t regions = 0;
  // Regions are locked in memory (mlock2, MLOCK_ONFAULT) and left out of
  // core dumps (MADV_DONTDUMP): they hold session keys. These the lock
  // limit (RLIMIT_MEMLOCK) refused; they are still left out of dumps.
  uint64_t unlocked_regions = 0;
  // Regions on a hugepage of the host's reserved pool (MAP_HUGETLB); the
  // others are on transparent hugepages where the kernel gives them.
  uint64_t hugetlb_regions = 0;
};
// Bytes of one region: what RLIMIT_MEMLOCK must allow for each.
inline constexpr size_t kHotRegionBytes = size_t{2} << 20;
HotArenaStats GetHotArenaStats();

// Whether blocks come from hugepage-advised regions (false under
// AddressSanitizer).
bool HotArenaUsesRegions();

// Where new regions come from. kAuto: the host's reserved pool while it has
// free pages, else transparent hugepages. kTransparent: transparent
// hugepages only, leaving the reserved pool to DPDK's heap (a host whose
// nr_hugepages is sized for EAL alone). Set before sessions are made
// ([limits] session_hugepages); regions already mapped stay where they are.
enum class HugepageSource : uint8_t { kAuto, kTransparent };
void SetHotArenaHugepageSource(HugepageSource source) noexcept;

}  // namespace sluice::memory

#endif  // SLUICE_MEMORY_HOT_ARENA_H_
