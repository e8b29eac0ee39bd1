// IP addresses and UDP endpoints (IPv4 and IPv6), as the data plane and the
// control plane both use them.
//
// Any thread. Trivially copyable values. Comparison and Prefix::Contains do
// not allocate and suit the data plane; Parse and ToString (inet_pton and
// inet_ntop underneath) are for the control plane and logs.
#ifndef SLUICE_PACKET_ADDRESS_H_
#define SLUICE_PACKET_ADDRESS_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/string_view.h"

namespace sluice::packet {

struct IpAddress {
  // IPv4 in bytes[0..3], network order, the other 12 bytes zero; IPv6 in all
  // 16. The constructors and Parse keep the unused bytes zero, so == can
  // compare the whole array. First, at offset 0: a copy of the address is one
  // aligned 16-byte move that the store before it can forward to (after a
  // one-byte family in front it spanned two stores, a ~20-cycle stall per
  // copy in the data plane).
  std::array<uint8_t, 16> bytes{};
  uint8_t family = 0;  // 4 or 6; 0 = unset

  // Inline: the parser builds one or two per packet.
  static IpAddress V4(uint32_t host_order) noexcept {
    IpAddress a;
    a.family = 4;
    a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<uint8_t>(host_order);
    return a;
  }
  static IpAddress V4Bytes(const uint8_t b[4]) noexcept {
    IpAddress a;
    a.family = 4;
    std::memcpy(a.bytes.data(), b, 4);
    return a;
  }
  static IpAddress V6Bytes(const uint8_t b[16]) noexcept {
    IpAddress a;
    a.family = 6;
    std::memcpy(a.bytes.data(), b, 16);
    return a;
  }
  // "10.0.0.1" or "fd00::1" (no brackets, no zone, no surrounding spaces);
  // nullopt when neither. IPv4 is strict dotted quad (inet_pton rules: no
  // octal, no short forms). "::ffff:10.0.0.1" is an IPv6 address.
  static std::optional<IpAddress> Parse(absl::string_view text);

  bool is_v4() const noexcept { return family == 4; }
  bool is_v6() const noexcept { return family == 6; }
  bool unset() const noexcept { return family == 0; }
  // Meaningful only when is_v4().
  uint32_t v4_host_order() const noexcept;
  // 4 for IPv4, 16 for IPv6, 0 when unset.
  uint32_t size() const noexcept { return family == 4 ? 4 : family == 6 ? 16 : 0; }
  // inet_ntop form ("10.0.0.1", "fd00::1"); "unset" when unset.
  std::string ToString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.family == b.family && a.bytes == b.bytes;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.family, a.bytes);
  }
};

struct Endpoint {
  IpAddress ip;
  uint16_t port = 0;

  // "10.0.0.1:4000" or "[fd00::1]:4000"; the port is decimal 1-65535 without
  // leading zeros. nullopt for anything else (port 0, a sign, spaces, an
  // unbracketed IPv6 address, a bracketed IPv4 one).
  static std::optional<Endpoint> Parse(absl::string_view text);
  // The forms Parse accepts (a port 0 from the wire prints as ":0").
  std::string ToString() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.ip == b.ip && a.port == b.port;
  }
  friend bool operator!=(const Endpoint& a, const Endpoint& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.ip, e.port);
  }
};

// An address with a prefix length, as interfaces are configured: "10.0.0.1/24".
// The address keeps its host bits (it is the interface's own address).
struct Prefix {
  IpAddress ip;
  uint8_t length = 0;  // <= 32 for IPv4, <= 128 for IPv6

  // "addr/len", len decimal without sign or leading zeros; nullopt otherwise.
  static std::optional<Prefix> Parse(absl::string_view text);
  // True when `other` has the same family and the same first `length` bits.
  bool Contains(const IpAddress& other) const noexcept;
  std::string ToString() const;

  friend bool operator==(const Prefix& a, const Prefix& b) {
    return a.ip == b.ip && a.length == b.length;
  }
  friend bool operator!=(const Prefix& a, const Prefix& b) { return !(a == b); }
};

// Where a frame for `peer` goes on a link whose own prefix is `prefix`:
// the peer itself when on-link (or when there is no gateway), else the
// gateway.
inline IpAddress NextHop(const IpAddress& peer, const std::optional<Prefix>& prefix,
                         const std::optional<IpAddress>& gateway) noexcept {
  return prefix && !prefix->Contains(peer) && gateway ? *gateway : peer;
}

static_assert(std::is_trivially_copyable_v<IpAddress>);
static_assert(std::is_trivially_copyable_v<Endpoint>);
static_assert(std::is_trivially_copyable_v<Prefix>);

}  // namespace sluice::packet

#endif  // SLUICE_PACKET_ADDRESS_H_
