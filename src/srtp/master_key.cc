#include "sluice/srtp/master_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

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

// SHA256_Init/Update/Final are deprecated in OpenSSL 3.0, but they are the
// interface that can resume from a saved state: HMAC's two pad blocks are
// hashed once, so a fingerprint costs two short hashes, not a MAC fetch and
// set-up (a few microseconds, per key, on the control thread's create path).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

// HMAC-SHA-256 (RFC 2104) keyed with a secret drawn once, for the life of
// the process: the SHA-256 states after the inner and outer pad blocks.
struct FingerprintKey {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

const FingerprintKey& TheFingerprintKey() {
  static const FingerprintKey key = [] {
    unsigned char secret[32];
    // Without a working CSPRNG there is nothing safe to key with; the
    // control plane draws keys from the same source and could not run.
    if (RAND_priv_bytes(secret, sizeof secret) != 1) std::abort();
    unsigned char block[SHA256_CBLOCK];
    FingerprintKey k;
    std::memset(block, 0x36, sizeof block);
    for (size_t i = 0; i < sizeof secret; ++i) block[i] ^= secret[i];
    SHA256_Init(&k.inner);
    SHA256_Update(&k.inner, block, sizeof block);
    std::memset(block, 0x5c, sizeof block);
    for (size_t i = 0; i < sizeof secret; ++i) block[i] ^= secret[i];
    SHA256_Init(&k.outer);
    SHA256_Update(&k.outer, block, sizeof block);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(secret, sizeof secret);
    return k;
  }();
  return key;
}

void Digest(const MasterKey& key, size_t salt_len, std::array<uint8_t, 16>& out) {
  const crypto::SuiteInfo& info = key.info();
  uint8_t material[1 + 32 + 14];
  material[0] = static_cast<uint8_t>(info.key_len);
  std::copy_n(key.key.data(), info.key_len, material + 1);
  std::copy_n(key.salt.data(), salt_len, material + 1 + info.key_len);
  const FingerprintKey& k = TheFingerprintKey();
  SHA256_CTX ctx = k.inner;
  unsigned char inner[SHA256_DIGEST_LENGTH], mac[SHA256_DIGEST_LENGTH];
  SHA256_Update(&ctx, material, 1 + info.key_len + salt_len);
  SHA256_Final(inner, &ctx);
  ctx = k.outer;
  SHA256_Update(&ctx, inner, sizeof inner);
  SHA256_Final(mac, &ctx);
  std::copy_n(mac, out.size(), out.data());
  OPENSSL_cleanse(material, sizeof material);
  OPENSSL_cleanse(inner, sizeof inner);
  OPENSSL_cleanse(mac, sizeof mac);
  OPENSSL_cleanse(&ctx, sizeof ctx);
}

#pragma GCC diagnostic pop

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

uint64_t KeyFingerprint::bucket() const {
  uint64_t h;
  std::memcpy(&h, short_salt_.data(), sizeof h);
  return h;
}

}  // namespace sluice::srtp
