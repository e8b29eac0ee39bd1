// The crypto floor: what Intel ipsec-mb alone costs for the bytes SRTP
// protect has to process, with nothing around it (no parsing, no index or
// replay bookkeeping, keys and IVs computed beforehand). Sluice's engine is
// measured against it.
//
//   AES_CM_128_HMAC_SHA1_80: for a burst of packets, one
//     IMB_SUBMIT_CIPHER_BURST (AES-128 CTR over each payload, 16-byte IV) and
//     one IMB_SUBMIT_HASH_BURST (HMAC-SHA1 over header + payload + 4-byte ROC,
//     12-byte tag into a side array).
//   AEAD_AES_128_GCM: IMB_AES128_GCM_ENC once per packet (direct API),
//     header as AAD, 16-byte tag after the payload.
//
// Before it is timed, each floor loop checks that its first pass produces
// exactly what libsrtp2's srtp_protect produces for the same packets, so the
// floor does the same work as protect, not less.
//
// Benchmark code, single thread.
#ifndef SLUICE_BENCH_CRYPTO_IPSECMB_FLOOR_H_
#define SLUICE_BENCH_CRYPTO_IPSECMB_FLOOR_H_

#include <intel-ipsec-mb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "measure.h"
#include "sluice/crypto/suite.h"

namespace sluice::bench {

// One IMB_MGR from alloc_mb_mgr(0) and init_mb_mgr_auto (the widest code the
// CPU runs: AVX-512 where it has it).
class ImbManager {
 public:
  static absl::StatusOr<std::unique_ptr<ImbManager>> Create();
  ~ImbManager() { free_mb_mgr(mgr_); }
  ImbManager(const ImbManager&) = delete;
  ImbManager& operator=(const ImbManager&) = delete;

  IMB_MGR* get() const { return mgr_; }
  // "sse", "avx", "avx2", "avx512".
  std::string_view arch() const;

 private:
  ImbManager(IMB_MGR* mgr, IMB_ARCH arch) : mgr_(mgr), arch_(arch) {}
  IMB_MGR* mgr_;
  IMB_ARCH arch_;
};

// Whether a floor is defined for the suite (AES_CM_128_HMAC_SHA1_80 and
// AEAD_AES_128_GCM).
bool HasFloor(crypto::Suite suite);

// A floor loop for `burst` packets of `size` bytes. Fails if the suite has no
// floor or the first pass does not match libsrtp2 (srtp_init() must have been
// called). With `keys` > 1 each packet uses one of that many copies of the
// key schedule, each in its own allocation, in random order with the next
// burst's prefetched: the crypto's own cost at that many sessions, whose
// keys do not all fit in cache.
absl::StatusOr<std::unique_ptr<BurstLoop>> MakeFloorLoop(ImbManager& mgr, crypto::Suite suite,
                                                         uint32_t size, size_t burst,
                                                         size_t keys = 1);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_CRYPTO_IPSECMB_FLOOR_H_
