// WebRTC legs end to end against independent WebRTC stacks: aiortc (Debian
// python3-aiortc) and GStreamer webrtcbin (libnice, its own DTLS) as the
// browser-side peer in one phone namespace, an SDES phone (libsrtp2) or a
// plain RTP phone in the other, sluiced between them on its ICE-lite and
// DTLS-SRTP handshakes. The controller's side is played by the test: it
// turns the peer's SDP into the leg's "dtls" and "ice" fields and gives the
// peer an SDP built from Sluice's reply (webrtc_sdp.h).
//
// Audio is checked end to end both ways: the peer sends a 1 kHz tone that the
// phone decrypts with libsrtp2 and decodes (G.711 mu-law) to its frequency;
// the phone sends a 600 Hz tone whose RTP payloads the peer must receive byte
// for byte and decode to 600 Hz.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numbers>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "ng_peer.h"
#include "openssl/rand.h"
#include "webrtc_peer_process.h"
#include "webrtc_sdp.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

constexpr double kPeerHz = 1000.0;   // what the WebRTC peer sends
constexpr double kPhoneHz = 600.0;   // what the phone sends
constexpr double kHzTolerance = 20.0;
constexpr char kPython[] = "/usr/bin/python3";

std::string Script(const std::string& name) { return std::string(SLUICE_WEBRTC_DIR) + "/" + name; }

// "" when the interpreter can import `modules`, else why not.
std::string MissingPython(const std::string& modules, const std::string& package) {
  const std::string cmd = absl::StrCat(kPython, " -c '", modules, "' >/dev/null 2>&1");
  if (access(kPython, X_OK) == 0 && std::system(cmd.c_str()) == 0) return "";
  return absl::StrCat(modules, " failed: install ", package, " (scripts/setup-deps does)");
}

// "" when GStreamer webrtcbin, libnice and the RTP and mu-law elements can
// be used from Python, else why not.
std::string MissingGstreamer() {
  return MissingPython(
      "import gi, numpy; gi.require_version(\"Gst\", \"1.0\"); gi.require_version(\"GstWebRTC\", "
      "\"1.0\"); gi.require_version(\"Nice\", \"0.1\"); from gi.repository import Gst, "
      "GstWebRTC, Nice; Gst.init(None); assert Gst.ElementFactory.find(\"webrtcbin\") and "
      "Gst.ElementFactory.find(\"nicesrc\") and Gst.ElementFactory.find(\"mulawenc\")",
      "gstreamer1.0-plugins-bad, gstreamer1.0-nice, gstreamer1.0-plugins-good, gir1.2-nice-0.1, "
      "python3-gi and python3-numpy");
}

// --- G.711 mu-law (ITU-T G.711 §3) and a tone's frequency ---

uint8_t MuLaw(int16_t pcm) {
  constexpr int kBias = 0x84, kClip = 32635;
  int sign = pcm < 0 ? 0x80 : 0;
  int magnitude = std::min(std::abs(static_cast<int>(pcm)), kClip) + kBias;
  int exponent = 7;
  for (int mask = 0x4000; (magnitude & mask) == 0 && exponent > 0; mask >>= 1) --exponent;
  const int mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

int16_t MuLawDecode(uint8_t u) {
  u = static_cast<uint8_t>(~u);
  const int magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84;
  return static_cast<int16_t>((u & 0x80) != 0 ? -magnitude : magnitude);
}

// The strongest frequency in 100..3900 Hz (10 Hz steps, Goertzel power), 0
// for too little audio.
double DominantHz(const std::vector<int16_t>& samples) {
  if (samples.size() < 2000) return 0;
  double best = 0, best_hz = 0;
  for (double hz = 100; hz <= 3900; hz += 10) {
    const double w = 2 * std::cos(2 * std::numbers::pi * hz / 8000);
    double s1 = 0, s2 = 0;
    for (int16_t x : samples) {
      const double s0 = x + w * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const double power = s1 * s1 + s2 * s2 - w * s1 * s2;
    if (power > best) best = power, best_hz = hz;
  }
  return best_hz;
}

// RFC 3550 §5.1: the payload after the fixed header, CSRCs and extension.
std::vector<uint8_t> RtpPayload(const std::vector<uint8_t>& p) {
  if (p.size() < 12) return {};
  size_t off = 12 + 4 * (p[0] & 0x0f);
  if ((p[0] & 0x10) != 0 && p.size() >= off + 4) off += 4 + 4 * ((p[off + 2] << 8) | p[off + 3]);
  return off <= p.size() ? std::vector<uint8_t>(p.begin() + off, p.end()) : std::vector<uint8_t>{};
}

// --- the phone's side of a call ---

struct PhoneTalk {
  std::map<uint16_t, std::vector<uint8_t>> sent;  // payload by sequence number
  int rtcp_sent = 0;
  int rtp = 0, bad = 0;                      // received (bad: did not verify)
  std::vector<std::vector<uint8_t>> rtcp;    // received, unprotected
  std::vector<int16_t> audio;                // decoded from what arrived
};

void Put32(std::vector<uint8_t>& p, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// RFC 3550 §6.4.1: a sender report without report blocks.
std::vector<uint8_t> SenderReport(const Phone& phone, uint16_t seq, uint32_t packets) {
  std::vector<uint8_t> p(28, 0);
  p[0] = 0x80;
  p[1] = 200;
  p[3] = 6;  // length in 32-bit words, minus one
  Put32(p, 4, phone.ssrc);
  Put32(p, 8, 0xe6000000u + seq);  // NTP timestamp, any
  Put32(p, 16, seq * 160u);        // RTP timestamp
  Put32(p, 20, packets);
  Put32(p, 24, packets * 160u);
  return p;
}

// RTP packet `seq` of a PCMU tone of `hz` (20 ms, 160 samples, PT 0).
std::vector<uint8_t> TonePacket(const Phone& phone, uint16_t seq, double hz) {
  std::vector<uint8_t> p = phone.Rtp(seq, 160);
  const uint32_t ts = seq * 160u;
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<uint8_t>(ts >> (24 - 8 * i));
  for (int i = 0; i < 160; ++i) {
    const double t = static_cast<double>(ts + i) / 8000;
    p[12 + i] = MuLaw(static_cast<int16_t>(8000 * std::sin(2 * std::numbers::pi * hz * t)));
  }
  // Two samples carry the sequence number: every payload differs.
  p[12] = static_cast<uint8_t>(seq >> 8);
  p[13] = static_cast<uint8_t>(seq);
  return p;
}

// What arrived on the phone: RTP and (RFC 5761 §4 payload types 200-207)
// RTCP, unprotected with libsrtp2 when the phone has keys.
void Collect(Phone& phone, int timeout_ms, PhoneTalk* talk) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    auto saved = std::move(phone.recv);  // Receive() would treat RTCP as RTP
    std::vector<std::vector<uint8_t>> got = phone.Receive(1);
    phone.recv = std::move(saved);
    for (std::vector<uint8_t>& p : got) {
      const bool rtcp = p.size() > 1 && p[1] >= 200 && p[1] <= 207;
      if (phone.recv) {
        const srtp_err_status_t s = rtcp ? phone.recv->UnprotectRtcp(p) : phone.recv->UnprotectRtp(p);
        if (s != srtp_err_status_ok) {
          ++talk->bad;
          continue;
        }
      }
      if (rtcp) {
        talk->rtcp.push_back(std::move(p));
        continue;
      }
      ++talk->rtp;
      for (uint8_t u : RtpPayload(p)) talk->audio.push_back(MuLawDecode(u));
    }
  } while (std::chrono::steady_clock::now() < deadline);
}

// The phone sends n packets of its tone, 20 ms apart, and collects what
// arrives meanwhile.
PhoneTalk Talk(Phone& phone, int n, double hz = kPhoneHz, bool rtcp = true) {
  PhoneTalk talk;
  auto next = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    // And a sender report now and then, after RTP (aiortc routes RTCP by
    // the SSRCs its RTP taught it).
    if (rtcp && i % 50 == 25) {
      std::vector<uint8_t> sr = SenderReport(phone, phone.seq, static_cast<uint32_t>(i));
      if (phone.send) {
        EXPECT_EQ(phone.send->ProtectRtcp(sr), srtp_err_status_ok);
      }
      phone.SendRaw(sr);
      ++talk.rtcp_sent;
    }
    const uint16_t seq = phone.seq++;
    std::vector<uint8_t> wire = TonePacket(phone, seq, hz);
    talk.sent[seq] = RtpPayload(wire);
    if (phone.send) {
      EXPECT_EQ(phone.send->ProtectRtp(wire), srtp_err_status_ok);
    }
    phone.SendRaw(wire);
    next += std::chrono::milliseconds(20);
    const auto left = next - std::chrono::steady_clock::now();
    Collect(phone, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()), &talk);
  }
  Collect(phone, 300, &talk);
  return talk;
}

