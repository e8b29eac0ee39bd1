#include "sluice/packet/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice::packet {
namespace {

// A decimal number of 1 to `max_digits` digits without leading zeros, nothing
// else: SimpleAtoi alone would also take a sign and surrounding whitespace.
bool ParseDecimal(absl::string_view text, size_t max_digits, uint32_t* out) {
  if (text.empty() || text.size() > max_digits) return false;
  if (text.size() > 1 && text.front() == '0') return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, out);
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(absl::string_view text) {
  // inet_pton wants a NUL-terminated string; anything longer than the longest
  // IPv6 text form is not an address. An embedded NUL would make inet_pton
  // see a shorter string than we were given, so refuse it.
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  if (text.find('\0') != absl::string_view::npos) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';

  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = 6;
    return a;
  }
  return std::nullopt;
}

uint32_t IpAddress::v4_host_order() const noexcept {
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 |
         uint32_t{bytes[3]};
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  const int af = is_v4() ? AF_INET : is_v6() ? AF_INET6 : 0;
  if (af == 0 || inet_ntop(af, bytes.data(), buf, sizeof(buf)) == nullptr) return "unset";
  return buf;
}

std::optional<Endpoint> Endpoint::Parse(absl::string_view text) {
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text.front() == '[') {
    // "[v6]:port"
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    // "a.b.c.d:port": exactly one colon, or it would be an unbracketed IPv6.
    const size_t colon = text.find(':');
    if (colon == absl::string_view::npos || text.find(':', colon + 1) != absl::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto ip = IpAddress::Parse(host);
  if (!ip) return std::nullopt;
  // Brackets are for IPv6 only.
  if (ip->is_v6() != (text.front() == '[')) return std::nullopt;
  uint32_t number = 0;
  if (!ParseDecimal(port, 5, &number) || number == 0 || number > 65535) return std::nullopt;
  Endpoint e;
  e.ip = *ip;
  e.port = static_cast<uint16_t>(number);
  return e;
}

std::string Endpoint::ToString() const {
  if (ip.is_v6()) return absl::StrCat("[", ip.ToString(), "]:", port);
  return absl::StrCat(ip.ToString(), ":", port);
}

std::optional<Prefix> Prefix::Parse(absl::string_view text) {
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) return std::nullopt;
  auto ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const absl::string_view len_text = text.substr(slash + 1);
  uint32_t length = 0;
  if (!ParseDecimal(len_text, 3, &length)) return std::nullopt;
  if (length > ip->size() * 8) return std::nullopt;
  Prefix p;
  p.ip = *ip;
  p.length = static_cast<uint8_t>(length);
  return p;
}

bool Prefix::Contains(const IpAddress& other) const noexcept {
  if (ip.unset() || other.family != ip.family || length > ip.size() * 8) return false;
  const uint32_t whole = length / 8;
  if (std::memcmp(ip.bytes.data(), other.bytes.data(), whole) != 0) return false;
  const uint32_t rest = length % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return ((ip.bytes[whole] ^ other.bytes[whole]) & mask) == 0;
}

std::string Prefix::ToString() const { return absl::StrCat(ip.ToString(), "/", length); }

}  // namespace sluice::packet
