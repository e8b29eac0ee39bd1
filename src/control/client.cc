#include "sluice/control/client.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/control/operations.h"

namespace sluice::control {
namespace {

void SetTimeouts(int fd, int timeout_ms) {
  if (timeout_ms <= 0) return;
  timeval tv{};
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// A connected TCP socket to host:port (any of its addresses), or an error.
absl::StatusOr<int> ConnectTcp(const std::string& host, uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::string last = "no address";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    SetTimeouts(fd, timeout_ms);  // connect() gives up after SO_SNDTIMEO too
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      freeaddrinfo(found);
      return fd;
    }
    last = errno == EINPROGRESS ? "timed out" : std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat("cannot connect to ", host, " port ", port, ": ", last));
}

// Why a TLS call failed: the certificate check, else OpenSSL's reasons.
std::string TlsFailure(SSL* ssl, int rc) {
  const int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return "timed out";
  if (err == SSL_ERROR_ZERO_RETURN) return "the server closed the connection";
  std::string why;
  if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
    why = absl::StrCat("the server's certificate: ", X509_verify_cert_error_string(verify));
  }
  const std::string queued = DrainSslErrors();
  if (why.empty()) why = queued;
  if (why.empty()) why = err == SSL_ERROR_SYSCALL && errno != 0 ? std::strerror(errno)
                                                             : "the server closed the connection";
  return why;
}

}  // namespace

absl::StatusOr<Client> Client::Connect(absl::string_view socket_path, int timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad socket path: ", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  Client client(fd);
  SetTimeouts(fd, timeout_ms);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", socket_path, ": ", std::strerror(err)));
  }
  return client;
}

absl::StatusOr<Client> Client::ConnectTls(const TlsConnectOptions& options, int timeout_ms) {
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = SplitHostPort(options.address, "--connect", &host, &port); !s.ok()) {
    return s;
  }
  absl::StatusOr<SslCtxPtr> ctx = MakeTlsClientContext(options.files);
  if (!ctx.ok()) return ctx.status();
  absl::StatusOr<int> fd = ConnectTcp(host, port, timeout_ms);
  if (!fd.ok()) return fd.status();
  Client client(*fd);
  client.ctx_ = std::move(*ctx);
  const std::string name = options.server_name.empty() ? host : options.server_name;
  absl::StatusOr<SslPtr> ssl = NewTlsClient(client.ctx_.get(), client.fd_, name);
  if (!ssl.ok()) return ssl.status();
  client.ssl_ = std::move(*ssl);
  ERR_clear_error();
  const int rc = SSL_connect(client.ssl_.get());
  if (rc != 1) {
    return absl::UnavailableError(absl::StrCat("TLS handshake with ", options.address, " (", name,
                                               ") failed: ", TlsFailure(client.ssl_.get(), rc)));
  }
  return client;
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ctx_(std::move(other.ctx_)),
      ssl_(std::move(other.ssl_)),
      buffer_(std::move(other.buffer_)),
      scanned_(std::exchange(other.scanned_, 0)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    ssl_.reset();
    if (fd_ >= 0) close(fd_);
    WipeString(buffer_);
    fd_ = std::exchange(other.fd_, -1);
    ctx_ = std::move(other.ctx_);
    ssl_ = std::move(other.ssl_);
    buffer_ = std::move(other.buffer_);
    scanned_ = std::exchange(other.scanned_, 0);
  }
  return *this;
}

Client::~Client() {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  ssl_.reset();
  if (fd_ >= 0) close(fd_);
  WipeString(buffer_);
}

long Client::SendSome(const char* data, size_t n) {
  if (ssl_ == nullptr) return send(fd_, data, n, MSG_NOSIGNAL);
  ERR_clear_error();
  const int rc = SSL_write(ssl_.get(), data, static_cast<int>(std::min<size_t>(n, 1 << 30)));
  if (rc > 0) return rc;
  const int err = SSL_get_error(ssl_.get(), rc);
  tls_error_ = TlsFailure(ssl_.get(), rc);
  errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EPROTO;
  return -1;
}

long Client::RecvSome(char* data, size_t n) {
  if (ssl_ == nullptr) return recv(fd_, data, n, 0);
  ERR_clear_error();
  const int rc = SSL_read(ssl_.get(), data, static_cast<int>(n));
  if (rc > 0) return rc;
  const int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_ZERO_RETURN) return 0;
  tls_error_ = TlsFailure(ssl_.get(), rc);
  errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EPROTO;
  return -1;
}

absl::Status Client::Write(absl::string_view data) {
  while (!data.empty()) {
    const long n = SendSome(data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::DeadlineExceededError("timed out writing to the control socket");
    }
    return absl::UnavailableError(absl::StrCat("writing to the control socket: ",
                                               ssl_ ? tls_error_ : std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Client::ReadLine() {
  for (;;) {
    const size_t newline = buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      // Shift the rest down in place, wiping what it leaves behind.
      const size_t rest = buffer_.size() - newline - 1;
      std::memmove(buffer_.data(), buffer_.data() + newline + 1, rest);
      WipeMemory(buffer_.data() + rest, buffer_.size() - rest);
      buffer_.resize(rest);
      scanned_ = 0;
      return line;
    }
    scanned_ = buffer_.size();
    char chunk[16384];
    const long n = RecvSome(chunk, sizeof(chunk));
    if (n > 0) {
      if (buffer_.capacity() - buffer_.size() < static_cast<size_t>(n)) {
        // Grow by hand so the old array is wiped.
        std::string grown;
        grown.reserve(std::max(buffer_.capacity() * 2, buffer_.size() + static_cast<size_t>(n)));
        grown.append(buffer_);
        WipeString(buffer_);
        buffer_ = std::move(grown);
      }
      buffer_.append(chunk, static_cast<size_t>(n));
      WipeMemory(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return absl::UnavailableError("the control socket closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError("timed out waiting for a reply on the control socket");
    }
    return absl::UnavailableError(absl::StrCat("reading from the control socket: ",
                                               ssl_ ? tls_error_ : std::strerror(errno)));
  }
}

absl::StatusOr<std::string> Client::Call(absl::string_view request) {
  if (!request.empty() && request.back() == '\n') {
    if (absl::Status s = Write(request); !s.ok()) return s;
  } else {
    std::string line;
    line.reserve(request.size() + 1);
    line.append(request.data(), request.size());
    line.push_back('\n');
    absl::Status s = Write(line);
    WipeString(line);
    if (!s.ok()) return s;
  }
  return ReadLine();
}

}  // namespace sluice::control
