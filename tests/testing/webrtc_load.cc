#include "webrtc_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "keyed_watch.h"
#include "session_requests.h"
#include "thread_cpu.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxFailures = 5;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

const char* StateName(BrowserState s) {
  switch (s) {
    case BrowserState::kIdle: return "idle";
    case BrowserState::kChecking: return "checking";
    case BrowserState::kHandshaking: return "handshaking";
    case BrowserState::kKeyed: return "keyed";
    case BrowserState::kFailed: return "failed";
  }
  return "?";
}

std::optional<double> HandshakeCpu(pid_t sluiced) {
  if (sluiced <= 0) return std::nullopt;
  const std::optional<pid_t> tid = FindThread(sluiced, kHandshakeThreadName);
  return tid ? ThreadCpuSeconds(sluiced, *tid) : std::nullopt;
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

absl::StatusOr<std::unique_ptr<WebRtcLoad>> WebRtcLoad::Prepare(control::Client& control,
                                                               Topology& topo,
                                                               const WebRtcLoadOptions& options) {
  std::unique_ptr<WebRtcLoad> load(new WebRtcLoad(options));
  absl::StatusOr<std::unique_ptr<BrowserFleet>> fleet = BrowserFleet::Create(options.browser);
  if (!fleet.ok()) return fleet.status();
  load->fleet_ = *std::move(fleet);
  for (size_t i = 0; i < options.calls; ++i) {
    if (absl::Status s = load->AddCall(control, topo, i); !s.ok()) return s;
  }
  return load;
}

// Browser i's socket and session: the browser is the DTLS client on even
// calls (its setup "active"), the server on odd ones ("actpass": Sluice is
// the client, RFC 5763 §5).
absl::Status WebRtcLoad::AddCall(control::Client& control, Topology& topo, size_t i) {
  absl::StatusOr<int> fd = topo.Socket(options_.browser_ns, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) return fd.status();
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(options_.first_port + i));
  inet_pton(AF_INET, options_.browser_ip.c_str(), &a.sin_addr);
  absl::StatusOr<size_t> b = fleet_->Add(*fd, i % 2 == 0);  // the fleet owns fd now
  if (!b.ok()) {
    close(*fd);
    return b.status();
  }
  if (bind(*fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    return absl::InternalError(absl::StrCat("binding browser ", i, ": ", strerror(errno)));
  }
  const std::string session = absl::StrCat(options_.session_prefix, i);
  absl::StatusOr<json> j = CreateSession(
      control, session, BrowserLeg("a", options_.interface_a, fleet_->offer(*b)),
      {{"name", "b"}, {"interface", options_.interface_b}, {"rtcp", "mux"},
       {"remote", options_.remote_b}, {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}});
  if (!j.ok()) return j.status();
  absl::StatusOr<BrowserAnswer> answer = AnswerFromLeg((*j)["legs"][0]);
  if (!answer.ok()) return answer.status();
  absl::StatusOr<sockaddr_in> plain = LocalAddress((*j)["legs"][1]);
  if (!plain.ok()) return plain.status();
  plain_locals_.push_back(*plain);
  if (absl::Status s = fleet_->SetAnswer(*b, *answer); !s.ok()) return s;
  sessions_.push_back(session);
  return absl::OkStatus();
}

absl::StatusOr<WebRtcLoadResult> WebRtcLoad::Run() {
  const size_t n = fleet_->size();
  absl::StatusOr<std::unique_ptr<KeyedWatch>> started = KeyedWatch::Start(options_.socket_path, n);
  if (!started.ok()) return started.status();
  KeyedWatch& watch = **started;
  // Sluice is asked about a call once its browser has keyed: before that it
  // cannot be keyed (its last flight, or the browser's, is still to come).
  fleet_->on_keyed = [&](size_t i) { watch.Watch(i, sessions_[i], 0); };
  const std::optional<double> cpu_before = HandshakeCpu(options_.sluiced);
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < n; ++i) fleet_->Start(i);
  const Clock::time_point deadline = start + std::chrono::milliseconds(options_.deadline_ms);
  while (watch.done() + fleet_->Count(BrowserState::kFailed) < n && Clock::now() < deadline) {
    fleet_->Poll(5);
  }
  const std::optional<double> cpu_after = HandshakeCpu(options_.sluiced);
  fleet_->on_keyed = nullptr;

  WebRtcLoadResult r;
  r.calls = n;
  if (cpu_before && cpu_after) r.handshake_cpu_seconds = *cpu_after - *cpu_before;
  r.session_gets = watch.requests();
  r.browsers = fleet_->counters();
  const std::vector<KeyedWatch::Outcome> outcomes = watch.Outcomes();
  std::vector<double> keyed_ms, browser_ms;
  Clock::time_point last = start;
  for (size_t i = 0; i < n; ++i) {
    const KeyedWatch::Outcome& o = outcomes[i];
    if (fleet_->keyed_at(i)) browser_ms.push_back(Ms(*fleet_->keyed_at(i) - *fleet_->started(i)));
    if (o.keyed) {
      ++r.keyed;
      keyed_ms.push_back(Ms(o.at - *fleet_->started(i)));
      last = std::max(last, o.at);
      continue;
    }
    ++r.failed;
    if (r.failures.size() < kMaxFailures) {
      r.failures.push_back(absl::StrCat(
          "call ", i, ": ",
          o.done ? o.reason
                 : absl::StrCat("browser ", StateName(fleet_->state(i)),
                                fleet_->failure(i).empty() ? "" : ", ", fleet_->failure(i),
                                "; sluiced not keyed within ", options_.deadline_ms, " ms")));
    }
  }
  r.seconds = std::chrono::duration<double>(last - start).count();
  r.handshakes_per_second = r.seconds > 0 ? static_cast<double>(r.keyed) / r.seconds : 0;
  r.keyed_p50_ms = Percentile(keyed_ms, 50);
  r.keyed_p99_ms = Percentile(keyed_ms, 99);
  r.keyed_max_ms = Percentile(keyed_ms, 100);
  r.browser_keyed_p50_ms = Percentile(browser_ms, 50);
  r.browser_keyed_max_ms = Percentile(browser_ms, 100);
  return r;
}

absl::Status WebRtcLoad::Delete(control::Client& control) {
  return DeleteSessions(control, sessions_);
}

}  // namespace sluice::testing
