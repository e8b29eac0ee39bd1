// Fuzz target: any bytes as an SRTP and as an SRTCP packet, unprotected by
// fixed-key contexts (AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM, without
// an MKI and with a 4-byte one) through the Engine on the ipsec-mb backend.
// Nothing may crash or touch memory outside the packet's buffer (exactly
// size + 32 bytes on the heap), and an accepted packet only ever shrinks.
//
// The seed corpus holds packets libsrtp protected with these keys (see
// kMasterKey below), so the fuzzer starts from inputs that authenticate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
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

struct Fixture {
  std::unique_ptr<sluice::crypto::Backend> backend;
  std::unique_ptr<Engine> engine;
  std::vector<std::unique_ptr<Context>> contexts;
};

Fixture& Get() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    auto backend = sluice::crypto::MakeBackend(sluice::crypto::BackendKind::kIpsecMb);
    if (!backend.ok()) abort();
    fx->backend = std::move(*backend);
    fx->engine = std::make_unique<Engine>(*fx->backend);
    for (Suite s : {Suite::kAesCm128HmacSha1_80, Suite::kAeadAes128Gcm}) {
      for (bool mki : {false, true}) {
        const MasterKey key = FixedKey(s, mki);
        auto ctx = Context::Create({&key, 1}, {});
        if (!ctx.ok()) abort();
        fx->contexts.push_back(std::move(*ctx));
      }
    }
    return fx;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  Fixture& f = Get();
  const size_t n = f.contexts.size();
  for (bool rtcp : {false, true}) {
    // One copy per context, all in one burst.
    std::vector<std::unique_ptr<uint8_t[]>> bufs;
    std::vector<Packet> pkts(n);
    std::vector<Job> jobs(n);
    for (size_t i = 0; i < n; ++i) {
      bufs.emplace_back(new uint8_t[size + kTailroom]);
      if (size > 0) std::memcpy(bufs[i].get(), data, size);
      pkts[i] = Packet{bufs[i].get(), static_cast<uint32_t>(size),
                       static_cast<uint32_t>(size + kTailroom)};
      jobs[i] = Job{f.contexts[i].get(), &pkts[i]};
    }
    std::vector<Verdict> verdicts(n, static_cast<Verdict>(0xff));
    const size_t ok =
        rtcp ? f.engine->UnprotectRtcp(jobs, verdicts) : f.engine->UnprotectRtp(jobs, verdicts);
    size_t counted = 0;
    for (size_t i = 0; i < n; ++i) {
      if (static_cast<int>(verdicts[i]) >= sluice::srtp::kVerdictCount) abort();
      if (verdicts[i] == Verdict::kOk) {
        ++counted;
        if (pkts[i].len > size) abort();
      }
    }
    if (counted != ok) abort();
  }
  return 0;
}
