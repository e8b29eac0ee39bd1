#include "sluice/ice/stun.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace sluice::ice {
namespace {

constexpr uint32_t kFingerprintXor = 0x5354554e;  // RFC 8489 §14.7
constexpr size_t kIntegrityAttrSize = 4 + kStunIntegritySize;
constexpr size_t kFingerprintAttrSize = 8;

uint16_t Load16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Load32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
uint64_t Load64(const uint8_t* p) noexcept { return uint64_t{Load32(p)} << 32 | Load32(p + 4); }
void Store16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Store32(uint8_t* p, uint32_t v) noexcept {
  Store16(p, static_cast<uint16_t>(v >> 16));
  Store16(p + 2, static_cast<uint16_t>(v));
}

std::array<uint8_t, 8> Be64(uint64_t v) noexcept {
  std::array<uint8_t, 8> out;
  Store32(out.data(), static_cast<uint32_t>(v >> 32));
  Store32(out.data() + 4, static_cast<uint32_t>(v));
  return out;
}

// The first four header bytes with the length field set to `length`: what
// MESSAGE-INTEGRITY and FINGERPRINT are computed over in place of the real
// ones (RFC 8489 §14.5, §14.7).
std::array<uint8_t, 4> AdjustedTypeAndLength(const uint8_t* header, size_t length) noexcept {
  std::array<uint8_t, 4> out{header[0], header[1], 0, 0};
  Store16(out.data() + 2, static_cast<uint16_t>(length));
  return out;
}

// CRC-32 (zlib's, the ISO 3309 one RFC 8489 §14.7 names) of the message up to
// `end`, the length field counting the FINGERPRINT attribute that follows.
uint32_t Fingerprint(const uint8_t* message, size_t end) noexcept {
  const auto head = AdjustedTypeAndLength(message, end + kFingerprintAttrSize - kStunHeaderSize);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, head.data(), static_cast<uInt>(head.size()));
  crc = crc32(crc, message + 4, static_cast<uInt>(end - 4));
  return static_cast<uint32_t>(crc) ^ kFingerprintXor;
}

// HMAC-SHA1 of the message up to `end` under `key`, the length field
// counting the MESSAGE-INTEGRITY attribute that follows (RFC 8489 §14.5).
bool Integrity(const uint8_t* message, size_t end, std::span<const uint8_t> key,
               std::array<uint8_t, kStunIntegritySize>& out) noexcept {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (hmac == nullptr || key.empty()) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  if (ctx == nullptr) return false;
  char digest[] = "SHA1";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  const auto head = AdjustedTypeAndLength(message, end + kIntegrityAttrSize - kStunHeaderSize);
  size_t written = 0;
  const bool ok = EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, head.data(), head.size()) == 1 &&
                  EVP_MAC_update(ctx, message + 4, end - 4) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &written, out.size()) == 1 &&
                  written == out.size();
  EVP_MAC_CTX_free(ctx);  // wipes the keyed state
  return ok;
}

bool IsKnownRequired(uint16_t type) noexcept {
  using namespace stun_attr;  // NOLINT: the table reads better unqualified
  switch (type) {
    case kMappedAddress: case kUsername: case kMessageIntegrity: case kErrorCode:
    case kUnknownAttributes: case kRealm: case kNonce: case kMessageIntegritySha256:
    case kPasswordAlgorithm: case kUserhash: case kXorMappedAddress: case kPriority:
    case kUseCandidate:
      return true;
    default:
      return false;
  }
}

// RFC 8489 §14.2: port XOR the cookie's high 16 bits; the address XOR the
// cookie (IPv4) or the cookie and the transaction id (IPv6).
std::optional<packet::Endpoint> DecodeXorAddress(std::span<const uint8_t> v,
                                                 const StunTransactionId& id) noexcept {
  if (v.size() < 4) return std::nullopt;
  std::array<uint8_t, 16> pad{};
  Store32(pad.data(), kStunMagicCookie);
  std::memcpy(pad.data() + 4, id.data(), id.size());
  packet::Endpoint e;
  e.port = Load16(v.data() + 2) ^ static_cast<uint16_t>(kStunMagicCookie >> 16);
  uint8_t addr[16];
  if (v[1] == 0x01 && v.size() == 8) {
    for (int i = 0; i < 4; ++i) addr[i] = v[4 + i] ^ pad[i];
    e.ip = packet::IpAddress::V4Bytes(addr);
  } else if (v[1] == 0x02 && v.size() == 20) {
    for (int i = 0; i < 16; ++i) addr[i] = v[4 + i] ^ pad[i];
    e.ip = packet::IpAddress::V6Bytes(addr);
  } else {
    return std::nullopt;
  }
  return e;
}

