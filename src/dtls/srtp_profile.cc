#include "sluice/dtls/srtp_profile.h"

namespace sluice::dtls {
namespace {

using crypto::Suite;

constexpr SrtpProfileInfo kProfiles[kSrtpProfileCount] = {
    {SrtpProfile::kAes128CmSha1_80, "SRTP_AES128_CM_SHA1_80", 0x0001, Suite::kAesCm128HmacSha1_80},
    {SrtpProfile::kAes128CmSha1_32, "SRTP_AES128_CM_SHA1_32", 0x0002, Suite::kAesCm128HmacSha1_32},
    {SrtpProfile::kAeadAes128Gcm, "SRTP_AEAD_AES_128_GCM", 0x0007, Suite::kAeadAes128Gcm},
    {SrtpProfile::kAeadAes256Gcm, "SRTP_AEAD_AES_256_GCM", 0x0008, Suite::kAeadAes256Gcm},
};

// RFC 5764 §4.1.2 spells the AES-CM profiles with HMAC in their names.
constexpr absl::string_view kRfcNames[kSrtpProfileCount] = {
    "SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AES128_CM_HMAC_SHA1_32", "SRTP_AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM"};

}  // namespace

std::span<const SrtpProfileInfo> AllSrtpProfiles() noexcept { return kProfiles; }

const SrtpProfileInfo& GetSrtpProfileInfo(SrtpProfile profile) noexcept {
  return kProfiles[static_cast<int>(profile)];
}

std::optional<SrtpProfile> SrtpProfileFromName(absl::string_view name) noexcept {
  for (int i = 0; i < kSrtpProfileCount; ++i) {
    if (name == kProfiles[i].name || name == kRfcNames[i]) return kProfiles[i].profile;
  }
  return std::nullopt;
}

std::optional<SrtpProfile> SrtpProfileFromId(uint16_t id) noexcept {
  for (const SrtpProfileInfo& info : kProfiles) {
    if (info.id == id) return info.profile;
  }
  return std::nullopt;
}

}  // namespace sluice::dtls
