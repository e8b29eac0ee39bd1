#include "sluice/ice/candidate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sluice::ice {

uint32_t CandidatePriority(uint32_t type_preference, uint32_t local_preference,
                           uint32_t component) noexcept {
  type_preference = std::min<uint32_t>(type_preference, 126);
  local_preference = std::min<uint32_t>(local_preference, kMaxLocalPreference);
  component = std::clamp<uint32_t>(component, 1, 256);
  return (type_preference << 24) + (local_preference << 8) + (256 - component);
}

std::vector<HostCandidate> HostCandidates(std::span<const packet::Endpoint> addresses,
                                          uint32_t component) {
  std::vector<HostCandidate> out;
  std::vector<packet::IpAddress> bases;  // index + 1 is the foundation
  for (const packet::Endpoint& a : addresses) {
    if (a.ip.unset() || a.port == 0) continue;
    auto base = std::find(bases.begin(), bases.end(), a.ip);
    if (base == bases.end()) base = bases.insert(bases.end(), a.ip);
    HostCandidate c;
    c.foundation = absl::StrCat(base - bases.begin() + 1);
    c.component = component;
    const uint32_t local_preference = kMaxLocalPreference - static_cast<uint32_t>(
        std::min<size_t>(out.size(), kMaxLocalPreference));
    c.priority = CandidatePriority(kHostTypePreference, local_preference, component);
    c.address = a;
    out.push_back(std::move(c));
  }
  return out;
}

std::string FormatCandidateAttribute(const HostCandidate& c) {
  // RFC 8839 §5.1: foundation, component-id, transport, priority,
  // connection-address (an IPv6 address without brackets), port, "typ host".
  return absl::StrCat("candidate:", c.foundation, " ", c.component, " UDP ", c.priority, " ",
                      c.address.ip.ToString(), " ", c.address.port, " typ host");
}

}  // namespace sluice::ice
