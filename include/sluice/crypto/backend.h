// The crypto backend interface: AES-CM keystream, HMAC-SHA1 and AES-GCM over a
// burst of packets at once.
//
// Data plane: a Backend belongs to one thread (ipsec-mb managers are not
// thread-safe); create one per worker with MakeBackend. Every call completes
// every operation it is given before it returns: no packet waits for lanes to
// fill. Does not allocate after construction.
#ifndef SLUICE_CRYPTO_BACKEND_H_
#define SLUICE_CRYPTO_BACKEND_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/crypto/backend_kind.h"
#include "sluice/crypto/session_key.h"

namespace sluice::crypto {

// The ipsec-mb backend's job array (src/crypto/cm_hmac_jobs.h): opaque
// outside src/crypto/ and the engine's protect path.
class CmHmacJobs;

// One packet's crypto work, prepared by the SRTP layer.
struct CryptoOp {
  const SessionKey* key;
  uint8_t* buf;  // the packet; ciphered in place

  // AES-CM and AES-GCM: the bytes [cipher_offset, cipher_offset + cipher_len)
  // are encrypted or decrypted in place.
  uint32_t cipher_offset;
  uint32_t cipher_len;

  // HMAC-SHA1: the bytes [auth_offset, auth_offset + auth_len) are
  // authenticated; auth_len is at least 1 (ipsec-mb refuses empty input). AES-GCM: when aad is null, the same range is the additional
  // authenticated data.
  uint32_t auth_offset;
  uint32_t auth_len;
  const uint8_t* aad;  // AES-GCM only: AAD kept outside the packet
  uint32_t aad_len;

  // AES-CM: the full 16-byte initial counter block. AES-GCM: the 12-byte IV.
  alignas(16) uint8_t iv[16];

  // Out: the computed tag. HMAC-SHA1 writes at least 12 bytes (callers compare
  // the first 4 or 10); AES-GCM encrypt writes tag_len bytes. In and out for
  // GcmDecrypt: see there.
  alignas(16) uint8_t tag[20];
  uint8_t tag_len;  // AES-GCM: 8 or 16
  // GcmEncrypt only: where the tag goes (tag_len bytes) instead of tag, when
  // not null: the engine points it at the packet's trailer.
  uint8_t* tag_out = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "ipsec-mb" or "openssl".
  virtual std::string_view name() const noexcept = 0;
  // The instruction set in use ("avx512", "sse", ...), for reports.
  virtual std::string_view arch() const noexcept = 0;

  // Each returns true when every operation completed. False means the library
  // refused the burst: no output of any op in it may be used (fail closed:
  // the caller drops every packet of the burst).

  // AES-CM: XORs the keystream over the cipher range (the same operation
  // encrypts and decrypts). Ops with cipher_len 0 are skipped.
  virtual bool AesCm(std::span<CryptoOp* const> ops) noexcept = 0;
  // HMAC-SHA1 over the auth range, into tag.
  virtual bool HmacSha1(std::span<CryptoOp* const> ops) noexcept = 0;
  // Encrypt-then-MAC in one go: AES-CM over the cipher range, then HMAC-SHA1
  // over the auth range (what protect does for the AES-CM suites). A backend
  // may set each packet's work up once for both.
  virtual bool AesCmThenHmacSha1(std::span<CryptoOp* const> ops) noexcept {
    return AesCm(ops) && HmacSha1(ops);
  }
  // AES-GCM encrypt the cipher range, tag into tag_out (or tag when null).
  virtual bool GcmEncrypt(std::span<CryptoOp* const> ops) noexcept = 0;
  // AES-GCM decrypt the cipher range in place and check the tag. In: tag holds
  // the packet's received tag (its first tag_len bytes). Out: the packet is
  // authentic if and only if the first tag_len bytes of tag equal the
  // received tag (the caller compares them in constant time).
  // A backend meets that either by writing the tag it computed over the AAD
  // and the ciphertext (ipsec-mb), or by leaving tag unchanged when the
  // received tag verifies and complementing all 20 bytes of it when it does
  // not (OpenSSL, which cannot return the tag it computes while decrypting).
  // A wrong tag is not a failure (the call still returns true), and the
  // cipher range is decrypted all the same: the caller drops that packet.
  virtual bool GcmDecrypt(std::span<CryptoOp* const> ops) noexcept = 0;

  // Protect's usual work, AES-CM then HMAC-SHA1 (and unprotect's, in the
  // other order), written straight into the backend's own job form. A
  // backend that has one (ipsec-mb) returns its array of kMaxDirectJobs
  // jobs; the engine sets each packet's job itself (CmHmacJobs::Set: no
  // CryptoOp to write and read back) and runs them with SubmitCmHmacJobs
  // (or SubmitHmacJobs, then SubmitCmJobs). Null (the default) where the
  // backend has no such form: the engine then passes CryptoOps. Another
  // call on the backend may reuse the array: set, submit, then make the
  // next call.
  static constexpr size_t kMaxDirectJobs = 64;
  virtual CmHmacJobs* DirectCmHmacJobs() noexcept { return nullptr; }
  // Runs the first n (1 to kMaxDirectJobs) jobs of DirectCmHmacJobs(), all
  // with AES keys of key_len bytes: one cipher burst, then one hash burst.
  // False as above (no tag or ciphertext of any of them may be used).
  virtual bool SubmitCmHmacJobs(size_t n, int key_len) noexcept {
    (void)n;
    (void)key_len;
    return false;
  }
  // Unprotect's halves of the same jobs, authenticate first and decrypt
  // what verified after: the hash burst alone over the first n jobs, and
  // later the cipher burst alone over the same n, none of them changed and
  // no other call on the backend in between. False as above.
  virtual bool SubmitHmacJobs(size_t n) noexcept {
    (void)n;
    return false;
  }
  virtual bool SubmitCmJobs(size_t n, int key_len) noexcept {
    (void)n;
    (void)key_len;
    return false;
  }
};

// kAuto picks ipsec-mb (which itself picks AVX-512/AVX2/AVX/SSE at run time).
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind);

}  // namespace sluice::crypto

#endif  // SLUICE_CRYPTO_BACKEND_H_
