// The ng handler's WebRTC translation on the real session manager, with a
// MediaHandshakes that records what the legs are asked and answers as
// Sluice's would (roles per RFC 4145/5763, credentials, candidates): a
// browser's UDP/TLS/RTP/SAVPF offer to an SDES or plain SIP side and back,
// a SIP offer toward a browser and its answer, the ICE=, DTLS=,
// transport-protocol, SDES-off, rtcp-mux and generate-mid flags, re-offers
// (idempotent, re-key by a new fingerprint, ICE restart), audio and video
// without BUNDLE, and what is refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eal_environment.h"
#include "sluice/control/media_handshakes.h"
#include "sluice/control/session_manager.h"
#include "sluice/ng/handler.h"
#include "sluice/session/flow_table.h"

namespace sluice::ng {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const auto* const kEnv = sluice::testing::AddEalEnvironment("ng_handler_webrtc_test", 128);

constexpr char kSluiceFp[] = "sha-256 5C:1E:0C:E5:5C:1E:0C:E5:5C:1E:0C:E5:5C:1E:0C:E5";
constexpr char kBrowserFp[] =
    "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AA:3A:8F:B6:0C:E3:"
    "2E:9C:F6:47:2D";
constexpr char kNewBrowserFp[] =
    "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:"
    "BB:CC:DD:EE:FF";
constexpr char kKey1[] = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

// Records each leg's specs; its views resolve roles as WebRtcLegs does.
class FakeHandshakes : public control::MediaHandshakes {
 public:
  struct Leg {
    std::optional<control::DtlsSpec> dtls;  // the latest asked for
    bool ice = false;
    std::string peer_ufrag;
    std::string setup;  // Sluice's
    int dtls_updates = 0, ice_updates = 0, restarts = 0;
    packet::Endpoint local;
  };
  absl::StatusOr<control::HandshakeView> Add(const control::HandshakeLegId&,
                                             const packet::Endpoint& local,
                                             const std::optional<control::DtlsSpec>& dtls,
                                             const std::optional<control::IceSpec>& ice,
                                             const std::optional<packet::Endpoint>&) override {
    Leg leg;
    leg.local = local;
    leg.ice = ice.has_value();
    if (ice) leg.peer_ufrag = ice->ufrag;
    if (dtls) {
      absl::StatusOr<std::string> setup = Role(*dtls);
      if (!setup.ok()) return setup.status();
      leg.setup = *setup;
      leg.dtls = dtls;
    }
    legs[local.port] = leg;
    return ViewOf(legs[local.port]);
  }
  absl::StatusOr<control::HandshakeView> Update(const control::HandshakeLegId&,
                                                const packet::Endpoint& local,
                                                const std::optional<control::DtlsSpec>& dtls,
                                                const std::optional<control::IceSpec>& ice) override {
    Leg& leg = legs.at(local.port);
    if (dtls) {
      absl::StatusOr<std::string> setup = Role(*dtls);
      if (!setup.ok()) return setup.status();
      leg.setup = *setup;
      leg.dtls = dtls;
      ++leg.dtls_updates;
    }
    if (ice) {
      leg.peer_ufrag = ice->ufrag;
      ++leg.ice_updates;
      leg.restarts += ice->restart ? 1 : 0;
    }
    return ViewOf(leg);
  }
  void Remove(const packet::Endpoint& local) override { legs.erase(local.port); }
  std::optional<control::HandshakeView> View(const packet::Endpoint& local) const override {
    auto it = legs.find(local.port);
    if (it == legs.end()) return std::nullopt;
    return ViewOf(it->second);
  }

