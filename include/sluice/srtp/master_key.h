// A master key as the SIP side negotiated it (RFC 3711 §3.2.1, RFC 4568 §6.1):
// suite, key, salt, lifetime and MKI.
//
// Control thread. Copyable; every copy wipes itself when destroyed. Never
// printed: there is deliberately no operator<< or formatter besides
// FormatSdesCrypto, which the protocol requires.
#ifndef SLUICE_SRTP_MASTER_KEY_H_
#define SLUICE_SRTP_MASTER_KEY_H_

#include <array>
#include <cstdint>
#include <span>

#include "sluice/crypto/suite.h"

namespace sluice::srtp {

inline constexpr int kMaxMkiLen = 4;

struct MasterKey {
  crypto::Suite suite = crypto::Suite::kAesCm128HmacSha1_80;
  std::array<uint8_t, 32> key{};   // key_len bytes used
  std::array<uint8_t, 14> salt{};  // salt_len bytes used
  // Packets this key may protect (SRTP and SRTCP counted apart); 0 means the
  // suite's maximum (2^48 SRTP, 2^31 SRTCP).
  uint64_t lifetime = 0;
  // MKI carried in each packet, big-endian, mki_len bytes (0: no MKI).
  std::array<uint8_t, kMaxMkiLen> mki{};
  uint8_t mki_len = 0;

  const crypto::SuiteInfo& info() const { return crypto::GetSuiteInfo(suite); }
  std::span<const uint8_t> key_bytes() const { return {key.data(), info().key_len}; }
  std::span<const uint8_t> salt_bytes() const { return {salt.data(), info().salt_len}; }
  std::span<const uint8_t> mki_bytes() const { return {mki.data(), mki_len}; }

  // Same key material (the two-time-pad check): equal key size, key bytes and
  // salt bytes, whatever the suites' tag lengths.
  bool SameKeyAs(const MasterKey& other) const;

  MasterKey() = default;
  MasterKey(const MasterKey&) = default;
  MasterKey& operator=(const MasterKey&) = default;
  ~MasterKey();
};

// What the key-reuse check remembers of a master key instead of the key:
// keyed digests (HMAC-SHA-256 under a secret this process draws when first
// asked, first 16 bytes) of the key size and bytes with the first 12 salt
// bytes, which every suite's salt has, and, for 14-byte salts, with all 14.
// Two fingerprints match exactly when MasterKey::SameKeyAs would say so
// (but for a chance of 2^-128). The digests say nothing about the key to
// anyone without the secret, which never leaves the process.
class KeyFingerprint {
 public:
  explicit KeyFingerprint(const MasterKey& key);
  bool Matches(const KeyFingerprint& other) const;
  // A hash of the key and the salt bytes every suite has: equal for two
  // fingerprints that match, so a table of fingerprints can be keyed by it.
  // As secret as the fingerprint itself.
  uint64_t bucket() const;

 private:
  std::array<uint8_t, 16> short_salt_{};
  std::array<uint8_t, 16> full_salt_{};
  bool has_full_salt_ = false;
};

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_MASTER_KEY_H_
