// What the SRTP engine's protect (engine_protect.cc) and unprotect
// (engine_unprotect.cc) paths share: RTP header parsing, index estimation,
// IV construction, constant-time tag comparison, and the per-packet scratch
// a burst keeps between its phases.
//
// Private to src/srtp/. Data plane: every function here is inline, does not
// allocate and never fails in a way that is not a return value.
#ifndef SLUICE_SRC_SRTP_ENGINE_INTERNAL_H_
#define SLUICE_SRC_SRTP_ENGINE_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/replay_window.h"
#include "sluice/srtp/verdict.h"

namespace sluice::srtp {

// Cuts a long span into bursts of kMaxBurst.
template <typename BurstFn>
size_t Engine::Chunked(std::span<const Job> jobs, std::span<Verdict> verdicts,
                       BurstFn burst) noexcept {
  size_t ok = 0;
  for (size_t off = 0; off < jobs.size(); off += kMaxBurst) {
    const size_t n = std::min(kMaxBurst, jobs.size() - off);
    ok += (this->*burst)(jobs.subspan(off, n), verdicts.subspan(off, n));
  }
  return ok;
}

namespace engine_internal {

// A packet's scratch between a burst's phases, indexed like the burst.
struct Slot {
  Context::Key* key;
  int key_index;
  uint32_t header_len;  // unprotect: where the payload starts
  uint64_t index;
  uint32_t ssrc;
  uint32_t end;        // unprotect: the packet's length once the trailer is gone
  uint32_t trailer;    // SRTCP E flag and index
  uint8_t tag_len;
  bool decrypt_after;  // AES-CM payload to decrypt once the tag verified
  bool direct;  // unprotect: in the backend's own jobs, not a CryptoOp
  // RTP of a stream whose ROC rule a re-key left undecided (Context::
  // MarkRocTrial), and whether it authenticated with ROC 0 (roc_zero; index
  // then at ROC 0, kept_roc the ROC the estimate gave); first_key: the key it
  // was first tried with.
  bool roc_trial;
  bool roc_zero;
  int8_t first_key;
  uint32_t kept_roc;
  alignas(16) uint8_t rx_tag[16];
  uint8_t aad[12];
};


[[gnu::always_inline]] inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
[[gnu::always_inline]] inline uint32_t Load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
// One byte swap and one store: GCC does not merge four byte stores into one.
[[gnu::always_inline]] inline void Store32(uint8_t* p, uint32_t v) {
  const uint32_t be = __builtin_bswap32(v);
  std::memcpy(p, &be, 4);
}

constexpr uint32_t kRtcpHeaderLen = 8;
constexpr uint32_t kSrtcpTrailerLen = 4;
constexpr uint32_t kEFlag = 0x80000000u;
constexpr uint32_t kMaxSrtcpIndex = 0x7fffffffu;

// Fields are 64 bits wide: GCC spills them and reloads whole words, and a
// narrower store under a wider load cannot be store-forwarded.
struct RtpHeader {
  uint64_t header_len;  // fixed header + CSRCs + extension
  uint64_t seq;
  uint64_t ssrc;
};

// RFC 3550 §5.1 and §5.3.1: version 2, CSRC list and extension inside len.
[[gnu::always_inline]] inline bool ParseRtpHeader(const uint8_t* d, uint32_t len, RtpHeader* h) {
  if (len < 12 || (d[0] >> 6) != 2) return false;
  uint32_t header_len = 12 + 4u * (d[0] & 0x0f);
  if (d[0] & 0x10) {
    if (header_len + 4 > len) return false;
    header_len += 4 + 4u * Load16(d + header_len + 2);
  }
  if (header_len > len) return false;
  h->header_len = header_len;
  h->seq = Load16(d + 2);
  h->ssrc = Load32(d + 8);
  return true;
}

// RFC 3711 §3.3.1 and Appendix A: the packet index from the highest index so
// far and the sequence number, computed as libsrtp does. While the highest
// index is at most 2^15 the ROC is taken as 0 (the RFC's formula would guess
// ROC - 1 = 2^32 - 1 for a stream that starts high and dips below).
[[gnu::always_inline]] inline uint64_t EstimateIndex(bool have_top, uint64_t top, uint16_t seq) {
  if (!have_top || top <= 0x8000) return seq;
  const uint32_t local_roc = static_cast<uint32_t>(top >> 16);
  const int32_t local_seq = static_cast<int32_t>(top & 0xffff);
  const int32_t s = seq;
  uint32_t roc = local_roc;
  if (local_seq < 0x8000) {
    if (s - local_seq > 0x8000) roc = local_roc - 1;
  } else if (local_seq - 0x8000 > s) {
    roc = local_roc + 1;
  }
  return ((uint64_t{roc} << 16) | seq) & 0xffffffffffffull;
}

// Tags are 4, 8, 10 or 16 bytes, MKIs 0 to 4. GCC compiles a memcpy of a
// runtime length of 8 or more as head + tail + rep movsq, and rep movsq costs
// tens of cycles to start; one constant size per case compiles to plain moves.
[[gnu::always_inline]] inline void CopySmall(uint8_t* dst, const uint8_t* src, uint32_t len) {
  switch (len) {
    case 0: return;
    case 1: std::memcpy(dst, src, 1); return;
    case 2: std::memcpy(dst, src, 2); return;
    case 3: std::memcpy(dst, src, 3); return;
    case 4: std::memcpy(dst, src, 4); return;
    case 8: std::memcpy(dst, src, 8); return;
    case 10: std::memcpy(dst, src, 10); return;
    case 16: std::memcpy(dst, src, 16); return;
    default: std::memcpy(dst, src, len); return;
  }
}

// Whether the tag computed here equals the one received, in a time that
// depends on the length alone: the bytes are XORed and ORed together, never
// compared one by one, and the empty asm keeps the compiler from learning
// anything about the running difference (so it cannot exit early). Each
// tag length SRTP has (0 for NULL_AUTH, 4, 8, 10, 16) is a fixed run of
// word loads; any other length takes the loop.
[[gnu::always_inline]] inline uint64_t TagDiff(const uint8_t* a, const uint8_t* b, uint32_t len) {
  uint64_t diff = 0;
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
    __asm__("" : "+r"(diff));
  }
  if (len - i >= 4) {
    uint32_t x, y;
    std::memcpy(&x, a + i, 4);
    std::memcpy(&y, b + i, 4);
    diff |= x ^ y;
    __asm__("" : "+r"(diff));
    i += 4;
  }
  if (len - i >= 2) {
    uint16_t x, y;
    std::memcpy(&x, a + i, 2);
    std::memcpy(&y, b + i, 2);
    diff |= static_cast<uint16_t>(x ^ y);
    __asm__("" : "+r"(diff));
    i += 2;
  }
  for (; i < len; ++i) {
    diff |= static_cast<uint64_t>(a[i] ^ b[i]);
    __asm__("" : "+r"(diff));
  }
  return diff;
}

[[gnu::always_inline]] inline bool TagsEqual(const uint8_t* a, const uint8_t* b, uint32_t len) {
  uint64_t diff;
  switch (len) {
    case 0: return true;
    case 4: diff = TagDiff(a, b, 4); break;
    case 8: diff = TagDiff(a, b, 8); break;
    case 10: diff = TagDiff(a, b, 10); break;
    case 16: diff = TagDiff(a, b, 16); break;
    default: diff = TagDiff(a, b, len); break;
  }
  __asm__("" : "+r"(diff));
  return diff == 0;
}

inline Verdict FromReplayCheck(ReplayCheck c) {
  return c == ReplayCheck::kReplayed ? Verdict::kReplayed : Verdict::kTooOld;
}

// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
// `ssrc` points at the SSRC as it sits in the packet (network order), which
// is exactly the byte order the IV wants: loading it from there, rather than
// from a parsed host-order copy, spares a byte swap and a spill that GCC
// would reload with a wider load than it stored (a store-forwarding stall).
[[gnu::always_inline]] inline void CmIv(uint8_t iv[16], const uint64_t salt[2], const uint8_t* ssrc, uint64_t index) {
  // Built in two registers from the salt's prepared words and stored once.
  uint64_t hi = salt[0], lo = salt[1];
  uint32_t ssrc_be;
  std::memcpy(&ssrc_be, ssrc, 4);
  hi ^= uint64_t{ssrc_be} << 32;
  lo ^= __builtin_bswap64(index << 16);
  std::memcpy(iv, &hi, 8);
  std::memcpy(iv + 8, &lo, 8);
}

// RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt, and §9.1 for
// SRTCP: (0x0000 || SSRC || 0x0000 || 0 || index) XOR salt. In both the last
// six bytes are a 48-bit number: the packet index (ROC << 16 | SEQ) or the
// 31-bit SRTCP index. `salt` is the session key's salt words (12 bytes of
// salt, then zeros), so the IV's last four bytes, which ipsec-mb reads, are
// zero. Built in two registers, big-endian, and stored once.
[[gnu::always_inline]] inline void GcmIv(uint8_t iv[16], const uint64_t salt[2], uint32_t ssrc, uint64_t index48) {
  const uint64_t hi = (uint64_t{ssrc} << 16) | (index48 >> 32);  // bytes 0 to 7
  const uint64_t lo = (index48 & 0xffffffffu) << 32;             // bytes 8 to 15
  const uint64_t w0 = salt[0] ^ __builtin_bswap64(hi);
  const uint64_t w1 = salt[1] ^ __builtin_bswap64(lo);
  std::memcpy(iv, &w0, 8);
  std::memcpy(iv + 8, &w1, 8);
}

// When the crypto library refuses a burst, every packet still pending in it
// is dropped: none may leave unprotected or be accepted unverified.
inline void FailClosedUnless(bool ok, size_t n, Verdict* verdicts, bool* pending) noexcept {
  if (ok) return;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i]) {
      verdicts[i] = Verdict::kCryptoError;
      pending[i] = false;
    }
  }
}

}  // namespace engine_internal
}  // namespace sluice::srtp

#endif  // SLUICE_SRC_SRTP_ENGINE_INTERNAL_H_