  static absl::StatusOr<std::string> Role(const control::DtlsSpec& d) {
    if (d.setup.empty()) return d.local_setup.empty() ? "actpass" : d.local_setup;
    if (d.setup == d.local_setup) {
      return absl::InvalidArgumentError(absl::StrCat("dtls.setup: both sides are ", d.setup));
    }
    if (d.setup == "actpass") return d.local_setup.empty() ? "active" : d.local_setup;
    return d.setup == "active" ? "passive" : "active";
  }
  static control::HandshakeView ViewOf(const Leg& leg) {
    control::HandshakeView v;
    if (leg.dtls) v.dtls = control::LegInfo::Dtls{"new", "", leg.setup, kSluiceFp, "", {}};
    if (leg.ice) {
      control::LegInfo::Ice ice;
      ice.ufrag = absl::StrCat("sLu", leg.restarts);
      ice.pwd = absl::StrCat("sluicepasswordsluicepw", leg.restarts, "x");
      ice.candidates = {absl::StrCat("candidate:1 1 UDP 2130706431 ", leg.local.ip.ToString(), " ",
                                     leg.local.port, " typ host")};
      v.ice = std::move(ice);
    }
    return v;
  }
  std::map<uint16_t, Leg> legs;  // by local port
};

std::string S(const Value* v) { return v && v->is_string() ? std::string(v->str()) : "<none>"; }

// A browser's offer or answer: one section per entry of `media` ("audio",
// "video"), each with its own port, credentials and mid, bundled.
std::string BrowserSdp(const std::string& setup, const std::vector<std::string>& media = {"audio"},
                       const std::string& fp = kBrowserFp, const std::string& ufrag = "Brws",
                       bool bundle = true) {
  std::string s = "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  if (bundle) s += media.size() == 2 ? "a=group:BUNDLE 0 1\r\n" : "a=group:BUNDLE 0\r\n";
  for (size_t i = 0; i < media.size(); ++i) {
    const int port = 50000 + static_cast<int>(i) * 2;
    s += absl::StrCat("m=", media[i], " ", port, " UDP/TLS/RTP/SAVPF ",
                      media[i] == "audio" ? "0" : "96", "\r\nc=IN IP4 10.0.1.2\r\n",
                      "a=candidate:1 1 udp 2122260223 10.0.1.2 ", port, " typ host\r\n",
                      "a=ice-ufrag:", ufrag, i, "\r\na=ice-pwd:browserpasswordbrowserpw", i,
                      "\r\na=ice-options:trickle\r\na=fingerprint:", fp, "\r\na=setup:", setup,
                      "\r\na=mid:", i, "\r\na=sendrecv\r\na=rtcp-mux\r\n");
  }
  return s;
}

std::string PhoneSdp(const std::string& proto, const std::string& crypto = "") {
  return "v=0\r\no=- 1 1 IN IP4 10.0.2.2\r\ns=-\r\nc=IN IP4 10.0.2.2\r\nt=0 0\r\n"
         "m=audio 4000 " + proto + " 0\r\na=rtpmap:0 PCMU/8000\r\n" + crypto + "a=sendrecv\r\n";
}

class HandlerWebrtcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.media.port_min = 30000;
    config_.media.port_max = 30099;
    std::vector<control::InterfaceInfo> ifaces(2);
    ifaces[0].name = "a";
    ifaces[0].ipv4 = *packet::Prefix::Parse("10.0.1.1/24");
    ifaces[1].name = "b";
    ifaces[1].port_id = 1;
    ifaces[1].ipv4 = *packet::Prefix::Parse("10.0.2.1/24");
    table_ = *session::FlowTable::Create("ng_rtc_flows_" + std::to_string(counter_++), 1024, 1);
    manager_ = std::make_unique<control::SessionManager>(config_, ifaces, *table_, 1, 1000000000);
    manager_->SetMediaHandshakes(&handshakes_);
    HandlerOptions options{"a"};
    options.delete_delay_ms = 0;
    handler_ = std::make_unique<Handler>(*manager_, options);
  }
  void TearDown() override {
    handler_.reset();
    manager_.reset();
    table_.reset();
  }

  // An offer or answer from `from` (the browser on interface a, the phone
  // on b) with rtpengine's string flags, as Kamailio sends them.
  Value Request(const std::string& command, const std::string& sdp, const std::string& flags,
                bool browser_side) {
    Value r(Value::Dict{});
    r.Set("command", command);
    r.Set("call-id", "rtc-1");
    r.Set("from-tag", browser_side == (command == "offer") ? "browser" : "phone");
    if (command == "answer") r.Set("to-tag", browser_side ? "browser" : "phone");
    r.Set("sdp", sdp);
    r.Set("rtpp-flags", flags + (browser_side == (command == "offer") ? " direction=a direction=b"
                                                                      : " direction=b direction=a"));
    return r;
  }
  // The reply's SDP, parsed, and its text.
  Sdp Reply(const Value& reply, std::string* text = nullptr) {
    EXPECT_EQ(S(reply.Find("result")), "ok") << S(reply.Find("error-reason"));
    const Value* sdp = reply.Find("sdp");
    if (sdp == nullptr) return {};
    if (text != nullptr) *text = std::string(sdp->str());
    absl::StatusOr<Sdp> parsed = ParseSdp(sdp->str());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : Sdp{};
  }
  FakeHandshakes::Leg& LegAt(uint16_t port) { return handshakes_.legs.at(port); }

  static constexpr char kToSip[] = "ICE=remove DTLS=off rtcp-mux-demux RTP/AVP";
  static constexpr char kToBrowser[] =
      "ICE=force DTLS=passive UDP/TLS/RTP/SAVPF SDES-off rtcp-mux-offer generate-mid";

  static inline int counter_ = 0;
  config::Config config_;
  FakeHandshakes handshakes_;
  std::unique_ptr<session::FlowTable> table_;
  std::unique_ptr<control::SessionManager> manager_;
  std::unique_ptr<Handler> handler_;
};

