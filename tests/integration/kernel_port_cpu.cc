// What a relayed packet costs in CPU on each of the two ports a host without
// a DPDK NIC has (net_af_packet, net_af_xdp): 100 SRTP calls through the
// real sluiced on veths in namespaces, the same offered load for each, and
// the CPU time the daemon's threads and the whole machine spent, per packet
// relayed. A measurement, not a test: built, never run by meson test.
//
//   sudo build/tests/kernel_port_cpu [--pps=20000] [--seconds=10] [--calls=100]
//
// The worker polls, so its thread's user time is all the wall time whatever
// the load: its share is its busy cycles (TSC time of the polls that moved
// packets, preemption included, so only a rough figure on a loaded host).
// The rest is CPU time the kernel accounted (/proc/<pid>/task/*/stat): the
// daemon's kernel time (its sends, and its receives where they need a
// system call), its other threads' user time, and the phones' (this
// process's) user and kernel time, which holds the kernel's work on their
// behalf: veth, the copy into the ring or the AF_XDP buffer, the softirqs
// run as they send (a kernel without CONFIG_IRQ_TIME_ACCOUNTING charges
// those to the task they interrupt).
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "harness.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

int Flag(const char* name, int fallback) {
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    const std::string prefix = absl::StrCat("--", name, "=");
    int v = 0;
    if (arg.rfind(prefix, 0) == 0 && absl::SimpleAtoi(arg.substr(prefix.size()), &v)) return v;
  }
  return fallback;
}

// --xdp_args=,busy_budget=0: what is appended to net_af_xdp's --vdev.
std::string XdpArgs() {
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    if (arg.rfind("--xdp_args=", 0) == 0) return arg.substr(11);
  }
  return "";
}

