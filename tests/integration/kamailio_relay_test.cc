// Kamailio from Debian (configs/kamailio/kamailio.cfg) as the SIP proxy in
// front of sluiced, driving it over the ng protocol with its rtpengine
// module (rtpengine_sock pointed at Sluice's ng port): two SIP user agents played by this test on the relay
// namespace's loopback, an INVITE with an SDES SRTP offer, the answer, media
// as SRTP on both legs through sluiced between libsrtp2 phones in their own
// namespaces (every packet verified), a re-INVITE that re-keys, and a BYE
// that deletes the session. A second call bridges a plain RTP side to SRTP.
// WebRTC calls: aiortc (Debian python3-aiortc) as a browser behind
// Kamailio's WebRTC flags (ICE=force DTLS=passive UDP/TLS/RTP/SAVPF toward
// it, ICE=remove DTLS=off toward the SIP side) calls an SDES phone and a
// plain phone, and an SDES phone calls it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "kamailio.h"
#include "ng_peer.h"
#include "webrtc_peer_process.h"
#include "webrtc_sdp.h"

namespace sluice::testing {
namespace {

constexpr uint16_t kAlicePort = 5070;
constexpr uint16_t kBobPort = 5080;

using Agent = SipAgent;

// Every value of header `name` in a SIP message, in order.
std::vector<std::string> Headers(const std::string& msg, const std::string& name) {
  std::vector<std::string> out;
  const std::string head = msg.substr(0, msg.find("\r\n\r\n"));
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)), name)) {
      out.emplace_back(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return out;
}

std::string Body(const std::string& msg) {
  const size_t at = msg.find("\r\n\r\n");
  return at == std::string::npos ? "" : msg.substr(at + 4);
}

std::string WithBody(std::string head, const std::string& body) {
  return absl::StrCat(head, "Content-Type: application/sdp\r\nContent-Length: ", body.size(),
                      "\r\n\r\n", body);
}

// One dialog between alice (caller) and bob through the proxy.
struct Dialog {
  std::string call_id;
  std::string route;  // the Record-Route set, as alice's Route header value
  int cseq = 1;

  std::string Request(const std::string& method, bool in_dialog, const std::string& extra = "") {
    return absl::StrCat(method, " sip:bob@127.0.0.1:", kBobPort, " SIP/2.0\r\n",
                        "Via: SIP/2.0/UDP 127.0.0.1:", kAlicePort, ";branch=z9hG4bK-", call_id,
                        "-", cseq, ";rport\r\n",
                        in_dialog && !route.empty() ? absl::StrCat("Route: ", route, "\r\n") : "",
                        "Max-Forwards: 70\r\n",
                        "From: <sip:alice@127.0.0.1>;tag=alice-tag\r\n",
                        "To: <sip:bob@127.0.0.1>", in_dialog ? ";tag=bob-tag" : "", "\r\n",
                        "Call-ID: ", call_id, "\r\n", "CSeq: ", cseq, " ", method, "\r\n",
                        "Contact: <sip:alice@127.0.0.1:", kAlicePort, ">\r\n", extra);
  }
};

// Bob's response to a request: its Vias, Record-Route, From, Call-ID and
// CSeq copied back, his tag added.
std::string Response(const std::string& request, const std::string& status) {
  std::string out = absl::StrCat("SIP/2.0 ", status, "\r\n");
  for (const std::string& via : Headers(request, "Via")) absl::StrAppend(&out, "Via: ", via, "\r\n");
  for (const std::string& rr : Headers(request, "Record-Route")) {
    absl::StrAppend(&out, "Record-Route: ", rr, "\r\n");
  }
  const std::vector<std::string> to = Headers(request, "To");
  const std::string to_value = to.empty() ? "" : to[0];
  absl::StrAppend(&out, "From: ", Headers(request, "From")[0], "\r\n", "To: ", to_value,
                  to_value.find(";tag=") == std::string::npos ? ";tag=bob-tag" : "", "\r\n",
                  "Call-ID: ", Headers(request, "Call-ID")[0], "\r\n", "CSeq: ",
                  Headers(request, "CSeq")[0], "\r\n", "Contact: <sip:bob@127.0.0.1:", kBobPort,
                  ">\r\n");
  return out;
}

class KamailioRelayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = Kamailio::Missing();
    if (!skip_reason_.empty()) return;
    LibsrtpPeer::Init();
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "kamailio";
    options.subnet_a = "10.204.1";
    options.subnet_b = "10.204.2";
    options.extra_config =
        "[media]\nport_min = 32000\nport_max = 32999\n[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\n";
    skip_reason_ = daemon_->Start(options);
    if (!skip_reason_.empty()) return;
    kamailio_ = new Kamailio;
    ASSERT_TRUE(kamailio_->Start(daemon_->topology(), {}));
  }
  static void TearDownTestSuite() {
    delete kamailio_;
    kamailio_ = nullptr;
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(alice_.Open(daemon_->topology(), "relay", kAlicePort));
    ASSERT_TRUE(bob_.Open(daemon_->topology(), "relay", kBobPort));
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }

  // alice sends `request`; bob receives it and answers 200 with `bob_sdp`;
  // alice receives the 200. Returns {SDP bob got, SDP alice got}.
  std::pair<std::string, std::string> OfferAnswer(Dialog& d, const std::string& request,
                                                  const std::string& bob_sdp) {
    alice_.Send(request);
    const std::string at_bob = bob_.Receive();
    EXPECT_THAT(at_bob, ::testing::StartsWith("INVITE ")) << "bob got: " << at_bob;
    if (at_bob.empty()) return {};
    bob_.Send(WithBody(Response(at_bob, "200 OK"), bob_sdp));
    const std::string at_alice = alice_.Receive();
    EXPECT_THAT(at_alice, ::testing::StartsWith("SIP/2.0 200")) << "alice got: " << at_alice;
    const std::vector<std::string> rr = Headers(at_alice, "Record-Route");
    if (!rr.empty()) d.route = rr[0];
    // ACK, in the dialog, through the proxy to bob.
    alice_.Send(d.Request("ACK", true) + "Content-Length: 0\r\n\r\n");
    EXPECT_THAT(bob_.Receive(), ::testing::StartsWith("ACK "));
    ++d.cseq;
    return {Body(at_bob), Body(at_alice)};
  }

  inline static Daemon* daemon_ = nullptr;
  inline static Kamailio* kamailio_ = nullptr;
  inline static std::string skip_reason_;
  Agent alice_, bob_;
  ControlClient control_;
};

