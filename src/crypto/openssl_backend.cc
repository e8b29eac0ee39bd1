#include "openssl_backend.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"

namespace sluice::crypto {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

struct CipherFree {
  void operator()(EVP_CIPHER* cipher) const noexcept { EVP_CIPHER_free(cipher); }
};

// One context per AES key size, indexed by KeySizeIndex.
using CtxBySize = std::array<CipherCtx, 3>;

// 16, 24, 32 bytes -> 0, 1, 2; anything else -> -1.
constexpr int KeySizeIndex(uint8_t key_len) noexcept {
  switch (key_len) {
    case 16: return 0;
    case 24: return 1;
    case 32: return 2;
    default: return -1;
  }
}

// A context already initialised with `name` (its key and IV come per packet),
// or null.
CipherCtx NewCipherCtx(const char* name) {
  std::unique_ptr<EVP_CIPHER, CipherFree> cipher(EVP_CIPHER_fetch(nullptr, name, nullptr));
  if (cipher == nullptr) return nullptr;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  // The context keeps its own reference to the cipher.
  if (ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), cipher.get(), nullptr, nullptr, nullptr) != 1) {
    return nullptr;
  }
  return ctx;
}

// AES-GCM AAD: kept outside the packet, or the auth range of it.
struct Aad {
  const uint8_t* data;
  uint32_t len;
};
Aad AadOf(const CryptoOp& op) noexcept {
  if (op.aad != nullptr) return {op.aad, op.aad_len};
  return {op.buf + op.auth_offset, op.auth_len};
}

bool FitsInt(uint32_t n) noexcept { return n <= static_cast<uint32_t>(INT_MAX); }

// Within one call, consecutive packets of one stream share a SessionKey: the
// context keeps the key schedule (and GHASH table) set for the previous packet
// and only the IV is loaded. Never across calls: a freed SessionKey's address
// may come back holding another key.
class KeyedCache {
 public:
  // The key to pass to EVP_*Init_ex2: null when `ctx_index` already holds it.
  const uint8_t* KeyFor(int ctx_index, const SessionKey* key) noexcept {
    if (keyed_[ctx_index] == key) return nullptr;
    keyed_[ctx_index] = key;
    return key->enc_key();
  }
  void Forget(int ctx_index) noexcept { keyed_[ctx_index] = nullptr; }

 private:
  std::array<const SessionKey*, 3> keyed_{};
};

// SHA1_Init/Update/Final are deprecated in OpenSSL 3.0, but they are the only
// interface that can resume a SHA-1 from the precomputed HMAC pad states, and
// the only one that does not allocate: EVP_MAC_init + update + final costs five
// allocations per packet in OpenSSL 3.0, and re-initialising an EVP_MD_CTX one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static_assert(sizeof(SHA_LONG) == 4);

// A SHA_CTX that has hashed exactly one 64-byte block and reached `state`:
// five host-order 32-bit words h0..h4, the form IMB_SHA1_ONE_BLOCK writes into
// SessionKey::hmac_ipad_state and hmac_opad_state.
void ResumeSha1(SHA_CTX& ctx, const uint8_t (&state)[20]) noexcept {
  uint32_t h[5];
  std::memcpy(h, state, sizeof(h));
  ctx.h0 = h[0];
  ctx.h1 = h[1];
  ctx.h2 = h[2];
  ctx.h3 = h[3];
  ctx.h4 = h[4];
  ctx.Nl = 512;  // bits hashed so far
  ctx.Nh = 0;
  ctx.num = 0;
}

// RFC 2104: H(K ^ opad || H(K ^ ipad || text)), both pad blocks already hashed
// when the key was prepared. Writes all 20 bytes of op.tag.
void HmacSha1One(CryptoOp& op) noexcept {
  SHA_CTX ctx{};
  ResumeSha1(ctx, op.key->hmac_ipad_state);
  SHA1_Update(&ctx, op.buf + op.auth_offset, op.auth_len);
  uint8_t inner[SHA_DIGEST_LENGTH];
  SHA1_Final(inner, &ctx);
  ResumeSha1(ctx, op.key->hmac_opad_state);
  SHA1_Update(&ctx, inner, sizeof(inner));
  SHA1_Final(op.tag, &ctx);
}

