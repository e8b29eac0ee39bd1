// SRTP and SRTCP unprotect: a burst of protected packets to authenticated,
// decrypted ones, with the replay state committed only for those.
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

// Unprotect estimates the index of a stream with no authenticated packet yet
// from the earlier packets of the same burst, as libsrtp would one by one.
struct StreamStart {
  const Context* ctx;
  uint32_t ssrc;
  uint64_t top;
};

// The master key a packet names by its MKI (mki_len() bytes at `mki`), or
// the active one when the context has no MKIs: kOk with its index in *k,
// kUnknownMki, or kKeyRetired for the replaced key after the re-key overlap.
[[gnu::always_inline]] inline Verdict FindUnprotectKey(const Context& ctx, const uint8_t* mki,
                                                       uint64_t now, int* k) noexcept {
  if (ctx.mki_len() == 0) {
    *k = ctx.active_key();
    return Verdict::kOk;
  }
  *k = ctx.FindKeyByMki(mki);
  if (*k < 0) return Verdict::kUnknownMki;
  return ctx.KeyRetired(*k, now) ? Verdict::kKeyRetired : Verdict::kOk;
}

// RFC 3711 §3.3.1: the packet's index from its stream's highest
// authenticated index, and the replay pre-check (§3.3.2); kOk or the verdict
// that drops the packet. A stream's first packets: no state may be created
// before one of them authenticates, but a burst that starts a stream right
// at the wrap must still see the wrap, so its earlier packets in `starts`
// stand in for the stream's state. An SSRC whose slot was reclaimed resumes
// from the highest index it had: nothing at or below it is accepted again.
[[gnu::always_inline]] inline Verdict EstimateRtpIndex(Context& ctx, const RtpHeader& h,
                                                       uint64_t now, StreamStart* starts,
                                                       size_t* n_starts, uint64_t* index) noexcept {
  const uint16_t seq = static_cast<uint16_t>(h.seq);
  Context::Stream* stream = ctx.FindStream(static_cast<uint32_t>(h.ssrc));
  if (stream != nullptr && !stream->rtp_window.empty()) {
    *index = EstimateIndex(true, stream->rtp_window.top(), seq);
    ReplayCheck c = stream->rtp_window.Check(*index);
    return c == ReplayCheck::kNew ? Verdict::kOk : FromReplayCheck(c);
  }
  uint64_t retired_top = 0;
  bool retired = false;
  if (stream == nullptr) {
    if (!ctx.CanAddStream(static_cast<uint32_t>(h.ssrc), now)) return Verdict::kStreamLimit;
    retired = ctx.RetiredRtpTop(static_cast<uint32_t>(h.ssrc), &retired_top);
  }
  StreamStart* start = nullptr;
  for (size_t s = 0; s < *n_starts; ++s) {
    if (starts[s].ctx == &ctx && starts[s].ssrc == h.ssrc) start = &starts[s];
  }
  *index = start != nullptr ? EstimateIndex(true, start->top, seq)
           : retired        ? EstimateIndex(true, retired_top, seq)
                            : h.seq;
  if (retired && *index <= retired_top) return Verdict::kReplayed;
  if (start == nullptr) {
    starts[(*n_starts)++] = StreamStart{&ctx, static_cast<uint32_t>(h.ssrc), *index};
  } else if (*index > start->top) {
    start->top = *index;
  }
  return Verdict::kOk;
}

// The work an admitted packet needs first.
enum class FirstWork : uint8_t { kNone, kHmac, kGcm, kCm };

