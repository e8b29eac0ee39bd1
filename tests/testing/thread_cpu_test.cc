// What a benchmark reads of a thread from /proc: its scheduling counters and
// the CPUs it may run on.
#include "thread_cpu.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::testing {
namespace {

bool Holds(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A thread named "pinned-0" that may run on CPU 0 only, until it is stopped.
class PinnedThread {
 public:
  PinnedThread() {
    thread_ = std::thread([this] {
      tid_ = gettid();
      while (!stop_.load()) std::this_thread::yield();
    });
    pthread_setname_np(thread_.native_handle(), "pinned-0");
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    pinned_ = pthread_setaffinity_np(thread_.native_handle(), sizeof cpus, &cpus) == 0;
    // Its CPU may be busy: up to 10 s for it to start.
    for (int i = 0; i < 10000 && tid_.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~PinnedThread() {
    stop_ = true;
    thread_.join();
  }
  bool pinned() const { return pinned_; }
  pid_t tid() const { return tid_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
  bool pinned_ = false;
  std::thread thread_;
};

TEST(ThreadCpuTest, ThreadsAllowedOnACpuAreThoseWhoseAffinityHoldsIt) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
  if (!CPU_ISSET(0, &mine) || !CPU_ISSET(1, &mine)) GTEST_SKIP() << "skipped: needs CPUs 0 and 1";
  PinnedThread t;
  ASSERT_TRUE(t.pinned());
  ASSERT_NE(t.tid(), 0);
  EXPECT_TRUE(Holds(ThreadsAllowedOn(getpid(), 0), "pinned-0"));
  EXPECT_FALSE(Holds(ThreadsAllowedOn(getpid(), 1), "pinned-0"));
  EXPECT_FALSE(Holds(ThreadsAllowedOn(getpid(), 0, t.tid()), "pinned-0"));
}

TEST(ThreadCpuTest, SchedCountersGrowWhileTheThreadRuns) {
  const std::optional<ThreadSched> before = ReadThreadSched(getpid(), gettid());
  ASSERT_TRUE(before.has_value());
  // Work until the kernel has accounted some of it: schedstat's run time
  // moves at a tick or a switch, not while the thread reads it.
  std::optional<ThreadSched> after = before;
  volatile uint64_t sink = 0;
  for (int round = 0; round < 1000 && after && after->run_ns == before->run_ns; ++round) {
    for (uint64_t i = 0; i < 1'000'000; ++i) sink = sink + i;
    sched_yield();
    after = ReadThreadSched(getpid(), gettid());
  }
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(after->run_ns, before->run_ns);
  EXPECT_GE(after->wait_ns, before->wait_ns);
  EXPECT_GE(after->preemptions, before->preemptions);
}

TEST(ThreadCpuTest, AThreadThatIsNotThereHasNoCounters) {
  EXPECT_FALSE(ReadThreadSched(getpid(), 0).has_value());
  EXPECT_TRUE(ThreadsAllowedOn(-1, 0).empty());
}

}  // namespace
}  // namespace sluice::testing
