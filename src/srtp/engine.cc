#include "sluice/srtp/engine.h"

#include <algorithm>
#include <cstring>

namespace sluice::srtp {
namespace {

using crypto::AuthKind;
using crypto::CipherKind;
using crypto::CryptoOp;

inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t Load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

constexpr uint32_t kRtcpHeaderLen = 8;
constexpr uint32_t kSrtcpTrailerLen = 4;
constexpr uint32_t kEFlag = 0x80000000u;
constexpr uint32_t kMaxSrtcpIndex = 0x7fffffffu;
// Bytes of tag ipsec-mb writes for HMAC-SHA1 (it computes 12 or 20).
constexpr uint32_t kHmacTagOutputLen = 12;

// Fields are 64 bits wide: GCC spills them and reloads whole words, and a
// narrower store under a wider load cannot be store-forwarded (a ~15-cycle
// stall per packet in ProtectRtpBurst, seen in perf annotate).
struct RtpHeader {
  uint64_t header_len;  // fixed header + CSRCs + extension
  uint64_t seq;
  uint64_t ssrc;
};

// RFC 3550 §5.1 and §5.3.1: version 2, CSRC list and extension inside len.
bool ParseRtpHeader(const uint8_t* d, uint32_t len, RtpHeader* h) {
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
uint64_t EstimateIndex(bool have_top, uint64_t top, uint16_t seq) {
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
inline void CopySmall(uint8_t* dst, const uint8_t* src, uint32_t len) {
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
// anything about the running difference (so it cannot exit early). Inline,
// a word at a time: CRYPTO_memcmp, a call and a byte loop, was 4% of
// unprotect. Tags are 4, 8, 10 or 16 bytes.
inline bool TagsEqual(const uint8_t* a, const uint8_t* b, uint32_t len) {
  uint64_t diff = 0;
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
    __asm__("" : "+r"(diff));
  }
  for (; i < len; ++i) {
    diff |= static_cast<uint64_t>(a[i] ^ b[i]);
    __asm__("" : "+r"(diff));
  }
  return diff == 0;
}

Verdict FromReplayCheck(ReplayCheck c) {
  return c == ReplayCheck::kReplayed ? Verdict::kReplayed : Verdict::kTooOld;
}

// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
// `ssrc` points at the SSRC as it sits in the packet (network order), which
// is exactly the byte order the IV wants: loading it from there, rather than
// from a parsed host-order copy, spares a byte swap and a spill that GCC
// reloaded with a wider load than it stored (a store-forwarding stall that
// was the hottest spot of protect).
void CmIv(uint8_t iv[16], const uint64_t salt[2], const uint8_t* ssrc, uint64_t index) {
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
void GcmIv(uint8_t iv[16], const uint64_t salt[2], uint32_t ssrc, uint64_t index48) {
  const uint64_t hi = (uint64_t{ssrc} << 16) | (index48 >> 32);  // bytes 0 to 7
  const uint64_t lo = (index48 & 0xffffffffu) << 32;             // bytes 8 to 15
  const uint64_t w0 = salt[0] ^ __builtin_bswap64(hi);
  const uint64_t w1 = salt[1] ^ __builtin_bswap64(lo);
  std::memcpy(iv, &w0, 8);
  std::memcpy(iv + 8, &w1, 8);
}

// How protect goes on with a packet after phase 1. In ipsec-mb's own jobs:
// nothing more (its trailer and length are final: the tag is written in
// place and it has no MKI), write the MKI (the tag is in place), or write
// the MKI and copy the tag (the tailroom had no room for the library's 12
// bytes of tag). As a CryptoOp: phase 3 writes its MKI and tag (an AES-GCM
// tag is written in place), or (kOpDone) nothing more.
enum class ProtectFinish : uint8_t { kDone, kMki, kMkiAndTag, kOp, kOpDone };

// Unprotect estimates the index of a stream with no authenticated packet yet
// from the earlier packets of the same burst, as libsrtp would one by one.
struct Pending {
  const Context* ctx;
  uint32_t ssrc;
  uint64_t top;
};

}  // namespace

struct Engine::Slot {
  Context::Key* key;
  int key_index;
  uint64_t index;
  uint32_t ssrc;
  uint32_t end;       // unprotect: the packet's length once the trailer is gone
  uint32_t trailer;   // SRTCP E flag and index
  uint8_t tag_len;
  bool pending;       // passed phase 1, waiting for crypto
  bool decrypt_after; // AES-CM payload to decrypt once the tag verified
  alignas(16) uint8_t rx_tag[16];
  uint8_t aad[12];
};

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

size_t Engine::ProtectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::ProtectRtpBurst);
}

size_t Engine::UnprotectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::UnprotectRtpBurst);
}

