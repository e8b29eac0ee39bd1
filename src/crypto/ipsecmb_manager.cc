#include "ipsecmb_manager.h"

#include <cstdlib>

namespace sluice::crypto {

MbMgrPtr NewMbMgr(MbArch arch, IMB_ARCH* chosen) {
  MbMgrPtr mgr(alloc_mb_mgr(0));
  if (!mgr) return nullptr;
  if (arch == MbArch::kSse) {
    init_mb_mgr_sse(mgr.get());
    if (chosen != nullptr) *chosen = IMB_ARCH_SSE;
  } else {
    IMB_ARCH detected = IMB_ARCH_NONE;
    init_mb_mgr_auto(mgr.get(), &detected);
    if (chosen != nullptr) *chosen = detected;
  }
  if (imb_get_errno(mgr.get()) != 0) return nullptr;
  return mgr;
}

IMB_MGR* ControlThreadManager() {
  thread_local MbMgrPtr mgr = NewMbMgr(MbArch::kAuto);
  if (!mgr) std::abort();  // no usable ipsec-mb code for this CPU at all
  return mgr.get();
}

const char* MbArchName(IMB_ARCH arch) {
  switch (arch) {
    case IMB_ARCH_NOAESNI: return "no-aesni";
    case IMB_ARCH_SSE: return "sse";
    case IMB_ARCH_AVX: return "avx";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX512: return "avx512";
    default: return "none";
  }
}

}  // namespace sluice::crypto
