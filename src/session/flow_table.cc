#include "sluice/session/flow_table.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice::session {
namespace {

// The RTCP-port flag rides in the low bit of the flow pointer (flows are
// 64-byte aligned), so a table value is one word.
void* Tag(Flow* flow, bool rtcp_port) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(flow) | (rtcp_port ? 1u : 0u));
}
FlowRef Untag(void* value) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(value);
  return FlowRef{reinterpret_cast<Flow*>(v & ~uintptr_t{1}), (v & 1) != 0};
}

// Word i of a key's three, padding included, as FlowKey::From stores them.
uint64_t KeyWord(const FlowKey& key, int i) {
  uint64_t w;
  std::memcpy(&w, reinterpret_cast<const char*>(&key) + 8 * i, 8);
  return w;
}
static_assert(sizeof(FlowKey) == 3 * sizeof(uint64_t));

}  // namespace

absl::StatusOr<std::unique_ptr<FlowTable>> FlowTable::Create(const std::string& name,
                                                             uint32_t capacity,
                                                             uint32_t max_readers,
                                                             int socket_id) {
  std::unique_ptr<FlowTable> table(new FlowTable());
  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(std::max<uint32_t>(max_readers, 1));
  table->qsbr_mem_ = rte_zmalloc_socket(nullptr, qsbr_size, RTE_CACHE_LINE_SIZE, socket_id);
  if (table->qsbr_mem_ == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the RCU state for the flow table");
  }
  table->qsbr_ = static_cast<rte_rcu_qsbr*>(table->qsbr_mem_);
  table->max_readers_ = std::max<uint32_t>(max_readers, 1);
  if (rte_rcu_qsbr_init(table->qsbr_, std::max<uint32_t>(max_readers, 1)) != 0) {
    return absl::InternalError("rte_rcu_qsbr_init failed");
  }
  rte_hash_parameters params = {};
  params.name = name.c_str();
  params.entries = std::max<uint32_t>(capacity, 64);
  params.key_len = sizeof(FlowKey);
  params.hash_func = rte_hash_crc;
  params.hash_func_init_val = 0;
  params.socket_id = socket_id;
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  table->hash_ = rte_hash_create(&params);
  if (table->hash_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot create flow table for ", capacity,
                                                     " keys: ", rte_strerror(rte_errno)));
  }
  // Deleted key slots are recycled only after a grace period.
  rte_hash_rcu_config rcu = {};
  rcu.v = table->qsbr_;
  rcu.mode = RTE_HASH_QSBR_MODE_DQ;
  if (rte_hash_rcu_qsbr_add(table->hash_, &rcu) != 0) {
    return absl::InternalError(
        absl::StrCat("rte_hash_rcu_qsbr_add failed: ", rte_strerror(rte_errno)));
  }
  return table;
}

FlowTable::~FlowTable() {
  if (hash_ != nullptr) rte_hash_free(hash_);
  if (qsbr_mem_ != nullptr) rte_free(qsbr_mem_);
}

absl::Status FlowTable::Add(const packet::Endpoint& local, Flow* flow, bool rtcp_port) {
  const FlowKey key = FlowKey::From(local);
  if (rte_hash_lookup(hash_, &key) >= 0) {
    return absl::AlreadyExistsError(absl::StrCat(local.ToString(), " is already in use"));
  }
  const int rc = rte_hash_add_key_data(hash_, &key, Tag(flow, rtcp_port));
  if (rc != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("flow table full: cannot add ", local.ToString()));
  }
  return absl::OkStatus();
}

absl::Status FlowTable::Remove(const packet::Endpoint& local) {
  const FlowKey key = FlowKey::From(local);
  if (rte_hash_del_key(hash_, &key) < 0) {
    return absl::NotFoundError(absl::StrCat(local.ToString(), " is not in the flow table"));
  }
  return absl::OkStatus();
}

uint64_t FlowTable::StartGracePeriod() { return rte_rcu_qsbr_start(qsbr_); }

bool FlowTable::GracePeriodOver(uint64_t token) const {
  return rte_rcu_qsbr_check(qsbr_, token, false) == 1;
}

void FlowTable::Synchronize() { rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID); }

uint64_t FlowTable::ReaderCounter(uint32_t thread_id) const {
  if (thread_id >= max_readers_) return 0;
  // The counter rte_rcu_qsbr_quiescent stores and rte_rcu_qsbr_check reads
  // (0: offline, __RTE_QSBR_CNT_THR_OFFLINE).
  return __atomic_load_n(&qsbr_->qsbr_cnt[thread_id].cnt, __ATOMIC_ACQUIRE);
}

uint32_t FlowTable::size() const { return static_cast<uint32_t>(rte_hash_count(hash_)); }

void FlowTable::RegisterReader(uint32_t thread_id) {
  rte_rcu_qsbr_thread_register(qsbr_, thread_id);
  rte_rcu_qsbr_thread_online(qsbr_, thread_id);
}

void FlowTable::UnregisterReader(uint32_t thread_id) {
  rte_rcu_qsbr_thread_offline(qsbr_, thread_id);
  rte_rcu_qsbr_thread_unregister(qsbr_, thread_id);
}

void FlowTable::Quiescent(uint32_t thread_id) noexcept {
  rte_rcu_qsbr_quiescent(qsbr_, thread_id);
}

void FlowTable::LookupBulk(const FlowKey* keys, uint32_t n, FlowRef* refs) const noexcept {
  // A key the same as the one before it (a flow's packets arriving back to
  // back, as they do when one flow fills a burst) takes that one's answer:
  // only the first of each run goes to the table.
  const void* key_ptrs[RTE_HASH_LOOKUP_BULK_MAX];
  void* values[RTE_HASH_LOOKUP_BULK_MAX];
  uint8_t run_of[RTE_HASH_LOOKUP_BULK_MAX];
  static_assert(RTE_HASH_LOOKUP_BULK_MAX <= 256, "run_of holds indices in a byte");
  uint32_t runs = 0;
  uint64_t last0 = 0, last1 = 0, last2 = 0;  // the key before, in registers
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t w0 = KeyWord(keys[i], 0), w1 = KeyWord(keys[i], 1), w2 = KeyWord(keys[i], 2);
    if (i == 0 || ((w0 ^ last0) | (w1 ^ last1) | (w2 ^ last2)) != 0) key_ptrs[runs++] = &keys[i];
    run_of[i] = static_cast<uint8_t>(runs - 1);
    last0 = w0;
    last1 = w1;
    last2 = w2;
  }
  uint64_t hits = 0;
  rte_hash_lookup_bulk_data(hash_, key_ptrs, runs, &hits, values);
  if (runs == n) {  // every key its own (many sessions)
    for (uint32_t i = 0; i < n; ++i) {
      refs[i] = (hits >> i) & 1 ? Untag(values[i]) : FlowRef{nullptr, false};
    }
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t r = run_of[i];
    refs[i] = (hits >> r) & 1 ? Untag(values[r]) : FlowRef{nullptr, false};
  }
}

}  // namespace sluice::session
