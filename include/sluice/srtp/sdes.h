// SDES crypto attributes (RFC 4568 §9.1), as they appear in SDP after
// `a=crypto:`, parsed into a master key and formatted back.
//
// Control thread. Errors name what is wrong, never the key.
//
//   [<tag> ]<suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]
//
// lifetime is decimal or 2^n; MKI length is 1 to 4 bytes. Exactly one inline
// key. Session parameters: KDR=0 is accepted (any other rate is refused:
// Sluice derives keys once, with rate 0), UNENCRYPTED_SRTCP, WSH=<n> (window
// size hint, 64 or more); UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP and FEC_ORDER/
// FEC_KEY are refused as unsupported.
#ifndef SLUICE_SRTP_SDES_H_
#define SLUICE_SRTP_SDES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::srtp {

struct SdesCrypto {
  std::optional<uint32_t> tag;  // present only when the input had one
  MasterKey key;
  bool unencrypted_srtcp = false;
  std::optional<uint32_t> window_size_hint;
};

// Parses "<suite> inline:..." or, with a leading decimal tag, "<tag> <suite> inline:...".
absl::StatusOr<SdesCrypto> ParseSdesCrypto(absl::string_view value);

// Formats "<suite> inline:<base64>[|2^n or decimal lifetime][|mki:len]" plus
// session parameters (and "<tag> " first when crypto.tag is set). The result
// carries key material: it goes to the protocol peer and nowhere else.
std::string FormatSdesCrypto(const SdesCrypto& crypto);

// A fresh master key for `suite`: key and salt from OpenSSL's CSPRNG
// (RAND_priv_bytes), no tag, lifetime, MKI or session parameters. Fails only
// when the CSPRNG does ("the CSPRNG failed"). The key wipes itself when the
// result is destroyed.
absl::StatusOr<SdesCrypto> GenerateSdesCrypto(crypto::Suite suite);

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_SDES_H_