// Whether an exchange of n packets each way is all in, as ExpectAudio checks
// it: the phone has most of the peer's RTP, the peer (its `stats`) the
// phone's RTP and, with `rtcp`, its sender reports.
bool AudioIn(const PhoneTalk& talk, const json& stats, int n, bool rtcp) {
  if (talk.rtp < n * 8 / 10 || !stats.value("ok", false) || !stats["rtp_in"].is_number() ||
      stats["rtp_in"].get<int>() < n * 9 / 10) {
    return false;
  }
  return !rtcp || !stats["rtcp_in"].is_number() || stats["rtcp_in"].get<int>() >= talk.rtcp_sent;
}

// A random SHA-256 fingerprint: no certificate has it.
std::string WrongFingerprint() {
  unsigned char d[32];
  EXPECT_EQ(RAND_bytes(d, sizeof d), 1);
  std::string out = "sha-256 ";
  for (size_t i = 0; i < sizeof d; ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ":", absl::AsciiStrToUpper(absl::BytesToHexString(
                                                 std::string(1, static_cast<char>(d[i])))));
  }
  return out;
}

class WebrtcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = MissingPython("import aiortc, numpy", "python3-aiortc and python3-numpy");
    if (!skip_reason_.empty()) return;
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "webrtc";
    options.subnet_a = "10.211.1";
    options.subnet_b = "10.211.2";
    options.extra_config =
        "[media]\nport_min = 32000\nport_max = 32999\n"
        "[ng]\nlisten = \"127.0.0.1:2231\"\ndelete_delay_ms = 0\nallowed_sources = [\"127.0.0.1\"]\n";
    skip_reason_ = daemon_->Start(options);
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running()) << "sluiced is not running";
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
    ASSERT_TRUE(ng_.Open(daemon_->topology(), "relay", "127.0.0.1", 2231));
  }

  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr && daemon_->running()) {
      std::printf("stats: %s\n", control_.Call({{"op", "stats"}}).dump().c_str());
    }
  }

  // A WebRTC peer in the phone namespace of `side` at its phone address;
  // null (with a failure) when it does not answer.
  std::unique_ptr<PeerProcess> StartPeer(const std::string& script = "webrtc_peer.py",
                                         double tone_hz = kPeerHz, int side = 0) {
    auto peer = PeerProcess::Start(daemon_->topology(), daemon_->phone_ns(side),
                                   {kPython, Script(script), "--ip", daemon_->phone_ip(side),
                                    "--tone", std::to_string(tone_hz), "--max-seconds", "150"});
    EXPECT_TRUE(peer.ok()) << peer.status();
    if (!peer.ok()) return nullptr;
    json hello = (*peer)->Call({{"cmd", "hello"}});
    EXPECT_TRUE(hello.value("ok", false)) << hello.dump() << (*peer)->Log();
    return hello.value("ok", false) ? std::move(*peer) : nullptr;
  }

  // The SDES phone on side 1 and its leg (Sluice sends it AES_CM_128_HMAC_SHA1_80).
  Phone SdesPhone(uint16_t port, uint32_t ssrc, json* leg) {
    phone_key_ = FreshKey("AES_CM_128_HMAC_SHA1_80");
    *leg = SrtpLeg("phone", "b", daemon_->phone_ip(1) + ":" + std::to_string(port), phone_key_,
                   "AES_CM_128_HMAC_SHA1_80");
    return daemon_->MakePhone(1, daemon_->phone_ip(1), port, ssrc);
  }

  Phone PlainPhone(uint16_t port, uint32_t ssrc, json* leg) {
    *leg = PlainLeg("phone", "b", daemon_->phone_ip(1) + ":" + std::to_string(port));
    return daemon_->MakePhone(1, daemon_->phone_ip(1), port, ssrc);
  }

  // Points the phone at its leg of a create reply (and arms its keys).
  void Connect(Phone& phone, json reply) {
    json& leg = reply["legs"][1];
    phone.relay = Addr(daemon_->relay_ip(1), LocalPort(leg));
    if (leg.contains("tx") && leg["tx"].contains("crypto")) Arm(phone, phone_key_, leg["tx"]["crypto"]);
  }

  // A create reply whose first leg shows its DTLS and ICE.
  static ::testing::AssertionResult HasHandshake(json r) {
    json& leg = r["legs"][0];
    if (r.value("ok", false) && leg.contains("dtls") && leg.contains("ice") &&
        leg["ice"].contains("pwd")) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "no WebRTC leg (dtls, ice and ice.pwd) in the reply: " << r.dump();
  }

  // The peer offers (actpass), Sluice answers: the create reply, after the
  // peer has Sluice's answer. `fingerprints` replaces the peer's when given.
  json PeerOffers(PeerProcess& peer, const std::string& session, const json& phone_leg,
                  PeerSdp* offer, const std::vector<std::string>& fingerprints = {}) {
    json o = peer.Call({{"cmd", "offer"}});
    EXPECT_TRUE(o.value("ok", false)) << o.dump();
    if (!o.value("ok", false)) return json();
    *offer = ParsePeerSdp(o["sdp"]);
    EXPECT_EQ(offer->setup, "actpass") << o["sdp"];
    EXPECT_FALSE(offer->fingerprints.empty()) << o["sdp"];
    if (!fingerprints.empty()) offer->fingerprints = fingerprints;
    json r = daemon_->Create(control_, session, WebrtcLeg("web", "a", *offer), phone_leg);
    if (!r.value("ok", false) || !HasHandshake(r)) return r;
    json answered =
        peer.Call({{"cmd", "remote"}, {"sdp", SluiceSdp(r["legs"][0], {.mid = offer->mid})}});
    EXPECT_TRUE(answered.value("ok", false)) << answered.dump();
    return r;
  }

  // Sluice's side offers, the peer answers with `setup` (active or passive).
  // The leg is created before the offer goes out (the controller needs
  // Sluice's address and credentials for it), with the peer's fingerprint
  // known beforehand and the setup it will answer; its ICE credentials
  // follow in an update once the answer is in.
  json PeerAnswers(PeerProcess& peer, const std::string& session, const json& phone_leg,
                   const std::string& setup, PeerSdp* answer) {
    json hello = peer.Call({{"cmd", "hello"}});
    PeerSdp known;
    known.setup = setup;
    for (const json& f : hello["fingerprints"]) known.fingerprints.push_back(f);
    json r = daemon_->Create(control_, session, WebrtcLeg("web", "a", known), phone_leg);
    if (!r.value("ok", false) || !HasHandshake(r)) return r;
    EXPECT_EQ(r["legs"][0]["dtls"]["setup"], setup == "active" ? "passive" : "active") << r.dump();
    json a = peer.Call({{"cmd", "answer"}, {"setup", setup},
                              {"sdp", SluiceSdp(r["legs"][0], {.setup = "actpass"})}});
    EXPECT_TRUE(a.value("ok", false)) << a.dump();
    if (!a.value("ok", false)) return r;
    *answer = ParsePeerSdp(a["sdp"]);
    EXPECT_EQ(answer->setup, setup) << a["sdp"];
    EXPECT_EQ(answer->fingerprints, known.fingerprints) << a["sdp"];
    json u = control_.Call({{"op", "session.update"}, {"session", session}, {"leg", "web"},
                            {"ice", {{"ufrag", answer->ufrag}, {"pwd", answer->pwd}}}});
    EXPECT_TRUE(u.value("ok", false)) << u.dump();
    return r;
  }

  // session.get until the WebRTC leg's DTLS state is `state` (or failed), at
  // most timeout_ms; the last reply.
  json WaitDtls(const std::string& session, const std::string& state, int timeout_ms = 15000,
                int leg = 0) {
    json g;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      g = control_.Call({{"op", "session.get"}, {"session", session}});
      const std::string now = g["legs"][leg]["dtls"].value("state", "");
      if (now == state || now == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return g;
  }

  // The leg keyed with aiortc's one profile, its pair selected at the peer's
  // candidate, consent fresh; no key material shown.
  void ExpectKeyed(json get, const PeerSdp& peer_sdp, int leg_index = 0) {
    json& leg = get["legs"][leg_index];
    EXPECT_EQ(leg["dtls"]["state"], "keyed") << get.dump();
    EXPECT_EQ(leg["dtls"]["profile"], "AES_CM_128_HMAC_SHA1_80") << get.dump();
    EXPECT_TRUE(leg["dtls"]["reason"].is_null()) << get.dump();
    EXPECT_EQ(leg["dtls"]["fingerprint"].get<std::string>().rfind("sha-256 ", 0), 0u) << get.dump();
    EXPECT_TRUE(leg["ice"]["selected"].is_string()) << get.dump();
    if (!peer_sdp.candidates.empty() && leg["ice"]["selected"].is_string()) {
      // One of the peer's UDP candidates (RFC 8839 §5.1: foundation,
      // component, transport, priority, address, port, ...).
      std::vector<std::string> udp;
      for (const std::string& c : peer_sdp.candidates) {
        std::vector<std::string> f = absl::StrSplit(c, ' ');
        if (f.size() > 5 && absl::EqualsIgnoreCase(f[2], "udp")) udp.push_back(f[4] + ":" + f[5]);
      }
      EXPECT_NE(std::find(udp.begin(), udp.end(), leg["ice"]["selected"].get<std::string>()),
                udp.end())
          << get.dump() << " (the peer's candidates: " << absl::StrJoin(udp, ", ") << ")";
    }
    EXPECT_TRUE(leg["ice"]["consent_age_ms"].is_number()) << get.dump();
    if (leg["ice"]["consent_age_ms"].is_number()) {
      EXPECT_LT(leg["ice"]["consent_age_ms"].get<int64_t>(), 10000) << get.dump();
    }
    EXPECT_FALSE(leg["ice"].contains("pwd")) << "no ICE password in session.get";
    EXPECT_EQ(get.dump().find("inline:"), std::string::npos) << "no key in session.get";
  }

  // Audio both ways for n packets of 20 ms: the peer's tone reaches the
  // phone (decrypted with the phone's keys), the phone's payloads reach the
  // peer byte for byte and decode to its tone.
  // `rtcp`: the phone sends sender reports and expects the peer's RTCP on
  // its RTP port (rtcp-mux on the phone's leg).
  void ExpectAudio(PeerProcess& peer, Phone& phone, int n, double peer_hz = kPeerHz,
                   bool rtcp = true) {
    PhoneTalk backlog;  // what the peer sent before: not part of this exchange
    Collect(phone, 0, &backlog);
    EXPECT_EQ(backlog.bad, 0) << "packets the phone could not verify";
    ASSERT_TRUE(peer.Call({{"cmd", "reset"}, {"payloads", n}}).value("ok", false));
    PhoneTalk talk = Talk(phone, n, kPhoneHz, rtcp);
    // aiortc (Python) on a loaded machine sends and counts late, not never:
    // both ends are waited for until what they must have is in.
    json stats;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
      stats = peer.Call({{"cmd", "stats"}, {"payloads", n}});
      if (AudioIn(talk, stats, n, rtcp)) break;
      Collect(phone, 50, &talk);
    } while (std::chrono::steady_clock::now() < deadline);
    ASSERT_TRUE(stats.value("ok", false)) << stats.dump();
    // Peer to phone: a packet every 20 ms, all verified, the peer's tone.
    EXPECT_GE(talk.rtp, n * 8 / 10) << "peer to phone";
    EXPECT_EQ(talk.bad, 0) << "packets the phone could not verify";
    EXPECT_NEAR(DominantHz(talk.audio), peer_hz, kHzTolerance) << "the phone hears the peer's tone";
    // Phone to peer: every payload as sent, the phone's tone.
    EXPECT_GE(stats["rtp_in"].get<int>(), n * 9 / 10) << stats.dump();
    EXPECT_EQ(stats["ssrcs"], json::array({phone.ssrc})) << stats.dump();
    // Matched by content (each payload names its packet): webrtcbin hands
    // out RTP renumbered, aiortc as it came.
    std::map<std::string, uint16_t> sent;
    for (const auto& [seq, payload] : talk.sent) {
      sent[absl::BytesToHexString(std::string(payload.begin(), payload.end()))] = seq;
    }
    int same = 0;
    for (const auto& [seq, hex] : stats["payloads"].items()) {
      const auto it = sent.find(hex.get<std::string>());
      if (it == sent.end()) {
        ADD_FAILURE() << "the peer got a payload the phone did not send (seq " << seq << "): " << hex;
        break;
      }
      ++same;
    }
    EXPECT_GE(same, n * 9 / 10) << "payloads received as sent";
    // RTCP both ways (rtcp-mux, RFC 5761), where the peer counts it.
    if (rtcp && stats["rtcp_in"].is_number()) {
      EXPECT_EQ(stats["rtcp_in"], talk.rtcp_sent) << "the phone's sender reports: " << stats.dump();
    }
    if (rtcp && stats.value("rtcp_out", 0) > 1) {
      EXPECT_GE(talk.rtcp.size(), 1u) << "the peer's RTCP: " << stats.dump();
    }
    ASSERT_TRUE(stats["tone_hz"].is_number()) << stats.dump();
    EXPECT_NEAR(stats["tone_hz"].get<double>(), kPhoneHz, kHzTolerance) << "the peer hears the phone";
  }

  // AVPF feedback (RFC 4585): a PLI from the peer about the phone's stream
  // reaches the phone, re-protected for it. Only where the peer can send
  // one on request (aiortc).
  void ExpectFeedback(PeerProcess& peer, Phone& phone) {
    if (!peer.Call({{"cmd", "pli"}, {"media_ssrc", phone.ssrc}}).value("ok", false)) return;
    PhoneTalk talk;
    bool pli = false;
    // Until it is in: aiortc on a loaded machine sends it late.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pli && std::chrono::steady_clock::now() < deadline) {
      Collect(phone, 50, &talk);
      for (const std::vector<uint8_t>& p : talk.rtcp) {
        // RFC 4585 §6.1: PT 206 (PSFB), FMT 1 (PLI), media SSRC at byte 8.
        pli |= p.size() >= 12 && p[1] == 206 && (p[0] & 0x1f) == 1 &&
               ((p[8] << 24) | (p[9] << 16) | (p[10] << 8) | p[11]) == static_cast<int>(phone.ssrc);
      }
    }
    EXPECT_EQ(talk.bad, 0);
    EXPECT_TRUE(pli) << talk.rtcp.size() << " RTCP packets, no PLI for the phone's stream";
  }

  // A whole call: the peer offers (answer_setup "") or answers with
  // answer_setup, both sides' handshakes complete, session.get and stats
  // show it, audio flows both ways for `packets` packets of 20 ms.
  void RunCall(PeerProcess& peer, const std::string& session, Phone& phone, const json& phone_leg,
               const std::string& answer_setup, int packets) {
    const int64_t keyed = WebrtcStat("dtls_keyed"), selected = WebrtcStat("ice_selected");
    PeerSdp sdp;
    json r = answer_setup.empty() ? PeerOffers(peer, session, phone_leg, &sdp)
                                  : PeerAnswers(peer, session, phone_leg, answer_setup, &sdp);
    ASSERT_TRUE(HasHandshake(r));
    // RFC 5763 §5: to actpass Sluice answers active; else the other role.
    const std::string sluice_setup = answer_setup == "active" ? "passive" : "active";
    EXPECT_EQ(r["legs"][0]["dtls"]["setup"], sluice_setup) << r.dump();
    EXPECT_EQ(r["legs"][0]["dtls"]["state"], "new") << r.dump();
    EXPECT_FALSE(r["legs"][0]["ice"]["candidates"].empty()) << r.dump();
    Connect(phone, r);
    json up = peer.Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 15}});
    EXPECT_TRUE(up.value("ok", false)) << up.dump();
    json g = WaitDtls(session, "keyed");
    EXPECT_EQ(g["legs"][0]["dtls"]["setup"], sluice_setup) << g.dump();
    ExpectKeyed(g, sdp);
    EXPECT_EQ(WebrtcStat("dtls_keyed"), keyed + 1);
    EXPECT_EQ(WebrtcStat("ice_selected"), selected + 1);
    ExpectAudio(peer, phone, packets);
    ExpectFeedback(peer, phone);
    if (HasFailure()) {
      std::printf("session.get: %s\n",
                  control_.Call({{"op", "session.get"}, {"session", session}}).dump().c_str());
    }
    Delete(session);
  }

  void Reoffer(const std::string& session, const std::string& peer_setup);

  // Polls stats until webrtc.<name> is at least `want` (at most timeout_ms).
  bool WaitStat(const std::string& name, int64_t want, int timeout_ms = 15000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (WebrtcStat(name) < want) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  // A count of stats' "webrtc" object (-1 when there is none).
  int64_t WebrtcStat(const std::string& name) {
    json stats = control_.Call({{"op", "stats"}});
    if (!stats.contains("webrtc") || !stats["webrtc"].contains(name)) return -1;
    return stats["webrtc"][name].get<int64_t>();
  }

  void Delete(const std::string& session) {
    control_.Call({{"op", "session.delete"}, {"session", session}});
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string skip_reason_;
  ControlClient control_;
  NgClient ng_;  // the SBC's rtpengine module, on the ng protocol
  std::string phone_key_;
};

// A whole call with each peer and each kind of phone, in both DTLS roles.
struct CallCase {
  const char* name;
  const char* script;        // the peer
  bool sdes;                 // an SDES phone, else a plain RTP phone
  const char* answer_setup;  // "": the peer offers actpass; else it answers this
  uint16_t phone_port;
};

void PrintTo(const CallCase& c, std::ostream* os) { *os << c.name; }

class WebrtcCallTest : public WebrtcTest, public ::testing::WithParamInterface<CallCase> {};

TEST_P(WebrtcCallTest, AudioBothWays) {
  const CallCase& c = GetParam();
  if (std::string(c.script) == "gst_webrtc_peer.py") {
    if (const std::string missing = MissingGstreamer(); !missing.empty()) {
      GTEST_SKIP() << "skipped: " << missing;
    }
  }
  auto peer = StartPeer(c.script);
  ASSERT_NE(peer, nullptr);
  json phone_leg;
  Phone phone = c.sdes ? SdesPhone(c.phone_port, 0x5d0000 + c.phone_port, &phone_leg)
                       : PlainPhone(c.phone_port, 0x5d0000 + c.phone_port, &phone_leg);
  RunCall(*peer, c.name, phone, phone_leg, c.answer_setup, 150);
}

INSTANTIATE_TEST_SUITE_P(
    Peers, WebrtcCallTest,
    ::testing::Values(
        CallCase{"AiortcOffersToSdesPhone", "webrtc_peer.py", true, "", 40000},
        CallCase{"AiortcOffersToPlainPhone", "webrtc_peer.py", false, "", 40010},
        // aiortc opens the handshake: Sluice is the DTLS server.
        CallCase{"AiortcAnswersActiveToSdesPhone", "webrtc_peer.py", true, "active", 40020},
        // Sluice opens the handshake as the client.
        CallCase{"AiortcAnswersPassiveToPlainPhone", "webrtc_peer.py", false, "passive", 40030},
        // GStreamer webrtcbin (libnice, GStreamer's DTLS) in aiortc's place.
        CallCase{"GstreamerOffersToSdesPhone", "gst_webrtc_peer.py", true, "", 40060},
        CallCase{"GstreamerAnswersActiveToPlainPhone", "gst_webrtc_peer.py", false, "active",
                 40070}),
    [](const ::testing::TestParamInfo<CallCase>& info) { return std::string(info.param.name); });

// The same calls driven over the ng protocol, as an SBC's rtpengine module
// drives Sluice with the flags of a Kamailio or OpenSIPS WebRTC
// configuration: aiortc gets Sluice's SDP (DTLS-SRTP, ICE-lite) and the
// phone an SDES or plain one, whichever side offers.
// Toward aiortc no DTLS=passive in an offer: aiortc 1.4 refuses an offer
// whose a=setup is not actpass (RFC 8842 §5.3 allows it; aiortc 1.9 and
// browsers take it). It answers actpass with active, so Sluice is passive
// all the same; tests/ng covers DTLS=passive in offers.
constexpr char kNgToSip[] = "ICE=remove DTLS=off";
constexpr char kNgToBrowser[] = "ICE=force UDP/TLS/RTP/SAVPF SDES-off rtcp-mux-offer generate-mid";

struct NgCallCase {
  const char* name;
  bool sdes;                // an SDES phone, else a plain RTP phone
  bool browser_offers;      // else the phone offers and aiortc answers
  const char* answer_flags;  // toward aiortc, when it offered
  uint16_t phone_port;
};

void PrintTo(const NgCallCase& c, std::ostream* os) { *os << c.name; }

class WebrtcNgTest : public WebrtcTest, public ::testing::WithParamInterface<NgCallCase> {
 protected:
  // The ng offer and answer of the call; the SDP aiortc got, aiortc's own
  // and what the phone got.
  void Negotiate(const NgCallCase& c, PeerProcess& peer, const std::string& call,
                 const std::string& phone_sdp, std::string* to_browser, PeerSdp* browser,
                 SdpView* to_phone) {
    const ng::Value::List toward_b = {"b", "a"};
    ng::Value r;
    if (c.browser_offers) {
      json o = peer.Call({{"cmd", "offer"}});
      ASSERT_TRUE(o.value("ok", false)) << o.dump();
      *browser = ParsePeerSdp(o["sdp"]);
      ng::Value offer = NgOffer(call, "web", o["sdp"].get<std::string>());
      offer.Set("rtpp-flags", absl::StrCat(kNgToSip, c.sdes ? " RTP/SAVP" : " RTP/AVP"));
      r = ng_.Call(offer);
      ASSERT_EQ(Result(r), "ok") << ErrorReason(r);
      *to_phone = ViewSdp(r);
      ng::Value answer = NgAnswer(call, "web", "phone", phone_sdp);
      answer.Set("rtpp-flags", c.answer_flags);
      r = ng_.Call(answer);
      ASSERT_EQ(Result(r), "ok") << ErrorReason(r);
      *to_browser = std::string(r.Find("sdp")->str());
      json remote = peer.Call({{"cmd", "remote"}, {"sdp", *to_browser}});
      ASSERT_TRUE(remote.value("ok", false)) << remote.dump() << "\n" << *to_browser;
      return;
    }
    ng::Value offer = NgOffer(call, "phone", phone_sdp);
    offer.Set("direction", toward_b);
    offer.Set("rtpp-flags", kNgToBrowser);
    r = ng_.Call(offer);
    ASSERT_EQ(Result(r), "ok") << ErrorReason(r);
    *to_browser = std::string(r.Find("sdp")->str());
    json a = peer.Call({{"cmd", "answer"}, {"sdp", *to_browser}});
    ASSERT_TRUE(a.value("ok", false)) << a.dump() << "\n" << *to_browser;
    *browser = ParsePeerSdp(a["sdp"]);
    ng::Value answer = NgAnswer(call, "phone", "web", a["sdp"].get<std::string>());
    answer.Set("direction", toward_b);
    answer.Set("rtpp-flags", kNgToSip);
    r = ng_.Call(answer);
    ASSERT_EQ(Result(r), "ok") << ErrorReason(r);
    *to_phone = ViewSdp(r);
  }
};

TEST_P(WebrtcNgTest, AudioBothWays) {
  const NgCallCase& c = GetParam();
  auto peer = StartPeer();
  ASSERT_NE(peer, nullptr);
  const std::string call = absl::StrCat("ng-", c.name);
  const std::string proto = c.sdes ? "RTP/SAVP" : "RTP/AVP";
  const std::string key = NewSdesKey();
  Phone phone = daemon_->MakePhone(1, daemon_->phone_ip(1), c.phone_port, 0x5e0000 + c.phone_port);
  const std::string phone_sdp =
      PhoneSdp(daemon_->phone_ip(1), c.phone_port, proto,
               c.sdes ? std::vector<std::string>{key} : std::vector<std::string>{});
  std::string to_browser;
  PeerSdp browser;
  SdpView to_phone;
  Negotiate(c, *peer, call, phone_sdp, &to_browser, &browser, &to_phone);
  ASSERT_FALSE(HasFailure());
  // aiortc's SDP: DTLS-SRTP and ICE-lite from Sluice, no SDES key, no BUNDLE.
  for (const char* has : {"UDP/TLS/RTP/SAVPF", "a=ice-lite\r\n", "a=fingerprint:sha-256 ",
                          "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=rtcp-mux\r\n", "a=mid:"}) {
    EXPECT_NE(to_browser.find(has), std::string::npos) << has << " in\n" << to_browser;
  }
  EXPECT_EQ(to_browser.find("a=crypto"), std::string::npos) << to_browser;
  EXPECT_EQ(to_browser.find("BUNDLE"), std::string::npos) << to_browser;
  // The phone's: SDES or plain, no WebRTC attribute.
  EXPECT_EQ(to_phone.proto, proto);
  ASSERT_EQ(to_phone.crypto.empty(), !c.sdes);
  phone.relay = Addr(to_phone.ip, to_phone.port);
  if (c.sdes) Arm(phone, key, to_phone.crypto[0]);

  json up = peer->Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 15}});
  EXPECT_TRUE(up.value("ok", false)) << up.dump();
  const int web_leg = c.browser_offers ? 0 : 1;
  json g = WaitDtls(call, "keyed", 15000, web_leg);
  ExpectKeyed(g, browser, web_leg);
  ExpectAudio(*peer, phone, 100);
  if (HasFailure()) std::printf("session.get: %s\nSDP to aiortc:\n%s\n", g.dump().c_str(), to_browser.c_str());
  EXPECT_EQ(Result(ng_.Call(NgCommand("delete", call))), "ok");
}

