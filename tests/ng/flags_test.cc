// rtpp-flags, the string form of an ng request's flags: every form of
// rtpengine's grammar Sluice reads, and malformed flags named in the error.
#include "sluice/ng/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::ng {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Items(const Value& dict, const char* key) {
  std::vector<std::string> out;
  const Value* v = dict.Find(key);
  if (v == nullptr || !v->is_list()) return out;
  for (const Value& item : v->as_list()) out.emplace_back(item.str());
  return out;
}

std::string Str(const Value& dict, const char* key) {
  const Value* v = dict.Find(key);
  return v != nullptr && v->is_string() ? std::string(v->str()) : "<none>";
}

TEST(RtppFlagsTest, ReadsKamailiosExample) {
  absl::StatusOr<Value> v = ParseRtppFlags(
      "replace-origin trust-address SDES-off ICE=remove direction=internal "
      "direction=external transport-protocol=RTP/AVP");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(Items(*v, "replace"), ElementsAre("origin"));
  EXPECT_THAT(Items(*v, "flags"), ElementsAre("trust-address"));
  EXPECT_THAT(Items(*v, "SDES"), ElementsAre("off"));
  EXPECT_EQ(Str(*v, "ICE"), "remove");
  EXPECT_THAT(Items(*v, "direction"), ElementsAre("internal", "external"));
  EXPECT_EQ(Str(*v, "transport-protocol"), "RTP/AVP");
}

TEST(RtppFlagsTest, ReadsListsPrefixesAndTransportWords) {
  absl::StatusOr<Value> v = ParseRtppFlags(
      "  SDES=[no-AES_CM_128_HMAC_SHA1_32  pad]  rtcp-mux-demux ICE-remove DTLS-off internal "
      "external RTP AVPF SRTP via-branch=z9hG4bK1 strict-source ");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(Items(*v, "SDES"), ElementsAre("no-AES_CM_128_HMAC_SHA1_32", "pad"));
  EXPECT_THAT(Items(*v, "rtcp-mux"), ElementsAre("demux"));
  EXPECT_EQ(Str(*v, "ICE"), "remove");
  EXPECT_EQ(Str(*v, "DTLS"), "off");
  EXPECT_THAT(Items(*v, "direction"), ElementsAre("internal", "external"));
  EXPECT_EQ(Str(*v, "transport-protocol"), "RTP/SAVPF");
  EXPECT_EQ(Str(*v, "via-branch"), "z9hG4bK1");
  EXPECT_THAT(Items(*v, "flags"), ElementsAre("strict-source"));
  EXPECT_EQ(ParseRtppFlags("")->as_dict().size(), 0u);
  EXPECT_EQ(Str(*ParseRtppFlags("RTP/SAVP RTP"), "transport-protocol"), "RTP/AVP");
}

TEST(RtppFlagsTest, MalformedFlagsAreErrorsNamingThem) {
  for (const char* bad : {"=x", "ICE=", "SDES=[off", "codec=[transcode=[PCMA]]", "fl]ag",
                          "ICE=re[move"}) {
    absl::StatusOr<Value> v = ParseRtppFlags(std::string("trust-address ") + bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_THAT(std::string(v.status().message()), HasSubstr("rtpp-flags: \""));
    const std::string named(bad, std::string(bad).find_first_of(" ") == std::string::npos
                                     ? std::min<size_t>(std::string(bad).size(), 3)
                                     : 3);
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(named)) << bad;
  }
}

}  // namespace
}  // namespace sluice::ng
