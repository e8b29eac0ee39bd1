#include "sluice/dtls/setup_role.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sluice::dtls {
namespace {

constexpr absl::string_view kSetupNames[] = {"active", "passive", "actpass", "holdconn"};

}  // namespace

absl::string_view SetupName(Setup setup) noexcept {
  return kSetupNames[static_cast<int>(setup)];
}

std::optional<Setup> SetupFromName(absl::string_view name) noexcept {
  for (int i = 0; i < 4; ++i) {
    if (absl::EqualsIgnoreCase(name, kSetupNames[i])) return static_cast<Setup>(i);
  }
  return std::nullopt;
}

absl::string_view RoleName(Role role) noexcept {
  return role == Role::kClient ? "client" : "server";
}

Setup SetupOf(Role role) noexcept {
  return role == Role::kClient ? Setup::kActive : Setup::kPassive;
}

absl::StatusOr<Role> ResolveRole(Setup peer, Setup local) {
  if (peer == Setup::kHoldconn || local == Setup::kHoldconn) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setup: ", peer == Setup::kHoldconn ? "the peer" : "Sluice",
        " is holdconn, which opens no DTLS connection (RFC 4145 §4)"));
  }
  if (peer == local && peer != Setup::kActpass) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setup: both sides are ", SetupName(peer), ", so ",
        peer == Setup::kActive ? "nobody would answer the handshake"
                               : "nobody would open the handshake",
        " (RFC 4145 §4: one side is active, the other passive)"));
  }
  switch (local) {
    case Setup::kActive:
      return Role::kClient;
    case Setup::kPassive:
      return Role::kServer;
    default:
      // RFC 5763 §5: an answerer to actpass is RECOMMENDED to be active.
      return peer == Setup::kActive ? Role::kServer : Role::kClient;
  }
}

}  // namespace sluice::dtls
