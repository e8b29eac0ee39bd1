#include "webrtc_browsers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/fingerprint.h"
#include "session_requests.h"
#include "sluice/ice/stun.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

// RFC 8445 §5.1.2.1: a host candidate's priority (type preference 126,
// local preference 65535, component 1).
constexpr uint32_t kHostPriority = (126u << 24) | (65535u << 8) | 255u;

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   BrowserFleet::Clock::now().time_since_epoch())
                                   .count());
}

template <typename T>
void RandomFill(T& out) {
  RAND_bytes(reinterpret_cast<unsigned char*>(&out), sizeof out);
}

}  // namespace

struct BrowserFleet::Browser {
  ~Browser() {
    if (fd >= 0) close(fd);
  }
  size_t index = 0;
  int fd = -1;
  bool dtls_client = false;
  std::optional<dtls::Certificate> certificate;
  BrowserOffer offer;
  std::optional<BrowserAnswer> answer;
  std::unique_ptr<dtls::Endpoint> endpoint;
  ice::StunTransactionId transaction{};
  uint64_t tie_breaker = 0;
  uint32_t checks = 0;        // transmissions of the current check
  uint64_t next_check_ms = 0;
  BrowserState state = BrowserState::kIdle;
  std::string failure;
  std::optional<Clock::time_point> started, keyed;
};

json BrowserLeg(const std::string& name, const std::string& interface,
                const BrowserOffer& offer) {
  return {{"name", name},
          {"interface", interface},
          {"rtcp", "mux"},
          {"dtls", {{"setup", offer.setup}, {"fingerprints", {offer.fingerprint}}}},
          {"ice", {{"ufrag", offer.ufrag}, {"pwd", std::string(offer.pwd.data(), offer.pwd.size())}}}};
}

absl::StatusOr<BrowserAnswer> AnswerFromLeg(const json& leg) {
  absl::StatusOr<sockaddr_in> local = LocalAddress(leg);
  if (!local.ok()) return local.status();
  if (!leg.contains("ice") || !leg["ice"].is_object() || !leg.contains("dtls") ||
      !leg["dtls"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("not a WebRTC leg: ", leg.dump()));
  }
  BrowserAnswer a;
  a.relay = *local;
  a.ufrag = leg["ice"].value("ufrag", "");
  const std::string pwd = leg["ice"].value("pwd", "");
  a.pwd.assign(pwd.data(), pwd.size());
  a.fingerprint = leg["dtls"].value("fingerprint", "");
  if (a.ufrag.empty() || a.pwd.empty() || a.fingerprint.empty()) {
    return absl::InvalidArgumentError("the leg's reply lacks ice.ufrag, ice.pwd or dtls.fingerprint");
  }
  return a;
}

absl::StatusOr<std::unique_ptr<BrowserFleet>> BrowserFleet::Create(BrowserOptions options) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  return std::unique_ptr<BrowserFleet>(new BrowserFleet(options, epoll_fd));
}

BrowserFleet::BrowserFleet(BrowserOptions options, int epoll_fd)
    : options_(options), epoll_fd_(epoll_fd) {}

BrowserFleet::~BrowserFleet() {
  browsers_.clear();
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::StatusOr<size_t> BrowserFleet::Add(int fd, bool dtls_client) {
  auto b = std::make_unique<Browser>();
  b->fd = fd;  // closed with b from here on
  b->index = browsers_.size();
  b->dtls_client = dtls_client;
  absl::StatusOr<dtls::Certificate> cert = dtls::Certificate::Generate();
  if (!cert.ok()) return cert.status();
  absl::StatusOr<ice::IceCredentials> credentials = ice::GenerateIceCredentials();
  if (!credentials.ok()) return credentials.status();
  b->offer.setup = dtls_client ? "active" : "actpass";
  b->offer.fingerprint = dtls::FormatFingerprint(cert->GetFingerprint());
  b->offer.ufrag = credentials->ufrag;
  b->offer.pwd = credentials->pwd;
  b->certificate.emplace(*std::move(cert));
  RandomFill(b->tie_breaker);
  const int flags = fcntl(fd, F_GETFL);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = b->index;
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("browser socket: ", strerror(errno)));
  }
  browsers_.push_back(std::move(b));
  return browsers_.size() - 1;
}

const BrowserOffer& BrowserFleet::offer(size_t i) const { return browsers_[i]->offer; }

