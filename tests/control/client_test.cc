// Client against a real Unix-socket peer: a thread in this test that accepts
// one connection and follows a script (read lines, write bytes, close, or
// stay silent). Covers what the client promises: one request line out, one
// reply line back without its '\n', lines split or joined in any way on the
// wire, replies larger than one read, errors for a closed or silent peer.
// The TLS side of the client is tested in tls_test.cc.
#include "sluice/control/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;

constexpr int kTimeoutMs = 5000;

// Reads from `fd` through the next '\n' (kept); what it has at end of stream.
std::string ReadThroughNewline(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1) {
    line.push_back(c);
    if (c == '\n') break;
  }
  return line;
}

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Listens at a fresh path; its thread accepts one connection, runs the
// script on it and closes it.
class Peer {
 public:
  explicit Peer(std::function<void(int fd)> script) {
    static std::atomic<int> counter{0};
    path_ = absl::StrCat("/tmp/sluice-client-test-", getpid(), "-", counter++, ".sock");
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    unlink(path_.c_str());
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 1), 0);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      script(fd);
      close(fd);
    });
  }
  ~Peer() {
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept() when no client came
    Join();
    close(listen_fd_);
    unlink(path_.c_str());
  }
  // Waits until the script has run and the connection is closed.
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

TEST(ClientTest, CallSendsOneLineAndReturnsTheReplyWithoutNewline) {
  std::string received;
  Peer peer([&received](int fd) {
    received = ReadThroughNewline(fd);
    WriteAll(fd, "{\"id\":1,\"ok\":true}\n");
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> reply = client->Call(R"({"id":1,"op":"ping"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, R"({"id":1,"ok":true})");
  peer.Join();
  EXPECT_EQ(received, "{\"id\":1,\"op\":\"ping\"}\n");
}

TEST(ClientTest, CallDoesNotAddASecondNewline) {
  std::string received;
  Peer peer([&received](int fd) {
    received = ReadThroughNewline(fd);
    WriteAll(fd, "a\n");
    // Anything after the first line would show here.
    char c;
    if (read(fd, &c, 1) == 1) received.push_back(c);
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> reply = client->Call("request\n");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "a");
  client = absl::UnavailableError("closed");  // closes the connection
  peer.Join();
  EXPECT_EQ(received, "request\n");
}

TEST(ClientTest, ReadLineReturnsLinesOneAtATimeHoweverTheyArrive) {
  Peer peer([](int fd) {
    WriteAll(fd, "one\ntwo\nthr");  // two lines and a half in one write
    ReadThroughNewline(fd);         // until the client has read the first two
    WriteAll(fd, "ee\n\nfour\n");
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->ReadLine().value_or("?"), "one");
  EXPECT_EQ(client->ReadLine().value_or("?"), "two");
  ASSERT_TRUE(client->Write("go\n").ok());
  EXPECT_EQ(client->ReadLine().value_or("?"), "three");
  EXPECT_EQ(client->ReadLine().value_or("?"), "");
  EXPECT_EQ(client->ReadLine().value_or("?"), "four");
}

TEST(ClientTest, ReadsAReplyLargerThanOneRead) {
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); i += 1000) big[i] = static_cast<char>('a' + i / 1000 % 26);
  Peer peer([&big](int fd) {
    ReadThroughNewline(fd);
    WriteAll(fd, big + "\nafter\n");
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::string> reply = client->Call("big");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, big);
  EXPECT_EQ(client->ReadLine().value_or("?"), "after");
}

TEST(ClientTest, PeerThatClosesEndsTheStreamAfterItsLastLine) {
  Peer peer([](int fd) { WriteAll(fd, "last\npartial"); });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->ReadLine().value_or("?"), "last");
  absl::StatusOr<std::string> end = client->ReadLine();
  EXPECT_EQ(end.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(end.status().message(), HasSubstr("closed the connection"));
}

TEST(ClientTest, WritingToAClosedPeerIsUnavailable) {
  Peer peer([](int) {});
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  peer.Join();  // the peer has closed its end
  absl::StatusOr<std::string> reply = client->Call("ping");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
}

TEST(ClientTest, SilentPeerTimesOut) {
  std::atomic<bool> done{false};
  Peer peer([&done](int fd) {
    ReadThroughNewline(fd);
    while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), 200);
  ASSERT_TRUE(client.ok()) << client.status();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> reply = client->Call("ping");
  const auto waited = std::chrono::steady_clock::now() - start;
  done.store(true);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_LT(waited, std::chrono::milliseconds(kTimeoutMs));
}

TEST(ClientTest, ConnectErrorsSayWhere) {
  const std::string missing = absl::StrCat("/tmp/sluice-client-test-", getpid(), "-none.sock");
  absl::StatusOr<Client> client = Client::Connect(missing, kTimeoutMs);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(client.status().message(), HasSubstr(missing));

  EXPECT_EQ(Client::Connect("", kTimeoutMs).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Connect(std::string(200, 'p'), kTimeoutMs).status().code(),
            absl::StatusCode::kInvalidArgument);

  TlsConnectOptions tls;
  tls.address = "no-port-here";
  absl::StatusOr<Client> over_tls = Client::ConnectTls(tls, kTimeoutMs);
  EXPECT_EQ(over_tls.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over_tls.status().message(), HasSubstr("--connect"));
}

TEST(ClientTest, MovedClientKeepsTheConnection) {
  Peer peer([](int fd) {
    ReadThroughNewline(fd);
    WriteAll(fd, "pong\n");
  });
  absl::StatusOr<Client> client = Client::Connect(peer.path(), kTimeoutMs);
  ASSERT_TRUE(client.ok()) << client.status();
  const int fd = client->fd();
  Client moved(std::move(*client));
  EXPECT_EQ(client->fd(), -1);
  EXPECT_EQ(moved.fd(), fd);
  EXPECT_EQ(moved.Call("ping").value_or("?"), "pong");
}

}  // namespace
}  // namespace sluice::control
