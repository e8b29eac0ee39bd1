// Google Benchmark micro-benchmarks for srtp::ReplayWindow
// (include/sluice/srtp/replay_window.h): the check and accept each SRTP packet
// pays, in order and with reordering, for the default 128-packet window and
// the largest, 1024.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "sluice/srtp/replay_window.h"

namespace sluice::srtp {
namespace {

// Indices arriving in order, or each displaced by up to `jitter` places.
std::vector<uint64_t> Arrivals(size_t n, uint32_t jitter) {
  std::vector<uint64_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = 1000 + i;
  std::mt19937 rng(1);
  for (size_t i = 0; jitter > 0 && i + jitter < n; i += jitter) {
    std::shuffle(order.begin() + static_cast<std::ptrdiff_t>(i),
                 order.begin() + static_cast<std::ptrdiff_t>(i + jitter), rng);
  }
  return order;
}

void BM_CheckAccept(benchmark::State& state) {
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  const std::vector<uint64_t> order = Arrivals(1 << 16, static_cast<uint32_t>(state.range(1)));
  std::vector<uint64_t> words(ReplayWindow::StorageBits(size) / 64);
  ReplayWindow window;
  window.Init(words.data(), size);
  size_t next = 0;
  uint64_t base = 0;
  for (auto _ : state) {
    const uint64_t index = base + order[next];
    if (window.Check(index) == ReplayCheck::kNew) window.Accept(index);
    if (++next == order.size()) {
      next = 0;
      base += order.size() + 1000;  // the next lap starts above this one
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_CheckAccept)->ArgsProduct({{128, 1024}, {0, 8, 64}})->ArgNames({"window", "jitter"});

}  // namespace
}  // namespace sluice::srtp

BENCHMARK_MAIN();
