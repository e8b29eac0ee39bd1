// Which crypto backend a worker runs (the `crypto.backend` setting): a value
// the control plane reads and prints, without the backends themselves.
//
// Any thread. No allocation except the error message of a bad name.
#ifndef SLUICE_CRYPTO_BACKEND_KIND_H_
#define SLUICE_CRYPTO_BACKEND_KIND_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::crypto {

// kAuto picks ipsec-mb (which itself picks AVX-512/AVX2/AVX/SSE at run time).
enum class BackendKind : uint8_t { kAuto, kIpsecMb, kOpenssl };

// "auto", "ipsec-mb" or "openssl".
std::string_view BackendKindName(BackendKind kind) noexcept;
// Parses "auto", "ipsec-mb" or "openssl".
absl::StatusOr<BackendKind> BackendKindFromName(std::string_view name);

}  // namespace sluice::crypto

#endif  // SLUICE_CRYPTO_BACKEND_KIND_H_