// utime and stime from a /proc stat file, in seconds.
std::pair<double, double> CpuOf(const std::string& stat_path) {
  std::ifstream f(stat_path);
  std::string line((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (line.rfind(')') == std::string::npos) return {0, 0};
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {utime / hz, stime / hz};
}

struct Sample {
  Clock::time_point at;
  double worker_user = 0, worker_sys = 0;  // the polling worker thread
  double others = 0;         // sluiced's other threads: user + kernel
  double phones = 0;         // this process (the phones): user + kernel
  uint64_t busy = 0, idle = 0, relayed = 0;
  uint64_t missed = 0;  // the ports' rx_missed: what their rings lost
};

Sample Take(Daemon& daemon, ControlClient& control) {
  Sample s;
  const json stats = control.Call({{"op", "stats"}});
  for (const json& w : stats["workers"]) {
    s.busy += w["busy_cycles"].get<uint64_t>();
    s.idle += w["idle_cycles"].get<uint64_t>();
    s.relayed += w["tx_packets"].get<uint64_t>();
  }
  for (const json& p : stats["ports"]) s.missed += p["rx_missed"].get<uint64_t>();
  const std::string task_dir = absl::StrCat("/proc/", daemon.pid(), "/task");
  for (const auto& task : std::filesystem::directory_iterator(task_dir)) {
    std::ifstream comm_file(task.path() / "comm");
    std::string comm;
    std::getline(comm_file, comm);
    const auto [user, sys] = CpuOf(task.path() / "stat");
    if (comm.rfind("rte-worker", 0) == 0) {
      s.worker_user += user;
      s.worker_sys += sys;
    } else {
      s.others += user + sys;
    }
  }
  const auto [user, sys] = CpuOf("/proc/self/stat");
  s.phones = user + sys;
  s.at = Clock::now();
  return s;
}

class KernelPortCpu : public ::testing::TestWithParam<const char*> {};

TEST_P(KernelPortCpu, Measure) {
  const std::string pmd = GetParam();
  const int pps = Flag("pps", 20000), seconds = Flag("seconds", 10), calls = Flag("calls", 100);
  Daemon daemon;
  DaemonOptions options;
  options.name = "kpcpu-" + pmd;
  options.pmd = pmd;
  if (pmd == "af_xdp") options.vdev_args = XdpArgs();
  options.subnet_a = "10.233.1";
  options.subnet_b = "10.233.2";
  options.extra_config = "[media]\nport_min = 32000\nport_max = 33999\n";
  if (std::string why = daemon.Start(options); !why.empty()) GTEST_SKIP() << "skipped: " << why;
  ControlClient control;
  ASSERT_TRUE(control.Connect(daemon.socket_path()));
  std::vector<Phone> phones;  // a, b of each call in turn
  for (int c = 0; c < calls; ++c) {
    const std::string ka = FreshKey("AES_CM_128_HMAC_SHA1_80");
    const std::string kb = FreshKey("AES_CM_128_HMAC_SHA1_80");
    const uint16_t port = static_cast<uint16_t>(40000 + 2 * c);
    json r = daemon.Create(
        control, absl::StrCat("c", c),
        SrtpLeg("a", "a", absl::StrCat(daemon.phone_ip(0), ":", port), ka, "AES_CM_128_HMAC_SHA1_80"),
        SrtpLeg("b", "b", absl::StrCat(daemon.phone_ip(1), ":", port), kb, "AES_CM_128_HMAC_SHA1_80"));
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    for (int side = 0; side < 2; ++side) {
      Phone p = daemon.MakePhone(side, daemon.phone_ip(side), port, 0x1000 + 2 * c + side);
      p.relay = Addr(daemon.relay_ip(side), LocalPort(r["legs"][side]));
      Arm(p, side == 0 ? ka : kb, r["legs"][side]["tx"]["crypto"]);
      phones.push_back(std::move(p));
    }
  }
  // What comes back is read and counted, not verified: the phones' cost
  // stays small and the same for either port.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> received{0};
  std::thread drain([&] {
    const int ep = epoll_create1(0);
    for (size_t i = 0; i < phones.size(); ++i) {
      epoll_event e = {EPOLLIN, {.u64 = i}};
      epoll_ctl(ep, EPOLL_CTL_ADD, phones[i].fd, &e);
    }
    char buf[2048];
    epoll_event ev[64];
    while (!stop.load()) {
      const int n = epoll_wait(ep, ev, 64, 50);
      for (int i = 0; i < n; ++i) {
        while (recv(phones[ev[i].data.u64].fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++received;
      }
    }
    close(ep);
  });
  // Every phone sends in turn, paced to `pps` in all.
  const auto period = std::chrono::nanoseconds(1'000'000'000LL / pps);
  auto next = Clock::now();
  uint64_t sent = 0;
  auto run_for = [&](int s) {
    const auto end = Clock::now() + std::chrono::seconds(s);
    for (size_t i = 0; Clock::now() < end; i = (i + 1) % phones.size()) {
      phones[i].SendNext();
      ++sent;
      next += period;
      std::this_thread::sleep_until(next);
    }
  };
  run_for(2);  // warm-up: neighbours resolved, rings and caches warm
  const Sample a = Take(daemon, control);
  const uint64_t received_before = received.load();
  sent = 0;
  run_for(seconds);
  const Sample b = Take(daemon, control);
  const uint64_t got = received.load() - received_before;
  stop = true;
  drain.join();
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  const double tsc_hz = static_cast<double>(b.busy + b.idle - a.busy - a.idle) / wall;
  const double n = static_cast<double>(b.relayed - a.relayed);
  const double us = 1e6 / n;
  const double worker_user = b.worker_user - a.worker_user, worker_sys = b.worker_sys - a.worker_sys;
  // The share of the wall time the worker was on a CPU: its busy polls are
  // taken to be preempted as often as its idle ones.
  const double on_cpu = (worker_user + worker_sys) / wall;
  const double busy = static_cast<double>(b.busy - a.busy) / tsc_hz * on_cpu;
  const double others = b.others - a.others, phones_cpu = b.phones - a.phones;
  std::printf(
      "RESULT pmd=%s%s calls=%d offered_pps=%d sent_pps=%.0f relayed_pps=%.0f missed=%llu received=%.4f "
      "worker_on_cpu=%.2f worker_kernel_us=%.2f worker_busy_us=%.2f daemon_other_threads_us=%.2f "
      "phones_us=%.2f total_us=%.2f\n",
      pmd.c_str(), options.vdev_args.c_str(), calls, pps, static_cast<double>(sent) / wall, n / wall,
      static_cast<unsigned long long>(b.missed - a.missed), static_cast<double>(got) / n,
      on_cpu, worker_sys * us, busy * us, others * us, phones_cpu * us, (busy + others + phones_cpu) * us);
  EXPECT_GT(n, 0);
}

INSTANTIATE_TEST_SUITE_P(Pmd, KernelPortCpu, ::testing::Values("af_packet", "af_xdp"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace sluice::testing