// Sets up an SRTP packet's unprotect: AES-GCM decrypts and checks the tag
// at once (RFC 7714 §8.2, the header as AAD); HMAC-SHA1 authenticates header,
// payload and ROC (RFC 3711 §4.2), the ROC written over the trailer already
// copied, and AES-CM decrypts after (slot.decrypt_after); NULL_AUTH decrypts
// with nothing to check first.
[[gnu::always_inline]] inline FirstWork SetRtpUnprotectOp(Packet& pkt,
                                                          const crypto::SessionKey& sk,
                                                          const uint8_t* tag, Slot& slot,
                                                          CryptoOp& op) noexcept {
  const crypto::SuiteInfo& suite = *sk.suite;
  const uint32_t header_len = slot.header_len;
  op.key = &sk;
  op.buf = pkt.data;
  op.aad = nullptr;
  op.cipher_offset = header_len;
  op.cipher_len = slot.end - header_len;
  if (suite.cipher == CipherKind::kAesGcm) {
    GcmIv(op.iv, sk.cm_salt, slot.ssrc, slot.index);
    op.auth_offset = 0;
    op.auth_len = header_len;
    op.tag_len = slot.tag_len;
    CopySmall(op.tag, tag, slot.tag_len);
    return FirstWork::kGcm;
  }
  if (suite.cipher == CipherKind::kAesCm) {
    CmIv(op.iv, sk.cm_salt, pkt.data + 8, slot.index);
    slot.decrypt_after = true;
  }
  if (suite.srtp_auth == AuthKind::kHmacSha1) {
    Store32(pkt.data + slot.end, static_cast<uint32_t>(slot.index >> 16));
    op.auth_offset = 0;
    op.auth_len = slot.end + 4;
    return FirstWork::kHmac;
  }
  if (!slot.decrypt_after) return FirstWork::kNone;
  slot.decrypt_after = false;
  return FirstWork::kCm;
}

// Sets up an SRTCP packet's unprotect; true for AES-GCM (RFC 7714 §9.2:
// the header and E||index as AAD when encrypted, else the whole packet with
// the trailer moved over the tag already copied), false for HMAC-SHA1 over
// everything up to the index (RFC 3711 §3.4), AES-CM decrypting after when
// E is set.
[[gnu::always_inline]] inline bool SetRtcpUnprotectOp(Packet& pkt, const crypto::SessionKey& sk,
                                                      uint32_t trailer, uint32_t trailer_at,
                                                      const uint8_t* tag, Slot& slot,
                                                      CryptoOp& op) noexcept {
  const crypto::SuiteInfo& suite = *sk.suite;
  const bool encrypted = (trailer & kEFlag) != 0;
  op.key = &sk;
  op.buf = pkt.data;
  op.aad = nullptr;
  op.cipher_offset = kRtcpHeaderLen;
  op.cipher_len = encrypted ? slot.end - kRtcpHeaderLen : 0;
  if (suite.cipher == CipherKind::kAesGcm) {
    GcmIv(op.iv, sk.cm_salt, slot.ssrc, slot.index);
    op.tag_len = slot.tag_len;
    std::memcpy(op.tag, tag, slot.tag_len);
    if (encrypted) {
      std::memcpy(slot.aad, pkt.data, kRtcpHeaderLen);
      Store32(slot.aad + kRtcpHeaderLen, trailer);
      op.aad = slot.aad;
      op.aad_len = kRtcpHeaderLen + kSrtcpTrailerLen;
    } else {
      Store32(pkt.data + slot.end, trailer);  // over the tag, already copied
      op.auth_offset = 0;
      op.auth_len = slot.end + kSrtcpTrailerLen;
    }
    return true;
  }
  if (encrypted && suite.cipher == CipherKind::kAesCm) {
    CmIv(op.iv, sk.cm_salt, pkt.data + 4, slot.index);
    slot.decrypt_after = true;
  }
  op.auth_offset = 0;
  op.auth_len = trailer_at + kSrtcpTrailerLen;
  return false;
}

