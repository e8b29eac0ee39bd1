// One leg's DTLS-SRTP handshake (RFC 5763, RFC 5764): DTLS 1.2 through
// OpenSSL, driven by its caller with datagrams and a clock, no sockets. It
// yields the leg's SRTP send and receive master keys once, or says why not.
//
// Handshake thread only (not thread-safe; one object per leg). Keys are
// never logged; the exported keying material is wiped once handed over, and
// the OpenSSL session (with its master secret, which SSL_free cleanses) is
// freed at keying, in both roles.
//
// The server's last flight (RFC 6347 §4.2.4): the server sends it, and if
// it is lost the client retransmits its own last flight, which the server
// must answer. So a keyed server keeps the datagrams of its last flight (a
// ChangeCipherSpec and a Finished already encrypted: nothing secret, a few
// hundred bytes) for linger_ms, and answers each datagram that carries a
// record of a later epoch than 0 (the client's retransmitted Finished, the
// last message of its flight, as OpenSSL answers it) by sending them again,
// at most kMaxFinalFlightResends times. ReleaseSession ends that early. A
// resent flight is the same bytes: the client's replay window drops it
// should the first copy arrive after all.
//
// What it guarantees:
//  - Keys only after the peer's certificate matched one of the SDP
//    fingerprints (RFC 8122 §5; any chain is accepted, self-signed included,
//    since the fingerprint is what authenticates) and a profile both sides
//    offered was agreed; otherwise kFailed with the reason.
//  - Bad input is a counted drop or a clear failure, never a crash: datagrams
//    that are not DTLS (RFC 7983: first byte 20 to 63) or longer than
//    kMaxDatagramLen are dropped before OpenSSL sees them; OpenSSL discards
//    bad records (RFC 6347 §4.1.2.7). Memory is bounded: one datagram is
//    held at a time, OpenSSL buffers at most ten handshake messages of at
//    most kMaxHandshakeMessageLen and the records of at most
//    kMaxEarlyEpochDatagrams, and at most kMaxQueuedDatagrams wait in the
//    outgoing queue (about 350 KB in all, under any flood).
//  - No cookie exchange (HelloVerifyRequest): RFC 6347 §4.2.1 lets a server
//    skip it where amplification is not a threat, and a WebRTC leg reaches
//    the handshake only from an address that passed ICE connectivity checks
//    (RFC 8445, consent per RFC 7675).
//  - No global state: endpoints share only their Certificate's OpenSSL
//    context and one BIO method, both read-only. A re-key is a new Endpoint
//    for the same leg (new fingerprints) beside the old one; the control
//    plane swaps them.
//  - No renegotiation, resumption or session tickets; DTLS 1.2 only, ECDHE
//    with AES-GCM or ChaCha20-Poly1305.
//
// Clocks: now_ms is any monotonic clock in milliseconds (the handshake
// thread's). It drives the handshake deadline and the linger. Retransmission
// timers are OpenSSL's (OpenSSL 3.0 measures them with gettimeofday and has
// no way to inject a clock): their durations come from this endpoint (RFC
// 6347 §4.2.4.1: initial_retransmit_ms, doubling, at most 60 s) and
// NextTimeoutMs() reports when the next one falls, on the caller's clock.
#ifndef SLUICE_DTLS_ENDPOINT_H_
#define SLUICE_DTLS_ENDPOINT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/fingerprint.h"
#include "sluice/dtls/setup_role.h"
#include "sluice/dtls/srtp_profile.h"
#include "sluice/srtp/master_key.h"

