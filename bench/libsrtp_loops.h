// Burst loops over libsrtp2 (Debian's build), the reference Sluice is compared
// with: srtp_protect and srtp_unprotect one packet at a time, as a relay built
// on libsrtp2 calls them, on the same packets as the Sluice loops.
//
// Benchmark code, single thread. Call srtp_init() once before Create().
#ifndef SLUICE_BENCH_LIBSRTP_LOOPS_H_
#define SLUICE_BENCH_LIBSRTP_LOOPS_H_

#include <srtp2/srtp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "measure.h"
#include "rtp_packets.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::bench {

// libsrtp2's crypto policy for a suite.
absl::Status SetLibsrtpPolicy(crypto::Suite suite, srtp_crypto_policy_t& policy);

// An srtp_t with one stream (the benchmark SSRC) keyed with `key`.
class LibsrtpSession {
 public:
  static absl::StatusOr<LibsrtpSession> Create(const srtp::MasterKey& key);
  LibsrtpSession(LibsrtpSession&& other) noexcept : session_(other.session_) {
    other.session_ = nullptr;
  }
  LibsrtpSession& operator=(LibsrtpSession&& other) noexcept;
  ~LibsrtpSession();
  srtp_t get() const { return session_; }

 private:
  explicit LibsrtpSession(srtp_t s) : session_(s) {}
  srtp_t session_;
};

// Same shape as EngineProtectLoop: reset the length, advance the sequence
// number, protect the previous ciphertext again.
class LibsrtpProtectLoop final : public BurstLoop {
 public:
  static absl::StatusOr<std::unique_ptr<LibsrtpProtectLoop>> Create(crypto::Suite suite,
                                                                    uint32_t size, size_t burst);
  size_t burst() const noexcept override { return packets_.count(); }
  size_t Step() noexcept override;
  std::string FailureDetail() const override;

 private:
  LibsrtpProtectLoop(LibsrtpSession session, uint32_t size, size_t burst)
      : session_(std::move(session)), packets_(burst, size) {}

  LibsrtpSession session_;
  RtpPackets packets_;
  uint16_t next_seq_ = 0;
  srtp_err_status_t last_error_ = srtp_err_status_ok;
};

// Same shape as EngineUnprotectLoop: a ring protected beforehand, restored and
// given a fresh session off the clock when it runs out.
class LibsrtpUnprotectLoop final : public BurstLoop {
 public:
  static absl::StatusOr<std::unique_ptr<LibsrtpUnprotectLoop>> Create(
      crypto::Suite suite, uint32_t size, size_t burst, size_t ring = kUnprotectRing);
  size_t burst() const noexcept override { return burst_; }
  bool NeedsRefill() const noexcept override { return next_ == len_.size(); }
  void Refill() override;
  size_t Step() noexcept override;
  std::string FailureDetail() const override;

 private:
  LibsrtpUnprotectLoop(LibsrtpSession receiver, const srtp::MasterKey& key, uint32_t size,
                       size_t burst, size_t ring)
      : key_(key), burst_(burst), receiver_(std::move(receiver)), protected_(ring, size),
        work_(ring, size), protected_len_(ring), len_(ring) {}

  srtp::MasterKey key_;
  size_t burst_;
  LibsrtpSession receiver_;
  RtpPackets protected_;
  RtpPackets work_;
  std::vector<int> protected_len_;
  std::vector<int> len_;
  size_t next_ = 0;
  bool refill_failed_ = false;
  srtp_err_status_t last_error_ = srtp_err_status_ok;
};

// What a relay built on libsrtp2 does per packet: srtp_unprotect with the
// inbound leg's session, then srtp_protect with the outbound leg's, one packet
// at a time. A side without a suite (plain RTP) skips its half. Runs through a
// ring of packets protected beforehand, restored with fresh sessions off the
// clock when it runs out.
class LibsrtpRelayLoop final : public BurstLoop {
 public:
  // At least one of in_suite and out_suite is set.
  static absl::StatusOr<std::unique_ptr<LibsrtpRelayLoop>> Create(
      std::optional<crypto::Suite> in_suite, std::optional<crypto::Suite> out_suite,
      uint32_t size, size_t burst, size_t ring = kUnprotectRing);
  size_t burst() const noexcept override { return burst_; }
  bool NeedsRefill() const noexcept override { return next_ == len_.size(); }
  void Refill() override;
  size_t Step() noexcept override;
  std::string FailureDetail() const override;

 private:
  LibsrtpRelayLoop(std::optional<crypto::Suite> in_suite, std::optional<crypto::Suite> out_suite,
                   uint32_t size, size_t burst, size_t ring)
      : in_suite_(in_suite), out_suite_(out_suite), burst_(burst), protected_(ring, size),
        work_(ring, size), protected_len_(ring, static_cast<int>(size)),
        len_(ring, static_cast<int>(size)) {}
  absl::Status FreshSessions();

  std::optional<crypto::Suite> in_suite_, out_suite_;
  size_t burst_;
  std::optional<LibsrtpSession> receiver_;  // inbound leg (absent: plain)
  std::optional<LibsrtpSession> sender_;    // outbound leg (absent: plain)
  RtpPackets protected_;
  RtpPackets work_;
  std::vector<int> protected_len_;
  std::vector<int> len_;
  size_t next_ = 0;
  bool refill_failed_ = false;
  std::string last_error_;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_LIBSRTP_LOOPS_H_
