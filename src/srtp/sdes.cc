#include "sluice/srtp/sdes.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice::srtp {
namespace {

constexpr absl::string_view kInline = "inline:";
constexpr absl::string_view kExpected =
    "expected \"[<tag> ]<suite> inline:<key>[|<lifetime>][|<MKI>:<length>] [<session params>]\"";
// RFC 4568 §9.1: tag = 1*9DIGIT.
constexpr size_t kMaxTagDigits = 9;
// RFC 3711 §9.2: at most 2^48 SRTP packets under one master key.
constexpr uint64_t kMaxLifetimeLog2 = 48;
// RFC 4568 §6.3.6, after RFC 3711 §3.3.2: the replay window is at least 64.
constexpr uint64_t kMinWindowSizeHint = 64;
// More than FormatSdesCrypto ever writes (at most 173 bytes), so the result
// never reallocates and leaves a stray copy of the key on the heap.
constexpr size_t kFormatReserve = 256;

absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

// A string that held key material: the whole allocation is wiped before it
// goes back to the heap.
class WipedString {
 public:
  WipedString() = default;
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  ~WipedString() {
    str_.resize(str_.capacity());  // within capacity: does not reallocate
    OPENSSL_cleanse(str_.data(), str_.size());
  }
  std::string* get() { return &str_; }
  const std::string& str() const { return str_; }

 private:
  std::string str_;
};

// Error messages quote what the peer sent only when it cannot be key text.
// A base64 key is at least 38 characters, so a name of at most 32 upper-case
// letters, digits and '_' is safe to quote, and so is a number of at most 24
// digits and "^:+-". Anything else is described, not quoted.
std::string QuoteName(absl::string_view s) {
  const bool safe = !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isupper(c) || absl::ascii_isdigit(c) || c == '_';
  });
  return safe ? absl::StrCat(" \"", s, "\"") : std::string();
}

bool IsQuotableNumber(absl::string_view s) {
  return s.size() <= 24 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(c) || c == '^' || c == ':' || c == '+' || c == '-';
         });
}

std::string QuoteNumber(absl::string_view s) {
  return IsQuotableNumber(s) ? absl::StrCat(" \"", s, "\"") : std::string();
}

// "WSH=32" when the value can be quoted, else just "WSH".
std::string ParamText(absl::string_view name, absl::string_view value) {
  return !value.empty() && IsQuotableNumber(value) ? absl::StrCat(name, "=", value)
                                                   : std::string(name);
}

bool AllDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

// absl::SimpleAtoi also takes a sign and surrounding white space; the
// grammar (RFC 4568 §9.2) has digits only. False on overflow too.
bool ParseDigits(absl::string_view s, uint64_t* out) {
  return AllDigits(s) && absl::SimpleAtoi(s, out);
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Checks that `text` is canonical standard base64 (RFC 4648 §4), padded or
// not, and returns how many bytes it decodes to. absl::Base64Unescape alone
// is laxer: it skips white space and ignores the unused bits of the last
// character. Errors give positions, never characters.
absl::StatusOr<size_t> CheckBase64(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("inline key is empty");
  absl::string_view body = text;
  size_t padding = 0;
  while (absl::ConsumeSuffix(&body, "=")) ++padding;
  for (size_t i = 0; i < body.size(); ++i) {
    if (Base64Value(body[i]) < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "key is not valid base64: character %d is outside the standard alphabet", i + 1));
    }
  }
  const size_t tail = body.size() % 4;  // characters in the last, partial group
  if (tail == 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "key is not valid base64: %d characters do not decode to whole bytes", body.size()));
  }
  if (padding > 0 && (tail == 0 || padding != 4 - tail)) {
    return absl::InvalidArgumentError("key is not valid base64: wrong '=' padding");
  }
  // RFC 4648 §3.5: the bits of the last character past the final byte are
  // zero. Refusing others keeps one text per key.
  if (tail != 0) {
    const int unused_bits_mask = tail == 2 ? 0x0f : 0x03;
    if ((Base64Value(body.back()) & unused_bits_mask) != 0) {
      return absl::InvalidArgumentError(
          "key is not valid base64: the last character has non-zero unused bits");
    }
  }
  return body.size() / 4 * 3 + (tail == 0 ? 0 : tail - 1);
}

absl::Status UnknownSuiteError(absl::string_view name) {
  // RFC 4568 suite names are case-sensitive; a near miss gets a hint
  // (quoting it is safe: it matched a suite name).
  for (const crypto::SuiteInfo& info : crypto::AllSuites()) {
    if (absl::EqualsIgnoreCase(name, ToAbsl(info.name))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown suite \"", name, "\": suite names are case-sensitive, did you mean ",
          ToAbsl(info.name), "?"));
    }
  }
  const std::string supported = absl::StrJoin(
      crypto::AllSuites(), ", ",
      [](std::string* out, const crypto::SuiteInfo& info) { out->append(info.name); });
  return absl::InvalidArgumentError(
      absl::StrCat("unknown suite", QuoteName(name), ": Sluice supports ", supported));
}

