// Google Benchmark micro-benchmarks for packet::ParseFrame
// (src/packet/parse.cc): one IPv4 UDP frame carrying RTP of the given size,
// with the UDP checksum verified in software (as on virtual devices) or left
// to a NIC that already checked it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "sluice/packet/address.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"

namespace sluice::packet {
namespace {

std::vector<uint8_t> RtpFrame(uint32_t rtp_size) {
  UdpHeaderSpec spec;
  spec.src_mac = {0x02, 0, 0, 0, 0, 1};
  spec.dst_mac = {0x02, 0, 0, 0, 0, 2};
  spec.src = *Endpoint::Parse("192.0.2.10:40000");
  spec.dst = *Endpoint::Parse("198.51.100.1:30000");
  const uint32_t hdr = HeaderLength(spec);
  std::vector<uint8_t> frame(hdr + rtp_size);
  uint8_t* rtp = frame.data() + hdr;
  rtp[0] = 0x80;
  for (uint32_t i = 1; i < rtp_size; ++i) rtp[i] = static_cast<uint8_t>(i * 7);
  rtp[1] = 0;  // PCMU
  WriteUdpHeaders(rtp, rtp_size, spec, 1);
  return frame;
}

void BM_ParseFrame(benchmark::State& state) {
  const std::vector<uint8_t> frame = RtpFrame(static_cast<uint32_t>(state.range(0)));
  ParseOptions options;
  options.verify_udp_checksum = state.range(1) != 0;
  for (auto _ : state) {
    ParsedFrame f = ParseFrame(frame.data(), static_cast<uint32_t>(frame.size()), options);
    benchmark::DoNotOptimize(f);
    if (f.kind != FrameKind::kUdp || f.payload_kind != PayloadKind::kRtp) {
      state.SkipWithError("the frame did not parse as RTP over UDP");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(options.verify_udp_checksum ? "udp checksum in software" : "udp checksum by NIC");
}
BENCHMARK(BM_ParseFrame)->ArgsProduct({{172, 1212}, {1, 0}})->ArgNames({"size", "sw_csum"});

void BM_WriteUdpHeaders(benchmark::State& state) {
  std::vector<uint8_t> frame = RtpFrame(static_cast<uint32_t>(state.range(0)));
  UdpHeaderSpec spec;
  spec.src = *Endpoint::Parse("203.0.113.1:30002");
  spec.dst = *Endpoint::Parse("203.0.113.20:50000");
  const uint32_t hdr = HeaderLength(spec);
  uint16_t id = 0;
  for (auto _ : state) {
    uint8_t* start = WriteUdpHeaders(frame.data() + hdr, static_cast<uint32_t>(state.range(0)),
                                     spec, id++);
    benchmark::DoNotOptimize(start);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_WriteUdpHeaders)->Arg(172)->Arg(1212)->ArgName("size");

}  // namespace
}  // namespace sluice::packet

BENCHMARK_MAIN();
