// STUN messages (RFC 8489, which obsoletes RFC 5389): parsing any bytes into
// a checked view, verifying MESSAGE-INTEGRITY, and building the messages an
// ICE-lite agent sends (RFC 8445 §7.3 and §16.1 attributes).
//
// Handshake/control thread. ParseStun is total over arbitrary bytes: it never
// reads past the span, never allocates, and says why it refused. Integrity is
// compared in constant time. Building allocates (one vector per message).
#ifndef SLUICE_ICE_STUN_H_
#define SLUICE_ICE_STUN_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "sluice/packet/address.h"

namespace sluice::ice {

inline constexpr uint32_t kStunMagicCookie = 0x2112A442;  // RFC 8489 §5
inline constexpr size_t kStunHeaderSize = 20;
inline constexpr uint16_t kStunBindingMethod = 0x001;
inline constexpr size_t kStunIntegritySize = 20;  // HMAC-SHA1, RFC 8489 §14.5
// Longest USERNAME an ICE check carries: two 256-char ufrags and a colon
// (RFC 8839 §5.4); RFC 8489 §14.3 allows fewer than 509 bytes.
inline constexpr size_t kStunMaxUsername = 513;
// Unknown comprehension-required attributes kept for a 420 response.
inline constexpr size_t kStunMaxUnknown = 8;

// Attribute types (RFC 8489 §18.3, RFC 8445 §16.1).
namespace stun_attr {
inline constexpr uint16_t kMappedAddress = 0x0001;
inline constexpr uint16_t kUsername = 0x0006;
inline constexpr uint16_t kMessageIntegrity = 0x0008;
inline constexpr uint16_t kErrorCode = 0x0009;
inline constexpr uint16_t kUnknownAttributes = 0x000A;
inline constexpr uint16_t kRealm = 0x0014;
inline constexpr uint16_t kNonce = 0x0015;
inline constexpr uint16_t kMessageIntegritySha256 = 0x001C;
inline constexpr uint16_t kPasswordAlgorithm = 0x001D;
inline constexpr uint16_t kUserhash = 0x001E;
inline constexpr uint16_t kXorMappedAddress = 0x0020;
inline constexpr uint16_t kPriority = 0x0024;
inline constexpr uint16_t kUseCandidate = 0x0025;
inline constexpr uint16_t kSoftware = 0x8022;
inline constexpr uint16_t kFingerprint = 0x8028;
inline constexpr uint16_t kIceControlled = 0x8029;
inline constexpr uint16_t kIceControlling = 0x802A;
}  // namespace stun_attr

enum class StunClass : uint8_t {
  kRequest = 0,
  kIndication = 1,
  kSuccessResponse = 2,
  kErrorResponse = 3,
};

using StunTransactionId = std::array<uint8_t, 12>;

enum class StunParseStatus : uint8_t {
  kOk,
  kTooShort,                   // fewer than 20 bytes
  kNotStun,                    // first two bits set, or no magic cookie
  kBadLength,                  // length field not a multiple of 4 or not the datagram's
  kTruncatedAttribute,         // an attribute (with its padding) runs past the message
  kBadAttribute,               // a known attribute with a malformed value
  kAttributeAfterFingerprint,  // RFC 8489 §14.7: FINGERPRINT is the last attribute
  kBadFingerprint,             // FINGERPRINT present and wrong
};

// Stable name for logs and counters ("bad_fingerprint", ...).
const char* StunParseStatusName(StunParseStatus status) noexcept;

struct StunErrorCode {
  uint16_t code = 0;         // 300-699
  std::string_view reason;   // a view into the parsed datagram
};

// A parsed message. Views (username, error reason) point into the datagram
// it was parsed from and live as long as it does. Of each attribute only the
// first occurrence counts (RFC 8489 §14); attributes after MESSAGE-INTEGRITY
// other than FINGERPRINT are ignored (RFC 8489 §14.5).
struct StunMessage {
  uint16_t method = 0;
  StunClass cls = StunClass::kRequest;
  StunTransactionId transaction_id{};

  std::optional<std::string_view> username;
  std::optional<uint32_t> priority;
  bool use_candidate = false;
  std::optional<uint64_t> ice_controlling;
  std::optional<uint64_t> ice_controlled;
  std::optional<packet::Endpoint> xor_mapped_address;
  std::optional<StunErrorCode> error_code;

  // MESSAGE-INTEGRITY: where its attribute header starts, and its HMAC.
  std::optional<size_t> integrity_offset;
  std::array<uint8_t, kStunIntegritySize> integrity{};
  // FINGERPRINT was present (ParseStun refuses a wrong one).
  bool has_fingerprint = false;

