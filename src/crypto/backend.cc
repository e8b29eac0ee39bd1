#include "sluice/crypto/backend.h"

#include "absl/strings/str_cat.h"
#include "ipsecmb_backend.h"
#include "openssl_backend.h"

namespace sluice::crypto {

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind) {
  std::unique_ptr<Backend> backend;
  switch (kind) {
    case BackendKind::kAuto:
      // ipsec-mb where the CPU has AES-NI; without it ipsec-mb would fall back
      // to table-driven AES, and OpenSSL is the better portable choice.
      backend = MakeIpsecMbBackend();
      if (backend == nullptr || backend->arch() == "no-aesni") backend = MakeOpensslBackend();
      break;
    case BackendKind::kIpsecMb:
      backend = MakeIpsecMbBackend();
      break;
    case BackendKind::kOpenssl:
      backend = MakeOpensslBackend();
      break;
  }
  if (backend == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("crypto backend ", std::string(BackendKindName(kind)), " cannot start on this machine"));
  }
  return backend;
}

}  // namespace sluice::crypto