absl::Status BrowserFleet::SetAnswer(size_t i, const BrowserAnswer& answer) {
  Browser& b = *browsers_[i];
  absl::StatusOr<dtls::Fingerprint> fp = dtls::ParseFingerprint(answer.fingerprint);
  if (!fp.ok()) return fp.status();
  dtls::EndpointOptions o;
  o.role = b.dtls_client ? dtls::Role::kClient : dtls::Role::kServer;
  o.peer_fingerprints = {*fp};
  o.initial_retransmit_ms = options_.dtls_retransmit_ms;
  o.handshake_timeout_ms = options_.handshake_timeout_ms;
  absl::StatusOr<std::unique_ptr<dtls::Endpoint>> e = dtls::Endpoint::Create(*b.certificate, o);
  if (!e.ok()) return e.status();
  b.endpoint = *std::move(e);
  b.answer = answer;
  return absl::OkStatus();
}

void BrowserFleet::Start(size_t i) {
  Browser& b = *browsers_[i];
  if (!b.answer || b.state != BrowserState::kIdle) return;
  b.state = BrowserState::kChecking;
  b.started = Clock::now();
  RandomFill(b.transaction);
  b.checks = 0;
  SendCheck(b, NowMs());
}

void BrowserFleet::CheckAgain(size_t i) {
  Browser& b = *browsers_[i];
  if (b.state == BrowserState::kIdle || b.state == BrowserState::kChecking) return;
  RandomFill(b.transaction);
  b.checks = 0;
  SendCheck(b, NowMs());
}

bool BrowserFleet::Send(size_t i, std::span<const uint8_t> payload) {
  const Browser& b = *browsers_[i];
  if (!b.answer) return false;
  const bool sent = sendto(b.fd, payload.data(), payload.size(), 0,
                           reinterpret_cast<const sockaddr*>(&b.answer->relay),
                           sizeof b.answer->relay) == static_cast<ssize_t>(payload.size());
  if (!sent) ++counters_.send_errors;
  return sent;
}

// RFC 8445 §7.2.2 (USERNAME "<Sluice's ufrag>:<ours>", PRIORITY,
// ICE-CONTROLLING, MESSAGE-INTEGRITY under Sluice's password), §8.1.1
// (USE-CANDIDATE: the controlling agent nominates), FINGERPRINT (§7); a
// retransmission keeps the transaction id (RFC 8489 §6.2.1).
void BrowserFleet::SendCheck(Browser& b, uint64_t now_ms) {
  ice::StunBuilder check(ice::kStunBindingMethod, ice::StunClass::kRequest, b.transaction);
  check.AddUsername(b.answer->ufrag + ":" + b.offer.ufrag)
      .AddPriority(kHostPriority)
      .AddIceControlling(b.tie_breaker)
      .AddUseCandidate()
      .AddMessageIntegrity(ice::StunKey(b.answer->pwd))
      .AddFingerprint();
  if (b.checks > 0) ++counters_.check_retransmissions;
  ++counters_.checks_sent;
  b.next_check_ms = now_ms + (uint64_t{options_.check_rto_ms} << std::min<uint32_t>(b.checks, 16));
  ++b.checks;
  Send(b.index, check.bytes());
}

void BrowserFleet::Flush(Browser& b) {
  for (const std::vector<uint8_t>& d : b.endpoint->TakeOutgoing()) {
    ++counters_.dtls_sent;
    Send(b.index, d);
  }
}

// A browser whose endpoint has just keyed or failed says so, once.
void BrowserFleet::Settle(Browser& b) {
  if (b.state == BrowserState::kKeyed || b.state == BrowserState::kFailed) return;
  if (b.endpoint->state() == dtls::State::kKeyed) {
    b.state = BrowserState::kKeyed;
    b.keyed = Clock::now();
    if (on_keyed) on_keyed(b.index);
  } else if (b.endpoint->state() == dtls::State::kFailed) {
    b.state = BrowserState::kFailed;
    b.failure = absl::StrCat("DTLS: ", b.endpoint->failure_reason());
  }
}

// The answer to our check: a success response to its transaction that
// authenticates under Sluice's password (RFC 8445 §7.2.5.2) starts DTLS.
void BrowserFleet::OnStun(Browser& b, std::span<const uint8_t> d, uint64_t now_ms) {
  const ice::StunParse p = ice::ParseStun(d);
  const bool ours = p.ok() && p.message.transaction_id == b.transaction &&
                    p.message.cls == ice::StunClass::kSuccessResponse &&
                    p.message.xor_mapped_address.has_value() &&
                    ice::VerifyStunIntegrity(d, p.message, ice::StunKey(b.answer->pwd));
  if (!ours) {
    ++counters_.responses_refused;
    return;
  }
  ++counters_.responses_ok;
  if (b.state != BrowserState::kChecking) return;  // a retransmission's or a consent check's
  b.state = BrowserState::kHandshaking;
  b.endpoint->Start(now_ms);  // the client's ClientHello; the server's deadline
  Flush(b);
  Settle(b);
}

