// The WebRTC pieces of an ng request: the ICE= and DTLS= flags, a peer's
// transport read from its SDP section (what is required of an offer and of
// an answer), and the specs and SDP values it becomes.
#include "sluice/ng/webrtc_media.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::ng {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(WebrtcMediaTest, FlagsAsKamailioSendsThem) {
  WebrtcFlags f = ParseWebrtcFlags("force", "passive");
  EXPECT_EQ(f.ice, WebrtcFlags::Ice::kForce);
  EXPECT_EQ(f.dtls_setup, "passive");
  EXPECT_FALSE(f.dtls_off);
  f = ParseWebrtcFlags("remove", "off");
  EXPECT_EQ(f.ice, WebrtcFlags::Ice::kRemove);
  EXPECT_TRUE(f.dtls_off);
  EXPECT_TRUE(f.dtls_setup.empty());
  f = ParseWebrtcFlags("default", "active");
  EXPECT_EQ(f.ice, WebrtcFlags::Ice::kDefault);
  EXPECT_EQ(f.dtls_setup, "active");
  EXPECT_TRUE(ParseWebrtcFlags("", "no").dtls_off);
  EXPECT_TRUE(ParseWebrtcFlags("", "").ignored.empty());
  EXPECT_THAT(ParseWebrtcFlags("force-relay", "fingerprint").ignored,
              ElementsAre("ICE=force-relay", "DTLS=fingerprint"));
}

SdpMedia Browser(const std::string& setup) {
  SdpMedia m;
  m.proto = "UDP/TLS/RTP/SAVPF";
  m.setup = setup;
  m.fingerprints = {"sha-256 AA:BB"};
  m.ice_ufrag = "Brws";
  m.ice_pwd = "browserpasswordbrowserpw";
  return m;
}

TEST(WebrtcMediaTest, PeerTransportOfAnOfferAndAnAnswer) {
  absl::StatusOr<PeerTransport> p = PeerTransportOf(Browser("actpass"), 1, false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->setup, "actpass");
  EXPECT_EQ(p->ufrag, "Brws");
  // RFC 4145 §4: no a=setup is active.
  EXPECT_EQ(PeerTransportOf(Browser(""), 1, true)->setup, "active");
  EXPECT_THAT(PeerTransportOf(Browser("actpass"), 2, true).status().message(),
              HasSubstr("media section 2: an answer's a=setup is active or passive"));
  EXPECT_THAT(PeerTransportOf(Browser("holdconn"), 1, false).status().message(),
              HasSubstr("a=setup must be"));
  SdpMedia no_fp = Browser("active");
  no_fp.fingerprints.clear();
  EXPECT_THAT(PeerTransportOf(no_fp, 1, false).status().message(),
              HasSubstr("without a=fingerprint"));
  SdpMedia no_ice = Browser("active");
  no_ice.ice_pwd.clear();
  EXPECT_TRUE(PeerTransportOf(no_ice, 1, false)->ufrag.empty()) << "half the credentials: no ICE";

  const control::DtlsSpec d = DtlsSpecOf(*p, "passive");
  EXPECT_EQ(d.setup, "actpass");
  EXPECT_THAT(d.fingerprints, ElementsAre("sha-256 AA:BB"));
  EXPECT_EQ(d.local_setup, "passive");
  const control::IceSpec i = IceSpecOf(*p, true);
  EXPECT_EQ(i.ufrag, "Brws");
  EXPECT_EQ(i.pwd, "browserpasswordbrowserpw");
  EXPECT_TRUE(i.restart);
  PeerTransport other = *p;
  EXPECT_TRUE(other.SameDtls(*p) && other.SameIce(*p));
  other.fingerprints = {"sha-256 CC:DD"};
  EXPECT_FALSE(other.SameDtls(*p));
  other.pwd = "anotherpasswordanotherpw";
  EXPECT_FALSE(other.SameIce(*p));
}

TEST(WebrtcMediaTest, LocalTransportFromALegsReply) {
  control::LegInfo plain;
  EXPECT_FALSE(LocalTransportOf(plain).has_value());
  control::LegInfo web;
  web.dtls.emplace();
  web.dtls->setup = "passive";
  web.dtls->fingerprint = "sha-256 5C:1E";
  web.ice.emplace();
  web.ice->ufrag = "sLu1";
  web.ice->pwd = "sluicepasswordsluicepw";
  web.ice->candidates = {"candidate:1 1 UDP 2130706431 10.0.1.1 30000 typ host"};
  std::optional<WebrtcRewrite> w = LocalTransportOf(web);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->setup, "passive");
  EXPECT_EQ(w->fingerprint, "sha-256 5C:1E");
  EXPECT_EQ(w->ice_ufrag, "sLu1");
  EXPECT_EQ(std::string(w->ice_pwd.data(), w->ice_pwd.size()), "sluicepasswordsluicepw");
  EXPECT_EQ(w->candidates.size(), 1u);
}

}  // namespace
}  // namespace sluice::ng
