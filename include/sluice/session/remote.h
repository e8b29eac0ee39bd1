// Where a leg's peer is: its UDP endpoint and the next-hop MAC toward it,
// given by the control plane or learned from authenticated packets.
//
// Written by the worker that owns the leg's inbound direction (learning) and,
// rarely, by the control plane (a new remote from the controller); read by the
// worker of the other direction. A sequence lock over atomic words: readers
// never see a torn endpoint and retry only while a store of four words is in
// progress; writers exclude each other by taking the sequence to odd. Does
// not allocate.
#ifndef SLUICE_SESSION_REMOTE_H_
#define SLUICE_SESSION_REMOTE_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"

namespace sluice::session {

struct RemoteView {
  bool known = false;     // an endpoint to send to
  bool has_mac = false;   // next-hop MAC learned with it
  bool learned = false;   // from traffic (not given by the control plane)
  packet::Endpoint endpoint;
  packet::MacAddress mac{};
};

// One cache line: a packet reads the sequence, the words and the resolved
// MAC, and a slot that straddled two lines cost a second miss per packet.
class alignas(64) RemoteSlot {
 public:
  // Writer side.
  void Store(const RemoteView& view) noexcept {
    uint64_t words[kWords];
    Pack(view, words);
    uint32_t s = seq_.load(std::memory_order_relaxed);
    for (;;) {
      if ((s & 1) == 0 &&
          seq_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        break;
      }
      s = seq_.load(std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_release);
    for (int i = 0; i < kWords; ++i) words_[i].store(words[i], std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
  }

  // Reader side: a consistent copy.
  RemoteView Load() const noexcept {
    uint64_t words[kWords];
    for (;;) {
      const uint32_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      for (int i = 0; i < kWords; ++i) words[i] = words_[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == s1) break;
    }
    RemoteView view;
    Unpack(words, &view);
    return view;
  }

  // Reader side, per packet: whether the peer is known and is `ip` at port
  // peer port + port_offset, and whether a MAC came with it; one consistent
  // read, compared in registers (a RemoteView copy stalls: its fields are
  // stored narrow and read wide).
  struct Match {
    bool same;     // known, same address and port
    bool has_mac;  // the view's own MAC, given or learned
  };
  Match Matches(const packet::IpAddress& ip, uint16_t port, uint16_t port_offset) const noexcept {
    uint64_t w0, w1, w2;
    for (;;) {
      const uint32_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      w0 = words_[0].load(std::memory_order_relaxed);
      w1 = words_[1].load(std::memory_order_relaxed);
      w2 = words_[2].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == s1) break;
    }
    uint64_t a1, a2;
    std::memcpy(&a1, ip.bytes.data(), 8);
    std::memcpy(&a2, ip.bytes.data() + 8, 8);
    const bool known = w0 & 1;
    const uint8_t family = static_cast<uint8_t>(w0 >> 8);
    const uint16_t peer_port = static_cast<uint16_t>(w0 >> 16);
    return Match{known && family == ip.family && w1 == a1 && w2 == a2 &&
                     static_cast<uint16_t>(peer_port + port_offset) == port,
                 ((w0 >> 1) & 1) != 0};
  }

  // The control plane's ARP/ND answer for the next hop toward this peer
  // (cp: writes; dp: reads when the view has no MAC). A separate word, so the
  // worker stays the only writer of the view.
  void SetResolvedMac(const packet::MacAddress& mac) noexcept {
    uint64_t v = uint64_t{1} << 63;
    for (int i = 0; i < 6; ++i) v |= uint64_t{mac[i]} << (8 * i);
    resolved_.store(v, std::memory_order_release);
  }
  bool ResolvedMac(packet::MacAddress* mac) const noexcept {
    const uint64_t v = resolved_.load(std::memory_order_acquire);
    if ((v >> 63) == 0) return false;
    for (int i = 0; i < 6; ++i) (*mac)[i] = static_cast<uint8_t>(v >> (8 * i));
    return true;
  }

  // Changes on every Store; a reader caches by it.
  uint32_t version() const noexcept { return seq_.load(std::memory_order_acquire); }
  // The resolved MAC as one word: changes whenever SetResolvedMac sets another
  // MAC; a reader that used ResolvedMac caches by it too.
  uint64_t resolved_word() const noexcept { return resolved_.load(std::memory_order_acquire); }

 private:
  static constexpr int kWords = 4;
  // [0] flags, family, port; [1..2] address; [3] MAC.
  static void Pack(const RemoteView& v, uint64_t w[kWords]) {
    uint64_t mac = 0;
    for (int i = 0; i < 6; ++i) mac |= uint64_t{v.mac[i]} << (8 * i);
    w[0] = uint64_t{v.known} | (uint64_t{v.has_mac} << 1) | (uint64_t{v.learned} << 2) |
           (uint64_t{v.endpoint.ip.family} << 8) | (uint64_t{v.endpoint.port} << 16);
    std::memcpy(&w[1], v.endpoint.ip.bytes.data(), 16);
    w[3] = mac;
  }
  static void Unpack(const uint64_t w[kWords], RemoteView* v) {
    v->known = w[0] & 1;
    v->has_mac = (w[0] >> 1) & 1;
    v->learned = (w[0] >> 2) & 1;
    v->endpoint.ip.family = static_cast<uint8_t>(w[0] >> 8);
    v->endpoint.port = static_cast<uint16_t>(w[0] >> 16);
    std::memcpy(v->endpoint.ip.bytes.data(), &w[1], 16);
    for (int i = 0; i < 6; ++i) v->mac[i] = static_cast<uint8_t>(w[3] >> (8 * i));
  }

  std::atomic<uint32_t> seq_{0};
  std::atomic<uint64_t> words_[kWords]{};
  std::atomic<uint64_t> resolved_{0};
};

}  // namespace sluice::session

#endif  // SLUICE_SESSION_REMOTE_H_