INSTANTIATE_TEST_SUITE_P(
    Ng, WebrtcNgTest,
    ::testing::Values(
        // aiortc offers actpass; the answer forces Sluice passive (aiortc opens the handshake).
        NgCallCase{"AiortcOffersToSdesPhone", true, true, "ICE=force DTLS=passive", 40110},
        // The same with Sluice's own choice, active (Sluice opens it).
        NgCallCase{"AiortcOffersToPlainPhone", false, true, "", 40120},
        // The phone offers; Sluice offers aiortc actpass and it answers active.
        NgCallCase{"SdesPhoneOffersToAiortc", true, false, "", 40130},
        NgCallCase{"PlainPhoneOffersToAiortc", false, false, "", 40140}),
    [](const ::testing::TestParamInfo<NgCallCase>& info) { return std::string(info.param.name); });

// The certificate aiortc presents is not the one the SDP named: the leg
// fails with the reason, and nothing is relayed either way, in clear or not.
TEST_F(WebrtcTest, FingerprintMismatchFailsTheLegAndRelaysNothing) {
  auto peer = StartPeer();
  ASSERT_NE(peer, nullptr);
  json phone_leg;
  Phone phone = PlainPhone(40040, 0x5d0005, &phone_leg);
  const int64_t failed = WebrtcStat("dtls_failed");
  PeerSdp offer;
  json r = PeerOffers(*peer, "mismatch", phone_leg, &offer, {WrongFingerprint()});
  ASSERT_TRUE(HasHandshake(r));
  Connect(phone, r);
  json g = WaitDtls("mismatch", "failed", 20000);
  EXPECT_EQ(g["legs"][0]["dtls"]["state"], "failed") << g.dump();
  EXPECT_TRUE(absl::StartsWith(g["legs"][0]["dtls"].value("reason", ""), "fingerprint mismatch"))
      << g.dump();
  EXPECT_TRUE(g["legs"][0]["dtls"]["profile"].is_null()) << g.dump();
  EXPECT_EQ(WebrtcStat("dtls_failed"), failed + 1);
  ASSERT_TRUE(peer->Call({{"cmd", "reset"}}).value("ok", false));
  // The plain phone talks for a second; aiortc, if it thinks it may, too.
  const PhoneTalk talk = Talk(phone, 50);
  json stats = peer->Call({{"cmd", "stats"}});
  ASSERT_TRUE(stats.value("ok", false)) << stats.dump();
  EXPECT_EQ(stats["media_in"], 0) << "the phone's RTP reached the peer: " << stats.dump();
  EXPECT_EQ(talk.rtp + talk.rtcp.size(), 0u) << "the peer's media reached the phone";
  g = control_.Call({{"op", "session.get"}, {"session", "mismatch"}});
  EXPECT_EQ(g["legs"][0]["counters"]["tx_packets"], 0) << g.dump();
  EXPECT_EQ(g["legs"][1]["counters"]["tx_packets"], 0) << g.dump();
  Delete("mismatch");
}

