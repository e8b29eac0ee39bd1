#include "sluice/metrics/sluice_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace sluice::metrics {
namespace {

// Stats with every part filled in, as a daemon with traffic has them.
control::Stats FullStats() {
  control::Stats s;
  s.sessions = 3;
  s.sessions_created = 10;
  s.sessions_deleted = 7;
  s.key_reuse_refusals = 1;
  s.legs = {{"sdes", "AES_CM_128_HMAC_SHA1_80", 4}, {"plain", "plain", 2}};
  s.sessions_by_encryption = {{"plain", 1}, {"unauthenticated", 0}, {"encrypted", 2}};
  s.encryption_refusals = 3;
  s.keys_near_limit = 2;
  s.timed_out.silent_timeout = 5;
  s.webrtc.dtls_keyed = 4;
  s.webrtc.dtls_failed = 1;
  s.memory = control::MemoryStats{8192, 2, 2 << 20};
  control::PortStats p;
  p.interface = "core";
  p.rx_packets = 100;
  p.rx_missed = 3;
  p.xstats = {{"rx_good_packets", 100}};
  s.ports.push_back(p);
  control::WorkerStats w;
  w.id = 1;
  w.rx_packets = 90;
  w.tx_packets = 80;
  w.rx_bytes = 9000;
  w.busy_cycles = 1000;
  w.idle_cycles = 3000;
  w.drops = {{"auth_failed", 4}, {"replayed", 2}, {"too_old", 1}, {"lifetime_exhausted", 6}};
  s.workers.push_back(w);
  return s;
}

std::string RenderFull(const Histogram& latency, const HttpCounters& http) {
  const control::Stats stats = FullStats();
  SluiceMetricsInput input;
  input.version = "1.2.3";
  input.stats = &stats;
  input.tsc_hz = 1000;
  input.front_ends = {{"native", 5, 1, &latency}, {"ng", 2, 0, &latency}};
  input.http = &http;
  return RenderSluiceMetrics(input);
}

// The metric families of an exposition: name -> type.
std::map<std::string, std::string> Families(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line.substr(7), ' ');
    out[parts[0]] = parts[1];
  }
  return out;
}

TEST(SluiceMetricsTest, EveryFamilyFollowsPrometheusConventions) {
  Histogram latency;
  latency.Observe(0.001);
  const std::string text = RenderFull(latency, HttpCounters{});
  const auto families = Families(text);
  ASSERT_GT(families.size(), 30u);
  for (const auto& [name, type] : families) {
    EXPECT_TRUE(absl::StartsWith(name, "sluice_")) << name;
    EXPECT_EQ(absl::EndsWith(name, "_total"), type == "counter") << name << " " << type;
    EXPECT_TRUE(absl::StrContains(text, "# HELP " + name + " ")) << name;
  }
  // Never a session's name or an address as a label.
  for (const char* label : {"session", "call", "address", "ip", "peer"}) {
    EXPECT_FALSE(absl::StrContains(text, std::string("{") + label + "=")) << label;
    EXPECT_FALSE(absl::StrContains(text, std::string(",") + label + "=")) << label;
  }
}

TEST(SluiceMetricsTest, ExportsTheStatsUnderTheirNames) {
  Histogram latency;
  latency.Observe(0.001);
  HttpCounters http;
  http.scrapes = 9;
  const std::string text = RenderFull(latency, http);
  for (const char* line : {
           "sluice_build_info{version=\"1.2.3\"} 1\n",
           "sluice_worker_received_packets_total{worker=\"1\"} 90\n",
           "sluice_worker_received_bytes_total{worker=\"1\"} 9000\n",
           "sluice_worker_busy_seconds_total{worker=\"1\"} 1\n",
           "sluice_worker_idle_seconds_total{worker=\"1\"} 3\n",
           "sluice_worker_drops_total{worker=\"1\",reason=\"auth_failed\"} 4\n",
           "sluice_srtp_auth_failures_total{worker=\"1\"} 4\n",
           "sluice_srtp_replays_total{worker=\"1\"} 3\n",
           "sluice_srtp_key_exhausted_total{worker=\"1\"} 6\n",
           "sluice_key_reuse_refusals_total 1\n",
           "sluice_nic_missed_packets_total{interface=\"core\"} 3\n",
           "sluice_nic_xstats_total{interface=\"core\",stat=\"rx_good_packets\"} 100\n",
           "sluice_sessions 3\n",
           "sluice_sessions_created_total 10\n",
           "sluice_sessions_deleted_total 7\n",
           "sluice_sessions_timed_out_total{reason=\"silent_timeout\"} 5\n",
           "sluice_legs{keying=\"sdes\",suite=\"AES_CM_128_HMAC_SHA1_80\"} 4\n",
           "sluice_dtls_handshakes_total 4\n",
           "sluice_sessions_by_encryption{encryption=\"plain\"} 1\n",
           "sluice_encryption_refusals_total 3\n",
           "sluice_dtls_handshake_failures_total 1\n",
           "sluice_hot_arena_bytes 8192\n",
           "sluice_control_requests_total{protocol=\"native\"} 5\n",
           "sluice_control_errors_total{protocol=\"native\"} 1\n",
           "sluice_control_request_duration_seconds_bucket{protocol=\"ng\",le=\"+Inf\"} 1\n",
           "sluice_control_request_duration_seconds_count{protocol=\"native\"} 1\n",
           "sluice_metrics_scrapes_total 9\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << "missing: " << line;
  }
}

// The names a PromQL expression refers to: identifiers that start with
// sluice_ (functions, labels and keywords do not).
std::set<std::string> NamesIn(const std::string& expr) {
  std::set<std::string> out;
  static const std::regex kName("sluice_[a-zA-Z0-9_:]*");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName);
       it != std::sregex_iterator(); ++it) {
    out.insert(it->str());
  }
  return out;
}

// Every series name the exporter writes (histograms: _bucket, _sum, _count).
std::set<std::string> ExportedSeries(const std::string& text) {
  std::set<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    out.insert(std::string(line.substr(0, line.find_first_of("{ "))));
  }
  return out;
}

TEST(GrafanaDashboardTest, ValidJsonReferringOnlyToExportedMetrics) {
  std::ifstream in(SLUICE_DASHBOARD);
  ASSERT_TRUE(in) << SLUICE_DASHBOARD;
  std::stringstream buf;
  buf << in.rdbuf();
  const nlohmann::json dashboard = nlohmann::json::parse(buf.str(), nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << "not valid JSON";
  Histogram latency;
  latency.Observe(0.001);
  const std::set<std::string> exported = ExportedSeries(RenderFull(latency, HttpCounters{}));
  ASSERT_TRUE(dashboard.contains("panels"));
  size_t exprs = 0;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      const std::string expr = target.value("expr", "");
      const std::set<std::string> names = NamesIn(expr);
      EXPECT_FALSE(names.empty()) << panel.value("title", "") << ": " << expr;
      for (const std::string& name : names) {
        EXPECT_TRUE(exported.count(name)) << panel.value("title", "") << " refers to " << name
                                          << ", which sluiced does not export";
      }
      ++exprs;
    }
  }
  EXPECT_GE(exprs, 6u);
}

}  // namespace
}  // namespace sluice::metrics
