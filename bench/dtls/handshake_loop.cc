#include "dtls/handshake_loop.h"

#include <time.h>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/dtls/endpoint.h"

namespace sluice::bench {
namespace {

// This thread's CPU time: on a shared machine it leaves out the time another
// process held the core.
std::chrono::nanoseconds ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Runs f, adding the CPU time it took to *spent.
template <typename F>
auto Timed(std::chrono::nanoseconds* spent, F&& f) {
  const std::chrono::nanoseconds start = ThreadCpu();
  if constexpr (std::is_void_v<decltype(f())>) {
    f();
    *spent += ThreadCpu() - start;
  } else {
    auto result = f();
    *spent += ThreadCpu() - start;
    return result;
  }
}

std::unique_ptr<dtls::Endpoint> MakeEndpoint(const dtls::Certificate& own,
                                             const dtls::Certificate& peer, dtls::Role role,
                                             dtls::SrtpProfile profile) {
  dtls::EndpointOptions o;
  o.role = role;
  o.peer_fingerprints = {peer.GetFingerprint()};
  o.profiles = {profile};
  absl::StatusOr<std::unique_ptr<dtls::Endpoint>> e = dtls::Endpoint::Create(own, o);
  return e.ok() ? std::move(*e) : nullptr;
}

bool Done(const dtls::Endpoint& e) {
  return e.state() == dtls::State::kKeyed || e.state() == dtls::State::kFailed;
}

// Hands each side's datagrams to the other until both are done.
void Exchange(dtls::Endpoint& client, dtls::Endpoint& server, HandshakeCost& cost) {
  constexpr uint64_t kNow = 1000;
  Timed(&cost.client, [&] { client.Start(kNow); });
  Timed(&cost.server, [&] { server.Start(kNow); });
  for (int round = 0; round < 8 && !(Done(client) && Done(server)); ++round) {
    std::vector<std::vector<uint8_t>> out = Timed(&cost.client, [&] { return client.TakeOutgoing(); });
    for (const auto& d : out) Timed(&cost.server, [&] { server.Feed(d, kNow); });
    out = Timed(&cost.server, [&] { return server.TakeOutgoing(); });
    for (const auto& d : out) Timed(&cost.client, [&] { client.Feed(d, kNow); });
  }
}

}  // namespace

HandshakeCost RunHandshake(const dtls::Certificate& client_cert,
                           const dtls::Certificate& server_cert, dtls::SrtpProfile profile) {
  HandshakeCost cost;
  auto client = Timed(&cost.client, [&] {
    return MakeEndpoint(client_cert, server_cert, dtls::Role::kClient, profile);
  });
  auto server = Timed(&cost.server, [&] {
    return MakeEndpoint(server_cert, client_cert, dtls::Role::kServer, profile);
  });
  if (client == nullptr || server == nullptr) return cost;
  Exchange(*client, *server, cost);
  std::optional<dtls::SrtpKeys> ck = Timed(&cost.client, [&] { return client->TakeKeys(); });
  std::optional<dtls::SrtpKeys> sk = Timed(&cost.server, [&] { return server->TakeKeys(); });
  cost.keyed = ck && sk && ck->send.SameKeyAs(sk->receive) && sk->send.SameKeyAs(ck->receive);
  Timed(&cost.client, [&] { client.reset(); });
  Timed(&cost.server, [&] { server.reset(); });
  return cost;
}

}  // namespace sluice::bench
