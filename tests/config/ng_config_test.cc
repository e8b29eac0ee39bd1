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
  ASSERT_EQ(c->ng->allowed_sources.size(), 2u);  // loopback only
  EXPECT_EQ(c->ng->allowed_sources[0].ToString(), "127.0.0.0/8");
  EXPECT_EQ(c->ng->allowed_sources[1].ToString(), "::1/128");
  EXPECT_EQ(c->ng->socket, "");
  EXPECT_FALSE(c->ng->allow_null_auth);
  EXPECT_EQ(c->ng->max_calls, c->limits.max_sessions);
  EXPECT_EQ(c->ng->offer_timeout_ms, 3600000u);
}

TEST(NgConfigTest, AccessKeysRead) {
  absl::StatusOr<Config> c = ParseConfig(
      Cfg("[ng]\nlisten = \"10.0.0.1:2223\"\nallowed_sources = [\"10.0.0.5\", \"10.1.0.0/16\", "
          "\"fd00::7\"]\nsocket = \"/run/sluice/ng.sock\"\nsocket_group = \"root\"\n"
          "allow_null_auth = true\nmax_calls = 50\noffer_timeout_ms = 60000\n"
          "[limits]\nmax_sessions = 70\n"),
      "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->ng->allowed_sources.size(), 3u);
  EXPECT_EQ(c->ng->allowed_sources[0].ToString(), "10.0.0.5/32");
  EXPECT_EQ(c->ng->allowed_sources[1].ToString(), "10.1.0.0/16");
  EXPECT_EQ(c->ng->allowed_sources[2].ToString(), "fd00::7/128");
  EXPECT_EQ(c->ng->socket, "/run/sluice/ng.sock");
  EXPECT_EQ(c->ng->socket_group, "root");
  EXPECT_TRUE(c->ng->allow_null_auth);
  EXPECT_EQ(c->ng->max_calls, 50u);
  EXPECT_EQ(c->ng->offer_timeout_ms, 60000u);
  // Unset, max_calls follows [limits] max_sessions.
  c = ParseConfig(Cfg("[ng]\n[limits]\nmax_sessions = 70\n"), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ng->max_calls, 70u);
}

TEST(NgConfigTest, ANonLoopbackListenNeedsAllowedSources) {
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nlisten = \"0.0.0.0:2223\"\n")),
              HasSubstr("ng.listen: 0.0.0.0:2223 is not a loopback address: set "
                        "ng.allowed_sources"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nlisten = \"[fd00::1]:2223\"\n")),
              HasSubstr("is not a loopback address"));
  EXPECT_TRUE(ParseConfig(Cfg("[ng]\nlisten = \"127.0.0.2:2223\"\n"), "t").ok());
  EXPECT_TRUE(ParseConfig(Cfg("[ng]\nlisten = \"[::1]:2223\"\n"), "t").ok());
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
  for (const char* bad : {"\"10.0.0.1\"", "[\"10.0.0.300\"]", "[1]", "[\"10.0.0.0/33\"]"}) {
    EXPECT_THAT(ErrorOf(Cfg(absl::StrCat("[ng]\nallowed_sources = ", bad, "\n"))),
                HasSubstr("ng.allowed_sources: expected an array of addresses or prefixes"))
        << bad;
  }
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nsocket = \"ng.sock\"\n")),
              HasSubstr("ng.socket: expected an absolute path"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nsocket_group = \"no-such-group-x\"\n")),
              HasSubstr("ng.socket_group: no group"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nallow_null_auth = 1\n")), HasSubstr("ng.allow_null_auth"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\nmax_calls = 0\n")), HasSubstr("ng.max_calls"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\noffer_timeout_ms = 999\n")), HasSubstr("ng.offer_timeout_ms"));
}

TEST(NgConfigTest, DeleteDelay) {
  absl::StatusOr<Config> c = ParseConfig(Cfg("[ng]\n"), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ng->delete_delay_ms, 30000u);  // rtpengine's default
  c = ParseConfig(Cfg("[ng]\ndelete_delay_ms = 0\n"), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ng->delete_delay_ms, 0u);
  EXPECT_THAT(ErrorOf(Cfg("[ng]\ndelete_delay_ms = 86400001\n")),
              HasSubstr("ng.delete_delay_ms: must be between 0 and 86400000"));
  EXPECT_THAT(ErrorOf(Cfg("[ng]\ndelete_delay_ms = -1\n")), HasSubstr("ng.delete_delay_ms"));
}

}  // namespace
}  // namespace sluice::config
