#include "sluice/dpdk/thp_heap.h"

#include <rte_errno.h>
#include <rte_malloc.h>
#include <sys/mman.h>

#include "absl/strings/str_cat.h"

namespace sluice::dpdk {
namespace {

constexpr uint64_t kPageBytes = uint64_t{2} << 20;  // one x86-64 hugepage

}  // namespace

absl::StatusOr<std::unique_ptr<ThpHeap>> ThpHeap::Create(const std::string& name,
                                                         uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("a hugepage heap needs a size");
  std::unique_ptr<ThpHeap> heap(new ThpHeap());
  heap->name_ = name;
  heap->bytes_ = (bytes + kPageBytes - 1) & ~(kPageBytes - 1);

  // Mapped with a page to spare and trimmed to 2 MiB alignment, so that every
  // 2 MiB of the heap can be one hugepage.
  const uint64_t span = heap->bytes_ + kPageBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", heap->bytes_ >> 20, " MiB for the hugepage heap ", name));
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kPageBytes - 1) & ~(kPageBytes - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + heap->bytes_;
  if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
  heap->base_ = reinterpret_cast<void*>(aligned);
  // Before DPDK zeroes (and so faults in) the memory. Advice only: where
  // transparent hugepages are off the heap works the same on small pages.
  madvise(heap->base_, heap->bytes_, MADV_HUGEPAGE);

  if (rte_malloc_heap_create(name.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot create the DPDK heap ", name, ": ", rte_strerror(rte_errno)));
  }
  heap->heap_created_ = true;
  // No IOVA addresses: nothing here is handed to a NIC for DMA.
  if (rte_malloc_heap_memory_add(name.c_str(), heap->base_, heap->bytes_, nullptr,
                                 static_cast<unsigned>(heap->bytes_ / kPageBytes),
                                 kPageBytes) != 0) {
    return absl::InternalError(absl::StrCat("cannot add ", heap->bytes_ >> 20,
                                            " MiB to the DPDK heap ", name, ": ",
                                            rte_strerror(rte_errno)));
  }
  heap->memory_added_ = true;
  heap->socket_id_ = rte_malloc_heap_get_socket(name.c_str());
  if (heap->socket_id_ < 0) {
    return absl::InternalError(absl::StrCat("the DPDK heap ", name, " has no socket id: ",
                                            rte_strerror(rte_errno)));
  }
  return heap;
}

ThpHeap::~ThpHeap() {
  // DPDK refuses to let memory go while something allocated from it is
  // live; the mapping then stays, so that nothing is left pointing at an
  // unmapped page.
  if (memory_added_ &&
      rte_malloc_heap_memory_remove(name_.c_str(), base_, bytes_) != 0) {
    return;
  }
  if (heap_created_) rte_malloc_heap_destroy(name_.c_str());
  if (base_ != nullptr) munmap(base_, bytes_);
}

}  // namespace sluice::dpdk
