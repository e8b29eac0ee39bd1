// The SRTP crypto suites Sluice speaks, by their SDES names (RFC 4568 §6.2,
// RFC 6188 §7.1, RFC 7714 §14.2), and what each one needs.
//
// Any thread. Constant tables; no allocation.
#ifndef SLUICE_CRYPTO_SUITE_H_
#define SLUICE_CRYPTO_SUITE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sluice::crypto {

enum class Suite : uint8_t {
  kAesCm128HmacSha1_80,
  kAesCm128HmacSha1_32,
  kAes192CmHmacSha1_80,
  kAes192CmHmacSha1_32,
  kAes256CmHmacSha1_80,
  kAes256CmHmacSha1_32,
  kAeadAes128Gcm,
  kAeadAes256Gcm,
  kAeadAes128Gcm8,
  kAeadAes256Gcm8,
  kAesCm128NullAuth,
  kNullHmacSha1_80,
  kNullHmacSha1_32,
};
inline constexpr int kSuiteCount = 13;

enum class CipherKind : uint8_t {
  kNull,   // payload left in clear
  kAesCm,  // AES in counter mode (RFC 3711 §4.1.1)
  kAesGcm, // AEAD AES-GCM (RFC 7714)
};

enum class AuthKind : uint8_t {
  kNull,      // no authentication tag
  kHmacSha1,  // HMAC-SHA1, truncated (RFC 3711 §4.2.1)
  kAead,      // the GCM tag
};

struct SuiteInfo {
  Suite suite;
  std::string_view name;  // exact SDES name
  CipherKind cipher;
  // SRTP and SRTCP authenticate differently only for AES_CM_128_NULL_AUTH:
  // RFC 3711 §3.4 makes SRTCP authentication mandatory, so its SRTCP uses
  // HMAC-SHA1-80 while its SRTP carries no tag.
  AuthKind srtp_auth;
  AuthKind srtcp_auth;
  uint8_t key_len;       // master key = session encryption key, bytes
  uint8_t salt_len;      // master salt = session salt: 14 (AES-CM, NULL), 12 (GCM)
  uint8_t auth_key_len;  // session authentication key: 20 for HMAC-SHA1, else 0
  uint8_t srtp_tag_len;  // bytes appended to each SRTP packet
  uint8_t srtcp_tag_len; // bytes appended to each SRTCP packet
  uint64_t max_srtp_packets;   // RFC 3711 §9.2: 2^48
  uint64_t max_srtcp_packets;  // RFC 3711 §9.2: 2^31

  // Bytes of key||salt in an SDES inline key.
  constexpr int key_salt_len() const { return key_len + salt_len; }
  constexpr bool is_aead() const { return cipher == CipherKind::kAesGcm; }
};

// Every suite, in enum order.
std::span<const SuiteInfo> AllSuites() noexcept;

const SuiteInfo& GetSuiteInfo(Suite suite) noexcept;

// Looks a suite up by its exact SDES name (case-sensitive, as RFC 4568 says).
std::optional<Suite> SuiteFromName(std::string_view name) noexcept;

inline std::string_view SuiteName(Suite suite) noexcept { return GetSuiteInfo(suite).name; }

}  // namespace sluice::crypto

#endif  // SLUICE_CRYPTO_SUITE_H_
