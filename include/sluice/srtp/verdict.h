// What happened to one packet in a protect or unprotect burst.
//
// Any thread. Each value other than kOk is a drop reason with its own counter.
#ifndef SLUICE_SRTP_VERDICT_H_
#define SLUICE_SRTP_VERDICT_H_

#include <cstdint>

namespace sluice::srtp {

enum class Verdict : uint8_t {
  kOk = 0,
  kMalformed,          // not a well-formed RTP/RTCP packet for this context
  kAuthFailed,         // tag did not verify
  kReplayed,           // index already seen (RFC 3711 §3.3.2)
  kTooOld,             // index left behind the replay window
  kUnknownMki,         // no master key with the packet's MKI
  kLifetimeExhausted,  // master key used for as many packets as allowed
  kNoTailroom,         // buffer too small for the tag (protect)
  kStreamLimit,        // more SSRCs than the context keeps state for
  kCryptoError,        // the crypto library refused the burst (fail closed)
  kKeyRetired,         // the replaced master key's MKI after the re-key overlap
};
inline constexpr int kVerdictCount = 11;

// Stable names for counters and logs ("ok", "auth_failed", ...).
const char* VerdictName(Verdict v) noexcept;

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_VERDICT_H_