// Sluice takes the role the peer leaves (RFC 4145 §4, RFC 5763 §5), never
// the peer's own, and refuses a setup that leaves no DTLS role.
TEST_F(WebrtcTest, SetupRolesAndRefusedSetups) {
  const std::vector<std::string> fp = {WrongFingerprint()};
  int n = 0;
  for (const auto& [peer_setup, sluice_setup] :
       std::vector<std::pair<std::string, std::string>>{
           {"actpass", "active"}, {"active", "passive"}, {"passive", "active"}}) {
    const std::string name = absl::StrCat("roles", ++n);
    PeerSdp peer;
    peer.setup = peer_setup;
    peer.fingerprints = fp;
    json r = daemon_->Create(control_, name, WebrtcLeg("web", "a", peer),
                             PlainLeg("phone", "b", ""));
    ASSERT_TRUE(HasHandshake(r));
    EXPECT_EQ(r["legs"][0]["dtls"]["setup"], sluice_setup) << peer_setup << ": " << r.dump();
    Delete(name);
  }
  for (const std::string bad : {"holdconn", "both", ""}) {
    PeerSdp peer;
    peer.setup = bad;
    peer.fingerprints = fp;
    json r = control_.Call({{"op", "session.create"}, {"session", "roles-bad"},
                            {"legs", {WebrtcLeg("web", "a", peer), PlainLeg("phone", "b", "")}}});
    EXPECT_FALSE(r.value("ok", true)) << bad << ": " << r.dump();
    EXPECT_NE(r.dump().find("legs[0].dtls.setup"), std::string::npos) << r.dump();
  }
}

