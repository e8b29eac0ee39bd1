#include "sluice/worker/drop_reason.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::worker {
namespace {

// Counter names are an interface (stats, sluicectl, dashboards): every
// reason has one, they are distinct, and they are lower_snake_case.
TEST(DropReasonTest, EveryReasonHasADistinctStableName) {
  std::set<std::string> names;
  for (int i = 0; i < kDropReasonCount; ++i) {
    const char* name = DropReasonName(static_cast<DropReason>(i));
    ASSERT_NE(name, nullptr) << i;
    const std::string s(name);
    EXPECT_FALSE(s.empty()) << i;
    EXPECT_NE(s, "unknown") << i;
    for (char c : s) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << s;
    names.insert(s);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kDropReasonCount));
  EXPECT_STREQ(DropReasonName(DropReason::kAuthFailed), "auth_failed");
  EXPECT_STREQ(DropReasonName(DropReason::kHandoffFull), "handoff_full");
  EXPECT_STREQ(DropReasonName(DropReason::kWrongInterface), "wrong_interface");
  EXPECT_STREQ(DropReasonName(DropReason::kNotKeyed), "not_keyed");
  EXPECT_STREQ(DropReasonName(DropReason::kHandshakeFull), "handshake_full");
  EXPECT_STREQ(DropReasonName(DropReason::kHandshakeRate), "handshake_rate");
  EXPECT_STREQ(DropReasonName(DropReason::kHandshakePeerRate), "handshake_peer_rate");
}

// Every reason has a counter: the count reaches past the last one.
TEST(DropReasonTest, TheCountCoversEveryReason) {
  for (DropReason r : {DropReason::kKeyRetired, DropReason::kNotKeyed,
                       DropReason::kHandshakeFull, DropReason::kHandshakeRate,
                       DropReason::kHandshakePeerRate}) {
    EXPECT_LT(static_cast<int>(r), kDropReasonCount) << DropReasonName(r);
  }
}

}  // namespace
}  // namespace sluice::worker
