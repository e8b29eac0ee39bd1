// SRTP and SRTCP protect: a burst of plain packets to protected ones.
#include <algorithm>
#include <cstring>

#include "crypto/cm_hmac_jobs.h"
#include "engine_internal.h"
#include "sluice/srtp/engine.h"

namespace sluice::srtp {

using crypto::AuthKind;
using crypto::CipherKind;
using crypto::CryptoOp;
using namespace engine_internal;

namespace {

// How protect goes on with a packet after admission. In the backend's own
// jobs: nothing more (its trailer and length are final: the tag is written
// in place and it has no MKI), write the MKI (the tag is in place), or write
// the MKI and copy the tag (the tailroom had no room for the library's 12
// bytes of tag). As a CryptoOp: settling writes its MKI and tag (an AES-GCM
// tag is written in place), or (kOpDone) nothing more.
enum class ProtectFinish : uint8_t { kDone, kMki, kMkiAndTag, kOp, kOpDone };

// A run of packets of one stream in order (a video frame, a talk spurt of
// one call) is counted here and written to the stream's window and the
// key's counter once, when the run ends: a packet's index then waits for no
// memory write of the packet before.
struct SenderRun {
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
    Context::StoreCount(key->srtp_count, count);
  }

  // Admits one parsed packet of `ctx` with the active key: kOk with its
  // index committed (a second packet with the same index is refused: two-time
  // pad), or the verdict that drops it.
  [[gnu::always_inline]] Verdict Admit(Context& ctx, const Packet& pkt, const RtpHeader& h,
                                       uint64_t now, uint64_t* index_out) noexcept {
    Context::Key& key = ctx.active();
    const bool in_run = &ctx == this->ctx && h.ssrc == ssrc;
    if (!in_run) Flush();
    const uint64_t n = in_run ? count : key.srtp_count;
    // One limit for SRTP and SRTCP together (Context::Key).
    if (n + key.srtcp_count >= key.srtp_limit) return Verdict::kLifetimeExhausted;
    if (pkt.capacity < pkt.len || pkt.capacity - pkt.len < ctx.srtp_overhead()) {
      return Verdict::kNoTailroom;
    }
    uint64_t index;
    if (in_run) {
      index = EstimateIndex(true, top, static_cast<uint16_t>(h.seq));
      if (index == top + 1) [[likely]] {
        top = index;
      } else {
        Flush();
        if (ReplayCheck c = stream->rtp_window.Admit(index); c != ReplayCheck::kNew) {
          return FromReplayCheck(c);
        }
        top = written = stream->rtp_window.top();
      }
    } else {
      Context::Stream* s = ctx.FindOrAddStream(static_cast<uint32_t>(h.ssrc), now);
      if (s == nullptr) return Verdict::kStreamLimit;
      index = EstimateIndex(!s->rtp_window.empty(), s->rtp_window.top(),
                            static_cast<uint16_t>(h.seq));
      if (ReplayCheck c = s->rtp_window.Admit(index); c != ReplayCheck::kNew) {
        return FromReplayCheck(c);
      }
      const uint64_t t = s->rtp_window.top();
      *this = SenderRun{&ctx, h.ssrc, s, &key, t, t, n};
    }
    count = n + 1;
    *index_out = index;
    return Verdict::kOk;
  }
};

// Sets up an RTP packet's protect as a CryptoOp (every suite but the direct
// AES-CM + HMAC-SHA1 jobs): what settling still has to do.
[[gnu::always_inline]] inline ProtectFinish SetRtpProtectOp(const Context& ctx, Packet& pkt,
                                                            const crypto::SessionKey& sk,
                                                            const RtpHeader& h, uint64_t index,
                                                            CryptoOp& op) noexcept {
  const crypto::SuiteInfo& suite = ctx.suite();
  const uint32_t header_len = static_cast<uint32_t>(h.header_len);
  op.key = &sk;
  op.buf = pkt.data;
  op.aad = nullptr;
  op.cipher_offset = header_len;
  op.cipher_len = pkt.len - header_len;
  op.auth_offset = 0;
  if (suite.cipher == CipherKind::kAesCm) {
    CmIv(op.iv, sk.cm_salt, pkt.data + 8, index);
  } else if (suite.cipher == CipherKind::kAesGcm) {
    // RFC 7714 §8.2: the header is the AAD; the tag follows the ciphertext
    // (then the MKI): the library writes it there.
    GcmIv(op.iv, sk.cm_salt, static_cast<uint32_t>(h.ssrc), index);
    op.auth_len = header_len;
    op.tag_len = suite.srtp_tag_len;
    op.tag_out = pkt.data + pkt.len;
    if (ctx.mki_len() != 0) return ProtectFinish::kOp;
    pkt.len += ctx.srtp_overhead();
    return ProtectFinish::kOpDone;
  }
  if (suite.srtp_auth == AuthKind::kHmacSha1) {
    Store32(pkt.data + pkt.len, static_cast<uint32_t>(index >> 16));
    op.auth_len = pkt.len + 4;
  }
  return ProtectFinish::kOp;
}

}  // namespace

