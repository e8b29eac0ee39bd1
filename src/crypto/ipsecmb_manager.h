// ipsec-mb managers: allocation with run-time CPU detection, and the control
// thread's own manager for key expansion.
//
// Internal to src/crypto. A manager is not thread-safe: one per thread.
#ifndef SLUICE_SRC_CRYPTO_IPSECMB_MANAGER_H_
#define SLUICE_SRC_CRYPTO_IPSECMB_MANAGER_H_

#include <intel-ipsec-mb.h>

#include <memory>

#include "sluice/crypto/session_key.h"

namespace sluice::crypto {

struct MbMgrDeleter {
  void operator()(IMB_MGR* mgr) const noexcept { free_mb_mgr(mgr); }
};
using MbMgrPtr = std::unique_ptr<IMB_MGR, MbMgrDeleter>;

enum class MbArch { kAuto, kSse };

// Allocates and initialises a manager: kAuto picks the best code the CPU runs
// (AVX-512/VAES, AVX2, AVX, SSE); kSse forces the SSE code (which uses SHA-NI).
// Null on failure.
MbMgrPtr NewMbMgr(MbArch arch, IMB_ARCH* chosen = nullptr);

// A manager owned by the calling thread, for key set-up off the data path.
IMB_MGR* ControlThreadManager();

const char* MbArchName(IMB_ARCH arch);

// A session key's AES-GCM tables as the library's key structure.
inline gcm_key_data* GcmKeyOf(GcmTables& tables) {
  return reinterpret_cast<gcm_key_data*>(tables.data);
}
inline const gcm_key_data* GcmKeyOf(const GcmTables& tables) {
  return reinterpret_cast<const gcm_key_data*>(tables.data);
}

}  // namespace sluice::crypto

#endif  // SLUICE_SRC_CRYPTO_IPSECMB_MANAGER_H_
