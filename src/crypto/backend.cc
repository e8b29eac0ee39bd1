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

std::string_view BackendKindName(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::kAuto: return "auto";
    case BackendKind::kIpsecMb: return "ipsec-mb";
    case BackendKind::kOpenssl: return "openssl";
  }
  return "auto";
}

absl::StatusOr<BackendKind> BackendKindFromName(std::string_view name) {
  for (BackendKind kind : {BackendKind::kAuto, BackendKind::kIpsecMb, BackendKind::kOpenssl}) {
    if (BackendKindName(kind) == name) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown crypto backend \"",
                                                 absl::string_view(name.data(), name.size()),
                                                 "\": expected auto, ipsec-mb or openssl"));
}

}  // namespace sluice::crypto