TEST_F(KamailioRelayTest, SrtpCallWithReInviteReKeyAndBye) {
  Dialog d{"kam-srtp-1@127.0.0.1"};
  const std::string ka = NewSdesKey(), kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 41000, 0xa1);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 41002, 0xb1);
  const std::string alice_sdp = PhoneSdp(daemon_->phone_ip(0), 41000, "RTP/SAVP", {ka});
  auto [to_bob, to_alice] = OfferAnswer(d, WithBody(d.Request("INVITE", false), alice_sdp),
                                        PhoneSdp(daemon_->phone_ip(1), 41002, "RTP/SAVP", {kb}));
  SdpView vb = ViewSdp(to_bob), va = ViewSdp(to_alice);
  ASSERT_EQ(vb.crypto.size(), 1u) << to_bob;
  ASSERT_EQ(va.crypto.size(), 1u) << to_alice;
  EXPECT_EQ(vb.ip, daemon_->relay_ip(1));
  EXPECT_EQ(va.ip, daemon_->relay_ip(0));
  EXPECT_THAT(to_bob, ::testing::Not(::testing::HasSubstr(ka.substr(ka.find("inline:")))));

  a.relay = Addr(va.ip, va.port);
  b.relay = Addr(vb.ip, vb.port);
  Arm(a, ka, va.crypto[0]);
  Arm(b, kb, vb.crypto[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExchangeResult first = Exchange(a, b, 50);
  EXPECT_TRUE(first.Perfect()) << first.Describe();
  nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", d.call_id}});
  EXPECT_EQ(get["ok"], true) << get.dump();

  // re-INVITE from alice with new keys on both sides.
  const std::string ka2 = NewSdesKey(), kb2 = NewSdesKey();
  auto [to_bob2, to_alice2] =
      OfferAnswer(d, WithBody(d.Request("INVITE", true),
                              PhoneSdp(daemon_->phone_ip(0), 41000, "RTP/SAVP", {ka2})),
                  PhoneSdp(daemon_->phone_ip(1), 41002, "RTP/SAVP", {kb2}));
  SdpView vb2 = ViewSdp(to_bob2), va2 = ViewSdp(to_alice2);
  ASSERT_EQ(vb2.crypto.size(), 1u) << to_bob2;
  ASSERT_EQ(va2.crypto.size(), 1u) << to_alice2;
  EXPECT_EQ(vb2.port, vb.port);
  EXPECT_EQ(va2.port, va.port);
  EXPECT_NE(vb2.crypto[0], vb.crypto[0]);
  EXPECT_NE(va2.crypto[0], va.crypto[0]);
  Arm(a, ka2, va2.crypto[0]);
  Arm(b, kb2, vb2.crypto[0]);
  ExchangeResult second = Exchange(a, b, 50);
  EXPECT_TRUE(second.Perfect()) << second.Describe();

  // BYE deletes the session.
  alice_.Send(d.Request("BYE", true) + "Content-Length: 0\r\n\r\n");
  const std::string bye = bob_.Receive();
  ASSERT_THAT(bye, ::testing::StartsWith("BYE "));
  bob_.Send(Response(bye, "200 OK") + "Content-Length: 0\r\n\r\n");
  EXPECT_THAT(alice_.Receive(), ::testing::StartsWith("SIP/2.0 200"));
  get = control_.Call({{"op", "session.get"}, {"session", d.call_id}});
  EXPECT_EQ(get["error"]["code"], "not_found") << get.dump();
}

TEST_F(KamailioRelayTest, PlainSideBridgedToSrtpSide) {
  Dialog d{"kam-plain-1@127.0.0.1"};
  const std::string kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 41010, 0xa2);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 41012, 0xb2);
  auto [to_bob, to_alice] = OfferAnswer(
      d, WithBody(d.Request("INVITE", false, "X-Sluice-Media: srtp\r\n"),
                  PhoneSdp(daemon_->phone_ip(0), 41010, "RTP/AVP", {})),
      PhoneSdp(daemon_->phone_ip(1), 41012, "RTP/SAVP", {kb}));
  SdpView vb = ViewSdp(to_bob), va = ViewSdp(to_alice);
  EXPECT_EQ(vb.proto, "RTP/SAVP");
  // Sluice's default suites for a plain offerer, AES_CM_128_HMAC_SHA1_80 (tag
  // 1, the one bob takes) first.
  ASSERT_FALSE(vb.crypto.empty()) << to_bob;
  EXPECT_EQ(va.proto, "RTP/AVP");
  EXPECT_TRUE(va.crypto.empty()) << to_alice;
  a.relay = Addr(va.ip, va.port);
  b.relay = Addr(vb.ip, vb.port);
  Arm(b, kb, vb.crypto[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExchangeResult r = Exchange(a, b, 50);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  alice_.Send(d.Request("BYE", true) + "Content-Length: 0\r\n\r\n");
  const std::string bye = bob_.Receive();
  ASSERT_THAT(bye, ::testing::StartsWith("BYE "));
  bob_.Send(Response(bye, "200 OK") + "Content-Length: 0\r\n\r\n");
  alice_.Receive();
}

// --- WebRTC: a browser (aiortc) and a SIP phone through Kamailio ---

// A reason to skip when aiortc cannot run, else "".
std::string MissingAiortc() {
  if (std::system("/usr/bin/python3 -c 'import aiortc, numpy' >/dev/null 2>&1") == 0) return "";
  return "python3-aiortc and python3-numpy are not installed (scripts/setup-deps installs them)";
}

class KamailioWebrtcTest : public KamailioRelayTest {
 protected:
  void SetUp() override {
    KamailioRelayTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (const std::string missing = MissingAiortc(); !missing.empty()) {
      GTEST_SKIP() << "skipped: " << missing;
    }
  }

  // A new browser (a page) in the phone namespace of `side`.
  void StartBrowser(int side) {
    browser_.reset();
    auto peer = PeerProcess::Start(
        daemon_->topology(), daemon_->phone_ns(side),
        {"/usr/bin/python3", SourcePath("tests/integration/webrtc_peer.py"), "--ip",
         daemon_->phone_ip(side), "--tone", "1000", "--max-seconds", "90"});
    ASSERT_TRUE(peer.ok()) << peer.status();
    browser_ = std::move(*peer);
    ASSERT_TRUE(browser_->Call({{"cmd", "hello"}}).value("ok", false)) << browser_->Log();
  }

  // The browser's media with the phone once its DTLS is up: the phone sends
  // 100 RTP packets 20 ms apart; the browser takes 90 at least (each one
  // through its SRTP, keyed by DTLS with Sluice), the phone 50 at least of
  // the browser's, every one verified when it has keys.
  void ExpectMedia(Phone& phone, const std::string& session, int web_leg) {
    nlohmann::json up = browser_->Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 15}});
    ASSERT_TRUE(up.value("ok", false)) << up.dump();
    // The browser is connected once its DTLS is; Sluice's keys are in a
    // control loop pass later (its receive suite is no longer "pending").
    nlohmann::json get;
    for (int i = 0; i < 100; ++i) {
      get = control_.Call({{"op", "session.get"}, {"session", session}});
      if (get["legs"][web_leg].value("rx_suite", "pending") != "pending") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(get["legs"][web_leg]["dtls"]["state"], "keyed") << get.dump();
    ASSERT_TRUE(browser_->Call({{"cmd", "reset"}}).value("ok", false));
    int rtp = 0, bad = 0;
    for (int i = 0; i < 100; ++i) {
      phone.SendNext();
      // Raw, then unprotected as RTP or RTCP (RFC 5761 §4: payload types
      // 200-207 are RTCP on a multiplexed port).
      std::unique_ptr<LibsrtpPeer> keys = std::move(phone.recv);
      std::vector<std::vector<uint8_t>> got = phone.Receive(20);
      phone.recv = std::move(keys);
      for (std::vector<uint8_t>& p : got) {
        const bool rtcp = p.size() > 1 && p[1] >= 200 && p[1] <= 207;
        if (phone.recv && (rtcp ? phone.recv->UnprotectRtcp(p) : phone.recv->UnprotectRtp(p)) !=
                              srtp_err_status_ok) {
          ++bad;
        } else if (!rtcp) {
          ++rtp;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last ones in flight
    nlohmann::json stats = browser_->Call({{"cmd", "stats"}});
    EXPECT_GE(stats.value("rtp_in", 0), 90) << "phone to browser: " << stats.dump();
    EXPECT_GE(rtp, 50) << "browser to phone";
    EXPECT_EQ(bad, 0) << "packets the phone could not verify";
  }

  // BYE from alice; the session is gone.
  void Hangup(Dialog& d) {
    alice_.Send(d.Request("BYE", true) + "Content-Length: 0\r\n\r\n");
    const std::string bye = bob_.Receive();
    ASSERT_THAT(bye, ::testing::StartsWith("BYE "));
    bob_.Send(Response(bye, "200 OK") + "Content-Length: 0\r\n\r\n");
    EXPECT_THAT(alice_.Receive(), ::testing::StartsWith("SIP/2.0 200"));
    nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", d.call_id}});
    EXPECT_EQ(get["error"]["code"], "not_found") << get.dump();
  }

  std::unique_ptr<PeerProcess> browser_;
};

// What Sluice gives a browser: DTLS-SRTP, ICE-lite, rtcp-mux, a mid; no
// SDES key and no BUNDLE group.
void ExpectWebrtcSdp(const std::string& sdp, const std::string& setup) {
  for (const std::string has : {"UDP/TLS/RTP/SAVPF", "a=ice-lite\r\n", "a=fingerprint:sha-256 ",
                                "a=ice-ufrag:", "a=candidate:", "a=rtcp-mux\r\n", "a=mid:"}) {
    EXPECT_THAT(sdp, ::testing::HasSubstr(has));
  }
  EXPECT_THAT(sdp, ::testing::HasSubstr("a=setup:" + setup + "\r\n"));
  EXPECT_THAT(sdp, ::testing::Not(::testing::HasSubstr("a=crypto")));
  EXPECT_THAT(sdp, ::testing::Not(::testing::HasSubstr("BUNDLE")));
}

void ExpectSipSdp(const std::string& sdp, const std::string& proto) {
  EXPECT_EQ(ViewSdp(sdp).proto, proto) << sdp;
  for (const char* gone : {"a=ice-", "a=fingerprint", "a=setup", "a=candidate", "BUNDLE"}) {
    EXPECT_THAT(sdp, ::testing::Not(::testing::HasSubstr(gone)));
  }
}

// The browser calls: its offer (UDP/TLS/RTP/SAVPF, actpass) reaches the
// phone as X-Sluice-Media asks, the phone's answer reaches the browser as
// Sluice's DTLS-SRTP and ICE-lite (Sluice passive, as DTLS=passive says).
TEST_F(KamailioWebrtcTest, BrowserCallsSdesPhoneAndPlainPhone) {
  for (const bool sdes : {true, false}) {
    SCOPED_TRACE(sdes ? "SDES phone" : "plain phone");
    Dialog d{sdes ? "kam-web-sdes@127.0.0.1" : "kam-web-plain@127.0.0.1"};
    const uint16_t port = sdes ? 41100 : 41110;
    const std::string proto = sdes ? "RTP/SAVP" : "RTP/AVP";
    const std::string kb = NewSdesKey();
    Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), port, sdes ? 0xc1 : 0xc2);
    StartBrowser(0);  // the caller's side
    ASSERT_NE(browser_, nullptr);
    nlohmann::json offer = browser_->Call({{"cmd", "offer"}});
    ASSERT_TRUE(offer.value("ok", false)) << offer.dump();
    auto [to_bob, to_alice] = OfferAnswer(
        d,
        WithBody(d.Request("INVITE", false, sdes ? "X-Sluice-Media: srtp\r\n" : ""),
                 offer["sdp"].get<std::string>()),
        PhoneSdp(daemon_->phone_ip(1), port, proto,
                 sdes ? std::vector<std::string>{kb} : std::vector<std::string>{}));
    ExpectSipSdp(to_bob, proto);
    ExpectWebrtcSdp(to_alice, "passive");
    nlohmann::json remote = browser_->Call({{"cmd", "remote"}, {"sdp", to_alice}});
    ASSERT_TRUE(remote.value("ok", false)) << remote.dump() << "\n" << to_alice;
    const SdpView vb = ViewSdp(to_bob);
    b.relay = Addr(vb.ip, vb.port);
    if (sdes) {
      ASSERT_FALSE(vb.crypto.empty()) << to_bob;
      Arm(b, kb, vb.crypto[0]);
    }
    ExpectMedia(b, d.call_id, 0);
    nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", d.call_id}});
    EXPECT_EQ(get["legs"][0]["dtls"]["state"], "keyed") << get.dump();
    EXPECT_EQ(get["legs"][0]["dtls"]["setup"], "passive") << get.dump();
    EXPECT_EQ(get["legs"][1]["rtcp"], "separate") << "rtcp-mux-demux: " << get.dump();
    Hangup(d);
  }
}

