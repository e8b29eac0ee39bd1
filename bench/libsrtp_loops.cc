#include "libsrtp_loops.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sluice::bench {

absl::Status SetLibsrtpPolicy(crypto::Suite suite, srtp_crypto_policy_t& p) {
  using crypto::Suite;
  switch (suite) {
    case Suite::kAesCm128HmacSha1_80: srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p); break;
    case Suite::kAesCm128HmacSha1_32: srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p); break;
    case Suite::kAes192CmHmacSha1_80: srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(&p); break;
    case Suite::kAes192CmHmacSha1_32: srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(&p); break;
    case Suite::kAes256CmHmacSha1_80: srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p); break;
    case Suite::kAes256CmHmacSha1_32: srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(&p); break;
    case Suite::kAeadAes128Gcm: srtp_crypto_policy_set_aes_gcm_128_16_auth(&p); break;
    case Suite::kAeadAes256Gcm: srtp_crypto_policy_set_aes_gcm_256_16_auth(&p); break;
    case Suite::kAeadAes128Gcm8: srtp_crypto_policy_set_aes_gcm_128_8_auth(&p); break;
    case Suite::kAeadAes256Gcm8: srtp_crypto_policy_set_aes_gcm_256_8_auth(&p); break;
    case Suite::kAesCm128NullAuth: srtp_crypto_policy_set_aes_cm_128_null_auth(&p); break;
    case Suite::kNullHmacSha1_80: srtp_crypto_policy_set_null_cipher_hmac_sha1_80(&p); break;
    case Suite::kNullHmacSha1_32:
      // libsrtp2 has no setter for it: the 80-bit one with a 4-byte tag.
      srtp_crypto_policy_set_null_cipher_hmac_sha1_80(&p);
      p.auth_tag_len = 4;
      break;
    default:
      return absl::InvalidArgumentError("no libsrtp2 policy for this suite");
  }
  return absl::OkStatus();
}

// --- LibsrtpSession -----------------------------------------------------------

absl::StatusOr<LibsrtpSession> LibsrtpSession::Create(const srtp::MasterKey& key) {
  srtp_policy_t policy;
  std::memset(&policy, 0, sizeof(policy));
  if (absl::Status s = SetLibsrtpPolicy(key.suite, policy.rtp); !s.ok()) return s;
  // RTCP is not measured; libsrtp2 still wants a policy for it.
  policy.rtcp = policy.rtp;
  std::vector<uint8_t> key_salt = KeyAndSalt(key);
  policy.key = key_salt.data();
  policy.ssrc.type = ssrc_specific;
  policy.ssrc.value = kBenchSsrc;
  policy.window_size = 128;
  srtp_t session = nullptr;
  const srtp_err_status_t err = srtp_create(&session, &policy);
  std::memset(key_salt.data(), 0, key_salt.size());
  if (err != srtp_err_status_ok) {
    return absl::InternalError(absl::StrCat("libsrtp2 srtp_create failed for ",
                                            std::string(crypto::SuiteName(key.suite)), ": error ",
                                            static_cast<int>(err)));
  }
  return LibsrtpSession(session);
}

LibsrtpSession& LibsrtpSession::operator=(LibsrtpSession&& other) noexcept {
  if (this != &other) {
    if (session_ != nullptr) srtp_dealloc(session_);
    session_ = other.session_;
    other.session_ = nullptr;
  }
  return *this;
}

LibsrtpSession::~LibsrtpSession() {
  if (session_ != nullptr) srtp_dealloc(session_);
}

// --- Protect ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<LibsrtpProtectLoop>> LibsrtpProtectLoop::Create(crypto::Suite suite,
                                                                               uint32_t size,
                                                                               size_t burst) {
  absl::StatusOr<LibsrtpSession> session = LibsrtpSession::Create(BenchMasterKey(suite));
  if (!session.ok()) return session.status();
  return std::unique_ptr<LibsrtpProtectLoop>(
      new LibsrtpProtectLoop(*std::move(session), size, burst));
}

size_t LibsrtpProtectLoop::Step() noexcept {
  size_t ok = 0;
  for (size_t i = 0; i < packets_.count(); ++i) {
    packets_.SetSeq(i, next_seq_++);
    int len = static_cast<int>(packets_.size());
    const srtp_err_status_t err = srtp_protect(session_.get(), packets_.data(i), &len);
    if (err == srtp_err_status_ok) {
      ++ok;
    } else {
      last_error_ = err;
    }
  }
  return ok;
}

std::string LibsrtpProtectLoop::FailureDetail() const {
  return absl::StrCat("srtp_protect returned error ", static_cast<int>(last_error_));
}