// A packet's part in its stream's re-key ROC rule, at commit. Packets of a
// stream this burst moved to ROC 0 (*rebased) were estimated before the
// move: only those that authenticated with ROC 0 stay. A packet under the
// carried key says nothing about the new keys' rule; after a reset its index
// is from the old space and it is refused. A packet under a new key fixes
// the rule, or is refused if the rule was fixed the other way.
Verdict CommitRocRule(Context& ctx, Context::Stream& stream, Slot& slot,
                      const Context::Stream** rebased) noexcept {
  if (*rebased == &stream && !slot.roc_zero) return Verdict::kTooOld;
  if (!slot.roc_trial) return Verdict::kOk;
  const RocAfterRekey before = ctx.roc_trial(stream).state;
  if (slot.key_index == ctx.carried_key()) {
    return before == RocAfterRekey::kReset ? Verdict::kTooOld : Verdict::kOk;
  }
  if (!ctx.DecideRoc(stream, slot.roc_zero, slot.kept_roc)) return Verdict::kAuthFailed;
  if (slot.roc_zero && before == RocAfterRekey::kUndecided) *rebased = &stream;
  return Verdict::kOk;
}

}  // namespace

// What admission leaves for the later phases: each packet's scratch, and
// the ops by the work they need first.
struct Engine::UnprotectBurst {
  Slot slots[kMaxBurst];
  bool pending[kMaxBurst];  // admitted and not yet refused
  CryptoOp* cm[kMaxBurst];  // nothing to authenticate first (NULL_AUTH)
  CryptoOp* gcm[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  size_t n_cm = 0, n_gcm = 0, n_hmac = 0;
  // AES-CM with HMAC-SHA1 packets of one key size in the backend's own jobs
  // where it has them (as protect's): n_direct of them, their AES keys
  // direct_key_len bytes.
  size_t n_direct = 0;
  uint32_t direct_key_len = 0;
  // Set by Authenticate: every packet verified at the first try and none
  // was an HMAC-SHA1 CryptoOp, so no CryptoOp waits to be decrypted after
  // its tag; with no GCM CryptoOp either, the backend had no other call
  // since the direct jobs' hash, and the decrypt runs on them as they are.
  bool verified_at_once = false;
};

size_t Engine::UnprotectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::UnprotectRtpBurst);
}

size_t Engine::UnprotectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept {
  return Chunked(jobs, verdicts, &Engine::UnprotectRtcpBurst);
}

size_t Engine::UnprotectRtpBurst(std::span<const Job> jobs,
                                 std::span<Verdict> verdicts) noexcept {
  UnprotectBurst b;
  // Admit: each packet either has its verdict, or is pending with its key,
  // estimated index and received tag in its slot and its crypto set up; no
  // stream state has changed.
  AdmitRtpForUnprotect(jobs, verdicts, b);
  return FinishUnprotect(jobs, verdicts, b, /*rtcp=*/false);
}

size_t Engine::UnprotectRtcpBurst(std::span<const Job> jobs,
                                  std::span<Verdict> verdicts) noexcept {
  UnprotectBurst b;
  // Admit: as for RTP, with the SRTCP index read from the trailer.
  AdmitRtcpForUnprotect(jobs, verdicts, b);
  return FinishUnprotect(jobs, verdicts, b, /*rtcp=*/true);
}

// Authenticate, decrypt, commit: the pending packets after each step are
// those still good, and only the last one touches stream state.
size_t Engine::FinishUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                               UnprotectBurst& b, bool rtcp) noexcept {
  Authenticate(jobs, verdicts, b, rtcp);
  DecryptVerified(jobs, verdicts, b);
  return CommitReplayState(jobs, verdicts, b, rtcp);
}