// RFC 8489 §14.8: 21 reserved bits, a 3-bit class (3-6), a number (0-99).
std::optional<StunErrorCode> DecodeErrorCode(std::span<const uint8_t> v) noexcept {
  if (v.size() < 4) return std::nullopt;
  const int cls = v[2] & 0x07;
  const int number = v[3];
  if (cls < 3 || cls > 6 || number > 99) return std::nullopt;
  StunErrorCode e;
  e.code = static_cast<uint16_t>(cls * 100 + number);
  e.reason = std::string_view(reinterpret_cast<const char*>(v.data()) + 4, v.size() - 4);
  return e;
}

// One attribute before MESSAGE-INTEGRITY (or MESSAGE-INTEGRITY itself) into
// `m`; false when a known attribute's value is malformed. Duplicates of a
// known attribute are ignored (RFC 8489 §14: the first one counts).
bool DecodeAttribute(uint16_t type, std::span<const uint8_t> v, StunMessage& m) noexcept {
  switch (type) {
    case stun_attr::kUsername:
      if (v.size() > kStunMaxUsername) return false;
      if (!m.username) {
        m.username = std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
      }
      return true;
    case stun_attr::kPriority:
      if (v.size() != 4) return false;
      if (!m.priority) m.priority = Load32(v.data());
      return true;
    case stun_attr::kUseCandidate:
      if (!v.empty()) return false;
      m.use_candidate = true;
      return true;
    case stun_attr::kIceControlling:
    case stun_attr::kIceControlled: {
      if (v.size() != 8) return false;
      auto& field = type == stun_attr::kIceControlling ? m.ice_controlling : m.ice_controlled;
      if (!field) field = Load64(v.data());
      return true;
    }
    case stun_attr::kXorMappedAddress: {
      auto e = DecodeXorAddress(v, m.transaction_id);
      if (!e) return false;
      if (!m.xor_mapped_address) m.xor_mapped_address = e;
      return true;
    }
    case stun_attr::kErrorCode: {
      auto e = DecodeErrorCode(v);
      if (!e) return false;
      if (!m.error_code) m.error_code = e;
      return true;
    }
    case stun_attr::kMessageIntegrity:
      if (v.size() != kStunIntegritySize) return false;
      std::memcpy(m.integrity.data(), v.data(), kStunIntegritySize);
      return true;
    default:
      if (type < 0x8000 && !IsKnownRequired(type)) {
        if (m.unknown_required_count < kStunMaxUnknown) {
          m.unknown_required[m.unknown_required_count] = type;
        }
        ++m.unknown_required_count;
      }
      return true;
  }
}

// The header checks of RFC 8489 §6.3; fills method, class and transaction id.
StunParseStatus ParseHeader(std::span<const uint8_t> d, StunMessage& m) noexcept {
  if (d.size() < kStunHeaderSize) return StunParseStatus::kTooShort;
  const uint16_t type = Load16(d.data());
  if ((type & 0xC000) != 0 || Load32(d.data() + 4) != kStunMagicCookie) {
    return StunParseStatus::kNotStun;
  }
  const size_t length = Load16(d.data() + 2);
  if (length % 4 != 0 || kStunHeaderSize + length != d.size()) return StunParseStatus::kBadLength;
  m.method =
      static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  m.cls = static_cast<StunClass>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
  std::memcpy(m.transaction_id.data(), d.data() + 8, m.transaction_id.size());
  return StunParseStatus::kOk;
}

}  // namespace

const char* StunParseStatusName(StunParseStatus status) noexcept {
  switch (status) {
    case StunParseStatus::kOk: return "ok";
    case StunParseStatus::kTooShort: return "too_short";
    case StunParseStatus::kNotStun: return "not_stun";
    case StunParseStatus::kBadLength: return "bad_length";
    case StunParseStatus::kTruncatedAttribute: return "truncated_attribute";
    case StunParseStatus::kBadAttribute: return "bad_attribute";
    case StunParseStatus::kAttributeAfterFingerprint: return "attribute_after_fingerprint";
    case StunParseStatus::kBadFingerprint: return "bad_fingerprint";
  }
  return "unknown";
}

