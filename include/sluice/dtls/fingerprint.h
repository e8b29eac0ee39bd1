// Certificate fingerprints as SDP carries them (RFC 8122 §5): "sha-256
// AB:CD:...", the hash of a certificate's DER encoding, and the rule that
// says whether a peer's certificate matches the fingerprints its SDP gave.
//
// Any thread. Pure functions. Digests are public values; they are compared
// in constant time anyway, so a mismatch says nothing about where.
#ifndef SLUICE_DTLS_FINGERPRINT_H_
#define SLUICE_DTLS_FINGERPRINT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice::dtls {

// The hash functions of RFC 8122 §5 that Sluice computes and checks, weakest
// first. MD2 and MD5 are refused (RFC 8122 §5: MUST NOT be used).
enum class HashFunction : uint8_t { kSha1, kSha224, kSha256, kSha384, kSha512 };
inline constexpr int kHashFunctionCount = 5;
inline constexpr int kMaxDigestLen = 64;

// "sha-256" and so on, lower case as RFC 8122 writes them.
absl::string_view HashFunctionName(HashFunction hash) noexcept;
// Case-insensitive (RFC 8122 §5: hash-func is a case-insensitive token).
std::optional<HashFunction> HashFunctionFromName(absl::string_view name) noexcept;
int DigestLen(HashFunction hash) noexcept;

struct Fingerprint {
  HashFunction hash = HashFunction::kSha256;
  std::array<uint8_t, kMaxDigestLen> digest{};  // DigestLen(hash) bytes used

  std::span<const uint8_t> digest_bytes() const {
    return {digest.data(), static_cast<size_t>(DigestLen(hash))};
  }
};

// The fingerprint of a DER-encoded certificate.
Fingerprint ComputeFingerprint(std::span<const uint8_t> der, HashFunction hash);

// "sha-256 AB:CD:..." with upper-case hex, as RFC 8122 §5's grammar says.
std::string FormatFingerprint(const Fingerprint& fingerprint);

// Parses an SDP fingerprint attribute value, "<hash-func> <hex:hex:...>":
// the hash name in any case; hex pairs in either case (RFC 8122 asks for
// upper case; some stacks send lower case) separated by single colons, as
// many as the hash function's digest has bytes. Leading and trailing spaces
// are ignored. Errors: kInvalidArgument for a malformed value,
// kUnimplemented for a well-formed one with a hash Sluice does not accept
// (md5, md2, an unknown token), which a caller may skip (RFC 8122 §5 lets
// an SDP carry fingerprints in several hashes).
absl::StatusOr<Fingerprint> ParseFingerprint(absl::string_view value);

// RFC 8122 §5: from the peer's fingerprints, take the set that uses the
// strongest hash function among them (SHA-512 > SHA-384 > SHA-256 > SHA-224
// > SHA-1) and accept the certificate when it matches one of that set.
// Errors: kInvalidArgument when `expected` is empty, kPermissionDenied when
// the certificate matches none ("fingerprint mismatch").
absl::Status MatchFingerprints(std::span<const uint8_t> der,
                               std::span<const Fingerprint> expected);

}  // namespace sluice::dtls

#endif  // SLUICE_DTLS_FINGERPRINT_H_
