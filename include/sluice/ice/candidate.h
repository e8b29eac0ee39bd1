// Host candidates of an ICE-lite agent and their SDP form: the data of the
// `a=candidate:` lines the control plane puts into SDP (RFC 8839 §5.1), with
// priorities per RFC 8445 §5.1.2.1.
//
// Any thread. Pure functions.
#ifndef SLUICE_ICE_CANDIDATE_H_
#define SLUICE_ICE_CANDIDATE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sluice/packet/address.h"

namespace sluice::ice {

// RFC 8445 §5.1.2.2: the recommended type preference of host candidates.
inline constexpr uint32_t kHostTypePreference = 126;
// RFC 8445 §5.1.2.1: the local preference of an agent with one address.
inline constexpr uint32_t kMaxLocalPreference = 65535;
inline constexpr uint32_t kRtpComponent = 1;

struct HostCandidate {
  std::string foundation;  // 1-32 ice-chars (RFC 8839 §5.1)
  uint32_t component = kRtpComponent;
  uint32_t priority = 0;
  packet::Endpoint address;
};

// RFC 8445 §5.1.2.1: 2^24 * type preference + 2^8 * local preference +
// (256 - component id). type_preference <= 126, local_preference <= 65535,
// component 1-256 (values out of range are clamped).
uint32_t CandidatePriority(uint32_t type_preference, uint32_t local_preference,
                           uint32_t component) noexcept;

// One host candidate per address, in order, for `component`. The first gets
// local preference 65535 and each next one less, so priorities are unique
// (RFC 8445 §5.1.2.1); candidates on the same IP address share a foundation
// and different addresses get different ones (§5.1.1.3). Addresses that are
// unset or have port 0 are skipped.
std::vector<HostCandidate> HostCandidates(std::span<const packet::Endpoint> addresses,
                                          uint32_t component = kRtpComponent);

// The attribute value after "a=" (RFC 8839 §5.1):
// "candidate:1 1 UDP 2130706431 192.0.2.1 40000 typ host".
std::string FormatCandidateAttribute(const HostCandidate& candidate);

}  // namespace sluice::ice

#endif  // SLUICE_ICE_CANDIDATE_H_
