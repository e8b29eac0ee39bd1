// Two dtls::Endpoints joined by an in-memory pipe with a test clock: runs a
// handshake to its end, dropping or corrupting what a test asks, and keeps
// what each side sent.
//
// Test thread only. Header-only (the endpoint and interoperation tests
// share it). OpenSSL's retransmission timers run on the real clock, so when
// nothing is in flight the pipe sleeps until the next timer and moves the
// test clock by as much (by more when the wait is long).
#ifndef SLUICE_TESTS_DTLS_HANDSHAKE_PIPE_H_
#define SLUICE_TESTS_DTLS_HANDSHAKE_PIPE_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "sluice/dtls/endpoint.h"

namespace sluice::dtls::testing {

using Datagram = std::vector<uint8_t>;

struct Sent {
  bool from_client;
  int batch;  // index among all non-empty TakeOutgoing results, both sides
  Datagram bytes;
};

class HandshakePipe {
 public:
  // Whether to drop a datagram (true: lost).
  using DropFn = std::function<bool(const Sent&)>;

  HandshakePipe(Endpoint* client, Endpoint* server) : client_(client), server_(server) {}

  uint64_t now() const { return now_; }
  void Advance(uint64_t ms) { now_ += ms; }
  const std::vector<Sent>& sent() const { return sent_; }
  int batches() const { return batch_; }

  // Until both sides are keyed or failed, or max_steps rounds pass.
  void Run(const DropFn& drop = {}, int max_steps = 200) {
    client_->Start(now_);
    server_->Start(now_);
    for (int step = 0; step < max_steps && !Done(); ++step) {
      const bool moved = Pump(*client_, *server_, true, drop) | Pump(*server_, *client_, false, drop);
      if (!moved && !WaitForTimer()) break;
    }
    // A keyed server may still owe the client its last flight.
    for (int step = 0; step < 4; ++step) {
      Pump(*client_, *server_, true, drop);
      Pump(*server_, *client_, false, drop);
    }
  }

  bool Done() const { return Finished(*client_) && Finished(*server_); }

 private:
  static bool Finished(const Endpoint& e) {
    return e.state() == State::kFailed || (e.state() == State::kKeyed && !e.has_session()) ||
           (e.state() == State::kKeyed && e.role() == Role::kServer);
  }

  bool Pump(Endpoint& from, Endpoint& to, bool from_client, const DropFn& drop) {
    std::vector<Datagram> out = from.TakeOutgoing();
    if (out.empty()) return false;
    const int batch = batch_++;
    for (Datagram& d : out) {
      sent_.push_back({from_client, batch, d});
      if (drop && drop(sent_.back())) continue;
      to.Feed(d, now_);
    }
    return true;
  }

  // Sleeps until the earlier side's next timer; false when none is set.
  bool WaitForTimer() {
    std::optional<uint64_t> next = client_->NextTimeoutMs();
    const std::optional<uint64_t> other = server_->NextTimeoutMs();
    if (!next || (other && *other < *next)) next = other;
    if (!next) return false;
    if (*next > now_) {
      // Long waits (a deadline, a late retransmission) pass on the test
      // clock only.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<uint64_t>(*next - now_, 200)));
      now_ = *next;
    }
    client_->OnTimer(now_);
    server_->OnTimer(now_);
    return true;
  }

  Endpoint* client_;
  Endpoint* server_;
  uint64_t now_ = 1'000'000;
  int batch_ = 0;
  std::vector<Sent> sent_;
};

}  // namespace sluice::dtls::testing

#endif  // SLUICE_TESTS_DTLS_HANDSHAKE_PIPE_H_
