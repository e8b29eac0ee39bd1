#include "crypto/ipsecmb_floor.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libsrtp_loops.h"
#include "rtp_packets.h"
#include "sluice/srtp/master_key.h"

namespace sluice::bench {
namespace {

using crypto::Suite;

// RFC 3711 §4.3.1 with key derivation rate 0: AES-CM keystream under the
// master key from IV = (master salt XOR label at byte 7) * 2^16. A GCM master
// salt (12 bytes) is zero-padded to 14, as libsrtp2 does. Only for setting up
// the floor; Sluice's own derivation is in src/crypto/session_key.cc.
std::vector<uint8_t> DeriveSessionKey(const srtp::MasterKey& mk, uint8_t label, size_t n) {
  uint8_t iv[16] = {};
  std::memcpy(iv, mk.salt.data(), mk.info().salt_len);
  iv[7] ^= label;
  const EVP_CIPHER* cipher = mk.info().key_len == 16   ? EVP_aes_128_ctr()
                             : mk.info().key_len == 24 ? EVP_aes_192_ctr()
                                                       : EVP_aes_256_ctr();
  std::vector<uint8_t> zeros(n, 0), out(n + 16, 0);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  EVP_EncryptInit_ex(ctx, cipher, nullptr, mk.key.data(), iv);
  EVP_EncryptUpdate(ctx, out.data(), &len, zeros.data(), static_cast<int>(n));
  EVP_CIPHER_CTX_free(ctx);
  out.resize(n);
  return out;
}

constexpr uint8_t kLabelEncryption = 0x00;
constexpr uint8_t kLabelAuthentication = 0x01;
constexpr uint8_t kLabelSalt = 0x02;

void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Protects copies of `plain` with libsrtp2 and compares every byte the floor
// produced: the payload, and the tag (at `tags[i]` or after the payload).
absl::Status CompareWithLibsrtp(Suite suite, const RtpPackets& plain, const RtpPackets& floor,
                                const uint8_t* tags, size_t tag_stride) {
  absl::StatusOr<LibsrtpSession> session = LibsrtpSession::Create(BenchMasterKey(suite));
  if (!session.ok()) return session.status();
  RtpPackets ref(plain.count(), plain.size());
  ref.CopyFrom(plain);
  const uint32_t tag_len = crypto::GetSuiteInfo(suite).srtp_tag_len;
  for (size_t i = 0; i < ref.count(); ++i) {
    int len = static_cast<int>(ref.size());
    if (srtp_err_status_t err = srtp_protect(session->get(), ref.data(i), &len); err) {
      return absl::InternalError(absl::StrCat("libsrtp2 srtp_protect failed: error ",
                                              static_cast<int>(err)));
    }
    const uint8_t* tag = tags != nullptr ? tags + i * tag_stride : floor.data(i) + floor.size();
    if (static_cast<uint32_t>(len) != ref.size() + tag_len ||
        std::memcmp(ref.data(i), floor.data(i), ref.size()) != 0 ||
        std::memcmp(ref.data(i) + ref.size(), tag, tag_len) != 0) {
      return absl::InternalError(absl::StrCat("the ", std::string(crypto::SuiteName(suite)),
                                              " floor's output differs from libsrtp2's for packet ",
                                              i, ": the floor would not measure SRTP's work"));
    }
  }
  return absl::OkStatus();
}

// Which of `keys` key schedules each packet uses: with one, all of them;
// with more, a random one (sessions in random order, as the relay visits
// them), the next burst's prefetched while this one runs, as the worker
// prefetches a burst's contexts before it works on them.
class KeyOrder {
 public:
  KeyOrder(size_t keys, size_t burst) : burst_(burst) {
    if (keys <= 1) return;
    std::mt19937 rng(27);
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(keys - 1));
    const size_t n = std::max<size_t>(keys, 1 << 16) / burst * burst + burst;
    order_.resize(n);
    for (uint32_t& k : order_) k = pick(rng);
  }
  bool keyed() const noexcept { return !order_.empty(); }
  // The key of packet i of the current burst, and of the next burst.
  uint32_t Current(size_t i) const noexcept { return order_[cursor_ + i]; }
  uint32_t Next(size_t i) const noexcept { return order_[(cursor_ + burst_ + i) % order_.size()]; }
  void Advance() noexcept {
    cursor_ += burst_;
    if (cursor_ == order_.size()) cursor_ = 0;
  }

