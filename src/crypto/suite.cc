#include "sluice/crypto/suite.h"

#include <array>

namespace sluice::crypto {
namespace {

constexpr uint64_t kMaxSrtp = uint64_t{1} << 48;
constexpr uint64_t kMaxSrtcp = uint64_t{1} << 31;

constexpr auto kCm = CipherKind::kAesCm;
constexpr auto kGcm = CipherKind::kAesGcm;
constexpr auto kNoCipher = CipherKind::kNull;
constexpr auto kHmac = AuthKind::kHmacSha1;
constexpr auto kAead = AuthKind::kAead;
constexpr auto kNoAuth = AuthKind::kNull;

constexpr std::array<SuiteInfo, kSuiteCount> kSuites = {{
    // suite, name, cipher, srtp auth, srtcp auth, key, salt, auth key, srtp tag, srtcp tag
    {Suite::kAesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", kCm, kHmac, kHmac, 16, 14, 20, 10, 10, kMaxSrtp, kMaxSrtcp},
    // RFC 4568 §6.2.2: the 32-bit tag is for SRTP only; SRTCP keeps 80 bits.
    {Suite::kAesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", kCm, kHmac, kHmac, 16, 14, 20, 4, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kAes192CmHmacSha1_80, "AES_192_CM_HMAC_SHA1_80", kCm, kHmac, kHmac, 24, 14, 20, 10, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kAes192CmHmacSha1_32, "AES_192_CM_HMAC_SHA1_32", kCm, kHmac, kHmac, 24, 14, 20, 4, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kAes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80", kCm, kHmac, kHmac, 32, 14, 20, 10, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kAes256CmHmacSha1_32, "AES_256_CM_HMAC_SHA1_32", kCm, kHmac, kHmac, 32, 14, 20, 4, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kAeadAes128Gcm, "AEAD_AES_128_GCM", kGcm, kAead, kAead, 16, 12, 0, 16, 16, kMaxSrtp, kMaxSrtcp},
    {Suite::kAeadAes256Gcm, "AEAD_AES_256_GCM", kGcm, kAead, kAead, 32, 12, 0, 16, 16, kMaxSrtp, kMaxSrtcp},
    {Suite::kAeadAes128Gcm8, "AEAD_AES_128_GCM_8", kGcm, kAead, kAead, 16, 12, 0, 8, 8, kMaxSrtp, kMaxSrtcp},
    {Suite::kAeadAes256Gcm8, "AEAD_AES_256_GCM_8", kGcm, kAead, kAead, 32, 12, 0, 8, 8, kMaxSrtp, kMaxSrtcp},
    {Suite::kAesCm128NullAuth, "AES_CM_128_NULL_AUTH", kCm, kNoAuth, kHmac, 16, 14, 20, 0, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kNullHmacSha1_80, "NULL_HMAC_SHA1_80", kNoCipher, kHmac, kHmac, 16, 14, 20, 10, 10, kMaxSrtp, kMaxSrtcp},
    {Suite::kNullHmacSha1_32, "NULL_HMAC_SHA1_32", kNoCipher, kHmac, kHmac, 16, 14, 20, 4, 10, kMaxSrtp, kMaxSrtcp},
}};

constexpr bool TableInEnumOrder() {
  for (size_t i = 0; i < kSuites.size(); ++i) {
    if (static_cast<size_t>(kSuites[i].suite) != i) return false;
  }
  return true;
}
static_assert(TableInEnumOrder(), "kSuites must be indexed by Suite");

}  // namespace

std::span<const SuiteInfo> AllSuites() noexcept { return kSuites; }

const SuiteInfo& GetSuiteInfo(Suite suite) noexcept {
  return kSuites[static_cast<size_t>(suite)];
}

std::optional<Suite> SuiteFromName(std::string_view name) noexcept {
  for (const SuiteInfo& info : kSuites) {
    if (info.name == name) return info.suite;
  }
  return std::nullopt;
}

}  // namespace sluice::crypto