// --- Unprotect ----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<LibsrtpUnprotectLoop>> LibsrtpUnprotectLoop::Create(
    crypto::Suite suite, uint32_t size, size_t burst, size_t ring) {
  ring = (ring + burst - 1) / burst * burst;
  const srtp::MasterKey key = BenchMasterKey(suite);
  absl::StatusOr<LibsrtpSession> sender = LibsrtpSession::Create(key);
  if (!sender.ok()) return sender.status();
  absl::StatusOr<LibsrtpSession> receiver = LibsrtpSession::Create(key);
  if (!receiver.ok()) return receiver.status();
  std::unique_ptr<LibsrtpUnprotectLoop> loop(
      new LibsrtpUnprotectLoop(*std::move(receiver), key, size, burst, ring));
  for (size_t i = 0; i < ring; ++i) {
    int len = static_cast<int>(size);
    const srtp_err_status_t err = srtp_protect(sender->get(), loop->protected_.data(i), &len);
    if (err != srtp_err_status_ok) {
      return absl::InternalError(
          absl::StrCat("libsrtp2 srtp_protect failed while building the ring: error ",
                       static_cast<int>(err)));
    }
    loop->protected_len_[i] = len;
  }
  loop->work_.CopyFrom(loop->protected_);
  loop->len_ = loop->protected_len_;
  return loop;
}

void LibsrtpUnprotectLoop::Refill() {
  work_.CopyFrom(protected_);
  len_ = protected_len_;
  absl::StatusOr<LibsrtpSession> receiver = LibsrtpSession::Create(key_);
  if (!receiver.ok()) {
    refill_failed_ = true;
    return;
  }
  receiver_ = *std::move(receiver);
  next_ = 0;
}

size_t LibsrtpUnprotectLoop::Step() noexcept {
  if (refill_failed_) return 0;
  size_t ok = 0;
  for (size_t i = next_; i < next_ + burst_; ++i) {
    const srtp_err_status_t err = srtp_unprotect(receiver_.get(), work_.data(i), &len_[i]);
    if (err == srtp_err_status_ok) {
      ++ok;
    } else {
      last_error_ = err;
    }
  }
  next_ += burst_;
  return ok;
}

std::string LibsrtpUnprotectLoop::FailureDetail() const {
  if (refill_failed_) return "cannot create a fresh libsrtp2 session";
  return absl::StrCat("srtp_unprotect returned error ", static_cast<int>(last_error_));
}

// --- Relay --------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<LibsrtpRelayLoop>> LibsrtpRelayLoop::Create(
    std::optional<crypto::Suite> in_suite, std::optional<crypto::Suite> out_suite, uint32_t size,
    size_t burst, size_t ring) {
  if (!in_suite && !out_suite) {
    return absl::InvalidArgumentError("libsrtp2 has nothing to do between two plain legs");
  }
  ring = (ring + burst - 1) / burst * burst;
  std::unique_ptr<LibsrtpRelayLoop> loop(
      new LibsrtpRelayLoop(in_suite, out_suite, size, burst, ring));
  if (in_suite) {
    absl::StatusOr<LibsrtpSession> phone = LibsrtpSession::Create(BenchMasterKey(*in_suite));
    if (!phone.ok()) return phone.status();
    for (size_t i = 0; i < ring; ++i) {
      int len = static_cast<int>(size);
      const srtp_err_status_t err = srtp_protect(phone->get(), loop->protected_.data(i), &len);
      if (err != srtp_err_status_ok) {
        return absl::InternalError(
            absl::StrCat("libsrtp2 srtp_protect failed while building the ring: error ",
                         static_cast<int>(err)));
      }
      loop->protected_len_[i] = len;
    }
  }
  if (absl::Status s = loop->FreshSessions(); !s.ok()) return s;
  loop->work_.CopyFrom(loop->protected_);
  loop->len_ = loop->protected_len_;
  return loop;
}

// The relay's receive side refuses a packet twice and its send side never
// protects an index twice, so each pass through the ring needs new sessions.
absl::Status LibsrtpRelayLoop::FreshSessions() {
  receiver_.reset();
  sender_.reset();
  if (in_suite_) {
    absl::StatusOr<LibsrtpSession> s = LibsrtpSession::Create(BenchMasterKey(*in_suite_));
    if (!s.ok()) return s.status();
    receiver_ = *std::move(s);
  }
  if (out_suite_) {
    absl::StatusOr<LibsrtpSession> s = LibsrtpSession::Create(BenchMasterKey(*out_suite_));
    if (!s.ok()) return s.status();
    sender_ = *std::move(s);
  }
  return absl::OkStatus();
}

void LibsrtpRelayLoop::Refill() {
  work_.CopyFrom(protected_);
  len_ = protected_len_;
  refill_failed_ = !FreshSessions().ok();
  next_ = 0;
}

size_t LibsrtpRelayLoop::Step() noexcept {
  if (refill_failed_) return 0;
  size_t ok = 0;
  for (size_t i = next_; i < next_ + burst_; ++i) {
    if (receiver_) {
      const srtp_err_status_t err = srtp_unprotect(receiver_->get(), work_.data(i), &len_[i]);
      if (err != srtp_err_status_ok) {
        last_error_ = absl::StrCat("srtp_unprotect returned error ", static_cast<int>(err));
        continue;
      }
    }
    if (sender_) {
      const srtp_err_status_t err = srtp_protect(sender_->get(), work_.data(i), &len_[i]);
      if (err != srtp_err_status_ok) {
        last_error_ = absl::StrCat("srtp_protect returned error ", static_cast<int>(err));
        continue;
      }
    }
    ++ok;
  }
  next_ += burst_;
  return ok;
}

std::string LibsrtpRelayLoop::FailureDetail() const {
  if (refill_failed_) return "cannot create fresh libsrtp2 sessions";
  return last_error_;
}

}  // namespace sluice::bench