// What admission leaves for the later phases. finish[i] is read only while
// pending[i].
struct Engine::ProtectBurst {
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];
  ProtectFinish finish[kMaxBurst];
  // AES-CM with HMAC-SHA1 packets of one key size go straight into the
  // backend's own jobs where it has them: n_direct of them, their AES keys
  // direct_key_len bytes. Any other packet takes a CryptoOp (n_ops).
  size_t n_direct = 0;
  uint32_t direct_key_len = 0;
  size_t n_ops = 0;
  const crypto::SuiteInfo* one_suite = nullptr;  // of the CryptoOps' packets
  bool mixed = false;                            // whether they have several
};

size_t Engine::ProtectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::ProtectRtpBurst);
}

size_t Engine::ProtectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::ProtectRtcpBurst);
}

size_t Engine::ProtectRtpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  ProtectBurst b;
  // Admit: each packet either has its verdict, or is pending with its index
  // committed and its crypto work set up.
  AdmitRtpForProtect(jobs, verdicts, b);
  // Submit: the burst's crypto, encrypt-then-MAC; if the library refuses
  // any of it, no pending packet leaves.
  FailClosedUnless(SubmitProtectRtp(jobs, b), n, verdicts.data(), b.pending);
  // Settle: every packet still pending is protected: MKI and tag appended,
  // its length final, verdict kOk.
  size_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!b.pending[i]) continue;
    verdicts[i] = Verdict::kOk;
    ++good;
    const ProtectFinish finish = b.finish[i];
    if (finish == ProtectFinish::kDone || finish == ProtectFinish::kOpDone) continue;
    const Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = ctx.suite();
    uint8_t* trailer = pkt.data + pkt.len;
    const uint8_t* mki = b.slots[i].key->mki.data();
    if (suite.cipher == CipherKind::kAesGcm) {
      CopySmall(trailer + suite.srtp_tag_len, mki, ctx.mki_len());  // after the tag, in place
    } else {
      CopySmall(trailer, mki, ctx.mki_len());
      if (finish != ProtectFinish::kMki) {
        CopySmall(trailer + ctx.mki_len(), ops_[i].tag, suite.srtp_tag_len);
      }
    }
    pkt.len += ctx.srtp_overhead();
  }
  return good;
}

void Engine::AdmitRtpForProtect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                                ProtectBurst& b) noexcept {
  SenderRun run;
  crypto::CmHmacJobs* const direct = direct_jobs_;
  for (size_t i = 0; i < jobs.size(); ++i) {
    b.pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = ctx.suite();
    RtpHeader h;
    if (!ParseRtpHeader(pkt.data, pkt.len, &h)) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    // A restored plain-sourced stream's SEQ shift (ContextOptions), in the
    // header the tag covers, before the index is chosen from it.
    if (const uint16_t shift = ctx.options().rtp_seq_offset; shift != 0) [[unlikely]] {
      h.seq = static_cast<uint16_t>(h.seq + shift);
      pkt.data[2] = static_cast<uint8_t>(h.seq >> 8);
      pkt.data[3] = static_cast<uint8_t>(h.seq);
    }
    uint64_t index;
    if (Verdict v = run.Admit(ctx, pkt, h, now_, &index); v != Verdict::kOk) {
      verdicts[i] = v;
      continue;
    }
    b.pending[i] = true;
    b.slots[i].key = &ctx.active();
    const crypto::SessionKey& sk = ctx.active_srtp_key();
    const uint32_t header_len = static_cast<uint32_t>(h.header_len);
    if (direct != nullptr && suite.cipher == CipherKind::kAesCm &&
        suite.srtp_auth == AuthKind::kHmacSha1 && pkt.len > header_len &&
        (b.n_direct == 0 || suite.key_len == b.direct_key_len)) [[likely]] {
      b.direct_key_len = suite.key_len;
      uint8_t* buf = pkt.data;
      const uint32_t len = pkt.len;
      uint8_t* iv = direct_ivs_[b.n_direct];
      CmIv(iv, sk.cm_salt, buf + 8, index);
      // RFC 3711 §4.2: the tag covers header, encrypted payload and ROC; the
      // ROC sits where the MKI and tag go, which are written afterwards.
      Store32(buf + len, static_cast<uint32_t>(index >> 16));
      // The library writes 12 bytes of tag (the first 10 or 4 are SRTP's):
      // into the trailer itself, once the hash has read the ROC there, where
      // the tailroom has the 2 or 8 bytes more; else aside, for settling to
      // copy.
      const uint32_t mki_len = ctx.mki_len();
      uint8_t* tag_out = ops_[i].tag;
      if (pkt.capacity - len >= mki_len + crypto::CmHmacJobs::kTagOutputLen) {
        tag_out = buf + len + mki_len;
        if (mki_len == 0) {
          pkt.len = len + ctx.srtp_overhead();
          b.finish[i] = ProtectFinish::kDone;
        } else {
          b.finish[i] = ProtectFinish::kMki;
        }
      } else {
        b.finish[i] = ProtectFinish::kMkiAndTag;
      }
      direct->Set(b.n_direct++, sk, suite.key_len, buf, header_len, len - header_len, iv,
                  len + 4, tag_out);
      continue;
    }
    b.mixed |= b.one_suite != nullptr && b.one_suite != &suite;
    b.one_suite = &suite;
    b.finish[i] = SetRtpProtectOp(ctx, pkt, sk, h, index, ops_[i]);
    ++b.n_ops;
  }
  run.Flush();
}

