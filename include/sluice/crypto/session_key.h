// Session keys: what RFC 3711 §4.3 derives from one master key for SRTP or for
// SRTCP, prepared for the data plane (AES round keys, HMAC-SHA1 inner and outer
// states, GCM hash tables), so no packet ever pays for key set-up.
//
// Built on the control thread (DeriveSessionKeys); immutable afterwards and
// read by any number of workers. Wiped on destruction. Never printed.
#ifndef SLUICE_CRYPTO_SESSION_KEY_H_
#define SLUICE_CRYPTO_SESSION_KEY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/crypto/suite.h"

namespace sluice::crypto {

// RFC 3711 §4.3.2 key derivation labels.
enum class KeyLabel : uint8_t {
  kSrtpEncryption = 0x00,
  kSrtpAuthentication = 0x01,
  kSrtpSalt = 0x02,
  kSrtcpEncryption = 0x03,
  kSrtcpAuthentication = 0x04,
  kSrtcpSalt = 0x05,
};

// AES-GCM's round keys and GHASH tables (about 1 KiB), in the crypto
// library's own layout, which only src/crypto/ reads (it checks there that
// they fit): only GCM keys have them, so they live apart from SessionKey.
// Wiped on destruction.
struct alignas(64) GcmTables {
  static constexpr size_t kBytes = 1024;
  alignas(64) uint8_t data[kBytes];

  GcmTables() = default;
  GcmTables(const GcmTables&) = delete;
  GcmTables& operator=(const GcmTables&) = delete;
  ~GcmTables();
};

// What protect and unprotect read comes first: the salt words, the suite,
// the tables' address, the HMAC states and then the AES round keys, so that
// a packet reads the first hot_lines() cache lines and no more: four for
// AES-128 with HMAC-SHA1 (bytes 0 to 255), five for AES-192/256, one for
// AES-GCM (whose tables live apart), two for NULL with HMAC-SHA1.
// Context::PrefetchRtp loads exactly those. The derived authentication key
// itself is not kept: the HMAC states are all a packet needs.
struct alignas(64) SessionKey {
  // The session salt (14 bytes for AES-CM and NULL, 12 for AES-GCM), then
  // zeros: for AES-CM the two 64-bit words of the counter block it starts,
  // so building each packet's IV is two XORs.
  uint64_t cm_salt[2] = {0, 0};
  // AES-GCM: round keys and hash tables (null for other ciphers): in the
  // owning context's block, or in own_gcm.
  GcmTables* gcm = nullptr;
  const SuiteInfo* suite = nullptr;
  // HMAC-SHA1: SHA-1 state after one block of (key ^ ipad) and (key ^ opad):
  // five host-order 32-bit words, read without alignment.
  uint8_t hmac_ipad_state[20] = {};
  uint8_t hmac_opad_state[20] = {};
  // Where PrepareSessionKey put the GCM tables when no one else provided
  // room for them (a key made on its own rather than inside a Context).
  std::unique_ptr<GcmTables> own_gcm;
  // AES-CM: expanded encryption round keys (10, 12 or 14 rounds: 176, 208
  // or 240 bytes used), whose first key_len bytes are the cipher key itself
  // (FIPS 197 §5.2). AES-GCM, whose schedule is in `gcm`, keeps its key's
  // bytes here too. enc_key() reads them for backends keyed per packet.
  alignas(16) uint8_t aes_round_keys[16 * 15] = {};

  // Cache lines from the start that protect and unprotect read for this key.
  int hot_lines() const noexcept;
  // The session salt's bytes (suite->salt_len of them).
  const uint8_t* salt() const noexcept { return reinterpret_cast<const uint8_t*>(cm_salt); }
  uint8_t* salt() noexcept { return reinterpret_cast<uint8_t*>(cm_salt); }
  // The session encryption key's bytes (suite->key_len of them).
  const uint8_t* enc_key() const noexcept { return aes_round_keys; }