void Engine::AdmitRtpForUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                                  UnprotectBurst& b) noexcept {
  const size_t n = jobs.size();
  StreamStart starts[kMaxBurst];
  size_t n_starts = 0;
  for (size_t i = 0; i < n; ++i) {
    b.pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = ctx.suite();
    RtpHeader h;
    const uint32_t tag_len = suite.srtp_tag_len;
    const uint32_t mki_len = ctx.mki_len();
    if (!ParseRtpHeader(pkt.data, pkt.len, &h) || pkt.len < h.header_len + tag_len + mki_len) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    // HMAC: header | payload | MKI | tag.  GCM: header | ciphertext | tag | MKI.
    const uint32_t end = pkt.len - tag_len - mki_len;
    const bool aead = suite.cipher == CipherKind::kAesGcm;
    const uint8_t* tag = aead ? pkt.data + end : pkt.data + end + mki_len;
    int k;
    if (Verdict v = FindUnprotectKey(ctx, aead ? pkt.data + end + tag_len : pkt.data + end, now_,
                                    &k);
        v != Verdict::kOk) {
      verdicts[i] = v;
      continue;
    }
    Context::Key& key = mki_len == 0 ? ctx.active() : ctx.key(k);
    if (key.srtp_count + key.srtcp_count >= key.srtp_limit) {  // one limit for both
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    uint64_t index;
    if (Verdict v = EstimateRtpIndex(ctx, h, now_, starts, &n_starts, &index); v != Verdict::kOk) {
      verdicts[i] = v;
      continue;
    }
    Slot& slot = b.slots[i];
    slot.key = &key;
    slot.key_index = k;
    slot.index = index;
    slot.ssrc = static_cast<uint32_t>(h.ssrc);
    slot.end = end;
    slot.tag_len = static_cast<uint8_t>(tag_len);
    slot.decrypt_after = false;
    slot.direct = false;
    slot.header_len = static_cast<uint32_t>(h.header_len);
    slot.roc_trial = false;
    slot.roc_zero = false;
    if (ctx.roc_watch()) [[unlikely]] {
      slot.roc_trial = ctx.MarkRocTrial(slot.ssrc, k);
      slot.first_key = static_cast<int8_t>(k);
    }
    CopySmall(slot.rx_tag, tag, tag_len);
    b.pending[i] = true;
    if (direct_jobs_ != nullptr && suite.cipher == CipherKind::kAesCm &&
        suite.srtp_auth == AuthKind::kHmacSha1 && end > slot.header_len &&
        (b.n_direct == 0 || suite.key_len == b.direct_key_len)) [[likely]] {
      SetRtpUnprotectJob(pkt, *key.srtp, i, b);
      continue;
    }
    switch (SetRtpUnprotectOp(pkt, *key.srtp, tag, slot, ops_[i])) {
      case FirstWork::kHmac: b.hmac[b.n_hmac++] = &ops_[i]; break;
      case FirstWork::kGcm: b.gcm[b.n_gcm++] = &ops_[i]; break;
      case FirstWork::kCm: b.cm[b.n_cm++] = &ops_[i]; break;
      case FirstWork::kNone: break;
    }
  }
}

// Sets up an AES-CM with HMAC-SHA1 packet's unprotect in the backend's own
// job, as SetRtpUnprotectOp would as a CryptoOp: HMAC-SHA1 over header,
// payload and ROC (RFC 3711 §4.2), its tag into ops_[i].tag, where
// Authenticate compares it; AES-CM over the payload once that verified.
[[gnu::always_inline]] inline void Engine::SetRtpUnprotectJob(Packet& pkt,
                                                              const crypto::SessionKey& sk,
                                                              size_t i,
                                                              UnprotectBurst& b) noexcept {
  Slot& slot = b.slots[i];
  const uint32_t key_len = sk.suite->key_len;
  b.direct_key_len = key_len;
  uint8_t* iv = direct_ivs_[b.n_direct];
  CmIv(iv, sk.cm_salt, pkt.data + 8, slot.index);
  Store32(pkt.data + slot.end, static_cast<uint32_t>(slot.index >> 16));
  direct_jobs_->Set(b.n_direct++, sk, key_len, pkt.data, slot.header_len,
                    slot.end - slot.header_len, iv, slot.end + 4, ops_[i].tag);
  slot.direct = true;
}

// A packet admitted into the backend's own jobs as a CryptoOp instead, with
// the key and index its slot has now: for the trial-key and ROC retries,
// and to decrypt once the jobs are no longer as admission set them.
void Engine::MoveJobToOp(std::span<const Job> jobs, UnprotectBurst& b, size_t i) noexcept {
  Slot& slot = b.slots[i];
  slot.direct = false;
  SetRtpUnprotectOp(*jobs[i].pkt, *slot.key->srtp, slot.rx_tag, slot, ops_[i]);
}

void Engine::AdmitRtcpForUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                                   UnprotectBurst& b) noexcept {
  for (size_t i = 0; i < jobs.size(); ++i) {
    b.pending[i] = false;
    Context& ctx = *jobs[i].ctx;
    Packet& pkt = *jobs[i].pkt;
    const crypto::SuiteInfo& suite = ctx.suite();
    const uint32_t tag_len = suite.srtcp_tag_len;
    const uint32_t mki_len = ctx.mki_len();
    if (pkt.len < kRtcpHeaderLen + kSrtcpTrailerLen + tag_len + mki_len ||
        (pkt.data[0] >> 6) != 2) {
      verdicts[i] = Verdict::kMalformed;
      continue;
    }
    const bool aead = suite.cipher == CipherKind::kAesGcm;
    // HMAC: header | payload | E||index | MKI | tag.
    // GCM:  header | ciphertext | tag | E||index | MKI.
    const uint32_t trailer_at = aead ? pkt.len - mki_len - kSrtcpTrailerLen
                                     : pkt.len - tag_len - mki_len - kSrtcpTrailerLen;
    const uint32_t end = aead ? trailer_at - tag_len : trailer_at;
    const uint8_t* tag = aead ? pkt.data + end : pkt.data + pkt.len - tag_len;
    int k;
    if (Verdict v = FindUnprotectKey(ctx, pkt.data + trailer_at + kSrtcpTrailerLen, now_, &k);
        v != Verdict::kOk) {
      verdicts[i] = v;
      continue;
    }
    Context::Key& key = ctx.key(k);
    if (key.srtcp_count >= key.srtcp_limit ||
        key.srtp_count + key.srtcp_count >= key.srtp_limit) {
      verdicts[i] = Verdict::kLifetimeExhausted;
      continue;
    }
    const uint32_t ssrc = Load32(pkt.data + 4);
    const uint32_t trailer = Load32(pkt.data + trailer_at);
    const uint32_t index = trailer & kMaxSrtcpIndex;
    if (const Context::Stream* stream = ctx.FindStream(ssrc); stream != nullptr) {
      if (ReplayCheck c = stream->rtcp_window.Check(index); c != ReplayCheck::kNew) {
        verdicts[i] = FromReplayCheck(c);
        continue;
      }
    } else if (!ctx.CanAddStream(ssrc, now_)) {
      verdicts[i] = Verdict::kStreamLimit;
      continue;
    }
    Slot& slot = b.slots[i];
    slot.key = &key;
    slot.key_index = k;
    slot.index = index;
    slot.ssrc = ssrc;
    slot.end = end;
    slot.tag_len = static_cast<uint8_t>(tag_len);
    slot.decrypt_after = false;
    slot.direct = false;
    slot.roc_trial = false;
    slot.roc_zero = false;
    std::memcpy(slot.rx_tag, tag, tag_len);
    const bool gcm = SetRtcpUnprotectOp(pkt, *key.srtcp, trailer, trailer_at, tag, slot, ops_[i]);
    (gcm ? b.gcm[b.n_gcm++] : b.hmac[b.n_hmac++]) = &ops_[i];
    b.pending[i] = true;
  }
}

