#include "sluice/ice/credentials.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::ice {
namespace {

TEST(IceChars, LettersDigitsPlusAndSlash) {
  EXPECT_TRUE(IsIceChars("azAZ09+/"));
  EXPECT_TRUE(IsIceChars(""));
  for (const char* bad : {"a:b", "a b", "a=b", "a-b", "\xc3\xa9"}) {
    EXPECT_FALSE(IsIceChars(bad)) << bad;
  }
}

TEST(IceCredentials, LengthsOfRfc8839) {
  EXPECT_TRUE(ValidateIceCredentials(MakeIceCredentials("abcd", "0123456789012345678901")).ok());
  EXPECT_FALSE(ValidateIceCredentials(MakeIceCredentials("abc", "0123456789012345678901")).ok());
  EXPECT_FALSE(ValidateIceCredentials(MakeIceCredentials("abcd", "012345678901234567890")).ok());
  EXPECT_FALSE(
      ValidateIceCredentials(MakeIceCredentials(std::string(257, 'a'), "0123456789012345678901"))
          .ok());
  EXPECT_TRUE(
      ValidateIceCredentials(MakeIceCredentials(std::string(256, 'a'), "0123456789012345678901"))
          .ok());
}

TEST(IceCredentials, ErrorsNeverShowThePassword) {
  const absl::Status s =
      ValidateIceCredentials(MakeIceCredentials("abcd", "secret:secret:secret:secret"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("pwd"), std::string::npos);
  EXPECT_EQ(s.message().find("secret"), std::string::npos);
}

TEST(IceCredentials, GeneratedOnesAreValidAndDiffer) {
  std::set<std::string> ufrags, pwds;
  for (int i = 0; i < 64; ++i) {
    auto c = GenerateIceCredentials();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->ufrag.size(), kGeneratedUfragChars);
    EXPECT_EQ(c->pwd.size(), kGeneratedPwdChars);
    EXPECT_TRUE(ValidateIceCredentials(*c).ok());
    ufrags.insert(c->ufrag);
    pwds.insert(std::string(c->pwd.begin(), c->pwd.end()));
  }
  EXPECT_EQ(ufrags.size(), 64u);
  EXPECT_EQ(pwds.size(), 64u);
}

TEST(IceCredentials, GeneratedCharactersCoverTheAlphabet) {
  std::set<char> seen;
  for (int i = 0; i < 200; ++i) {
    auto c = GenerateIceCredentials();
    ASSERT_TRUE(c.ok());
    seen.insert(c->pwd.begin(), c->pwd.end());
  }
  EXPECT_EQ(seen.size(), 64u);  // 4800 draws: each of 64 characters appears
}

}  // namespace
}  // namespace sluice::ice
