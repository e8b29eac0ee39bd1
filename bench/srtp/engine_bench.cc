// Google Benchmark micro-benchmarks for srtp::Engine (src/srtp/engine.cc):
// protect and unprotect bursts of 32 RTP packets of one stream on the ipsec-mb
// backend, for the two suites that matter most. Arg is the RTP packet size.
// sluice-bench crypto covers every suite and backend beside libsrtp2 and the
// raw ipsec-mb floor.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/crypto/backend.h"
#include "sluice/crypto/suite.h"
#include "srtp/engine_loops.h"

namespace sluice::bench {
namespace {

constexpr size_t kBurst = 32;

// The backend outlives every benchmark: one per thread, as a worker holds it.
crypto::Backend* IpsecMbBackend() {
  static std::unique_ptr<crypto::Backend> backend = [] {
    absl::StatusOr<std::unique_ptr<crypto::Backend>> b =
        crypto::MakeBackend(crypto::BackendKind::kIpsecMb);
    return b.ok() ? *std::move(b) : nullptr;
  }();
  return backend.get();
}

void Report(benchmark::State& state, uint32_t size) {
  const int64_t packets = static_cast<int64_t>(state.iterations()) * kBurst;
  state.SetItemsProcessed(packets);
  state.SetBytesProcessed(packets * size);
  state.SetLabel(std::string(IpsecMbBackend()->name()) + "/" +
                 std::string(IpsecMbBackend()->arch()));
}

// kShift: a restored plain-sourced sender's SEQ shift (ContextOptions::
// rtp_seq_offset), against 0 (every other sender) in the same run.
template <crypto::Suite kSuite, uint16_t kShift = 0>
void BM_ProtectRtp(benchmark::State& state) {
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  if (IpsecMbBackend() == nullptr) {
    state.SkipWithError("the ipsec-mb backend cannot start on this machine");
    return;
  }
  auto loop = EngineProtectLoop::Create(*IpsecMbBackend(), kSuite, size, kBurst, kShift);
  if (!loop.ok()) {
    state.SkipWithError(std::string(loop.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    if ((*loop)->Step() != kBurst) {
      state.SkipWithError(("protect failed: " + (*loop)->FailureDetail()).c_str());
      break;
    }
  }
  Report(state, size);
}

template <crypto::Suite kSuite>
void BM_UnprotectRtp(benchmark::State& state) {
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  if (IpsecMbBackend() == nullptr) {
    state.SkipWithError("the ipsec-mb backend cannot start on this machine");
    return;
  }
  auto loop = EngineUnprotectLoop::Create(*IpsecMbBackend(), kSuite, size, kBurst);
  if (!loop.ok()) {
    state.SkipWithError(std::string(loop.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    if ((*loop)->NeedsRefill()) {
      // Restoring the ring and making a fresh receiver context is set-up.
      state.PauseTiming();
      (*loop)->Refill();
      state.ResumeTiming();
    }
    if ((*loop)->Step() != kBurst) {
      state.SkipWithError(("unprotect failed: " + (*loop)->FailureDetail()).c_str());
      break;
    }
  }
  Report(state, size);
}

// 64: small voice frames; 172: G.711 20 ms; 1200: video.
#define SLUICE_ENGINE_BENCH(fn, suite) \
  BENCHMARK_TEMPLATE(fn, suite)->Arg(64)->Arg(172)->Arg(1200)

SLUICE_ENGINE_BENCH(BM_ProtectRtp, crypto::Suite::kAesCm128HmacSha1_80);
BENCHMARK_TEMPLATE(BM_ProtectRtp, crypto::Suite::kAesCm128HmacSha1_80, 2601)->Arg(64)->Arg(172);
SLUICE_ENGINE_BENCH(BM_UnprotectRtp, crypto::Suite::kAesCm128HmacSha1_80);
SLUICE_ENGINE_BENCH(BM_ProtectRtp, crypto::Suite::kAeadAes128Gcm);
SLUICE_ENGINE_BENCH(BM_UnprotectRtp, crypto::Suite::kAeadAes128Gcm);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
