// A client of DPDK's telemetry socket, as dpdk-telemetry.py is: a Unix
// SOCK_SEQPACKET connection to <runtime dir>/dpdk_telemetry.v2, one message
// a request ("/sluice/stats") and one JSON message a reply.
//
// Test thread only. Header-only: for the telemetry unit test and the
// daemon-level tests alike.
#ifndef SLUICE_TESTS_TESTING_TELEMETRY_CLIENT_H_
#define SLUICE_TESTS_TESTING_TELEMETRY_CLIENT_H_

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include <nlohmann/json.hpp>

namespace sluice::testing {

class TelemetryClient {
 public:
  TelemetryClient() = default;
  TelemetryClient(const TelemetryClient&) = delete;
  TelemetryClient& operator=(const TelemetryClient&) = delete;
  ~TelemetryClient() {
    if (fd_ >= 0) close(fd_);
  }

  // Connects and reads the greeting (version, pid, max_output_len); false
  // when nothing answers at `path`.
  bool Connect(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof(a.sun_path) - 1);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
    timeval tv = {5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return Read().contains("pid");
  }

  // The reply to `command`; a discarded value when there is none.
  nlohmann::json Call(const std::string& command) {
    send(fd_, command.data(), command.size(), MSG_NOSIGNAL);
    return Read();
  }

 private:
  nlohmann::json Read() {
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return nlohmann::json::value_t::discarded;
    return nlohmann::json::parse(std::string(buf, static_cast<size_t>(n)), nullptr, false);
  }
  int fd_ = -1;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_TELEMETRY_CLIENT_H_
