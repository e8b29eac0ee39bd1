#include "sluice/dtls/endpoint.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "certificate_state.h"

namespace sluice::dtls {

// What OpenSSL holds for one endpoint, and what its callbacks tell it.
struct Endpoint::Session {
  explicit Session(Endpoint* owner_in) : owner(owner_in) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { SSL_free(ssl); }  // SSL_free cleanses the master secret

  // The datagram BIO's two ends.
  int Read(char* out, int len);
  void Write(const char* data, int len);

  // Set by the callbacks, read when OpenSSL reports the failure.
  void Note(Failure failure, std::string reason) {
    if (noted == Failure::kNone) {
      noted = failure;
      noted_reason = std::move(reason);
    }
  }
  void OnAlert(int alert) {
    ++owner->counters_.alerts_received;
    last_alert = alert;
  }
  bool CheckPeer(X509* leaf);

  Endpoint* owner;
  SSL* ssl = nullptr;
  std::span<const uint8_t> pending;  // the datagram Feed is handing over
  std::vector<Fingerprint> peer_fingerprints;
  std::vector<SrtpProfile> profiles;
  unsigned int initial_retransmit_us = 1000000;
  bool fingerprint_checked = false;
  bool fingerprint_ok = false;
  Failure noted = Failure::kNone;
  std::string noted_reason;
  int last_alert = -1;  // (level << 8) | description, from the info callback
};

namespace {

using Session = Endpoint::Session;

constexpr size_t kDtlsRecordHeaderLen = 13;  // RFC 6347 §4.1
constexpr unsigned int kMaxRetransmitUs = 60'000'000;  // RFC 6347 §4.2.4.1
constexpr char kExporterLabel[] = "EXTRACTOR-dtls_srtp";  // RFC 5764 §4.2
constexpr size_t kMaxKeyMaterial = 2 * (32 + 14);
// TLS 1.2 only, ECDHE (forward secrecy) with an AEAD cipher; every WebRTC
// stack offers ECDHE-ECDSA-AES128-GCM-SHA256.
constexpr char kCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kGroups[] = "X25519:P-256:P-384";

Session* SessionOf(const SSL* ssl) { return static_cast<Session*>(SSL_get_app_data(ssl)); }

// --- The datagram BIO: each write is one datagram, each read one datagram.

int BioWrite(BIO* bio, const char* data, int len) {
  static_cast<Session*>(BIO_get_data(bio))->Write(data, len);
  return len;
}

int BioRead(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  const int n = static_cast<Session*>(BIO_get_data(bio))->Read(out, len);
  if (n <= 0) BIO_set_retry_read(bio);
  return n > 0 ? n : -1;
}

// Flushing succeeds (every write is already a datagram); nothing is pending;
// the MTU given is the UDP payload, so no overhead is added; the rest (peer
// addresses, socket timeouts) means nothing here.
long BioCtrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* DatagramBioMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice dtls");
    if (m == nullptr || BIO_meth_set_write(m, BioWrite) != 1 ||
        BIO_meth_set_read(m, BioRead) != 1 || BIO_meth_set_ctrl(m, BioCtrl) != 1 ||
        BIO_meth_set_create(m, BioCreate) != 1) {
      BIO_meth_free(m);
      return static_cast<BIO_METHOD*>(nullptr);
    }
    return m;
  }();
  return method;
}

// --- Callbacks.

// RFC 6347 §4.2.4.1: initial timer, doubled on every expiry, 60 s at most.
unsigned int TimerCallback(SSL* ssl, unsigned int previous_us) {
  const Session* s = SessionOf(ssl);
  if (previous_us == 0) return s->initial_retransmit_us;
  return std::min(previous_us * 2, kMaxRetransmitUs);
}

// The fingerprint, not a chain to a CA, authenticates the peer (RFC 5763
// §5): every chain error is ignored, and the leaf decides.
int VerifyCallback(int /*preverify_ok*/, X509_STORE_CTX* store) {
  const SSL* ssl = static_cast<const SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  Session* s = SessionOf(ssl);
  if (!s->fingerprint_checked) {
    s->fingerprint_checked = true;
    s->fingerprint_ok = s->CheckPeer(X509_STORE_CTX_get0_cert(store));
  }
  if (!s->fingerprint_ok) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);  // bad_certificate alert
    return 0;
  }
  // The client sees the ServerHello before the certificate: a server that
  // chose no profile (RFC 5764 §4.1.1) is refused here, before any key.
  if (!SSL_is_server(ssl) && SSL_get_selected_srtp_profile(const_cast<SSL*>(ssl)) == nullptr) {
    s->Note(Failure::kNoCommonProfile, "no common SRTP profile: the server chose none");
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);  // handshake_failure
    return 0;
  }
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return 1;
}

