// The Intel ipsec-mb backend: multi-buffer AES-CTR and HMAC-SHA1 bursts, and
// AES-GCM through the direct API, on the widest code the CPU runs.
//
// Internal to src/crypto; reached through MakeBackend.
#ifndef SLUICE_SRC_CRYPTO_IPSECMB_BACKEND_H_
#define SLUICE_SRC_CRYPTO_IPSECMB_BACKEND_H_

#include <memory>

#include "sluice/crypto/backend.h"

namespace sluice::crypto {

// Null when ipsec-mb cannot initialise on this CPU.
std::unique_ptr<Backend> MakeIpsecMbBackend();

}  // namespace sluice::crypto

#endif  // SLUICE_SRC_CRYPTO_IPSECMB_BACKEND_H_
