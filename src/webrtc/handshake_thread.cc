#include "sluice/webrtc/handshake_thread.h"

#include <pthread.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "sluice/dpdk/ingress_vlan.h"
#include "sluice/packet/parse.h"

namespace sluice::webrtc {
namespace {

void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

// A group address (multicast or broadcast, IEEE 802 I/G bit) is no one's own.
bool IsUnicast(const uint8_t* mac) { return (mac[0] & 1) == 0; }

// The timer heap's order: the earliest due time on top.
template <typename Entry>
bool Later(const Entry& a, const Entry& b) {
  return a.due_ms > b.due_ms;
}

}  // namespace

// Sends for one leg during one callback.
class HandshakeThread::LegSender final : public Sender {
 public:
  LegSender(HandshakeThread& thread, Leg& leg) : thread_(thread), leg_(leg) {}
  bool Send(std::span<const uint8_t> payload, const packet::Endpoint& to) override {
    return thread_.SendFrame(leg_, payload, to);
  }

 private:
  HandshakeThread& thread_;
  Leg& leg_;
};

absl::StatusOr<std::unique_ptr<HandshakeThread>> HandshakeThread::Create(
    HandshakeThreadOptions options) {
  if (options.pool == nullptr || options.tx_ring == nullptr) {
    return absl::InvalidArgumentError("the handshake thread needs an mbuf pool and a TX ring");
  }
  if (options.burst == 0 || options.burst > kMaxBurst) options.burst = kMaxBurst;
  std::unique_ptr<HandshakeThread> t(new HandshakeThread(std::move(options)));
  // Many workers enqueue, the handshake thread alone dequeues.
  t->ring_ = rte_ring_create(t->options_.ring_name.c_str(), t->options_.ring_size, SOCKET_ID_ANY,
                             RING_F_SC_DEQ);
  if (t->ring_ == nullptr) {
    return absl::ResourceExhaustedError(
        "cannot create the handshake ring (ring_size must be a power of two, the name unique)");
  }
  return t;
}

HandshakeThread::HandshakeThread(HandshakeThreadOptions options) : options_(std::move(options)) {}

HandshakeThread::~HandshakeThread() {
  Stop();
  if (ring_ != nullptr) rte_ring_free(ring_);
}

void HandshakeThread::Start() {
  if (thread_.joinable() || stop_.load()) return;
  thread_ = std::thread([this] { Run(); });
}

void HandshakeThread::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  // What the handlers and tasks hold goes here, on this thread, while what
  // they may refer to (the control plane) still stands.
  std::vector<std::function<void()>> to_thread, to_control;
  absl::flat_hash_map<packet::Endpoint, std::shared_ptr<Leg>> registry;
  std::vector<std::pair<packet::Endpoint, std::shared_ptr<Leg>>> changes;
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    to_thread.swap(to_thread_);
  }
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    to_control.swap(to_control_);
  }
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    registry.swap(registry_);
    changes.swap(changes_);
    registry_version_.fetch_add(1);
  }
  legs_.clear();
  timers_.clear();
  due_.clear();
  FreeRing();
}

void HandshakeThread::FreeRing() {
  if (ring_ == nullptr) return;
  void* m;
  while (rte_ring_dequeue(ring_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

uint64_t HandshakeThread::NowMs() const {
  if (options_.clock) return options_.clock();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// --- Registrations and tasks (any thread) ------------------------------

absl::Status HandshakeThread::Register(const packet::Endpoint& local,
                                       std::shared_ptr<MediaHandshake> handler) {
  if (handler == nullptr) return absl::InvalidArgumentError("no handler to register");
  auto leg = std::make_shared<Leg>();
  leg->local = local;
  leg->handler = std::move(handler);
  std::lock_guard<std::mutex> lock(registry_mu_);
  if (!registry_.emplace(local, leg).second) {
    return absl::AlreadyExistsError("a handshake is already registered at that local address");
  }
  changes_.emplace_back(local, std::move(leg));
  registry_version_.fetch_add(1, std::memory_order_release);
  return absl::OkStatus();
}

bool HandshakeThread::Unregister(const packet::Endpoint& local) {
  std::lock_guard<std::mutex> lock(registry_mu_);
  if (registry_.erase(local) == 0) return false;
  changes_.emplace_back(local, nullptr);
  registry_version_.fetch_add(1, std::memory_order_release);
  return true;
}

void HandshakeThread::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    to_thread_.push_back(std::move(task));
    woken_ = true;
  }
  wake_cv_.notify_one();
}

void HandshakeThread::Wake() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

void HandshakeThread::PostToControl(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(control_mu_);
  to_control_.push_back(std::move(task));
}

size_t HandshakeThread::RunControlTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    tasks.swap(to_control_);
  }
  for (auto& task : tasks) task();
  return tasks.size();
}