#pragma GCC diagnostic pop

class OpensslBackend final : public Backend {
 public:
  OpensslBackend(CtxBySize ctr, CtxBySize gcm) noexcept
      : ctr_(std::move(ctr)), gcm_(std::move(gcm)) {}

  std::string_view name() const noexcept override { return "openssl"; }
  std::string_view arch() const noexcept override { return "evp"; }

  // On an OpenSSL error (never seen with a working library) the call returns
  // false, as Backend says, and also leaves nothing usable in the failed op:
  // its cipher range is zeroed, an encryption tag zeroed, a decryption tag
  // complemented.

  bool AesCm(std::span<CryptoOp* const> ops) noexcept override {
    KeyedCache cache;
    bool ok = true;
    for (CryptoOp* op : ops) {
      const int i = KeySizeIndex(op->key->suite->key_len);
      if (!Ctr(i, cache, *op)) [[unlikely]] {
        if (i >= 0) cache.Forget(i);
        FailCipher(*op);
        ok = false;
      }
    }
    return ok;
  }

  bool HmacSha1(std::span<CryptoOp* const> ops) noexcept override {
    for (CryptoOp* op : ops) HmacSha1One(*op);
    return true;
  }

  bool GcmEncrypt(std::span<CryptoOp* const> ops) noexcept override {
    KeyedCache cache;
    bool ok = true;
    for (CryptoOp* op : ops) {
      const int i = KeySizeIndex(op->key->suite->key_len);
      if (!Seal(i, cache, *op)) [[unlikely]] {
        if (i >= 0) cache.Forget(i);
        FailCipher(*op);
        std::memset(op->tag, 0, sizeof(op->tag));
        if (op->tag_out != nullptr) std::memset(op->tag_out, 0, op->tag_len);
        ok = false;
      }
    }
    return ok;
  }

  bool GcmDecrypt(std::span<CryptoOp* const> ops) noexcept override {
    KeyedCache cache;
    bool ok = true;
    for (CryptoOp* op : ops) {
      const int i = KeySizeIndex(op->key->suite->key_len);
      switch (Open(i, cache, *op)) {
        case OpenResult::kAuthentic:
          break;  // op->tag still equals the received tag
        case OpenResult::kError:
          if (i >= 0) cache.Forget(i);
          FailCipher(*op);
          ok = false;
          [[fallthrough]];
        case OpenResult::kForged:
          // Differs from the received tag in every byte, so the caller's
          // comparison fails whatever length it compares.
          for (uint8_t& b : op->tag) b = static_cast<uint8_t>(~b);
          break;
      }
    }
    return ok;
  }

 private:
  enum class OpenResult { kAuthentic, kForged, kError };

  // Never leaves plaintext where ciphertext was asked for.
  static void FailCipher(CryptoOp& op) noexcept {
    std::memset(op.buf + op.cipher_offset, 0, op.cipher_len);
  }

  bool Ctr(int i, KeyedCache& cache, CryptoOp& op) noexcept {
    if (i < 0 || !FitsInt(op.cipher_len)) return false;
    if (op.cipher_len == 0) return true;
    EVP_CIPHER_CTX* ctx = ctr_[i].get();
    // CTR is a stream mode: one update does the whole range, nothing is held
    // back for a final call.
    if (EVP_EncryptInit_ex2(ctx, nullptr, cache.KeyFor(i, op.key), op.iv, nullptr) != 1) {
      return false;
    }
    uint8_t* p = op.buf + op.cipher_offset;
    int out_len = 0;
    return EVP_EncryptUpdate(ctx, p, &out_len, p, static_cast<int>(op.cipher_len)) == 1;
  }

