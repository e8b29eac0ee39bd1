// RFC 3711 §3.3.2 replay window: a bitmap of the last N indices below the
// highest one accepted.
//
// Owner thread only. Does not allocate: its words live in storage the owner
// provides (so windows of any size, 64 to 1024 bits, pack into one block).
#ifndef SLUICE_SRTP_REPLAY_WINDOW_H_
#define SLUICE_SRTP_REPLAY_WINDOW_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace sluice::srtp {

enum class ReplayCheck : uint8_t { kNew, kReplayed, kTooOld };

class ReplayWindow {
 public:
  ReplayWindow() = default;
  // Bits of storage a window of size_bits needs: the next power of two, so
  // that addressing a bit is a mask, not a division.
  static constexpr uint32_t StorageBits(uint32_t size_bits) {
    uint32_t bits = 64;
    while (bits < size_bits) bits *= 2;
    return bits;
  }

  // `words` holds StorageBits(size_bits) / 64 words, zeroed; size_bits is a
  // multiple of 64.
  void Init(uint64_t* words, uint32_t size_bits) noexcept {
    words_ = words;
    size_ = static_cast<uint16_t>(size_bits);
    mask_ = static_cast<uint16_t>(StorageBits(size_bits) - 1);
    top_ = 0;
    empty_ = true;
  }

  uint32_t size() const noexcept { return size_; }
  uint64_t top() const noexcept { return top_; }
  bool empty() const noexcept { return empty_; }
  // top() and empty() read from another thread than the owner's (a
  // checkpoint): relaxed loads, never torn.
  uint64_t top_relaxed() const noexcept {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(top_)).load(std::memory_order_relaxed);
  }
  bool empty_relaxed() const noexcept {
    return std::atomic_ref<bool>(const_cast<bool&>(empty_)).load(std::memory_order_relaxed);
  }

  // Empty again, as after Init (a stream slot given to a new SSRC).
  void Reset() noexcept {
    for (uint32_t w = 0; w < n_words(); ++w) words_[w] = 0;
    top_ = 0;
    empty_ = true;
  }

  // Starts the window at `index` without marking it received (a stream moved
  // from a previous context keeps its position).
  void Seed(uint64_t index) noexcept {
    for (uint32_t w = 0; w < n_words(); ++w) words_[w] = 0;
    top_ = index;
    empty_ = false;
  }

  // Starts the window at `index` with it and every index before it counted
  // as received (a stream resumed from what was remembered of it: nothing
  // at or below `index` is accepted again).
  void Resume(uint64_t index) noexcept {
    for (uint32_t w = 0; w < n_words(); ++w) words_[w] = ~uint64_t{0};
    top_ = index;
    empty_ = false;
  }

  // Moves the window down by `delta`, a multiple of 2^16 (whole rollovers):
  // every index it held is held `delta` lower. Bits sit at index modulo the
  // storage size, which divides 2^16, so only the top moves.
  void Rebase(uint64_t delta) noexcept { top_ -= delta; }

  // Takes over another window's state (re-key). With a different size the
  // whole new window counts as seen: late packets are refused, never replays
  // let through.
  void CopyFrom(const ReplayWindow& other) noexcept {
    if (other.empty_) {
      for (uint32_t w = 0; w < n_words(); ++w) words_[w] = 0;
      empty_ = true;
      top_ = 0;
      return;
    }
    top_ = other.top_;
    empty_ = false;
    if (other.size_ == size_) {
      for (uint32_t w = 0; w < n_words(); ++w) words_[w] = other.words_[w];
    } else {
      for (uint32_t w = 0; w < n_words(); ++w) words_[w] = ~uint64_t{0};
    }
  }

  // Whether `index` could be accepted. Changes nothing.
  ReplayCheck Check(uint64_t index) const noexcept {
    if (empty_ || index > top_) return ReplayCheck::kNew;
    const uint64_t delta = top_ - index;
    if (delta >= size_) return ReplayCheck::kTooOld;
    return Bit(index) ? ReplayCheck::kReplayed : ReplayCheck::kNew;
  }

  // Check() and, when it says kNew, Accept() in one step: for a sender,
  // whose index is committed as soon as it is chosen. The next index in order
  // (nearly every packet) takes the short way: one bit set, the top moved.
  ReplayCheck Admit(uint64_t index) noexcept {
    if (index == top_ + 1 && !empty_) [[likely]] {
      AcceptNext(index);
      return ReplayCheck::kNew;
    }
    const ReplayCheck c = Check(index);
    if (c == ReplayCheck::kNew) Accept(index);
    return c;
  }

  // Accept() for index == top() + 1 of a window that is not empty, which
  // the caller knows already.
  void AcceptNext(uint64_t index) noexcept {
    SetBit(index);
    top_ = index;
  }

  // AcceptNext() for each of from, from + 1, ..., to, in order (from ==
  // top() + 1, the window not empty), a word at a time. At most StorageBits
  // indices: the range may cover the storage once, never twice.
  void AcceptNextRange(uint64_t from, uint64_t to) noexcept {
    for (uint64_t i = from; i <= to;) {
      const uint64_t b = i & mask_;
      const uint64_t bit = b % 64;
      const uint64_t span = std::min<uint64_t>(64 - bit, to - i + 1);
      words_[b / 64] |= (span == 64 ? ~uint64_t{0} : (uint64_t{1} << span) - 1) << bit;
      i += span;
    }
    top_ = to;
  }

  // Records `index` as received; call only after the packet authenticated
  // and Check() said kNew.
  void Accept(uint64_t index) noexcept {
    if (empty_) {
      empty_ = false;
      top_ = index;
      SetBit(index);
      return;
    }
    if (index > top_) {
      const uint64_t advance = index - top_;
      if (advance >= size_) {
        for (uint32_t w = 0; w < n_words(); ++w) words_[w] = 0;
      } else {
        // Clear the bits of indices (top_, index] that slide into the window.
        for (uint64_t i = top_ + 1; i <= index; ++i) ClearBit(i);
      }
      top_ = index;
    }
    SetBit(index);
  }

 private:
  // Bits are addressed by index modulo the storage size (a power of two at
  // least the window size), so sliding is clearing, not shifting.
  uint32_t n_words() const noexcept { return (mask_ + 1) / 64; }
  bool Bit(uint64_t index) const noexcept {
    const uint64_t b = index & mask_;
    return (words_[b / 64] >> (b % 64)) & 1;
  }
  void SetBit(uint64_t index) noexcept {
    const uint64_t b = index & mask_;
    words_[b / 64] |= uint64_t{1} << (b % 64);
  }
  void ClearBit(uint64_t index) noexcept {
    const uint64_t b = index & mask_;
    words_[b / 64] &= ~(uint64_t{1} << (b % 64));
  }

  uint64_t* words_ = nullptr;
  uint64_t top_ = 0;
  uint16_t size_ = 0;   // at most 1024
  uint16_t mask_ = 63;
  bool empty_ = true;
};

static_assert(sizeof(ReplayWindow) == 24);

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_REPLAY_WINDOW_H_