  // Comprehension-required types (0x0000-0x7FFF) this parser does not know,
  // for a 420 response (RFC 8489 §6.3.1); more than kStunMaxUnknown are
  // counted but not kept.
  std::array<uint16_t, kStunMaxUnknown> unknown_required{};
  size_t unknown_required_count = 0;
};

struct StunParse {
  StunParseStatus status = StunParseStatus::kTooShort;
  StunMessage message;  // meaningful only when ok()
  bool ok() const noexcept { return status == StunParseStatus::kOk; }
};

// Parses one STUN message that fills the whole datagram (RFC 8489 §6.3:
// first two bits zero, magic cookie, length a multiple of 4 and equal to the
// bytes after the header, attributes padded to 4 bytes; padding content is
// ignored). A FINGERPRINT is checked here (§14.7); MESSAGE-INTEGRITY is
// checked by VerifyStunIntegrity, which needs the key.
StunParse ParseStun(std::span<const uint8_t> datagram) noexcept;

// RFC 8489 §14.5: HMAC-SHA1 under `key` over the message up to the
// MESSAGE-INTEGRITY attribute, with the header's length field counting up to
// and including that attribute; compared with CRYPTO_memcmp. False when the
// message has no MESSAGE-INTEGRITY or `datagram` is not the one parsed.
// For ICE's short-term credentials the key is the password (§9.1.1).
bool VerifyStunIntegrity(std::span<const uint8_t> datagram, const StunMessage& message,
                         std::span<const uint8_t> key) noexcept;

// The bytes of a password, as a key for the short-term credential mechanism.
inline std::span<const uint8_t> StunKey(std::string_view password) noexcept {
  return {reinterpret_cast<const uint8_t*>(password.data()), password.size()};
}

// RFC 8489 §5: the 16-bit message type from method and class, and back.
uint16_t StunMessageType(uint16_t method, StunClass cls) noexcept;

// Builds one message, attribute by attribute, keeping the header's length
// field current. MESSAGE-INTEGRITY and then FINGERPRINT go last.
class StunBuilder {
 public:
  StunBuilder(uint16_t method, StunClass cls, const StunTransactionId& transaction_id);

  // Any attribute, its value padded to a multiple of 4 with `pad` (zero; the
  // content of padding is for the receiver to ignore, RFC 8489 §14).
  StunBuilder& AddAttribute(uint16_t type, std::span<const uint8_t> value, uint8_t pad = 0);
  StunBuilder& AddUsername(std::string_view username);
  // RFC 8489 §14.2: family, port and address XORed with the magic cookie
  // (and, for IPv6, the transaction id). An unset address is not added.
  StunBuilder& AddXorMappedAddress(const packet::Endpoint& mapped);
  StunBuilder& AddPriority(uint32_t priority);
  StunBuilder& AddUseCandidate();
  StunBuilder& AddIceControlling(uint64_t tie_breaker);
  StunBuilder& AddIceControlled(uint64_t tie_breaker);
  // RFC 8489 §14.8: class and number, then the reason phrase.
  StunBuilder& AddErrorCode(uint16_t code, std::string_view reason);
  // RFC 8489 §14.13 (UNKNOWN-ATTRIBUTES): the types a 420 response names.
  StunBuilder& AddUnknownAttributes(std::span<const uint16_t> types);
  // RFC 8489 §14.5, over everything added so far.
  StunBuilder& AddMessageIntegrity(std::span<const uint8_t> key);
  // RFC 8489 §14.7: CRC-32 of everything added so far, XOR 0x5354554e.
  StunBuilder& AddFingerprint();

  const std::vector<uint8_t>& bytes() const noexcept { return bytes_; }
  std::vector<uint8_t> Take() && { return std::move(bytes_); }

 private:
  void SetLength(size_t body_length) noexcept;

  StunTransactionId transaction_id_;
  std::vector<uint8_t> bytes_;
};

// The reason phrase RFC 8489 §14.8 / RFC 8445 §16.1 give a code ("Bad
// Request", "Unauthenticated", "Unknown Attribute", "Role Conflict", ...).
const char* StunErrorReason(uint16_t code) noexcept;

// A Binding success response (RFC 8445 §7.3.1): XOR-MAPPED-ADDRESS =
// `mapped`, MESSAGE-INTEGRITY under `key`, FINGERPRINT.
std::vector<uint8_t> BuildBindingSuccess(const StunTransactionId& transaction_id,
                                         const packet::Endpoint& mapped,
                                         std::span<const uint8_t> key);

// A Binding error response with ERROR-CODE `code` and its reason phrase,
// UNKNOWN-ATTRIBUTES when `unknown` is not empty (420), MESSAGE-INTEGRITY when
// `key` is not empty, and FINGERPRINT. RFC 8489 §9.1.3: a 400 or 401 for a
// request that did not authenticate carries no MESSAGE-INTEGRITY (pass an
// empty key); a response to an authenticated request carries it.
std::vector<uint8_t> BuildBindingError(const StunTransactionId& transaction_id, uint16_t code,
                                       std::span<const uint8_t> key,
                                       std::span<const uint16_t> unknown = {});

}  // namespace sluice::ice

#endif  // SLUICE_ICE_STUN_H_