// Tags checked in constant time, after one submission per kind of work;
// a packet whose tag does not verify (with any trial key) is no longer
// pending and has verdict kAuthFailed. AES-GCM payloads are decrypted here.
void Engine::Authenticate(std::span<const Job> jobs, std::span<Verdict> verdicts,
                          UnprotectBurst& b, bool rtcp) noexcept {
  const size_t n = jobs.size();
  bool ok = true;
  // The direct jobs first: the backend's other calls reuse their array.
  if (b.n_direct > 0) ok = backend_.SubmitHmacJobs(b.n_direct);
  if (b.n_hmac > 0) ok = backend_.HmacSha1({b.hmac, b.n_hmac}) && ok;
  if (b.n_gcm > 0) ok = backend_.GcmDecrypt({b.gcm, b.n_gcm}) && ok;
  FailClosedUnless(ok, n, verdicts.data(), b.pending);
  uint16_t failed[kMaxBurst];
  size_t n_failed = 0;
  for (size_t i = 0; i < n; ++i) {
    // AES_CM_128_NULL_AUTH carries no SRTP tag: its tag_len 0 compares
    // equal. SRTCP always has one.
    if (b.pending[i] && !TagsEqual(ops_[i].tag, b.slots[i].rx_tag, b.slots[i].tag_len)) {
      verdicts[i] = Verdict::kAuthFailed;
      b.pending[i] = false;
      failed[n_failed++] = static_cast<uint16_t>(i);
    }
  }
  b.verified_at_once = ok && n_failed == 0 && b.n_hmac == 0;
  if (n_failed == 0) return;
  for (size_t f = 0; f < n_failed; ++f) {
    if (b.slots[failed[f]].direct) MoveJobToOp(jobs, b, failed[f]);
  }
  RetryTrialKeys(jobs, verdicts, b, failed, n_failed, rtcp);
  if (!rtcp) RetryResetRoc(jobs, verdicts, b, failed, n_failed);
}

