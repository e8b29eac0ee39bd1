// Burst loops over srtp::Engine: protect a burst of RTP packets of one stream
// with sequence numbers advancing, or unprotect a ring of packets protected
// beforehand.
//
// Benchmark code, single thread. Allocates only in Create() and Refill().
#ifndef SLUICE_BENCH_SRTP_ENGINE_LOOPS_H_
#define SLUICE_BENCH_SRTP_ENGINE_LOOPS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "measure.h"
#include "rtp_packets.h"
#include "sluice/crypto/backend.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"

namespace sluice::bench {

// Protect is in place and only appends the tag, so each Step() resets the
// packet lengths and advances the sequence numbers (a 2-byte store a packet,
// inside the timed region) and protects the previous ciphertext again: the
// cost of AES and HMAC does not depend on the bytes, as in libsrtp2's own
// timing loop.
class EngineProtectLoop final : public BurstLoop {
 public:
  static absl::StatusOr<std::unique_ptr<EngineProtectLoop>> Create(crypto::Backend& backend,
                                                                   crypto::Suite suite,
                                                                   uint32_t size, size_t burst,
                                                                   uint16_t seq_offset = 0);

  size_t burst() const noexcept override { return jobs_.size(); }
  size_t Step() noexcept override;
  std::string FailureDetail() const override;

 private:
  EngineProtectLoop(crypto::Backend& backend, uint32_t size, size_t burst);

  srtp::Engine engine_;
  std::unique_ptr<srtp::Context> ctx_;
  RtpPackets packets_;
  std::vector<srtp::Packet> pkts_;
  std::vector<srtp::Job> jobs_;
  std::vector<srtp::Verdict> verdicts_;
  uint16_t next_seq_ = 0;
};

class EngineUnprotectLoop final : public BurstLoop {
 public:
  // `ring` is rounded up to a multiple of `burst`.
  static absl::StatusOr<std::unique_ptr<EngineUnprotectLoop>> Create(
      crypto::Backend& backend, crypto::Suite suite, uint32_t size, size_t burst,
      size_t ring = kUnprotectRing);

  size_t burst() const noexcept override { return burst_; }
  bool NeedsRefill() const noexcept override { return next_ == jobs_.size(); }
  void Refill() override;
  size_t Step() noexcept override;
  std::string FailureDetail() const override;

 private:
  EngineUnprotectLoop(crypto::Backend& backend, uint32_t size, size_t burst, size_t ring);

  srtp::Engine engine_;
  srtp::MasterKey key_;
  size_t burst_;
  std::unique_ptr<srtp::Context> receiver_;
  RtpPackets protected_;  // pristine SRTP packets
  RtpPackets work_;       // unprotected in place
  std::vector<uint32_t> protected_len_;
  std::vector<srtp::Packet> pkts_;
  std::vector<srtp::Job> jobs_;
  std::vector<srtp::Verdict> verdicts_;
  size_t next_ = 0;  // next job in the ring
  bool refill_failed_ = false;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_SRTP_ENGINE_LOOPS_H_
