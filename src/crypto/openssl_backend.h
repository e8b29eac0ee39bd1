// The portable crypto backend, on OpenSSL 3: EVP AES-CTR and AES-GCM, and
// HMAC-SHA1 resumed from the SessionKey's precomputed pad states. The fallback
// where ipsec-mb is not wanted; MakeBackend(BackendKind::kOpenssl) is the way
// in, this header is private to src/crypto.
//
// Same threading and allocation guarantees as Backend: one per thread, no
// allocation after construction.
#ifndef SLUICE_SRC_CRYPTO_OPENSSL_BACKEND_H_
#define SLUICE_SRC_CRYPTO_OPENSSL_BACKEND_H_

#include <memory>

#include "sluice/crypto/backend.h"

namespace sluice::crypto {

// Fetches AES-128/192/256 in CTR and GCM mode once and keeps a cipher context
// for each. Returns nullptr only when OpenSSL cannot fetch them (no default
// provider, or out of memory).
std::unique_ptr<Backend> MakeOpensslBackend();

}  // namespace sluice::crypto

#endif  // SLUICE_SRC_CRYPTO_OPENSSL_BACKEND_H_