// AES-CM payloads of the authenticated packets (and of NULL_AUTH ones)
// decrypted in one submission (two when some are direct jobs); a refused
// one drops them all.
void Engine::DecryptVerified(std::span<const Job> jobs, std::span<Verdict> verdicts,
                             UnprotectBurst& b) noexcept {
  const size_t n = jobs.size();
  bool ok = true;
  CryptoOp* decrypt[kMaxBurst];
  size_t n_decrypt = 0;
  for (size_t c = 0; c < b.n_cm; ++c) decrypt[n_decrypt++] = b.cm[c];
  if (b.verified_at_once && b.n_gcm == 0) [[likely]] {
    if (b.n_direct > 0) ok = backend_.SubmitCmJobs(b.n_direct, static_cast<int>(b.direct_key_len));
  } else if (!b.verified_at_once || b.n_direct > 0) {
    for (size_t i = 0; i < n; ++i) {
      if (!b.pending[i]) continue;
      if (b.slots[i].direct) MoveJobToOp(jobs, b, i);
      if (b.slots[i].decrypt_after) decrypt[n_decrypt++] = &ops_[i];
    }
  }
  if (n_decrypt > 0) ok = backend_.AesCm({decrypt, n_decrypt}) && ok;
  FailClosedUnless(ok, n, verdicts.data(), b.pending);
}

