// sluiced's /metrics scraped by a real Prometheus (Debian prometheus) during
// a live call: Prometheus, in the relay's namespace, scrapes sluiced on that
// namespace's loopback every second, and its HTTP API's rate() over the
// worker's packet counter must match the rate the phones send at. promtool
// checks a scrape of /metrics. Skipped (with the reason) without them.
// And sluiced's DPDK telemetry commands answer on its telemetry socket.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "harness.h"
#include "telemetry_client.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kMetricsPort = 9464;
constexpr uint16_t kPrometheusPort = 9090;

bool OnPath(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

// One HTTP GET on 127.0.0.1:port of the relay's namespace; the body, or ""
// when the status is not 200.
std::string HttpGet(Topology& topo, const std::string& ns, uint16_t port,
                    const std::string& target) {
  auto fd = topo.Socket(ns, AF_INET, SOCK_STREAM);
  if (!fd.ok()) return "";
  timeval tv = {5, 0};
  setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a = Addr("127.0.0.1", port);
  std::string reply;
  if (connect(*fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req =
        absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    send(*fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[65536];
    for (ssize_t n; (n = recv(*fd, buf, sizeof(buf), 0)) > 0;) reply.append(buf, n);
  }
  close(*fd);
  if (!absl::StartsWith(reply, "HTTP/1.1 200")) return "";
  const size_t body = reply.find("\r\n\r\n");
  return body == std::string::npos ? "" : reply.substr(body + 4);
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"prometheus", "promtool"}) {
      if (!OnPath(tool)) {
        GTEST_SKIP() << "skipped: " << tool << " is not installed (Debian package prometheus)";
      }
    }
    DaemonOptions options;
    options.name = "metrics";
    options.subnet_a = "10.207.1";
    options.subnet_b = "10.207.2";
    options.extra_config = absl::StrCat("[metrics]\nlisten = \"127.0.0.1:", kMetricsPort, "\"\n");
    const std::string skip = daemon_.Start(options);
    if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
    ASSERT_TRUE(control_.Connect(daemon_.socket_path()));
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("sluice-prom-", getpid());
    std::filesystem::create_directories(dir_ + "/data");
  }

  void TearDown() override {
    if (prometheus_ > 0) {
      kill(prometheus_, SIGTERM);
      waitpid(prometheus_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Prometheus in the relay's namespace, scraping sluiced every second;
  // true once it says it is ready.
  bool StartPrometheus() {
    std::ofstream(dir_ + "/prometheus.yml") << absl::StrCat(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: sluiced\n    static_configs:\n"
        "      - targets: ['127.0.0.1:", kMetricsPort, "']\n");
    auto pid = daemon_.topology().Spawn(
        daemon_.relay_ns(),
        {"sh", "-c",
         absl::StrCat("exec prometheus --config.file=", dir_, "/prometheus.yml --storage.tsdb.path=",
                      dir_, "/data --web.listen-address=127.0.0.1:", kPrometheusPort,
                      " > ", dir_, "/prometheus.log 2>&1")});
    if (!pid.ok()) return false;
    prometheus_ = *pid;
    for (int i = 0; i < 300; ++i) {
      if (!HttpGet(daemon_.topology(), daemon_.relay_ns(), kPrometheusPort, "/-/ready").empty()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // The value of an instant query's first series; -1 when there is none.
  double Query(const std::string& promql) {
    const std::string body = HttpGet(daemon_.topology(), daemon_.relay_ns(), kPrometheusPort,
                                     "/api/v1/query?query=" + UrlEncode(promql));
    const json r = json::parse(body, nullptr, false);
    if (r.is_discarded() || r["status"] != "success" || r["data"]["result"].empty()) return -1;
    return std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
  }

  Daemon daemon_;
  ControlClient control_;
  std::string dir_;
  pid_t prometheus_ = -1;
};

TEST_F(MetricsTest, PrometheusSeesTheRelayedPacketRateOfALiveCall) {
  const std::string key_a = FreshKey("AES_CM_128_HMAC_SHA1_80");
  const std::string key_b = FreshKey("AEAD_AES_128_GCM");
  json r = daemon_.Create(control_, "scraped",
                          SrtpLeg("a", "a", "10.207.1.2:40000", key_a, "AES_CM_128_HMAC_SHA1_80"),
                          SrtpLeg("b", "b", "10.207.2.2:40002", key_b, "AEAD_AES_128_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = daemon_.MakePhone(0, "10.207.1.2", 40000, 0xa1);
  Phone b = daemon_.MakePhone(1, "10.207.2.2", 40002, 0xb1);
  a.relay = Addr("10.207.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.207.2.1", LocalPort(r["legs"][1]));
  Arm(a, key_a, r["legs"][0]["tx"]["crypto"]);
  Arm(b, key_b, r["legs"][1]["tx"]["crypto"]);
  ASSERT_TRUE(StartPrometheus()) << "prometheus did not become ready; see " << dir_
                                 << "/prometheus.log";
  // Ready is not scraping: Prometheus hands targets to its scrapers a few
  // seconds after it starts. The call starts once it has scraped sluiced.
  for (int i = 0; i < 150 && Query("count_over_time(up{job=\"sluiced\"}[10s])") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(Query("up{job=\"sluiced\"}"), 1) << "Prometheus does not scrape sluiced";

  // A scrape, as Prometheus gets it, passes promtool's checks.
  const auto scrape_start = Clock::now();
  const std::string scrape =
      HttpGet(daemon_.topology(), daemon_.relay_ns(), kMetricsPort, "/metrics");
  const double scrape_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - scrape_start).count();
  ASSERT_TRUE(absl::StrContains(scrape, "sluice_build_info{version=")) << scrape;
  std::ofstream(dir_ + "/scrape.txt") << scrape;
  const int promtool = std::system(
      ("promtool check metrics < " + dir_ + "/scrape.txt > " + dir_ + "/promtool.txt 2>&1").c_str());
  std::ifstream promtool_out(dir_ + "/promtool.txt");
  const std::string lint((std::istreambuf_iterator<char>(promtool_out)), {});
  EXPECT_EQ(promtool, 0) << lint;
  std::printf("scrape: %zu bytes in %.2f ms\n", scrape.size(), scrape_ms);

  // 200 packets a second each way (one every 5 ms, as a 5 ms ptime would)
  // for 10 s; Prometheus's rate over the last 6 s, asked at 9 s, must be
  // the 400 a second the worker receives and sends.
  std::atomic<uint64_t> sent{0};
  const auto start = Clock::now();
  std::thread sender([&] {
    auto next = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(10)) {
      a.SendNext();
      b.SendNext();
      sent += 2;
      next += std::chrono::milliseconds(5);
      std::this_thread::sleep_until(next);
    }
  });
  std::this_thread::sleep_until(start + std::chrono::seconds(9));
  const double sent_rate = static_cast<double>(sent.load()) /
                           std::chrono::duration<double>(Clock::now() - start).count();
  const double rx_rate = Query("rate(sluice_worker_received_packets_total{worker=\"0\"}[6s])");
  const double tx_rate = Query("rate(sluice_worker_sent_packets_total{worker=\"0\"}[6s])");
  const double scrape_s = Query("scrape_duration_seconds{job=\"sluiced\"}");
  sender.join();
  std::printf("sent %.1f pkt/s; Prometheus saw rx %.1f pkt/s, tx %.1f pkt/s; its scrape took "
              "%.2f ms\n",
              sent_rate, rx_rate, tx_rate, scrape_s * 1000);
  EXPECT_NEAR(rx_rate, sent_rate, sent_rate * 0.15);
  EXPECT_NEAR(tx_rate, sent_rate, sent_rate * 0.15);
  EXPECT_GT(Query("sluice_sessions"), 0.5);
  // The same call through DPDK's telemetry socket: EAL puts it in the
  // runtime directory of sluiced's --file-prefix, --no-shconf or not.
  TelemetryClient telemetry;
  const std::string socket = "/var/run/dpdk/sluice-metrics-test/dpdk_telemetry.v2";
  ASSERT_TRUE(telemetry.Connect(socket)) << "no telemetry socket at " << socket;
  json sessions = telemetry.Call("/sluice/sessions");
  ASSERT_FALSE(sessions.is_discarded()) << "no reply to /sluice/sessions";
  EXPECT_EQ(sessions["/sluice/sessions"]["active"], 1) << sessions.dump();
  EXPECT_EQ(sessions["/sluice/sessions"]["legs"]["sdes/AEAD_AES_128_GCM"], 1) << sessions.dump();
  json workers = telemetry.Call("/sluice/workers");
  ASSERT_TRUE(workers["/sluice/workers"]["0"]["rx_packets"].is_number()) << workers.dump();
  EXPECT_GE(workers["/sluice/workers"]["0"]["rx_packets"].get<uint64_t>(), sent.load() * 9 / 10)
      << workers.dump();
  EXPECT_EQ(Query("sluice_legs{keying=\"sdes\",suite=\"AEAD_AES_128_GCM\"}"), 1);
  control_.Call({{"op", "session.delete"}, {"session", "scraped"}});
}

}  // namespace
}  // namespace sluice::testing
