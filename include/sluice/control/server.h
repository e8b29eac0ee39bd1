// sluiced's control socket: a Unix stream socket speaking the control
// protocol (protocol.h) to many clients at once, without threads.
//
// Control thread only. Poll() does all the work: it waits at most its timeout
// for events, handles what is ready and returns; it never blocks on a client.
// Per connection: the peer's credentials are checked at accept (SO_PEERCRED),
// lines up to kMaxLineBytes, pipelined requests answered in order, replies
// queued up to max_output_bytes; beyond that the connection's requests wait
// (and, through the socket buffer, the client) until it reads its replies.
// Other clients are never held up.
//
// With ServerOptions::tls set, a TCP listener carries the same protocol over
// mutual TLS (tls.h). Handshakes run in the same loop, a step per event, and
// one that has not finished within its timeout is dropped, and so is a served
// TLS client idle for idle_timeout_ms. Each listener has its own limit
// (ServerOptions::max_connections for the Unix socket, TlsServerOptions's for
// TLS, handshakes included), so clients of one never lock out the other; a
// TLS client over its limit is told resource_exhausted once its handshake is
// done (a few at a time; beyond that it is closed at once).
#ifndef SLUICE_CONTROL_SERVER_H_
#define SLUICE_CONTROL_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/control/operations.h"
#include "sluice/control/protocol.h"
#include "sluice/control/tls.h"

namespace sluice::control {

struct ServerOptions {
  // Absolute path, at most 107 bytes (sockaddr_un). A missing parent
  // directory is created with mode 0750 (and `group`, if set).
  std::string socket_path = "/run/sluice/control.sock";
  // The socket's group ([control] group); empty: the daemon's own group.
  // Its members may connect.
  std::string group;
  // Unix socket clients at once; one more is accepted, told
  // resource_exhausted and closed. TLS clients have their own limit
  // (TlsServerOptions::max_connections).
  uint32_t max_connections = 1024;
  // Replies queued for one client that is not reading them; at this size its
  // further requests wait.
  size_t max_output_bytes = size_t{4} << 20;
  // The TCP listener for mutual TLS; none when unset. Port 0 picks a free
  // port (tls_port() says which).
  std::optional<TlsServerOptions> tls;
};

// Who may connect: root, the daemon's own user, and members (primary or
// supplementary) of the socket's group.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary (SO_PEERGROUPS)
};
bool PeerAllowed(const PeerCredentials& peer, uid_t own_uid, gid_t socket_gid);

class Server {
 public:
  // Creates the socket (mode 0660, chowned to options.group), replacing a
  // stale socket file but refusing to replace a live one or any other file.
  // `operations` must outlive the server.
  static absl::StatusOr<std::unique_ptr<Server>> Create(Operations& operations,
                                                        ServerOptions options);
  // Closes every connection and removes the socket file.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Waits up to timeout_ms (0: not at all, -1: until something happens) and
  // handles whatever is ready. Errors only when epoll itself fails.
  absl::Status Poll(int timeout_ms);

  // An epoll descriptor that is readable when Poll() has work, for a caller
  // that waits on several things at once.
  int fd() const { return epoll_fd_; }
  const std::string& socket_path() const { return options_.socket_path; }
  const ControlCounters& counters() const { return counters_; }
  size_t connections() const { return connections_.size(); }
  size_t tls_connections() const { return tls_open_; }
  // The TLS listener's port, 0 without one.
  uint16_t tls_port() const { return tls_port_; }

 private:
  struct Connection;

  Server(Operations& operations, ServerOptions options);
  absl::Status Open();
  absl::Status OpenTls();
  // Accepts what is pending on the Unix (tls false) or TLS listener.
  void Accept(bool tls);
  // Watches the connection's socket and keeps it; false (the socket
  // closed) when epoll refuses.
  bool Register(std::unique_ptr<Connection> c);
  void AddTlsConnection(int fd, bool refuse);
  // One handshake step; on success the connection is served (or refused).
  void Handshake(Connection& c);
  // Drops handshakes past their deadline; the time to the next one, in ms (-1: none).
  int ExpireHandshakes();
  // Drops served TLS clients idle past idle_timeout_ms; the time to the next
  // check, in ms (-1: none).
  int ExpireIdle();
  // Keeps the certificate warning in the counters (for stats) current and
  // logs it once a day.
  void CheckCertificate();
  bool SetInterest(Connection& c, uint32_t interest);
  void PauseAccepting();
  void ResumeAccepting();
  void Refuse(int fd, absl::string_view why);
  void HandleEvent(Connection& c, uint32_t events);
  // Reads once; false when the connection is to be closed.
  bool ReadOnce(Connection& c);
  bool ReadTls(Connection& c);
  void ProcessInput(Connection& c);
  // Sends what it can; false on a send error.
  bool Flush(Connection& c);
  bool FlushTls(Connection& c);
  // Processes and sends until neither makes progress, then sets the epoll
  // interest or closes the connection.
  void Settle(Connection& c);
  void Close(Connection& c);

  Operations& operations_;
  ServerOptions options_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int spare_fd_ = -1;  // given up to accept (and refuse) a client when out of descriptors
  bool accept_paused_ = false;  // out of descriptors even for that
  std::chrono::steady_clock::time_point accept_resume_;
  gid_t socket_gid_ = 0;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  // epoll data: kUnixListener, kTlsListener, then connections
  static constexpr uint64_t kUnixListener = 0;
  static constexpr uint64_t kTlsListener = 1;
  uint64_t next_id_ = 2;
  int tls_fd_ = -1;
  uint16_t tls_port_ = 0;
  std::unique_ptr<TlsServerContext> tls_;
  // Handshakes in the order they started (and so of their deadlines).
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> handshakes_;
  size_t refusing_ = 0;  // TLS clients over the limit, being told so
  // Open clients of each listener, those being refused not counted.
  size_t unix_open_ = 0;
  size_t tls_open_ = 0;
  std::chrono::steady_clock::time_point next_idle_check_{};
  std::chrono::steady_clock::time_point next_certificate_check_{};
  time_t certificate_logged_ = 0;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unique_ptr<char[]> scratch_;  // one read's worth, wiped after use
  ControlCounters counters_;
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_SERVER_H_