// The SDES phone calls the browser (X-Sluice-Media: webrtc): Sluice offers
// it DTLS-SRTP (actpass) with ICE-lite; its answer (active) makes Sluice
// passive and keys the leg.
TEST_F(KamailioWebrtcTest, SdesPhoneCallsBrowser) {
  Dialog d{"kam-web-rev@127.0.0.1"};
  const std::string ka = NewSdesKey();
  StartBrowser(1);  // the callee's side
  ASSERT_NE(browser_, nullptr);
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 41120, 0xc3);
  alice_.Send(WithBody(d.Request("INVITE", false, "X-Sluice-Media: webrtc\r\n"),
                       PhoneSdp(daemon_->phone_ip(0), 41120, "RTP/SAVP", {ka})));
  const std::string at_bob = bob_.Receive();
  ASSERT_THAT(at_bob, ::testing::StartsWith("INVITE ")) << at_bob;
  ExpectWebrtcSdp(Body(at_bob), "actpass");
  nlohmann::json answer = browser_->Call({{"cmd", "answer"}, {"sdp", Body(at_bob)}});
  ASSERT_TRUE(answer.value("ok", false)) << answer.dump() << "\n" << Body(at_bob);
  bob_.Send(WithBody(Response(at_bob, "200 OK"), answer["sdp"].get<std::string>()));
  const std::string at_alice = alice_.Receive();
  ASSERT_THAT(at_alice, ::testing::StartsWith("SIP/2.0 200")) << at_alice;
  const std::vector<std::string> rr = Headers(at_alice, "Record-Route");
  if (!rr.empty()) d.route = rr[0];
  alice_.Send(d.Request("ACK", true) + "Content-Length: 0\r\n\r\n");
  EXPECT_THAT(bob_.Receive(), ::testing::StartsWith("ACK "));
  ++d.cseq;
  ExpectSipSdp(Body(at_alice), "RTP/SAVP");
  const SdpView va = ViewSdp(Body(at_alice));
  ASSERT_EQ(va.crypto.size(), 1u) << at_alice;
  a.relay = Addr(va.ip, va.port);
  Arm(a, ka, va.crypto[0]);
  ExpectMedia(a, d.call_id, 1);
  nlohmann::json get = control_.Call({{"op", "session.get"}, {"session", d.call_id}});
  EXPECT_EQ(get["legs"][1]["dtls"]["state"], "keyed") << get.dump();
  EXPECT_EQ(get["legs"][1]["dtls"]["setup"], "passive") << get.dump();
  Hangup(d);
}

}  // namespace
}  // namespace sluice::testing
