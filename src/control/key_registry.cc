#include "sluice/control/key_registry.h"

namespace sluice::control {

bool KeyRegistry::Conflicts(const srtp::KeyFingerprint& fp, uint64_t owner, uint64_t now_ms) {
  Expire(now_ms);
  auto [first, last] = entries_.equal_range(fp.bucket());
  for (auto it = first; it != last; ++it) {
    const Entry& e = it->second;
    if (!e.fp.Matches(fp)) continue;
    if (e.released_ms != 0 || e.owner != owner) return true;
  }
  return false;
}

bool KeyRegistry::Reserve(size_t n, uint64_t now_ms) {
  Expire(now_ms);
  while (entries_.size() + n > capacity_) {
    if (!ForgetOldest()) return false;
  }
  return true;
}

void KeyRegistry::Acquire(const srtp::KeyFingerprint& fp, uint64_t owner) {
  entries_.emplace(fp.bucket(), Entry{fp, owner, 0});
}

void KeyRegistry::Release(std::span<const srtp::KeyFingerprint> fps, uint64_t owner,
                          uint64_t now_ms) {
  // 0 means in use: a release at time 0 (a clock that starts there) is 1.
  const uint64_t at = now_ms == 0 ? 1 : now_ms;
  for (const srtp::KeyFingerprint& fp : fps) {
    auto [first, last] = entries_.equal_range(fp.bucket());
    for (auto it = first; it != last; ++it) {
      Entry& e = it->second;
      if (e.owner != owner || e.released_ms != 0 || !e.fp.Matches(fp)) continue;
      e.released_ms = at;
      released_.push_back(Released{fp.bucket(), owner, at});
      break;
    }
  }
}

void KeyRegistry::Expire(uint64_t now_ms) {
  while (!released_.empty() && released_.front().released_ms + window_ms_ <= now_ms) {
    ForgetOldest();
  }
}

bool KeyRegistry::ForgetOldest() {
  if (released_.empty()) return false;
  Forget(released_.front());
  released_.pop_front();
  return true;
}

void KeyRegistry::Forget(const Released& r) {
  auto [first, last] = entries_.equal_range(r.bucket);
  for (auto it = first; it != last; ++it) {
    if (it->second.owner == r.owner && it->second.released_ms == r.released_ms) {
      entries_.erase(it);
      return;
    }
  }
}

}  // namespace sluice::control