// Browser offers, an SDES phone answers: the browser's leg is DTLS-SRTP
// with ICE-lite, the phone's SDES; neither side sees the other's transport.
TEST_F(HandlerWebrtcTest, BrowserOffersToAnSdesPhone) {
  std::string text;
  Sdp to_phone = Reply(handler_->Handle(Request(
      "offer", BrowserSdp("actpass"), std::string(kToSip) + " SRTP", true)), &text);
  ASSERT_EQ(to_phone.media.size(), 1u);
  const SdpMedia& m = to_phone.media[0];
  EXPECT_EQ(m.proto, "RTP/SAVP");
  EXPECT_FALSE(m.crypto.empty());
  EXPECT_FALSE(m.rtcp_mux) << "rtcp-mux-demux";
  EXPECT_EQ(m.rtcp_port, m.port + 1);
  for (const char* gone : {"a=fingerprint", "a=setup", "a=ice-", "a=candidate", "BUNDLE", "a=ice-lite"}) {
    EXPECT_EQ(text.find(gone), std::string::npos) << gone << ":\n" << text;
  }
  // The browser's leg: its fingerprint and setup, its ICE credentials.
  control::SessionInfo info = *manager_->Get("rtc-1");
  FakeHandshakes::Leg& web = LegAt(info.legs[0].local.port);
  ASSERT_TRUE(web.dtls.has_value());
  EXPECT_EQ(web.dtls->setup, "actpass");
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kBrowserFp));
  EXPECT_TRUE(web.ice);
  EXPECT_EQ(web.peer_ufrag, "Brws0");
  EXPECT_EQ(info.legs[0].rtcp, control::RtcpMode::kMux);
  EXPECT_EQ(handshakes_.legs.count(info.legs[1].local.port), 0u) << "the phone's leg is SDES";

  const std::string crypto = absl::StrCat("a=crypto:1 AES_CM_128_HMAC_SHA1_80 ", kKey1, "\r\n");
  Sdp to_browser = Reply(handler_->Handle(
      Request("answer", PhoneSdp("RTP/SAVP", crypto), "ICE=force", false)), &text);
  ASSERT_EQ(to_browser.media.size(), 1u);
  const SdpMedia& a = to_browser.media[0];
  EXPECT_EQ(a.proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_EQ(a.port, info.legs[0].local.port);
  EXPECT_TRUE(a.crypto.empty()) << text;
  EXPECT_THAT(a.fingerprints, ElementsAre(kSluiceFp));
  EXPECT_EQ(a.setup, "active") << "RFC 5763 §5: the answerer to actpass";
  EXPECT_EQ(a.ice_ufrag, "sLu0");
  EXPECT_TRUE(a.rtcp_mux);
  EXPECT_EQ(a.mid, "0") << "the offer's mid (RFC 8843 §9.2)";
  EXPECT_NE(text.find("\r\na=ice-lite\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat("a=candidate:1 1 UDP 2130706431 10.0.1.1 ", a.port, " typ host")),
            std::string::npos) << text;
  EXPECT_EQ(text.find("BUNDLE"), std::string::npos) << "no bundling (RFC 8843 §7.3.3)";
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0) << "the answer changed nothing of the browser's";
  info = *manager_->Get("rtc-1");
  EXPECT_EQ(info.legs[1].rx_suite, "AES_CM_128_HMAC_SHA1_80");
}

