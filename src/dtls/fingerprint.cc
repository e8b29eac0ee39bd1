#include "sluice/dtls/fingerprint.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sluice::dtls {
namespace {

struct HashInfo {
  HashFunction hash;
  absl::string_view name;
  int digest_len;
  const EVP_MD* (*md)();
};

// Weakest first: the order MatchFingerprints ranks them by.
constexpr HashInfo kHashes[kHashFunctionCount] = {
    {HashFunction::kSha1, "sha-1", 20, EVP_sha1},
    {HashFunction::kSha224, "sha-224", 28, EVP_sha224},
    {HashFunction::kSha256, "sha-256", 32, EVP_sha256},
    {HashFunction::kSha384, "sha-384", 48, EVP_sha384},
    {HashFunction::kSha512, "sha-512", 64, EVP_sha512},
};

const HashInfo& Info(HashFunction hash) { return kHashes[static_cast<int>(hash)]; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "AB:CD:..." into digest; exactly `len` pairs.
absl::Status ParseHexPairs(absl::string_view hex, int len, absl::string_view hash_name,
                           Fingerprint* out) {
  const size_t expected_chars = static_cast<size_t>(len) * 3 - 1;
  if (hex.size() != expected_chars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fingerprint: ", hash_name, " needs ", len, " hex pairs separated by ':' (",
        expected_chars, " characters), got ", hex.size(), " characters"));
  }
  for (int i = 0; i < len; ++i) {
    const size_t at = static_cast<size_t>(i) * 3;
    const int hi = HexValue(hex[at]);
    const int lo = HexValue(hex[at + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("fingerprint: '", hex.substr(at, 2), "' at byte ", i, " is not hex"));
    }
    if (i + 1 < len && hex[at + 2] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("fingerprint: expected ':' after byte ", i));
    }
    out->digest[static_cast<size_t>(i)] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view HashFunctionName(HashFunction hash) noexcept { return Info(hash).name; }

std::optional<HashFunction> HashFunctionFromName(absl::string_view name) noexcept {
  for (const HashInfo& info : kHashes) {
    if (absl::EqualsIgnoreCase(name, info.name)) return info.hash;
  }
  return std::nullopt;
}

int DigestLen(HashFunction hash) noexcept { return Info(hash).digest_len; }

Fingerprint ComputeFingerprint(std::span<const uint8_t> der, HashFunction hash) {
  Fingerprint fp;
  fp.hash = hash;
  unsigned int len = 0;
  // Only a library that cannot hash at all fails here; nothing sound can
  // follow (the control plane's fingerprints and every handshake need it).
  if (EVP_Digest(der.data(), der.size(), fp.digest.data(), &len, Info(hash).md(), nullptr) != 1 ||
      len != static_cast<unsigned int>(Info(hash).digest_len)) {
    std::abort();
  }
  return fp;
}

std::string FormatFingerprint(const Fingerprint& fingerprint) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(HashFunctionName(fingerprint.hash));
  out.push_back(' ');
  for (uint8_t b : fingerprint.digest_bytes()) {
    if (out.back() != ' ') out.push_back(':');
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

absl::StatusOr<Fingerprint> ParseFingerprint(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  const size_t space = value.find(' ');
  if (value.empty() || space == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "fingerprint: expected '<hash-func> <hex pairs>', such as 'sha-256 AB:CD:...'");
  }
  const absl::string_view name = value.substr(0, space);
  const absl::string_view hex = value.substr(space + 1);
  const std::optional<HashFunction> hash = HashFunctionFromName(name);
  if (!hash) {
    return absl::UnimplementedError(absl::StrCat(
        "fingerprint: hash function '", name,
        "' is not accepted (sha-1, sha-224, sha-256, sha-384 and sha-512 are)"));
  }
  Fingerprint fp;
  fp.hash = *hash;
  if (absl::Status s = ParseHexPairs(hex, DigestLen(*hash), HashFunctionName(*hash), &fp);
      !s.ok()) {
    return s;
  }
  return fp;
}

absl::Status MatchFingerprints(std::span<const uint8_t> der,
                               std::span<const Fingerprint> expected) {
  if (expected.empty()) {
    return absl::InvalidArgumentError("fingerprint: the peer gave no fingerprint");
  }
  // RFC 8122 §5: only the set in the strongest hash the peer offered counts.
  HashFunction strongest = expected.front().hash;
  for (const Fingerprint& fp : expected) strongest = std::max(strongest, fp.hash);
  const Fingerprint actual = ComputeFingerprint(der, strongest);
  const size_t len = static_cast<size_t>(DigestLen(strongest));
  bool matched = false;
  for (const Fingerprint& fp : expected) {
    if (fp.hash != strongest) continue;
    // Every entry compared in full: the time says nothing about which matched.
    matched |= CRYPTO_memcmp(fp.digest.data(), actual.digest.data(), len) == 0;
  }
  if (!matched) {
    return absl::PermissionDeniedError(absl::StrCat(
        "fingerprint mismatch: the peer's certificate matches none of its ",
        HashFunctionName(strongest), " fingerprints"));
  }
  return absl::OkStatus();
}

}  // namespace sluice::dtls
