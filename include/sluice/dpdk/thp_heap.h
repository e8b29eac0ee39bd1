// A DPDK malloc heap on transparent hugepages, for hosts without hugetlbfs.
//
// Without hugepages (--no-huge) DPDK's own memory is a memfd: shared memory,
// which the kernel backs with 4 KiB pages unless the host enables hugepages
// for shmem, which few do, so a relay's packet buffers and flow table there
// cost page-table walks that a host with hugepages does not pay
// (docs/performance.md, "Flow table lookups on transparent hugepages").
//
// A ThpHeap is a DPDK malloc heap on anonymous memory advised MADV_HUGEPAGE:
// mempools, rings and hash tables created on its socket id sit on 2 MiB
// pages wherever transparent hugepages are "always" or "madvise", as they
// would on a host with hugepages.
//
// Its memory has no IOVA: it is for software and virtual devices (rings,
// af_packet, pcap, tap), never for a NIC's DMA.
//
// Control thread. Create after EAL has started; destroy after everything
// allocated from the heap is freed.
#ifndef SLUICE_DPDK_THP_HEAP_H_
#define SLUICE_DPDK_THP_HEAP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sluice::dpdk {

class ThpHeap {
 public:
  // A heap `name` of `bytes` (rounded up to 2 MiB). DPDK zeroes memory as it
  // joins a heap, so all of it is resident from here on: size it to need.
  static absl::StatusOr<std::unique_ptr<ThpHeap>> Create(const std::string& name,
                                                         uint64_t bytes);
  ~ThpHeap();
  ThpHeap(const ThpHeap&) = delete;
  ThpHeap& operator=(const ThpHeap&) = delete;

  // The socket id to pass to rte_pktmbuf_pool_create, rte_ring_create,
  // rte_hash_create, rte_malloc_socket and the like.
  int socket_id() const noexcept { return socket_id_; }
  // The memory's first byte and size (2 MiB aligned).
  const void* base() const noexcept { return base_; }
  uint64_t bytes() const noexcept { return bytes_; }

 private:
  ThpHeap() = default;
  std::string name_;
  void* base_ = nullptr;
  uint64_t bytes_ = 0;
  int socket_id_ = -1;
  bool heap_created_ = false;
  bool memory_added_ = false;
};

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_THP_HEAP_H_
