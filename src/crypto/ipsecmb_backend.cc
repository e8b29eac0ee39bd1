#include "ipsecmb_backend.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "cm_hmac_jobs.h"
#include "ipsecmb_manager.h"

namespace sluice::crypto {
namespace {

// Up to this many HMAC jobs go to the SSE manager (SHA-NI, one packet at a
// time is cheap there); bigger bursts fill the AVX-512 manager's 16 lanes.
constexpr size_t kSmallHashBurst = 4;
constexpr size_t kMaxJobs = Backend::kMaxDirectJobs;

IMB_KEY_SIZE_BYTES KeySize(int key_len) {
  switch (key_len) {
    case 24: return IMB_KEY_192_BYTES;
    case 32: return IMB_KEY_256_BYTES;
    default: return IMB_KEY_128_BYTES;
  }
}

class IpsecMbBackend final : public Backend {
 public:
  IpsecMbBackend(MbMgrPtr mgr, MbMgrPtr sse, IMB_ARCH arch)
      : mgr_(std::move(mgr)), sse_(std::move(sse)), arch_(arch) {}

  std::string_view name() const noexcept override { return "ipsec-mb"; }
  std::string_view arch() const noexcept override { return MbArchName(arch_); }

  bool AesCm(std::span<CryptoOp* const> ops) noexcept override {
    return ByKeySize(ops, /*skip_empty=*/true, [this](std::span<CryptoOp* const> group,
                                                      int key_len) {
      for (size_t j = 0; j < group.size(); ++j) SetCipher(jobs_[j], *group[j], key_len);
      return CipherBurst(group.size(), key_len);
    });
  }

  bool AesCmThenHmacSha1(std::span<CryptoOp* const> ops) noexcept override {
    // Each job carries both halves; the cipher burst and then the hash burst
    // run over the same array, so every packet is set up once.
    return ByKeySize(ops, /*skip_empty=*/false, [this](std::span<CryptoOp* const> group,
                                                       int key_len) {
      // ipsec-mb refuses a zero-length cipher job: a group with an empty
      // payload (rare) goes the two-pass way instead.
      for (const CryptoOp* op : group) {
        if (op->cipher_len == 0) return AesCm(group) && HmacSha1(group);
      }
      for (size_t j = 0; j < group.size(); ++j) {
        SetCipher(jobs_[j], *group[j], key_len);
        SetHash(jobs_[j], *group[j]);
      }
      return CipherBurst(group.size(), key_len) && HashBurst(group.size());
    });
  }

  bool HmacSha1(std::span<CryptoOp* const> ops) noexcept override {
    for (size_t start = 0; start < ops.size(); start += kMaxJobs) {
      const size_t n = std::min(kMaxJobs, ops.size() - start);
      for (size_t i = 0; i < n; ++i) SetHash(jobs_[i], *ops[start + i]);
      if (!HashBurst(n)) return false;
    }
    return true;
  }

  CmHmacJobs* DirectCmHmacJobs() noexcept override { return &jobs_; }
  bool SubmitCmHmacJobs(size_t n, int key_len) noexcept override {
    return n >= 1 && n <= kMaxJobs && CipherBurst(n, key_len) && HashBurst(n);
  }
  bool SubmitHmacJobs(size_t n) noexcept override {
    return n >= 1 && n <= kMaxJobs && HashBurst(n);
  }
  bool SubmitCmJobs(size_t n, int key_len) noexcept override {
    return n >= 1 && n <= kMaxJobs && CipherBurst(n, key_len);
  }

  bool GcmEncrypt(std::span<CryptoOp* const> ops) noexcept override { return Gcm<true>(ops); }
  bool GcmDecrypt(std::span<CryptoOp* const> ops) noexcept override { return Gcm<false>(ops); }

 private:
  // Calls fn(group, key_len) for the ops of each AES key size, at most
  // kMaxJobs at a time: a cipher burst has one key size. A burst nearly
  // always has just one, and then the ops go as they are. With skip_empty,
  // ops with nothing to encrypt are left out.
  template <typename Fn>
  static bool ByKeySize(std::span<CryptoOp* const> ops, bool skip_empty, Fn fn) noexcept {
    CryptoOp* by_size[3][kMaxJobs];
    for (size_t start = 0; start < ops.size(); start += kMaxJobs) {
      const size_t end = std::min(ops.size(), start + kMaxJobs);
      const std::span<CryptoOp* const> chunk = ops.subspan(start, end - start);
      const int first_len = chunk[0]->key->suite->key_len;
      bool uniform = true;
      for (const CryptoOp* op : chunk) {
        uniform &= op->key->suite->key_len == first_len && (!skip_empty || op->cipher_len != 0);
      }
      if (uniform) {
        if (!fn(chunk, first_len)) return false;
        continue;
      }
      size_t count[3] = {0, 0, 0};
      for (CryptoOp* op : chunk) {
        if (skip_empty && op->cipher_len == 0) continue;
        const int size = (op->key->suite->key_len - 16) / 8;  // 16, 24, 32 -> 0, 1, 2
        by_size[size][count[size]++] = op;
      }
      for (int size = 0; size < 3; ++size) {
        if (count[size] > 0 && !fn(std::span<CryptoOp* const>(by_size[size], count[size]),
                                   16 + 8 * size)) {
          return false;
        }
      }
    }
    return true;
  }

