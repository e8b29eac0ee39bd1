// The same ng requests to sluiced and to Debian's rtpengine, side by side,
// so a difference between the two shows up here rather than in production.
// What RFC 3264/4566/4568 and the ng protocol fix (results, profiles, the
// relay's own address in c=, ports in m= and a=rtcp, rtcp-mux, ICE removed,
// disabled sections kept, the lines neither relay owns kept in order, what
// SDES only-/no- flags leave, the answer taking the offerer's tag) must
// match. Where Sluice differs on purpose the test prints both and says why:
//  - rtpengine forwards the offerer's own SDES keys to the other side when
//    both sides are SRTP; Sluice never forwards a key, it offers its own;
//  - rtpengine offers every suite it has (F8, AES-192, NULL too) and a
//    DTLS fingerprint; Sluice offers the offerer's suites, or six defaults
//    for a plain offerer, and no DTLS;
//  - rtpengine answers the offerer with the suite the answerer picked;
//    Sluice with the offerer's first suite (each leg is keyed on its own);
//  - Debian's rtpengine 10.5 ignores SDES only-<SUITE>; Sluice honours it.
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "harness.h"
#include "ng_peer.h"
#include "sluice/ng/sdp.h"

namespace sluice::testing {
namespace {

constexpr char kKey80[] = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
constexpr char kKey32[] = "AES_CM_128_HMAC_SHA1_32 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
constexpr char kAnswerKey[] = "AES_CM_128_HMAC_SHA1_32 inline:KCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RF";

// What a relay made of one request, reduced to what can be compared.
struct Outcome {
  std::string result;
  std::vector<std::string> protos, ports_disabled, kept;  // per section / every kept line
  std::vector<bool> own_address, rtcp_next_port, rtcp_mux, has_ice;
  std::vector<std::vector<std::string>> suites;           // per section
  std::vector<std::vector<uint32_t>> tags;
  bool forwards_offerer_key = false;
  bool dtls = false;
};

Outcome Reduce(const ng::Value& reply, const std::string& own_ip, const std::string& input_sdp) {
  Outcome o;
  o.result = Result(reply);
  const ng::Value* sdp_value = reply.Find("sdp");
  if (sdp_value == nullptr || !sdp_value->is_string()) return o;
  const std::string text(sdp_value->str());
  absl::StatusOr<ng::Sdp> sdp = ng::ParseSdp(text);
  if (!sdp.ok()) {
    o.result = "unparsable SDP: " + std::string(sdp.status().message());
    return o;
  }
  auto owned = [](const std::string& l) {
    for (const char* p : {"c=", "m=", "a=rtcp:", "a=rtcp-mux", "a=crypto:", "a=setup:",
                          "a=fingerprint:", "a=ice-", "a=candidate:", "a=tls-id:"}) {
      if (l.rfind(p, 0) == 0) return true;
    }
    return false;
  };
  for (const ng::String& l : sdp->session_lines) {
    const std::string line(l.data(), l.size());
    if (!owned(line)) o.kept.push_back(line);
  }
  for (size_t i = 0; i < sdp->media.size(); ++i) {
    const ng::SdpMedia& m = sdp->media[i];
    o.protos.push_back(m.proto);
    o.ports_disabled.push_back(m.disabled() ? "disabled" : "enabled");
    std::optional<packet::IpAddress> ip = sdp->Address(i);
    o.own_address.push_back(m.disabled() || (ip && ip->ToString() == own_ip));
    o.rtcp_next_port.push_back(m.disabled() || m.rtcp_mux ||
                               (m.rtcp_port && *m.rtcp_port == m.port + 1));
    o.rtcp_mux.push_back(m.rtcp_mux);
    bool ice = false;
    std::vector<std::string> suites;
    std::vector<uint32_t> tags;
    for (const ng::String& l : m.lines) {
      const std::string line(l.data(), l.size());
      ice |= line.rfind("a=candidate:", 0) == 0 || line.rfind("a=ice-", 0) == 0;
      o.dtls |= line.rfind("a=fingerprint:", 0) == 0;
      if (!owned(line)) o.kept.push_back(line);
    }
    for (const ng::SdpCrypto& c : m.crypto) {
      suites.push_back(c.suite_name);
      tags.push_back(c.tag);
      const std::string value(c.value.data(), c.value.size());
      if (input_sdp.find(value.substr(value.find("inline:"))) != std::string::npos) {
        o.forwards_offerer_key = true;
      }
    }
    o.has_ice.push_back(ice);
    o.suites.push_back(suites);
    o.tags.push_back(tags);
  }
  return o;
}

std::string Show(const std::vector<std::string>& v) { return absl::StrJoin(v, " "); }

class NgRtpengineCompareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access("/usr/bin/rtpengine", X_OK) != 0) {
      skip_reason_ = "rtpengine is not installed (scripts/setup-deps installs rtpengine-daemon)";
      return;
    }
    daemon_ = new Daemon;
    DaemonOptions options;
    options.name = "ng-compare";
    options.subnet_a = "10.205.1";
    options.subnet_b = "10.205.2";
    options.extra_config = "[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\n";
    skip_reason_ = daemon_->Start(options);
    if (!skip_reason_.empty()) return;
    // rtpengine in a namespace of its own, its two logical interfaces named
    // like Sluice's and holding the same addresses (so requests are identical).
    Topology& topo = daemon_->topology();
    ASSERT_TRUE(topo.AddNamespace("rte").ok());
    for (int side = 0; side < 2; ++side) {
      ASSERT_TRUE(topo.Run("rte", {"ip", "addr", "add", daemon_->relay_ip(side) + "/32", "dev", "lo"})
                      .ok());
    }
    auto pid = StartRtpengine(
        topo, "rte",
        absl::StrCat("--port-min=33000 --port-max=33999 --interface=a/", daemon_->relay_ip(0),
                     " --interface=b/", daemon_->relay_ip(1)),
        2224, absl::StrCat("/tmp/sluice-ng-compare-rtpengine-", getpid(), ".log"));
    ASSERT_TRUE(pid.ok()) << pid.status();
    rtpengine_ = *pid;
  }
  static void TearDownTestSuite() {
    if (rtpengine_ > 0) {
      StopProcess(rtpengine_);
      std::remove(absl::StrCat("/tmp/sluice-ng-compare-rtpengine-", getpid(), ".log").c_str());
    }
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(sluice_.Open(daemon_->topology(), "relay", "127.0.0.1", 2223));
    ASSERT_TRUE(rtpengine_ng_.Open(daemon_->topology(), "rte", "127.0.0.1", 2224));
  }

  // Sends `request` to both; compares what must match and prints the rest.
  std::pair<Outcome, Outcome> Both(const ng::Value& request, int facing_side,
                                   const std::string& what) {
    const ng::Value* sdp = request.Find("sdp");
    const std::string input = sdp ? std::string(sdp->str()) : "";
    const ng::Value sluice_reply = sluice_.Call(request);
    const ng::Value* reason = sluice_reply.Find("error-reason");
    Outcome s = Reduce(sluice_reply, daemon_->relay_ip(facing_side), input);
    Outcome r = Reduce(rtpengine_ng_.Call(request), daemon_->relay_ip(facing_side), input);
    SCOPED_TRACE(what);
    EXPECT_EQ(s.result, r.result) << "sluice: "
                                  << (reason != nullptr && reason->is_string()
                                          ? std::string(reason->str())
                                          : std::string());
    EXPECT_EQ(s.protos, r.protos);
    EXPECT_EQ(s.ports_disabled, r.ports_disabled);
    EXPECT_EQ(s.own_address, r.own_address);
    EXPECT_EQ(s.rtcp_next_port, r.rtcp_next_port);
    EXPECT_EQ(s.rtcp_mux, r.rtcp_mux);
    EXPECT_EQ(s.has_ice, r.has_ice);
    EXPECT_EQ(s.kept, r.kept) << "sluice: " << Show(s.kept) << "\nrtpengine: " << Show(r.kept);
    for (size_t i = 0; i < std::min(s.suites.size(), r.suites.size()); ++i) {
      if (s.suites[i] != r.suites[i]) {
        std::printf("[%s] section %zu suites differ (by design):\n  sluice:    %s\n  rtpengine: %s\n",
                    what.c_str(), i, Show(s.suites[i]).c_str(), Show(r.suites[i]).c_str());
      }
    }
    if (s.forwards_offerer_key != r.forwards_offerer_key || s.dtls != r.dtls) {
      std::printf("[%s] forwards the offerer's key: sluice %d, rtpengine %d; DTLS offered: "
                  "sluice %d, rtpengine %d (by design)\n",
                  what.c_str(), s.forwards_offerer_key, r.forwards_offerer_key, s.dtls, r.dtls);
    }
    EXPECT_FALSE(s.forwards_offerer_key) << "Sluice never forwards a peer's key";
    return {s, r};
  }

  static ng::Value Offer(const std::string& call, const std::string& sdp) {
    ng::Value r = NgOffer(call, "from-1", sdp);
    r.Set("ICE", "remove");
    return r;
  }

  inline static Daemon* daemon_ = nullptr;
  inline static pid_t rtpengine_ = -1;
  inline static std::string skip_reason_;
  NgClient sluice_, rtpengine_ng_;
};

