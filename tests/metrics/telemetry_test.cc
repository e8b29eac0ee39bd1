#include "sluice/metrics/telemetry.h"

#include <rte_eal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "eal_environment.h"
#include "telemetry_client.h"

namespace sluice::metrics {
namespace {

const auto* const kEnv = testing::AddEalEnvironment("telemetry_test", 64);

using json = nlohmann::json;

using testing::TelemetryClient;

// DPDK puts the socket in its runtime directory (also with --no-shconf).
std::string SocketPath() { return std::string(rte_eal_get_runtime_dir()) + "/dpdk_telemetry.v2"; }

control::Stats SampleStats() {
  control::Stats s;
  s.sessions = 2;
  s.sessions_created = 5;
  s.sessions_deleted = 3;
  s.legs = {{"sdes", "AEAD_AES_128_GCM", 4}};
  s.drops = {{"auth_failed", 7}};
  control::WorkerStats w;
  w.id = 0;
  w.lcore = 1;
  w.rx_packets = 100;
  w.tx_bytes = 12345;
  w.drops = {{"auth_failed", 7}};
  s.workers.push_back(w);
  control::PortStats p;
  p.interface = "core";
  p.rx_missed = 9;
  s.ports.push_back(p);
  return s;
}

// The control loop: Serve until told to stop.
class ControlLoop {
 public:
  explicit ControlLoop(Telemetry& t)
      : thread_([this, &t] {
          while (!stop_) {
            t.Serve();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~ControlLoop() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(TelemetryTest, CommandsAreListedBesideEthdevAndAnswerFromTheControlThread) {
  std::atomic<int> snapshots{0};
  auto t = Telemetry::Start([&] {
    ++snapshots;
    return SampleStats();
  });
  ASSERT_TRUE(t.ok()) << t.status();
  ControlLoop loop(**t);
  TelemetryClient client;
  ASSERT_TRUE(client.Connect(SocketPath())) << "no telemetry socket at " << SocketPath();

  json list = client.Call("/");
  ASSERT_TRUE(list.contains("/")) << list.dump();
  const std::string commands = list["/"].dump();
  for (const char* c : {"/sluice/stats", "/sluice/workers", "/sluice/sessions", "/ethdev/list"}) {
    EXPECT_NE(commands.find(c), std::string::npos) << c << " not in " << commands;
  }

  json stats = client.Call("/sluice/stats");
  EXPECT_EQ(stats["/sluice/stats"]["sessions"], 2) << stats.dump();
  EXPECT_EQ(stats["/sluice/stats"]["sessions_created"], 5) << stats.dump();
  EXPECT_EQ(stats["/sluice/stats"]["rx_packets"], 100) << stats.dump();
  EXPECT_EQ(stats["/sluice/stats"]["drops"]["auth_failed"], 7) << stats.dump();
  EXPECT_EQ(stats["/sluice/stats"]["rx_missed"]["core"], 9) << stats.dump();

  json workers = client.Call("/sluice/workers");
  EXPECT_EQ(workers["/sluice/workers"]["0"]["tx_bytes"], 12345) << workers.dump();
  EXPECT_EQ(workers["/sluice/workers"]["0"]["drops"], 7) << workers.dump();

  json sessions = client.Call("/sluice/sessions");
  EXPECT_EQ(sessions["/sluice/sessions"]["active"], 2) << sessions.dump();
  EXPECT_EQ(sessions["/sluice/sessions"]["legs"]["sdes/AEAD_AES_128_GCM"], 4) << sessions.dump();
  // Each command's figures were taken on the control thread for it.
  EXPECT_GE(snapshots.load(), 3);
}

TEST(TelemetryTest, WithoutTheControlLoopACommandAnswersAfterItsWaitAndAfterStopAnError) {
  auto t = Telemetry::Start([] { return SampleStats(); });
  ASSERT_TRUE(t.ok()) << t.status();
  TelemetryClient client;
  ASSERT_TRUE(client.Connect(SocketPath()));
  const auto start = std::chrono::steady_clock::now();
  const json stale = client.Call("/sluice/sessions");
  EXPECT_GE(std::chrono::steady_clock::now() - start, Telemetry::kWait);
  EXPECT_TRUE(stale.contains("/sluice/sessions")) << stale.dump();
  t->reset();
  json gone = client.Call("/sluice/stats");
  EXPECT_TRUE(gone["/sluice/stats"].is_null()) << gone.dump();
}

}  // namespace
}  // namespace sluice::metrics
