// The handshake thread: takes the STUN and DTLS datagrams workers hand over
// (WorkerConfig::handshake, whole mbufs), gives each to the MediaHandshake
// registered for its destination (a WebRTC leg's local address and port),
// runs their timers, and sends what they answer through a TX ring that a
// worker drains (the slow path's, sluice/dpdk/slow_path.h).
//
// A control-side thread (std::thread, on the control thread's core): it
// sleeps when there is nothing to do, and never makes a worker wait.
// Threads and what they own:
//   workers          enqueue into ring(), never block (full: counted drop)
//   handshake thread the handlers' calls, each leg's link-layer facts, the
//                    frames it builds; runs what Post queues
//   control thread   Register/Unregister, Post; runs what PostToControl
//                    queued (RunControlTasks), e.g. installing DTLS keys
//                    through the session's re-key slots
// Register, Unregister, Post and PostToControl may be called from any
// thread; counters() may be read from any thread.
#ifndef SLUICE_WEBRTC_HANDSHAKE_THREAD_H_
#define SLUICE_WEBRTC_HANDSHAKE_THREAD_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/webrtc/media_handshake.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

namespace sluice::webrtc {

// Written by the handshake thread only (Send included), read by anyone.
struct HandshakeCounters {
  std::atomic<uint64_t> received{0};           // mbufs taken from the ring
  std::atomic<uint64_t> dispatched{0};         // given to a handler's OnDatagram
  std::atomic<uint64_t> no_handler{0};         // for a local endpoint nobody registered
  std::atomic<uint64_t> malformed{0};          // not a single-segment UDP STUN/DTLS frame
  std::atomic<uint64_t> timers{0};             // OnTimer calls
  std::atomic<uint64_t> sent{0};               // frames queued on the TX ring
  std::atomic<uint64_t> tx_full{0};            // the TX ring had no room: not sent
  std::atomic<uint64_t> unknown_remote{0};     // Send to an address never heard from: refused
  std::atomic<uint64_t> too_large{0};          // Send of a payload no frame holds: refused
  std::atomic<uint64_t> no_mbuf{0};            // the pool was empty: not sent
  std::atomic<uint64_t> remotes_forgotten{0};  // link-layer facts evicted by the per-leg bound
};

struct HandshakeThreadOptions {
  rte_mempool* pool = nullptr;  // mbufs for the frames it sends (multi-consumer)
  // Where it sends: a ring with several producers that a worker drains onto
  // its TX queues, each mbuf with its port set (SlowPath::tx_ring()).
  rte_ring* tx_ring = nullptr;
  std::string ring_name = "handshake";  // the workers' ring to it (unique per process)
  uint32_t ring_size = 4096;            // a power of two
  uint32_t burst = 32;                  // mbufs taken from the ring at a time, at most 64
  // How long it sleeps when the ring was empty and no timer is due sooner
  // (a Post or Stop wakes it at once).
  uint32_t idle_sleep_us = 1000;
  // Remote addresses whose link-layer facts a leg keeps; past that, the one
  // heard from least recently is forgotten (so a flood of sources cannot
  // grow it, nor push out a peer that keeps talking).
  uint32_t max_remotes_per_leg = 64;
  // Monotonic milliseconds; empty: the steady clock.
  std::function<uint64_t()> clock;
};

class HandshakeThread {
 public:
  static constexpr uint32_t kMaxBurst = 64;

  // Creates the ring; the thread starts with Start.
  static absl::StatusOr<std::unique_ptr<HandshakeThread>> Create(HandshakeThreadOptions options);
  // Stops, frees what is left in the ring, and the ring. Workers that were
  // given ring() must have stopped.
  ~HandshakeThread();

  // For every worker's WorkerConfig::handshake.
  rte_ring* ring() const { return ring_; }

  // Starts the thread (once). Without it, PollOnce does its work, for tests.
  void Start();
  // Joins the thread; then releases every handler and discards the tasks
  // queued either way (so what they hold goes now, on the calling thread),
  // and frees the mbufs waiting in the ring. Idempotent.
  void Stop();

  // A handler for what arrives at `local` (a leg's address and RTP port):
  // AlreadyExists if one is registered there. Seen by the thread's next
  // poll; each registration starts with no link-layer facts.
  absl::Status Register(const packet::Endpoint& local, std::shared_ptr<MediaHandshake> handler);
  // Removes it (false if none). The thread stops calling it from its next
  // poll (a call under way finishes) and drops its reference then.
  bool Unregister(const packet::Endpoint& local);

