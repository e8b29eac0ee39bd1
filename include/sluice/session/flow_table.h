// The lock-free flow table: (local address, local UDP port) -> flow.
//
// A DPDK rte_hash with lock-free read/write concurrency: the control thread
// adds and deletes, workers look up in bulk without locks. Deleted flows are
// freed only after every worker has passed a quiescent state (rte_rcu_qsbr),
// so a worker never reads freed memory. Workers register once and report
// quiescence from their loop. The control loop never waits for them: it takes
// a grace-period token (StartGracePeriod) and polls GracePeriodOver.
#ifndef SLUICE_SESSION_FLOW_TABLE_H_
#define SLUICE_SESSION_FLOW_TABLE_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow.h"

struct rte_hash;
struct rte_rcu_qsbr;

namespace sluice::session {

// The hash key: 24 bytes, zero-padded and 8-byte aligned (rte_hash_crc reads
// it eight bytes at a time).
struct alignas(8) FlowKey {
  uint8_t family;
  uint8_t pad;
  uint16_t port;  // host order
  uint8_t addr[16];
  uint8_t pad2[4];

  static FlowKey From(const packet::Endpoint& ep) noexcept;
};
static_assert(sizeof(FlowKey) == 24);

// Inline, per packet: the key is put together in three registers and stored
// as three words, the way rte_hash reads it (byte stores followed by word
// loads cannot be forwarded and stall).
inline FlowKey FlowKey::From(const packet::Endpoint& ep) noexcept {
  const uint8_t* a = ep.ip.bytes.data();
  uint32_t a0 = 0, a3 = 0;
  uint64_t a1 = 0;
  std::memcpy(&a0, a, 4);
  if (!ep.ip.is_v4()) {
    std::memcpy(&a1, a + 4, 8);
    std::memcpy(&a3, a + 12, 4);
  }
  // Little-endian words: family, pad, port | addr[0..3]; addr[4..11];
  // addr[12..15], pad2.
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
  const uint64_t w[3] = {uint64_t{ep.ip.family} | uint64_t{ep.port} << 16 | uint64_t{a0} << 32,
                         a1, a3};
  FlowKey key;
  std::memcpy(&key, w, sizeof key);
  return key;
}

// A table entry: the flow and whether this key is its separate RTCP port.
struct FlowRef {
  Flow* flow;
  bool rtcp_port;
};

class FlowTable {
 public:
  // capacity: maximum keys (two per leg with separate RTCP). max_readers:
  // worker threads that will register. socket_id: the DPDK heap the table
  // lives in; -1 (SOCKET_ID_ANY) is EAL's own memory, the caller's NUMA node
  // first. (DPDK puts the table's RCU defer queue in EAL's memory whatever
  // the socket.)
  static absl::StatusOr<std::unique_ptr<FlowTable>> Create(const std::string& name,
                                                           uint32_t capacity,
                                                           uint32_t max_readers,
                                                           int socket_id = -1);
  ~FlowTable();

  // --- control thread ---
  absl::Status Add(const packet::Endpoint& local, Flow* flow, bool rtcp_port);
  absl::Status Remove(const packet::Endpoint& local);
  // A grace period, without waiting: StartGracePeriod's token is over once
  // every reader online when it was taken has since passed a quiescent
  // state (or gone offline); nothing removed before the token is then
  // referenced. Tokens grow: a later token over means every earlier one is.
  uint64_t StartGracePeriod();
  bool GracePeriodOver(uint64_t token) const;
  // Blocks until a grace period started now is over. Unbounded: only for
  // threads that may wait on the workers (tests, tools); the control loop
  // polls GracePeriodOver instead.
  void Synchronize();
  // Reader thread_id's quiescent-state counter: 0 while it is offline or
  // unregistered, else the largest token it has acknowledged. It is at
  // least a token once the reader has passed a quiescent state after it.
  uint64_t ReaderCounter(uint32_t thread_id) const;
  uint32_t max_readers() const { return max_readers_; }
  uint32_t size() const;

  // --- workers ---
  // Registers reader `thread_id` (0 .. max_readers-1) and marks it online.
  void RegisterReader(uint32_t thread_id);
  void UnregisterReader(uint32_t thread_id);
  void Quiescent(uint32_t thread_id) noexcept;
  // Looks up n keys (n <= 64); refs[i].flow is null when absent.
  void LookupBulk(const FlowKey* keys, uint32_t n, FlowRef* refs) const noexcept;

  rte_rcu_qsbr* qsbr() const { return qsbr_; }

 private:
  FlowTable() = default;
  rte_hash* hash_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  void* qsbr_mem_ = nullptr;
  uint32_t max_readers_ = 0;
};

}  // namespace sluice::session

#endif  // SLUICE_SESSION_FLOW_TABLE_H_
