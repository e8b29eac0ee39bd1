// ipsec-mb managers: the instruction set each kind of manager runs, and one
// control-thread manager per thread.
#include "../../src/crypto/ipsecmb_manager.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace sluice::crypto {
namespace {

TEST(IpsecMbManagerTest, SseManagerRunsTheSseCode) {
  IMB_ARCH arch = IMB_ARCH_NONE;
  MbMgrPtr mgr = NewMbMgr(MbArch::kSse, &arch);
  ASSERT_NE(mgr, nullptr);
  EXPECT_EQ(arch, IMB_ARCH_SSE);
  EXPECT_EQ(std::string(MbArchName(arch)), "sse");
}

TEST(IpsecMbManagerTest, AutoManagerReportsTheCodeItChose) {
  IMB_ARCH arch = IMB_ARCH_NONE;
  MbMgrPtr mgr = NewMbMgr(MbArch::kAuto, &arch);
  ASSERT_NE(mgr, nullptr);
  EXPECT_NE(arch, IMB_ARCH_NONE);
  EXPECT_NE(std::string(MbArchName(arch)), "none");
}

TEST(IpsecMbManagerTest, ArchNames) {
  EXPECT_EQ(std::string(MbArchName(IMB_ARCH_NOAESNI)), "no-aesni");
  EXPECT_EQ(std::string(MbArchName(IMB_ARCH_AVX)), "avx");
  EXPECT_EQ(std::string(MbArchName(IMB_ARCH_AVX2)), "avx2");
  EXPECT_EQ(std::string(MbArchName(IMB_ARCH_AVX512)), "avx512");
  EXPECT_EQ(std::string(MbArchName(IMB_ARCH_NONE)), "none");
}

TEST(IpsecMbManagerTest, OneControlThreadManagerPerThread) {
  IMB_MGR* here = ControlThreadManager();
  ASSERT_NE(here, nullptr);
  EXPECT_EQ(ControlThreadManager(), here);  // the same one on each call
  IMB_MGR* there = nullptr;
  IMB_MGR* there_again = nullptr;
  std::thread t([&] {
    there = ControlThreadManager();
    there_again = ControlThreadManager();
  });
  t.join();
  ASSERT_NE(there, nullptr);
  EXPECT_NE(there, here);
  EXPECT_EQ(there_again, there);
}

}  // namespace
}  // namespace sluice::crypto
