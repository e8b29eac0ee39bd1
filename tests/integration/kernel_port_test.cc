// sluiced on the two ports a host without a DPDK NIC has, each bound to a
// veth end in a namespace of its own: net_af_packet and net_af_xdp. An SRTP
// call through each, verified by libsrtp2 phones; and what the kernel's
// receive ring loses while the daemon is stopped shows in the port's
// rx_missed, as a NIC's full RX ring does.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

// The frames of the overflow test, and each port's ring: four times as many
// as the ring holds, so most are lost however the kernel buffers the rest.
constexpr int kRing = 512;
constexpr int kFlood = 4 * kRing;

// Why this kernel cannot run net_af_xdp, or "".
std::string XdpUnsupported() {
  const int fd = socket(AF_XDP, SOCK_RAW, 0);
  if (fd < 0) return "the kernel refuses AF_XDP sockets (CONFIG_XDP_SOCKETS)";
  close(fd);
  return "";
}

// Every thread of `pid` has stopped (state T), within two seconds: a
// polling worker takes the stop only when it next enters the kernel.
bool AllThreadsStopped(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    bool all = true;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream f(task.path() / "stat");
      std::string line((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const size_t paren = line.rfind(')');
      if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'T') {
        all = false;
      }
    }
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class KernelPortTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string pmd = GetParam();
    if (pmd == "af_xdp") {
      if (std::string why = XdpUnsupported(); !why.empty()) GTEST_SKIP() << "skipped: " << why;
    }
    DaemonOptions options;
    options.name = "kport-" + pmd;
    options.pmd = pmd;
    options.rx_ring = kRing;
    options.subnet_a = pmd == "af_xdp" ? "10.232.1" : "10.231.1";
    options.subnet_b = pmd == "af_xdp" ? "10.232.2" : "10.231.2";
    options.ns_suffix = pmd == "af_xdp" ? "x" : "p";
    options.extra_config = "[media]\nport_min = 31000\nport_max = 31999\n";
    if (std::string why = daemon_.Start(options); !why.empty()) GTEST_SKIP() << "skipped: " << why;
    ASSERT_TRUE(daemon_.running()) << "sluiced is not running";
    ASSERT_TRUE(control_.Connect(daemon_.socket_path()));
  }

  // An SRTP session between a phone on each side, armed with its keys.
  void StartCall(Phone& a, Phone& b) {
    const std::string key_a = FreshKey("AES_CM_128_HMAC_SHA1_80");
    const std::string key_b = FreshKey("AEAD_AES_128_GCM");
    const std::string remote_a = daemon_.phone_ip(0) + ":40000";
    const std::string remote_b = daemon_.phone_ip(1) + ":40002";
    json r = daemon_.Create(control_, "call",
                            SrtpLeg("a", "a", remote_a, key_a, "AES_CM_128_HMAC_SHA1_80"),
                            SrtpLeg("b", "b", remote_b, key_b, "AEAD_AES_128_GCM"));
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    a = daemon_.MakePhone(0, daemon_.phone_ip(0), 40000, 0xa1);
    b = daemon_.MakePhone(1, daemon_.phone_ip(1), 40002, 0xb1);
    a.relay = Addr(daemon_.relay_ip(0), LocalPort(r["legs"][0]));
    b.relay = Addr(daemon_.relay_ip(1), LocalPort(r["legs"][1]));
    Arm(a, key_a, r["legs"][0]["tx"]["crypto"]);
    Arm(b, key_b, r["legs"][1]["tx"]["crypto"]);
  }

  json Port(int side) { return control_.Call({{"op", "stats"}})["ports"][side]; }

  Daemon daemon_;
  ControlClient control_;
};

TEST_P(KernelPortTest, SrtpCallRelaysEveryPacket) {
  Phone a, b;
  ASSERT_NO_FATAL_FAILURE(StartCall(a, b));
  EXPECT_TRUE(Flows(a, b, 200));
  json g = control_.Call({{"op", "session.get"}, {"session", "call"}});
  EXPECT_EQ(g["legs"][0]["counters"]["rx_packets"], 200) << g.dump();
  EXPECT_EQ(g["legs"][1]["counters"]["rx_packets"], 200) << g.dump();
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 0) << g.dump();
  EXPECT_EQ(g["legs"][1]["counters"]["auth_failures"], 0) << g.dump();
  EXPECT_EQ(Port(0)["rx_missed"], 0) << Port(0).dump();
}

// While sluiced is stopped nothing drains the ring; what does not fit is
// the kernel's loss, and must be counted: every frame that reached the
// port is either received or missed.
TEST_P(KernelPortTest, RingOverflowCountsAsMissed) {
  Phone a, b;
  ASSERT_NO_FATAL_FAILURE(StartCall(a, b));
  ASSERT_TRUE(Flows(a, b, 20));  // the phone's ARP entry for the relay is in
  const json before = Port(0);
  ASSERT_EQ(kill(daemon_.pid(), SIGSTOP), 0);
  ASSERT_TRUE(AllThreadsStopped(daemon_.pid())) << "sluiced did not stop on SIGSTOP";
  // Paced, so the veth's own queue never overflows before the ring does.
  for (int i = 0; i < kFlood; ++i) {
    a.SendNext();
    if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(kill(daemon_.pid(), SIGCONT), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const json after = Port(0);
  const uint64_t received = after["rx_packets"].get<uint64_t>() - before["rx_packets"].get<uint64_t>();
  const uint64_t missed = after["rx_missed"].get<uint64_t>() - before["rx_missed"].get<uint64_t>();
  std::printf("%s: sent %d, received %llu, missed %llu\n", GetParam(), kFlood,
              static_cast<unsigned long long>(received), static_cast<unsigned long long>(missed));
  EXPECT_GE(missed, static_cast<uint64_t>(kFlood - 2 * kRing)) << after.dump();
  // Frames the test did not send (ARP, IPv6 neighbour discovery) may add a few.
  EXPECT_GE(received + missed, static_cast<uint64_t>(kFlood)) << after.dump();
  EXPECT_LE(received + missed, static_cast<uint64_t>(kFlood + 16)) << after.dump();
  // The port goes on relaying once the worker runs again (after what of the
  // flood it relayed has been read).
  b.Receive(300);
  EXPECT_TRUE(Flows(a, b, 20));
}

INSTANTIATE_TEST_SUITE_P(Pmd, KernelPortTest, ::testing::Values("af_packet", "af_xdp"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace sluice::testing
