// Handshake load, end to end (issue 23): 1,000 WebRTC calls set up at once
// through a real sluiced in network namespaces, each a browser
// (tests/testing/webrtc_browsers.h: ICE check with USE-CANDIDATE, a
// DTLS-SRTP endpoint with its own certificate, the DTLS client on half the
// calls) bridged to a plain leg, while calls that were already running
// relay SRTP media. Every call must be keyed (session.get) within
// kKeyedBoundMs of its first check, the running calls must lose no packet,
// and no worker may drop a STUN or DTLS datagram for a full handshake ring:
// the workers never wait for DTLS. Then media crosses every WebRTC call in
// both directions, so every call's keys are in the workers.
//
// The bound: on the 2-core development VM, where the browsers' DTLS costs as
// much CPU as sluiced's handshake thread and shares its core (the worker
// polls the other), the 1,000 calls were all keyed 1.4 to 1.8 s after the
// first check (here, and in sluice-bench control's WebRTC phase:
// docs/performance.md); kKeyedBoundMs leaves room for a machine busy with
// other work, and stays under the handshake deadline ([webrtc]
// handshake_timeout_ms, 20 s).
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "libsrtp_peer.h"
#include "media_calls.h"
#include "webrtc_load.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kCalls = 1000;
constexpr double kKeyedBoundMs = 10000;
constexpr size_t kMediaCalls = 50;
constexpr uint16_t kPlainPhonePort = 40012;  // every plain leg's remote
constexpr uint32_t kBrowserSsrc = 0x7e000000, kPhoneSsrc = 0x6e000000;

uint64_t SumWorkers(const json& stats, const std::string& field, const std::string& drop = "") {
  uint64_t sum = 0;
  for (const json& w : stats["workers"]) {
    sum += drop.empty() ? w.value(field, uint64_t{0}) : w["drops"].value(drop, uint64_t{0});
  }
  return sum;
}

// An RTP packet of call `call`: its index in the payload's first 4 bytes.
std::vector<uint8_t> CallRtp(uint32_t ssrc, uint32_t call) {
  std::vector<uint8_t> p(12 + 160, 0);
  p[0] = 0x80;
  p[3] = 1;
  for (int k = 0; k < 4; ++k) {
    p[8 + k] = static_cast<uint8_t>((ssrc + call) >> (24 - 8 * k));
    p[12 + k] = static_cast<uint8_t>(call >> (24 - 8 * k));
  }
  return p;
}
uint32_t CallOf(const std::vector<uint8_t>& p) {
  return p.size() < 16 ? UINT32_MAX
                       : uint32_t{p[12]} << 24 | uint32_t{p[13]} << 16 | uint32_t{p[14]} << 8 | p[15];
}

class WebRtcLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonOptions options;
    options.name = "webrtc-load";
    options.subnet_a = "10.210.1";
    options.subnet_b = "10.210.2";
    options.extra_config = "[media]\nport_min = 20000\nport_max = 29999\n";
    const std::string skip = daemon_.Start(options);
    if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
    ASSERT_TRUE(daemon_.running());
    ASSERT_TRUE(control_.Connect(daemon_.socket_path()));
    absl::StatusOr<control::Client> raw = control::Client::Connect(daemon_.socket_path());
    ASSERT_TRUE(raw.ok()) << raw.status();
    raw_.emplace(*std::move(raw));
  }

  // One SRTP packet from every browser to the plain phone, and one plain
  // packet from the phone to every browser; the calls that delivered each.
  void CrossEveryCall(WebRtcLoad& load, size_t* to_phone, size_t* to_browser);

  Daemon daemon_;
  ControlClient control_;
  std::optional<control::Client> raw_;
};