size_t Engine::ProtectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::ProtectRtcpBurst);
}

size_t Engine::UnprotectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::UnprotectRtcpBurst);
}

namespace {

// When the crypto library refuses a burst, every packet still pending in it
// is dropped: none may leave unprotected or be accepted unverified.
void FailClosedUnless(bool ok, size_t n, Verdict* verdicts, bool* pending) {
  if (ok) return;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i]) {
      verdicts[i] = Verdict::kCryptoError;
      pending[i] = false;
    }
  }
}

}  // namespace

size_t Engine::ProtectRtpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];

  // Phase 1: parse, pick the stream and index, set up the crypto. A sender's
  // index is committed here: nothing after this can make it unused, and a
  // second packet with the same index must be refused (two-time pad).
  //
  // A run of packets of one stream in order (a video frame, a talk spurt of
  // one call) is counted here and written to the stream's window and the
  // key's counter once, when the run ends: a packet's index then waits for
  // no memory write of the packet before.
  struct Run {
    const Context* ctx = nullptr;
    uint64_t ssrc = 0;
    Context::Stream* stream = nullptr;
    Context::Key* key = nullptr;
    uint64_t top = 0;      // the stream's highest index
    uint64_t written = 0;  // the highest index its window holds
    uint64_t count = 0;    // packets protected with key
    void Flush() noexcept {
      if (ctx == nullptr) return;
      if (top > written) stream->rtp_window.AcceptNextRange(written + 1, top);
      written = top;
      key->srtp_count = count;
    }
  } run;
  const crypto::SuiteInfo* one_suite = nullptr;  // of the CryptoOps' packets
  bool mixed = false;                            // whether they have several
  // AES-CM with HMAC-SHA1 packets of one key size go straight into the
  // backend's own jobs where it has them (ipsec-mb): n_direct of them, their
  // AES keys direct_key_len bytes. A packet of another key size, or with
  // nothing to encrypt, takes a CryptoOp (n_ops of them). finish[i], read
  // only while pending[i], is what phase 3 still has to do.
  IMB_JOB* const direct = direct_jobs_;
  size_t n_direct = 0;
  uint32_t direct_key_len = 0;
  size_t n_ops = 0;
  ProtectFinish finish[kMaxBurst];
  for (size_t i = 0; i < n; ++i) {
    pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    RtpHeader h;
    if (!ParseRtpHeader(pkt.data, pkt.len, &h)) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    Context::Key& key = *ctx.active_key_;
    const bool in_run = &ctx == run.ctx && h.ssrc == run.ssrc;
    if (!in_run) run.Flush();
    const uint64_t count = in_run ? run.count : key.srtp_count;
    if (count >= key.srtp_limit) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    if (pkt.capacity < pkt.len || pkt.capacity - pkt.len < ctx.srtp_overhead()) {
      verdicts[i] = Verdict::kNoTailroom;
      continue;
    }
    uint64_t index;
    if (in_run) {
      index = EstimateIndex(true, run.top, h.seq);
      if (index == run.top + 1) [[likely]] {
        run.top = index;
      } else {
        run.Flush();
        if (ReplayCheck c = run.stream->rtp_window.Admit(index); c != ReplayCheck::kNew) {
          verdicts[i] = FromReplayCheck(c);
          continue;
        }
        run.top = run.written = run.stream->rtp_window.top();
      }
    } else {
      Context::Stream* stream = ctx.FindOrAddStream(static_cast<uint32_t>(h.ssrc));
      if (stream == nullptr) {
        verdicts[i] = Verdict::kStreamLimit;
        continue;
      }
      index = EstimateIndex(!stream->rtp_window.empty(), stream->rtp_window.top(), h.seq);
      if (ReplayCheck c = stream->rtp_window.Admit(index); c != ReplayCheck::kNew) {
        verdicts[i] = FromReplayCheck(c);
        continue;
      }
      const uint64_t top = stream->rtp_window.top();
      run = Run{&ctx, h.ssrc, stream, &key, top, top, count};
    }
    run.count = count + 1;
    pending[i] = true;
    slots[i].key = &key;
    const crypto::SessionKey* sk = ctx.active_srtp_key_;
    const uint32_t header_len = static_cast<uint32_t>(h.header_len);

    if (direct != nullptr && suite.cipher == CipherKind::kAesCm &&
        suite.srtp_auth == AuthKind::kHmacSha1 && pkt.len > header_len &&
        (n_direct == 0 || suite.key_len == direct_key_len)) [[likely]] {
      direct_key_len = suite.key_len;
      uint8_t* buf = pkt.data;
      const uint32_t len = pkt.len;
      uint8_t* iv = direct_ivs_[n_direct];
      CmIv(iv, sk->cm_salt, buf + 8, index);
      // RFC 3711 §4.2: the tag covers header, encrypted payload and ROC; the
      // ROC sits where the MKI and tag go, which are written afterwards.
      Store32(buf + len, static_cast<uint32_t>(index >> 16));
      IMB_JOB& job = direct[n_direct++];
      job.enc_keys = sk->aes_round_keys;
      job.dec_keys = sk->aes_round_keys;
      job.key_len_in_bytes = suite.key_len;
      job.src = buf;
      job.dst = buf + header_len;
      job.cipher_start_src_offset_in_bytes = header_len;
      job.msg_len_to_cipher_in_bytes = len - header_len;
      job.iv = iv;
      job.hash_start_src_offset_in_bytes = 0;
      job.msg_len_to_hash_in_bytes = len + 4;
      job.u.HMAC._hashed_auth_key_xor_ipad = sk->hmac_ipad_state;
      job.u.HMAC._hashed_auth_key_xor_opad = sk->hmac_opad_state;
      // The library writes 12 bytes of tag (the first 10 or 4 are SRTP's):
      // into the trailer itself, once the hash has read the ROC there,
      // where the tailroom has the 2 or 8 bytes more; else aside, for phase
      // 3 to copy.
      const uint32_t mki_len = ctx.mki_len_;
      if (pkt.capacity - len >= mki_len + kHmacTagOutputLen) {
        job.auth_tag_output = buf + len + mki_len;
        if (mki_len == 0) {
          pkt.len = len + ctx.srtp_overhead();
          finish[i] = ProtectFinish::kDone;
        } else {
          finish[i] = ProtectFinish::kMki;
        }
      } else {
        job.auth_tag_output = ops_[i].tag;
        finish[i] = ProtectFinish::kMkiAndTag;
      }
      continue;
    }

    mixed |= one_suite != nullptr && one_suite != &suite;
    one_suite = &suite;
    CryptoOp& op = ops_[i];
    op.key = sk;
    op.buf = pkt.data;
    op.aad = nullptr;
    op.cipher_offset = header_len;
    op.cipher_len = pkt.len - header_len;
    op.auth_offset = 0;
    if (suite.cipher == CipherKind::kAesCm) {
      CmIv(op.iv, sk->cm_salt, pkt.data + 8, index);
    } else if (suite.cipher == CipherKind::kAesGcm) {
      // RFC 7714 §8.2: the header is the AAD; the tag follows the ciphertext
      // (then the MKI): the library writes it there.
      GcmIv(op.iv, sk->cm_salt, static_cast<uint32_t>(h.ssrc), index);
      op.auth_len = header_len;
      op.tag_len = suite.srtp_tag_len;
      op.tag_out = pkt.data + pkt.len;
      ++n_ops;
      if (ctx.mki_len_ == 0) {
        pkt.len += ctx.srtp_overhead();
        finish[i] = ProtectFinish::kOpDone;
      } else {
        finish[i] = ProtectFinish::kOp;
      }
      continue;
    }
    if (suite.srtp_auth == AuthKind::kHmacSha1) {
      Store32(pkt.data + pkt.len, static_cast<uint32_t>(index >> 16));
      op.auth_len = pkt.len + 4;
    }
    finish[i] = ProtectFinish::kOp;
    ++n_ops;
  }

  run.Flush();

  // Sorted by kind of work apart from the loop above, which has enough to
  // keep in registers already. A whole burst of AES-CM with HMAC-SHA1 (the
  // usual case) needs no sorting.
  CryptoOp* cm[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* both[kMaxBurst];
  size_t n_both = 0, n_cm = 0, n_gcm = 0, n_hmac = 0;
  const bool uniform = n_ops == n && !mixed && one_suite != nullptr;
  const bool all_cm_hmac = uniform && one_suite->cipher == CipherKind::kAesCm &&
                           one_suite->srtp_auth == AuthKind::kHmacSha1;
  const bool all_gcm = uniform && one_suite->cipher == CipherKind::kAesGcm;
  for (size_t i = 0; i < n && n_ops > 0 && !all_cm_hmac && !all_gcm; ++i) {
    if (!pending[i] || finish[i] < ProtectFinish::kOp) continue;
    const crypto::SuiteInfo& suite = *jobs[i].ctx->suite_;
    CryptoOp* op = &ops_[i];
    const bool mac = suite.srtp_auth == AuthKind::kHmacSha1;
    if (suite.cipher == CipherKind::kAesCm) {
      if (mac) {
        both[n_both++] = op;  // encrypt-then-MAC in one submission
      } else {
        cm[n_cm++] = op;
      }
    } else if (suite.cipher == CipherKind::kAesGcm) {
      gcm[n_gcm++] = op;
    } else if (mac) {
      hmac[n_hmac++] = op;
    }
  }

  // Phase 2: one submission per kind of work for the whole burst;
  // encrypt-then-MAC. The direct jobs first: the backend's other calls may
  // reuse their array.
  bool ok = n_direct == 0 || backend_.SubmitCmHmacJobs(n_direct, direct_key_len);
  if (ok && n_ops > 0) {
    const std::span<CryptoOp* const> all(op_ptrs_.data(), n);
    ok = SubmitProtect(all_cm_hmac ? all : std::span<CryptoOp* const>(both, n_both),
                       {cm, n_cm}, all_gcm ? all : std::span<CryptoOp* const>(gcm, n_gcm),
                       {hmac, n_hmac});
  }
  FailClosedUnless(ok, n, verdicts.data(), pending);

  // Phase 3: append MKI and tag.
  size_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!pending[i]) continue;
    verdicts[i] = Verdict::kOk;
    ++good;
    if (finish[i] == ProtectFinish::kDone || finish[i] == ProtectFinish::kOpDone) continue;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    uint8_t* trailer = pkt.data + pkt.len;
    const uint8_t* mki = slots[i].key->mki.data();
    if (suite.cipher == CipherKind::kAesGcm) {
      CopySmall(trailer + suite.srtp_tag_len, mki, ctx.mki_len_);  // after the tag, in place
    } else {
      CopySmall(trailer, mki, ctx.mki_len_);
      if (finish[i] != ProtectFinish::kMki) {
        CopySmall(trailer + ctx.mki_len_, ops_[i].tag, suite.srtp_tag_len);
      }
    }
    pkt.len += ctx.srtp_overhead();
  }
  return good;
}

