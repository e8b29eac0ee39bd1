#include "sluice/crypto/session_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ipsecmb_manager.h"

namespace sluice::crypto {
namespace {

const EVP_CIPHER* CtrCipher(int key_len) {
  switch (key_len) {
    case 16: return EVP_aes_128_ctr();
    case 24: return EVP_aes_192_ctr();
    case 32: return EVP_aes_256_ctr();
    default: return nullptr;
  }
}

bool UsesHmac(const SuiteInfo& suite) {
  return suite.srtp_auth == AuthKind::kHmacSha1 || suite.srtcp_auth == AuthKind::kHmacSha1;
}

// The key's GCM tables: where its owner put room for them, else allocated
// for the key alone.
GcmTables& TablesOf(SessionKey& key) {
  if (key.gcm == nullptr) {
    key.own_gcm = std::make_unique<GcmTables>();
    key.gcm = key.own_gcm.get();
  }
  return *key.gcm;
}

}  // namespace

void Wipe(void* p, size_t n) noexcept { OPENSSL_cleanse(p, n); }

GcmTables::~GcmTables() { Wipe(data, sizeof data); }

SessionKey::~SessionKey() {
  own_gcm.reset();  // wipes the tables (tables in a context's block are its to wipe)
  Wipe(cm_salt, sizeof cm_salt);
  Wipe(aes_round_keys, sizeof aes_round_keys);
  Wipe(hmac_ipad_state, sizeof hmac_ipad_state);
  Wipe(hmac_opad_state, sizeof hmac_opad_state);
}

void DeriveKey(const SuiteInfo& suite, std::span<const uint8_t> master_key,
               std::span<const uint8_t> master_salt, KeyLabel label,
               std::span<uint8_t> out, Aes192Kdf kdf) {
  // RFC 3711 §4.3.1: x = key_id XOR master_salt, key_id = label || r with r = 0
  // (rate 0), right-aligned in the 112-bit salt, so the label lands in byte 7.
  // A 96-bit GCM salt is padded with two zero bytes (RFC 7714 §11).
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 32> prf_key{};
  size_t prf_key_len = master_key.size();
  std::memcpy(prf_key.data(), master_key.data(), master_key.size());
  if (kdf == Aes192Kdf::kLibsrtpLegacy && master_key.size() == 24 && master_salt.size() == 14) {
    // libsrtp2 before #763's fix: key || salt || zeros read as an AES-256
    // key (32 bytes) and its 14-byte salt.
    std::memcpy(prf_key.data() + 24, master_salt.data(), 8);
    std::memcpy(iv.data(), master_salt.data() + 8, 6);
    prf_key_len = 32;
  } else {
    std::memcpy(iv.data(), master_salt.data(), std::min<size_t>(master_salt.size(), 14));
  }
  iv[7] ^= static_cast<uint8_t>(label);
  // The PRF output is the AES-CM keystream: encrypt zeros from IV = x * 2^16.
  std::memset(out.data(), 0, out.size());
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  const bool ok = ctx != nullptr &&
                  EVP_EncryptInit_ex(ctx, CtrCipher(static_cast<int>(prf_key_len)), nullptr,
                                     prf_key.data(), iv.data()) == 1 &&
                  EVP_EncryptUpdate(ctx, out.data(), &n, out.data(),
                                    static_cast<int>(out.size())) == 1;
  EVP_CIPHER_CTX_free(ctx);
  Wipe(iv.data(), iv.size());
  Wipe(prf_key.data(), prf_key.size());
  if (!ok) {
    // Never leave a predictable key behind: an all-zero key is refused by the
    // caller's length checks long before here, so this is an internal fault.
    std::abort();
  }
  (void)suite;
}

int SessionKey::hot_lines() const noexcept {
  size_t end = offsetof(SessionKey, hmac_ipad_state);  // salt words, tables, suite
  if (suite->cipher == CipherKind::kAesCm) {
    end = offsetof(SessionKey, aes_round_keys) + 16 * (suite->key_len / 4 + 7);  // Nr + 1
  } else if (UsesHmac(*suite)) {
    end = offsetof(SessionKey, hmac_opad_state) + sizeof hmac_opad_state;
  }
  return static_cast<int>((end + 63) / 64);
}

void PrepareSessionKey(SessionKey& key, std::span<const uint8_t> enc_key,
                       std::span<const uint8_t> auth_key) {
  const SuiteInfo& suite = *key.suite;
  IMB_MGR* mgr = ControlThreadManager();
  if (suite.cipher == CipherKind::kAesCm) {
    alignas(16) uint8_t dec_round_keys[16 * 15];
    switch (suite.key_len) {
      case 16: IMB_AES_KEYEXP_128(mgr, enc_key.data(), key.aes_round_keys, dec_round_keys); break;
      case 24: IMB_AES_KEYEXP_192(mgr, enc_key.data(), key.aes_round_keys, dec_round_keys); break;
      case 32: IMB_AES_KEYEXP_256(mgr, enc_key.data(), key.aes_round_keys, dec_round_keys); break;
    }
    Wipe(dec_round_keys, sizeof dec_round_keys);
  } else if (suite.cipher == CipherKind::kAesGcm) {
    std::memcpy(key.aes_round_keys, enc_key.data(), suite.key_len);
    GcmTables& tables = TablesOf(key);
    if (suite.key_len == 16) {
      IMB_AES128_GCM_PRE(mgr, enc_key.data(), GcmKeyOf(tables));
    } else {
      IMB_AES256_GCM_PRE(mgr, enc_key.data(), GcmKeyOf(tables));
    }
  }
  if (UsesHmac(suite)) {
    // RFC 2104: H(K ^ opad, H(K ^ ipad, m)); the first block of each is the
    // same for every packet, so its SHA-1 state is computed once here.
    const size_t n = std::min<size_t>(auth_key.size(), suite.auth_key_len);
    alignas(16) uint8_t block[64];
    std::memset(block, 0x36, sizeof block);
    for (size_t i = 0; i < n; ++i) block[i] ^= auth_key[i];
    IMB_SHA1_ONE_BLOCK(mgr, block, key.hmac_ipad_state);
    std::memset(block, 0x5c, sizeof block);
    for (size_t i = 0; i < n; ++i) block[i] ^= auth_key[i];
    IMB_SHA1_ONE_BLOCK(mgr, block, key.hmac_opad_state);
    Wipe(block, sizeof block);
  }
}

void CopyPreparedKey(const SessionKey& from, SessionKey& to) {
  to.suite = from.suite;
  std::memcpy(to.cm_salt, from.cm_salt, sizeof to.cm_salt);
  std::memcpy(to.hmac_ipad_state, from.hmac_ipad_state, sizeof to.hmac_ipad_state);
  std::memcpy(to.hmac_opad_state, from.hmac_opad_state, sizeof to.hmac_opad_state);
  std::memcpy(to.aes_round_keys, from.aes_round_keys, sizeof to.aes_round_keys);
  if (from.gcm != nullptr) std::memcpy(TablesOf(to).data, from.gcm->data, sizeof from.gcm->data);
}

bool SamePreparedKey(const SessionKey& a, const SessionKey& b) noexcept {
  // The salt, the pad states and the AES key bytes (the schedule's first
  // round key, or AES-GCM's key) determine everything else.
  if (a.suite->key_len != b.suite->key_len) return false;
  const bool salt = CRYPTO_memcmp(a.cm_salt, b.cm_salt, sizeof a.cm_salt) == 0;
  const bool ipad = CRYPTO_memcmp(a.hmac_ipad_state, b.hmac_ipad_state, 20) == 0;
  const bool opad = CRYPTO_memcmp(a.hmac_opad_state, b.hmac_opad_state, 20) == 0;
  const bool key = CRYPTO_memcmp(a.enc_key(), b.enc_key(), a.suite->key_len) == 0;
  return salt & ipad & opad & key;
}

absl::Status DeriveSessionKeysInto(const SuiteInfo& suite, std::span<const uint8_t> master_key,
                                   std::span<const uint8_t> master_salt, SessionKey& srtp,
                                   SessionKey& srtcp, Aes192Kdf kdf) {
  if (master_key.size() != suite.key_len) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(suite.name), " needs a ", suite.key_len,
                                                   "-byte master key, got ",
                                                   master_key.size()));
  }
  if (master_salt.size() != suite.salt_len) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(suite.name), " needs a ", suite.salt_len,
                                                   "-byte master salt, got ",
                                                   master_salt.size()));
  }
  struct Labels {
    SessionKey* key;
    KeyLabel enc, auth, salt;
  };
  // The session encryption and authentication keys pass through here on
  // their way into the prepared forms, and are wiped.
  uint8_t enc_key[32];
  uint8_t auth_key[20];
  for (const Labels& l :
       {Labels{&srtp, KeyLabel::kSrtpEncryption, KeyLabel::kSrtpAuthentication,
               KeyLabel::kSrtpSalt},
        Labels{&srtcp, KeyLabel::kSrtcpEncryption, KeyLabel::kSrtcpAuthentication,
               KeyLabel::kSrtcpSalt}}) {
    l.key->suite = &suite;
    const std::span<uint8_t> enc(enc_key, suite.key_len);
    const std::span<uint8_t> auth(auth_key, suite.auth_key_len);
    DeriveKey(suite, master_key, master_salt, l.enc, enc, kdf);
    // Into the counter block's words, whose bytes after the salt stay zero.
    DeriveKey(suite, master_key, master_salt, l.salt, {l.key->salt(), suite.salt_len}, kdf);
    if (suite.auth_key_len > 0) DeriveKey(suite, master_key, master_salt, l.auth, auth, kdf);
    PrepareSessionKey(*l.key, enc, auth);
  }
  Wipe(enc_key, sizeof enc_key);
  Wipe(auth_key, sizeof auth_key);
  return absl::OkStatus();
}

absl::StatusOr<SessionKeys> DeriveSessionKeys(const SuiteInfo& suite,
                                              std::span<const uint8_t> master_key,
                                              std::span<const uint8_t> master_salt,
                                              Aes192Kdf kdf) {
  SessionKeys keys;
  keys.srtp = std::make_unique<SessionKey>();
  keys.srtcp = std::make_unique<SessionKey>();
  if (absl::Status s = DeriveSessionKeysInto(suite, master_key, master_salt, *keys.srtp,
                                             *keys.srtcp, kdf);
      !s.ok()) {
    return s;
  }
  return keys;
}

}  // namespace sluice::crypto