void WebRtcLoadTest::CrossEveryCall(WebRtcLoad& load, size_t* to_phone, size_t* to_browser) {
  BrowserFleet& fleet = load.browsers();
  Phone phone = daemon_.MakePhone(1, daemon_.phone_ip(1), kPlainPhonePort, kPhoneSsrc);
  std::vector<std::unique_ptr<LibsrtpPeer>> send(fleet.size()), recv(fleet.size());
  for (size_t i = 0; i < fleet.size(); ++i) {
    std::optional<dtls::SrtpKeys> keys = fleet.TakeKeys(i);
    ASSERT_TRUE(keys.has_value()) << "browser " << i << " has no keys";
    send[i] = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&keys->send, 1}, {});
    recv[i] = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&keys->receive, 1}, {});
  }
  std::vector<bool> at_phone(fleet.size()), at_browser(fleet.size());
  fleet.on_media = [&](size_t i, std::span<const uint8_t> d) {
    std::vector<uint8_t> p(d.begin(), d.end());
    if (recv[i]->UnprotectRtp(p) == srtp_err_status_ok && CallOf(p) == i) at_browser[i] = true;
  };
  for (size_t i = 0; i < fleet.size(); ++i) {
    std::vector<uint8_t> srtp = CallRtp(kBrowserSsrc, static_cast<uint32_t>(i));
    ASSERT_EQ(send[i]->ProtectRtp(srtp), srtp_err_status_ok);
    fleet.Send(i, srtp);
    phone.relay = load.plain_locals()[i];
    phone.SendRaw(CallRtp(kPhoneSsrc, static_cast<uint32_t>(i)));
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
  *to_phone = *to_browser = 0;
  while ((*to_phone < fleet.size() || *to_browser < fleet.size()) && Clock::now() < deadline) {
    fleet.Poll(2);
    for (const std::vector<uint8_t>& p : phone.Receive(0)) {
      const uint32_t call = CallOf(p);
      if (call < at_phone.size() && !at_phone[call]) {
        at_phone[call] = true;
        ++*to_phone;
      }
    }
    *to_browser = static_cast<size_t>(std::count(at_browser.begin(), at_browser.end(), true));
  }
  fleet.on_media = nullptr;
}

TEST_F(WebRtcLoadTest, ThousandCallsKeyWithinTheBoundAndRunningCallsLoseNothing) {
  MediaCallsOptions m;
  m.calls = kMediaCalls;
  m.ns_a = daemon_.phone_ns(0);
  m.ip_a = daemon_.phone_ip(0);
  m.ns_b = daemon_.phone_ns(1);
  m.ip_b = daemon_.phone_ip(1);
  auto media = MediaCalls::Create(*raw_, daemon_.topology(), m);
  ASSERT_TRUE(media.ok()) << media.status();
  ASSERT_TRUE((*media)->Start().ok());

  WebRtcLoadOptions o;
  o.calls = kCalls;
  o.socket_path = daemon_.socket_path();
  o.browser_ns = daemon_.phone_ns(0);
  o.browser_ip = daemon_.phone_ip(0);
  o.remote_b = daemon_.phone_ip(1) + ":" + std::to_string(kPlainPhonePort);
  o.sluiced = daemon_.pid();
  auto load = WebRtcLoad::Prepare(*raw_, daemon_.topology(), o);
  ASSERT_TRUE(load.ok()) << load.status();

  const json before = control_.Call({{"op", "stats"}});
  (*media)->Mark();
  absl::StatusOr<WebRtcLoadResult> r = (*load)->Run();
  const MediaCallsResult lost = (*media)->Stop();
  const json after = control_.Call({{"op", "stats"}});
  ASSERT_TRUE(r.ok()) << r.status();

  std::printf("%zu calls keyed in %.2f s (%.0f/s); to keyed p50 %.0f ms, p99 %.0f ms, max %.0f ms; "
              "handshake thread %.2f s CPU; media: %llu sent, %llu lost\n",
              r->keyed, r->seconds, r->handshakes_per_second, r->keyed_p50_ms, r->keyed_p99_ms,
              r->keyed_max_ms, r->handshake_cpu_seconds.value_or(-1),
              static_cast<unsigned long long>(lost.sent),
              static_cast<unsigned long long>(lost.lost));
  EXPECT_EQ(r->keyed, kCalls) << (r->failures.empty() ? "" : r->failures[0]);
  EXPECT_EQ(r->failed, 0u);
  EXPECT_LE(r->keyed_max_ms, kKeyedBoundMs);
  EXPECT_GT(lost.sent, kMediaCalls * 50 * r->seconds * 0.5) << "the running calls did not send";
  EXPECT_EQ(lost.lost, 0u) << lost.calls_with_loss << " calls lost packets";
  EXPECT_EQ(SumWorkers(after, "", "handshake_full"), SumWorkers(before, "", "handshake_full"));
  EXPECT_GE(SumWorkers(after, "handshake_packets") - SumWorkers(before, "handshake_packets"),
            3 * kCalls);  // a check and two DTLS flights at least, per call
  EXPECT_EQ(after["webrtc"]["dtls_keyed"].get<uint64_t>() -
                before["webrtc"]["dtls_keyed"].get<uint64_t>(),
            kCalls);

  size_t to_phone = 0, to_browser = 0;
  CrossEveryCall(**load, &to_phone, &to_browser);
  EXPECT_EQ(to_phone, kCalls) << "browser to phone";
  EXPECT_EQ(to_browser, kCalls) << "phone to browser";
  EXPECT_TRUE((*load)->Delete(*raw_).ok());
  EXPECT_TRUE((*media)->Delete(*raw_).ok());
  EXPECT_TRUE(daemon_.Alive());
}

}  // namespace
}  // namespace sluice::testing