size_t Engine::UnprotectRtpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];
  Pending starts[kMaxBurst];
  size_t n_starts = 0;
  CryptoOp* cm[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  size_t n_cm = 0, n_gcm = 0, n_hmac = 0;

  // Phase 1: parse, find the key by MKI, estimate the index, pre-check replay.
  for (size_t i = 0; i < n; ++i) {
    pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    RtpHeader h;
    const uint32_t tag_len = suite.srtp_tag_len;
    const uint32_t mki_len = ctx.mki_len_;
    if (!ParseRtpHeader(pkt.data, pkt.len, &h) || pkt.len < h.header_len + tag_len + mki_len) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    // HMAC: header | payload | MKI | tag.  GCM: header | ciphertext | tag | MKI.
    const uint32_t end = pkt.len - tag_len - mki_len;
    const bool aead = suite.cipher == CipherKind::kAesGcm;
    const uint8_t* mki = aead ? pkt.data + end + tag_len : pkt.data + end;
    const uint8_t* tag = aead ? pkt.data + end : pkt.data + end + mki_len;
    int k = 0;
    if (mki_len > 0) {
      k = ctx.FindKeyByMki(mki);
      if (k < 0) {
        verdicts[i] = Verdict::kUnknownMki;
        continue;
      }
    }
    if (mki_len == 0) k = ctx.active_;
    Context::Key& key = mki_len == 0 ? *ctx.active_key_ : ctx.keys_[static_cast<size_t>(k)];
    if (key.srtp_count >= key.srtp_limit) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    Context::Stream* stream = ctx.FindStream(h.ssrc);
    uint64_t index;
    if (stream != nullptr && !stream->rtp_window.empty()) {
      index = EstimateIndex(true, stream->rtp_window.top(), h.seq);
      if (ReplayCheck c = stream->rtp_window.Check(index); c != ReplayCheck::kNew) {
        verdicts[i] = FromReplayCheck(c);
        continue;
      }
    } else {
      // A stream's first packets: no state may be created before one of them
      // authenticates, but a burst that starts a stream right at the wrap
      // must still see the wrap.
      if (stream == nullptr && !ctx.HasFreeStream()) {
        verdicts[i] = Verdict::kStreamLimit;
        continue;
      }
      Pending* start = nullptr;
      for (size_t s = 0; s < n_starts; ++s) {
        if (starts[s].ctx == &ctx && starts[s].ssrc == h.ssrc) start = &starts[s];
      }
      index = start != nullptr ? EstimateIndex(true, start->top, h.seq) : h.seq;
      if (start == nullptr) {
        starts[n_starts++] = Pending{&ctx, static_cast<uint32_t>(h.ssrc), index};
      } else if (index > start->top) {
        start->top = index;
      }
    }

    Slot& slot = slots[i];
    slot.key = &key;
    slot.key_index = k;
    slot.index = index;
    slot.ssrc = h.ssrc;
    slot.end = end;
    slot.tag_len = static_cast<uint8_t>(tag_len);
    slot.decrypt_after = false;
    CopySmall(slot.rx_tag, tag, tag_len);
    CryptoOp& op = ops_[i];
    const crypto::SessionKey* sk = key.srtp;
    op.key = sk;
    op.buf = pkt.data;
    op.aad = nullptr;
    op.cipher_offset = h.header_len;
    op.cipher_len = end - h.header_len;
    const uint32_t roc = static_cast<uint32_t>(index >> 16);
    if (aead) {
      GcmIv(op.iv, sk->cm_salt, h.ssrc, index);
      op.auth_offset = 0;
      op.auth_len = h.header_len;
      op.tag_len = static_cast<uint8_t>(tag_len);
      CopySmall(op.tag, tag, tag_len);
      gcm[n_gcm++] = &op;
    } else {
      if (suite.cipher == CipherKind::kAesCm) {
        CmIv(op.iv, sk->cm_salt, pkt.data + 8, index);
        slot.decrypt_after = true;
      }
      if (suite.srtp_auth == AuthKind::kHmacSha1) {
        Store32(pkt.data + end, roc);  // over the MKI/tag, already copied
        op.auth_offset = 0;
        op.auth_len = end + 4;
        hmac[n_hmac++] = &op;
      } else if (slot.decrypt_after) {
        cm[n_cm++] = &op;  // no tag to check first
        slot.decrypt_after = false;
      }
    }
    pending[i] = true;
  }

  return FinishUnprotect(jobs, verdicts, slots, pending, {hmac, n_hmac}, {gcm, n_gcm},
                         {cm, n_cm}, /*rtcp=*/false);
}