 private:
  size_t burst_;
  size_t cursor_ = 0;
  std::vector<uint32_t> order_;
};

template <typename T>
void PrefetchWhole(const T* p) {
  for (size_t line = 0; line < sizeof(T); line += 64) {
    __builtin_prefetch(reinterpret_cast<const char*>(p) + line, 0, 3);
  }
}

// AES-128-CTR cipher burst + HMAC-SHA1 hash burst.
class AesCmHmacFloor final : public BurstLoop {
 public:
  AesCmHmacFloor(IMB_MGR* mgr, uint32_t size, size_t burst, size_t keys)
      : mgr_(mgr), packets_(burst, size), jobs_(burst), ivs_(burst), tags_(burst),
        keys_(keys), order_(keys, burst) {
    for (std::unique_ptr<Keys>& k : keys_) k = std::make_unique<Keys>();
  }

  absl::Status Init() {
    const srtp::MasterKey mk = BenchMasterKey(Suite::kAesCm128HmacSha1_80);
    const std::vector<uint8_t> enc = DeriveSessionKey(mk, kLabelEncryption, 16);
    const std::vector<uint8_t> auth = DeriveSessionKey(mk, kLabelAuthentication, 20);
    const std::vector<uint8_t> salt = DeriveSessionKey(mk, kLabelSalt, 14);
    Keys& first = *keys_[0];
    IMB_AES_KEYEXP_128(mgr_, enc.data(), first.enc, first.dec);
    // HMAC: SHA-1 state after one block of key ^ ipad and of key ^ opad.
    alignas(16) uint8_t block[64];
    for (int pad = 0; pad < 2; ++pad) {
      std::memset(block, pad == 0 ? 0x36 : 0x5c, sizeof(block));
      for (size_t b = 0; b < auth.size(); ++b) block[b] ^= auth[b];
      IMB_SHA1_ONE_BLOCK(mgr_, block, pad == 0 ? first.ipad : first.opad);
    }
    // Copies, as many sessions keyed alike would hold: the same bytes, so
    // the output still matches libsrtp2's, each in memory of its own.
    for (std::unique_ptr<Keys>& k : keys_) *k = first;
    const uint32_t size = packets_.size();
    for (size_t i = 0; i < jobs_.size(); ++i) {
      uint8_t* p = packets_.data(i);
      // RFC 3711 §4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
      uint8_t* iv = ivs_[i].bytes;
      std::memset(iv, 0, 16);
      std::memcpy(iv, salt.data(), 14);
      for (int b = 0; b < 4; ++b) iv[4 + b] ^= p[8 + b];  // SSRC
      iv[12] ^= p[2];                                     // index = ROC (0) || SEQ
      iv[13] ^= p[3];
      PutBe32(p + size, 0);  // the ROC, authenticated after the packet

      IMB_JOB& job = jobs_[i];
      job.cipher_mode = IMB_CIPHER_CNTR;
      job.cipher_direction = IMB_DIR_ENCRYPT;
      job.chain_order = IMB_ORDER_CIPHER_HASH;
      job.hash_alg = IMB_AUTH_HMAC_SHA_1;
      job.enc_keys = first.enc;
      job.dec_keys = first.dec;
      job.key_len_in_bytes = 16;
      job.src = p;
      job.dst = p + kRtpHeaderLen;
      job.cipher_start_src_offset_in_bytes = kRtpHeaderLen;
      job.msg_len_to_cipher_in_bytes = size - kRtpHeaderLen;
      job.iv = iv;
      job.iv_len_in_bytes = 16;
      job.hash_start_src_offset_in_bytes = 0;
      job.msg_len_to_hash_in_bytes = size + 4;
      job.auth_tag_output = tags_[i].bytes;
      job.auth_tag_output_len_in_bytes = 12;  // ipsec-mb computes 12 or 20; SRTP keeps 10
      job.u.HMAC._hashed_auth_key_xor_ipad = first.ipad;
      job.u.HMAC._hashed_auth_key_xor_opad = first.opad;
    }
    RtpPackets plain(packets_.count(), size);
    plain.CopyFrom(packets_);
    if (Step() != jobs_.size()) {
      return absl::InternalError(absl::StrCat("ipsec-mb refused the floor's jobs: ",
                                              imb_get_strerror(imb_get_errno(mgr_))));
    }
    return CompareWithLibsrtp(Suite::kAesCm128HmacSha1_80, plain, packets_, tags_[0].bytes,
                              sizeof(Tag));
  }

