// The [webrtc] table: the DTLS certificate (files, or generated at start),
// the SRTP profiles in order, the DTLS MTU and deadline, the ICE consent
// timeout; every key with a default and a checked range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/config/config.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Cfg(const std::string& webrtc) {
  return absl::StrCat(
      "[[interface]]\nname = \"a\"\ndevice = \"net0\"\nipv4 = \"10.0.0.1/24\"\n"
      "[workers]\nlcores = [1]\n",
      webrtc);
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Config> c = ParseConfig(text, "test.toml");
  return c.ok() ? "OK" : std::string(c.status().message());
}

TEST(WebRtcConfigTest, Defaults) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(""), "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->webrtc.certificate.empty());
  EXPECT_TRUE(c->webrtc.private_key.empty());
  EXPECT_THAT(c->webrtc.srtp_profiles,
              ElementsAre("SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32",
                          "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_256_GCM"));
  EXPECT_EQ(c->webrtc.mtu, 1200u);
  EXPECT_EQ(c->webrtc.handshake_timeout_ms, 20000u);
  EXPECT_EQ(c->webrtc.consent_timeout_ms, 30000u);
  EXPECT_EQ(c->webrtc.handshake_max_pps, 200u);
}

TEST(WebRtcConfigTest, EveryKeyReads) {
  absl::StatusOr<Config> c = ParseConfig(
      Cfg("[webrtc]\ncertificate = \"/etc/sluice/dtls.pem\"\nprivate_key = \"/etc/sluice/dtls.key\"\n"
          "srtp_profiles = [\"SRTP_AEAD_AES_256_GCM\", \"SRTP_AES128_CM_SHA1_80\"]\nmtu = 1400\n"
          "handshake_timeout_ms = 5000\nconsent_timeout_ms = 15000\nhandshake_max_pps = 0\n"),
      "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->webrtc.certificate, "/etc/sluice/dtls.pem");
  EXPECT_EQ(c->webrtc.private_key, "/etc/sluice/dtls.key");
  EXPECT_THAT(c->webrtc.srtp_profiles, ElementsAre("SRTP_AEAD_AES_256_GCM", "SRTP_AES128_CM_SHA1_80"));
  EXPECT_EQ(c->webrtc.mtu, 1400u);
  EXPECT_EQ(c->webrtc.handshake_timeout_ms, 5000u);
  EXPECT_EQ(c->webrtc.consent_timeout_ms, 15000u);
  EXPECT_EQ(c->webrtc.handshake_max_pps, 0u);
}

TEST(WebRtcConfigTest, BadValuesAreRefusedWithTheirPath) {
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\ncertificate = \"/etc/c.pem\"\n")),
              HasSubstr("webrtc.private_key: required with webrtc.certificate"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nprivate_key = \"/etc/c.key\"\n")),
              HasSubstr("webrtc.certificate: required with webrtc.private_key"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nsrtp_profiles = []\n")),
              HasSubstr("webrtc.srtp_profiles: expected a non-empty array"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nsrtp_profiles = [\"SRTP_NULL\"]\n")),
              HasSubstr("webrtc.srtp_profiles: expected"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nsrtp_profiles = [\"SRTP_AES128_CM_SHA1_80\", "
                          "\"SRTP_AES128_CM_SHA1_80\"]\n")),
              HasSubstr("distinct names"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nmtu = 100\n")), HasSubstr("webrtc.mtu"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nhandshake_timeout_ms = 0\n")),
              HasSubstr("webrtc.handshake_timeout_ms"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nconsent_timeout_ms = 600001\n")),
              HasSubstr("webrtc.consent_timeout_ms"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\nhandshake_max_pps = 1000001\n")),
              HasSubstr("webrtc.handshake_max_pps"));
  EXPECT_THAT(ErrorOf(Cfg("[webrtc]\ncolour = 1\n")), HasSubstr("webrtc.colour"));
}

}  // namespace
}  // namespace sluice::config