size_t Engine::ProtectRtcpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];
  CryptoOp* cm[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* both[kMaxBurst];
  size_t n_both = 0;
  size_t n_cm = 0, n_gcm = 0, n_hmac = 0;

  for (size_t i = 0; i < n; ++i) {
    pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    if (pkt.len < kRtcpHeaderLen || (pkt.data[0] >> 6) != 2) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    Context::Key& key = ctx.keys_[static_cast<size_t>(ctx.active_)];
    if (key.srtcp_count >= key.srtcp_limit) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    if (pkt.capacity < pkt.len || pkt.capacity - pkt.len < ctx.srtcp_overhead()) {
      verdicts[i] = Verdict::kNoTailroom;
      continue;
    }
    const uint32_t ssrc = Load32(pkt.data + 4);
    Context::Stream* stream = ctx.FindOrAddStream(ssrc);
    if (stream == nullptr) {
      verdicts[i] = Verdict::kStreamLimit;
      continue;
    }
    if (stream->srtcp_index >= kMaxSrtcpIndex) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    const uint32_t index = ++stream->srtcp_index;
    ++key.srtcp_count;
    // RFC 3711 §3.4: E set when the payload is encrypted.
    const bool encrypt = ctx.options_.encrypt_srtcp && suite.cipher != CipherKind::kNull;
    const uint32_t trailer = (encrypt ? kEFlag : 0) | index;

    Slot& slot = slots[i];
    slot.key = &key;
    slot.trailer = trailer;
    CryptoOp& op = ops_[i];
    const crypto::SessionKey* sk = key.srtcp;
    op.key = sk;
    op.buf = pkt.data;
    op.aad = nullptr;
    op.cipher_offset = kRtcpHeaderLen;
    op.cipher_len = encrypt ? pkt.len - kRtcpHeaderLen : 0;
    if (suite.cipher == CipherKind::kAesGcm) {
      // RFC 7714 §9.2: AAD is the header and the E||index trailer; with E
      // clear the whole packet is AAD (the trailer is placed after it for the
      // computation and moved behind the tag afterwards).
      GcmIv(op.iv, sk->cm_salt, ssrc, index);
      op.tag_len = suite.srtcp_tag_len;
      op.tag_out = nullptr;  // phase 3 places it, around the trailer
      if (encrypt) {
        std::memcpy(slot.aad, pkt.data, kRtcpHeaderLen);
        Store32(slot.aad + kRtcpHeaderLen, trailer);
        op.aad = slot.aad;
        op.aad_len = kRtcpHeaderLen + kSrtcpTrailerLen;
      } else {
        Store32(pkt.data + pkt.len, trailer);
        op.auth_offset = 0;
        op.auth_len = pkt.len + kSrtcpTrailerLen;
      }
      gcm[n_gcm++] = &op;
    } else {
      // RFC 3711 §3.4: header | payload | E||index | MKI | tag; the tag covers
      // everything up to and including the index.
      Store32(pkt.data + pkt.len, trailer);
      op.auth_offset = 0;
      op.auth_len = pkt.len + kSrtcpTrailerLen;
      if (encrypt) {
        CmIv(op.iv, sk->cm_salt, pkt.data + 4, index);
        both[n_both++] = &op;  // encrypt-then-MAC in one submission
      } else {
        hmac[n_hmac++] = &op;
      }
    }
    pending[i] = true;
  }

  FailClosedUnless(SubmitProtect({both, n_both}, {cm, n_cm}, {gcm, n_gcm}, {hmac, n_hmac}), n,
                   verdicts.data(), pending);

  size_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!pending[i]) continue;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    uint8_t* p = pkt.data + pkt.len;
    const uint8_t* mki = slots[i].key->mki.data();
    if (suite.cipher == CipherKind::kAesGcm) {
      CopySmall(p, ops_[i].tag, suite.srtcp_tag_len);
      Store32(p + suite.srtcp_tag_len, slots[i].trailer);
      CopySmall(p + suite.srtcp_tag_len + kSrtcpTrailerLen, mki, ctx.mki_len_);
    } else {
      CopySmall(p + kSrtcpTrailerLen, mki, ctx.mki_len_);
      CopySmall(p + kSrtcpTrailerLen + ctx.mki_len_, ops_[i].tag, suite.srtcp_tag_len);
    }
    pkt.len += ctx.srtcp_overhead();
    verdicts[i] = Verdict::kOk;
    ++good;
  }
  return good;
}

