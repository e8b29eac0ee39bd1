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
#ifndef SLUICE_CONTROL_SERVER_H_
#define SLUICE_CONTROL_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
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

namespace sluice::control {

struct ServerOptions {
  // Absolute path, at most 107 bytes (sockaddr_un). A missing parent
  // directory is created with mode 0750 (and `group`, if set).
  std::string socket_path = "/run/sluice/control.sock";
  // The socket's group ([control] group); empty: the daemon's own group.
  // Its members may connect.
  std::string group;
  // Clients at once; one more is accepted, told resource_exhausted and closed.
  uint32_t max_connections = 1024;
  // Replies queued for one client that is not reading them; at this size its
  // further requests wait.
  size_t max_output_bytes = size_t{4} << 20;
  // Refused connections and socket errors, one line each, for the daemon's
  // log. May be empty.
  std::function<void(absl::string_view)> log;
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

 private:
  struct Connection;

  Server(Operations& operations, ServerOptions options);
  absl::Status Open();
  void Accept();
  void PauseAccepting();
  void ResumeAccepting();
  void Refuse(int fd, absl::string_view why);
  void HandleEvent(Connection& c, uint32_t events);
  // Reads once; false when the connection is to be closed.
  bool ReadOnce(Connection& c);
  void ProcessInput(Connection& c);
  // Sends what it can; false on a send error.
  bool Flush(Connection& c);
  // Processes and sends until neither makes progress, then sets the epoll
  // interest or closes the connection.
  void Settle(Connection& c);
  void Close(Connection& c);
  void Log(absl::string_view message) const;

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
  uint64_t next_id_ = 1;  // epoll data: 0 is the listening socket
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unique_ptr<char[]> scratch_;  // one read's worth, wiped after use
  ControlCounters counters_;
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_SERVER_H_