TEST_F(NgRtpengineCompareTest, SrtpOfferWithIceAndMux) {
  const std::string sdp =
      PhoneSdp("10.9.9.2", 4000, "RTP/SAVP", {kKey80, kKey32}) +
      "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef0123456789\r\n"
      "a=candidate:1 1 UDP 2130706431 10.9.9.2 4000 typ host\r\n";
  auto [s, r] = Both(Offer("cmp-srtp", sdp), 1, "SRTP offer");
  ASSERT_EQ(s.suites.size(), 1u);
  // Both offer at least the offerer's suites, first, in its order.
  ASSERT_GE(r.suites[0].size(), 2u);
  EXPECT_EQ(s.suites[0], std::vector<std::string>(r.suites[0].begin(), r.suites[0].begin() + 2));

  // The answer picks tag 2 (AES_CM_128_HMAC_SHA1_32) of each relay's offer.
  ng::Value answer = NgAnswer("cmp-srtp", "from-1", "to-1",
                              PhoneSdp("10.9.9.3", 5000, "RTP/SAVP", {kAnswerKey}));
  // As an SBC sends it: the answerer's side first, ICE removed toward the offerer.
  answer.Set("direction", ng::Value(ng::Value::List{"b", "a"}));
  answer.Set("ICE", "remove");
  std::string answer_sdp(answer.Find("sdp")->str());
  answer_sdp.replace(answer_sdp.find("a=crypto:1 "), 11, "a=crypto:2 ");
  answer.Set("sdp", answer_sdp);
  auto [sa, ra] = Both(answer, 0, "SRTP answer");
  ASSERT_EQ(sa.tags.size(), 1u);
  ASSERT_EQ(ra.tags.size(), 1u);
  ASSERT_EQ(sa.tags[0].size(), 1u);  // one crypto, with one of the offerer's tags
  ASSERT_EQ(ra.tags[0].size(), 1u);
  EXPECT_TRUE(sa.tags[0][0] == 1 || sa.tags[0][0] == 2);
  EXPECT_TRUE(ra.tags[0][0] == 1 || ra.tags[0][0] == 2);
  for (NgClient* c : {&sluice_, &rtpengine_ng_}) {
    EXPECT_EQ(Result(c->Call(NgCommand("delete", "cmp-srtp"))), "ok");
  }
}