size_t Engine::UnprotectRtcpBurst(std::span<const Job> jobs,
                                  std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];
  CryptoOp* cm[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  size_t n_cm = 0, n_gcm = 0, n_hmac = 0;

  for (size_t i = 0; i < n; ++i) {
    pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = *ctx.suite_;
    const uint32_t tag_len = suite.srtcp_tag_len;
    const uint32_t mki_len = ctx.mki_len_;
    if (pkt.len < kRtcpHeaderLen + kSrtcpTrailerLen + tag_len + mki_len ||
        (pkt.data[0] >> 6) != 2) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    const bool aead = suite.cipher == CipherKind::kAesGcm;
    // HMAC: header | payload | E||index | MKI | tag.
    // GCM:  header | ciphertext | tag | E||index | MKI.
    const uint32_t trailer_at =
        aead ? pkt.len - mki_len - kSrtcpTrailerLen : pkt.len - tag_len - mki_len - kSrtcpTrailerLen;
    const uint32_t end = aead ? trailer_at - tag_len : trailer_at;
    const uint8_t* mki = pkt.data + trailer_at + kSrtcpTrailerLen;
    const uint8_t* tag = aead ? pkt.data + end : pkt.data + pkt.len - tag_len;
    int k = 0;
    if (mki_len > 0) {
      k = ctx.FindKeyByMki(mki);
      if (k < 0) {
        verdicts[i] = Verdict::kUnknownMki;
        continue;
      }
    }
    if (mki_len == 0) k = ctx.active_;
    Context::Key& key = ctx.keys_[static_cast<size_t>(k)];
    if (key.srtcp_count >= key.srtcp_limit) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    const uint32_t ssrc = Load32(pkt.data + 4);
    const uint32_t trailer = Load32(pkt.data + trailer_at);
    const uint32_t index = trailer & kMaxSrtcpIndex;
    const bool encrypted = (trailer & kEFlag) != 0;
    Context::Stream* stream = ctx.FindStream(ssrc);
    if (stream != nullptr) {
      if (ReplayCheck c = stream->rtcp_window.Check(index); c != ReplayCheck::kNew) {
        verdicts[i] = FromReplayCheck(c);
        continue;
      }
    } else if (!ctx.HasFreeStream()) {
      verdicts[i] = Verdict::kStreamLimit;
      continue;
    }

    Slot& slot = slots[i];
    slot.key = &key;
    slot.key_index = k;
    slot.index = index;
    slot.ssrc = ssrc;
    slot.end = end;
    slot.tag_len = static_cast<uint8_t>(tag_len);
    slot.decrypt_after = false;
    std::memcpy(slot.rx_tag, tag, tag_len);
    CryptoOp& op = ops_[i];
    const crypto::SessionKey* sk = key.srtcp;
    op.key = sk;
    op.buf = pkt.data;
    op.aad = nullptr;
    op.cipher_offset = kRtcpHeaderLen;
    op.cipher_len = encrypted ? end - kRtcpHeaderLen : 0;
    if (aead) {
      GcmIv(op.iv, sk->cm_salt, ssrc, index);
      op.tag_len = static_cast<uint8_t>(tag_len);
      std::memcpy(op.tag, tag, tag_len);
      if (encrypted) {
        std::memcpy(slot.aad, pkt.data, kRtcpHeaderLen);
        Store32(slot.aad + kRtcpHeaderLen, trailer);
        op.aad = slot.aad;
        op.aad_len = kRtcpHeaderLen + kSrtcpTrailerLen;
      } else {
        Store32(pkt.data + end, trailer);  // over the tag, already copied
        op.auth_offset = 0;
        op.auth_len = end + kSrtcpTrailerLen;
      }
      gcm[n_gcm++] = &op;
    } else {
      if (encrypted && suite.cipher == CipherKind::kAesCm) {
        CmIv(op.iv, sk->cm_salt, pkt.data + 4, index);
        slot.decrypt_after = true;
      }
      op.auth_offset = 0;
      op.auth_len = trailer_at + kSrtcpTrailerLen;
      hmac[n_hmac++] = &op;
    }
    pending[i] = true;
  }

  return FinishUnprotect(jobs, verdicts, slots, pending, {hmac, n_hmac}, {gcm, n_gcm},
                         {cm, n_cm}, /*rtcp=*/true);
}