  SessionKey() = default;
  SessionKey(const SessionKey&) = delete;
  SessionKey& operator=(const SessionKey&) = delete;
  ~SessionKey();
};

static_assert(offsetof(SessionKey, aes_round_keys) + 176 <= 4 * 64,
              "AES-128 with HMAC-SHA1 must read four cache lines of its session key");
static_assert(offsetof(SessionKey, aes_round_keys) + 240 <= 5 * 64,
              "AES-256 with HMAC-SHA1 must read five cache lines of its session key");
static_assert(sizeof(SessionKey) == 5 * 64);

// SRTP and SRTCP session keys from one master key.
struct SessionKeys {
  std::unique_ptr<SessionKey> srtp;
  std::unique_ptr<SessionKey> srtcp;
};

// How AES-192 session keys are derived from their master key. Other key
// sizes have one derivation and ignore it.
//  - kRfc6188: RFC 6188 §4, the AES-192-CM PRF keyed with the master key.
//  - kLibsrtpLegacy: what libsrtp2 before cisco/libsrtp#763 was fixed (2.x up
//    to 2.7.0, Debian 12's 2.5.0) does: the AES-256-CM PRF keyed with the
//    24-byte master key followed by master salt bytes 0-7, its IV salt
//    master salt bytes 8-13 followed by eight zero bytes (label at byte 7,
//    as always). The same master key gives other session keys, so the two
//    derivations never interoperate.
enum class Aes192Kdf : uint8_t { kRfc6188, kLibsrtpLegacy };
// "rfc6188" and "libsrtp-legacy", as settings and requests spell them
// (inline: the configuration reads them without the crypto library).
inline std::optional<Aes192Kdf> ParseAes192Kdf(std::string_view name) {
  if (name == "rfc6188") return Aes192Kdf::kRfc6188;
  if (name == "libsrtp-legacy") return Aes192Kdf::kLibsrtpLegacy;
  return std::nullopt;
}

// RFC 3711 §4.3.1 with key derivation rate 0: the AES-CM PRF keyed with the
// master key (AES-128/192/256 per RFC 6188 §4), IV = (master salt, padded to
// 14 bytes for GCM as RFC 7714 §11 says) XOR label at byte 7. Writes `out`.
// An AES-192 master key with kLibsrtpLegacy takes the derivation above.
void DeriveKey(const SuiteInfo& suite, std::span<const uint8_t> master_key,
               std::span<const uint8_t> master_salt, KeyLabel label,
               std::span<uint8_t> out, Aes192Kdf kdf = Aes192Kdf::kRfc6188);

// Derives and prepares both sets of session keys into `srtp` and `srtcp`
// (fresh SessionKeys; for AES-GCM with `gcm` pointing at room for the
// tables, or null to have them allocated). Fails when the key or salt
// lengths do not match the suite.
absl::Status DeriveSessionKeysInto(const SuiteInfo& suite, std::span<const uint8_t> master_key,
                                   std::span<const uint8_t> master_salt, SessionKey& srtp,
                                   SessionKey& srtcp, Aes192Kdf kdf = Aes192Kdf::kRfc6188);
// The same, each key in its own allocation.
absl::StatusOr<SessionKeys> DeriveSessionKeys(const SuiteInfo& suite,
                                              std::span<const uint8_t> master_key,
                                              std::span<const uint8_t> master_salt,
                                              Aes192Kdf kdf = Aes192Kdf::kRfc6188);

// Fills the prepared fields (AES round keys, HMAC states, GCM tables) of a
// key whose suite and salt are set, from its session encryption and
// authentication keys (key_len and auth_key_len bytes; a shorter
// authentication key is taken as padded with zeros), which the caller wipes. DeriveSessionKeys calls it; tests with raw known-answer keys call it
// directly.
void PrepareSessionKey(SessionKey& key, std::span<const uint8_t> enc_key,
                       std::span<const uint8_t> auth_key);

// Copies a prepared key into a fresh one (whose `gcm`, for AES-GCM, points
// at room for the tables, or is null to have them allocated): how a new
// context keeps accepting a previous master key without the master key.
void CopyPreparedKey(const SessionKey& from, SessionKey& to);

// Whether two prepared keys are the same key (constant time over the
// material).
bool SamePreparedKey(const SessionKey& a, const SessionKey& b) noexcept;

// Wipes memory so the compiler cannot elide it (OPENSSL_cleanse).
void Wipe(void* p, size_t n) noexcept;

}  // namespace sluice::crypto

#endif  // SLUICE_CRYPTO_SESSION_KEY_H_
