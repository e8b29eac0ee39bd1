// rtpengine (Debian's 10.5, userspace forwarding) as the DTLS-SRTP peer of a
// Sluice WebRTC leg: an independent DTLS-SRTP implementation (its own
// OpenSSL use, its own key export) on the other side of the handshake.
//
//   plain RTP phone ── rtpengine ══ DTLS-SRTP ══ Sluice ── SDES ── libsrtp2 phone
//        (pa)            (pa)                   (relay)               (pb)
//
// rtpengine runs in the side-0 phone namespace (its address is that side's
// phone address), driven over ng by the test as an SBC would: the phone's
// plain offer goes to rtpengine with transport-protocol UDP/TLS/RTP/SAVP; its
// a=setup and a=fingerprint become the Sluice leg's `dtls`; Sluice's reply
// becomes the answer SDP rtpengine gets. Both DTLS roles:
//  - Sluice passive (server): rtpengine's ICE removed; Sluice's leg has no
//    ICE, its `remote` is rtpengine's address, and rtpengine (active) speaks
//    first;
//  - Sluice active (client): rtpengine keeps ICE (ICE=force) and offers
//    actpass (Debian's 10.5 offers actpass whatever ng's DTLS flag says);
//    Sluice's leg has ICE and takes the active role, which the answer gives
//    rtpengine. rtpengine runs full ICE against Sluice's ICE-lite candidate,
//    and once it has nominated, Sluice sends the ClientHello.
// Media is checked packet by packet both ways (every packet, in order, byte
// for byte, none failing libsrtp2's check), and session.get shows the leg
// keyed with the profile rtpengine and Sluice agreed and no SRTP drops.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "ng_peer.h"
#include "webrtc_sdp.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

constexpr char kRtpengine[] = "/usr/bin/rtpengine";
constexpr uint16_t kNgPort = 2226;

// The SDP rtpengine gets as the answer for Sluice's leg (`leg` of a create
// reply): Sluice's address, fingerprint and setup, rtcp-mux, and with ICE
// Sluice's credentials and candidates as a lite agent (RFC 8839 §5.3).
std::string AnswerSdp(const json& leg) {
  const std::string local = leg.value("local", "");
  const std::string ip = local.substr(0, local.rfind(':'));
  const std::string port = local.substr(local.rfind(':') + 1);
  std::string s = absl::StrCat("v=0\r\no=- 1 1 IN IP4 ", ip, "\r\ns=sluice\r\nt=0 0\r\n");
  if (leg.contains("ice")) s += "a=ice-lite\r\n";
  absl::StrAppend(&s, "m=audio ", port, " UDP/TLS/RTP/SAVP 0\r\nc=IN IP4 ", ip,
                  "\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\n",
                  "a=fingerprint:", leg["dtls"].value("fingerprint", ""), "\r\n",
                  "a=setup:", leg["dtls"].value("setup", ""), "\r\n");
  if (leg.contains("ice")) {
    absl::StrAppend(&s, "a=ice-ufrag:", leg["ice"].value("ufrag", ""), "\r\na=ice-pwd:",
                    leg["ice"].value("pwd", ""), "\r\n");
    for (const json& c : leg["ice"].value("candidates", json::array())) {
      absl::StrAppend(&s, "a=", c.get<std::string>(), "\r\n");
    }
  }
  return s;
}

// rtpengine's log lines about `call` (it tags them "[<call-id>" ...).
std::vector<std::string> LogLines(const std::string& log, const std::string& call) {
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (absl::StrContains(line, absl::StrCat("[", call, " ")) ||
        absl::StrContains(line, absl::StrCat("[", call, "]"))) {
      out.emplace_back(line);
    }
  }
  return out;
}

class WebrtcRtpengineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kRtpengine, X_OK) != 0) {
      skip_reason_ = "rtpengine is not installed (scripts/setup-deps installs rtpengine-daemon)";
      return;
    }
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "webrtc-rtpengine";
    options.subnet_a = "10.219.1";
    options.subnet_b = "10.219.2";
    options.extra_config = "[media]\nport_min = 36000\nport_max = 36999\n";
    skip_reason_ = daemon_->Start(options);
    if (!skip_reason_.empty()) return;
    // Its DTLS and ICE its own; INFO logs say what it negotiated. One
    // thread: with more, rtpengine 10.5 reorders a stream now and then (in
    // 4 runs of 6 here, one packet of 200 it decrypts came after the next).
    log_ = absl::StrCat("/tmp/sluice-webrtc-rtpengine-", getpid(), ".log");
    auto pid = StartRtpengine(daemon_->topology(), daemon_->phone_ns(0),
                              absl::StrCat("--log-level=6 --num-threads=1 --port-min=35000 --port-max=35999 "
                                           "--interface=", daemon_->phone_ip(0)),
                              kNgPort, log_);
    ASSERT_TRUE(pid.ok()) << pid.status();
    rtpengine_ = *pid;
  }

  static void TearDownTestSuite() {
    if (rtpengine_ > 0) StopProcess(rtpengine_);
    rtpengine_ = -1;
    delete daemon_;
    daemon_ = nullptr;
    if (!log_.empty()) std::remove(log_.c_str());
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running()) << "sluiced is not running";
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
    ASSERT_TRUE(ng_.Open(daemon_->topology(), daemon_->phone_ns(0), "127.0.0.1", kNgPort));
  }

  void TearDown() override {
    if (!HasFailure() || log_.empty()) return;
    std::printf("stats: %s\n", control_.Call({{"op", "stats"}}).dump().c_str());
    std::printf("--- rtpengine's log (last 60 lines) ---\n");
    std::fflush(stdout);
    std::system(absl::StrCat("tail -n 60 ", log_).c_str());
  }

  // session.get until the first leg's DTLS state is keyed (or failed), at
  // most timeout_ms; the last reply.
  json WaitKeyed(const std::string& session, int timeout_ms = 15000) {
    json g;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      g = control_.Call({{"op", "session.get"}, {"session", session}});
      const std::string state = g["legs"][0]["dtls"].value("state", "");
      if (state == "keyed" || state == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return g;
  }

  // One call through rtpengine and Sluice, Sluice's DTLS role `sluice_setup`
  // ("passive" or "active"); media checked both ways.
  void Call(const std::string& call, const std::string& sluice_setup, uint16_t port);

  inline static Daemon* daemon_ = nullptr;
  inline static pid_t rtpengine_ = -1;
  inline static std::string skip_reason_;
  inline static std::string log_;
  ControlClient control_;
  NgClient ng_;
};