namespace sluice::dtls {

inline constexpr size_t kMaxDatagramLen = 16384;
inline constexpr size_t kMaxQueuedDatagrams = 64;
inline constexpr size_t kMaxHandshakeMessageLen = 16384;
// Before keying, datagrams holding whole records of a later epoch than 0
// that reach OpenSSL. A peer sends one per transmission of its last flight
// (its Finished); OpenSSL would buffer up to 100 such records, each with a
// 16 KiB read buffer, until the ChangeCipherSpec. Forged ones beyond the
// budget stall the handshake until its deadline, as a forged fatal
// handshake message would fail it: on a path ICE has validated.
inline constexpr uint32_t kMaxEarlyEpochDatagrams = 8;
inline constexpr uint32_t kMinMtu = 256;   // OpenSSL's smallest DTLS MTU
// OpenSSL packs a flight's records through a 4 KiB buffer; larger datagrams
// could split a record.
inline constexpr uint32_t kMaxMtu = 4096;
// OpenSSL counts a timer with less than 15 ms left as expired.
inline constexpr uint32_t kMinInitialRetransmitMs = 50;
// A keyed server answers at most this many retransmissions of the client's
// last flight (RFC 6347's timers send five in 32 s).
inline constexpr uint32_t kMaxFinalFlightResends = 8;

struct EndpointOptions {
  Role role = Role::kServer;
  // From the peer's SDP (a=fingerprint); at least one.
  std::vector<Fingerprint> peer_fingerprints;
  // Offered (client) or accepted (server) in this order of preference; at
  // least one, no repeats.
  std::vector<SrtpProfile> profiles = {SrtpProfile::kAes128CmSha1_80,
                                       SrtpProfile::kAes128CmSha1_32,
                                       SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAeadAes256Gcm};
  // Largest datagram the endpoint sends (UDP payload bytes, the path MTU
  // less IP and UDP headers): handshake messages are fragmented to fit.
  uint32_t mtu = 1200;
  // From Start(): not keyed by then → kFailed, "handshake deadline passed".
  uint32_t handshake_timeout_ms = 20000;
  // RFC 6347 §4.2.4.1 recommends 1 s.
  uint32_t initial_retransmit_ms = 1000;
  // The server sends the last flight; if it is lost, the client retransmits
  // its own, and RFC 6347 §4.2.4 wants the server to answer it. So the
  // server keeps its last flight's datagrams this long after keying
  // (covering the client's retransmissions at 1, 3, 7, 15 and 31 s with
  // RFC 6347's timers), or until ReleaseSession().
  uint32_t linger_ms = 32000;
};

enum class State : uint8_t {
  kNew,          // created, or started as a server with no ClientHello yet
  kHandshaking,  // a flight sent or received
  kKeyed,        // keys exported (TakeKeys hands them over once)
  kFailed,       // no keys, ever; failure_reason() says why
};
absl::string_view StateName(State state) noexcept;

// Why a handshake failed; failure_reason() adds details.
enum class Failure : uint8_t {
  kNone,
  kFingerprintMismatch,  // "fingerprint mismatch"
  kNoCommonProfile,      // "no common SRTP profile"
  kDeadlinePassed,       // "handshake deadline passed"
  kAlertReceived,        // "alert received: <description>"
  kRetransmissionLimit,  // OpenSSL gave up after 12 retransmissions
  kProtocolError,        // "protocol error: <OpenSSL's reason>"
  kInternal,             // out of memory, key export failed
};

struct EndpointCounters {
  uint64_t datagrams_received = 0;  // every Feed
  uint64_t datagrams_sent = 0;      // handed out by TakeOutgoing
  uint64_t retransmissions = 0;     // flights resent on a timer
  uint64_t alerts_received = 0;
  uint64_t dropped_not_dtls = 0;    // empty, first byte outside 20..63, shorter than a header
  uint64_t dropped_oversize = 0;    // longer than kMaxDatagramLen
  uint64_t dropped_early_epoch = 0; // beyond kMaxEarlyEpochDatagrams
  uint64_t dropped_no_session = 0;  // arrived after failure or keying, and not answered
  uint64_t final_flight_resends = 0;  // keyed server: its last flight sent again
  uint64_t dropped_queue_full = 0;  // outgoing datagrams beyond kMaxQueuedDatagrams
};

// The leg's SRTP master keys from the exporter (RFC 5764 §4.2): `send`
// protects what Sluice sends to the peer, `receive` unprotects what the peer
// sends. No MKI; lifetime 0 (the suite's maximum). Both wipe themselves.
struct SrtpKeys {
  SrtpProfile profile = SrtpProfile::kAes128CmSha1_80;
  srtp::MasterKey send;
  srtp::MasterKey receive;
};

class Endpoint {
 public:
  // Errors: kInvalidArgument for options out of range (no fingerprint, no
  // profile or a repeated one, mtu outside kMinMtu..kMaxMtu,
  // initial_retransmit_ms below kMinInitialRetransmitMs), kInternal when
  // OpenSSL cannot make the session.
  static absl::StatusOr<std::unique_ptr<Endpoint>> Create(const Certificate& certificate,
                                                          const EndpointOptions& options);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Starts the deadline; a client sends its ClientHello (see TakeOutgoing).
  // Feed before Start starts implicitly.
  void Start(uint64_t now_ms);
  // One received UDP payload, whole.
  void Feed(std::span<const uint8_t> datagram, uint64_t now_ms);
  // Datagrams to send to the peer, in order, each at most options.mtu bytes.
  std::vector<std::vector<uint8_t>> TakeOutgoing();
  // When OnTimer wants to run next (retransmission, deadline or end of the
  // linger), on the caller's clock; nullopt when nothing is pending.
  std::optional<uint64_t> NextTimeoutMs() const { return next_timeout_ms_; }
  void OnTimer(uint64_t now_ms);

