// Google Benchmark for dtls::Endpoint (include/sluice/dtls/endpoint.h): full
// DTLS-SRTP handshakes (ECDHE, ECDSA P-256 certificates, exporter), client
// and server in one thread. items_per_second (per second of CPU time) is
// the rate of one core doing both sides; "server_side" and "client_side" are
// the rates of a handshake thread doing only Sluice's side in that role (the
// CPU time of that side's calls alone).
#include <benchmark/benchmark.h>

#include <chrono>

#include "dtls/handshake_loop.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/srtp_profile.h"

namespace sluice::bench {
namespace {

void BM_Handshake(benchmark::State& state) {
  const auto profile = static_cast<dtls::SrtpProfile>(state.range(0));
  const dtls::Certificate client_cert = *dtls::Certificate::Generate();
  const dtls::Certificate server_cert = *dtls::Certificate::Generate();
  RunHandshake(client_cert, server_cert, profile);  // builds the shared contexts
  std::chrono::nanoseconds client{0}, server{0};
  for (auto _ : state) {
    const HandshakeCost cost = RunHandshake(client_cert, server_cert, profile);
    if (!cost.keyed) {
      state.SkipWithError("a handshake failed");
      break;
    }
    client += cost.client;
    server += cost.server;
  }
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["server_side"] = n / std::chrono::duration<double>(server).count();
  state.counters["client_side"] = n / std::chrono::duration<double>(client).count();
  state.SetLabel(std::string(dtls::GetSrtpProfileInfo(profile).name));
}
BENCHMARK(BM_Handshake)
    ->DenseRange(0, dtls::kSrtpProfileCount - 1)
    ->ArgName("profile")
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
