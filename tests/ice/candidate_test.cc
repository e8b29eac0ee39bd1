#include "sluice/ice/candidate.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::ice {
namespace {

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

TEST(CandidatePriority, Rfc8445Formula) {
  // 2^24 * 126 + 2^8 * 65535 + (256 - 1): the familiar host priority.
  EXPECT_EQ(CandidatePriority(kHostTypePreference, 65535, 1), 2130706431u);
  EXPECT_EQ(CandidatePriority(kHostTypePreference, 65535, 2), 2130706430u);
  EXPECT_EQ(CandidatePriority(0, 0, 256), 0u);
  EXPECT_EQ(CandidatePriority(110, 1, 1), (110u << 24) + (1u << 8) + 255u);
  EXPECT_EQ(CandidatePriority(500, 70000, 0), CandidatePriority(126, 65535, 1));  // clamped
}

TEST(HostCandidates, OnePerAddressWithUniquePriorities) {
  const std::vector<packet::Endpoint> addrs = {Ep("192.0.2.1:40000"), Ep("[2001:db8::1]:40000"),
                                               Ep("192.0.2.1:40002")};
  const auto c = HostCandidates(addrs);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].foundation, "1");
  EXPECT_EQ(c[1].foundation, "2");
  EXPECT_EQ(c[2].foundation, "1");  // same base address, same foundation (§5.1.1.3)
  EXPECT_EQ(c[0].priority, 2130706431u);
  EXPECT_EQ(c[1].priority, CandidatePriority(126, 65534, 1));
  EXPECT_EQ(c[2].priority, CandidatePriority(126, 65533, 1));
  for (const auto& x : c) EXPECT_EQ(x.component, 1u);
  EXPECT_EQ(c[1].address, addrs[1]);
}

TEST(HostCandidates, SkipsUnsetAddressesAndPortZero) {
  const std::vector<packet::Endpoint> addrs = {packet::Endpoint{}, Ep("192.0.2.1:1"),
                                               packet::Endpoint{Ep("192.0.2.2:1").ip, 0}};
  const auto c = HostCandidates(addrs);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].priority, 2130706431u);
}

TEST(FormatCandidateAttribute, Rfc8839Grammar) {
  const auto c = HostCandidates(std::vector{Ep("192.0.2.1:40000"), Ep("[2001:db8::1]:40002")});
  EXPECT_EQ(FormatCandidateAttribute(c[0]),
            "candidate:1 1 UDP 2130706431 192.0.2.1 40000 typ host");
  EXPECT_EQ(FormatCandidateAttribute(c[1]),
            "candidate:2 1 UDP 2130706175 2001:db8::1 40002 typ host");
}

}  // namespace
}  // namespace sluice::ice
