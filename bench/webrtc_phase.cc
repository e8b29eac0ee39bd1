#include "webrtc_phase.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dtls/handshake_loop.h"
#include "options.h"
#include "sluice/dtls/certificate.h"

namespace sluice::bench {
namespace {

using json = nlohmann::json;

constexpr size_t kCeilingHandshakes = 200;
constexpr uint16_t kBrowserFirstPort = 42000;
constexpr uint16_t kMediaFirstPort = 30000;
constexpr uint16_t kMediaReceiverPort = 40010;
constexpr uint16_t kWebRtcPlainRemotePort = 40012;  // leg b's remote; no media goes there

absl::Status Context(absl::string_view what, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", Str(s.message())));
}

// RunHandshake's rates, after one handshake that builds the shared contexts.
absl::StatusOr<HandshakeCeiling> MeasureCeiling() {
  absl::StatusOr<dtls::Certificate> client = dtls::Certificate::Generate();
  absl::StatusOr<dtls::Certificate> server = dtls::Certificate::Generate();
  if (!client.ok()) return client.status();
  if (!server.ok()) return server.status();
  const dtls::SrtpProfile profile = dtls::SrtpProfile::kAes128CmSha1_80;
  RunHandshake(*client, *server, profile);
  std::chrono::nanoseconds client_ns{0}, server_ns{0};
  HandshakeCeiling c;
  for (; c.handshakes < kCeilingHandshakes; ++c.handshakes) {
    const HandshakeCost cost = RunHandshake(*client, *server, profile);
    if (!cost.keyed) return absl::InternalError("an in-process DTLS handshake failed");
    client_ns += cost.client;
    server_ns += cost.server;
  }
  const double n = static_cast<double>(c.handshakes);
  c.server_side_per_second = n / std::chrono::duration<double>(server_ns).count();
  c.client_side_per_second = n / std::chrono::duration<double>(client_ns).count();
  c.both_sides_per_second = n / std::chrono::duration<double>(server_ns + client_ns).count();
  return c;
}

// The counters of `stats` the phase reports: summed over workers and ports.
absl::StatusOr<WebRtcStatsDelta> ReadStats(control::Client& control) {
  absl::StatusOr<std::string> reply = control.Call("{\"id\":\"stats\",\"op\":\"stats\"}");
  if (!reply.ok()) return reply.status();
  const json j = json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false)) return absl::InternalError("stats failed");
  WebRtcStatsDelta s;
  for (const json& w : j["workers"]) {
    s.handshake_packets += w.value("handshake_packets", uint64_t{0});
    s.handshake_full += w["drops"].value("handshake_full", uint64_t{0});
  }
  for (const json& p : j["ports"]) s.rx_missed += p.value("rx_missed", uint64_t{0});
  s.dtls_keyed = j["webrtc"].value("dtls_keyed", uint64_t{0});
  s.dtls_failed = j["webrtc"].value("dtls_failed", uint64_t{0});
  return s;
}

WebRtcStatsDelta Minus(const WebRtcStatsDelta& a, const WebRtcStatsDelta& b) {
  return {a.handshake_full - b.handshake_full, a.handshake_packets - b.handshake_packets,
          a.rx_missed - b.rx_missed, a.dtls_keyed - b.dtls_keyed, a.dtls_failed - b.dtls_failed};
}

testing::WebRtcLoadOptions LoadOptions(const WebRtcPhaseOptions& o) {
  testing::WebRtcLoadOptions l;
  l.calls = o.calls;
  l.session_prefix = "bench-webrtc-";
  l.socket_path = o.socket_path;
  l.browser_ns = o.ns_a;
  l.browser_ip = o.ip_a;
  l.first_port = kBrowserFirstPort;
  l.remote_b = absl::StrCat(o.ip_b, ":", kWebRtcPlainRemotePort);
  l.sluiced = o.sluiced;
  return l;
}