// --- The thread --------------------------------------------------------

void HandshakeThread::Run() {
  pthread_setname_np(pthread_self(), "sluice-handshk");
  while (!stop_.load(std::memory_order_relaxed)) {
    if (PollOnce() == options_.burst) continue;  // more may be waiting
    // Asleep until the idle interval ends, a timer is due, or a task or
    // Stop comes in.
    const uint64_t now = NowMs();
    uint64_t sleep_us = options_.idle_sleep_us;
    if (next_timer_ms_ != UINT64_MAX) {
      sleep_us =
          std::min<uint64_t>(sleep_us, next_timer_ms_ > now ? (next_timer_ms_ - now) * 1000 : 0);
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, std::chrono::microseconds(sleep_us), [this] { return woken_; });
    woken_ = false;
  }
}

uint32_t HandshakeThread::PollOnce() {
  const bool posted = RunPosted();
  RefreshLegs();
  if (posted) RescheduleAll();
  const uint64_t now = NowMs();
  rte_mbuf* pkts[kMaxBurst];
  const unsigned n =
      rte_ring_sc_dequeue_burst(ring_, reinterpret_cast<void**>(pkts), options_.burst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    Inc(counters_.received);
    Dispatch(pkts[i], now);
    rte_pktmbuf_free(pkts[i]);
  }
  next_timer_ms_ = RunTimers(NowMs());
  return n;
}

bool HandshakeThread::RunPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    tasks.swap(to_thread_);
  }
  for (auto& task : tasks) task();
  return !tasks.empty();
}

// Applies what Register and Unregister queued, in order. A leg taken out
// lets go of its handler here (its timer entries go stale with it).
void HandshakeThread::RefreshLegs() {
  if (registry_version_.load(std::memory_order_acquire) == legs_version_) return;
  std::vector<std::pair<packet::Endpoint, std::shared_ptr<Leg>>> changes;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    changes.swap(changes_);
    legs_version_ = registry_version_.load(std::memory_order_relaxed);
  }
  for (auto& [local, leg] : changes) {
    if (auto it = legs_.find(local); it != legs_.end()) {
      it->second->handler.reset();
      legs_.erase(it);
    }
    if (leg == nullptr) continue;
    Schedule(leg);
    legs_.emplace(local, std::move(leg));
  }
}

void HandshakeThread::Schedule(const std::shared_ptr<Leg>& leg) {
  const uint64_t due = leg->handler->NextTimerMs();
  if (due == leg->timer_ms) return;
  leg->timer_ms = due;
  if (due == UINT64_MAX) return;
  timers_.push_back({due, leg});
  std::push_heap(timers_.begin(), timers_.end(), Later<TimerEntry>);
  // Stale entries are dropped as they come up; a leg whose timer keeps
  // moving later would pile them up, so past a bound the heap is rebuilt
  // from the live ones.
  if (timers_.size() <= 2 * legs_.size() + 1024) return;
  timers_.clear();
  for (const auto& [local, l] : legs_) {
    if (l->timer_ms != UINT64_MAX) timers_.push_back({l->timer_ms, l});
  }
  if (leg->timer_ms != UINT64_MAX && !legs_.contains(leg->local)) timers_.push_back({due, leg});
  std::make_heap(timers_.begin(), timers_.end(), Later<TimerEntry>);
}

void HandshakeThread::RescheduleAll() {
  for (const auto& [local, leg] : legs_) Schedule(leg);
}

void HandshakeThread::Dispatch(rte_mbuf* m, uint64_t now) {
  const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
  // The worker (or the NIC) checked the checksums before handing it over.
  packet::ParsedFrame frame;
  packet::ParseFrame(data, rte_pktmbuf_data_len(m),
                     {.verify_ip_checksum = false, .verify_udp_checksum = false}, &frame);
  const bool handshake = frame.payload_kind == packet::PayloadKind::kStun ||
                         frame.payload_kind == packet::PayloadKind::kDtls;
  if (m->nb_segs != 1 || frame.kind != packet::FrameKind::kUdp || !handshake) {
    Inc(counters_.malformed);
    return;
  }
  auto it = legs_.find(frame.dst);
  if (it == legs_.end()) {
    Inc(counters_.no_handler);
    return;
  }
  Leg& leg = *it->second;
  if (IsUnicast(data)) {
    LinkFacts facts;
    facts.port = m->port;
    facts.vlan = dpdk::IngressVlan(m, frame);
    std::memcpy(facts.remote_mac.data(), data + 6, 6);
    std::memcpy(facts.local_mac.data(), data, 6);
    facts.heard_ms = now;
    Learn(leg, frame.src, facts);
  }
  LegSender sender(*this, leg);
  Inc(counters_.dispatched);
  leg.handler->OnDatagram(frame.payload_kind,
                          std::span<const uint8_t>(data + frame.payload_offset, frame.payload_len),
                          frame.src, now, sender);
  Schedule(it->second);
}