// RFC 5764 §4.1.1: UseSRTPData = profiles<2..2^16-1> (2 bytes each), then
// srtp_mki<0..255>.
bool OffersAny(const unsigned char* data, size_t len, const std::vector<SrtpProfile>& ours) {
  if (len < 2) return false;
  const size_t list_len = static_cast<size_t>(data[0]) << 8 | data[1];
  if (list_len % 2 != 0 || list_len + 2 > len) return false;
  bool any = false;
  for (size_t i = 0; i < list_len; i += 2) {
    const uint16_t id = static_cast<uint16_t>(data[2 + i] << 8 | data[3 + i]);
    const std::optional<SrtpProfile> p = SrtpProfileFromId(id);
    any |= p && std::find(ours.begin(), ours.end(), *p) != ours.end();
  }
  return any;
}

// The server refuses a ClientHello without a profile it accepts with a
// handshake_failure alert, instead of going on without SRTP.
int ClientHelloCallback(SSL* ssl, int* alert, void* /*arg*/) {
  Session* s = SessionOf(ssl);
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_use_srtp, &ext, &len) != 1 ||
      !OffersAny(ext, len, s->profiles)) {
    s->Note(Failure::kNoCommonProfile,
            "no common SRTP profile: the ClientHello offers none this endpoint accepts");
    *alert = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

void InfoCallback(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_READ_ALERT) != 0) SessionOf(ssl)->OnAlert(ret);
}

// One context per certificate, built on first use.
SSL_CTX* BuildContext(const internal::CertificateState& cert) {
  SSL_CTX* ctx = SSL_CTX_new(DTLS_method());
  if (ctx == nullptr) return nullptr;
  const bool ok =
      SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) == 1 &&
      SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) == 1 &&
      SSL_CTX_set_cipher_list(ctx, kCiphers) == 1 && SSL_CTX_set1_groups_list(ctx, kGroups) == 1 &&
      SSL_CTX_use_certificate(ctx, cert.x509) == 1 && SSL_CTX_use_PrivateKey(ctx, cert.key) == 1;
  if (!ok) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_QUERY_MTU | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // No session outlives its SSL: nothing keeps a master secret after SSL_free.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_max_cert_list(ctx, kMaxHandshakeMessageLen);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, VerifyCallback);
  SSL_CTX_set_client_hello_cb(ctx, ClientHelloCallback, nullptr);
  SSL_CTX_set_info_callback(ctx, InfoCallback);
  return ctx;
}

SSL_CTX* ContextFor(const internal::CertificateState& cert) {
  std::call_once(cert.ctx_once, [&cert] { cert.ctx = BuildContext(cert); });
  ERR_clear_error();
  return cert.ctx;
}

// Whether the datagram holds a whole record (RFC 6347 §4.1: epoch at bytes
// 3-4, length at 11-12 of each 13-byte header) of an epoch after 0; OpenSSL
// discards a cut record without buffering it.
bool HasLaterEpochRecord(std::span<const uint8_t> datagram) {
  size_t at = 0;
  while (at + kDtlsRecordHeaderLen <= datagram.size()) {
    const size_t end =
        at + kDtlsRecordHeaderLen + (static_cast<size_t>(datagram[at + 11]) << 8 | datagram[at + 12]);
    if (end > datagram.size()) return false;
    if ((datagram[at + 3] | datagram[at + 4]) != 0) return true;
    at = end;
  }
  return false;
}

std::string ProfileList(const std::vector<SrtpProfile>& profiles) {
  std::string list;
  for (SrtpProfile p : profiles) {
    if (!list.empty()) list.push_back(':');
    const absl::string_view name = GetSrtpProfileInfo(p).name;
    list.append(name.data(), name.size());
  }
  return list;
}

absl::Status CheckOptions(const EndpointOptions& o) {
  if (o.peer_fingerprints.empty()) {
    return absl::InvalidArgumentError("DTLS endpoint: the peer's fingerprints are required");
  }
  if (o.profiles.empty()) {
    return absl::InvalidArgumentError("DTLS endpoint: at least one SRTP profile is required");
  }
  for (size_t i = 0; i < o.profiles.size(); ++i) {
    if (std::find(o.profiles.begin(), o.profiles.begin() + i, o.profiles[i]) !=
        o.profiles.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DTLS endpoint: SRTP profile ", GetSrtpProfileInfo(o.profiles[i]).name, " repeated"));
    }
  }
  if (o.mtu < kMinMtu || o.mtu > kMaxMtu) {
    return absl::InvalidArgumentError(absl::StrCat("DTLS endpoint: mtu ", o.mtu, " is outside ",
                                                   kMinMtu, "..", kMaxMtu));
  }
  if (o.initial_retransmit_ms < kMinInitialRetransmitMs || o.initial_retransmit_ms > 60000) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTLS endpoint: initial_retransmit_ms ", o.initial_retransmit_ms,
                     " is outside ", kMinInitialRetransmitMs, "..60000"));
  }
  return absl::OkStatus();
}

