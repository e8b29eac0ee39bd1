#include "sluice/crypto/backend_kind.h"

#include "absl/strings/str_cat.h"

namespace sluice::crypto {

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
