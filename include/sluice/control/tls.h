// Mutual TLS for the control protocol over TCP: the OpenSSL contexts of the
// server ([control.tls]) and of a client (sluicectl --connect), and the
// checks around them.
//
// Control thread (server) or the client's thread. Policy: TLS 1.2 or newer
// (1.3 preferred), on 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305; no
// compression, no renegotiation, no session resumption. Both sides present a
// certificate that chains to the other's CA. The server also requires the
// client certificate's subject CN or one of its SANs to be on an allow-list,
// and checks its own certificate at start-up (its SAN holds the configured
// server name, it is valid now, it matches its key, the key file is private).
// Messages name certificates by subject and say why they were refused;
// they never contain key material.
#ifndef SLUICE_CONTROL_TLS_H_
#define SLUICE_CONTROL_TLS_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice::control {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The server's own certificate is reported (log and `stats`) this long
// before it expires.
inline constexpr int64_t kCertificateWarningSeconds = int64_t{30} * 24 * 3600;

// [control.tls]
struct TlsServerOptions {
  // "HOST:PORT" to listen on: "127.0.0.1:7443", "[::]:7443", "0.0.0.0:7443".
  std::string listen;
  std::string cert_file;    // PEM: the server certificate, then its intermediates
  std::string key_file;     // PEM private key; not accessible to "other", not group-writable
  std::string ca_file;      // PEM: the CA(s) client certificates must chain to
  std::string server_name;  // must be a DNS (or IP) SAN of the server certificate
  // Client certificates accepted: each entry is compared with the subject CN
  // and every DNS, URI, email and IP SAN of the client certificate. Non-empty.
  std::vector<std::string> allowed_clients;
  // A client that has not completed its handshake in this time is dropped.
  uint32_t handshake_timeout_ms = 5000;
  // TLS clients at once, in handshake or served; the Unix socket's clients
  // are counted apart (ServerOptions::max_connections), so a full TLS
  // listener never locks out the local controller.
  uint32_t max_connections = 64;
  // A served client that has sent nothing and taken no reply for this long
  // is closed (0: never).
  uint32_t idle_timeout_ms = 300000;
};

// What the server knows about its own certificate.
struct CertificateStatus {
  std::string subject;
  time_t not_after = 0;
  // Non-empty when it expires within kCertificateWarningSeconds.
  std::string warning;
};

class TlsServerContext {
 public:
  // Loads and checks everything; the error names the file or setting at
  // fault. `now` is for tests (0: the clock).
  static absl::StatusOr<std::unique_ptr<TlsServerContext>> Create(const TlsServerOptions& options,
                                                                  time_t now = 0);

  // A server-side SSL for a freshly accepted socket, or null (out of memory).
  SslPtr NewConnection(int fd) const;

  // Why the handshake of `ssl` failed, for the log: the certificate check
  // that refused the client (with its subject), or OpenSSL's reason
  // (protocol version, no shared cipher, not TLS at all). Drains the error
  // queue.
  static std::string FailureReason(SSL* ssl);

  // After a handshake: the client certificate's subject, the protocol and
  // cipher, and the server name the client asked for (SNI), if any.
  static std::string Describe(SSL* ssl);

  // The server certificate's state as of `now` (0: the clock).
  CertificateStatus Certificate(time_t now = 0) const;

 private:
  TlsServerContext() = default;

  SslCtxPtr ctx_;
  std::vector<std::string> allowed_;
  std::string subject_;
  time_t not_after_ = 0;
};

// A client's context: verifies the server against `ca_file` and presents
// `cert_file` / `key_file`.
struct TlsClientOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};
absl::StatusOr<SslCtxPtr> MakeTlsClientContext(const TlsClientOptions& options);

// A client-side SSL on `fd` that sends `server_name` as SNI and accepts only
// a server certificate whose SAN matches it (a DNS name, or an IP address).
absl::StatusOr<SslPtr> NewTlsClient(SSL_CTX* ctx, int fd, const std::string& server_name);

// "HOST:PORT" or "[IPV6]:PORT" split into its parts; InvalidArgument
// naming `what` when it is not of that form or the port is not 0..65535.
absl::Status SplitHostPort(absl::string_view text, absl::string_view what, std::string* host,
                           uint16_t* port);

// OpenSSL's queued errors as one line ("" when none), and clears the queue.
std::string DrainSslErrors();

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_TLS_H_