// A new SSL on the certificate's context, with the endpoint's settings and
// the datagram BIO.
absl::Status SetUpSsl(SSL_CTX* ctx, const EndpointOptions& o, Session* s) {
  s->ssl = SSL_new(ctx);
  BIO* bio = DatagramBioMethod() != nullptr ? BIO_new(DatagramBioMethod()) : nullptr;
  if (s->ssl == nullptr || bio == nullptr) {
    BIO_free(bio);
    ERR_clear_error();
    return absl::InternalError("DTLS endpoint: OpenSSL could not make a session");
  }
  BIO_set_data(bio, s);
  SSL_set_bio(s->ssl, bio, bio);  // the same BIO both ways: takes our one reference
  SSL_set_app_data(s->ssl, s);
  // RFC 5764 §4.1.1: the client offers, the server picks, in this order.
  if (SSL_set_tlsext_use_srtp(s->ssl, ProfileList(o.profiles).c_str()) != 0 ||
      SSL_set_mtu(s->ssl, o.mtu) <= 0) {
    ERR_clear_error();
    return absl::InternalError("DTLS endpoint: OpenSSL refused the SRTP profiles or the MTU");
  }
  DTLS_set_timer_cb(s->ssl, TimerCallback);
  if (o.role == Role::kClient) {
    SSL_set_connect_state(s->ssl);
  } else {
    SSL_set_accept_state(s->ssl);
  }
  return absl::OkStatus();
}

// RFC 5764 §4.2: client_write_key | server_write_key | client_write_salt |
// server_write_salt, each side's key and salt in the suite's sizes.
bool ExportKeys(SSL* ssl, SrtpProfile profile, Role role, SrtpKeys* keys) {
  const crypto::SuiteInfo& suite = crypto::GetSuiteInfo(GetSrtpProfileInfo(profile).suite);
  const size_t k = suite.key_len;
  const size_t s = suite.salt_len;
  std::array<uint8_t, kMaxKeyMaterial> material{};
  const bool ok = SSL_export_keying_material(ssl, material.data(), 2 * (k + s), kExporterLabel,
                                             sizeof kExporterLabel - 1, nullptr, 0, 0) == 1;
  if (ok) {
    srtp::MasterKey& client = role == Role::kClient ? keys->send : keys->receive;
    srtp::MasterKey& server = role == Role::kClient ? keys->receive : keys->send;
    client.suite = server.suite = suite.suite;
    std::memcpy(client.key.data(), material.data(), k);
    std::memcpy(server.key.data(), material.data() + k, k);
    std::memcpy(client.salt.data(), material.data() + 2 * k, s);
    std::memcpy(server.salt.data(), material.data() + 2 * k + s, s);
    keys->profile = profile;
  }
  OPENSSL_cleanse(material.data(), material.size());
  return ok;
}

}  // namespace

int Session::Read(char* out, int len) {
  if (pending.empty()) return 0;
  const size_t n = std::min(pending.size(), static_cast<size_t>(len));
  std::memcpy(out, pending.data(), n);
  pending = {};  // one datagram per read; a datagram too long for `out` is cut
  return static_cast<int>(n);
}

void Session::Write(const char* data, int len) {
  if (owner->outgoing_.size() >= kMaxQueuedDatagrams) {
    ++owner->counters_.dropped_queue_full;
    return;
  }
  owner->outgoing_.emplace_back(data, data + len);
}

bool Session::CheckPeer(X509* leaf) {
  unsigned char* der = nullptr;
  const int len = leaf != nullptr ? i2d_X509(leaf, &der) : -1;
  if (len <= 0) {
    Note(Failure::kFingerprintMismatch, "fingerprint mismatch: the peer sent no certificate");
    return false;
  }
  const absl::Status match =
      MatchFingerprints({der, static_cast<size_t>(len)}, peer_fingerprints);
  OPENSSL_free(der);
  if (!match.ok()) Note(Failure::kFingerprintMismatch, std::string(match.message()));
  return match.ok();
}

