// The encryption audit: how well a leg's media is protected, from what it
// is keyed with, for session.get/list, the metrics and [media]
// require_encryption.
//
// Control thread (pure functions). A level names what an eavesdropper or a
// forger on the leg's network gets: `plain` (media readable: no SRTP, or a
// NULL-cipher suite), `unauthenticated` (encrypted without an SRTP tag:
// AES_CM_128_NULL_AUTH, RFC 3711 §9.5 warns against it) or `encrypted`
// (encrypted and authenticated). Never looks at a key, only at suite names.
#ifndef SLUICE_CONTROL_ENCRYPTION_AUDIT_H_
#define SLUICE_CONTROL_ENCRYPTION_AUDIT_H_

#include <string_view>

#include "sluice/control/operations.h"

namespace sluice::control {

// Weakest first: a leg is as weak as its weaker direction, a call as its
// weaker leg.
enum class Encryption : uint8_t { kPlain, kUnauthenticated, kEncrypted };

std::string_view EncryptionName(Encryption level);

// One direction by its suite label: "plain", "passthrough" (the endpoints'
// own SRTP, relayed untouched: counted as encrypted), or an SDES suite name.
Encryption SuiteEncryption(std::string_view suite);

// A leg as it stands: its receive and send suites; a DTLS-SRTP leg is
// encrypted from the start (its media is never relayed before keys, and
// every DTLS-SRTP profile sluiced offers authenticates).
Encryption LegEncryption(std::string_view rx_suite, std::string_view tx_suite, bool dtls);

// A direction as a request asks for it (before any key is parsed: the
// suite is the first word of an SDES value). A suite name sluiced does not
// know counts as encrypted here: the request is refused with its own error.
Encryption SpecEncryption(const CryptoSpec& spec);

// A leg as a create request asks for it. A leg that awaits its answer
// (ng's offer) with no receive key yet is judged by what it sends with:
// its receive key comes with the answer.
Encryption RequestedLegEncryption(const LegRequest& leg);

inline Encryption Weaker(Encryption a, Encryption b) { return a < b ? a : b; }

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_ENCRYPTION_AUDIT_H_
