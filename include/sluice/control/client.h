// A blocking client for sluiced's control socket: writes request lines and
// reads reply lines. For sluicectl, tests and benchmarks; it does not parse
// JSON (protocol.h does).
//
// One thread at a time. Every call gives up after the timeout given to
// Connect. Buffers are wiped when freed: replies may carry generated keys.
#ifndef SLUICE_CONTROL_CLIENT_H_
#define SLUICE_CONTROL_CLIENT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sluice::control {

class Client {
 public:
  // Unavailable when nothing listens at the path (or it cannot be reached).
  static absl::StatusOr<Client> Connect(absl::string_view socket_path, int timeout_ms = 30000);

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
  int fd_ = -1;
  std::string buffer_;  // received, not yet returned
  size_t scanned_ = 0;  // bytes of buffer_ known to hold no '\n'
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_CLIENT_H_