uint16_t StunMessageType(uint16_t method, StunClass cls) noexcept {
  const uint16_t c = static_cast<uint16_t>(cls);
  return static_cast<uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                               ((method & 0x0F80) << 2) | ((c & 0x1) << 4) | ((c & 0x2) << 7));
}

StunParse ParseStun(std::span<const uint8_t> d) noexcept {
  StunParse out;
  StunMessage& m = out.message;
  out.status = ParseHeader(d, m);
  if (!out.ok()) return out;
  bool after_integrity = false;
  size_t pos = kStunHeaderSize;
  while (pos < d.size()) {
    if (m.has_fingerprint) return {StunParseStatus::kAttributeAfterFingerprint, {}};
    if (d.size() - pos < 4) return {StunParseStatus::kTruncatedAttribute, {}};
    const uint16_t type = Load16(d.data() + pos);
    const size_t length = Load16(d.data() + pos + 2);
    const size_t padded = (length + 3) & ~size_t{3};  // RFC 8489 §14: 4-byte boundary
    if (d.size() - pos - 4 < padded) return {StunParseStatus::kTruncatedAttribute, {}};
    const auto value = d.subspan(pos + 4, length);
    if (type == stun_attr::kFingerprint) {
      if (length != 4) return {StunParseStatus::kBadAttribute, {}};
      if (Load32(value.data()) != Fingerprint(d.data(), pos)) {
        return {StunParseStatus::kBadFingerprint, {}};
      }
      m.has_fingerprint = true;
    } else if (!after_integrity) {  // RFC 8489 §14.5: later ones are ignored
      if (!DecodeAttribute(type, value, m)) return {StunParseStatus::kBadAttribute, {}};
      if (type == stun_attr::kMessageIntegrity) {
        m.integrity_offset = pos;
        after_integrity = true;
      }
    }
    pos += 4 + padded;
  }
  return out;
}

bool VerifyStunIntegrity(std::span<const uint8_t> datagram, const StunMessage& message,
                         std::span<const uint8_t> key) noexcept {
  if (!message.integrity_offset) return false;
  const size_t offset = *message.integrity_offset;
  if (offset < kStunHeaderSize || offset + kIntegrityAttrSize > datagram.size()) return false;
  std::array<uint8_t, kStunIntegritySize> expected{};
  if (!Integrity(datagram.data(), offset, key, expected)) return false;
  const bool match =
      CRYPTO_memcmp(expected.data(), message.integrity.data(), expected.size()) == 0;
  OPENSSL_cleanse(expected.data(), expected.size());
  return match;
}

StunBuilder::StunBuilder(uint16_t method, StunClass cls, const StunTransactionId& transaction_id)
    : transaction_id_(transaction_id), bytes_(kStunHeaderSize, 0) {
  Store16(bytes_.data(), StunMessageType(method, cls));
  Store32(bytes_.data() + 4, kStunMagicCookie);
  std::memcpy(bytes_.data() + 8, transaction_id.data(), transaction_id.size());
}

void StunBuilder::SetLength(size_t body_length) noexcept {
  Store16(bytes_.data() + 2, static_cast<uint16_t>(body_length));
}

StunBuilder& StunBuilder::AddAttribute(uint16_t type, std::span<const uint8_t> value,
                                       uint8_t pad) {
  value = value.first(std::min<size_t>(value.size(), 0xFFFF - 3));
  uint8_t head[4];
  Store16(head, type);
  Store16(head + 2, static_cast<uint16_t>(value.size()));
  bytes_.insert(bytes_.end(), head, head + 4);
  bytes_.insert(bytes_.end(), value.begin(), value.end());
  bytes_.resize(bytes_.size() + ((4 - value.size() % 4) % 4), pad);
  SetLength(bytes_.size() - kStunHeaderSize);
  return *this;
}

StunBuilder& StunBuilder::AddUsername(std::string_view username) {
  return AddAttribute(stun_attr::kUsername, StunKey(username));
}

