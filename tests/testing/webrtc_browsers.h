// Simulated WebRTC browsers, for load and hostile-input tests of sluiced's
// WebRTC legs: each is one UDP socket, the connectivity check of a
// controlling ICE agent that nominates (RFC 8445 §7.2.2, §8.1.1:
// USE-CANDIDATE), built with Sluice's ice library, and a dtls::Endpoint as
// its DTLS-SRTP peer under a certificate of its own. Many run at once from
// one thread on one epoll set; nothing in them waits.
//
// One thread at a time (the caller's). The fleet owns the sockets it is
// given; ICE passwords are wiped when freed (ice::SecretString), DTLS keys
// by srtp::MasterKey.
#ifndef SLUICE_TESTS_TESTING_WEBRTC_BROWSERS_H_
#define SLUICE_TESTS_TESTING_WEBRTC_BROWSERS_H_

#include <netinet/in.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/ice/credentials.h"

namespace sluice::testing {

// What a browser offers: its leg's "dtls" and "ice" in session.create.
struct BrowserOffer {
  std::string setup;        // "active" (it is the DTLS client) or "actpass" (Sluice is)
  std::string fingerprint;  // its certificate's, "sha-256 AB:..."
  std::string ufrag;        // its ICE credentials
  ice::SecretString pwd;
};

// What Sluice answers, from a session.create reply's leg.
struct BrowserAnswer {
  sockaddr_in relay{};      // the leg's local address (IPv4)
  std::string ufrag;        // Sluice's ICE credentials
  ice::SecretString pwd;
  std::string fingerprint;  // Sluice's certificate
};

// The session.create leg of a browser: rtcp-mux, its dtls and ice, no remote
// (ICE selects it).
nlohmann::json BrowserLeg(const std::string& name, const std::string& interface,
                          const BrowserOffer& offer);
// Sluice's answer from a reply's leg; InvalidArgument when a field is missing.
absl::StatusOr<BrowserAnswer> AnswerFromLeg(const nlohmann::json& leg);

enum class BrowserState : uint8_t {
  kIdle,         // added, not started
  kChecking,     // its check sent, not answered yet
  kHandshaking,  // the check answered (Sluice selected it); DTLS under way
  kKeyed,        // its endpoint holds the SRTP keys
  kFailed,       // no check answered, or DTLS failed: failure() says why
};

struct BrowserOptions {
  // RFC 8489 §6.2.1: the check is sent again after rto_ms, doubling, Rc
  // times in all; unanswered after that, the browser has failed.
  uint32_t check_rto_ms = 250;
  uint32_t max_checks = 7;
  uint32_t dtls_retransmit_ms = 1000;  // RFC 6347 §4.2.4.1
  uint32_t handshake_timeout_ms = 60000;
};

// Summed over the fleet.
struct BrowserCounters {
  uint64_t checks_sent = 0;           // first transmissions and retransmissions
  uint64_t check_retransmissions = 0;
  uint64_t responses_ok = 0;          // success responses to our checks that authenticate
  uint64_t responses_refused = 0;     // wrong transaction, no or bad integrity, an error response
  uint64_t dtls_received = 0;
  uint64_t dtls_sent = 0;
  uint64_t dtls_retransmissions = 0;  // flights the browsers' endpoints sent again
  uint64_t media_received = 0;        // RTP or RTCP from Sluice
  uint64_t other_received = 0;        // none of STUN, DTLS, RTP (RFC 7983)
  uint64_t send_errors = 0;           // sendto failed (the datagram did not leave)
};

class BrowserFleet {
 public:
  using Clock = std::chrono::steady_clock;

  static absl::StatusOr<std::unique_ptr<BrowserFleet>> Create(BrowserOptions options = {});
  ~BrowserFleet();
  BrowserFleet(const BrowserFleet&) = delete;
  BrowserFleet& operator=(const BrowserFleet&) = delete;

  // A browser on `fd` (a bound UDP socket; the fleet makes it non-blocking
  // and closes it), with a new certificate and ICE credentials: the DTLS
  // client when `dtls_client`, else the server. Returns its index.
  absl::StatusOr<size_t> Add(int fd, bool dtls_client);
  const BrowserOffer& offer(size_t i) const;
  // Sluice's answer; the browser's endpoint expects Sluice's fingerprint.
  absl::Status SetAnswer(size_t i, const BrowserAnswer& answer);

  // Sends the browser's first check now (once it has an answer).
  void Start(size_t i);
  // Once checked: another nominating check on the selected pair, a new
  // transaction (as a consent check, RFC 7675 §5.1); its answer is counted
  // in responses_ok.
  void CheckAgain(size_t i);
  // Waits up to timeout_ms for datagrams (less when a timer is due sooner),
  // handles what arrived, and runs due timers.
  void Poll(int timeout_ms);

  // Called from Poll when browser i keys, and for every RTP/RTCP datagram
  // browser i receives (SRTP from Sluice).
  std::function<void(size_t)> on_keyed;
  std::function<void(size_t, std::span<const uint8_t>)> on_media;

  // One datagram from browser i's socket to its leg (media, or anything a
  // hostile test wants to send from a selected address).
  bool Send(size_t i, std::span<const uint8_t> payload);
  // Browser i's SRTP keys (`send` protects what it sends), once, when keyed.
  std::optional<dtls::SrtpKeys> TakeKeys(size_t i);

  size_t size() const { return browsers_.size(); }
  BrowserState state(size_t i) const;
  const std::string& failure(size_t i) const;
  // When its first check went out, and when it keyed (unset before).
  std::optional<Clock::time_point> started(size_t i) const;
  std::optional<Clock::time_point> keyed_at(size_t i) const;
  size_t Count(BrowserState state) const;
  // Counters, the endpoints' retransmissions included.
  BrowserCounters counters() const;

  struct Browser;  // defined in webrtc_browsers.cc

 private:
  BrowserFleet(BrowserOptions options, int epoll_fd);
  void Receive(size_t i, uint64_t now_ms);
  void OnStun(Browser& b, std::span<const uint8_t> d, uint64_t now_ms);
  void OnDtls(Browser& b, std::span<const uint8_t> d, uint64_t now_ms);
  void SendCheck(Browser& b, uint64_t now_ms);
  void Flush(Browser& b);
  void Settle(Browser& b);
  void RunTimers(uint64_t now_ms);
  int NextTimerMs(uint64_t now_ms, int cap) const;

  BrowserOptions options_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<Browser>> browsers_;
  BrowserCounters counters_;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_WEBRTC_BROWSERS_H_