// Protect phase 2: one submission per kind of work for the whole burst,
// encrypt-then-MAC. False when the library refused any of it.
bool Engine::SubmitProtect(std::span<CryptoOp* const> both, std::span<CryptoOp* const> cm,
                           std::span<CryptoOp* const> gcm,
                           std::span<CryptoOp* const> hmac) noexcept {
  bool ok = true;
  if (!both.empty()) ok = backend_.AesCmThenHmacSha1(both) && ok;
  if (!cm.empty()) ok = backend_.AesCm(cm) && ok;
  if (!gcm.empty()) ok = backend_.GcmEncrypt(gcm) && ok;
  if (!hmac.empty() && ok) ok = backend_.HmacSha1(hmac);
  return ok;
}

size_t Engine::FinishUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                               Slot* slots, bool* pending, std::span<CryptoOp*> hmac,
                               std::span<CryptoOp*> gcm, std::span<CryptoOp*> cm,
                               bool rtcp) noexcept {
  const size_t n = jobs.size();
  // Phase 2: authenticate, then decrypt only what verified.
  bool ok = true;
  if (!hmac.empty()) ok = backend_.HmacSha1(hmac) && ok;
  if (!gcm.empty()) ok = backend_.GcmDecrypt(gcm) && ok;
  FailClosedUnless(ok, n, verdicts.data(), pending);
  uint16_t failed[kMaxBurst];
  size_t n_failed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!pending[i]) continue;
    const crypto::SuiteInfo& suite = *jobs[i].ctx->suite_;
    // AES_CM_128_NULL_AUTH carries no SRTP tag; SRTCP always has one.
    const bool tagged = rtcp || suite.srtp_auth != AuthKind::kNull;
    if (tagged && !TagsEqual(ops_[i].tag, slots[i].rx_tag, slots[i].tag_len)) {
      verdicts[i] = Verdict::kAuthFailed;
      pending[i] = false;
      failed[n_failed++] = static_cast<uint16_t>(i);
    }
  }
  if (n_failed > 0) RetryTrialKeys(jobs, slots, pending, verdicts.data(), failed, n_failed, rtcp);
  // cm already holds the unauthenticated (NULL_AUTH) payloads; add the rest.
  CryptoOp* decrypt[kMaxBurst];
  size_t n_decrypt = 0;
  for (CryptoOp* op : cm) decrypt[n_decrypt++] = op;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] && slots[i].decrypt_after) decrypt[n_decrypt++] = &ops_[i];
  }
  if (n_decrypt > 0) {
    FailClosedUnless(backend_.AesCm({decrypt, n_decrypt}), n, verdicts.data(), pending);
  }

  // Phase 3: commit the stream state of authenticated packets, in order.
  // Packets of one stream come in runs: its stream slot is looked up once.
  size_t good = 0;
  const Context* last_ctx = nullptr;
  uint32_t last_ssrc = 0;
  Context::Stream* stream = nullptr;
  for (size_t i = 0; i < n; ++i) {
    if (!pending[i]) continue;
    Context& ctx = *jobs[i].ctx;
    Slot& slot = slots[i];
    if (&ctx != last_ctx || slot.ssrc != last_ssrc || stream == nullptr) {
      stream = ctx.FindOrAddStream(slot.ssrc);
      last_ctx = &ctx;
      last_ssrc = slot.ssrc;
    }
    if (stream == nullptr) {
      verdicts[i] = Verdict::kStreamLimit;
      continue;
    }
    // Checked again as it is recorded: an earlier packet of this burst may
    // have taken the index.
    ReplayWindow& window = rtcp ? stream->rtcp_window : stream->rtp_window;
    if (ReplayCheck c = window.Admit(slot.index); c != ReplayCheck::kNew) {
      verdicts[i] = FromReplayCheck(c);
      continue;
    }
    ++(rtcp ? slot.key->srtcp_count : slot.key->srtp_count);
    jobs[i].pkt->len = slot.end;
    verdicts[i] = Verdict::kOk;
    ++good;
  }
  return good;
}