// The controller forces Sluice's DTLS role (dtls.local_setup). Passive to
// aiortc's actpass offer: aiortc opens the handshake, which keys the call
// (actpass alone would make Sluice active). Active against aiortc's own
// answer "active" (the both-active conflict): the create is refused, the
// leg never exists, and so is an update to that on a live leg.
TEST_F(WebrtcTest, ForcedLocalSetupTakenAndBothActiveRefused) {
  auto peer = StartPeer();
  ASSERT_NE(peer, nullptr);
  json o = peer->Call({{"cmd", "offer"}});
  ASSERT_TRUE(o.value("ok", false)) << o.dump();
  const PeerSdp offer = ParsePeerSdp(o["sdp"]);
  json leg = WebrtcLeg("web", "a", offer);
  leg["dtls"]["local_setup"] = "passive";
  json phone_leg;
  Phone phone = PlainPhone(40100, 0x5d0010, &phone_leg);
  json r = daemon_->Create(control_, "forced-passive", leg, phone_leg);
  ASSERT_TRUE(HasHandshake(r));
  EXPECT_EQ(r["legs"][0]["dtls"]["setup"], "passive") << r.dump();
  Connect(phone, r);
  ASSERT_TRUE(peer->Call({{"cmd", "remote"}, {"sdp", SluiceSdp(r["legs"][0], {.mid = offer.mid})}})
                  .value("ok", false));
  EXPECT_TRUE(peer->Call({{"cmd", "wait"}, {"timeout", 15}}).value("ok", false));
  ExpectKeyed(WaitDtls("forced-passive", "keyed"), offer);
  ExpectAudio(*peer, phone, 50);

  // aiortc's answer to an offer of Sluice's says active. The offer points
  // at a port no leg has, so its checks reach no call.
  auto answerer = StartPeer();
  ASSERT_NE(answerer, nullptr);
  json nowhere = r["legs"][0];
  nowhere["local"] = daemon_->relay_ip(0) + ":9";
  json a = answerer->Call({{"cmd", "answer"}, {"setup", "active"},
                           {"sdp", SluiceSdp(nowhere, {.setup = "actpass"})}});
  ASSERT_TRUE(a.value("ok", false)) << a.dump();
  const PeerSdp answer = ParsePeerSdp(a["sdp"]);
  ASSERT_EQ(answer.setup, "active") << a["sdp"];
  json both = WebrtcLeg("web", "a", answer);
  both["dtls"]["local_setup"] = "active";
  json refused = control_.Call({{"op", "session.create"}, {"session", "both-active"},
                                {"legs", {both, PlainLeg("phone", "b", "")}}});
  EXPECT_FALSE(refused.value("ok", true)) << refused.dump();
  EXPECT_EQ(refused["error"].value("code", ""), "invalid_argument") << refused.dump();
  EXPECT_TRUE(absl::StartsWith(refused["error"].value("message", ""),
                               "legs[0].dtls.setup: both sides are active"))
      << refused.dump();
  json g = control_.Call({{"op", "session.get"}, {"session", "both-active"}});
  EXPECT_EQ(g["error"].value("code", ""), "not_found") << "nothing left behind: " << g.dump();
  json u = control_.Call({{"op", "session.update"}, {"session", "forced-passive"}, {"leg", "web"},
                          {"dtls", both["dtls"]}});
  EXPECT_FALSE(u.value("ok", true)) << u.dump();
  EXPECT_NE(u.dump().find("both sides are active"), std::string::npos) << u.dump();
  ExpectKeyed(WaitDtls("forced-passive", "keyed"), offer);
  Delete("forced-passive");
}

