#include "ipsecmb_manager.h"

#include <cstdlib>

namespace sluice::crypto {

// SessionKey and GcmTables keep the library's key material as plain bytes
// (their header does not include the library's): they must fit it.
static_assert(sizeof(gcm_key_data) <= sizeof(GcmTables::data),
              "GcmTables must hold ipsec-mb's struct gcm_key_data");
static_assert(alignof(gcm_key_data) <= alignof(GcmTables),
              "GcmTables must be aligned as ipsec-mb's struct gcm_key_data");
static_assert(sizeof(SessionKey::hmac_ipad_state) == 20 && sizeof(SessionKey::hmac_opad_state) == 20,
              "IMB_SHA1_ONE_BLOCK writes a 20-byte SHA-1 state");
static_assert(sizeof(SessionKey::aes_round_keys) >= 16 * 15 && alignof(SessionKey) >= 16,
              "ipsec-mb's AES key expansion writes up to 15 aligned round keys");

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
