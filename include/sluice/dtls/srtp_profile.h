// The DTLS-SRTP protection profiles Sluice negotiates (RFC 5764 §4.1.2,
// RFC 7714 §14.2), their names in OpenSSL's use_srtp configuration, and the
// Sluice suite each one keys.
//
// Any thread. Constant tables; no allocation.
#ifndef SLUICE_DTLS_SRTP_PROFILE_H_
#define SLUICE_DTLS_SRTP_PROFILE_H_

#include <cstdint>
#include <optional>
#include <span>

#include "absl/strings/string_view.h"
#include "sluice/crypto/suite.h"

namespace sluice::dtls {

enum class SrtpProfile : uint8_t {
  kAes128CmSha1_80,  // SRTP_AES128_CM_HMAC_SHA1_80, 0x0001
  kAes128CmSha1_32,  // SRTP_AES128_CM_HMAC_SHA1_32, 0x0002 (SRTCP keeps an 80-bit tag)
  kAeadAes128Gcm,    // SRTP_AEAD_AES_128_GCM, 0x0007
  kAeadAes256Gcm,    // SRTP_AEAD_AES_256_GCM, 0x0008
};
inline constexpr int kSrtpProfileCount = 4;

struct SrtpProfileInfo {
  SrtpProfile profile;
  absl::string_view name;  // OpenSSL's name: "SRTP_AES128_CM_SHA1_80"
  uint16_t id;            // on the wire, in the use_srtp extension
  crypto::Suite suite;    // what the exported keys key
};

// Every profile, in the default order of preference (the order above).
std::span<const SrtpProfileInfo> AllSrtpProfiles() noexcept;
const SrtpProfileInfo& GetSrtpProfileInfo(SrtpProfile profile) noexcept;
// By OpenSSL's name, or by RFC 5764's ("SRTP_AES128_CM_HMAC_SHA1_80");
// exact case.
std::optional<SrtpProfile> SrtpProfileFromName(absl::string_view name) noexcept;
std::optional<SrtpProfile> SrtpProfileFromId(uint16_t id) noexcept;

}  // namespace sluice::dtls

#endif  // SLUICE_DTLS_SRTP_PROFILE_H_
