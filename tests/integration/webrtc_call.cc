#include "webrtc_call.h"

#include <chrono>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::testing {
namespace {

using json = nlohmann::json;

// What arrives at the phone within timeout_ms, demultiplexed as RFC 5761
// does (Phone::Receive would take RTCP for RTP): the browser's RTP that
// verified counted in *rtp, what failed (RTP or RTCP) in *bad.
void PhoneReceive(Phone& phone, int timeout_ms, int* rtp, int* bad) {
  std::unique_ptr<LibsrtpPeer> keys = std::move(phone.recv);
  for (std::vector<uint8_t>& p : phone.Receive(timeout_ms)) {
    const bool rtcp = p.size() > 1 && p[1] >= 200 && p[1] <= 207;
    if ((rtcp ? keys->UnprotectRtcp(p) : keys->UnprotectRtp(p)) != srtp_err_status_ok) {
      ++*bad;
    } else if (!rtcp) {
      ++*rtp;
    }
  }
  phone.recv = std::move(keys);
}

// A reply's "ok" (false when none came: PeerProcess::Call's discarded value).
bool Ok(const json& reply) { return reply.is_object() && reply.value("ok", false); }

// A count in a stats reply, 0 when none came.
int Count(const json& reply, const char* name) {
  return reply.is_object() ? reply.value(name, 0) : 0;
}

}  // namespace

std::string AiortcMissing() {
  if (std::system("/usr/bin/python3 -c 'import aiortc, numpy' >/dev/null 2>&1") == 0) return "";
  return "python3-aiortc and python3-numpy are not installed (scripts/setup-deps installs them)";
}

bool WebrtcCall::Offer(Topology& topo, const std::string& ns, const std::string& ip) {
  auto started = PeerProcess::Start(
      topo, ns,
      {"/usr/bin/python3", SourcePath("tests/integration/webrtc_peer.py"), "--ip", ip, "--tone",
       "1000", "--max-seconds", "120"});
  EXPECT_TRUE(started.ok()) << started.status();
  if (!started.ok()) return false;
  browser = *std::move(started);
  EXPECT_TRUE(Ok(browser->Call({{"cmd", "hello"}}))) << browser->Log();
  const json o = browser->Call({{"cmd", "offer"}});
  EXPECT_TRUE(Ok(o)) << o.dump() << browser->Log();
  if (!Ok(o)) return false;
  offer_sdp = o["sdp"];
  offer = ParsePeerSdp(offer_sdp);
  return true;
}

bool WebrtcCall::Remote(const std::string& sdp) {
  answer = ParsePeerSdp(sdp);
  const json remote = browser->Call({{"cmd", "remote"}, {"sdp", sdp}});
  EXPECT_TRUE(Ok(remote)) << remote.dump() << "\n" << sdp;
  const json up = browser->Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 15}});
  EXPECT_TRUE(Ok(up)) << up.dump() << browser->Log();
  return Ok(up);
}

bool WebrtcCall::WaitKeyed(ControlClient& control, const std::string& session, int leg) {
  leg_index = leg;
  json get;
  for (int i = 0; i < 100; ++i) {  // keys in a control loop pass after the browser's DTLS
    get = control.Call({{"op", "session.get"}, {"session", session}});
    if (get.contains("legs") && get["legs"][leg].value("rx_suite", "pending") != "pending") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool keyed = get.contains("legs") && get["legs"][leg]["dtls"]["state"] == "keyed";
  EXPECT_TRUE(keyed) << get.dump();
  if (keyed) selected = get["legs"][leg]["ice"]["selected"];
  return keyed;
}

bool WebrtcCall::Through() {
  EXPECT_TRUE(Ok(browser->Call({{"cmd", "reset"}})));
  phone.Receive(0);  // what an earlier relay sent
  int rtp = 0, bad = 0;
  bool at_browser = false;
  for (int i = 0; i < 1000 && !(at_browser && rtp > 0); ++i) {
    phone.SendNext();
    PhoneReceive(phone, 10, &rtp, &bad);
    at_browser = at_browser || Count(browser->Call({{"cmd", "stats"}}), "rtp_in") > 0;
  }
  EXPECT_EQ(bad, 0) << "packets the phone could not verify";
  return at_browser && rtp > 0;
}

void WebrtcCall::ExpectMedia(int n) {
  EXPECT_TRUE(Ok(browser->Call({{"cmd", "reset"}})));
  int rtp = 0, bad = 0;
  for (int i = 0; i < n; ++i) {
    phone.SendNext();
    PhoneReceive(phone, 20, &rtp, &bad);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last packets' way
  const json in = browser->Call({{"cmd", "stats"}});
  EXPECT_GE(Count(in, "rtp_in"), n * 9 / 10) << "phone to browser: " << in.dump();
  EXPECT_EQ(Count(in, "media_in"), Count(in, "rtp_in") + Count(in, "rtcp_in"))
      << "packets the browser could not decrypt: " << in.dump();
  EXPECT_GE(rtp, n / 2) << "browser to phone";
  EXPECT_EQ(bad, 0) << "packets the phone could not verify";
}

void WebrtcCall::ExpectResumed(const json& get, const json& stats) {
  ASSERT_TRUE(get.contains("legs")) << get.dump();
  const json& web = get["legs"][leg_index];
  EXPECT_EQ(web["dtls"]["state"], "keyed") << get.dump();
  EXPECT_EQ(web["dtls"]["profile"], "AES_CM_128_HMAC_SHA1_80") << get.dump();
  EXPECT_EQ(web["ice"]["selected"], selected) << get.dump();
  EXPECT_EQ(stats["webrtc"]["dtls_keyed"], 0) << "a new handshake: " << stats.dump();
  EXPECT_EQ(stats["webrtc"]["dtls_failed"], 0) << stats.dump();
  ExpectMedia(100);
  // A check's three transmissions span 3.5 s; on a loaded host the relay's
  // threads can be off a CPU longer (ha.stalled). An error answer is final.
  json check;
  for (int i = 0; i < 3; ++i) {
    check = browser->Call({{"cmd", "check"},
                           {"ufrag", offer.ufrag},
                           {"remote_ufrag", answer.ufrag},
                           {"remote_pwd", answer.pwd}});
    if (!Ok(check) || check.value("answered", false) || !check["error"].is_null()) break;
  }
  EXPECT_TRUE(Ok(check) && check.value("answered", false)) << "a consent check: " << check.dump();
  const json still = browser->Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 1}});
  EXPECT_TRUE(Ok(still)) << still.dump();
}

}  // namespace sluice::testing
