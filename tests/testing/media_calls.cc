#include "media_calls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "session_requests.h"
#include "sluice/srtp/sdes.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kSuite[] = "AES_CM_128_HMAC_SHA1_80";
constexpr size_t kPayload = 160;            // G.711, 20 ms
constexpr uint32_t kSsrcBase = 0x5e000000;
constexpr uint32_t kMaxIndex = 1u << 24;    // packets per call the receiver tracks

void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

sockaddr_in Ipv4(const std::string& ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// RTP packet `index` of call `call`: the payload opens with both, so the
// receiver knows it whatever port or SSRC it comes with.
std::vector<uint8_t> Packet(uint32_t call, uint32_t index) {
  std::vector<uint8_t> p(12 + kPayload, 0);
  p[0] = 0x80;
  p[2] = static_cast<uint8_t>(index >> 8);
  p[3] = static_cast<uint8_t>(index);
  Store32(&p[4], index * 160);
  Store32(&p[8], kSsrcBase + call);
  Store32(&p[12], call);
  Store32(&p[16], index);
  return p;
}

absl::StatusOr<int> BoundSocket(Topology& topo, const std::string& ns, const std::string& ip,
                                uint16_t port) {
  absl::StatusOr<int> fd = topo.Socket(ns, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) return fd.status();
  const sockaddr_in a = Ipv4(ip, port);
  if (bind(*fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    close(*fd);
    return absl::InternalError(absl::StrCat("bind ", ip, ":", port, ": ", strerror(err)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MediaCalls>> MediaCalls::Create(control::Client& control,
                                                               Topology& topo,
                                                               const MediaCallsOptions& options) {
  LibsrtpPeer::Init();
  std::unique_ptr<MediaCalls> m(new MediaCalls(options));
  absl::StatusOr<int> rx = BoundSocket(topo, options.ns_b, options.ip_b, options.port_b);
  if (!rx.ok()) return rx.status();
  m->receiver_fd_ = *rx;
  const int bytes = 8 << 20;  // room for the whole drain
  setsockopt(m->receiver_fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  for (size_t i = 0; i < options.calls; ++i) {
    if (absl::Status s = m->CreateCall(control, topo, i); !s.ok()) return s;
  }
  return m;
}

// Session i: leg a SRTP with a fresh receive key (Sluice generates its send
// key), leg b plain toward the receiving phone.
absl::Status MediaCalls::CreateCall(control::Client& control, Topology& topo, size_t i) {
  auto call = std::make_unique<Call>();
  call->session = absl::StrCat(options_.session_prefix, i);
  std::string raw(30, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  std::string sdes = absl::StrCat(kSuite, " inline:", absl::Base64Escape(raw));
  OPENSSL_cleanse(raw.data(), raw.size());
  const uint16_t port_a = static_cast<uint16_t>(options_.first_port_a + i);
  json leg_a = {{"name", "a"}, {"interface", options_.interface_a}, {"rtcp", "mux"},
                {"remote", absl::StrCat(options_.ip_a, ":", port_a)},
                {"rx", {{"crypto", sdes}}}, {"tx", {{"suite", kSuite}}}};
  absl::StatusOr<json> j = CreateSession(
      control, call->session, leg_a,
      {{"name", "b"}, {"interface", options_.interface_b}, {"rtcp", "mux"},
       {"remote", absl::StrCat(options_.ip_b, ":", options_.port_b)},
       {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}});
  std::string& in_leg = leg_a["rx"]["crypto"].get_ref<std::string&>();
  OPENSSL_cleanse(in_leg.data(), in_leg.size());
  if (!j.ok()) {
    OPENSSL_cleanse(sdes.data(), sdes.size());
    return j.status();
  }
  if ((*j)["legs"][0].contains("tx")) {  // the key Sluice generated: not needed here
    std::string& tx = (*j)["legs"][0]["tx"]["crypto"].get_ref<std::string&>();
    OPENSSL_cleanse(tx.data(), tx.size());
  }
  absl::StatusOr<srtp::SdesCrypto> key = srtp::ParseSdesCrypto(sdes);
  OPENSSL_cleanse(sdes.data(), sdes.size());
  if (!key.ok()) return key.status();
  absl::StatusOr<std::unique_ptr<LibsrtpPeer>> peer =
      LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&key->key, 1}, {});
  if (!peer.ok()) return peer.status();
  call->srtp = *std::move(peer);
  absl::StatusOr<int> fd = BoundSocket(topo, options_.ns_a, options_.ip_a, port_a);
  if (!fd.ok()) return fd.status();
  call->fd = *fd;
  absl::StatusOr<sockaddr_in> relay = LocalAddress((*j)["legs"][0]);
  if (!relay.ok()) return relay.status();
  if (connect(call->fd, reinterpret_cast<const sockaddr*>(&*relay), sizeof *relay) != 0) {
    return absl::InternalError(absl::StrCat("connect to leg a: ", strerror(errno)));
  }
  sessions_.push_back(call->session);
  calls_.push_back(std::move(call));
  return absl::OkStatus();
}

MediaCalls::~MediaCalls() {
  sending_.store(false);
  if (sender_.joinable()) sender_.join();
  receiving_.store(false);
  if (receiver_.joinable()) receiver_.join();
  for (const auto& c : calls_) {
    if (c->fd >= 0) close(c->fd);
  }
  if (receiver_fd_ >= 0) close(receiver_fd_);
}

// Every call's packets as they fall due (pps per call), checked every
// millisecond.
void MediaCalls::SendLoop() {
  const Clock::time_point start = Clock::now();
  while (sending_.load(std::memory_order_relaxed)) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const auto due = static_cast<uint32_t>(elapsed * options_.pps);
    for (size_t i = 0; i < calls_.size(); ++i) {
      Call& c = *calls_[i];
      for (uint32_t index = c.next.load(); index < due && index < kMaxIndex; ++index) {
        std::vector<uint8_t> p = Packet(static_cast<uint32_t>(i), index);
        if (c.srtp->ProtectRtp(p) != srtp_err_status_ok ||
            send(c.fd, p.data(), p.size(), 0) != static_cast<ssize_t>(p.size())) {
          c.send_errors.fetch_add(1, std::memory_order_relaxed);
        }
        c.next.store(index + 1, std::memory_order_release);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void MediaCalls::ReceiveLoop() {
  std::array<uint8_t, 2048> buf;
  while (receiving_.load(std::memory_order_relaxed)) {
    pollfd pfd = {receiver_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 20) != 1) continue;
    for (;;) {
      const ssize_t n = recv(receiver_fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      if (n != static_cast<ssize_t>(12 + kPayload)) continue;
      const uint32_t call = Load32(&buf[12]);
      const uint32_t index = Load32(&buf[16]);
      if (call >= calls_.size() || index >= kMaxIndex) continue;
      Call& c = *calls_[call];
      if (c.seen.size() <= index) c.seen.resize(std::max<size_t>(index + 1, c.seen.size() * 2));
      c.seen[index] = 1;
      c.arrived.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

absl::Status MediaCalls::Start(int timeout_ms) {
  receiving_.store(true);
  receiver_ = std::thread([this] { ReceiveLoop(); });
  sending_.store(true);
  sender_ = std::thread([this] { SendLoop(); });
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t flowing = 0;
  while (Clock::now() < deadline) {
    flowing = static_cast<size_t>(std::count_if(
        calls_.begin(), calls_.end(), [](const auto& c) { return c->arrived.load() > 0; }));
    if (flowing == calls_.size()) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("media flows on ", flowing, " of ",
                                                  calls_.size(), " calls after ", timeout_ms,
                                                  " ms"));
}

std::optional<std::pair<uint64_t, uint64_t>> MediaCalls::Counters(
    control::Client& control) const {
  std::pair<uint64_t, uint64_t> sum{0, 0};
  for (const std::string& s : sessions_) {
    absl::StatusOr<std::string> reply = control.Call(
        absl::StrCat("{\"id\":0,\"op\":\"session.get\",\"session\":", json(s).dump(), "}"));
    if (!reply.ok()) return std::nullopt;
    const json j = json::parse(*reply, nullptr, false);
    if (j.is_discarded() || !j.value("ok", false)) return std::nullopt;
    sum.first += j["legs"][0]["counters"].value("rx_packets", uint64_t{0});
    sum.second += j["legs"][1]["counters"].value("tx_packets", uint64_t{0});
  }
  return sum;
}

void MediaCalls::Mark(control::Client* control) {
  if (control != nullptr) mark_counters_ = Counters(*control);
  for (const auto& c : calls_) {
    c->mark.store(c->next.load(std::memory_order_acquire));
    c->send_errors.store(0);
  }
  mark_time_ = Clock::now();
}

MediaCallsResult MediaCalls::Stop(int drain_ms, control::Client* control) {
  MediaCallsResult r;
  sending_.store(false);
  if (sender_.joinable()) sender_.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - mark_time_).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(drain_ms));
  receiving_.store(false);
  if (receiver_.joinable()) receiver_.join();
  for (const auto& c : calls_) {
    uint64_t lost = 0;
    for (uint32_t index = c->mark.load(); index < c->next.load(); ++index) {
      ++r.sent;
      if (index < c->seen.size() && c->seen[index] != 0) {
        ++r.received;
      } else {
        ++lost;
      }
    }
    r.send_errors += c->send_errors.load();
    r.lost += lost;
    if (lost > 0) ++r.calls_with_loss;
  }
  // A packet sendto refused never left: not the relay's loss.
  r.lost -= std::min(r.lost, r.send_errors);
  r.sent -= std::min(r.sent, r.send_errors);
  if (control != nullptr && mark_counters_) {
    if (auto now = Counters(*control)) {
      r.sluiced_received = now->first - mark_counters_->first;
      r.sluiced_relayed = now->second - mark_counters_->second;
    }
  }
  return r;
}

absl::Status MediaCalls::Delete(control::Client& control) {
  return DeleteSessions(control, sessions_);
}

}  // namespace sluice::testing