// A re-offer from a new peer connection (a browser's reload, say): a new
// certificate, new ICE credentials, a new address. The update starts a new
// handshake; once it has keyed the leg, the call is the new peer's both ways.
// `peer_setup` is what the controller tells Sluice of the new peer: its
// offer's actpass (Sluice the DTLS client) or active (Sluice the server).
void WebrtcTest::Reoffer(const std::string& session, const std::string& peer_setup) {
  auto first = StartPeer();
  ASSERT_NE(first, nullptr);
  json phone_leg;
  Phone phone = SdesPhone(peer_setup == "active" ? 40090 : 40080, 0x5d0008, &phone_leg);
  PeerSdp offer;
  json r = PeerOffers(*first, session, phone_leg, &offer);
  ASSERT_TRUE(HasHandshake(r));
  Connect(phone, r);
  ASSERT_TRUE(first->Call({{"cmd", "wait"}, {"timeout", 15}}).value("ok", false));
  ExpectKeyed(WaitDtls(session, "keyed"), offer);
  const int64_t keyed = WebrtcStat("dtls_keyed");
  auto second = StartPeer("webrtc_peer.py", 1500);
  ASSERT_NE(second, nullptr);
  json o = second->Call({{"cmd", "offer"}});
  ASSERT_TRUE(o.value("ok", false)) << o.dump();
  const PeerSdp offer2 = ParsePeerSdp(o["sdp"]);
  json u = control_.Call(
      {{"op", "session.update"}, {"session", session}, {"leg", "web"},
       {"dtls", {{"setup", peer_setup}, {"fingerprints", offer2.fingerprints}}},
       {"ice", {{"restart", true}, {"ufrag", offer2.ufrag}, {"pwd", offer2.pwd}}}});
  ASSERT_TRUE(u.value("ok", false)) << u.dump();
  EXPECT_NE(u["legs"][0]["ice"]["ufrag"], r["legs"][0]["ice"]["ufrag"]) << u.dump();
  EXPECT_EQ(u["legs"][0]["dtls"]["setup"], peer_setup == "active" ? "passive" : "active")
      << u.dump();
  json a = second->Call({{"cmd", "remote"}, {"sdp", SluiceSdp(u["legs"][0], {.mid = offer2.mid})}});
  ASSERT_TRUE(a.value("ok", false)) << a.dump();
  json up = second->Call({{"cmd", "wait"}, {"timeout", 15}});
  EXPECT_TRUE(up.value("ok", false)) << "the new peer's DTLS: " << up.dump();
  EXPECT_TRUE(WaitStat("dtls_keyed", keyed + 1)) << "the new handshake keyed the leg";
  first.reset();  // the old page is gone
  ExpectKeyed(WaitDtls(session, "keyed"), offer2);
  ExpectAudio(*second, phone, 100, 1500);
  Delete(session);
}

