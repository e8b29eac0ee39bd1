#include "sluice/srtp/master_key.h"

#include <openssl/crypto.h>

#include <algorithm>

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

}  // namespace sluice::srtp
