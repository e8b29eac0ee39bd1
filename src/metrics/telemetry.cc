#include "sluice/metrics/telemetry.h"

#include <rte_telemetry.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace sluice::metrics {

struct Telemetry::State {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t asked = 0;     // requests made (telemetry thread)
  uint64_t answered = 0;  // requests the latest snapshot answers (control thread)
  control::Stats stats;
};

namespace {

// The instance the commands read; none before Start and after its end.
std::mutex instance_mu;
Telemetry* instance = nullptr;
bool registered = false;

// The snapshot a command answers from; false (an error reply) when
// sluiced's control plane is not running.
bool Snapshot(control::Stats* out) {
  std::lock_guard<std::mutex> lock(instance_mu);
  if (instance == nullptr) return false;
  instance->Fresh(out);
  return true;
}

void AddU64(rte_tel_data* d, const std::string& name, uint64_t v) {
  rte_tel_data_add_dict_u64(d, name.c_str(), v);
}

int StatsCommand(const char*, const char*, rte_tel_data* d) {
  control::Stats s;
  if (!Snapshot(&s)) return -1;
  rte_tel_data_start_dict(d);
  AddU64(d, "sessions", s.sessions);
  AddU64(d, "sessions_created", s.sessions_created);
  AddU64(d, "sessions_deleted", s.sessions_deleted);
  AddU64(d, "sessions_reclaiming", s.sessions_reclaiming);
  AddU64(d, "key_reuse_refusals", s.key_reuse_refusals);
  AddU64(d, "keys_near_limit", s.keys_near_limit);
  AddU64(d, "dtls_handshakes", s.webrtc.dtls_keyed);
  AddU64(d, "dtls_handshake_failures", s.webrtc.dtls_failed);
  uint64_t rx = 0, tx = 0;
  for (const control::WorkerStats& w : s.workers) {
    rx += w.rx_packets;
    tx += w.tx_packets;
  }
  AddU64(d, "rx_packets", rx);
  AddU64(d, "tx_packets", tx);
  rte_tel_data* drops = rte_tel_data_alloc();
  rte_tel_data_start_dict(drops);
  for (const auto& [reason, n] : s.drops) AddU64(drops, reason, n);
  rte_tel_data_add_dict_container(d, "drops", drops, 0);
  // By interface: what each port lost before a worker saw it (its RX ring,
  // or the kernel's socket ring on af_packet and af_xdp), as /ethdev/stats'
  // imissed cannot show for those two.
  rte_tel_data* missed = rte_tel_data_alloc();
  rte_tel_data_start_dict(missed);
  for (const control::PortStats& p : s.ports) AddU64(missed, p.interface, p.rx_missed);
  rte_tel_data_add_dict_container(d, "rx_missed", missed, 0);
  return 0;
}

int WorkersCommand(const char*, const char*, rte_tel_data* d) {
  control::Stats s;
  if (!Snapshot(&s)) return -1;
  rte_tel_data_start_dict(d);
  for (const control::WorkerStats& w : s.workers) {
    rte_tel_data* one = rte_tel_data_alloc();
    rte_tel_data_start_dict(one);
    AddU64(one, "lcore", w.lcore);
    AddU64(one, "rx_packets", w.rx_packets);
    AddU64(one, "tx_packets", w.tx_packets);
    AddU64(one, "rx_bytes", w.rx_bytes);
    AddU64(one, "tx_bytes", w.tx_bytes);
    AddU64(one, "busy_cycles", w.busy_cycles);
    AddU64(one, "idle_cycles", w.idle_cycles);
    AddU64(one, "stalled", w.stalled ? 1 : 0);
    uint64_t drops = 0;
    for (const auto& [reason, n] : w.drops) drops += n;
    AddU64(one, "drops", drops);
    rte_tel_data_add_dict_container(d, absl::StrCat(w.id).c_str(), one, 0);
  }
  return 0;
}

// Counts, never names: a call's name is the controller's to give out. Dict
// names may hold only [A-Za-z0-9_/] (rte_telemetry.h): "keying/suite".
int SessionsCommand(const char*, const char*, rte_tel_data* d) {
  control::Stats s;
  if (!Snapshot(&s)) return -1;
  rte_tel_data_start_dict(d);
  AddU64(d, "active", s.sessions);
  AddU64(d, "created", s.sessions_created);
  AddU64(d, "deleted", s.sessions_deleted);
  AddU64(d, "timed_out", s.timed_out.timeout + s.timed_out.silent_timeout +
                             s.timed_out.final_timeout);
  rte_tel_data* legs = rte_tel_data_alloc();
  rte_tel_data_start_dict(legs);
  for (const control::LegCount& l : s.legs) {
    AddU64(legs, std::string(l.keying) + "/" + std::string(l.suite), l.legs);
  }
  rte_tel_data_add_dict_container(d, "legs", legs, 0);
  return 0;
}

}  // namespace

Telemetry::Telemetry(std::function<control::Stats()> snapshot)
    : snapshot_(std::move(snapshot)), state_(std::make_unique<State>()) {}

absl::StatusOr<std::unique_ptr<Telemetry>> Telemetry::Start(
    std::function<control::Stats()> snapshot) {
  std::unique_ptr<Telemetry> t(new Telemetry(std::move(snapshot)));
  std::lock_guard<std::mutex> lock(instance_mu);
  if (!registered) {
    const int rc = rte_telemetry_register_cmd(
                       "/sluice/stats", StatsCommand,
                       "sluiced's totals: sessions, packets, drops by reason, key refusals") |
                   rte_telemetry_register_cmd(
                       "/sluice/workers", WorkersCommand,
                       "Each poll-mode worker's packets, bytes, cycles and drops, by worker id") |
                   rte_telemetry_register_cmd(
                       "/sluice/sessions", SessionsCommand,
                       "Sessions active, created, deleted, timed out; live legs by keying/suite");
    if (rc != 0) return absl::InternalError("cannot register sluiced's telemetry commands");
    registered = true;
  }
  instance = t.get();
  return t;
}

Telemetry::~Telemetry() {
  std::lock_guard<std::mutex> lock(instance_mu);
  if (instance == this) instance = nullptr;
}

void Telemetry::Serve() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->asked == state_->answered) return;
  }
  control::Stats stats = snapshot_();  // without the lock: the telemetry thread waits
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stats = std::move(stats);
    state_->answered = state_->asked;
  }
  state_->cv.notify_all();
}

bool Telemetry::Fresh(control::Stats* out) {
  std::unique_lock<std::mutex> lock(state_->mu);
  const uint64_t ticket = ++state_->asked;
  const bool fresh =
      state_->cv.wait_for(lock, kWait, [&] { return state_->answered >= ticket; });
  *out = state_->stats;
  return fresh;
}

}  // namespace sluice::metrics
