// Fuzz target: any bytes as an SRTP and as an SRTCP packet, unprotected by
// fixed-key contexts (AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM, without
// an MKI and with a 4-byte one; AES_CM_128_HMAC_SHA1_32) through the Engine
// on the ipsec-mb and on the OpenSSL backend, each with contexts of its own.
// Nothing may crash or touch memory outside the packet's buffer (exactly
// size + 32 bytes on the heap), an accepted packet only ever shrinks, and
// the two backends agree on every verdict and every byte they leave.
//
// The seed corpus holds packets libsrtp protected with these keys (see
// kMasterKey below), so the fuzzer starts from inputs that authenticate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "sluice/crypto/backend.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/verdict.h"

namespace {

using sluice::crypto::Suite;
using sluice::srtp::Context;
using sluice::srtp::Engine;
using sluice::srtp::Job;
using sluice::srtp::MasterKey;
using sluice::srtp::Packet;
using sluice::srtp::Verdict;

constexpr size_t kTailroom = 32;

// Master key 00 01 .. 0f, salt a0 a1 .. ad (GCM: a0 .. ab), MKI 01020304.
MasterKey FixedKey(Suite suite, bool mki) {
  MasterKey k;
  k.suite = suite;
  for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < k.salt.size(); ++i) k.salt[i] = static_cast<uint8_t>(0xa0 + i);
  if (mki) {
    k.mki = {1, 2, 3, 4};
    k.mki_len = 4;
  }
  return k;
}

// One backend's engine and its own contexts (their replay state evolves
// with what it accepts).
struct Lane {
  std::unique_ptr<sluice::crypto::Backend> backend;
  std::unique_ptr<Engine> engine;
  std::vector<std::unique_ptr<Context>> contexts;
};

constexpr sluice::crypto::BackendKind kBackends[] = {sluice::crypto::BackendKind::kIpsecMb,
                                                     sluice::crypto::BackendKind::kOpenssl};
constexpr size_t kLanes = std::size(kBackends);

std::vector<Lane>& Get() {
  static std::vector<Lane>* lanes = [] {
    auto* v = new std::vector<Lane>(kLanes);
    for (size_t b = 0; b < kLanes; ++b) {
      Lane& lane = (*v)[b];
      auto backend = sluice::crypto::MakeBackend(kBackends[b]);
      if (!backend.ok()) abort();
      lane.backend = std::move(*backend);
      lane.engine = std::make_unique<Engine>(*lane.backend);
      const std::pair<Suite, bool> keys[] = {
          {Suite::kAesCm128HmacSha1_80, false}, {Suite::kAesCm128HmacSha1_80, true},
          {Suite::kAeadAes128Gcm, false},       {Suite::kAeadAes128Gcm, true},
          {Suite::kAesCm128HmacSha1_32, false}};
      for (const auto& [suite, mki] : keys) {
        const MasterKey key = FixedKey(suite, mki);
        auto ctx = Context::Create({&key, 1}, {});
        if (!ctx.ok()) abort();
        lane.contexts.push_back(std::move(*ctx));
      }
    }
    return v;
  }();
  return *lanes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::vector<Lane>& lanes = Get();
  const size_t n = lanes[0].contexts.size();
  for (bool rtcp : {false, true}) {
    std::vector<std::vector<std::unique_ptr<uint8_t[]>>> bufs(kLanes);
    std::vector<std::vector<Packet>> pkts(kLanes, std::vector<Packet>(n));
    std::vector<std::vector<Verdict>> verdicts(
        kLanes, std::vector<Verdict>(n, static_cast<Verdict>(0xff)));
    for (size_t b = 0; b < kLanes; ++b) {
      // One copy per context, all in one burst.
      std::vector<Job> jobs(n);
      for (size_t i = 0; i < n; ++i) {
        bufs[b].emplace_back(new uint8_t[size + kTailroom]);
        if (size > 0) std::memcpy(bufs[b][i].get(), data, size);
        pkts[b][i] = Packet{bufs[b][i].get(), static_cast<uint32_t>(size),
                            static_cast<uint32_t>(size + kTailroom)};
        jobs[i] = Job{lanes[b].contexts[i].get(), &pkts[b][i]};
      }
      Engine& engine = *lanes[b].engine;
      const size_t ok =
          rtcp ? engine.UnprotectRtcp(jobs, verdicts[b]) : engine.UnprotectRtp(jobs, verdicts[b]);
      size_t counted = 0;
      for (size_t i = 0; i < n; ++i) {
        if (static_cast<int>(verdicts[b][i]) >= sluice::srtp::kVerdictCount) abort();
        if (verdicts[b][i] == Verdict::kOk) {
          ++counted;
          if (pkts[b][i].len > size) abort();
        }
      }
      if (counted != ok) abort();
    }
    for (size_t i = 0; i < n; ++i) {
      if (verdicts[1][i] != verdicts[0][i]) abort();
      if (verdicts[0][i] != Verdict::kOk) continue;
      if (pkts[1][i].len != pkts[0][i].len ||
          std::memcmp(pkts[1][i].data, pkts[0][i].data, pkts[0][i].len) != 0) {
        abort();
      }
    }
  }
  return 0;
}