// The SIP side (plain RTP) offers, the browser answers: Sluice offers it
// DTLS-SRTP (passive, as DTLS=passive asks) with ICE-lite, and its answer
// keys the leg; the phone's answer is plain.
TEST_F(HandlerWebrtcTest, PlainPhoneOffersToABrowser) {
  std::string text;
  Sdp to_browser =
      Reply(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"), kToBrowser, false)), &text);
  ASSERT_EQ(to_browser.media.size(), 1u);
  const SdpMedia& m = to_browser.media[0];
  EXPECT_EQ(m.proto, "UDP/TLS/RTP/SAVPF");
  EXPECT_TRUE(m.crypto.empty()) << "SDES-off";
  EXPECT_EQ(m.setup, "passive");
  EXPECT_THAT(m.fingerprints, ElementsAre(kSluiceFp));
  EXPECT_EQ(m.ice_ufrag, "sLu0");
  EXPECT_TRUE(m.rtcp_mux);
  EXPECT_EQ(m.mid, "0") << "generate-mid";
  EXPECT_NE(text.find("a=ice-lite"), std::string::npos) << text;
  FakeHandshakes::Leg& web = LegAt(m.port);
  ASSERT_TRUE(web.dtls.has_value());
  EXPECT_TRUE(web.dtls->setup.empty() && web.dtls->fingerprints.empty()) << "awaits the answer";
  EXPECT_EQ(web.dtls->local_setup, "passive");

  // A browser answering passive as well is refused before anything changes.
  Value both = handler_->Handle(Request("answer", BrowserSdp("passive"), kToSip, true));
  EXPECT_EQ(S(both.Find("result")), "error");
  EXPECT_THAT(S(both.Find("error-reason")), HasSubstr("both sides are passive"));
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0);

  Sdp to_phone = Reply(handler_->Handle(Request("answer", BrowserSdp("active"), kToSip, true)), &text);
  EXPECT_EQ(web.dtls_updates, 1);
  EXPECT_EQ(web.dtls->setup, "active");
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kBrowserFp));
  EXPECT_EQ(web.dtls->local_setup, "passive");
  EXPECT_EQ(web.ice_updates, 1);
  EXPECT_EQ(web.peer_ufrag, "Brws0");
  ASSERT_EQ(to_phone.media.size(), 1u);
  EXPECT_EQ(to_phone.media[0].proto, "RTP/AVP");
  EXPECT_EQ(text.find("a=fingerprint"), std::string::npos) << text;
  EXPECT_EQ(text.find("a=ice-"), std::string::npos) << text;
  EXPECT_EQ(manager_->Get("rtc-1")->legs[0].remote->ToString(), "10.0.2.2:4000");
}

// Re-offers from the browser: the same offer again is the same reply and
// no change; a new fingerprint is a new handshake at the answer; new ICE
// credentials an ICE restart, whose new credentials go in the answer.
TEST_F(HandlerWebrtcTest, BrowserReoffersRekeyAndRestartIce) {
  const std::string offer = BrowserSdp("actpass");
  const Value first = handler_->Handle(Request("offer", offer, kToSip, true));
  EXPECT_EQ(S(first.Find("sdp")), S(handler_->Handle(Request("offer", offer, kToSip, true)).Find("sdp")));
  Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  const uint16_t port = manager_->Get("rtc-1")->legs[0].local.port;
  FakeHandshakes::Leg& web = LegAt(port);

  // The same transport in a new SDP version: nothing restarts.
  std::string same = offer;
  same.replace(same.find("4611 2"), 6, "4611 3");
  Reply(handler_->Handle(Request("offer", same, kToSip, true)));
  Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates + web.ice_updates, 0);

  Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio"}, kNewBrowserFp), kToSip, true)));
  Sdp answer = Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates, 1);
  EXPECT_THAT(web.dtls->fingerprints, ElementsAre(kNewBrowserFp));
  EXPECT_EQ(web.ice_updates, 0);

  Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio"}, kNewBrowserFp, "Rst"),
                                 kToSip, true)));
  answer = Reply(handler_->Handle(Request("answer", PhoneSdp("RTP/AVP"), "", false)));
  EXPECT_EQ(web.dtls_updates, 1) << "same fingerprint: no new handshake";
  EXPECT_EQ(web.restarts, 1);
  EXPECT_EQ(web.peer_ufrag, "Rst0");
  ASSERT_EQ(answer.media.size(), 1u);
  EXPECT_EQ(answer.media[0].ice_ufrag, "sLu1") << "Sluice's new credentials (RFC 8445 §9)";
}