// The stream state of authenticated packets committed in order: each index
// is admitted to its window (checked again: an earlier packet of this burst
// may have taken it), counted against its key, and the packet cut to its
// payload with verdict kOk. Packets of one stream come in runs: its stream
// slot is looked up once.
size_t Engine::CommitReplayState(std::span<const Job> jobs, std::span<Verdict> verdicts,
                                 UnprotectBurst& b, bool rtcp) noexcept {
  size_t good = 0;
  const Context* last_ctx = nullptr;
  uint32_t last_ssrc = 0;
  Context::Stream* stream = nullptr;
  const Context::Stream* rebased = nullptr;  // moved to ROC 0 in this burst
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!b.pending[i]) continue;
    Context& ctx = *jobs[i].ctx;
    Slot& slot = b.slots[i];
    if (&ctx != last_ctx || slot.ssrc != last_ssrc || stream == nullptr) {
      stream = ctx.FindOrAddStream(slot.ssrc, now_);
      last_ctx = &ctx;
      last_ssrc = slot.ssrc;
    }
    if (stream == nullptr) {
      verdicts[i] = Verdict::kStreamLimit;
      continue;
    }
    if (!rtcp && (rebased != nullptr || slot.roc_trial)) [[unlikely]] {
      if (Verdict v = CommitRocRule(ctx, *stream, slot, &rebased); v != Verdict::kOk) {
        verdicts[i] = v;
        continue;
      }
    }
    ReplayWindow& window = rtcp ? stream->rtcp_window : stream->rtp_window;
    if (ReplayCheck c = window.Admit(slot.index); c != ReplayCheck::kNew) {
      verdicts[i] = FromReplayCheck(c);
      continue;
    }
    uint64_t& count = rtcp ? slot.key->srtcp_count : slot.key->srtp_count;
    Context::StoreCount(count, count + 1);
    jobs[i].pkt->len = slot.end;
    verdicts[i] = Verdict::kOk;
    ++good;
  }
  return good;
}

void Engine::RetryTrialKeys(std::span<const Job> jobs, std::span<Verdict> verdicts,
                            UnprotectBurst& b, const uint16_t* failed, size_t n_failed,
                            bool rtcp) noexcept {
  uint16_t still[kMaxBurst];
  size_t n_still = 0;
  for (size_t f = 0; f < n_failed; ++f) {
    if (jobs[failed[f]].ctx->TrialKeysOpen(now_)) still[n_still++] = failed[f];
  }
  for (int attempt = 1; attempt < kMaxMasterKeys && n_still > 0; ++attempt) {
    n_still = TryTrialKey(jobs, verdicts, b, still, n_still, attempt, rtcp);
  }
}