absl::StatusOr<uint64_t> ParseLifetime(absl::string_view field) {
  // RFC 4568 §9.2: lifetime = ["2^"] 1*(DIGIT), a count of packets.
  absl::string_view exponent = field;
  if (absl::ConsumePrefix(&exponent, "2^")) {
    uint64_t n = 0;
    if (!AllDigits(exponent)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed lifetime", QuoteNumber(field),
                                                     ": expected a packet count or 2^n"));
    }
    if (!ParseDigits(exponent, &n) || n < 1 || n > kMaxLifetimeLog2) {
      return absl::InvalidArgumentError(
          absl::StrCat("lifetime", QuoteNumber(field),
                       " is out of range: 2^n needs n from 1 to 48 (RFC 3711 §9.2)"));
    }
    return uint64_t{1} << n;
  }
  if (!AllDigits(field)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed lifetime", QuoteNumber(field), ": expected a packet count or 2^n"));
  }
  uint64_t packets = 0;
  if (!ParseDigits(field, &packets)) {
    return absl::InvalidArgumentError(
        absl::StrCat("lifetime", QuoteNumber(field), " is too large: write 2^n, n at most 48"));
  }
  if (packets == 0) {
    return absl::InvalidArgumentError(
        "lifetime 0 is out of range: a key must protect at least 1 packet");
  }
  return packets;
}

absl::Status ParseMki(absl::string_view field, MasterKey* key) {
  // RFC 4568 §9.2: mki = mki-value ":" mki-length, both decimal.
  const std::vector<absl::string_view> parts = absl::StrSplit(field, ':');
  if (parts.size() != 2 || !AllDigits(parts[0]) || !AllDigits(parts[1])) {
    return absl::InvalidArgumentError(absl::StrCat("malformed MKI", QuoteNumber(field),
                                                   ": expected <value>:<length> in decimal"));
  }
  uint64_t length = 0;
  if (!ParseDigits(parts[1], &length) || length < 1 || length > kMaxMkiLen) {
    // RFC 4568 allows up to 128 bytes; real MKIs are 1 to 4.
    return absl::InvalidArgumentError(absl::StrCat("MKI length", QuoteNumber(parts[1]),
                                                   " is out of range: Sluice supports 1 to ",
                                                   kMaxMkiLen, " bytes"));
  }
  uint64_t value = 0;
  if (!ParseDigits(parts[0], &value) || (value >> (8 * length)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("MKI value", QuoteNumber(parts[0]),
                                                   " does not fit in its length of ", length,
                                                   length == 1 ? " byte" : " bytes"));
  }
  key->mki_len = static_cast<uint8_t>(length);
  for (uint64_t i = 0; i < length; ++i) {
    key->mki[length - 1 - i] = static_cast<uint8_t>(value >> (8 * i));  // big-endian
  }
  return absl::OkStatus();
}

// key-params (RFC 4568 §9.2): "inline:" key||salt ["|" lifetime] ["|" mki].
absl::Status ParseKeyParams(absl::string_view params, const crypto::SuiteInfo& info,
                            MasterKey* key) {
  if (const size_t n = std::count(params.begin(), params.end(), ';'); n > 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d key parameters separated by ';': only one inline key is supported", n + 1));
  }
  if (!absl::ConsumePrefix(&params, kInline)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key parameters after ", ToAbsl(info.name),
                     " must start with \"inline:\", the only key method (RFC 4568 §6.1)"));
  }
  const std::vector<absl::string_view> fields = absl::StrSplit(params, '|');
  if (fields.size() > 3) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "inline key has %d '|'-separated fields: expected <key>[|<lifetime>][|<MKI>:<length>]",
        fields.size()));
  }
  // With two fields the second is the MKI if it has a ':', else the lifetime
  // (RFC 4568 §9.2 lets either be left out).
  std::optional<absl::string_view> lifetime;
  std::optional<absl::string_view> mki;
  if (fields.size() == 2) {
    if (absl::StrContains(fields[1], ':')) {
      mki = fields[1];
    } else {
      lifetime = fields[1];
    }
  } else if (fields.size() == 3) {
    if (absl::StrContains(fields[1], ':')) {
      return absl::InvalidArgumentError(
          "inline key has the MKI before the lifetime: RFC 4568 §9.2 puts the lifetime first");
    }
    lifetime = fields[1];
    mki = fields[2];
  }

  absl::StatusOr<size_t> decoded_len = CheckBase64(fields[0]);
  if (!decoded_len.ok()) return decoded_len.status();
  if (*decoded_len != static_cast<size_t>(info.key_salt_len())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key for %s must be %d bytes (key %d + salt %d), got %d", ToAbsl(info.name),
                        info.key_salt_len(), info.key_len, info.salt_len, *decoded_len));
  }
  WipedString decoded;
  if (!absl::Base64Unescape(fields[0], decoded.get()) || decoded.str().size() != *decoded_len) {
    return absl::InvalidArgumentError("key is not valid base64");  // CheckBase64 said it was
  }
  std::memcpy(key->key.data(), decoded.str().data(), info.key_len);
  std::memcpy(key->salt.data(), decoded.str().data() + info.key_len, info.salt_len);

  if (lifetime.has_value()) {
    absl::StatusOr<uint64_t> packets = ParseLifetime(*lifetime);
    if (!packets.ok()) return packets.status();
    key->lifetime = *packets;
  }
  if (mki.has_value()) {
    if (absl::Status status = ParseMki(*mki, key); !status.ok()) return status;
  }
  return absl::OkStatus();
}

