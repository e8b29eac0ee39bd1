// control::WorkerWatch: a worker online in the flow table that stops
// reporting quiescent states is flagged stalled after stall_ms and logged
// once, and again once when it reports; an offline worker is never stalled.
// The clock is the test's. EAL runs in process without hugepages.
#include "sluice/control/worker_watch.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "eal_environment.h"
#include "log_capture.h"
#include "sluice/session/flow_table.h"

namespace sluice::control {
namespace {

const auto* const kEnv = sluice::testing::AddEalEnvironment("worker_watch_test", 64);

std::unique_ptr<session::FlowTable> MakeTable(uint32_t readers) {
  static int serial = 0;
  auto table = session::FlowTable::Create("worker_watch_test" + std::to_string(serial++), 64,
                                          readers);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : nullptr;
}

TEST(WorkerWatchTest, SilentWorkerIsStalledAfterStallMsAndLoggedOnceEachWay) {
  auto table = MakeTable(2);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);
  table->RegisterReader(1);
  testing::LogCapture capture;
  WorkerWatch watch(*table, 2, 100);
  // Worker 0 reports on every pass; worker 1 never does.
  for (uint64_t now = 0; now <= 99; now += 5) {
    watch.Poll(now);
    table->Quiescent(0);
  }
  EXPECT_FALSE(watch.worker(1).stalled) << "not yet stall_ms";
  for (uint64_t now = 100; now <= 300; now += 5) {
    watch.Poll(now);
    table->Quiescent(0);
  }
  EXPECT_TRUE(watch.worker(0).online);
  EXPECT_FALSE(watch.worker(0).stalled);
  EXPECT_GE(watch.worker(0).last_seen_ms, 300u - 25u - 5u) << "seen at most a probe ago";
  EXPECT_TRUE(watch.worker(1).online);
  EXPECT_TRUE(watch.worker(1).stalled);
  EXPECT_EQ(watch.worker(1).last_seen_ms, 0u);
  std::vector<std::string> log = capture.lines();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("level=error event=worker.stalled worker=1 "), std::string::npos) << log[0];

  table->Quiescent(1);
  watch.Poll(305);
  EXPECT_FALSE(watch.worker(1).stalled);
  EXPECT_EQ(watch.worker(1).last_seen_ms, 305u);
  log = capture.lines();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[1].find("event=worker.recovered worker=1 how=\"quiescent again\""), std::string::npos)
      << log[1];
  table->UnregisterReader(0);
  table->UnregisterReader(1);
}

TEST(WorkerWatchTest, OfflineWorkerIsNeverStalled) {
  auto table = MakeTable(2);
  ASSERT_NE(table, nullptr);
  table->RegisterReader(0);  // worker 1 never starts
  WorkerWatch watch(*table, 2, 50);
  for (uint64_t now = 0; now <= 500; now += 10) {
    watch.Poll(now);
    table->Quiescent(0);
  }
  EXPECT_FALSE(watch.worker(1).online);
  EXPECT_FALSE(watch.worker(1).stalled);
  EXPECT_FALSE(watch.worker(0).stalled);
  // A worker that stops leaves the table: not stalled, however long.
  table->UnregisterReader(0);
  for (uint64_t now = 510; now <= 1000; now += 10) watch.Poll(now);
  EXPECT_FALSE(watch.worker(0).online);
  EXPECT_FALSE(watch.worker(0).stalled);
}

}  // namespace
}  // namespace sluice::control