TEST_F(WebrtcTest, ReofferFromANewPeerConnectionSluiceClient) { Reoffer("reoffer-client", "actpass"); }

TEST_F(WebrtcTest, ReofferFromANewPeerConnectionSluiceServer) { Reoffer("reoffer-server", "active"); }

// Both legs WebRTC: aiortc on one side, GStreamer webrtcbin on the other,
// each with its own handshakes; each hears the other's tone.
TEST_F(WebrtcTest, AiortcToGstreamerThroughTwoWebrtcLegs) {
  if (const std::string missing = MissingGstreamer(); !missing.empty()) {
    GTEST_SKIP() << "skipped: " << missing;
  }
  auto a = StartPeer("webrtc_peer.py", kPeerHz, 0);
  auto b = StartPeer("gst_webrtc_peer.py", kPhoneHz, 1);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  json oa = a->Call({{"cmd", "offer"}}), ob = b->Call({{"cmd", "offer"}});
  ASSERT_TRUE(oa.value("ok", false) && ob.value("ok", false)) << oa.dump() << ob.dump();
  const PeerSdp sa = ParsePeerSdp(oa["sdp"]), sb = ParsePeerSdp(ob["sdp"]);
  json leg_b = WebrtcLeg("web2", "b", sb);
  json r = daemon_->Create(control_, "two-webrtc", WebrtcLeg("web", "a", sa), leg_b);
  ASSERT_TRUE(HasHandshake(r));
  ASSERT_TRUE(r["legs"][1].contains("dtls") && r["legs"][1]["ice"].contains("pwd")) << r.dump();
  EXPECT_TRUE(a->Call({{"cmd", "remote"}, {"sdp", SluiceSdp(r["legs"][0], {.mid = sa.mid})}})
                  .value("ok", false));
  EXPECT_TRUE(b->Call({{"cmd", "remote"}, {"sdp", SluiceSdp(r["legs"][1], {.mid = sb.mid})}})
                  .value("ok", false));
  for (PeerProcess* p : {a.get(), b.get()}) {
    json up = p->Call({{"cmd", "wait"}, {"timeout", 15}});
    EXPECT_TRUE(up.value("ok", false)) << up.dump();
  }
  json g = WaitDtls("two-webrtc", "keyed");
  ExpectKeyed(g, sa);
  EXPECT_EQ(g["legs"][1]["dtls"]["state"], "keyed") << g.dump();
  for (PeerProcess* p : {a.get(), b.get()}) p->Call({{"cmd", "reset"}});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  json stats_a = a->Call({{"cmd", "stats"}}), stats_b = b->Call({{"cmd", "stats"}});
  EXPECT_GE(stats_a.value("rtp_in", 0), 120) << stats_a.dump();
  EXPECT_GE(stats_b.value("rtp_in", 0), 120) << stats_b.dump();
  EXPECT_NEAR(stats_a.value("tone_hz", 0.0), kPhoneHz, kHzTolerance) << "aiortc hears GStreamer";
  EXPECT_NEAR(stats_b.value("tone_hz", 0.0), kPeerHz, kHzTolerance) << "GStreamer hears aiortc";
  Delete("two-webrtc");
}