absl::string_view StateName(State state) noexcept {
  switch (state) {
    case State::kNew:
      return "new";
    case State::kHandshaking:
      return "handshaking";
    case State::kKeyed:
      return "keyed";
    case State::kFailed:
      return "failed";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<Endpoint>> Endpoint::Create(const Certificate& certificate,
                                                           const EndpointOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  SSL_CTX* ctx = ContextFor(certificate.state());
  if (ctx == nullptr) return absl::InternalError("DTLS endpoint: OpenSSL could not make a context");
  std::unique_ptr<Endpoint> e(
      new Endpoint(options.role, options.linger_ms, options.handshake_timeout_ms));
  e->session_ = std::make_unique<Session>(e.get());
  e->session_->peer_fingerprints = options.peer_fingerprints;
  e->session_->profiles = options.profiles;
  e->session_->initial_retransmit_us = options.initial_retransmit_ms * 1000;
  if (absl::Status s = SetUpSsl(ctx, options, e->session_.get()); !s.ok()) return s;
  return e;
}

Endpoint::Endpoint(Role role, uint64_t linger_ms, uint64_t timeout_ms)
    : role_(role), linger_ms_(linger_ms), timeout_ms_(timeout_ms) {}

Endpoint::~Endpoint() = default;

bool Endpoint::has_session() const { return session_ != nullptr; }

void Endpoint::Start(uint64_t now_ms) {
  if (started_) return;
  started_ = true;
  deadline_ms_ = now_ms + timeout_ms_;
  if (role_ == Role::kClient && session_ != nullptr) {
    state_ = State::kHandshaking;
    Drive(now_ms);
  }
  UpdateNextTimeout(now_ms);
}

void Endpoint::Feed(std::span<const uint8_t> datagram, uint64_t now_ms) {
  ++counters_.datagrams_received;
  // RFC 7983 §7: DTLS records start with a content type of 20 to 63.
  if (datagram.size() < kDtlsRecordHeaderLen || datagram[0] < 20 || datagram[0] > 63) {
    ++counters_.dropped_not_dtls;
    return;
  }
  if (datagram.size() > kMaxDatagramLen) {
    ++counters_.dropped_oversize;
    return;
  }
  if (!started_) Start(now_ms);
  if (state_ == State::kKeyed) {
    AnswerRetransmission(datagram);
    return;
  }
  if (now_ms >= deadline_ms_) OnTimer(now_ms);
  if (session_ == nullptr) {
    ++counters_.dropped_no_session;
    return;
  }
  if (HasLaterEpochRecord(datagram) &&
      ++early_epoch_datagrams_ > kMaxEarlyEpochDatagrams) {
    ++counters_.dropped_early_epoch;
    return;
  }
  if (state_ == State::kNew) state_ = State::kHandshaking;
  session_->pending = datagram;
  Drive(now_ms);
  if (session_ != nullptr) session_->pending = {};
  UpdateNextTimeout(now_ms);
}

// Lets OpenSSL consume the pending datagram (if any) and act on the outcome.
void Endpoint::Drive(uint64_t now_ms) {
  SSL* ssl = session_->ssl;
  ERR_clear_error();
  const size_t flight_start = outgoing_.size();
  const int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    Complete(now_ms, flight_start);
    return;
  }
  const int err = SSL_get_error(ssl, rc);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) FailFromOpenSsl(err);
  ERR_clear_error();
}

// flight_start: where in outgoing_ what this Drive wrote begins (the
// server's last flight).
void Endpoint::Complete(uint64_t now_ms, size_t flight_start) {
  SSL* ssl = session_->ssl;
  // The verify callback has checked both already; nothing is keyed unless
  // they hold.
  if (!session_->fingerprint_ok || SSL_get0_peer_certificate(ssl) == nullptr) {
    Fail(Failure::kFingerprintMismatch, "fingerprint mismatch: the peer's certificate was not checked");
    return;
  }
  const SRTP_PROTECTION_PROFILE* selected = SSL_get_selected_srtp_profile(ssl);
  const std::optional<SrtpProfile> profile =
      selected != nullptr ? SrtpProfileFromId(static_cast<uint16_t>(selected->id)) : std::nullopt;
  const auto& ours = session_->profiles;
  if (!profile || std::find(ours.begin(), ours.end(), *profile) == ours.end()) {
    Fail(Failure::kNoCommonProfile, "no common SRTP profile");
    return;
  }
  keys_.emplace();
  if (!ExportKeys(ssl, *profile, role_, &*keys_)) {
    keys_.reset();
    Fail(Failure::kInternal, "SRTP key export failed");
    return;
  }
  state_ = State::kKeyed;
  profile_ = profile;
  FreeSession();
  // The client received the last flight: it has nothing to answer.
  if (role_ == Role::kServer && flight_start < outgoing_.size()) {
    final_flight_.assign(outgoing_.begin() + static_cast<ptrdiff_t>(flight_start), outgoing_.end());
    linger_end_ms_ = now_ms + linger_ms_;
  }
}

