#include "sluice/srtp/master_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

namespace sluice::srtp {

bool MasterKey::SameKeyAs(const MasterKey& other) const {
  // Suites that differ only in tag length (…_80 and …_32), or in cipher with
  // the same key size, derive the same session keys from the same master key
  // and salt: for the two-time-pad check they are the same key. So compare
  // the key material, not the suite. The sizes are public (they follow from
  // the suite in the SDP); only the bytes need a constant-time comparison.
  const crypto::SuiteInfo& a = info();
  const crypto::SuiteInfo& b = other.info();
  if (a.key_len != b.key_len) return false;
  const size_t salt_len = std::min(a.salt_len, b.salt_len);
  const bool same_key = CRYPTO_memcmp(key.data(), other.key.data(), a.key_len) == 0;
  const bool same_salt = CRYPTO_memcmp(salt.data(), other.salt.data(), salt_len) == 0;
  return same_key & same_salt;  // both compared, whatever the first says
}

MasterKey::~MasterKey() {
  // OPENSSL_cleanse, unlike memset, is not removed as a dead store.
  OPENSSL_cleanse(key.data(), key.size());
  OPENSSL_cleanse(salt.data(), salt.size());
  OPENSSL_cleanse(mki.data(), mki.size());
}

namespace {

// The fingerprints' secret: drawn once, kept for the life of the process.
const std::array<uint8_t, 32>& FingerprintSecret() {
  static const std::array<uint8_t, 32> secret = [] {
    std::array<uint8_t, 32> s{};
    // Without a working CSPRNG there is nothing safe to key with; the
    // control plane draws keys from the same source and could not run.
    if (RAND_priv_bytes(s.data(), static_cast<int>(s.size())) != 1) std::abort();
    return s;
  }();
  return secret;
}

void Digest(const MasterKey& key, size_t salt_len, std::array<uint8_t, 16>& out) {
  const crypto::SuiteInfo& info = key.info();
  uint8_t material[1 + 32 + 14];
  material[0] = static_cast<uint8_t>(info.key_len);
  std::copy_n(key.key.data(), info.key_len, material + 1);
  std::copy_n(key.salt.data(), salt_len, material + 1 + info.key_len);
  const std::array<uint8_t, 32>& secret = FingerprintSecret();
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const bool ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), material,
                       1 + info.key_len + salt_len, mac, &mac_len) != nullptr;
  OPENSSL_cleanse(material, sizeof material);
  if (!ok || mac_len < out.size()) std::abort();  // OpenSSL cannot compute SHA-256
  std::copy_n(mac, out.size(), out.data());
  OPENSSL_cleanse(mac, sizeof mac);
}

constexpr size_t kShortSalt = 12;  // AES-GCM's; AES-CM and NULL have 14

}  // namespace

KeyFingerprint::KeyFingerprint(const MasterKey& key) {
  Digest(key, kShortSalt, short_salt_);
  has_full_salt_ = key.info().salt_len > kShortSalt;
  if (has_full_salt_) Digest(key, key.info().salt_len, full_salt_);
}

bool KeyFingerprint::Matches(const KeyFingerprint& other) const {
  // SameKeyAs compares the salt bytes both keys have.
  if (has_full_salt_ && other.has_full_salt_) {
    return CRYPTO_memcmp(full_salt_.data(), other.full_salt_.data(), full_salt_.size()) == 0;
  }
  return CRYPTO_memcmp(short_salt_.data(), other.short_salt_.data(), short_salt_.size()) == 0;
}

}  // namespace sluice::srtp
