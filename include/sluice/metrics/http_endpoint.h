// The metrics endpoint: a small HTTP/1.1 server that answers GET /metrics
// with a body its caller renders (the Prometheus exposition), on a TCP
// listener ([metrics] listen).
//
// Control thread only. Poll() does all the work and never blocks on a
// client: sockets are non-blocking, connections are bounded
// (max_connections, more are closed at accept and counted), a request head
// is bounded (max_request_bytes), and a client that has not sent its head
// or read its reply within timeout_ms is closed. A request that is not HTTP
// is answered 400 and closed; another path 404; another method 405. Every
// reply closes its connection ("Connection: close").
#ifndef SLUICE_METRICS_HTTP_ENDPOINT_H_
#define SLUICE_METRICS_HTTP_ENDPOINT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/packet/address.h"

namespace sluice::metrics {

struct HttpEndpointOptions {
  packet::Endpoint listen;  // port 0 picks a free port (port() says which)
  uint32_t max_connections = 16;
  size_t max_request_bytes = 8192;
  uint32_t timeout_ms = 5000;
};

// What the endpoint has served since it started.
struct HttpCounters {
  uint64_t scrapes = 0;         // 200 replies to GET /metrics
  uint64_t not_found = 0;       // 404
  uint64_t bad_method = 0;      // 405
  uint64_t bad_requests = 0;    // 400: not HTTP, or a head over max_request_bytes
  uint64_t timeouts = 0;        // closed for not sending or not reading in time
  uint64_t refused = 0;         // over max_connections
  double last_render_seconds = 0;  // how long the last body took to render
};

class HttpEndpoint {
 public:
  // Renders the body of one scrape (control thread).
  using Render = std::function<std::string()>;

  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Create(HttpEndpointOptions options,
                                                              Render render);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Waits up to timeout_ms (0: not at all) and handles what is ready.
  // Errors only when epoll itself fails.
  absl::Status Poll(int timeout_ms);

  uint16_t port() const { return port_; }
  size_t connections() const;
  const HttpCounters& counters() const { return counters_; }

  // The reply to one request head (up to and without its blank line), and
  // which counter it bumps: exposed for tests.
  struct Reply {
    int status = 0;
    std::string bytes;
  };
  Reply Answer(std::string_view head);

 private:
  struct Connection;
  HttpEndpoint(HttpEndpointOptions options, Render render);
  absl::Status Open();
  void Accept();
  void HandleEvent(Connection& c, uint32_t events);
  // Reads what is there; true once the head is complete (or refused).
  bool ReadHead(Connection& c);
  // Sends what it can; true when all is sent or the peer is gone.
  bool Flush(Connection& c);
  void Close(int fd);
  void ExpireConnections();

  HttpEndpointOptions options_;
  Render render_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  uint16_t port_ = 0;
  struct Connections;
  std::unique_ptr<Connections> connections_;
  HttpCounters counters_;
};

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_HTTP_ENDPOINT_H_