// RFC 6347 §4.2.4: a keyed server answers the client's retransmitted last
// flight (its Finished, the only record of a later epoch in it) with its own
// last flight again; anything else is dropped.
void Endpoint::AnswerRetransmission(std::span<const uint8_t> datagram) {
  if (final_flight_.empty() || !HasLaterEpochRecord(datagram) ||
      final_flight_resends_ >= kMaxFinalFlightResends) {
    ++counters_.dropped_no_session;
    return;
  }
  ++final_flight_resends_;
  ++counters_.final_flight_resends;
  for (const std::vector<uint8_t>& d : final_flight_) {
    if (outgoing_.size() >= kMaxQueuedDatagrams) {
      ++counters_.dropped_queue_full;
      break;
    }
    outgoing_.push_back(d);
  }
}

void Endpoint::FailFromOpenSsl(int ssl_error) {
  const Session& s = *session_;
  if (s.noted != Failure::kNone) {
    Fail(s.noted, s.noted_reason);
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    Fail(Failure::kAlertReceived, "alert received: close notify");
  } else if (s.last_alert >= 0 && (s.last_alert >> 8) == SSL3_AL_FATAL) {
    Fail(Failure::kAlertReceived,
         absl::StrCat("alert received: ", SSL_alert_desc_string_long(s.last_alert)));
  } else if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_READ_TIMEOUT_EXPIRED) {
    Fail(Failure::kRetransmissionLimit, "no answer after the retransmission limit");
  } else {
    const char* reason = ERR_reason_error_string(ERR_peek_last_error());
    Fail(Failure::kProtocolError,
         absl::StrCat("protocol error: ", reason != nullptr ? reason : "unknown"));
  }
}

void Endpoint::Fail(Failure failure, std::string reason) {
  state_ = State::kFailed;
  failure_ = failure;
  failure_reason_ = std::move(reason);
  keys_.reset();
  profile_.reset();
  FreeSession();
  EndLinger();
}

void Endpoint::FreeSession() { session_.reset(); }

void Endpoint::EndLinger() {
  final_flight_.clear();
  final_flight_.shrink_to_fit();
  linger_end_ms_.reset();
}

void Endpoint::ReleaseSession() {
  if (state_ != State::kKeyed) return;
  EndLinger();
  next_timeout_ms_.reset();
}

void Endpoint::OnTimer(uint64_t now_ms) {
  const bool handshaking = state_ == State::kNew || state_ == State::kHandshaking;
  if (handshaking && started_ && now_ms >= deadline_ms_) {
    Fail(Failure::kDeadlinePassed,
         absl::StrCat("handshake deadline passed (", timeout_ms_, " ms)"));
  } else if (state_ == State::kKeyed && linger_end_ms_ && now_ms >= *linger_end_ms_) {
    EndLinger();
  } else if (state_ == State::kHandshaking && session_ != nullptr) {
    ERR_clear_error();
    const int rc = DTLSv1_handle_timeout(session_->ssl);
    if (rc > 0) ++counters_.retransmissions;
    if (rc < 0) FailFromOpenSsl(SSL_ERROR_SSL);
    ERR_clear_error();
  }
  UpdateNextTimeout(now_ms);
}

void Endpoint::UpdateNextTimeout(uint64_t now_ms) {
  next_timeout_ms_.reset();
  if (state_ == State::kKeyed) {
    next_timeout_ms_ = linger_end_ms_;
    return;
  }
  if (state_ == State::kFailed || !started_) return;
  next_timeout_ms_ = deadline_ms_;
  timeval left{};
  if (session_ != nullptr && DTLSv1_get_timeout(session_->ssl, &left) == 1) {
    const uint64_t left_ms = static_cast<uint64_t>(left.tv_sec) * 1000 +
                             (static_cast<uint64_t>(left.tv_usec) + 999) / 1000;
    next_timeout_ms_ = std::min(deadline_ms_, now_ms + left_ms);
  }
}

std::vector<std::vector<uint8_t>> Endpoint::TakeOutgoing() {
  counters_.datagrams_sent += outgoing_.size();
  return std::exchange(outgoing_, {});
}

std::optional<SrtpKeys> Endpoint::TakeKeys() {
  std::optional<SrtpKeys> keys = std::move(keys_);
  keys_.reset();  // a moved-from optional still holds its (copied) keys
  return keys;
}

}  // namespace sluice::dtls
