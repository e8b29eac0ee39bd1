// The process-wide registry of master keys in use or recently used, for
// refusing one key in two sessions (a reused SRTP key is a two-time pad
// across calls, and lets packets of one call be replayed into the other).
//
// Holds keyed fingerprints (srtp::KeyFingerprint), never a key. Bounded:
// a key a session no longer uses is remembered for the reuse window, then
// forgotten; when the registry is full the oldest released keys go first,
// and a new key is refused only when every entry is still in use.
// Control thread only.
#ifndef SLUICE_CONTROL_KEY_REGISTRY_H_
#define SLUICE_CONTROL_KEY_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>

#include "absl/status/status.h"
#include "sluice/srtp/master_key.h"

namespace sluice::control {

class KeyRegistry {
 public:
  // window_ms: how long a released key is still refused; capacity: entries
  // at most (in use and released).
  KeyRegistry(uint64_t window_ms, size_t capacity) : window_ms_(window_ms), capacity_(capacity) {}

  // Whether `fp` is in use by a session other than `owner`, or was released
  // by any session less than the window ago.
  bool Conflicts(const srtp::KeyFingerprint& fp, uint64_t owner, uint64_t now_ms);
  // Whether `n` more keys fit (after forgetting what has aged out and, if
  // need be, released keys oldest first).
  bool Reserve(size_t n, uint64_t now_ms);
  // Records that session `owner` uses `fp` (call Reserve first).
  void Acquire(const srtp::KeyFingerprint& fp, uint64_t owner);
  // Session `owner` no longer uses any of `fps`: each is remembered as
  // released at now_ms, for the window.
  void Release(std::span<const srtp::KeyFingerprint> fps, uint64_t owner, uint64_t now_ms);

  size_t size() const { return entries_.size(); }
  uint64_t window_ms() const { return window_ms_; }

 private:
  struct Entry {
    srtp::KeyFingerprint fp;
    uint64_t owner;
    uint64_t released_ms;  // 0: in use
  };
  using Map = std::unordered_multimap<uint64_t, Entry>;
  struct Released {
    uint64_t bucket, owner, released_ms;
  };

  // Forgets released keys older than the window.
  void Expire(uint64_t now_ms);
  // Forgets the oldest released key; false when there is none.
  bool ForgetOldest();
  void Forget(const Released& r);

  uint64_t window_ms_;
  size_t capacity_;
  Map entries_;                // by KeyFingerprint::bucket()
  std::deque<Released> released_;  // in release order
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_KEY_REGISTRY_H_
