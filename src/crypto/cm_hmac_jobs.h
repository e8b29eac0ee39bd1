// Protect's AES-CM then HMAC-SHA1 work in the ipsec-mb backend's own job
// form: the SRTP engine writes each packet's job in place (no CryptoOp to
// write and read back), then Backend::SubmitCmHmacJobs runs the burst.
//
// Private to Sluice's sources: src/crypto/ipsecmb_backend.cc owns the jobs;
// src/srtp/engine_protect.cc includes this header to write them inline, and
// names only CmHmacJobs, never the library's types. Data plane, the
// backend's thread only. Does not allocate.
#ifndef SLUICE_SRC_CRYPTO_CM_HMAC_JOBS_H_
#define SLUICE_SRC_CRYPTO_CM_HMAC_JOBS_H_

#include <intel-ipsec-mb.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "sluice/crypto/backend.h"
#include "sluice/crypto/session_key.h"

namespace sluice::crypto {

class CmHmacJobs {
 public:
  static constexpr size_t kMax = Backend::kMaxDirectJobs;
  // Bytes of HMAC-SHA1 tag each job writes (ipsec-mb computes 12 or 20; SRTP
  // keeps the first 10 or 4).
  static constexpr uint32_t kTagOutputLen = 12;

  CmHmacJobs() noexcept {
    // What every job of every burst has in common is written once.
    for (IMB_JOB& job : jobs_) {
      job.iv_len_in_bytes = 16;  // the full RFC 3711 counter block
      job.auth_tag_output_len_in_bytes = kTagOutputLen;
    }
  }

  // Job j (below kMax): AES-CM with `key`'s round keys (key_len bytes of
  // key) over buf[cipher_offset, cipher_offset + cipher_len) in place
  // (cipher_len at least 1) from the 16-byte counter block `iv`, then
  // HMAC-SHA1 with `key`'s pad states over buf[0, hash_len) (hash_len at
  // least 1), kTagOutputLen bytes of tag into tag_out. `iv` must stay put
  // until the burst has run.
  [[gnu::always_inline]] void Set(size_t j, const SessionKey& key, uint32_t key_len,
                                  uint8_t* buf, uint32_t cipher_offset, uint32_t cipher_len,
                                  const uint8_t* iv, uint32_t hash_len,
                                  uint8_t* tag_out) noexcept {
    IMB_JOB& job = jobs_[j];
    job.enc_keys = key.aes_round_keys;
    job.dec_keys = key.aes_round_keys;
    job.key_len_in_bytes = key_len;
    job.src = buf;
    job.dst = buf + cipher_offset;
    job.cipher_start_src_offset_in_bytes = cipher_offset;
    job.msg_len_to_cipher_in_bytes = cipher_len;
    job.iv = iv;
    job.hash_start_src_offset_in_bytes = 0;
    job.msg_len_to_hash_in_bytes = hash_len;
    job.u.HMAC._hashed_auth_key_xor_ipad = key.hmac_ipad_state;
    job.u.HMAC._hashed_auth_key_xor_opad = key.hmac_opad_state;
    job.auth_tag_output = tag_out;
  }

  // The backend's view: the array its bursts submit.
  IMB_JOB* jobs() noexcept { return jobs_.data(); }
  IMB_JOB& operator[](size_t j) noexcept { return jobs_[j]; }
  const IMB_JOB& operator[](size_t j) const noexcept { return jobs_[j]; }

 private:
  std::array<IMB_JOB, kMax> jobs_{};
};

}  // namespace sluice::crypto

#endif  // SLUICE_SRC_CRYPTO_CM_HMAC_JOBS_H_