void WebrtcRtpengineTest::Call(const std::string& call, const std::string& sluice_setup,
                               uint16_t port) {
  const bool sluice_client = sluice_setup == "active";
  // 1. The plain phone's offer, turned toward Sluice into DTLS-SRTP.
  Phone plain = daemon_->MakePhone(0, daemon_->phone_ip(0), port, 0x5100 + port);
  ng::Value offer = NgOffer(call, "from-1", PhoneSdp(daemon_->phone_ip(0), port, "RTP/AVP", {}));
  offer.Set("transport-protocol", "UDP/TLS/RTP/SAVP");
  offer.Set("ICE", sluice_client ? "force" : "remove");
  offer.Set("rtcp-mux", ng::Value(ng::Value::List{"offer"}));
  const ng::Value offered = ng_.Call(offer);
  ASSERT_EQ(Result(offered), "ok") << ErrorReason(offered);
  PeerSdp rte = ParsePeerSdp(std::string(offered.Find("sdp")->str()));
  rte.address = ViewSdp(offered).ip;  // rtpengine's c= is at session level
  ASSERT_FALSE(rte.fingerprints.empty()) << offered.Find("sdp")->str();
  EXPECT_EQ(rte.setup, "actpass") << offered.Find("sdp")->str();
  ASSERT_EQ(rte.ufrag.empty(), !sluice_client) << offered.Find("sdp")->str();

  // 2. Sluice's session: rtpengine's leg keyed by DTLS, the phone's by SDES.
  json web = WebrtcLeg("rte", "a", rte);
  if (!sluice_client) {
    web.erase("ice");
    web["remote"] = absl::StrCat(rte.address, ":", rte.port);
  }
  json phone_leg;
  const std::string phone_key = FreshKey("AES_CM_128_HMAC_SHA1_80");
  const uint16_t phone_port = static_cast<uint16_t>(port + 1000);
  phone_leg = SrtpLeg("phone", "b", absl::StrCat(daemon_->phone_ip(1), ":", phone_port),
                      phone_key, "AES_CM_128_HMAC_SHA1_80");
  Phone sdes = daemon_->MakePhone(1, daemon_->phone_ip(1), phone_port, 0x6100 + port);
  const json created = daemon_->Create(control_, call, web, phone_leg);
  ASSERT_TRUE(created.value("ok", false)) << created.dump();
  const json& leg = created["legs"][0];
  ASSERT_EQ(leg["dtls"].value("setup", ""), sluice_setup) << created.dump();
  sdes.relay = Addr(daemon_->relay_ip(1), LocalPort(created["legs"][1]));
  Arm(sdes, phone_key, created["legs"][1]["tx"]["crypto"]);

  // 3. rtpengine's answer: Sluice's SDP in, the plain phone's SDP out.
  ng::Value answer = NgAnswer(call, "from-1", "to-1", AnswerSdp(leg));
  if (sluice_client) answer.Set("ICE", "remove");  // toward the plain phone
  const ng::Value answered = ng_.Call(answer);
  ASSERT_EQ(Result(answered), "ok") << ErrorReason(answered);
  const SdpView toward_phone = ViewSdp(answered);
  EXPECT_EQ(toward_phone.proto, "RTP/AVP");
  plain.relay = Addr(toward_phone.ip, toward_phone.port);

  // 4. Keyed, with the profile both agreed; then every packet both ways.
  json got = WaitKeyed(call);
  const json& dtls = got["legs"][0]["dtls"];
  ASSERT_EQ(dtls.value("state", ""), "keyed") << got.dump();
  EXPECT_EQ(dtls.value("setup", ""), sluice_setup);
  EXPECT_TRUE(dtls["reason"].is_null()) << got.dump();
  const std::string profile = dtls.value("profile", "");
  EXPECT_FALSE(profile.empty()) << got.dump();
  std::printf("[%s] Sluice %s, rtpengine keyed it with %s\n", call.c_str(), sluice_setup.c_str(),
              profile.c_str());
  // The keys are installed (not "pending") and are the profile's.
  EXPECT_EQ(got["legs"][0].value("rx_suite", ""), profile) << got.dump();
  EXPECT_EQ(got["legs"][0].value("tx_suite", ""), profile) << got.dump();
  if (sluice_client) {
    EXPECT_EQ(got["legs"][0]["ice"].value("selected", ""),
              absl::StrCat(rte.address, ":", rte.port)) << got.dump();
  }
  EXPECT_EQ(got.dump().find("inline:"), std::string::npos) << "no key in session.get";

  // rtpengine keys a moment after Sluice when Sluice serves (Sluice's
  // Finished is the last flight), and until then it may pass what its phone
  // sends unprotected: media starts once rtpengine says it negotiated the
  // profile Sluice shows. Then every packet both ways, nothing refused.
  const std::string negotiated = "DTLS-SRTP successfully negotiated using " + profile;
  bool rtpengine_keyed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!rtpengine_keyed && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& line : LogLines(log_, call)) {
      rtpengine_keyed |= absl::StrContains(line, negotiated);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(rtpengine_keyed) << "rtpengine's log does not say it negotiated " << profile;
  EXPECT_TRUE(Flows(plain, sdes, 200));
  for (const std::string& line : LogLines(log_, call)) {
    EXPECT_FALSE(absl::StrContains(line, "authentication failed") ||
                 absl::StrContains(line, "Discarded"))
        << line;
  }

  got = control_.Call({{"op", "session.get"}, {"session", call}});
  for (const json& l : got["legs"]) {
    EXPECT_EQ(l["counters"].value("auth_failures", -1), 0) << got.dump();
    EXPECT_EQ(l["counters"].value("replay_drops", -1), 0) << got.dump();
    EXPECT_EQ(l["counters"].value("rx_packets", 0), 200) << got.dump();
  }
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
  EXPECT_TRUE(control_.Call({{"op", "session.delete"}, {"session", call}}).value("ok", false));
}

TEST_F(WebrtcRtpengineTest, RtpengineActiveSluicePassiveWithoutIce) {
  Call("rte-passive", "passive", 4100);
}

TEST_F(WebrtcRtpengineTest, RtpenginePassiveSluiceActiveOverIce) {
  Call("rte-active", "active", 4102);
}

}  // namespace
}  // namespace sluice::testing