// RFC 4568 §6.3 session parameters.
absl::Status ParseSessionParam(absl::string_view param, SdesCrypto* crypto, bool* seen_kdr) {
  if (absl::StartsWith(param, kInline)) {
    return absl::InvalidArgumentError(
        "a second inline key follows the first: only one inline key is supported");
  }
  const std::pair<absl::string_view, absl::string_view> name_value =
      absl::StrSplit(param, absl::MaxSplits('=', 1));
  const absl::string_view name = name_value.first;
  const absl::string_view value = name_value.second;
  const bool has_value = absl::StrContains(param, '=');

  if (name == "KDR") {
    // RFC 4568 §6.3.1: KDR=0, the default, derives session keys once.
    uint64_t rate = 0;
    if (!has_value || !AllDigits(value)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed key derivation rate ",
                                                     ParamText(name, value), ": expected KDR=0"));
    }
    if (!ParseDigits(value, &rate) || rate != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("key derivation rate ", ParamText(name, value),
                       " is not supported: Sluice derives session keys once (KDR=0)"));
    }
    if (*seen_kdr) return absl::InvalidArgumentError("session parameter KDR appears twice");
    *seen_kdr = true;
    return absl::OkStatus();
  }
  if (name == "UNENCRYPTED_SRTCP") {
    if (has_value) return absl::InvalidArgumentError("UNENCRYPTED_SRTCP takes no value");
    if (crypto->unencrypted_srtcp) {
      return absl::InvalidArgumentError("session parameter UNENCRYPTED_SRTCP appears twice");
    }
    crypto->unencrypted_srtcp = true;
    return absl::OkStatus();
  }
  if (name == "WSH") {
    uint64_t window = 0;
    if (!has_value || !AllDigits(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed window size hint ", ParamText(name, value), ": expected WSH=<n>, n >= 64"));
    }
    if (!ParseDigits(value, &window) || window > UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("window size hint ", ParamText(name, value),
                                                     " is too large: at most ", UINT32_MAX));
    }
    if (window < kMinWindowSizeHint) {
      return absl::InvalidArgumentError(
          absl::StrCat("window size hint ", ParamText(name, value),
                       " is too small: RFC 4568 §6.3.6 requires at least 64 packets"));
    }
    if (crypto->window_size_hint.has_value()) {
      return absl::InvalidArgumentError("session parameter WSH appears twice");
    }
    crypto->window_size_hint = static_cast<uint32_t>(window);
    return absl::OkStatus();
  }
  if (name == "UNENCRYPTED_SRTP") {
    return absl::InvalidArgumentError(
        "UNENCRYPTED_SRTP is not supported: Sluice encrypts SRTP (choose a NULL_HMAC suite for "
        "clear payloads)");
  }
  if (name == "UNAUTHENTICATED_SRTP") {
    return absl::InvalidArgumentError(
        "UNAUTHENTICATED_SRTP is not supported: Sluice always authenticates SRTP");
  }
  if (name == "FEC_ORDER" || name == "FEC_KEY") {
    // The value of FEC_KEY is a key: never quoted.
    return absl::InvalidArgumentError(absl::StrCat(
        name, " is not supported: Sluice does not protect forward error correction streams"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown session parameter", QuoteName(name),
                   ": Sluice accepts KDR=0, UNENCRYPTED_SRTCP and WSH=<n>"));
}