  size_t burst() const noexcept override { return jobs_.size(); }

  size_t Step() noexcept override {
    const uint32_t n = static_cast<uint32_t>(jobs_.size());
    if (order_.keyed()) AssignKeys();
    uint32_t ciphered = n;
    if (packets_.size() > kRtpHeaderLen) {
      ciphered = IMB_SUBMIT_CIPHER_BURST(mgr_, jobs_.data(), n, IMB_CIPHER_CNTR, IMB_DIR_ENCRYPT,
                                         IMB_KEY_128_BYTES);
    }
    const uint32_t hashed = IMB_SUBMIT_HASH_BURST(mgr_, jobs_.data(), n, IMB_AUTH_HMAC_SHA_1);
    return ciphered < hashed ? ciphered : hashed;
  }

  std::string FailureDetail() const override {
    return absl::StrCat("ipsec-mb: ", imb_get_strerror(imb_get_errno(mgr_)));
  }

 private:
  struct alignas(16) Iv {
    uint8_t bytes[16];
  };
  struct alignas(16) Tag {
    uint8_t bytes[16];
  };
  struct alignas(64) Keys {
    uint8_t enc[16 * 11];
    uint8_t dec[16 * 11];
    alignas(16) uint8_t ipad[20];
    alignas(16) uint8_t opad[20];
  };

  void AssignKeys() noexcept {
    for (size_t i = 0; i < jobs_.size(); ++i) PrefetchWhole(keys_[order_.Next(i)].get());
    for (size_t i = 0; i < jobs_.size(); ++i) {
      const Keys& k = *keys_[order_.Current(i)];
      IMB_JOB& job = jobs_[i];
      job.enc_keys = k.enc;
      job.dec_keys = k.dec;
      job.u.HMAC._hashed_auth_key_xor_ipad = k.ipad;
      job.u.HMAC._hashed_auth_key_xor_opad = k.opad;
    }
    order_.Advance();
  }

  IMB_MGR* mgr_;
  RtpPackets packets_;
  std::vector<IMB_JOB> jobs_;
  std::vector<Iv> ivs_;
  std::vector<Tag> tags_;
  std::vector<std::unique_ptr<Keys>> keys_;
  KeyOrder order_;
};

// AES-128-GCM, one direct-API call a packet.
class Gcm128Floor final : public BurstLoop {
 public:
  Gcm128Floor(IMB_MGR* mgr, uint32_t size, size_t burst, size_t keys)
      : mgr_(mgr), packets_(burst, size), ivs_(burst), keys_(keys), order_(keys, burst) {
    for (std::unique_ptr<Key>& k : keys_) k = std::make_unique<Key>();
  }

  absl::Status Init() {
    const srtp::MasterKey mk = BenchMasterKey(Suite::kAeadAes128Gcm);
    const std::vector<uint8_t> enc = DeriveSessionKey(mk, kLabelEncryption, 16);
    const std::vector<uint8_t> salt = DeriveSessionKey(mk, kLabelSalt, 12);
    IMB_AES128_GCM_PRE(mgr_, enc.data(), &keys_[0]->data);
    for (std::unique_ptr<Key>& k : keys_) *k = *keys_[0];
    for (size_t i = 0; i < packets_.count(); ++i) {
      const uint8_t* p = packets_.data(i);
      // RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt.
      uint8_t* iv = ivs_[i].bytes;
      std::memset(iv, 0, 16);
      std::memcpy(iv + 2, p + 8, 4);
      iv[10] = p[2];
      iv[11] = p[3];
      for (int b = 0; b < 12; ++b) iv[b] ^= salt[b];
    }
    RtpPackets plain(packets_.count(), packets_.size());
    plain.CopyFrom(packets_);
    Step();
    return CompareWithLibsrtp(Suite::kAeadAes128Gcm, plain, packets_, nullptr, 0);
  }

