#include "sluice/metrics/sluice_metrics.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/metrics/exposition.h"

namespace sluice::metrics {
namespace {

using control::PortStats;
using control::Stats;
using control::WorkerStats;

constexpr std::string_view kCounter = "counter";
constexpr std::string_view kGauge = "gauge";

// A worker counter, one sample a worker.
template <typename Get>
void PerWorker(Exposition& out, const Stats& stats, std::string_view name, std::string_view help,
               Get get) {
  out.Family(name, kCounter, help);
  for (const WorkerStats& w : stats.workers) {
    const std::string id = absl::StrCat(w.id);
    out.Sample(name, {{"worker", id}}, get(w));
  }
}

uint64_t DropsOf(const WorkerStats& w, std::string_view reason) {
  for (const auto& [r, n] : w.drops) {
    if (r == reason) return n;
  }
  return 0;
}

void WriteWorkers(Exposition& out, const Stats& stats, uint64_t tsc_hz) {
  const double hz = tsc_hz > 0 ? static_cast<double>(tsc_hz) : 1.0;
  PerWorker(out, stats, "sluice_worker_received_packets_total",
            "Packets a worker received (its RX queues and hand-offs).",
            [](const WorkerStats& w) { return w.rx_packets; });
  PerWorker(out, stats, "sluice_worker_sent_packets_total", "Packets a worker sent.",
            [](const WorkerStats& w) { return w.tx_packets; });
  PerWorker(out, stats, "sluice_worker_received_bytes_total",
            "Bytes of whole frames a worker received.",
            [](const WorkerStats& w) { return w.rx_bytes; });
  PerWorker(out, stats, "sluice_worker_sent_bytes_total", "Bytes of whole frames a worker sent.",
            [](const WorkerStats& w) { return w.tx_bytes; });
  PerWorker(out, stats, "sluice_worker_handshake_packets_total",
            "STUN and DTLS packets a worker gave to the handshake thread.",
            [](const WorkerStats& w) { return w.handshake_packets; });
  PerWorker(out, stats, "sluice_worker_neighbor_held_total",
            "Packets a worker gave to the slow path to wait for their next hop's MAC.",
            [](const WorkerStats& w) { return w.neighbor_held; });
  PerWorker(out, stats, "sluice_worker_busy_seconds_total",
            "Time a worker spent on polls that found work; with idle, its busy share.",
            [hz](const WorkerStats& w) { return static_cast<double>(w.busy_cycles) / hz; });
  PerWorker(out, stats, "sluice_worker_idle_seconds_total",
            "Time a worker spent on polls that found nothing.",
            [hz](const WorkerStats& w) { return static_cast<double>(w.idle_cycles) / hz; });
  out.Family("sluice_worker_stalled", kGauge,
             "1 while a worker has not reported quiescence within [workers] stall_ms.");
  for (const WorkerStats& w : stats.workers) {
    out.Sample("sluice_worker_stalled", {{"worker", absl::StrCat(w.id)}},
               uint64_t{w.stalled ? 1u : 0u});
  }
  out.Family("sluice_worker_drops_total", kCounter,
             "Packets a worker dropped, by reason (docs/metrics.md lists the reasons).");
  for (const WorkerStats& w : stats.workers) {
    const std::string id = absl::StrCat(w.id);
    for (const auto& [reason, n] : w.drops) {
      out.Sample("sluice_worker_drops_total", {{"worker", id}, {"reason", reason}}, n);
    }
  }
}

// The SRTP events operators alert on, from the workers' drop reasons.
void WriteSrtp(Exposition& out, const Stats& stats) {
  PerWorker(out, stats, "sluice_srtp_auth_failures_total",
            "SRTP/SRTCP packets whose authentication tag did not verify.",
            [](const WorkerStats& w) { return DropsOf(w, "auth_failed"); });
  PerWorker(out, stats, "sluice_srtp_replays_total",
            "SRTP/SRTCP packets refused by the replay window (replayed or too old).",
            [](const WorkerStats& w) { return DropsOf(w, "replayed") + DropsOf(w, "too_old"); });
  PerWorker(out, stats, "sluice_srtp_key_exhausted_total",
            "Packets dropped because their master key reached its lifetime.",
            [](const WorkerStats& w) { return DropsOf(w, "lifetime_exhausted"); });
  out.Family("sluice_srtp_keys_near_limit", kGauge,
             "Leg directions whose key is past [media] key_limit_warn_percent of its lifetime.");
  out.Sample("sluice_srtp_keys_near_limit", {}, stats.keys_near_limit);
  out.Family("sluice_key_reuse_refusals_total", kCounter,
             "Keys refused because they repeat a master key (key_reuse errors).");
  out.Sample("sluice_key_reuse_refusals_total", {}, stats.key_reuse_refusals);
}

template <typename Get>
void PerPort(Exposition& out, const Stats& stats, std::string_view name, std::string_view help,
             Get get) {
  out.Family(name, kCounter, help);
  for (const PortStats& p : stats.ports) out.Sample(name, {{"interface", p.interface}}, get(p));
}

void WritePorts(Exposition& out, const Stats& stats) {
  PerPort(out, stats, "sluice_nic_received_packets_total", "Packets the port received.",
          [](const PortStats& p) { return p.rx_packets; });
  PerPort(out, stats, "sluice_nic_received_bytes_total", "Bytes the port received.",
          [](const PortStats& p) { return p.rx_bytes; });
  PerPort(out, stats, "sluice_nic_sent_packets_total", "Packets the port sent.",
          [](const PortStats& p) { return p.tx_packets; });
  PerPort(out, stats, "sluice_nic_sent_bytes_total", "Bytes the port sent.",
          [](const PortStats& p) { return p.tx_bytes; });
  PerPort(out, stats, "sluice_nic_missed_packets_total",
          "Packets the NIC dropped for want of room in an RX ring (imissed).",
          [](const PortStats& p) { return p.rx_missed; });
  PerPort(out, stats, "sluice_nic_no_mbuf_total",
          "Packets the NIC could not receive for want of a packet buffer (rx_nombuf).",
          [](const PortStats& p) { return p.rx_no_mbuf; });
  PerPort(out, stats, "sluice_nic_receive_errors_total", "Bad frames the NIC dropped (ierrors).",
          [](const PortStats& p) { return p.rx_errors; });
  PerPort(out, stats, "sluice_nic_send_errors_total", "Frames the NIC failed to send (oerrors).",
          [](const PortStats& p) { return p.tx_errors; });
  out.Family("sluice_neighbor_hold_waiting", kGauge,
             "Frames waiting in the slow path for their next hop's MAC.");
  out.Sample("sluice_neighbor_hold_waiting", {}, stats.neighbor_hold.waiting);
  out.Family("sluice_neighbor_hold_sent_total", kCounter,
             "Frames that waited for their next hop and were sent once it answered.");
  out.Sample("sluice_neighbor_hold_sent_total", {}, stats.neighbor_hold.sent);
  out.Family("sluice_neighbor_hold_dropped_total", kCounter,
             "Frames dropped unsent: their next hop did not answer within 3 s, or the wait "
             "was full.");
  out.Sample("sluice_neighbor_hold_dropped_total", {}, stats.neighbor_hold.dropped);
  out.Family("sluice_nic_xstats_total", kCounter,
             "The driver's extended counters (rte_eth_xstats), by the driver's names.");
  for (const PortStats& p : stats.ports) {
    for (const auto& [name, value] : p.xstats) {
      out.Sample("sluice_nic_xstats_total", {{"interface", p.interface}, {"stat", name}}, value);
    }
  }
}

void WriteSessions(Exposition& out, const Stats& stats) {
  out.Family("sluice_sessions", kGauge, "Sessions (calls) relayed now.");
  out.Sample("sluice_sessions", {}, stats.sessions);
  out.Family("sluice_sessions_reclaiming", kGauge,
             "Deleted sessions whose memory waits for the workers' grace period.");
  out.Sample("sluice_sessions_reclaiming", {}, stats.sessions_reclaiming);
  out.Family("sluice_sessions_created_total", kCounter, "Sessions created, by any front end.");
  out.Sample("sluice_sessions_created_total", {}, stats.sessions_created);
  out.Family("sluice_sessions_deleted_total", kCounter,
             "Sessions deleted, by a request or a timeout.");
  out.Sample("sluice_sessions_deleted_total", {}, stats.sessions_deleted);
  out.Family("sluice_sessions_timed_out_total", kCounter,
             "Sessions deleted by a [media] timeout, by which.");
  out.Sample("sluice_sessions_timed_out_total", {{"reason", "timeout"}}, stats.timed_out.timeout);
  out.Sample("sluice_sessions_timed_out_total", {{"reason", "silent_timeout"}},
             stats.timed_out.silent_timeout);
  out.Sample("sluice_sessions_timed_out_total", {{"reason", "final_timeout"}},
             stats.timed_out.final_timeout);
  out.Family("sluice_sessions_by_encryption", kGauge,
             "Sessions by their weaker leg: encrypted, unauthenticated (NULL_AUTH) or plain.");
  for (const auto& [level, n] : stats.sessions_by_encryption) {
    out.Sample("sluice_sessions_by_encryption", {{"encryption", level}}, n);
  }
  out.Family("sluice_encryption_refusals_total", kCounter,
             "Creates and updates refused by [media] require_encryption.");
  out.Sample("sluice_encryption_refusals_total", {}, stats.encryption_refusals);
  out.Family("sluice_legs", kGauge,
             "Live legs by how they are keyed (plain, sdes, dtls) and the suite they receive with.");
  for (const control::LegCount& l : stats.legs) {
    out.Sample("sluice_legs", {{"keying", l.keying}, {"suite", l.suite}}, l.legs);
  }
}

void WriteHandshakesAndMemory(Exposition& out, const Stats& stats) {
  out.Family("sluice_dtls_handshakes_total", kCounter,
             "DTLS-SRTP handshakes that installed keys (first keys and re-keys).");
  out.Sample("sluice_dtls_handshakes_total", {}, stats.webrtc.dtls_keyed);
  out.Family("sluice_dtls_handshake_failures_total", kCounter,
             "DTLS-SRTP handshakes that gave no keys.");
  out.Sample("sluice_dtls_handshake_failures_total", {}, stats.webrtc.dtls_failed);
  out.Family("sluice_ice_selected_total", kCounter, "Peers chosen by ICE checks.");
  out.Sample("sluice_ice_selected_total", {}, stats.webrtc.ice_selected);
  out.Family("sluice_ice_consent_lost_total", kCounter,
             "Legs whose media stopped for want of ICE consent (RFC 7675).");
  out.Sample("sluice_ice_consent_lost_total", {}, stats.webrtc.ice_consent_lost);
  if (!stats.memory) return;
  out.Family("sluice_hot_arena_bytes", kGauge,
             "Bytes of session state (SRTP contexts, flows) in the hot arena's live blocks.");
  out.Sample("sluice_hot_arena_bytes", {}, stats.memory->session_state_bytes);
  out.Family("sluice_hot_arena_mapped_bytes", kGauge,
             "Bytes the hot arena has mapped (2 MiB regions).");
  out.Sample("sluice_hot_arena_mapped_bytes", {}, stats.memory->mapped_bytes);
}

void WriteControl(Exposition& out, const std::vector<FrontEndMetrics>& front_ends) {
  out.Family("sluice_control_requests_total", kCounter,
             "Control requests handled, by protocol (native, tls, ng).");
  for (const FrontEndMetrics& f : front_ends) {
    out.Sample("sluice_control_requests_total", {{"protocol", f.protocol}}, f.requests);
  }
  out.Family("sluice_control_errors_total", kCounter,
             "Control requests answered with an error, by protocol.");
  for (const FrontEndMetrics& f : front_ends) {
    out.Sample("sluice_control_errors_total", {{"protocol", f.protocol}}, f.errors);
  }
  out.Family("sluice_control_request_duration_seconds", "histogram",
             "Time to handle a control request, by protocol.");
  for (const FrontEndMetrics& f : front_ends) {
    if (f.latency == nullptr) continue;
    out.Histogram("sluice_control_request_duration_seconds", {{"protocol", f.protocol}},
                  f.latency->Value());
  }
}

void WriteEndpoint(Exposition& out, const HttpCounters& http) {
  out.Family("sluice_metrics_scrapes_total", kCounter, "Scrapes of /metrics served.");
  out.Sample("sluice_metrics_scrapes_total", {}, http.scrapes);
  out.Family("sluice_metrics_rejected_requests_total", kCounter,
             "Requests to the metrics endpoint refused, by why.");
  out.Sample("sluice_metrics_rejected_requests_total", {{"reason", "bad_request"}},
             http.bad_requests);
  out.Sample("sluice_metrics_rejected_requests_total", {{"reason", "not_found"}}, http.not_found);
  out.Sample("sluice_metrics_rejected_requests_total", {{"reason", "bad_method"}},
             http.bad_method);
  out.Sample("sluice_metrics_rejected_requests_total", {{"reason", "timeout"}}, http.timeouts);
  out.Sample("sluice_metrics_rejected_requests_total", {{"reason", "connection_limit"}},
             http.refused);
  out.Family("sluice_metrics_render_seconds", kGauge,
             "How long the previous scrape's body took to render.");
  out.Sample("sluice_metrics_render_seconds", {}, http.last_render_seconds);
}

}  // namespace

std::string RenderSluiceMetrics(const SluiceMetricsInput& input) {
  Exposition out;
  out.Family("sluice_build_info", kGauge, "Always 1; the version of sluiced in its label.");
  out.Sample("sluice_build_info", {{"version", input.version}}, uint64_t{1});
  if (input.stats != nullptr) {
    WriteWorkers(out, *input.stats, input.tsc_hz);
    WriteSrtp(out, *input.stats);
    WritePorts(out, *input.stats);
    WriteSessions(out, *input.stats);
    WriteHandshakesAndMemory(out, *input.stats);
  }
  WriteControl(out, input.front_ends);
  if (input.http != nullptr) WriteEndpoint(out, *input.http);
  return out.Take();
}

}  // namespace sluice::metrics