// An ICE restart mid-call (new credentials on both sides, RFC 8445 §9): the
// call's audio goes on through it, and the leg then answers checks under the
// new credentials only.
TEST_F(WebrtcTest, IceRestartMidCallKeepsAudioFlowing) {
  auto peer = StartPeer();
  ASSERT_NE(peer, nullptr);
  json phone_leg;
  Phone phone = SdesPhone(40050, 0x5d0006, &phone_leg);
  PeerSdp offer;
  json r = PeerOffers(*peer, "restart", phone_leg, &offer);
  ASSERT_TRUE(HasHandshake(r));
  Connect(phone, r);
  json up = peer->Call({{"cmd", "wait"}, {"state", "connected"}, {"timeout", 15}});
  ASSERT_TRUE(up.value("ok", false)) << up.dump();
  ExpectKeyed(WaitDtls("restart", "keyed"), offer);
  ASSERT_TRUE(peer->Call({{"cmd", "reset"}, {"payloads", 0}}).value("ok", false));
  // The phone talks for 5 s while the controller and the peer restart ICE.
  PhoneTalk talk;
  std::thread phone_thread([&] { talk = Talk(phone, 250); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string new_ufrag = "rst" + std::to_string(getpid() % 10000);
  const std::string new_pwd = "restartedpasswordfortheice";
  json u = control_.Call({{"op", "session.update"}, {"session", "restart"}, {"leg", "web"},
                          {"ice", {{"restart", true}, {"ufrag", new_ufrag}, {"pwd", new_pwd}}}});
  json restarted;
  if (u.value("ok", false)) {
    EXPECT_NE(u["legs"][0]["ice"]["ufrag"], r["legs"][0]["ice"]["ufrag"]) << u.dump();
    EXPECT_NE(u["legs"][0]["ice"]["pwd"], r["legs"][0]["ice"]["pwd"]) << u.dump();
    restarted = peer->Call({{"cmd", "ice_restart"}, {"ufrag", new_ufrag}, {"pwd", new_pwd},
                            {"remote_ufrag", u["legs"][0]["ice"]["ufrag"]},
                            {"remote_pwd", u["legs"][0]["ice"]["pwd"]}});
  }
  // Checked at once: the check under the new credentials is fresh consent.
  json g = control_.Call({{"op", "session.get"}, {"session", "restart"}});
  phone_thread.join();
  ASSERT_TRUE(u.value("ok", false)) << u.dump();
  EXPECT_TRUE(restarted.value("selected", false)) << "the nominating check under the new "
                                                     "credentials was answered: " << restarted.dump();
  json stats = peer->Call({{"cmd", "stats"}});
  EXPECT_GE(stats.value("rtp_in", 0), 240) << "the phone's audio through the restart: " << stats.dump();
  EXPECT_GE(talk.rtp, 200) << "the peer's audio through the restart";
  EXPECT_EQ(talk.bad, 0);
  EXPECT_NEAR(DominantHz(talk.audio), kPeerHz, kHzTolerance);
  EXPECT_EQ(g["legs"][0]["ice"]["ufrag"], u["legs"][0]["ice"]["ufrag"]) << g.dump();
  ExpectKeyed(g, offer);
  // The restart is complete: a check under the new credentials is answered,
  // one under the old ones is not (RFC 8445 §9: they are gone).
  json fresh = peer->Call({{"cmd", "check"}, {"ufrag", new_ufrag},
                           {"remote_ufrag", u["legs"][0]["ice"]["ufrag"]},
                           {"remote_pwd", u["legs"][0]["ice"]["pwd"]}});
  EXPECT_TRUE(fresh.value("answered", false)) << fresh.dump();
  json stale = peer->Call({{"cmd", "check"}, {"ufrag", offer.ufrag},
                           {"remote_ufrag", r["legs"][0]["ice"]["ufrag"]},
                           {"remote_pwd", r["legs"][0]["ice"]["pwd"]}});
  EXPECT_TRUE(stale.value("ok", false)) << stale.dump();
  EXPECT_FALSE(stale.value("answered", true)) << "the old credentials still work: " << stale.dump();
  EXPECT_LT(g["legs"][0]["ice"].value("consent_age_ms", 1 << 30), 1000) << g.dump();
  Delete("restart");
}

}  // namespace
}  // namespace sluice::testing
