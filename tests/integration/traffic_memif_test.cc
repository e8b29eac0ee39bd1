// The real sluiced fed over net_memif by `sluice-bench traffic`: a hundred
// SRTP calls at a modest rate, every packet counted per call and a sample
// authenticated with libsrtp2; with every call re-keyed mid-run; and with
// damaged packets, which the checks must catch.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

using json = nlohmann::json;

struct Outcome {
  int exit_code = -1;
  json report;  // discarded when the output was not JSON
  std::string output;
};

// build*/tests/<test> -> build*/bench/sluice-bench
std::string BenchPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "bench" /
          "sluice-bench")
      .string();
}

Outcome RunTraffic(const std::string& args) {
  Outcome o;
  const std::string command = BenchPath() + " traffic --calls 100 --rate 20000 --json " + args +
                              " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.output.append(buf, n);
  const int status = pclose(p);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // EAL's notices come before the JSON object.
  const size_t open = o.output.find("\n{");
  o.report = json::parse(open == std::string::npos ? o.output : o.output.substr(open + 1),
                         nullptr, false);
  return o;
}

class TrafficMemifTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "skipped: sluiced and EAL run as root in this suite";
    if (access(BenchPath().c_str(), X_OK) != 0) GTEST_SKIP() << "skipped: no " << BenchPath();
  }
};

// Every packet sent to leg a comes out of leg b, intact and correctly keyed.
void ExpectClean(const Outcome& o) {
  ASSERT_FALSE(o.report.is_discarded()) << o.output;
  ASSERT_EQ(o.report["runs"].size(), 1u) << o.output;
  const json& r = o.report["runs"][0];
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_GT(r["sent"].get<uint64_t>(), 30000u) << o.output;
  EXPECT_EQ(r["received"], r["sent"]) << o.output;
  EXPECT_EQ(r["lost"], 0) << o.output;
  EXPECT_EQ(r["duplicated"], 0) << o.output;
  EXPECT_EQ(r["unexpected"], 0) << o.output;
  EXPECT_GT(r["auth_checked"].get<uint64_t>(), 300u) << o.output;
  EXPECT_EQ(r["auth_failures"], 0) << o.output;
  EXPECT_EQ(r["corrupted"], 0) << o.output;
  EXPECT_EQ(r["bad_checksums"], 0) << o.output;
  EXPECT_TRUE(r["sluiced_drops"].empty()) << o.output;
  EXPECT_EQ(o.report["sluiced_exit"], "ok") << o.output;
}

// This session's autogroup ("/autogroup-15 nice 0"), whose nice the
// benchmark raises for its run; empty without autogroup scheduling.
std::string Autogroup() {
  std::ifstream in("/proc/self/autogroup");
  std::string line;
  std::getline(in, line);
  return line;
}

TEST_F(TrafficMemifTest, RelaysEveryPacketOfEveryCall) {
  const std::string autogroup = Autogroup();
  const Outcome o = RunTraffic("--seconds 3");
  ExpectClean(o);
  if (o.report.is_discarded()) return;
  EXPECT_TRUE(o.report["runs"][0]["rekey"].is_null());
  // Nothing but sluiced's worker may run on its CPU: neither sluiced's other
  // threads nor the generator's EAL threads.
  EXPECT_EQ(o.report["threads_sharing_worker_cpu"], json::array()) << o.output;
  // The run's priority was raised for it (--nice -20 by default) and put
  // back after.
  EXPECT_TRUE(o.report.value("priority", "").ends_with("nice -20")) << o.output;
  EXPECT_EQ(Autogroup(), autogroup);
}

// RFC 3711 §9.2 / RFC 4568 re-keying while media flows: sluiced accepts the
// previous rx key for rekey_overlap_ms, and the new tx key from the reply on.
TEST_F(TrafficMemifTest, RekeyOfEveryCallMidRunLosesNothing) {
  const Outcome o = RunTraffic("--seconds 4 --rekey-at 1");
  ExpectClean(o);
  if (o.report.is_discarded()) return;
  const json& r = o.report["runs"][0];
  ASSERT_TRUE(r["rekey"].is_object()) << o.output;
  EXPECT_EQ(r["rekey"]["requests"], 200) << o.output;
  EXPECT_EQ(r["rekey"]["errors"], 0) << o.output;
  // Both legs of every call: phone A's new send key and phone B's new
  // verify key were put to use.
  EXPECT_EQ(r["key_changes"], 200) << o.output;
}

// The checks are not blind: damaged packets sluiced drops show as losses, and
// damaged output as authentication failures; the run then fails.
TEST_F(TrafficMemifTest, DamagedPacketsAreCounted) {
  const Outcome o = RunTraffic("--seconds 2 --inject-faults 100");
  ASSERT_FALSE(o.report.is_discarded()) << o.output;
  const json& r = o.report["runs"][0];
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_GT(r["faults_sent"].get<uint64_t>(), 0u) << o.output;
  EXPECT_EQ(r["lost"], r["faults_sent"]) << o.output;
  EXPECT_EQ(r["sluiced_drops"].value("auth_failed", 0), r["faults_sent"]) << o.output;
  EXPECT_GT(r["faults_checked"].get<uint64_t>(), 0u) << o.output;
  EXPECT_EQ(r["auth_failures"], r["faults_checked"]) << o.output;
}

}  // namespace
