// Who opens the DTLS handshake: the SDP `setup` attribute (RFC 4145 §4, with
// RFC 5763 §5's rules for DTLS-SRTP) and the DTLS role it gives Sluice.
//
// Any thread. Pure functions; errors say which combination was refused.
#ifndef SLUICE_DTLS_SETUP_ROLE_H_
#define SLUICE_DTLS_SETUP_ROLE_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice::dtls {

// RFC 4145 §4: a=setup values.
enum class Setup : uint8_t { kActive, kPassive, kActpass, kHoldconn };

// DTLS role: the client sends the ClientHello (setup:active), the server
// answers it (setup:passive).
enum class Role : uint8_t { kClient, kServer };

absl::string_view SetupName(Setup setup) noexcept;  // "active", "passive", ...
// Case-insensitive, as SDP attribute values of RFC 4145 are tokens.
std::optional<Setup> SetupFromName(absl::string_view name) noexcept;
absl::string_view RoleName(Role role) noexcept;      // "client", "server"
// The setup value that announces a role: client → active, server → passive.
Setup SetupOf(Role role) noexcept;

// Sluice's role from the peer's setup and Sluice's own:
//   local actpass (Sluice has not committed: it answers the peer's offer, or
//   offered actpass and reads the answer):
//     peer actpass → client (RFC 5763 §5: setup:active is RECOMMENDED
//                   for the answerer: the handshake starts with the answer)
//     peer active  → server
//     peer passive → client
//   local active  with peer passive or actpass → client
//   local passive with peer active or actpass  → server
// Refused (kInvalidArgument): either side holdconn (RFC 4145 §4: no
// connection), both active and both passive (nobody would listen, or
// nobody would open the handshake).
absl::StatusOr<Role> ResolveRole(Setup peer, Setup local = Setup::kActpass);

}  // namespace sluice::dtls

#endif  // SLUICE_DTLS_SETUP_ROLE_H_
