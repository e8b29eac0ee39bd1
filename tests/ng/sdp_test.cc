#include "sluice/ng/sdp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace sluice::ng {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string S(const String& s) { return std::string(s.data(), s.size()); }

packet::Endpoint Ep(const char* text) { return *packet::Endpoint::Parse(text); }

// An SRTP offer from a phone: two suites, ICE and DTLS attributes, audio and
// a disabled video section, session-level c=.
constexpr char kPhoneOffer[] =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "a=ice-lite\r\n"
    "m=audio 49170 RTP/SAVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=rtcp:49171\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n"
    "a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host\r\n"
    "a=ice-ufrag:abcd\r\n"
    "a=ice-pwd:0123456789abcdef0123456789\r\n"
    "a=fingerprint:sha-256 AA:BB\r\n"
    "a=setup:actpass\r\n"
    "a=sendrecv\r\n"
    "m=video 0 RTP/SAVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";

TEST(SdpTest, ParsesSectionsAndTheFieldsSluiceRewrites) {
  absl::StatusOr<Sdp> sdp = ParseSdp(kPhoneOffer);
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  EXPECT_EQ(sdp->eol, "\r\n");
  ASSERT_EQ(sdp->session_lines.size(), 6u);
  EXPECT_EQ(sdp->connection->ToString(), "192.0.2.10");
  ASSERT_EQ(sdp->media.size(), 2u);
  const SdpMedia& audio = sdp->media[0];
  EXPECT_EQ(audio.media, "audio");
  EXPECT_EQ(audio.port, 49170);
  EXPECT_EQ(audio.proto, "RTP/SAVP");
  EXPECT_TRUE(audio.secure());
  EXPECT_EQ(audio.formats, "0 8 101");
  EXPECT_FALSE(audio.connection.has_value());
  EXPECT_EQ(sdp->Address(0)->ToString(), "192.0.2.10");
  EXPECT_EQ(audio.rtcp_port, 49171);
  EXPECT_FALSE(audio.rtcp_mux);
  ASSERT_EQ(audio.crypto.size(), 2u);
  EXPECT_EQ(audio.crypto[0].tag, 1u);
  EXPECT_EQ(audio.crypto[0].suite_name, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(S(audio.crypto[0].value),
            "AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4");
  EXPECT_EQ(audio.crypto[1].tag, 2u);
  EXPECT_EQ(audio.lines.size(), 11u);
  EXPECT_TRUE(sdp->media[1].disabled());
}

TEST(SdpTest, RewritesAddressesPortsRtcpAndCryptoAndKeepsEverythingElse) {
  absl::StatusOr<Sdp> sdp = ParseSdp(kPhoneOffer);
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  MediaRewrite audio;
  audio.local = Ep("203.0.113.5:30000");
  audio.proto = "RTP/AVP";  // toward a plain trunk: no crypto lines
  MediaRewrite video;       // ignored: the section is disabled
  const MediaRewrite plans[] = {audio, video};
  RewriteOptions options;
  options.replace_origin = true;
  EXPECT_EQ(S(RewriteSdp(*sdp, plans, options)),
            "v=0\r\n"
            "o=alice 2890844526 2890844526 IN IP4 203.0.113.5\r\n"
            "s=-\r\n"
            "c=IN IP4 203.0.113.5\r\n"
            "t=0 0\r\n"
            "m=audio 30000 RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=sendrecv\r\n"
            "a=rtcp:30001\r\n"
            "m=video 0 RTP/SAVP 96\r\n"
            "a=rtpmap:96 H264/90000\r\n");  // disabled: kept, without the peer's key
}

TEST(SdpTest, PlainToSrtpWithMuxAndMediaLevelConnection) {
  constexpr char kTrunk[] =
      "v=0\n"
      "o=- 1 2 IN IP6 2001:db8::1\n"
      "s=trunk\n"
      "t=0 0\n"
      "m=audio 5004 RTP/AVPF 0\n"
      "c=IN IP6 2001:db8::1\n"
      "a=rtcp-mux\n"
      "a=rtcp-fb:* nack\n";
  absl::StatusOr<Sdp> sdp = ParseSdp(kTrunk);
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  EXPECT_EQ(sdp->eol, "\n");
  EXPECT_TRUE(sdp->media[0].rtcp_mux);
  EXPECT_EQ(sdp->Address(0)->ToString(), "2001:db8::1");
  MediaRewrite plan;
  plan.local = Ep("[2001:db8::99]:40000");
  plan.rtcp_mux = true;
  plan.proto = WithSrtp(sdp->media[0].proto, true);
  plan.crypto.push_back({7, "AES_256_CM_HMAC_SHA1_80", String("AES_256_CM_HMAC_SHA1_80 inline:KEY")});
  const MediaRewrite plans[] = {plan};
  // o= stays (replace origin not asked); no session c= to rewrite.
  EXPECT_EQ(S(RewriteSdp(*sdp, plans)),
            "v=0\n"
            "o=- 1 2 IN IP6 2001:db8::1\n"
            "s=trunk\n"
            "t=0 0\n"
            "m=audio 40000 RTP/SAVPF 0\n"
            "c=IN IP6 2001:db8::99\n"
            "a=rtcp-fb:* nack\n"
            "a=rtcp-mux\n"
            "a=crypto:7 AES_256_CM_HMAC_SHA1_80 inline:KEY\n");
}

// RFC 3264 §8.4: a section's direction attribute, else the session's, says
// whether it is on hold.
TEST(SdpTest, DirectionSaysWhetherASectionIsOnHold) {
  absl::StatusOr<Sdp> sdp = ParseSdp(
      "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
      "a=sendonly\r\n"
      "m=audio 4000 RTP/AVP 0\r\n"
      "m=audio 4002 RTP/AVP 0\r\na=sendrecv\r\n"
      "m=audio 4004 RTP/AVP 0\r\na=inactive\r\n");
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  EXPECT_TRUE(sdp->OnHold(0));   // the session's a=sendonly
  EXPECT_FALSE(sdp->OnHold(1));  // its own a=sendrecv
  EXPECT_TRUE(sdp->OnHold(2));
  sdp = ParseSdp("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n"
                 "m=audio 4002 RTP/AVP 0\r\n");
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  EXPECT_TRUE(sdp->OnHold(0));
  EXPECT_FALSE(sdp->OnHold(1));  // no attribute: sendrecv
}

TEST(SdpTest, ProfilesConvert) {
  EXPECT_EQ(WithSrtp("RTP/AVP", true), "RTP/SAVP");
  EXPECT_EQ(WithSrtp("RTP/SAVP", false), "RTP/AVP");
  EXPECT_EQ(WithSrtp("RTP/AVPF", true), "RTP/SAVPF");
  EXPECT_EQ(WithSrtp("RTP/SAVPF", false), "RTP/AVPF");
  EXPECT_EQ(WithSrtp("RTP/SAVP", true), "RTP/SAVP");
  EXPECT_EQ(WithSrtp("UDP/TLS/RTP/SAVPF", false), "UDP/TLS/RTP/SAVPF");
}

TEST(SdpTest, SdesPolicyPicksSubsetAndOrder) {
  Sdp sdp = *ParseSdp(kPhoneOffer);
  const SdpMedia& srtp = sdp.media[0];
  using crypto::Suite;
  EXPECT_THAT(SuitesToOffer(srtp, {}),
              ElementsAre(Suite::kAesCm128HmacSha1_80, Suite::kAesCm128HmacSha1_32));
  EXPECT_THAT(SuitesToOffer(srtp, ParseSdesPolicy({"no-AES_CM_128_HMAC_SHA1_80"})),
              ElementsAre(Suite::kAesCm128HmacSha1_32));
  EXPECT_THAT(SuitesToOffer(srtp, ParseSdesPolicy({"only-AES_CM_128_HMAC_SHA1_32"})),
              ElementsAre(Suite::kAesCm128HmacSha1_32));
  EXPECT_TRUE(SuitesToOffer(srtp, ParseSdesPolicy({"off"})).empty());
  SdpMedia plain;
  plain.proto = "RTP/AVP";
  EXPECT_THAT(SuitesToOffer(plain, {}),
              ElementsAre(Suite::kAesCm128HmacSha1_80, Suite::kAesCm128HmacSha1_32,
                          Suite::kAes256CmHmacSha1_80, Suite::kAes256CmHmacSha1_32,
                          Suite::kAeadAes128Gcm, Suite::kAeadAes256Gcm));
  EXPECT_THAT(SuitesToOffer(plain, ParseSdesPolicy({"only-AEAD_AES_256_GCM",
                                                    "only-AES_CM_128_HMAC_SHA1_80"})),
              ElementsAre(Suite::kAesCm128HmacSha1_80, Suite::kAeadAes256Gcm));
  const SdesPolicy odd = ParseSdesPolicy({"pad", "no-NOT_A_SUITE", "static"});
  EXPECT_THAT(odd.ignored, ElementsAre("pad", "no-NOT_A_SUITE", "static"));
}

// A browser's offer (Chrome's shape, audio and video): its transport
// attributes per section, session-level ones inherited, BUNDLE noted.
constexpr char kBrowserOffer[] =
    "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
    "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AA:3A:8F:B6:0C:E3:2E:9C:F6:47:2D\r\n"
    "m=audio 50000 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 10.0.1.2\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2122260223 10.0.1.2 50000 typ host\r\n"
    "a=ice-ufrag:Brws\r\na=ice-pwd:browserpasswordbrowserpw\r\na=ice-options:trickle\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 50002 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.1.2\r\n"
    "a=candidate:1 1 udp 2122260223 10.0.1.2 50002 typ host\r\n"
    "a=ice-ufrag:Brw2\r\na=ice-pwd:browserpasswordbrowserp2\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:active\r\na=mid:1\r\na=sendrecv\r\na=rtcp-mux\r\na=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:96 VP8/90000\r\n";

TEST(SdpTest, ReadsWebrtcTransportAttributes) {
  absl::StatusOr<Sdp> sdp = ParseSdp(kBrowserOffer);
  ASSERT_TRUE(sdp.ok()) << sdp.status();
  EXPECT_TRUE(sdp->bundle);
  ASSERT_EQ(sdp->media.size(), 2u);
  const SdpMedia& audio = sdp->media[0];
  EXPECT_TRUE(audio.dtls());
  EXPECT_FALSE(audio.secure()) << "not an SDES profile";
  EXPECT_EQ(audio.mid, "0");
  EXPECT_EQ(audio.setup, "actpass");
  ASSERT_EQ(audio.fingerprints.size(), 1u) << "the session's, inherited";
  EXPECT_TRUE(audio.fingerprints[0].starts_with("sha-256 4A:AD"));
  EXPECT_EQ(audio.ice_ufrag, "Brws");
  EXPECT_EQ(std::string(audio.ice_pwd.data(), audio.ice_pwd.size()), "browserpasswordbrowserpw");
  EXPECT_TRUE(audio.ice());
  EXPECT_TRUE(audio.rtcp_mux);
  const SdpMedia& video = sdp->media[1];
  EXPECT_EQ(video.mid, "1");
  EXPECT_EQ(video.setup, "active");
  ASSERT_EQ(video.fingerprints.size(), 1u) << "its own, not the session's as well";
  EXPECT_TRUE(video.fingerprints[0].starts_with("sha-256 00:11"));
  EXPECT_EQ(video.ice_ufrag, "Brw2");
  // An SDES section: ICE attributes are read as well, but it is no DTLS.
  Sdp phone = *ParseSdp(kPhoneOffer);
  EXPECT_FALSE(phone.bundle);
  EXPECT_FALSE(phone.media[0].dtls() || phone.media[0].mid);
  EXPECT_TRUE(phone.media[0].ice());
}

// Toward a WebRTC peer: Sluice's own transport attributes (ice-lite at
// session level), the peer's gone; no BUNDLE group; a mid added where the
// section had none. Toward a SIP phone: none of them.
TEST(SdpTest, RewritesWebrtcTransportBothWays) {
  Sdp browser = *ParseSdp(kBrowserOffer);
  MediaRewrite to_phone[2];
  for (MediaRewrite& p : to_phone) {
    p.local = *packet::Endpoint::Parse("10.0.2.1:30002");
    p.proto = "RTP/AVP";
  }
  const String plain = RewriteSdp(browser, to_phone);
  const std::string text(plain.data(), plain.size());
  for (const char* gone : {"a=fingerprint", "a=setup", "a=ice-", "a=candidate", "a=group:BUNDLE",
                           "UDP/TLS", "a=end-of-candidates"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone << " in\n" << text;
  }
  EXPECT_NE(text.find("m=audio 30002 RTP/AVP 111 0\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("a=mid:0\r\n"), std::string::npos) << "other lines stay:\n" << text;

  Sdp phone = *ParseSdp(kPhoneOffer);
  std::vector<MediaRewrite> to_browser(phone.media.size());
  for (MediaRewrite& p : to_browser) {
    p.local = *packet::Endpoint::Parse("10.0.1.1:30000");
    p.proto = "UDP/TLS/RTP/SAVPF";
    p.rtcp_mux = true;
    p.mid = "0";
    p.webrtc.emplace();
    p.webrtc->fingerprint = "sha-256 5C:1E";
    p.webrtc->setup = "actpass";
    p.webrtc->ice_ufrag = "sLu1";
    p.webrtc->ice_pwd = "sluicepasswordsluicepass";
    p.webrtc->candidates = {"candidate:1 1 UDP 2130706431 10.0.1.1 30000 typ host"};
  }
  const String webrtc = RewriteSdp(phone, to_browser);
  absl::StatusOr<Sdp> back = ParseSdp(std::string_view(webrtc.data(), webrtc.size()));
  ASSERT_TRUE(back.ok()) << back.status();
  const std::string w(webrtc.data(), webrtc.size());
  EXPECT_NE(w.find("t=0 0\r\na=ice-lite\r\n"), std::string::npos) << "ice-lite at session level:\n" << w;
  EXPECT_EQ(w.find("a=crypto"), std::string::npos) << w;
  const SdpMedia& m = back->media[0];
  EXPECT_EQ(m.proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_EQ(m.mid, "0");
  EXPECT_EQ(m.setup, "actpass");
  EXPECT_THAT(m.fingerprints, ElementsAre("sha-256 5C:1E")) << "the phone's own (AA:BB) is gone";
  EXPECT_EQ(m.ice_ufrag, "sLu1") << "the phone's own (abcd) is gone";
  EXPECT_TRUE(m.rtcp_mux);
  EXPECT_EQ(w.find("abcd"), std::string::npos) << w;
  EXPECT_EQ(w.find("AA:BB"), std::string::npos) << w;
  EXPECT_NE(w.find("a=candidate:1 1 UDP 2130706431 10.0.1.1 30000 typ host\r\n"),
            std::string::npos) << w;
  // A section with its own a=mid keeps it and gets no second one.
  to_phone[0].mid = "7";
  const String kept = RewriteSdp(browser, to_phone);
  EXPECT_EQ(std::string(kept.data(), kept.size()).find("a=mid:7"), std::string::npos);
}

TEST(SdpTest, RefusesMalformedBodiesByLineNumber) {
  EXPECT_THAT(ParseSdp("").status().message(), HasSubstr("empty body"));
  EXPECT_THAT(ParseSdp("v=1\r\n").status().message(), HasSubstr("line 1: an SDP body starts with v=0"));
  EXPECT_THAT(ParseSdp("v=0\r\nhello\r\n").status().message(), HasSubstr("line 2: not a"));
  EXPECT_THAT(ParseSdp("v=0\r\n\r\ns=-\r\n").status().message(), HasSubstr("line 2: empty line"));
  EXPECT_THAT(ParseSdp("v=0\r\nc=IN IP4 sbc.example.com\r\n").status().message(),
              HasSubstr("line 2: c= is not"));
  EXPECT_THAT(ParseSdp("v=0\r\nc=IN IP6 192.0.2.1\r\n").status().message(), HasSubstr("c= is not"));
  EXPECT_THAT(ParseSdp("v=0\r\nm=audio 70000 RTP/AVP 0\r\n").status().message(),
              HasSubstr("line 2: m= port"));
  EXPECT_THAT(ParseSdp("v=0\r\nm=audio 1\r\n").status().message(), HasSubstr("m= needs"));
  EXPECT_THAT(ParseSdp("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n").status().message(),
              HasSubstr("line 3: a=rtcp port"));
  const std::string key_line =
      "v=0\r\nm=audio 1 RTP/SAVP 0\r\na=crypto:x AES_CM_128_HMAC_SHA1_80 inline:SECRETSECRET\r\n";
  const absl::Status bad_crypto = ParseSdp(key_line).status();
  EXPECT_THAT(bad_crypto.message(), HasSubstr("line 3: a=crypto does not start with a tag"));
  EXPECT_THAT(bad_crypto.message(), ::testing::Not(HasSubstr("SECRET")));
  std::string many = "v=0\r\n";
  for (size_t i = 0; i <= kMaxSdpMedia; ++i) many += "m=audio 0 RTP/AVP 0\r\n";
  EXPECT_THAT(ParseSdp(many).status().message(), HasSubstr("more than 32 media sections"));
}

}  // namespace
}  // namespace sluice::ng