  // Runs `task` on the handshake thread, before its next poll's packets: how
  // the control thread reaches a handler (new ICE credentials, a re-key).
  void Post(std::function<void()> task);
  // Queues `task` for the control thread (RunControlTasks): how a handler
  // reports an event (a leg keyed, a peer selected). A task owns what it
  // captures, and wipes key material in its destructor.
  void PostToControl(std::function<void()> task);
  // Control thread: runs what PostToControl queued, in order; how many.
  size_t RunControlTasks();

  // One pass of the thread's loop, as of the clock's now: posted tasks, a
  // burst from the ring (each datagram to its handler), then every due
  // timer. Returns the mbufs taken. Only while the thread is not started.
  uint32_t PollOnce();

  const HandshakeCounters& counters() const { return counters_; }

 private:
  // What the last frame from one remote address to a leg showed: how to
  // reach it back.
  struct LinkFacts {
    uint16_t port = 0;
    uint16_t vlan = 0;
    packet::MacAddress remote_mac{};  // its source MAC: the next hop toward the remote
    packet::MacAddress local_mac{};   // its destination MAC: ours on that port
    uint64_t heard_ms = 0;
  };
  // A registration. `remotes` and `timer_ms` belong to the handshake thread,
  // which resets `handler` when the leg is unregistered.
  struct Leg {
    packet::Endpoint local;
    std::shared_ptr<MediaHandshake> handler;
    absl::flat_hash_map<packet::Endpoint, LinkFacts> remotes;
    uint64_t timer_ms = UINT64_MAX;  // the due time its live entry in timers_ holds
  };
  // A leg's timer; stale once the leg's timer_ms has moved on from due_ms.
  struct TimerEntry {
    uint64_t due_ms;
    std::shared_ptr<Leg> leg;
  };
  class LegSender;

  explicit HandshakeThread(HandshakeThreadOptions options);
  void Run();
  void Wake();
  void RefreshLegs();
  bool RunPosted();
  void Dispatch(rte_mbuf* m, uint64_t now);
  void Learn(Leg& leg, const packet::Endpoint& from, const LinkFacts& facts);
  // Asks the leg for its timer (after each of its calls) and files it.
  void Schedule(const std::shared_ptr<Leg>& leg);
  // Every leg again: after posted tasks, which may have changed any.
  void RescheduleAll();
  // Runs the due timers; the earliest next one (UINT64_MAX: none).
  uint64_t RunTimers(uint64_t now);
  bool SendFrame(Leg& leg, std::span<const uint8_t> payload, const packet::Endpoint& to);
  uint64_t NowMs() const;
  void FreeRing();

  HandshakeThreadOptions options_;
  rte_ring* ring_ = nullptr;
  HandshakeCounters counters_;

  // The registrations (any thread, under registry_mu_) and what changed
  // since the thread last looked (in order: a leg added, or null for the
  // one at that address removed), which it applies to its own map when
  // registry_version_ moves: one change costs the same with any number of
  // legs.
  std::mutex registry_mu_;
  absl::flat_hash_map<packet::Endpoint, std::shared_ptr<Leg>> registry_;
  std::vector<std::pair<packet::Endpoint, std::shared_ptr<Leg>>> changes_;
  std::atomic<uint64_t> registry_version_{0};
  absl::flat_hash_map<packet::Endpoint, std::shared_ptr<Leg>> legs_;  // handshake thread
  uint64_t legs_version_ = 0;                                         // handshake thread
  // Handshake thread: the legs' timers, a min-heap by due time, so a poll
  // visits only the legs that are due (stale entries are skipped and, past
  // a bound, swept), and its scratch list of them.
  std::vector<TimerEntry> timers_;
  std::vector<std::shared_ptr<Leg>> due_;
  uint64_t next_timer_ms_ = UINT64_MAX;                               // handshake thread
  uint16_t ip_id_ = 0;                                                // handshake thread

  // Tasks for the thread (wake_mu_ also guards woken_), and for the control
  // thread.
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;
  std::vector<std::function<void()>> to_thread_;
  std::mutex control_mu_;
  std::vector<std::function<void()>> to_control_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sluice::webrtc

#endif  // SLUICE_WEBRTC_HANDSHAKE_THREAD_H_
