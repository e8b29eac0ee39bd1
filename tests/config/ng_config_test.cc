// The [ng] table: absent means no ng listener; present, every key has a
// default and a checked range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/config/config.h"

namespace sluice::config {
namespace {

using ::testing::HasSubstr;

std::string Cfg(const std::string& ng) {
  return absl::StrCat(
      "[[interface]]\nname = \"a\"\ndevice = \"net0\"\nipv4 = \"10.0.0.1/24\"\n"
      "[[interface]]\nname = \"b\"\ndevice = \"net1\"\nipv4 = \"10.0.1.1/24\"\n"
      "[workers]\nlcores = [1]\n",
      ng);
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Config> c = ParseConfig(text, "test.toml");
  return c.ok() ? "OK" : std::string(c.status().message());
}

TEST(NgConfigTest, AbsentMeansNoListener) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(""), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->ng.has_value());
}

TEST(NgConfigTest, EmptyTableTakesTheDefaults) {
  absl::StatusOr<Config> c = ParseConfig(Cfg("[ng]\n"), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->ng.has_value());
  EXPECT_EQ(c->ng->listen.ToString(), "127.0.0.1:2223");
  EXPECT_EQ(c->ng->interface, "");
  EXPECT_EQ(c->ng->reply_cache_entries, 4096u);
  EXPECT_EQ(c->ng->reply_cache_ms, 30000u);
}

TEST(NgConfigTest, EveryKeyReads) {
  absl::StatusOr<Config> c = ParseConfig(
      Cfg("[ng]\nlisten = \"[::1]:22222\"\ninterface = \"b\"\nreply_cache_entries = 16\n"
          "reply_cache_ms = 600000\n"),
      "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ng->listen.ToString(), "[::1]:22222");
  EXPECT_EQ(c->ng->interface, "b");
  EXPECT_EQ(c->ng->reply_cache_entries, 16u);
  EXPECT_EQ(c->ng->reply_cache_ms, 600000u);
}

TEST(NgConfigTest, BadValuesAreRefusedWithTheirPath) {
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nlisten = \"localhost:2223\"\n")),
              HasSubstr("ng.listen: expected a UDP address and port"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nlisten = \"127.0.0.1:0\"\n")), HasSubstr("ng.listen"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\ninterface = \"zz\"\n")),
              HasSubstr("ng.interface: no [[interface]] is called \"zz\""));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nreply_cache_entries = 15\n")), HasSubstr("ng.reply_cache_entries"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nreply_cache_ms = 999\n")), HasSubstr("ng.reply_cache_ms"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nport = 2223\n")), HasSubstr("ng.port: unknown key"));
  EXPECT_THAT(ErrorOf(Cfg("ng = 1\n")), HasSubstr("ng"));
}

}  // namespace
}  // namespace sluice::config