void Engine::RetryTrialKeys(std::span<const Job> jobs, Slot* slots, bool* pending,
                            Verdict* verdicts, const uint16_t* failed, size_t n_failed,
                            bool rtcp) noexcept {
  CryptoOp* restore[kMaxBurst];
  CryptoOp* work[kMaxBurst];
  uint16_t work_idx[kMaxBurst];
  uint16_t still[kMaxBurst];
  size_t n_still = 0;
  for (size_t f = 0; f < n_failed; ++f) {
    const Context& ctx = *jobs[failed[f]].ctx;
    if (ctx.options_.trial_keys && ctx.mki_len_ == 0 && ctx.keys_.size() > 1 &&
        now_ < ctx.trial_until_) {
      still[n_still++] = failed[f];
    }
  }
  for (int attempt = 1; attempt < kMaxMasterKeys && n_still > 0; ++attempt) {
    size_t n_restore = 0, n_work = 0;
    for (size_t f = 0; f < n_still; ++f) {
      const uint16_t i = still[f];
      Context& ctx = *jobs[i].ctx;
      // Try the keys in order, skipping the one already tried (the active one).
      int k = attempt <= ctx.active_ ? attempt - 1 : attempt;
      if (k >= static_cast<int>(ctx.keys_.size())) continue;
      Slot& slot = slots[i];
      CryptoOp& op = ops_[i];
      const crypto::SuiteInfo& suite = *ctx.suite_;
      // AES-GCM already decrypted in place: encrypting again with the same
      // key and IV gives the ciphertext back.
      if (suite.cipher == CipherKind::kAesGcm && op.cipher_len > 0) restore[n_restore++] = &op;
      Context::Key& key = ctx.keys_[static_cast<size_t>(k)];
      slot.key = &key;
      slot.key_index = k;
      work[n_work] = &op;
      work_idx[n_work++] = i;
    }
    if (n_work == 0) break;
    bool ok = n_restore == 0 || backend_.GcmEncrypt({restore, n_restore});
    size_t n_hmac = 0, n_gcm = 0;
    CryptoOp* hmac[kMaxBurst];
    CryptoOp* gcm[kMaxBurst];
    for (size_t w = 0; w < n_work; ++w) {
      const uint16_t i = work_idx[w];
      Slot& slot = slots[i];
      CryptoOp& op = *work[w];
      const crypto::SessionKey* sk =
          rtcp ? slot.key->srtcp : slot.key->srtp;
      op.key = sk;
      if (sk->suite->cipher == CipherKind::kAesGcm) {
        GcmIv(op.iv, sk->cm_salt, slot.ssrc, slot.index);
        std::memcpy(op.tag, slot.rx_tag, slot.tag_len);
        gcm[n_gcm++] = &op;
      } else {
        if (slot.decrypt_after) {
          uint8_t ssrc_be[4];
          Store32(ssrc_be, slot.ssrc);
          CmIv(op.iv, sk->cm_salt, ssrc_be, slot.index);
        }
        hmac[n_hmac++] = &op;
      }
    }
    if (ok && n_hmac > 0) ok = backend_.HmacSha1({hmac, n_hmac});
    if (ok && n_gcm > 0) ok = backend_.GcmDecrypt({gcm, n_gcm});
    size_t n_next = 0;
    for (size_t w = 0; w < n_work; ++w) {
      const uint16_t i = work_idx[w];
      if (ok && TagsEqual(work[w]->tag, slots[i].rx_tag, slots[i].tag_len)) {
        pending[i] = true;
        verdicts[i] = Verdict::kOk;
      } else if (ok) {
        still[n_next++] = i;
      } else {
        verdicts[i] = Verdict::kCryptoError;
      }
    }
    n_still = ok ? n_next : 0;
  }
}

}  // namespace sluice::srtp
