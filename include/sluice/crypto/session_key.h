// Session keys: what RFC 3711 §4.3 derives from one master key for SRTP or for
// SRTCP, prepared for the data plane (AES round keys, HMAC-SHA1 inner and outer
// states, GCM hash tables), so no packet ever pays for key set-up.
//
// Built on the control thread (DeriveSessionKeys); immutable afterwards and
// read by any number of workers. Wiped on destruction. Never printed.
#ifndef SLUICE_CRYPTO_SESSION_KEY_H_
#define SLUICE_CRYPTO_SESSION_KEY_H_

#include <intel-ipsec-mb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

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

// AES-GCM's round keys and GHASH tables for ipsec-mb (about 1 KiB): only
// GCM keys have them, so they live apart from SessionKey. Wiped on
// destruction.
struct alignas(64) GcmTables {
  struct gcm_key_data data;

  GcmTables() = default;
  GcmTables(const GcmTables&) = delete;
  GcmTables& operator=(const GcmTables&) = delete;
  ~GcmTables();
};

// What protect and unprotect read comes first: the salt words, the suite,
// the tables' address and the AES round keys, then the HMAC states: the first
// five cache lines (bytes 0 to 311) are everything a packet of any suite
// reads here, and what Context::PrefetchRtp loads.
struct alignas(64) SessionKey {
  // AES-CM: the salt as the two 64-bit words of the counter block it starts
  // (bytes 0-7, and bytes 8-13 with 14-15 zero), so building each packet's IV
  // is two XORs.
  uint64_t cm_salt[2];
  // AES-GCM: round keys and hash tables (null for other ciphers).
  std::unique_ptr<GcmTables> gcm;
  const SuiteInfo* suite;
  // AES-CM: expanded encryption round keys (10, 12 or 14 rounds).
  alignas(16) uint8_t aes_round_keys[16 * 15];
  // HMAC-SHA1: SHA-1 state after one block of (key ^ ipad) and (key ^ opad),
  // as IMB_SHA1_ONE_BLOCK writes it: five host-order 32-bit words (ipsec-mb
  // reads them without alignment; packed, the two end inside line 4).
  alignas(16) uint8_t hmac_ipad_state[20];
  uint8_t hmac_opad_state[20];

  uint8_t enc_key[32];   // key_len bytes used
  uint8_t salt[14];      // salt_len bytes used
  uint8_t auth_key[20];  // auth_key_len bytes used

  SessionKey() = default;
  SessionKey(const SessionKey&) = delete;
  SessionKey& operator=(const SessionKey&) = delete;
  ~SessionKey();
};

static_assert(offsetof(SessionKey, hmac_opad_state) + 20 <= 5 * 64,
              "what a packet reads of its session key must stay in five cache lines");

// SRTP and SRTCP session keys from one master key.
struct SessionKeys {
  std::unique_ptr<SessionKey> srtp;
  std::unique_ptr<SessionKey> srtcp;
};

// RFC 3711 §4.3.1 with key derivation rate 0: the AES-CM PRF keyed with the
// master key (AES-128/192/256 per RFC 6188 §4), IV = (master salt, padded to
// 14 bytes for GCM as RFC 7714 §11 says) XOR label at byte 7. Writes `out`.
void DeriveKey(const SuiteInfo& suite, std::span<const uint8_t> master_key,
               std::span<const uint8_t> master_salt, KeyLabel label,
               std::span<uint8_t> out);

// Derives and prepares both sets of session keys. Fails when the key or salt
// lengths do not match the suite.
absl::StatusOr<SessionKeys> DeriveSessionKeys(const SuiteInfo& suite,
                                              std::span<const uint8_t> master_key,
                                              std::span<const uint8_t> master_salt);

// Fills the prepared fields (AES round keys, HMAC states, GCM tables) from
// key.suite, key.enc_key and key.auth_key. DeriveSessionKeys calls it; tests
// with raw known-answer keys call it directly.
void PrepareSessionKey(SessionKey& key);

// Wipes memory so the compiler cannot elide it (OPENSSL_cleanse).
void Wipe(void* p, size_t n) noexcept;

}  // namespace sluice::crypto

#endif  // SLUICE_CRYPTO_SESSION_KEY_H_