  // The op's fields are read into locals before any job field is written:
  // the compiler cannot tell the two apart in memory and would otherwise
  // reload the op after every store.
  static void SetCipher(IMB_JOB& job, const CryptoOp& op, int key_len) noexcept {
    const uint8_t* round_keys = op.key->aes_round_keys;
    uint8_t* buf = op.buf;
    const uint32_t offset = op.cipher_offset;
    const uint32_t len = op.cipher_len;
    job.enc_keys = round_keys;
    job.dec_keys = round_keys;
    job.key_len_in_bytes = static_cast<uint64_t>(key_len);
    job.src = buf;
    job.dst = buf + offset;
    job.cipher_start_src_offset_in_bytes = offset;
    job.msg_len_to_cipher_in_bytes = len;
    job.iv = op.iv;
  }

  static void SetHash(IMB_JOB& job, CryptoOp& op) noexcept {
    const SessionKey* key = op.key;
    uint8_t* buf = op.buf;
    const uint32_t offset = op.auth_offset;
    const uint32_t len = op.auth_len;
    job.src = buf;
    job.hash_start_src_offset_in_bytes = offset;
    job.msg_len_to_hash_in_bytes = len;
    job.auth_tag_output = op.tag;
    job.u.HMAC._hashed_auth_key_xor_ipad = key->hmac_ipad_state;
    job.u.HMAC._hashed_auth_key_xor_opad = key->hmac_opad_state;
  }

  template <bool kEncrypt>
  bool Gcm(std::span<CryptoOp* const> ops) noexcept {
    for (CryptoOp* op : ops) {
      const uint8_t* aad = op->aad != nullptr ? op->aad : op->buf + op->auth_offset;
      const uint64_t aad_len = op->aad != nullptr ? op->aad_len : op->auth_len;
      uint8_t* data = op->buf + op->cipher_offset;
      const bool aes128 = op->key->suite->key_len == 16;
      if constexpr (kEncrypt) {
        uint8_t* tag = op->tag_out != nullptr ? op->tag_out : op->tag;
        if (aes128) {
          IMB_AES128_GCM_ENC(mgr_.get(), GcmKeyOf(*op->key->gcm), &gcm_ctx_, data, data, op->cipher_len,
                             op->iv, aad, aad_len, tag, op->tag_len);
        } else {
          IMB_AES256_GCM_ENC(mgr_.get(), GcmKeyOf(*op->key->gcm), &gcm_ctx_, data, data, op->cipher_len,
                             op->iv, aad, aad_len, tag, op->tag_len);
        }
      } else if (aes128) {
        IMB_AES128_GCM_DEC(mgr_.get(), GcmKeyOf(*op->key->gcm), &gcm_ctx_, data, data, op->cipher_len,
                           op->iv, aad, aad_len, op->tag, op->tag_len);
      } else {
        IMB_AES256_GCM_DEC(mgr_.get(), GcmKeyOf(*op->key->gcm), &gcm_ctx_, data, data, op->cipher_len,
                           op->iv, aad, aad_len, op->tag, op->tag_len);
      }
    }
    return imb_get_errno(mgr_.get()) == 0;
  }

  bool CipherBurst(size_t n, int key_len) noexcept {
    const uint32_t done = IMB_SUBMIT_CIPHER_BURST(mgr_.get(), jobs_.jobs(),
                                                  static_cast<uint32_t>(n), IMB_CIPHER_CNTR,
                                                  IMB_DIR_ENCRYPT, KeySize(key_len));
    return done == n && AllCompleted(n);
  }

  // Submits the first n jobs (already set up) as one HMAC-SHA1 burst, on the
  // SSE manager when the burst is small.
  bool HashBurst(size_t n) noexcept {
    IMB_MGR* mgr = n <= kSmallHashBurst ? sse_.get() : mgr_.get();
    const uint32_t done =
        IMB_SUBMIT_HASH_BURST(mgr, jobs_.jobs(), static_cast<uint32_t>(n), IMB_AUTH_HMAC_SHA_1);
    return done == n && AllCompleted(n);
  }

  bool AllCompleted(size_t n) const noexcept {
    for (size_t i = 0; i < n; ++i) {
      if (jobs_[i].status != IMB_STATUS_COMPLETED) return false;
    }
    return true;
  }

  MbMgrPtr mgr_;
  MbMgrPtr sse_;
  IMB_ARCH arch_;
  CmHmacJobs jobs_;
  struct gcm_context_data gcm_ctx_{};
};

}  // namespace

std::unique_ptr<Backend> MakeIpsecMbBackend() {
  IMB_ARCH arch = IMB_ARCH_NONE;
  MbMgrPtr mgr = NewMbMgr(MbArch::kAuto, &arch);
  MbMgrPtr sse = NewMbMgr(MbArch::kSse);
  if (!mgr || !sse) return nullptr;
  return std::make_unique<IpsecMbBackend>(std::move(mgr), std::move(sse), arch);
}

}  // namespace sluice::crypto
