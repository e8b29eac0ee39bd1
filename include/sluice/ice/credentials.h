// ICE short-term credentials: a username fragment and a password (RFC 8839
// §5.4), generated from OpenSSL's CSPRNG or given by the controller.
//
// Control/handshake thread. The password is a credential: it travels in SDP
// (so a getter is fine) but is never logged, and its memory is wiped when it
// is freed (memory::WipingAllocator).
#ifndef SLUICE_ICE_CREDENTIALS_H_
#define SLUICE_ICE_CREDENTIALS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/memory/wiping_allocator.h"

namespace sluice::ice {

using SecretString = std::basic_string<char, std::char_traits<char>, memory::WipingAllocator<char>>;

// RFC 8839 §5.4: ice-ufrag is 4-256 ice-chars, ice-pwd 22-256.
inline constexpr size_t kMinUfragChars = 4;
inline constexpr size_t kMinPwdChars = 22;
inline constexpr size_t kMaxIceChars = 256;
// What GenerateIceCredentials makes: 48 random bits of ufrag (at least 24 are
// required) and 144 of password (at least 128 are required).
inline constexpr size_t kGeneratedUfragChars = 8;
inline constexpr size_t kGeneratedPwdChars = 24;

struct IceCredentials {
  std::string ufrag;
  // A valid one (22 or more characters) is longer than the small-string
  // buffer, so it always lives on the heap its allocator wipes.
  SecretString pwd;
};

// Credentials from text, as SDP or the controller gives them; not validated
// (see ValidateIceCredentials).
IceCredentials MakeIceCredentials(std::string_view ufrag, std::string_view pwd);

// RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/".
bool IsIceChars(std::string_view text) noexcept;

// Checks lengths and characters; the message names the field, never the
// password's value.
absl::Status ValidateIceCredentials(const IceCredentials& credentials);

// Fresh credentials: ufrag from RAND_bytes, password from RAND_priv_bytes,
// each byte mapped onto the 64 ice-chars (no bias: 256 is a multiple of 64).
// Fails only when the CSPRNG does.
absl::StatusOr<IceCredentials> GenerateIceCredentials();

}  // namespace sluice::ice

#endif  // SLUICE_ICE_CREDENTIALS_H_
