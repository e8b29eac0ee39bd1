// The SRTP/SRTCP burst transform: protect or unprotect many packets of many
// contexts at once, with one batched crypto submission per burst.
//
// Data plane, one Engine per worker thread (it owns a Backend's scratch).
// Does not allocate, lock, log or throw. Each packet gets a Verdict; a packet
// whose verdict is not kOk is left in an unspecified state and must be dropped.
//
// Per burst, three phases: admit each packet (parse it, find its stream and
// key, check the replay window, set up its crypto operation); run the crypto
// for the whole burst; then settle: protect appends MKI and tag, unprotect
// verifies tags in constant time and only then updates the rollover counter
// and replay window (RFC 3711 §3.3: state changes only after
// authentication). Protect is src/srtp/engine_protect.cc, unprotect
// src/srtp/engine_unprotect.cc.
#ifndef SLUICE_SRTP_ENGINE_H_
#define SLUICE_SRTP_ENGINE_H_

#include <array>
#include <cstdint>
#include <span>

#include "sluice/crypto/backend.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/verdict.h"

namespace sluice::srtp {

// A packet in a plain buffer: data[0, len) is the RTP/RTCP packet and
// data[len, capacity) is tailroom protect may write into.
struct Packet {
  uint8_t* data;
  uint32_t len;
  uint32_t capacity;
};

struct Job {
  Context* ctx;
  Packet* pkt;
};

class Engine {
 public:
  // Largest burst processed in one crypto submission; longer spans are cut.
  static constexpr size_t kMaxBurst = 64;
  static_assert(kMaxBurst <= crypto::Backend::kMaxDirectJobs);

  explicit Engine(crypto::Backend& backend) noexcept
      : backend_(backend), direct_jobs_(backend.DirectCmHmacJobs()) {
    for (size_t i = 0; i < kMaxBurst; ++i) op_ptrs_[i] = &ops_[i];
  }

  // Each writes verdicts[i] for jobs[i] (verdicts.size() >= jobs.size()) and
  // returns the number of kOk verdicts.
  size_t ProtectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  size_t UnprotectRtp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  size_t ProtectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  size_t UnprotectRtcp(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;

  crypto::Backend& backend() noexcept { return backend_; }

  // The clock that trial-key deadlines and stream slots' idle times are
  // measured with (a TSC reading in the data plane). Set before each burst.
  void SetNow(uint64_t now) noexcept { now_ = now; }

 private:
  struct ProtectBurst;    // protect's per-burst state (engine_protect.cc)
  struct UnprotectBurst;  // unprotect's per-burst state (engine_unprotect.cc)

  // Cuts a long span into bursts of kMaxBurst.
  template <typename BurstFn>
  size_t Chunked(std::span<const Job> jobs, std::span<Verdict> verdicts, BurstFn burst) noexcept;

  // Protect (engine_protect.cc). Each burst: admit (parse, commit the
  // sender's index, set up the crypto), submit, settle (append MKI and tag).
  size_t ProtectRtpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  size_t ProtectRtcpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  void AdmitRtpForProtect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                          ProtectBurst& b) noexcept;
  bool SubmitProtectRtp(std::span<const Job> jobs, ProtectBurst& b) noexcept;
  bool SubmitProtect(std::span<crypto::CryptoOp* const> both,
                     std::span<crypto::CryptoOp* const> cm,
                     std::span<crypto::CryptoOp* const> gcm,
                     std::span<crypto::CryptoOp* const> hmac) noexcept;

  // Unprotect (engine_unprotect.cc). Each burst: admit (parse, find the key,
  // estimate the index, pre-check replay, set up the crypto), authenticate
  // (retrying trial keys), decrypt what verified, commit replay state.
  size_t UnprotectRtpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  size_t UnprotectRtcpBurst(std::span<const Job> jobs, std::span<Verdict> verdicts) noexcept;
  void AdmitRtpForUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                            UnprotectBurst& b) noexcept;
  void AdmitRtcpForUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                             UnprotectBurst& b) noexcept;
  // An AES-CM with HMAC-SHA1 packet's unprotect in the backend's own job
  // (direct_jobs_), and the way back to a CryptoOp for the rare paths.
  void SetRtpUnprotectJob(Packet& pkt, const crypto::SessionKey& sk, size_t i,
                          UnprotectBurst& b) noexcept;
  void MoveJobToOp(std::span<const Job> jobs, UnprotectBurst& b, size_t i) noexcept;
  size_t FinishUnprotect(std::span<const Job> jobs, std::span<Verdict> verdicts,
                         UnprotectBurst& b, bool rtcp) noexcept;
  void Authenticate(std::span<const Job> jobs, std::span<Verdict> verdicts, UnprotectBurst& b,
                    bool rtcp) noexcept;
  void DecryptVerified(std::span<const Job> jobs, std::span<Verdict> verdicts,
                       UnprotectBurst& b) noexcept;
  size_t CommitReplayState(std::span<const Job> jobs, std::span<Verdict> verdicts,
                           UnprotectBurst& b, bool rtcp) noexcept;
  // Retries packets that failed authentication with the context's other
  // trial keys; a packet that verifies is pending again with verdict kOk.
  void RetryTrialKeys(std::span<const Job> jobs, std::span<Verdict> verdicts,
                      UnprotectBurst& b, const uint16_t* failed, size_t n_failed,
                      bool rtcp) noexcept;
  // One round of RetryTrialKeys: each packet of `still` with key `attempt`
  // (skipping the active one); returns how many stay in `still`.
  size_t TryTrialKey(std::span<const Job> jobs, std::span<Verdict> verdicts, UnprotectBurst& b,
                     uint16_t* still, size_t n_still, int attempt, bool rtcp) noexcept;

  // Re-key ROC detection (Context::MarkRocTrial): retries the RTP packets of
  // `failed` still refused whose stream may try ROC 0, with the key they
  // were first tried with; one that verifies is pending again, marked
  // roc_zero, its index moved to ROC 0.
  void RetryResetRoc(std::span<const Job> jobs, std::span<Verdict> verdicts, UnprotectBurst& b,
                     const uint16_t* failed, size_t n_failed) noexcept;

  crypto::Backend& backend_;
  // The backend's own AES-CM + HMAC-SHA1 jobs, which protect and unprotect
  // set directly, or null (see Backend::DirectCmHmacJobs); their counter
  // blocks.
  crypto::CmHmacJobs* const direct_jobs_;
  alignas(16) uint8_t direct_ivs_[kMaxBurst][16];
  uint64_t now_ = 0;
  std::array<crypto::CryptoOp, kMaxBurst> ops_;
  std::array<crypto::CryptoOp*, kMaxBurst> op_ptrs_;  // &ops_[i]: a burst's ops as they are
};

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_ENGINE_H_