testing::MediaCallsOptions MediaOptions(const WebRtcPhaseOptions& o) {
  testing::MediaCallsOptions m;
  m.calls = o.media_calls;
  m.pps = o.media_pps;
  m.session_prefix = "bench-media-call-";
  m.ns_a = o.ns_a;
  m.ip_a = o.ip_a;
  m.first_port_a = kMediaFirstPort;
  m.ns_b = o.ns_b;
  m.ip_b = o.ip_b;
  m.port_b = kMediaReceiverPort;
  return m;
}

// What fails the phase: a call not keyed, media lost, a handshake dropped
// at a full ring.
void Judge(WebRtcPhaseResult& r) {
  if (r.load.failed > 0) {
    r.errors.push_back(absl::StrCat(r.load.failed, " of ", r.load.calls, " WebRTC calls not keyed"));
  }
  if (r.media.lost > 0) {
    r.errors.push_back(absl::StrCat(r.media.lost, " media packets of the running calls lost"));
  }
  if (r.stats.handshake_full > 0) {
    r.errors.push_back(absl::StrCat(r.stats.handshake_full, " handshake_full drops"));
  }
}

}  // namespace

absl::StatusOr<WebRtcPhaseResult> RunWebRtcPhase(control::Client& control,
                                                 testing::Topology& topo,
                                                 const WebRtcPhaseOptions& options) {
  WebRtcPhaseResult r;
  r.media_calls = options.media_calls;
  r.media_pps = options.media_pps;
  absl::StatusOr<HandshakeCeiling> ceiling = MeasureCeiling();
  if (!ceiling.ok()) return Context("in-process handshakes", ceiling.status());
  r.ceiling = *ceiling;
  auto media = testing::MediaCalls::Create(control, topo, MediaOptions(options));
  if (!media.ok()) return Context("media calls", media.status());
  if (absl::Status s = (*media)->Start(); !s.ok()) return Context("media calls", s);
  auto load = testing::WebRtcLoad::Prepare(control, topo, LoadOptions(options));
  if (!load.ok()) return Context("WebRTC calls", load.status());
  absl::StatusOr<WebRtcStatsDelta> before = ReadStats(control);
  if (!before.ok()) return Context("stats", before.status());
  (*media)->Mark(&control);
  absl::StatusOr<testing::WebRtcLoadResult> result = (*load)->Run();
  r.media = (*media)->Stop(500, &control);
  if (!result.ok()) return Context("WebRTC calls", result.status());
  r.load = *std::move(result);
  absl::StatusOr<WebRtcStatsDelta> after = ReadStats(control);
  if (!after.ok()) return Context("stats", after.status());
  r.stats = Minus(*after, *before);
  if (absl::Status s = (*load)->Delete(control); !s.ok()) return Context("WebRTC calls", s);
  if (absl::Status s = (*media)->Delete(control); !s.ok()) return Context("media calls", s);
  Judge(r);
  return r;
}

