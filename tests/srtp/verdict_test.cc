// Verdict names: stable, distinct, one per verdict (counters and logs use them).
#include "sluice/srtp/verdict.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::srtp {
namespace {

TEST(VerdictTest, NamesAreStable) {
  EXPECT_EQ(std::string(VerdictName(Verdict::kOk)), "ok");
  EXPECT_EQ(std::string(VerdictName(Verdict::kMalformed)), "malformed");
  EXPECT_EQ(std::string(VerdictName(Verdict::kAuthFailed)), "auth_failed");
}

TEST(VerdictTest, EveryVerdictHasItsOwnName) {
  std::set<std::string> names;
  for (int v = 0; v < kVerdictCount; ++v) {
    const char* name = VerdictName(static_cast<Verdict>(v));
    ASSERT_NE(name, nullptr);
    EXPECT_FALSE(std::string(name).empty());
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kVerdictCount));
}

}  // namespace
}  // namespace sluice::srtp
