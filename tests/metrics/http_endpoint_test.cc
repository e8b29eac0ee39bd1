#include "sluice/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "absl/strings/match.h"

namespace sluice::metrics {
namespace {

// 127.0.0.1, port 0: a free port (HttpEndpoint::port() says which).
packet::Endpoint AnyLoopbackPort() {
  return packet::Endpoint{*packet::IpAddress::Parse("127.0.0.1"), 0};
}

class HttpEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpEndpointOptions options;
    options.listen = AnyLoopbackPort();
    options.max_connections = 2;
    options.max_request_bytes = 256;
    options.timeout_ms = 300;
    auto e = HttpEndpoint::Create(options, [this]() {
      ++renders_;
      return std::string("sluice_up 1\n");
    });
    ASSERT_TRUE(e.ok()) << e.status();
    endpoint_ = *std::move(e);
  }

  int Connect() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(endpoint_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }

  // Sends `request`, polls the endpoint until the server closes, returns
  // all it sent.
  std::string Exchange(const std::string& request) {
    const int fd = Connect();
    EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string reply = ReadUntilClosed(fd);
    close(fd);
    return reply;
  }

  std::string ReadUntilClosed(int fd) {
    std::string reply;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE(endpoint_->Poll(10).ok());
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return reply;
      reply.append(buf, static_cast<size_t>(n));
    }
    ADD_FAILURE() << "the endpoint did not close the connection";
    return reply;
  }

  std::unique_ptr<HttpEndpoint> endpoint_;
  int renders_ = 0;
};

TEST_F(HttpEndpointTest, GetMetricsServesTheRenderedBodyInTheTextFormat) {
  const std::string reply = Exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Type: text/plain; version=0.0.4")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Length: 12\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\nsluice_up 1\n")) << reply;
  EXPECT_EQ(renders_, 1);
  EXPECT_EQ(endpoint_->counters().scrapes, 1u);
}

TEST_F(HttpEndpointTest, HeadGetsTheHeadersOnly) {
  const std::string reply = Exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\n")) << reply;
}

TEST_F(HttpEndpointTest, OtherPathsAre404AndOtherMethods405) {
  EXPECT_TRUE(absl::StartsWith(Exchange("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 "));
  const std::string post = Exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(post, "HTTP/1.1 405 ")) << post;
  EXPECT_TRUE(absl::StrContains(post, "Allow: GET, HEAD\r\n")) << post;
  EXPECT_EQ(endpoint_->counters().not_found, 1u);
  EXPECT_EQ(endpoint_->counters().bad_method, 1u);
  EXPECT_EQ(renders_, 0);
}

TEST_F(HttpEndpointTest, GarbageAndOversizedHeadsAre400AndCounted) {
  EXPECT_TRUE(absl::StartsWith(Exchange("\x16\x03\x01 hello\r\n\r\n"), "HTTP/1.1 400 "));
  EXPECT_TRUE(absl::StartsWith(Exchange("GET /metrics HTTP/1.1\r\nX: " + std::string(400, 'a')),
                               "HTTP/1.1 400 "));
  EXPECT_EQ(endpoint_->counters().bad_requests, 2u);
  EXPECT_EQ(endpoint_->connections(), 0u);
}

TEST_F(HttpEndpointTest, ASilentClientIsClosedAfterTheTimeout) {
  const int fd = Connect();
  EXPECT_EQ(ReadUntilClosed(fd), "");
  close(fd);
  EXPECT_EQ(endpoint_->counters().timeouts, 1u);
}

TEST_F(HttpEndpointTest, ConnectionsBeyondTheLimitAreClosedAtAccept) {
  const int a = Connect();
  const int b = Connect();
  const int c = Connect();
  for (int i = 0; i < 10 && endpoint_->counters().refused == 0; ++i) {
    ASSERT_TRUE(endpoint_->Poll(10).ok());
  }
  EXPECT_EQ(endpoint_->counters().refused, 1u);
  EXPECT_EQ(endpoint_->connections(), 2u);
  close(a);
  close(b);
  close(c);
}

TEST(HttpEndpointCreateTest, AnAddressInUseIsAnError) {
  HttpEndpointOptions options;
  options.listen = AnyLoopbackPort();
  auto first = HttpEndpoint::Create(options, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  options.listen.port = (*first)->port();
  auto second = HttpEndpoint::Create(options, [] { return std::string(); });
  EXPECT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot listen")) << second.status();
}

}  // namespace
}  // namespace sluice::metrics
