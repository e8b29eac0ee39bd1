// Kamailio from Debian as the SIP proxy in front of sluiced, driving it over
// the ng protocol with its rtpengine module (rtpengine_sock pointed at
// Sluice's ng port): two SIP user agents played by this test on the relay
// namespace's loopback, an INVITE with an SDES SRTP offer, the answer, media
// as SRTP on both legs through sluiced between libsrtp2 phones in their own
// namespaces (every packet verified), a re-INVITE that re-keys, and a BYE
// that deletes the session. A second call bridges a plain RTP side to SRTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "ng_peer.h"

namespace sluice::testing {
namespace {

constexpr uint16_t kProxyPort = 5060;
constexpr uint16_t kAlicePort = 5070;
constexpr uint16_t kBobPort = 5080;

// Kamailio as a record-routing proxy that hands every SDP to the media relay.
constexpr char kKamailioCfg[] = R"cfg(#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:127.0.0.1:5060
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")

request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("OPTIONS") && uri == myself) { sl_send_reply("200", "OK"); exit; }
  if (has_totag()) {
    if (loose_route()) {
      if (is_method("BYE")) {
        rtpengine_delete();
      } else if (is_method("INVITE") && has_body("application/sdp")) {
        rtpengine_offer("trust-address replace-origin ICE=remove direction=a direction=b");
        t_on_reply("MEDIA");
      }
      t_relay();
      exit;
    }
    if (is_method("ACK") && t_check_trans()) t_relay();
    exit;
  }
  if (is_method("INVITE")) {
    record_route();
    if ($hdr(X-Media) == "plain-to-srtp") {
      rtpengine_offer("trust-address replace-origin ICE=remove direction=a direction=b RTP/SAVP SDES-only-AES_CM_128_HMAC_SHA1_80");
    } else {
      rtpengine_offer("trust-address replace-origin ICE=remove direction=a direction=b");
    }
    t_on_reply("MEDIA");
  }
  t_relay();
}

onreply_route[MEDIA] {
  if (has_body("application/sdp")) rtpengine_answer("trust-address replace-origin ICE=remove direction=b direction=a");
}
)cfg";

// A SIP user agent: a UDP socket on the relay namespace's loopback.
class Agent {
 public:
  bool Open(Topology& topo, uint16_t port) {
    auto fd = topo.Socket("relay", AF_INET, SOCK_DGRAM);
    if (!fd.ok()) return false;
    fd_ = *fd;
    port_ = port;
    sockaddr_in a = Addr("127.0.0.1", port);
    return bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Agent() {
    if (fd_ >= 0) close(fd_);
  }
  void Send(const std::string& msg, uint16_t to_port = kProxyPort) {
    sockaddr_in to = Addr("127.0.0.1", to_port);
    sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  // The next message that is not a provisional (1xx) response, within timeout_ms.
  std::string Receive(int timeout_ms = 3000) {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) != 1) return "";
      std::string buf(65536, '\0');
      const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) return "";
      buf.resize(static_cast<size_t>(n));
      if (buf.rfind("SIP/2.0 1", 0) == 0) continue;
      return buf;
    }
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

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
    if (access("/usr/sbin/kamailio", X_OK) != 0) {
      skip_reason_ = "kamailio is not installed (scripts/setup-deps installs it)";
      return;
    }
    LibsrtpPeer::Init();
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "kamailio";
    options.subnet_a = "10.204.1";
    options.subnet_b = "10.204.2";
    options.extra_config =
        "[media]\nport_min = 32000\nport_max = 32999\n[ng]\nlisten = \"127.0.0.1:2223\"\n";
    skip_reason_ = daemon_->Start(options);
    if (!skip_reason_.empty()) return;
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           absl::StrCat("sluice-kamailio-", getpid()));
    std::filesystem::create_directories(*dir_);
    std::ofstream(*dir_ + "/kamailio.cfg") << kKamailioCfg;
    auto pid = daemon_->topology().Spawn(
        "relay", {"sh", "-c",
                  absl::StrCat("exec /usr/sbin/kamailio -f ", *dir_, "/kamailio.cfg -DD -E -Y ",
                               *dir_, " -P ", *dir_, "/kamailio.pid > ", *dir_,
                               "/kamailio.log 2>&1")});
    ASSERT_TRUE(pid.ok()) << pid.status();
    kamailio_ = *pid;
    // Ready when it answers OPTIONS (its rtpengine module has pinged Sluice
    // by then: children ping at start-up).
    Agent probe;
    ASSERT_TRUE(probe.Open(daemon_->topology(), 5099));
    for (int i = 0; i < 50; ++i) {
      probe.Send(absl::StrCat("OPTIONS sip:127.0.0.1:", kProxyPort, " SIP/2.0\r\n",
                              "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-probe", i, "\r\n",
                              "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n",
                              "To: <sip:127.0.0.1>\r\nCall-ID: probe-", i, "\r\nCSeq: 1 OPTIONS\r\n",
                              "Content-Length: 0\r\n\r\n"));
      if (probe.Receive(200).rfind("SIP/2.0 200", 0) == 0) return;
    }
    FAIL() << "kamailio did not answer OPTIONS; log: " << *dir_ << "/kamailio.log";
  }
  static void TearDownTestSuite() {
    if (kamailio_ > 0) {
      StopProcess(kamailio_);
    }
    if (dir_ != nullptr) {
      if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
        std::ifstream log(*dir_ + "/kamailio.log");
        std::printf("--- kamailio.log ---\n%s\n",
                    std::string(std::istreambuf_iterator<char>(log), {}).c_str());
      }
      std::filesystem::remove_all(*dir_);
      delete dir_;
    }
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(alice_.Open(daemon_->topology(), kAlicePort));
    ASSERT_TRUE(bob_.Open(daemon_->topology(), kBobPort));
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
  inline static std::string* dir_ = nullptr;
  inline static pid_t kamailio_ = -1;
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
      d, WithBody(d.Request("INVITE", false, "X-Media: plain-to-srtp\r\n"),
                  PhoneSdp(daemon_->phone_ip(0), 41010, "RTP/AVP", {})),
      PhoneSdp(daemon_->phone_ip(1), 41012, "RTP/SAVP", {kb}));
  SdpView vb = ViewSdp(to_bob), va = ViewSdp(to_alice);
  EXPECT_EQ(vb.proto, "RTP/SAVP");
  ASSERT_EQ(vb.crypto.size(), 1u) << to_bob;
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

}  // namespace
}  // namespace sluice::testing