// Lifetime in the form the parser takes back: 2^n where n is 1 to 48, else
// decimal.
std::string FormatLifetime(uint64_t lifetime) {
  const bool power_of_two = (lifetime & (lifetime - 1)) == 0;
  if (power_of_two && lifetime >= 2 && lifetime <= (uint64_t{1} << kMaxLifetimeLog2)) {
    int n = 0;
    while ((uint64_t{1} << n) != lifetime) ++n;
    return absl::StrCat("2^", n);
  }
  return absl::StrCat(lifetime);
}

}  // namespace

absl::StatusOr<SdesCrypto> ParseSdesCrypto(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);  // a trailing CRLF from the SDP line
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty crypto attribute: ", kExpected));
  }
  const std::vector<absl::string_view> tokens = absl::StrSplit(value, ' ', absl::SkipEmpty());
  SdesCrypto crypto;
  size_t next = 0;

  if (AllDigits(tokens[next])) {
    if (tokens[next].size() > kMaxTagDigits) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tag has %d digits: RFC 4568 §9.1 allows at most 9", tokens[next].size()));
    }
    uint32_t tag = 0;
    if (!absl::SimpleAtoi(tokens[next], &tag)) {  // cannot fail on 1 to 9 digits
      return absl::InvalidArgumentError("malformed tag");
    }
    crypto.tag = tag;
    ++next;
  }

  if (next == tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("missing suite after the tag: ", kExpected));
  }
  const absl::string_view suite_name = tokens[next++];
  if (absl::StartsWith(suite_name, kInline)) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing suite before the inline key: ", kExpected));
  }
  const std::optional<crypto::Suite> suite =
      crypto::SuiteFromName(std::string_view(suite_name.data(), suite_name.size()));
  if (!suite.has_value()) return UnknownSuiteError(suite_name);
  crypto.key.suite = *suite;
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(*suite);

  if (next == tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("missing key parameters after ",
                                                   ToAbsl(info.name), ": expected inline:<key>"));
  }
  if (absl::Status status = ParseKeyParams(tokens[next++], info, &crypto.key); !status.ok()) {
    return status;
  }

  bool seen_kdr = false;
  for (; next < tokens.size(); ++next) {
    if (absl::Status status = ParseSessionParam(tokens[next], &crypto, &seen_kdr); !status.ok()) {
      return status;
    }
  }
  return crypto;
}

std::string FormatSdesCrypto(const SdesCrypto& crypto) {
  const MasterKey& key = crypto.key;
  const crypto::SuiteInfo& info = key.info();

  // key||salt, and its base64, exist only in buffers wiped on the way out.
  std::array<uint8_t, sizeof(key.key) + sizeof(key.salt)> key_salt;
  std::memcpy(key_salt.data(), key.key.data(), info.key_len);
  std::memcpy(key_salt.data() + info.key_len, key.salt.data(), info.salt_len);
  WipedString encoded;
  // Standard base64 with '=' padding: RFC 4568's 30-byte keys need none;
  // the 28-, 38-, 44- and 46-byte keys of RFC 7714 and RFC 6188 get it, the
  // form peers generally accept (the parser takes both).
  absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(key_salt.data()), info.key_salt_len()),
      encoded.get());
  OPENSSL_cleanse(key_salt.data(), key_salt.size());

  std::string out;
  out.reserve(kFormatReserve);
  if (crypto.tag.has_value()) absl::StrAppend(&out, *crypto.tag, " ");
  absl::StrAppend(&out, ToAbsl(info.name), " ", kInline, encoded.str());
  if (key.lifetime != 0) absl::StrAppend(&out, "|", FormatLifetime(key.lifetime));
  if (key.mki_len > 0) {
    const int mki_len = std::min<int>(key.mki_len, kMaxMkiLen);
    uint64_t mki = 0;
    for (int i = 0; i < mki_len; ++i) mki = (mki << 8) | key.mki[i];
    absl::StrAppend(&out, "|", mki, ":", mki_len);
  }
  if (crypto.unencrypted_srtcp) absl::StrAppend(&out, " UNENCRYPTED_SRTCP");
  if (crypto.window_size_hint.has_value()) absl::StrAppend(&out, " WSH=", *crypto.window_size_hint);
  return out;
}

absl::StatusOr<SdesCrypto> GenerateSdesCrypto(crypto::Suite suite) {
  SdesCrypto crypto;
  crypto.key.suite = suite;
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(suite);
  if (RAND_priv_bytes(crypto.key.key.data(), static_cast<int>(info.key_len)) != 1 ||
      RAND_priv_bytes(crypto.key.salt.data(), static_cast<int>(info.salt_len)) != 1) {
    return absl::InternalError("the CSPRNG failed");
  }
  return crypto;
}

}  // namespace sluice::srtp