void HandshakeThread::Learn(Leg& leg, const packet::Endpoint& from, const LinkFacts& facts) {
  auto it = leg.remotes.find(from);
  if (it != leg.remotes.end()) {
    it->second = facts;
    return;
  }
  if (leg.remotes.size() >= std::max<uint32_t>(1, options_.max_remotes_per_leg)) {
    auto oldest = std::min_element(
        leg.remotes.begin(), leg.remotes.end(),
        [](const auto& a, const auto& b) { return a.second.heard_ms < b.second.heard_ms; });
    leg.remotes.erase(oldest);
    Inc(counters_.remotes_forgotten);
  }
  leg.remotes.emplace(from, facts);
}

uint64_t HandshakeThread::RunTimers(uint64_t now) {
  // The due legs first, then their calls: a leg still due after its call
  // waits for the next poll, as a timer that keeps firing must not hold the
  // thread.
  auto live = [this] {
    const TimerEntry& top = timers_.front();
    return top.leg->handler != nullptr && top.leg->timer_ms == top.due_ms;
  };
  while (!timers_.empty() && timers_.front().due_ms <= now) {
    if (live()) {
      timers_.front().leg->timer_ms = UINT64_MAX;  // consumed
      due_.push_back(timers_.front().leg);
    }
    std::pop_heap(timers_.begin(), timers_.end(), Later<TimerEntry>);
    timers_.pop_back();
  }
  for (const std::shared_ptr<Leg>& leg : due_) {
    LegSender sender(*this, *leg);
    Inc(counters_.timers);
    leg->handler->OnTimer(now, sender);
    Schedule(leg);
  }
  due_.clear();
  while (!timers_.empty() && !live()) {
    std::pop_heap(timers_.begin(), timers_.end(), Later<TimerEntry>);
    timers_.pop_back();
  }
  return timers_.empty() ? UINT64_MAX : timers_.front().due_ms;
}

// The frame back to `to`, from what its last frame to this leg showed; the
// checksums in software (the TX ring bypasses the worker's offload flags).
bool HandshakeThread::SendFrame(Leg& leg, std::span<const uint8_t> payload,
                                const packet::Endpoint& to) {
  auto it = leg.remotes.find(to);
  if (it == leg.remotes.end()) {
    Inc(counters_.unknown_remote);
    return false;
  }
  const LinkFacts& facts = it->second;
  packet::UdpHeaderSpec spec;
  spec.src_mac = facts.local_mac;
  spec.dst_mac = facts.remote_mac;
  spec.vlan_id = facts.vlan;
  spec.src = leg.local;
  spec.dst = to;
  const uint32_t header = packet::HeaderLength(spec);
  const size_t frame_len = header + payload.size();
  if (payload.size() > packet::MaxUdpPayload(spec) || frame_len > UINT16_MAX) {
    Inc(counters_.too_large);
    return false;
  }
  rte_mbuf* m = rte_pktmbuf_alloc(options_.pool);
  if (m == nullptr) {
    Inc(counters_.no_mbuf);
    return false;
  }
  // One segment: what the mbuf's data room holds.
  uint8_t* frame =
      reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(frame_len)));
  if (frame == nullptr) {
    rte_pktmbuf_free(m);
    Inc(counters_.too_large);
    return false;
  }
  if (!payload.empty()) std::memcpy(frame + header, payload.data(), payload.size());
  packet::WriteUdpHeaders(frame + header, static_cast<uint32_t>(payload.size()), spec, ip_id_++);
  m->port = facts.port;
  if (rte_ring_mp_enqueue(options_.tx_ring, m) != 0) {
    rte_pktmbuf_free(m);
    Inc(counters_.tx_full);
    return false;
  }
  Inc(counters_.sent);
  return true;
}

}  // namespace sluice::webrtc