TEST_F(NgRtpengineCompareTest, PlainToSrtpAndSdesFlags) {
  ng::Value convert = Offer("cmp-plain", PhoneSdp("10.9.9.2", 4002, "RTP/AVP", {}));
  convert.Set("transport-protocol", "RTP/SAVP");
  Both(convert, 1, "plain to SRTP");

  ng::Value only = Offer("cmp-only", PhoneSdp("10.9.9.2", 4004, "RTP/AVP", {}));
  only.Set("transport-protocol", "RTP/SAVP");
  only.Set("SDES", ng::Value(ng::Value::List{"only-AES_CM_128_HMAC_SHA1_80"}));
  auto [s, r] = Both(only, 1, "SDES only-");
  // Debian's rtpengine 10.5 ignores only- (it offers every suite); Sluice
  // offers just the one named. Both offer it.
  ASSERT_EQ(s.suites.size(), 1u);
  ASSERT_EQ(r.suites.size(), 1u);
  EXPECT_EQ(s.suites[0], std::vector<std::string>{"AES_CM_128_HMAC_SHA1_80"});
  EXPECT_EQ(std::count(r.suites[0].begin(), r.suites[0].end(), "AES_CM_128_HMAC_SHA1_80"), 1);

  // Keys of its own: the first test's keys are still in use (a key serves
  // one session).
  ng::Value no = Offer("cmp-no", PhoneSdp("10.9.9.2", 4006, "RTP/SAVP",
                                          {FreshKey("AES_CM_128_HMAC_SHA1_80"),
                                           FreshKey("AES_CM_128_HMAC_SHA1_32")}));
  no.Set("SDES", ng::Value(ng::Value::List{"no-AES_CM_128_HMAC_SHA1_32"}));
  auto [sn, rn] = Both(no, 1, "SDES no-");
  for (const Outcome* o : {&sn, &rn}) {
    ASSERT_EQ(o->suites.size(), 1u);
    EXPECT_EQ(std::count(o->suites[0].begin(), o->suites[0].end(), "AES_CM_128_HMAC_SHA1_32"), 0);
  }
  for (const char* call : {"cmp-plain", "cmp-only", "cmp-no"}) {
    for (NgClient* c : {&sluice_, &rtpengine_ng_}) c->Call(NgCommand("delete", call));
  }
}

TEST_F(NgRtpengineCompareTest, DisabledSectionsAndErrors) {
  Both(Offer("cmp-disabled", PhoneSdp("10.9.9.2", 4008, "RTP/AVP", {}) + "m=video 0 RTP/AVP 96\r\n"),
       1, "disabled video");
  for (NgClient* c : {&sluice_, &rtpengine_ng_}) c->Call(NgCommand("delete", "cmp-disabled"));
  Both(NgCommand("no-such-command", ""), 1, "unknown command");
  Both(NgCommand("delete", "cmp-never-made"), 1, "delete of an unknown call");
  Both(NgCommand("ping", ""), 1, "ping");
}

}  // namespace
}  // namespace sluice::testing
