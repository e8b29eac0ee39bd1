// A blocking client for sluiced's control socket, or for its mutual-TLS
// listener over TCP: writes request lines and reads reply lines. For
// sluicectl, tests and benchmarks; it does not parse JSON (protocol.h does).
//
// One thread at a time. Every call gives up after the timeout given to
// Connect. Buffers are wiped when freed: replies may carry generated keys.
#ifndef SLUICE_CONTROL_CLIENT_H_
#define SLUICE_CONTROL_CLIENT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/control/tls.h"

namespace sluice::control {

struct TlsConnectOptions {
  std::string address;      // "HOST:PORT" or "[IPV6]:PORT"; HOST may be a name
  std::string server_name;  // sent as SNI and checked against the server's SAN; empty: HOST
  TlsClientOptions files;   // our certificate and key, and the CA the server must chain to
};

class Client {
 public:
  // Unavailable when nothing listens at the path (or it cannot be reached).
  static absl::StatusOr<Client> Connect(absl::string_view socket_path, int timeout_ms = 30000);
  // Connects over TCP and completes a TLS handshake that verifies the
  // server. Unavailable when it cannot connect or the handshake fails (the
  // message says why). With TLS 1.3 the server judges our certificate after
  // this returns: a refusal shows as the first ReadLine failing.
  static absl::StatusOr<Client> ConnectTls(const TlsConnectOptions& options,
                                           int timeout_ms = 30000);

  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  ~Client();

  // Writes all of `data`: one or many whole lines.
  absl::Status Write(absl::string_view data);
  // The next reply line, without its '\n'. Unavailable at end of stream.
  absl::StatusOr<std::string> ReadLine();
  // Writes one request line ('\n' added when missing) and reads one reply.
  absl::StatusOr<std::string> Call(absl::string_view request);

  int fd() const { return fd_; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  // One send or receive on the socket or through TLS; like send/recv, with
  // errno set on -1.
  long SendSome(const char* data, size_t n);
  long RecvSome(char* data, size_t n);

  int fd_ = -1;
  SslCtxPtr ctx_;  // TLS only
  SslPtr ssl_;
  std::string tls_error_;  // why the last TLS call failed
  std::string buffer_;  // received, not yet returned
  size_t scanned_ = 0;  // bytes of buffer_ known to hold no '\n'
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_CLIENT_H_