void PrintWebRtcPhase(const WebRtcPhaseResult& r) {
  const testing::WebRtcLoadResult& l = r.load;
  std::printf(
      "\nWebRTC: %zu calls set up at once (ICE check, DTLS-SRTP; the browser the DTLS client on "
      "half): %zu keyed, %zu failed in %.2f s: %.0f handshakes/s\n",
      l.calls, l.keyed, l.failed, l.seconds, l.handshakes_per_second);
  std::printf("  first check to session.get \"keyed\", per call: p50 %.0f ms, p99 %.0f ms, "
              "max %.0f ms (browser keyed: p50 %.0f ms, max %.0f ms)\n",
              l.keyed_p50_ms, l.keyed_p99_ms, l.keyed_max_ms, l.browser_keyed_p50_ms,
              l.browser_keyed_max_ms);
  if (l.handshake_cpu_seconds) {
    std::printf("  handshake thread: %.2f s of CPU, %.0f handshakes per CPU second\n",
                *l.handshake_cpu_seconds,
                *l.handshake_cpu_seconds > 0 ? l.keyed / *l.handshake_cpu_seconds : 0.0);
  }
  std::printf("  ceiling, in process on one core (%zu handshakes): Sluice's side alone %.0f/s "
              "as server, %.0f/s as client; both sides %.0f/s\n",
              r.ceiling.handshakes, r.ceiling.server_side_per_second,
              r.ceiling.client_side_per_second, r.ceiling.both_sides_per_second);
  std::printf("  browsers: %llu check retransmissions, %llu DTLS retransmissions; sluiced: "
              "%llu handshake packets, handshake_full %llu, rx_missed %llu\n",
              static_cast<unsigned long long>(l.browsers.check_retransmissions),
              static_cast<unsigned long long>(l.browsers.dtls_retransmissions),
              static_cast<unsigned long long>(r.stats.handshake_packets),
              static_cast<unsigned long long>(r.stats.handshake_full),
              static_cast<unsigned long long>(r.stats.rx_missed));
  std::printf("  meanwhile %zu running SRTP calls at %u pps each: %llu packets sent, %llu "
              "relayed, %llu lost (%zu calls with loss), %llu send errors, over %.2f s; "
              "sluiced received %lld and relayed %lld of them\n",
              r.media_calls, r.media_pps, static_cast<unsigned long long>(r.media.sent),
              static_cast<unsigned long long>(r.media.received),
              static_cast<unsigned long long>(r.media.lost), r.media.calls_with_loss,
              static_cast<unsigned long long>(r.media.send_errors), r.media.seconds,
              static_cast<long long>(r.media.sluiced_received.value_or(0)),
              static_cast<long long>(r.media.sluiced_relayed.value_or(0)));
  for (const std::string& f : l.failures) std::printf("    %s\n", f.c_str());
  for (const std::string& e : r.errors) std::printf("  FAILED: %s\n", e.c_str());
}

json WebRtcPhaseJson(const WebRtcPhaseResult& r) {
  const testing::WebRtcLoadResult& l = r.load;
  return {
      {"calls", l.calls}, {"keyed", l.keyed}, {"failed", l.failed}, {"seconds", l.seconds},
      {"handshakes_per_second", l.handshakes_per_second},
      {"keyed_ms", {{"p50", l.keyed_p50_ms}, {"p99", l.keyed_p99_ms}, {"max", l.keyed_max_ms}}},
      {"browser_keyed_ms", {{"p50", l.browser_keyed_p50_ms}, {"max", l.browser_keyed_max_ms}}},
      {"handshake_thread_cpu_seconds",
       l.handshake_cpu_seconds ? json(*l.handshake_cpu_seconds) : json(nullptr)},
      {"ceiling_per_second", {{"server_side", r.ceiling.server_side_per_second},
                              {"client_side", r.ceiling.client_side_per_second},
                              {"both_sides", r.ceiling.both_sides_per_second},
                              {"handshakes", r.ceiling.handshakes}}},
      {"browsers", {{"check_retransmissions", l.browsers.check_retransmissions},
                    {"dtls_retransmissions", l.browsers.dtls_retransmissions},
                    {"send_errors", l.browsers.send_errors}}},
      {"sluiced", {{"handshake_packets", r.stats.handshake_packets},
                   {"handshake_full", r.stats.handshake_full},
                   {"rx_missed", r.stats.rx_missed},
                   {"dtls_keyed", r.stats.dtls_keyed},
                   {"dtls_failed", r.stats.dtls_failed}}},
      {"media", {{"calls", r.media_calls}, {"pps_per_call", r.media_pps},
                 {"seconds", r.media.seconds}, {"sent", r.media.sent},
                 {"received", r.media.received}, {"lost", r.media.lost},
                 {"calls_with_loss", r.media.calls_with_loss},
                 {"send_errors", r.media.send_errors},
                 {"sluiced_received", r.media.sluiced_received ? json(*r.media.sluiced_received)
                                                                : json(nullptr)},
                 {"sluiced_relayed", r.media.sluiced_relayed ? json(*r.media.sluiced_relayed)
                                                              : json(nullptr)}}},
      {"failures", l.failures}, {"errors", r.errors}};
}

}  // namespace sluice::bench
