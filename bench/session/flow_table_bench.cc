// Google Benchmark micro-benchmarks for session::FlowTable::LookupBulk
// (src/session/flow_table.cc): bursts of 32 lookups of random local
// endpoints in tables of 1,000 to 4,000,000 keys, as a worker does for every
// RX burst. Runs EAL in process without hugepages; each size runs with the
// table in EAL's memory (4 KiB pages, "pages:small") and on a heap of
// transparent hugepages ("pages:thp"), as on a host with hugepages.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sluice/dpdk/eal.h"
#include "sluice/dpdk/thp_heap.h"
#include "sluice/packet/address.h"
#include "sluice/session/flow.h"
#include "sluice/session/flow_table.h"

namespace sluice::session {
namespace {

constexpr uint32_t kBurst = 32;
dpdk::ThpHeap* thp_heap = nullptr;  // made in main, lives as long as EAL

packet::Endpoint Local(uint32_t i) {
  return {packet::IpAddress::V4(0x0a000000u + (i >> 15)), static_cast<uint16_t>(1024 + 2 * (i & 0x7fff))};
}

void BM_LookupBulk(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  static uint32_t serial = 0;
  const bool thp = state.range(1) != 0;
  if (thp && thp_heap == nullptr) {
    state.SkipWithError("no heap of transparent hugepages");
    return;
  }
  auto table = FlowTable::Create("bench_flows" + std::to_string(serial++), n, 1,
                                 thp ? thp_heap->socket_id() : -1);
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
BENCHMARK(BM_LookupBulk)
    ->ArgsProduct({{1000, 100000, 1000000, 4000000}, {0, 1}})
    ->ArgNames({"keys", "pages:thp"});

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
  // A table of 4,000,000 keys takes about 240 MiB.
  absl::StatusOr<std::unique_ptr<sluice::dpdk::ThpHeap>> heap =
      sluice::dpdk::ThpHeap::Create("flow_bench_thp", uint64_t{512} << 20);
  if (heap.ok()) {
    sluice::session::thp_heap = heap->release();
  } else {
    std::fprintf(stderr, "flow_table_bench: %s\n", std::string(heap.status().message()).c_str());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
