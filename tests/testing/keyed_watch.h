// When each WebRTC leg is keyed, as sluiced tells it: a thread with a
// control connection of its own asks session.get about every leg it is
// given, every interval_ms, until the leg's dtls.state is "keyed" with its
// keys installed (rx_suite no longer "pending"), or "failed", and notes when
// it first said so. A load test's browsers never wait for the answers.
//
// Watch and the getters may be called from any thread.
#ifndef SLUICE_TESTS_TESTING_KEYED_WATCH_H_
#define SLUICE_TESTS_TESTING_KEYED_WATCH_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/control/client.h"

namespace sluice::testing {

class KeyedWatch {
 public:
  using Clock = std::chrono::steady_clock;

  struct Outcome {
    bool done = false;   // keyed or failed
    bool keyed = false;
    Clock::time_point at;  // when session.get first said so
    std::string reason;    // a failure's, or why the leg could not be asked about
  };

  // Connects to sluiced's control socket; calls 0..calls-1 may be watched.
  static absl::StatusOr<std::unique_ptr<KeyedWatch>> Start(const std::string& socket_path,
                                                           size_t calls, int interval_ms = 2);
  ~KeyedWatch();  // stops the thread
  KeyedWatch(const KeyedWatch&) = delete;
  KeyedWatch& operator=(const KeyedWatch&) = delete;

  // From now on, asks about leg `leg` of `session` for call `call`.
  void Watch(size_t call, const std::string& session, int leg);
  size_t done() const { return done_.load(std::memory_order_acquire); }
  std::vector<Outcome> Outcomes() const;
  // session.get requests sent so far.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    size_t call;
    std::string session;
    int leg;
    Clock::time_point next;
  };
  KeyedWatch(control::Client client, size_t calls, int interval_ms)
      : client_(std::move(client)), interval_(interval_ms), outcomes_(calls) {}
  void Run();
  // One session.get; true when the leg is done.
  bool Ask(const Pending& p);

  control::Client client_;  // the thread's
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::deque<Pending> pending_;   // guarded by mu_
  std::vector<Outcome> outcomes_;  // guarded by mu_
  std::atomic<size_t> done_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_KEYED_WATCH_H_
