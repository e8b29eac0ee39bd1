#include "sluice/ice/credentials.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace sluice::ice {
namespace {

constexpr std::string_view kIceChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static_assert(kIceChars.size() == 64);

absl::Status CheckField(const char* name, std::string_view value, size_t min_chars) {
  if (value.size() < min_chars || value.size() > kMaxIceChars) {
    return absl::InvalidArgumentError(absl::StrCat("ICE ", name, " must be ", min_chars, "-",
                                                   kMaxIceChars, " characters long, not ",
                                                   value.size(), " (RFC 8839 §5.4)"));
  }
  if (!IsIceChars(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ICE ", name, " may hold only letters, digits, '+' and '/' (RFC 8839 §5.4)"));
  }
  return absl::OkStatus();
}

// `n` ice-chars from `draw` (RAND_bytes or RAND_priv_bytes).
template <typename String>
bool RandomIceChars(size_t n, int (*draw)(unsigned char*, int), String& out) {
  std::array<unsigned char, kMaxIceChars> bytes{};
  if (n > bytes.size() || draw(bytes.data(), static_cast<int>(n)) != 1) return false;
  out.resize(n);
  for (size_t i = 0; i < n; ++i) out[i] = kIceChars[bytes[i] & 0x3F];
  OPENSSL_cleanse(bytes.data(), n);
  return true;
}

}  // namespace

IceCredentials MakeIceCredentials(std::string_view ufrag, std::string_view pwd) {
  IceCredentials c;
  c.ufrag = std::string(ufrag);
  c.pwd = SecretString(pwd.data(), pwd.size());
  return c;
}

bool IsIceChars(std::string_view text) noexcept {
  for (char c : text) {
    if (kIceChars.find(c) == std::string_view::npos) return false;
  }
  return true;
}

absl::Status ValidateIceCredentials(const IceCredentials& credentials) {
  absl::Status s = CheckField("ufrag", credentials.ufrag, kMinUfragChars);
  if (!s.ok()) return s;
  return CheckField("pwd", std::string_view(credentials.pwd), kMinPwdChars);
}

absl::StatusOr<IceCredentials> GenerateIceCredentials() {
  IceCredentials c;
  if (!RandomIceChars(kGeneratedUfragChars, RAND_bytes, c.ufrag) ||
      !RandomIceChars(kGeneratedPwdChars, RAND_priv_bytes, c.pwd)) {
    return absl::InternalError("the CSPRNG failed");
  }
  return c;
}

}  // namespace sluice::ice
