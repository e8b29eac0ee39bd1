// Google Benchmark micro-benchmarks for session::FlowTable::LookupBulk
// (src/session/flow_table.cc): bursts of 32 lookups of random local
// endpoints in tables of 1,000 to 1,000,000 keys, as a worker does for every
// RX burst. Runs EAL in process without hugepages.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sluice/dpdk/eal.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow.h"
#include "sluice/session/flow_table.h"

namespace sluice::session {
namespace {

constexpr uint32_t kBurst = 32;

packet::Endpoint Local(uint32_t i) {
  return {packet::IpAddress::V4(0x0a000000u + (i >> 15)), static_cast<uint16_t>(1024 + 2 * (i & 0x7fff))};
}

void BM_LookupBulk(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  static uint32_t serial = 0;
  auto table = FlowTable::Create("bench_flows" + std::to_string(serial++), n, 1);
  if (!table.ok()) {
    state.SkipWithError(std::string(table.status().message()).c_str());
    return;
  }
  static Flow flow;  // every key maps to it: the table is what is measured
  for (uint32_t i = 0; i < n; ++i) {
    if (!(*table)->Add(Local(i), &flow, false).ok()) {
      state.SkipWithError("cannot fill the table");
      return;
    }
  }
  // Bursts of random keys, prepared beforehand; 4096 bursts outgrow the caches
  // of the larger tables as real traffic does.
  std::mt19937 rng(1);
  std::vector<FlowKey> keys(4096 * kBurst);
  for (FlowKey& k : keys) k = FlowKey::From(Local(static_cast<uint32_t>(rng() % n)));
  FlowRef refs[kBurst];
  size_t burst = 0;
  for (auto _ : state) {
    (*table)->LookupBulk(&keys[burst * kBurst], kBurst, refs);
    benchmark::DoNotOptimize(refs);
    if (refs[0].flow != &flow) {
      state.SkipWithError("a key was not found");
      break;
    }
    if (++burst == 4096) burst = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
}
BENCHMARK(BM_LookupBulk)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("keys");

}  // namespace
}  // namespace sluice::session

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  sluice::dpdk::EalOptions eal;
  eal.program_name = "flow_table_bench";
  eal.memory_mb = 1024;
  if (absl::Status s = sluice::dpdk::InitEal(eal); !s.ok()) {
    std::fprintf(stderr, "flow_table_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