StunBuilder& StunBuilder::AddXorMappedAddress(const packet::Endpoint& mapped) {
  if (mapped.ip.unset()) return *this;
  std::array<uint8_t, 16> pad{};
  Store32(pad.data(), kStunMagicCookie);
  std::memcpy(pad.data() + 4, transaction_id_.data(), transaction_id_.size());
  uint8_t v[20] = {0, static_cast<uint8_t>(mapped.ip.is_v4() ? 0x01 : 0x02)};
  Store16(v + 2, mapped.port ^ static_cast<uint16_t>(kStunMagicCookie >> 16));
  const size_t n = mapped.ip.size();
  for (size_t i = 0; i < n; ++i) v[4 + i] = mapped.ip.bytes[i] ^ pad[i];
  return AddAttribute(stun_attr::kXorMappedAddress, std::span<const uint8_t>(v, 4 + n));
}

StunBuilder& StunBuilder::AddPriority(uint32_t priority) {
  uint8_t v[4];
  Store32(v, priority);
  return AddAttribute(stun_attr::kPriority, v);
}

StunBuilder& StunBuilder::AddUseCandidate() { return AddAttribute(stun_attr::kUseCandidate, {}); }

StunBuilder& StunBuilder::AddIceControlling(uint64_t tie_breaker) {
  return AddAttribute(stun_attr::kIceControlling, Be64(tie_breaker));
}

StunBuilder& StunBuilder::AddIceControlled(uint64_t tie_breaker) {
  return AddAttribute(stun_attr::kIceControlled, Be64(tie_breaker));
}

StunBuilder& StunBuilder::AddErrorCode(uint16_t code, std::string_view reason) {
  std::vector<uint8_t> v(4, 0);
  v[2] = static_cast<uint8_t>((code / 100) & 0x07);
  v[3] = static_cast<uint8_t>(code % 100);
  v.insert(v.end(), reason.begin(), reason.end());
  return AddAttribute(stun_attr::kErrorCode, v);
}

StunBuilder& StunBuilder::AddUnknownAttributes(std::span<const uint16_t> types) {
  std::vector<uint8_t> v(types.size() * 2);
  for (size_t i = 0; i < types.size(); ++i) Store16(v.data() + 2 * i, types[i]);
  return AddAttribute(stun_attr::kUnknownAttributes, v);
}

StunBuilder& StunBuilder::AddMessageIntegrity(std::span<const uint8_t> key) {
  const size_t end = bytes_.size();
  std::array<uint8_t, kStunIntegritySize> mac{};
  // A key the HMAC refuses (empty) leaves zeros, which no receiver accepts.
  Integrity(bytes_.data(), end, key, mac);
  return AddAttribute(stun_attr::kMessageIntegrity, mac);
}

StunBuilder& StunBuilder::AddFingerprint() {
  uint8_t v[4];
  Store32(v, Fingerprint(bytes_.data(), bytes_.size()));
  return AddAttribute(stun_attr::kFingerprint, v);
}

const char* StunErrorReason(uint16_t code) noexcept {
  switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthenticated";  // RFC 5389 called it "Unauthorized"
    case 420: return "Unknown Attribute";
    case 438: return "Stale Nonce";
    case 487: return "Role Conflict";  // RFC 8445 §16.1
    case 500: return "Server Error";
    default: return "Error";
  }
}

std::vector<uint8_t> BuildBindingSuccess(const StunTransactionId& transaction_id,
                                         const packet::Endpoint& mapped,
                                         std::span<const uint8_t> key) {
  StunBuilder b(kStunBindingMethod, StunClass::kSuccessResponse, transaction_id);
  b.AddXorMappedAddress(mapped).AddMessageIntegrity(key).AddFingerprint();
  return std::move(b).Take();
}

std::vector<uint8_t> BuildBindingError(const StunTransactionId& transaction_id, uint16_t code,
                                       std::span<const uint8_t> key,
                                       std::span<const uint16_t> unknown) {
  StunBuilder b(kStunBindingMethod, StunClass::kErrorResponse, transaction_id);
  b.AddErrorCode(code, StunErrorReason(code));
  if (!unknown.empty()) b.AddUnknownAttributes(unknown);
  if (!key.empty()) b.AddMessageIntegrity(key);
  b.AddFingerprint();
  return std::move(b).Take();
}

}  // namespace sluice::ice
