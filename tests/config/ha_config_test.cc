// The [ha] table: where Redis is, the instance's key prefix, the KEK file,
// the checkpoint rule's figures, the standby and its heartbeat; TLS refused with a
// reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/config/config.h"

namespace sluice::config {
namespace {

using ::testing::HasSubstr;

std::string Cfg(const std::string& ha) {
  return absl::StrCat(
      "[[interface]]\nname = \"a\"\ndevice = \"net0\"\nipv4 = \"10.0.0.1/24\"\n"
      "[workers]\nlcores = [1]\n",
      ha);
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Config> c = ParseConfig(text, "test.toml");
  return c.ok() ? "OK" : std::string(c.status().message());
}

const std::string kMinimal = "[ha]\nredis = \"unix:/run/redis/redis.sock\"\nkek_file = \"/etc/sluice/kek\"\n";

TEST(HaConfigTest, AbsentMeansNoReplication) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(""), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->ha.has_value());
}

TEST(HaConfigTest, Defaults) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kMinimal), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->ha.has_value());
  EXPECT_EQ(c->ha->redis, "unix:/run/redis/redis.sock");
  EXPECT_EQ(c->ha->instance, "sluice");
  EXPECT_EQ(c->ha->kek_file, "/etc/sluice/kek");
  EXPECT_EQ(c->ha->checkpoint_ms, 1000u);
  EXPECT_EQ(c->ha->max_rtcp_pps, 1000u);
  EXPECT_EQ(c->ha->max_rtp_pps, 1000u);
  EXPECT_TRUE(c->ha->password.empty());
}

TEST(HaConfigTest, EverySetting) {
  absl::StatusOr<Config> c = ParseConfig(
      Cfg("[ha]\nredis = \"tcp://127.0.0.1:6379\"\npassword = \"pw\"\nrole = \"active\"\n"
          "instance = \"relay-1.dc2\"\nkek_file = \"/k\"\nprevious_kek_file = \"/old\"\ncheckpoint_ms = 200\n"
          "max_rtcp_pps = 50\nmax_rtp_pps = 2000\nrestore_timeout_ms = 2000\ntls = false\n"),
      "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ha->redis, "tcp://127.0.0.1:6379");
  EXPECT_EQ(c->ha->password, "pw");
  EXPECT_EQ(c->ha->instance, "relay-1.dc2");
  EXPECT_EQ(c->ha->previous_kek_file, "/old");
  EXPECT_EQ(c->ha->checkpoint_ms, 200u);
  EXPECT_EQ(c->ha->max_rtcp_pps, 50u);
  EXPECT_EQ(c->ha->max_rtp_pps, 2000u);
  EXPECT_EQ(c->ha->restore_timeout_ms, 2000u);
}

// A standby, and the heartbeat short enough for a failover within a second.
TEST(HaConfigTest, StandbyAndHeartbeat) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kMinimal), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->ha->standby);
  EXPECT_EQ(c->ha->heartbeat_ms, 1000u);
  EXPECT_EQ(c->ha->heartbeat_ttl_ms, 3000u);
  EXPECT_TRUE(c->ha->auto_promote);
  c = ParseConfig(Cfg(kMinimal + "role = \"standby\"\nheartbeat_ms = 100\n"
                                 "auto_promote = false\npromote_after_ms = 0\n"),
                  "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->ha->standby);
  EXPECT_EQ(c->ha->heartbeat_ms, 100u);
  EXPECT_EQ(c->ha->heartbeat_ttl_ms, 3000u) << "3 x heartbeat_ms, at least 3 s";
  EXPECT_FALSE(c->ha->auto_promote);
  EXPECT_EQ(c->ha->promote_after_ms, 0u);
  c = ParseConfig(Cfg(kMinimal + "heartbeat_ms = 100\nheartbeat_ttl_ms = 300\n"), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ha->heartbeat_ttl_ms, 300u);
}

TEST(HaConfigTest, Refusals) {
  EXPECT_THAT(ErrorOf(Cfg("[ha]\nredis = \"redis://x\"\nkek_file = \"/k\"\n")),
              HasSubstr("ha.redis: expected \"unix:/path/to/redis.sock\" or \"tcp://IP:port\""));
  EXPECT_THAT(ErrorOf(Cfg("[ha]\nredis = \"tcp://redis.example:6379\"\nkek_file = \"/k\"\n")),
              HasSubstr("an address"));
  EXPECT_THAT(ErrorOf(Cfg("[ha]\nredis = \"tcp://127.0.0.1\"\nkek_file = \"/k\"\n")),
              HasSubstr("ha.redis"));
  EXPECT_EQ(ErrorOf(Cfg("[ha]\nredis = \"tcp://[::1]:6379\"\nkek_file = \"/k\"\n")), "OK");
  EXPECT_THAT(ErrorOf(Cfg("[ha]\nredis = \"unix:/r\"\n")), HasSubstr("ha.kek_file: required"));
  EXPECT_THAT(ErrorOf(Cfg("[ha]\nredis = \"unix:/r\"\nkek_file = \"kek\"\n")),
              HasSubstr("ha.kek_file: required"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "previous_kek_file = \"old\"\n")),
              HasSubstr("ha.previous_kek_file: expected an absolute path"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "tls = true\n")), HasSubstr("hiredis 0.14 has no TLS"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "heartbeat_ms = 10\n")), HasSubstr("ha.heartbeat_ms"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "heartbeat_ms = 200\nheartbeat_ttl_ms = 500\n")),
              HasSubstr("ha.heartbeat_ttl_ms: must be at least 3 x heartbeat_ms (600)"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "promote_after_ms = 600001\n")),
              HasSubstr("ha.promote_after_ms"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "role = \"primary\"\n")),
              HasSubstr("expected \"active\" or \"standby\""));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "instance = \"a*b\"\n")), HasSubstr("ha.instance"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "instance = \"\"\n")), HasSubstr("ha.instance"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "checkpoint_ms = 10\n")), HasSubstr("ha.checkpoint_ms"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "max_rtcp_pps = 0\n")), HasSubstr("ha.max_rtcp_pps"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "max_rtp_pps = 0\n")), HasSubstr("ha.max_rtp_pps"));
  // The restored sender's skip over two intervals stays at most 2^14, well
  // below the 2^15 a receiver's ROC estimate follows (RFC 3711 §3.3.1).
  EXPECT_EQ(ErrorOf(Cfg(kMinimal + "max_rtp_pps = 8192\n")), "OK");  // 8192 × 2 × 1 s
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "max_rtp_pps = 8193\n")),
              HasSubstr("ha.max_rtp_pps: max_rtp_pps × 2 × checkpoint_ms / 1000 must be at most 16384"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "checkpoint_ms = 9000\n")), HasSubstr("lower max_rtp_pps or checkpoint_ms"));
  EXPECT_THAT(ErrorOf(Cfg(kMinimal + "kek = \"x\"\n")), HasSubstr("kek"));
}

}  // namespace
}  // namespace sluice::config
