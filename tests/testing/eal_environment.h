// EAL for a test binary that needs DPDK in process: started before the
// first test, cleaned up after the last (EAL starts once per process).
//
//   const auto* const kEnv = sluice::testing::AddEalEnvironment("my_test", 64);
#ifndef SLUICE_TESTS_TESTING_EAL_ENVIRONMENT_H_
#define SLUICE_TESTS_TESTING_EAL_ENVIRONMENT_H_

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "sluice/dpdk/eal.h"

namespace sluice::testing {

class EalEnvironment : public ::testing::Environment {
 public:
  explicit EalEnvironment(dpdk::EalOptions options) : options_(std::move(options)) {}
  void SetUp() override {
    const absl::Status s = dpdk::InitEal(options_);
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override { dpdk::CleanupEal(); }

 private:
  dpdk::EalOptions options_;
};

// Registers EAL with `memory_mb` of 4 KiB pages (as on a host without
// hugepages) for this test binary; `name` is EAL's program name.
inline ::testing::Environment* AddEalEnvironment(std::string name, int memory_mb) {
  dpdk::EalOptions options;
  options.program_name = std::move(name);
  options.memory_mb = memory_mb;
  options.force_no_huge = true;
  return ::testing::AddGlobalTestEnvironment(new EalEnvironment(std::move(options)));
}

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_EAL_ENVIRONMENT_H_