size_t Engine::TryTrialKey(std::span<const Job> jobs, std::span<Verdict> verdicts,
                           UnprotectBurst& b, uint16_t* still, size_t n_still, int attempt,
                           bool rtcp) noexcept {
  CryptoOp* restore[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  uint16_t work[kMaxBurst];
  size_t n_restore = 0, n_work = 0, n_hmac = 0, n_gcm = 0;
  for (size_t f = 0; f < n_still; ++f) {
    const uint16_t i = still[f];
    Context& ctx = *jobs[i].ctx;
    // Try the keys in order, skipping the one already tried (the active one).
    const int k = attempt <= ctx.active_key() ? attempt - 1 : attempt;
    if (k >= ctx.key_count()) continue;
    Slot& slot = b.slots[i];
    CryptoOp& op = ops_[i];
    // AES-GCM already decrypted in place: encrypting again with the same
    // key and IV gives the ciphertext back.
    if (ctx.suite().cipher == CipherKind::kAesGcm && op.cipher_len > 0) restore[n_restore++] = &op;
    slot.key = &ctx.key(k);
    slot.key_index = k;
    work[n_work++] = i;
  }
  if (n_work == 0) return 0;
  bool ok = n_restore == 0 || backend_.GcmEncrypt({restore, n_restore});
  for (size_t w = 0; w < n_work; ++w) {
    Slot& slot = b.slots[work[w]];
    CryptoOp& op = ops_[work[w]];
    const crypto::SessionKey* sk = rtcp ? slot.key->srtcp : slot.key->srtp;
    op.key = sk;
    if (sk->suite->cipher == CipherKind::kAesGcm) {
      GcmIv(op.iv, sk->cm_salt, slot.ssrc, slot.index);
      std::memcpy(op.tag, slot.rx_tag, slot.tag_len);
      gcm[n_gcm++] = &op;
      continue;
    }
    if (slot.decrypt_after) {
      uint8_t ssrc_be[4];
      Store32(ssrc_be, slot.ssrc);
      CmIv(op.iv, sk->cm_salt, ssrc_be, slot.index);
    }
    hmac[n_hmac++] = &op;
  }
  if (ok && n_hmac > 0) ok = backend_.HmacSha1({hmac, n_hmac});
  if (ok && n_gcm > 0) ok = backend_.GcmDecrypt({gcm, n_gcm});
  size_t n_next = 0;
  for (size_t w = 0; w < n_work; ++w) {
    const uint16_t i = work[w];
    if (ok && TagsEqual(ops_[i].tag, b.slots[i].rx_tag, b.slots[i].tag_len)) {
      b.pending[i] = true;
      verdicts[i] = Verdict::kOk;
    } else if (ok) {
      still[n_next++] = i;
    } else {
      verdicts[i] = Verdict::kCryptoError;
    }
  }
  return ok ? n_next : 0;
}

void Engine::RetryResetRoc(std::span<const Job> jobs, std::span<Verdict> verdicts,
                           UnprotectBurst& b, const uint16_t* failed, size_t n_failed) noexcept {
  CryptoOp* restore[kMaxBurst];
  CryptoOp* hmac[kMaxBurst];
  CryptoOp* gcm[kMaxBurst];
  uint16_t work[kMaxBurst];
  size_t n_restore = 0, n_work = 0, n_hmac = 0, n_gcm = 0;
  for (size_t f = 0; f < n_failed; ++f) {
    const uint16_t i = failed[f];
    if (b.pending[i] || verdicts[i] != Verdict::kAuthFailed || !b.slots[i].roc_trial) continue;
    // AES-GCM decrypted in place with the last key tried: encrypt it back.
    if (jobs[i].ctx->suite().cipher == CipherKind::kAesGcm && ops_[i].cipher_len > 0) {
      restore[n_restore++] = &ops_[i];
    }
    work[n_work++] = i;
  }
  if (n_work == 0) return;
  bool ok = n_restore == 0 || backend_.GcmEncrypt({restore, n_restore});
  for (size_t w = 0; w < n_work; ++w) {
    const uint16_t i = work[w];
    Slot& slot = b.slots[i];
    CryptoOp& op = ops_[i];
    slot.key = &jobs[i].ctx->key(slot.first_key);
    slot.key_index = slot.first_key;
    slot.kept_roc = static_cast<uint32_t>(slot.index >> 16);
    slot.index &= 0xffff;  // RFC 4568 §7.1.4: the new context starts at ROC 0
    const crypto::SessionKey* sk = slot.key->srtp;
    op.key = sk;
    if (sk->suite->cipher == CipherKind::kAesGcm) {
      GcmIv(op.iv, sk->cm_salt, slot.ssrc, slot.index);
      std::memcpy(op.tag, slot.rx_tag, slot.tag_len);
      gcm[n_gcm++] = &op;
      continue;
    }
    if (slot.decrypt_after) CmIv(op.iv, sk->cm_salt, jobs[i].pkt->data + 8, slot.index);
    Store32(jobs[i].pkt->data + slot.end, 0);  // the ROC HMAC-SHA1 covers
    hmac[n_hmac++] = &op;
  }
  if (ok && n_hmac > 0) ok = backend_.HmacSha1({hmac, n_hmac});
  if (ok && n_gcm > 0) ok = backend_.GcmDecrypt({gcm, n_gcm});
  for (size_t w = 0; w < n_work; ++w) {
    const uint16_t i = work[w];
    if (ok && TagsEqual(ops_[i].tag, b.slots[i].rx_tag, b.slots[i].tag_len)) {
      b.pending[i] = true;
      b.slots[i].roc_zero = true;
      verdicts[i] = Verdict::kOk;
    } else if (!ok) {
      verdicts[i] = Verdict::kCryptoError;
    }
  }
}

}  // namespace sluice::srtp