// A browser's audio and video: a session (legs and ports) per section, no
// BUNDLE group in either direction, each section with its own transport.
TEST_F(HandlerWebrtcTest, AudioAndVideoEachTheirOwnLegsWithoutBundle) {
  std::string text;
  Sdp to_phone = Reply(handler_->Handle(Request("offer", BrowserSdp("actpass", {"audio", "video"}),
                                                kToSip, true)), &text);
  ASSERT_EQ(to_phone.media.size(), 2u);
  EXPECT_EQ(text.find("BUNDLE"), std::string::npos) << text;
  EXPECT_NE(to_phone.media[0].port, to_phone.media[1].port);
  const std::string phone2 = PhoneSdp("RTP/AVP") + "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  Sdp to_browser = Reply(handler_->Handle(Request("answer", phone2, "", false)), &text);
  ASSERT_EQ(to_browser.media.size(), 2u);
  EXPECT_FALSE(to_browser.bundle);
  for (size_t i = 0; i < 2; ++i) {
    const control::SessionInfo info = *manager_->Get(SessionName("rtc-1", i));
    EXPECT_EQ(to_browser.media[i].port, info.legs[0].local.port);
    EXPECT_EQ(to_browser.media[i].mid, std::to_string(i));
    EXPECT_EQ(to_browser.media[i].setup, "active");
    EXPECT_EQ(LegAt(info.legs[0].local.port).peer_ufrag, absl::StrCat("Brws", i));
  }
  EXPECT_NE(to_browser.media[0].ice_ufrag.size(), 0u);
}

// What the flags and answers may not ask: DTLS toward an answerer without
// ICE, DTLS=off with a DTLS transport, an answer that declines DTLS or
// lacks a fingerprint; unknown ICE= values are warned about.
TEST_F(HandlerWebrtcTest, RefusedCombinations) {
  auto error = [&](const Value& reply) {
    EXPECT_EQ(S(reply.Find("result")), "error");
    return S(reply.Find("error-reason"));
  };
  EXPECT_THAT(error(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"),
                                             "ICE=remove UDP/TLS/RTP/SAVPF", false))),
              HasSubstr("needs ICE"));
  EXPECT_THAT(error(handler_->Handle(Request("offer", PhoneSdp("RTP/AVP"),
                                             "DTLS=off UDP/TLS/RTP/SAVPF", false))),
              HasSubstr("DTLS=off"));
  std::string no_fp = BrowserSdp("actpass");
  no_fp.erase(no_fp.find("a=fingerprint:"), std::strlen("a=fingerprint:\r\n") + std::strlen(kBrowserFp));
  EXPECT_THAT(error(handler_->Handle(Request("offer", no_fp, kToSip, true))),
              HasSubstr("without a=fingerprint"));
  EXPECT_EQ(handler_->call_count(), 0u);

  Value warned = handler_->Handle(
      Request("offer", PhoneSdp("RTP/AVP"), "ICE=force-relay UDP/TLS/RTP/SAVPF", false));
  EXPECT_THAT(S(warned.Find("warning")), HasSubstr("ICE=force-relay"));
  EXPECT_THAT(error(handler_->Handle(Request("answer", PhoneSdp("RTP/SAVP"), "", true))),
              HasSubstr("declines DTLS-SRTP"));
  EXPECT_THAT(error(handler_->Handle(Request("answer", BrowserSdp("actpass"), "", true))),
              HasSubstr("active or passive (RFC 5763"));
}

}  // namespace
}  // namespace sluice::ng