  // Loads key and IV and feeds the AAD, in either direction.
  bool GcmStart(int i, KeyedCache& cache, const CryptoOp& op, bool encrypt) noexcept {
    if (i < 0 || !FitsInt(op.cipher_len) || (op.tag_len != 8 && op.tag_len != 16)) return false;
    const Aad aad = AadOf(op);
    if (!FitsInt(aad.len)) return false;
    EVP_CIPHER_CTX* ctx = gcm_[i].get();
    const uint8_t* key = cache.KeyFor(i, op.key);
    // The contexts keep the default 12-byte IV length.
    if (encrypt ? EVP_EncryptInit_ex2(ctx, nullptr, key, op.iv, nullptr) != 1
                : EVP_DecryptInit_ex2(ctx, nullptr, key, op.iv, nullptr) != 1) {
      return false;
    }
    int out_len = 0;
    return aad.len == 0 ||
           EVP_CipherUpdate(ctx, nullptr, &out_len, aad.data, static_cast<int>(aad.len)) == 1;
  }

  bool Seal(int i, KeyedCache& cache, CryptoOp& op) noexcept {
    if (!GcmStart(i, cache, op, /*encrypt=*/true)) return false;
    EVP_CIPHER_CTX* ctx = gcm_[i].get();
    uint8_t* p = op.buf + op.cipher_offset;
    int out_len = 0;
    if (op.cipher_len != 0 &&
        EVP_EncryptUpdate(ctx, p, &out_len, p, static_cast<int>(op.cipher_len)) != 1) {
      return false;
    }
    uint8_t none[16];  // GCM's final step writes no data
    return EVP_EncryptFinal_ex(ctx, none, &out_len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, op.tag_len,
                               op.tag_out != nullptr ? op.tag_out : op.tag) == 1;
  }

  OpenResult Open(int i, KeyedCache& cache, CryptoOp& op) noexcept {
    if (!GcmStart(i, cache, op, /*encrypt=*/false)) return OpenResult::kError;
    EVP_CIPHER_CTX* ctx = gcm_[i].get();
    uint8_t* p = op.buf + op.cipher_offset;
    int out_len = 0;
    if (op.cipher_len != 0 &&
        EVP_DecryptUpdate(ctx, p, &out_len, p, static_cast<int>(op.cipher_len)) != 1) {
      return OpenResult::kError;
    }
    // OpenSSL cannot hand out the tag it computes when decrypting; it checks
    // the expected one (here the first tag_len bytes of op.tag) in constant
    // time instead.
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, op.tag_len, op.tag) != 1) {
      return OpenResult::kError;
    }
    uint8_t none[16];
    return EVP_DecryptFinal_ex(ctx, none, &out_len) == 1 ? OpenResult::kAuthentic
                                                         : OpenResult::kForged;
  }

  CtxBySize ctr_;  // AES-128/192/256-CTR
  CtxBySize gcm_;  // AES-128/192/256-GCM
};

}  // namespace

std::unique_ptr<Backend> MakeOpensslBackend() {
  static constexpr std::array<const char*, 3> kCtr = {"AES-128-CTR", "AES-192-CTR",
                                                      "AES-256-CTR"};
  static constexpr std::array<const char*, 3> kGcm = {"AES-128-GCM", "AES-192-GCM",
                                                      "AES-256-GCM"};
  CtxBySize ctr;
  CtxBySize gcm;
  for (size_t i = 0; i < ctr.size(); ++i) {
    ctr[i] = NewCipherCtx(kCtr[i]);
    gcm[i] = NewCipherCtx(kGcm[i]);
    if (ctr[i] == nullptr || gcm[i] == nullptr) return nullptr;
  }
  return std::make_unique<OpensslBackend>(std::move(ctr), std::move(gcm));
}

}  // namespace sluice::crypto