void BrowserFleet::OnDtls(Browser& b, std::span<const uint8_t> d, uint64_t now_ms) {
  ++counters_.dtls_received;
  b.endpoint->Feed(d, now_ms);
  Flush(b);
  Settle(b);
}

// Everything waiting on browser i's socket, by first byte (RFC 7983).
void BrowserFleet::Receive(size_t i, uint64_t now_ms) {
  Browser& b = *browsers_[i];
  std::array<uint8_t, 4096> buf;
  for (;;) {
    const ssize_t n = recv(b.fd, buf.data(), buf.size(), 0);
    if (n <= 0) return;
    const std::span<const uint8_t> d(buf.data(), static_cast<size_t>(n));
    if (!b.answer) {
      ++counters_.other_received;
    } else if (d[0] <= 3) {
      OnStun(b, d, now_ms);
    } else if (d[0] >= 20 && d[0] <= 63) {
      OnDtls(b, d, now_ms);
    } else if (d[0] >= 128 && d[0] <= 191) {
      ++counters_.media_received;
      if (on_media) on_media(i, d);
    } else {
      ++counters_.other_received;
    }
  }
}

// A browser whose timer is due first reads what already waits for it: one
// thread plays them all, and a browser of its own would have read it by now.
void BrowserFleet::RunTimers(uint64_t now_ms) {
  for (const auto& p : browsers_) {
    Browser& b = *p;
    const std::optional<uint64_t> dtls_due =
        b.endpoint != nullptr && b.state != BrowserState::kIdle ? b.endpoint->NextTimeoutMs()
                                                                : std::nullopt;
    if ((b.state == BrowserState::kChecking && now_ms >= b.next_check_ms) ||
        (dtls_due && *dtls_due <= now_ms)) {
      Receive(b.index, now_ms);
    }
    if (b.state == BrowserState::kChecking && now_ms >= b.next_check_ms) {
      if (b.checks >= options_.max_checks) {
        b.state = BrowserState::kFailed;
        b.failure = absl::StrCat("no answer to ", b.checks, " connectivity checks");
      } else {
        SendCheck(b, now_ms);
      }
    }
    if (b.endpoint != nullptr && b.state != BrowserState::kIdle) {
      const std::optional<uint64_t> due = b.endpoint->NextTimeoutMs();
      if (due && *due <= now_ms) {
        b.endpoint->OnTimer(now_ms);
        Flush(b);
        Settle(b);
      }
    }
  }
}

// Milliseconds until the earliest timer, at most `cap`.
int BrowserFleet::NextTimerMs(uint64_t now_ms, int cap) const {
  uint64_t next = now_ms + static_cast<uint64_t>(std::max(cap, 0));
  for (const auto& p : browsers_) {
    const Browser& b = *p;
    if (b.state == BrowserState::kChecking) next = std::min(next, b.next_check_ms);
    if (b.endpoint != nullptr && b.state != BrowserState::kIdle) {
      if (auto due = b.endpoint->NextTimeoutMs()) next = std::min(next, *due);
    }
  }
  return next > now_ms ? static_cast<int>(std::min<uint64_t>(next - now_ms, INT_MAX)) : 0;
}

void BrowserFleet::Poll(int timeout_ms) {
  std::array<epoll_event, 256> events;
  const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                           NextTimerMs(NowMs(), timeout_ms));
  const uint64_t now_ms = NowMs();
  for (int k = 0; k < n; ++k) Receive(static_cast<size_t>(events[k].data.u64), now_ms);
  RunTimers(NowMs());
}

std::optional<dtls::SrtpKeys> BrowserFleet::TakeKeys(size_t i) {
  Browser& b = *browsers_[i];
  return b.endpoint != nullptr ? b.endpoint->TakeKeys() : std::nullopt;
}

BrowserState BrowserFleet::state(size_t i) const { return browsers_[i]->state; }
const std::string& BrowserFleet::failure(size_t i) const { return browsers_[i]->failure; }
std::optional<BrowserFleet::Clock::time_point> BrowserFleet::started(size_t i) const {
  return browsers_[i]->started;
}
std::optional<BrowserFleet::Clock::time_point> BrowserFleet::keyed_at(size_t i) const {
  return browsers_[i]->keyed;
}

size_t BrowserFleet::Count(BrowserState state) const {
  return static_cast<size_t>(std::count_if(browsers_.begin(), browsers_.end(),
                                           [&](const auto& b) { return b->state == state; }));
}

BrowserCounters BrowserFleet::counters() const {
  BrowserCounters c = counters_;
  for (const auto& b : browsers_) {
    if (b->endpoint != nullptr) c.dtls_retransmissions += b->endpoint->counters().retransmissions;
  }
  return c;
}

}  // namespace sluice::testing