  size_t burst() const noexcept override { return packets_.count(); }

  size_t Step() noexcept override {
    const uint64_t len = packets_.size() - kRtpHeaderLen;
    const bool keyed = order_.keyed();
    if (keyed) {
      for (size_t i = 0; i < packets_.count(); ++i) PrefetchWhole(keys_[order_.Next(i)].get());
    }
    for (size_t i = 0; i < packets_.count(); ++i) {
      uint8_t* p = packets_.data(i);
      const gcm_key_data* key = &keys_[keyed ? order_.Current(i) : 0]->data;
      IMB_AES128_GCM_ENC(mgr_, key, &ctx_, p + kRtpHeaderLen, p + kRtpHeaderLen, len,
                         ivs_[i].bytes, p, kRtpHeaderLen, p + packets_.size(), 16);
    }
    if (keyed) order_.Advance();
    return packets_.count();
  }

 private:
  struct alignas(16) Iv {
    uint8_t bytes[16];
  };

  IMB_MGR* mgr_;
  RtpPackets packets_;
  std::vector<Iv> ivs_;
  // intel-ipsec-mb.h aligns these to 64 only when LINUX is defined; say it here.
  struct Key {
    alignas(64) struct gcm_key_data data;
  };
  std::vector<std::unique_ptr<Key>> keys_;
  KeyOrder order_;
  alignas(64) struct gcm_context_data ctx_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ImbManager>> ImbManager::Create() {
  IMB_MGR* mgr = alloc_mb_mgr(0);
  if (mgr == nullptr) return absl::ResourceExhaustedError("ipsec-mb: alloc_mb_mgr failed");
  IMB_ARCH arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(mgr, &arch);
  if (imb_get_errno(mgr) != 0) {
    const std::string error = imb_get_strerror(imb_get_errno(mgr));
    free_mb_mgr(mgr);
    return absl::FailedPreconditionError(absl::StrCat("ipsec-mb: init_mb_mgr_auto: ", error));
  }
  return std::unique_ptr<ImbManager>(new ImbManager(mgr, arch));
}

std::string_view ImbManager::arch() const {
  switch (arch_) {
    case IMB_ARCH_NOAESNI: return "no-aesni";
    case IMB_ARCH_SSE: return "sse";
    case IMB_ARCH_AVX: return "avx";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX512: return "avx512";
    default: return "unknown";
  }
}

bool HasFloor(crypto::Suite suite) {
  return suite == Suite::kAesCm128HmacSha1_80 || suite == Suite::kAeadAes128Gcm;
}

absl::StatusOr<std::unique_ptr<BurstLoop>> MakeFloorLoop(ImbManager& mgr, crypto::Suite suite,
                                                         uint32_t size, size_t burst,
                                                         size_t keys) {
  if (keys == 0) return absl::InvalidArgumentError("a floor needs at least one key");
  if (suite == Suite::kAesCm128HmacSha1_80) {
    auto loop = std::make_unique<AesCmHmacFloor>(mgr.get(), size, burst, keys);
    if (absl::Status s = loop->Init(); !s.ok()) return s;
    return std::unique_ptr<BurstLoop>(std::move(loop));
  }
  if (suite == Suite::kAeadAes128Gcm) {
    auto loop = std::make_unique<Gcm128Floor>(mgr.get(), size, burst, keys);
    if (absl::Status s = loop->Init(); !s.ok()) return s;
    return std::unique_ptr<BurstLoop>(std::move(loop));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no ipsec-mb floor is defined for ", std::string(crypto::SuiteName(suite))));
}

}  // namespace sluice::bench