// The direct jobs first (the backend's other calls may reuse their array),
// then the CryptoOps: a whole burst of one suite as it is, else sorted by
// kind of work.
bool Engine::SubmitProtectRtp(std::span<const Job> jobs, ProtectBurst& b) noexcept {
  const size_t n = jobs.size();
  bool ok = b.n_direct == 0 || backend_.SubmitCmHmacJobs(b.n_direct, b.direct_key_len);
  if (!ok || b.n_ops == 0) return ok;
  CryptoOp* cm[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* both[kMaxBurst];
  size_t n_both = 0, n_cm = 0, n_gcm = 0, n_hmac = 0;
  const crypto::SuiteInfo* one = b.one_suite;
  const bool uniform = b.n_ops == n && !b.mixed && one != nullptr;
  const bool all_cm_hmac =
      uniform && one->cipher == CipherKind::kAesCm && one->srtp_auth == AuthKind::kHmacSha1;
  const bool all_gcm = uniform && one->cipher == CipherKind::kAesGcm;
  for (size_t i = 0; i < n && !all_cm_hmac && !all_gcm; ++i) {
    if (!b.pending[i] || b.finish[i] < ProtectFinish::kOp) continue;
    const crypto::SuiteInfo& suite = jobs[i].ctx->suite();
    CryptoOp* op = &ops_[i];
    const bool mac = suite.srtp_auth == AuthKind::kHmacSha1;
    if (suite.cipher == CipherKind::kAesCm) {
      (mac ? both[n_both++] : cm[n_cm++]) = op;  // encrypt-then-MAC in one submission
    } else if (suite.cipher == CipherKind::kAesGcm) {
      gcm[n_gcm++] = op;
    } else if (mac) {
      hmac[n_hmac++] = op;
    }
  }
  const std::span<CryptoOp* const> all(op_ptrs_.data(), n);
  return SubmitProtect(all_cm_hmac ? all : std::span<CryptoOp* const>(both, n_both), {cm, n_cm},
                       all_gcm ? all : std::span<CryptoOp* const>(gcm, n_gcm), {hmac, n_hmac});
}

// One submission per kind of work for the whole burst, encrypt-then-MAC.
// False when the library refused any of it.
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

namespace {

// One SRTCP packet to protect with `key`: kOk with the stream's next index
// taken and counted against the key, or the verdict that drops it.
inline Verdict AdmitRtcpForProtect(Context& ctx, const Packet& pkt, Context::Key& key,
                                    uint64_t now, uint32_t* index) noexcept {
  if (pkt.len < kRtcpHeaderLen || (pkt.data[0] >> 6) != 2) return Verdict::kMalformed;
  if (key.srtcp_count >= key.srtcp_limit || key.srtp_count + key.srtcp_count >= key.srtp_limit) {
    return Verdict::kLifetimeExhausted;
  }
  if (pkt.capacity < pkt.len || pkt.capacity - pkt.len < ctx.srtcp_overhead()) {
    return Verdict::kNoTailroom;
  }
  Context::Stream* stream = ctx.FindOrAddStream(Load32(pkt.data + 4), now);
  if (stream == nullptr) return Verdict::kStreamLimit;
  if (stream->srtcp_index >= kMaxSrtcpIndex) return Verdict::kLifetimeExhausted;
  *index = ++stream->srtcp_index;
  Context::StoreCount(key.srtcp_count, key.srtcp_count + 1);
  return Verdict::kOk;
}

// Sets up an SRTCP packet's protect as a CryptoOp, the E flag and index in
// slot.trailer: RFC 3711 §3.4 (header | payload | E||index | MKI | tag, the
// tag over everything up to the index) or RFC 7714 §9.2 for AES-GCM; the
// trailer into *trailer_out, AES-GCM's AAD into aad (12 bytes). Puts the op
// on the list of its kind of work.
[[gnu::always_inline]] inline void SetRtcpProtectOp(const Context& ctx, Packet& pkt,
                                                    const crypto::SessionKey& sk,
                                                    uint32_t ssrc, uint32_t index,
                                                    uint32_t* trailer_out, uint8_t* aad,
                                                    CryptoOp& op,
                                                    CryptoOp** gcm, size_t* n_gcm,
                                                    CryptoOp** both, size_t* n_both,
                                                    CryptoOp** hmac, size_t* n_hmac) noexcept {
  const crypto::SuiteInfo& suite = ctx.suite();
  // RFC 3711 §3.4: E set when the payload is encrypted.
  const bool encrypt = ctx.options().encrypt_srtcp && suite.cipher != CipherKind::kNull;
  const uint32_t trailer = (encrypt ? kEFlag : 0) | index;
  *trailer_out = trailer;
  op.key = &sk;
  op.buf = pkt.data;
  op.aad = nullptr;
  op.cipher_offset = kRtcpHeaderLen;
  op.cipher_len = encrypt ? pkt.len - kRtcpHeaderLen : 0;
  if (suite.cipher == CipherKind::kAesGcm) {
    // RFC 7714 §9.2: AAD is the header and the E||index trailer; with E
    // clear the whole packet is AAD (the trailer is placed after it for the
    // computation and moved behind the tag afterwards).
    GcmIv(op.iv, sk.cm_salt, ssrc, index);
    op.tag_len = suite.srtcp_tag_len;
    op.tag_out = nullptr;  // settling places it, around the trailer
    if (encrypt) {
      std::memcpy(aad, pkt.data, kRtcpHeaderLen);
      Store32(aad + kRtcpHeaderLen, trailer);
      op.aad = aad;
      op.aad_len = kRtcpHeaderLen + kSrtcpTrailerLen;
    } else {
      Store32(pkt.data + pkt.len, trailer);
      op.auth_offset = 0;
      op.auth_len = pkt.len + kSrtcpTrailerLen;
    }
    gcm[(*n_gcm)++] = &op;
    return;
  }
  Store32(pkt.data + pkt.len, trailer);
  op.auth_offset = 0;
  op.auth_len = pkt.len + kSrtcpTrailerLen;
  if (encrypt) {
    CmIv(op.iv, sk.cm_salt, pkt.data + 4, index);
    both[(*n_both)++] = &op;  // encrypt-then-MAC in one submission
  } else {
    hmac[(*n_hmac)++] = &op;
  }
}

}  // namespace

size_t Engine::ProtectRtcpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  const size_t n = jobs.size();
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* both[kMaxBurst];
  size_t n_both = 0, n_gcm = 0, n_hmac = 0;
  // Admit: each packet either has its verdict, or is pending with the next
  // SRTCP index of its stream taken and its crypto work set up.
  for (size_t i = 0; i < n; ++i) {
    pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    Context::Key& key = ctx.key(ctx.active_key());
    uint32_t index;
    if (Verdict v = AdmitRtcpForProtect(ctx, pkt, key, now_, &index); v != Verdict::kOk) {
      verdicts[i] = v;
      continue;
    }
    slots[i].key = &key;
    SetRtcpProtectOp(ctx, pkt, *key.srtcp, Load32(pkt.data + 4), index, &slots[i].trailer, slots[i].aad, ops_[i], gcm,
                     &n_gcm, both, &n_both, hmac, &n_hmac);
    pending[i] = true;
  }
  // Submit: if the library refuses any of it, no pending packet leaves.
  FailClosedUnless(SubmitProtect({both, n_both}, {}, {gcm, n_gcm}, {hmac, n_hmac}), n,
                   verdicts.data(), pending);
  // Settle: every packet still pending is protected: trailer, MKI and tag
  // appended, its length final, verdict kOk.
  size_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!pending[i]) continue;
    const Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = ctx.suite();
    uint8_t* p = pkt.data + pkt.len;
    const uint8_t* mki = slots[i].key->mki.data();
    if (suite.cipher == CipherKind::kAesGcm) {
      CopySmall(p, ops_[i].tag, suite.srtcp_tag_len);
      Store32(p + suite.srtcp_tag_len, slots[i].trailer);
      CopySmall(p + suite.srtcp_tag_len + kSrtcpTrailerLen, mki, ctx.mki_len());
    } else {
      CopySmall(p + kSrtcpTrailerLen, mki, ctx.mki_len());
      CopySmall(p + kSrtcpTrailerLen + ctx.mki_len(), ops_[i].tag, suite.srtcp_tag_len);
    }
    pkt.len += ctx.srtcp_overhead();
    verdicts[i] = Verdict::kOk;
    ++good;
  }
  return good;
}

}  // namespace sluice::srtp