  // The keys, once, in kKeyed; afterwards (or before) nullopt. The
  // endpoint's copy is wiped.
  std::optional<SrtpKeys> TakeKeys();
  // Ends a keyed server's linger now: its last flight is needed no longer
  // (the peer has shown it holds the keys, or the leg goes).
  void ReleaseSession();
  // Whether the OpenSSL session (and so the DTLS master secret) still
  // exists: until keying or failure.
  bool has_session() const;
  // Whether retransmissions of the peer's last flight are still answered:
  // a handshake under way, or a keyed server within its linger.
  bool lingering() const { return session_ != nullptr || !final_flight_.empty(); }

  State state() const { return state_; }
  Failure failure() const { return failure_; }
  const std::string& failure_reason() const { return failure_reason_; }
  // The negotiated profile, from kKeyed on.
  std::optional<SrtpProfile> profile() const { return profile_; }
  Role role() const { return role_; }
  const EndpointCounters& counters() const { return counters_; }

  struct Session;  // the OpenSSL objects; defined and used in endpoint.cc only

 private:
  Endpoint(Role role, uint64_t linger_ms, uint64_t timeout_ms);
  void Drive(uint64_t now_ms);
  void Complete(uint64_t now_ms, size_t flight_start);
  void AnswerRetransmission(std::span<const uint8_t> datagram);
  void EndLinger();
  void FailFromOpenSsl(int ssl_error);
  void Fail(Failure failure, std::string reason);
  void FreeSession();
  void UpdateNextTimeout(uint64_t now_ms);

  std::unique_ptr<Session> session_;
  Role role_;
  State state_ = State::kNew;
  Failure failure_ = Failure::kNone;
  std::string failure_reason_;
  std::optional<SrtpProfile> profile_;
  std::optional<SrtpKeys> keys_;
  std::vector<std::vector<uint8_t>> outgoing_;
  // Keyed server: its last flight, for the client's retransmissions.
  std::vector<std::vector<uint8_t>> final_flight_;
  uint32_t final_flight_resends_ = 0;
  bool started_ = false;
  uint32_t early_epoch_datagrams_ = 0;
  uint64_t linger_ms_;
  uint64_t timeout_ms_;
  uint64_t deadline_ms_ = 0;
  std::optional<uint64_t> linger_end_ms_;
  std::optional<uint64_t> next_timeout_ms_;
  EndpointCounters counters_;
};

}  // namespace sluice::dtls

#endif  // SLUICE_DTLS_ENDPOINT_H_
