#include "sluice/control/server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fake_operations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/control/client.h"
#include "sluice/control/protocol.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::FakeOperations;
using testing::kGeneratedKeyMarker;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutMs = 5000;

Json Parse(const std::string& line) {
  Json j = Json::parse(line, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << line;
  return j;
}

std::string Ping(int id) { return absl::StrCat(R"({"id":)", id, R"(,"op":"ping"})", "\n"); }

// A connected AF_UNIX socket, or -1.
int RawConnect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = absl::StrCat("/tmp/sluice-ctl-test-", getpid(), "-", counter++);
    path_ = dir_ + "/run/control.sock";  // neither directory exists yet
  }

  void TearDown() override {
    Stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(ServerOptions options = {}) {
    options.socket_path = path_;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Create(ops_, std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    running_ = true;
    thread_ = std::thread([this] {
      while (running_) {
        if (absl::Status s = server_->Poll(10); !s.ok()) ADD_FAILURE() << s;
      }
    });
  }

  // The server's counters are the polling thread's: read them after Stop().
  void Stop() {
    if (thread_.joinable()) {
      running_ = false;
      thread_.join();
    }
  }

  Client Connect() {
    absl::StatusOr<Client> c = Client::Connect(path_, kTimeoutMs);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  Json Next(Client& c) {
    absl::StatusOr<std::string> line = c.ReadLine();
    EXPECT_TRUE(line.ok()) << line.status();
    return line.ok() ? Parse(*line) : Json();
  }

  Json Call(Client& c, const std::string& request) {
    absl::StatusOr<std::string> reply = c.Call(request);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? Parse(*reply) : Json();
  }

  FakeOperations ops_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> running_{false};
};

TEST_F(ServerTest, Ping) {
  Start();
  Client c = Connect();
  const Json r = Call(c, R"({"id":"p","op":"ping"})");
  EXPECT_EQ(r["id"], "p");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["version"], "9.9.9-test");
  EXPECT_EQ(r["workers"], 3);
}

TEST_F(ServerTest, SocketModeAndDirectories) {
  Start();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  // The socket goes away with the server.
  Stop();
  server_.reset();
  EXPECT_NE(access(path_.c_str(), F_OK), 0);
}

TEST_F(ServerTest, SocketGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another group needs root";
  const group* daemon_group = getgrnam("daemon");
  ASSERT_NE(daemon_group, nullptr);
  const gid_t gid = daemon_group->gr_gid;
  ServerOptions options;
  options.group = "daemon";
  Start(options);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid);
}

TEST_F(ServerTest, UnknownGroupRefused) {
  ServerOptions options;
  options.socket_path = path_;
  options.group = "no-such-group-sluice";
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Create(ops_, options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("no-such-group-sluice"));
}

TEST_F(ServerTest, StaleSocketReplacedLiveOneAndFilesKept) {
  std::filesystem::create_directories(dir_ + "/run");
  // A socket file nobody listens on: what a crashed daemon leaves behind.
  {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  Start();
  Client c = Connect();
  EXPECT_EQ(Call(c, Ping(1))["ok"], true);

  // A second server on the same path finds the first one alive.
  ServerOptions options;
  options.socket_path = path_;
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Create(ops_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Call(c, Ping(2))["ok"], true);

  // Not a socket: left alone.
  const std::string file = dir_ + "/run/file";
  std::ofstream(file) << "data";
  options.socket_path = file;
  second = Server::Create(ops_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(file));

  options.socket_path = "relative.sock";
  EXPECT_EQ(Server::Create(ops_, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrder) {
  Start();
  Client c = Connect();
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    switch (i % 4) {
      case 0: batch += Ping(i); break;
      case 1: absl::StrAppend(&batch, R"({"id":)", i, R"(,"op":"session.get","session":"none"})", "\n"); break;
      case 2: absl::StrAppend(&batch, R"({"id":)", i, R"(,"op":"stats"})", "\n"); break;
      case 3: absl::StrAppend(&batch, R"({"id":)", i, R"(,"op":"bogus"})", "\n"); break;
    }
  }
  ASSERT_TRUE(c.Write(batch).ok());
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::string> line = c.ReadLine();
    ASSERT_TRUE(line.ok()) << i << ": " << line.status();
    const Json r = Parse(*line);
    ASSERT_EQ(r["id"], i);
    EXPECT_EQ(r["ok"], i % 4 == 0 || i % 4 == 2) << *line;
    if (i % 4 == 1) {
      EXPECT_EQ(r["error"]["code"], "not_found");
    } else if (i % 4 == 3) {
      EXPECT_EQ(r["error"]["code"], "invalid_request");
    }
  }
  Stop();
  EXPECT_EQ(server_->counters().requests, 1000u);
  EXPECT_EQ(server_->counters().errors, 500u);
}

TEST_F(ServerTest, LongLineRefusedConnectionStaysUsable) {
  Start();
  Client c = Connect();
  const std::string long_line =
      absl::StrCat(R"({"id":1,"op":"ping","pad":")", std::string(70 * 1024, 'x'), "\"}\n");
  ASSERT_TRUE(c.Write(long_line + Ping(2)).ok());
  Json r = Next(c);
  EXPECT_TRUE(r["id"].is_null());
  EXPECT_EQ(r["error"]["code"], "invalid_request");
  EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("longer than 65536"));
  EXPECT_EQ(Next(c)["id"], 2);

  // A line at the limit is fine (here with a "\r\n" ending).
  std::string at_limit = R"({"id":3,"op":"ping"})";
  at_limit.insert(1, std::string(kMaxLineBytes - at_limit.size(), ' '));
  EXPECT_EQ(Call(c, at_limit + "\r\n")["id"], 3);

  // Refused before its end arrives; the rest of it is dropped up to '\n'.
  ASSERT_TRUE(c.Write(std::string(100 * 1024, 'y')).ok());
  r = Next(c);
  EXPECT_EQ(r["error"]["code"], "invalid_request");
  ASSERT_TRUE(c.Write(std::string(50 * 1024, 'z')).ok());
  ASSERT_TRUE(c.Write("tail of the long line\n" + Ping(4)).ok());
  EXPECT_EQ(Next(c)["id"], 4);
  Stop();
  EXPECT_EQ(server_->counters().lines_too_long, 2u);
}

TEST_F(ServerTest, HalfLinesWaitForTheirEnd) {
  Start();
  Client c = Connect();
  ASSERT_TRUE(c.Write(R"({"id":7,"op":)").ok());
  EXPECT_FALSE(Readable(c.fd(), 200));
  ASSERT_TRUE(c.Write("\"ping\"}\n").ok());
  EXPECT_EQ(Next(c)["id"], 7);
  // One byte at a time.
  const std::string request = Ping(8);
  for (char ch : request) {
    ASSERT_TRUE(c.Write(std::string(1, ch)).ok());
  }
  EXPECT_EQ(Next(c)["id"], 8);
}

TEST_F(ServerTest, GarbageAnsweredConnectionStaysUsable) {
  Start();
  Client c = Connect();
  ASSERT_TRUE(c.Write(std::string("\x00\x01\xff garbage {{{\n", 16)).ok());
  Json r = Next(c);
  EXPECT_TRUE(r["id"].is_null());
  EXPECT_EQ(r["error"]["code"], "parse_error");
  EXPECT_EQ(Call(c, R"({"id":1})")["error"]["code"], "invalid_request");
  // Blank lines get no reply.
  ASSERT_TRUE(c.Write("\n\n \t \r\n" + Ping(5)).ok());
  EXPECT_EQ(Next(c)["id"], 5);
}

TEST_F(ServerTest, RepliesAfterHalfClose) {
  Start();
  const int fd = RawConnect(path_);
  ASSERT_GE(fd, 0);
  // The last request may lack its '\n' when the client closes its side.
  const std::string requests = Ping(1) + R"({"id":2,"op":"ping"})";
  ASSERT_EQ(write(fd, requests.data(), requests.size()), static_cast<ssize_t>(requests.size()));
  shutdown(fd, SHUT_WR);
  std::string received;
  char buf[4096];
  while (Readable(fd, kTimeoutMs)) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    received.append(buf, n);
  }
  close(fd);
  EXPECT_EQ(received,
            R"({"id":1,"ok":true,"version":"9.9.9-test","workers":3})"
            "\n"
            R"({"id":2,"ok":true,"version":"9.9.9-test","workers":3})"
            "\n");
}

TEST_F(ServerTest, RequestsFromAClosedClientStillRun) {
  Start();
  const int fd = RawConnect(path_);
  ASSERT_GE(fd, 0);
  const std::string request =
      R"({"id":1,"op":"session.create","session":"s","legs":[{"name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true}},{"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true}}]})"
      "\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  close(fd);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (ops_.calls == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(ops_.calls, 1u);
  Client c = Connect();
  EXPECT_EQ(Call(c, R"({"id":2,"op":"session.get","session":"s"})")["ok"], true);
}

TEST_F(ServerTest, IdleConnectionsDoNotSlowOthers) {
  Start();
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = RawConnect(path_);
    ASSERT_GE(fd, 0);
    // Some idle clients sit on half a request.
    if (i % 2 == 0) {
      ASSERT_EQ(write(fd, "{\"id\":", 6), 6);
    }
    idle.push_back(fd);
  }
  Client c = Connect();
  const auto start = Clock::now();
  auto slowest = Clock::duration::zero();
  for (int i = 0; i < 200; ++i) {
    const auto t = Clock::now();
    ASSERT_EQ(Call(c, Ping(i))["id"], i);
    slowest = std::max(slowest, Clock::now() - t);
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_LT(slowest, std::chrono::seconds(1));
  Stop();
  EXPECT_EQ(server_->connections(), 201u);
  for (int fd : idle) close(fd);
}

TEST_F(ServerTest, ClientThatStopsReadingDoesNotBlockOthers) {
  ServerOptions options;
  options.max_output_bytes = 64 * 1024;
  Start(options);
  // A sends as fast as it can and never reads, until nothing more goes in.
  const int a = RawConnect(path_);
  ASSERT_GE(a, 0);
  ASSERT_EQ(fcntl(a, F_SETFL, O_NONBLOCK), 0);
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += R"({"id":0,"op":"ping"})" "\n";
  const size_t line_bytes = chunk.size() / 1000;
  size_t sent = 0;
  int stalls = 0;
  while (stalls < 30) {
    const size_t offset = sent % chunk.size();
    const ssize_t n = send(a, chunk.data() + offset, chunk.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      stalls = 0;
    } else {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
      ++stalls;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  const size_t lines = (sent + line_bytes - 1) / line_bytes;  // the last may be partial

  // B is served promptly all the same, and A's requests are waiting.
  Client b = Connect();
  const auto t = Clock::now();
  const Json stats = Call(b, R"({"id":"b","op":"stats"})");
  EXPECT_EQ(stats["id"], "b");
  EXPECT_LT(Clock::now() - t, std::chrono::seconds(1));
  EXPECT_LT(stats["control"]["requests"].get<uint64_t>(), lines);

  // Once A reads, every reply arrives.
  std::atomic<size_t> replies{0};
  std::thread reader([&] {
    std::string buf(65536, '\0');
    while (replies < lines && Readable(a, kTimeoutMs)) {
      const ssize_t n = recv(a, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      replies += static_cast<size_t>(std::count(buf.begin(), buf.begin() + n, '\n'));
    }
  });
  // Finish the partial last line.
  ASSERT_EQ(fcntl(a, F_SETFL, 0), 0);
  const size_t rest = lines * line_bytes - sent;
  const size_t offset = sent % chunk.size();
  ASSERT_EQ(send(a, chunk.data() + offset, rest, MSG_NOSIGNAL), static_cast<ssize_t>(rest));
  reader.join();
  EXPECT_EQ(replies, lines);
  close(a);
}

TEST_F(ServerTest, OverMaxConnectionsRefusedWithResourceExhausted) {
  ServerOptions options;
  options.max_connections = 3;
  Start(options);
  std::vector<Client> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(Connect());
    EXPECT_EQ(Call(clients.back(), Ping(i))["ok"], true);
  }
  for (int i = 0; i < 2; ++i) {
    Client extra = Connect();
    absl::StatusOr<std::string> line = extra.ReadLine();
    ASSERT_TRUE(line.ok()) << line.status();
    const Json r = Parse(*line);
    EXPECT_TRUE(r["id"].is_null());
    EXPECT_EQ(r["ok"], false);
    EXPECT_EQ(r["error"]["code"], "resource_exhausted");
    EXPECT_EQ(extra.ReadLine().status().code(), absl::StatusCode::kUnavailable);  // closed
  }
  // A freed slot is usable again.
  clients.pop_back();
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  bool served = false;
  while (!served && Clock::now() < deadline) {
    Client c = Connect();
    const Json r = Call(c, Ping(9));
    served = r["ok"] == true;
  }
  EXPECT_TRUE(served);
  EXPECT_EQ(Call(clients[0], Ping(10))["ok"], true);
  Stop();
  EXPECT_GE(server_->counters().connections_refused_limit, 2u);
}

// Out of file descriptors: clients beyond what the process can hold are
// refused with resource_exhausted (through the spare descriptor), not left
// hanging, and the server keeps serving.
TEST_F(ServerTest, OutOfFileDescriptorsRefusesCleanly) {
  Start();
  constexpr int kClients = 20;
  constexpr int kFree = 5;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_GE(clients.back(), 0);
  }
  // Leave exactly kFree descriptor numbers free below the limit.
  std::vector<int> open_fds;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    open_fds.push_back(std::stoi(entry.path().filename().string()));
  }
  // Less the directory's own descriptor, closed by now.
  open_fds.erase(std::remove_if(open_fds.begin(), open_fds.end(),
                                [](int fd) { return fcntl(fd, F_GETFD) == -1; }),
                 open_fds.end());
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlim_t limit = 0;
  for (;; ++limit) {
    const auto below = std::count_if(open_fds.begin(), open_fds.end(),
                                     [&](int fd) { return static_cast<rlim_t>(fd) < limit; });
    if (static_cast<rlim_t>(limit - below) == kFree) break;
  }
  rlimit lowered = saved;
  lowered.rlim_cur = limit;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
  int served = 0, refused = 0;
  for (int fd : clients) {
    ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string ping = Ping(1);
    // A refused client may find the server's end closed already (EPIPE);
    // its reply is there to read all the same.
    (void)!send(fd, ping.data(), ping.size(), MSG_NOSIGNAL);
    ASSERT_TRUE(Readable(fd, kTimeoutMs));
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    const Json r = Parse(std::string(buf, n - 1));
    if (r["ok"] == true) {
      ++served;
    } else {
      EXPECT_EQ(r["error"]["code"], "resource_exhausted");
      ++refused;
    }
  }
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(served, kFree);
  EXPECT_EQ(refused, kClients - served);
  for (int fd : clients) close(fd);
  Client c = Connect();
  EXPECT_EQ(Call(c, Ping(2))["ok"], true);
}

TEST(PeerAllowed, RootOwnUserAndGroupMembers) {
  const uid_t own = 1000;
  const gid_t group = 500;
  EXPECT_TRUE(PeerAllowed({1, 0, 99, {}}, own, group));          // root
  EXPECT_TRUE(PeerAllowed({1, 1000, 99, {}}, own, group));       // the daemon's user
  EXPECT_TRUE(PeerAllowed({1, 2000, 500, {}}, own, group));      // primary group
  EXPECT_TRUE(PeerAllowed({1, 2000, 99, {7, 500}}, own, group)); // supplementary group
  EXPECT_FALSE(PeerAllowed({1, 2000, 99, {7, 8}}, own, group));
  EXPECT_FALSE(PeerAllowed({1, 2000, 99, {}}, own, group));
}

// In a child process as another user: 0 when served, 1 when refused
// (closed without a reply), 2 when it could not connect.
int ConnectAs(const std::string& path, uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      _exit(3);
    }
    const int fd = RawConnect(path);
    if (fd < 0) _exit(2);
    const char request[] = "{\"id\":1,\"op\":\"ping\"}\n";
    (void)!send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL);
    char buf[256];
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kTimeoutMs) != 1) _exit(4);
    const ssize_t n = read(fd, buf, sizeof(buf));
    _exit(n > 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(ServerTest, PeerCredentialsChecked) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as other users";
  const group* nogroup = getgrnam("nogroup");
  ASSERT_NE(nogroup, nullptr);
  const gid_t gid = nogroup->gr_gid;
  ServerOptions options;
  options.group = "nogroup";
  Start(options);
  // Open the file system up, so only SO_PEERCRED stands in the way.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chmod((dir_ + "/run").c_str(), 0755), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);
  EXPECT_EQ(ConnectAs(path_, 65534, 12345, {}), 1);        // neither root nor in the group
  EXPECT_EQ(ConnectAs(path_, 65534, gid, {}), 0);          // primary group
  EXPECT_EQ(ConnectAs(path_, 65534, 12345, {gid}), 0);     // supplementary group
  EXPECT_EQ(ConnectAs(path_, 0, 12345, {}), 0);            // root
  Stop();
  EXPECT_EQ(server_->counters().connections_refused_credentials, 1u);
}

// --- sluicectl, the built binary against this server ------------------------

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SluicectlTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    binary_ = std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "src" /
              "sluicectl";
    ASSERT_TRUE(std::filesystem::exists(binary_)) << binary_;
    Start();
  }

  RunResult Run(const std::string& args, const std::string& input = "") {
    const std::string in = dir_ + "/stdin", out = dir_ + "/stdout", err = dir_ + "/stderr";
    std::ofstream(in) << input;
    const std::string command = absl::StrCat("'", binary_.string(), "' --socket '", path_, "' ",
                                             args, " <'", in, "' >'", out, "' 2>'", err, "'");
    const int status = std::system(command.c_str());
    RunResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  std::filesystem::path binary_;
};

constexpr char kCreateBody[] = R"({"session":"call-1","legs":[
  {"name":"a","interface":"a","remote":"10.200.1.2:40000","rtcp":"mux",
   "rx":{"crypto":"AES_CM_128_HMAC_SHA1_80 inline:WVNfX19GTFUOQUdCRUhFSzcyMzMzMzMzMzMzMzMz"},
   "tx":{"suite":"AEAD_AES_256_GCM"}},
  {"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true}}]})";

TEST_F(SluicectlTest, PingAndJson) {
  RunResult r = Run("ping");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "sluiced 9.9.9-test, 3 workers\n");
  r = Run("--json ping");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"id\":1,\"ok\":true,\"version\":\"9.9.9-test\",\"workers\":3}\n");
}

TEST_F(SluicectlTest, SessionLifecycle) {
  std::ofstream(dir_ + "/call.json") << kCreateBody;
  RunResult r = Run(absl::StrCat("session create --file '", dir_, "/call.json'"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("session call-1"));
  EXPECT_THAT(r.out, HasSubstr("10.0.0.1:30000"));
  EXPECT_THAT(r.out, HasSubstr("10.200.1.2:40000"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("leg a tx crypto (give to the peer): AEAD_AES_256_GCM inline:",
                                            kGeneratedKeyMarker)));
  EXPECT_THAT(r.out, Not(HasSubstr("WVNfX19GTFUOQUdC")));  // the rx key it sent

  // The same session again, as a full request on stdin: an error reply.
  r = Run("session create --file -",
          absl::StrCat(R"({"id":"mine","op":"session.create",)", std::string(kCreateBody).substr(1)));
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("already_exists"));

  r = Run("session get call-1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("AES_CM_128_HMAC_SHA1_80"));
  EXPECT_THAT(r.out, HasSubstr("RX PKTS"));
  EXPECT_THAT(r.out, Not(HasSubstr(kGeneratedKeyMarker)));
  EXPECT_THAT(r.out, Not(HasSubstr("give to the peer")));

  r = Run("session update call-1 b --tx-suite AES_CM_128_HMAC_SHA1_32 --remote 10.0.0.7:4000");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("leg b tx crypto (give to the peer): AES_CM_128_HMAC_SHA1_32 inline:"));
  EXPECT_THAT(r.out, HasSubstr("10.0.0.7:4000"));

  const std::string attr = "AES_CM_128_HMAC_SHA1_80 inline:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
  r = Run("session update call-1 a --rx-crypto -", attr + "\n");
  EXPECT_EQ(r.code, 0) << r.err;
  r = Run("session update call-1 a --rx-crypto -", attr + "\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("key_reuse"));
  EXPECT_THAT(r.err, Not(HasSubstr("QUFBQUFB")));

  r = Run("session list");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("call-1"));
  EXPECT_THAT(r.out, HasSubstr("1 of 1 sessions"));
  r = Run("session list --offset 1 --limit 5");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 of 1 sessions"));

  r = Run("stats");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sessions: 1"));
  EXPECT_THAT(r.out, HasSubstr("no_flow"));
  EXPECT_THAT(r.out, HasSubstr("25.0%"));

  r = Run("--json session delete call-1");
  EXPECT_EQ(r.code, 0) << r.err;
  const Json deleted = Parse(r.out.substr(0, r.out.size() - 1));
  EXPECT_EQ(deleted["session"], "call-1");

  r = Run("session get call-1");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("not_found"));
  r = Run("--json session get call-1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Parse(r.out.substr(0, r.out.size() - 1))["error"]["code"], "not_found");
}

TEST_F(SluicectlTest, UsageAndConnectionErrors) {
  for (const char* args : {"", "bogus", "session", "session frob", "session get",
                           "session update call-1 a", "session update call-1 a --rx-plain --rx-crypto x",
                           "session list --limit many", "ping extra", "session create",
                           "session create --file /nonexistent/file"}) {
    const RunResult r = Run(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_THAT(r.err, HasSubstr("sluicectl: ")) << args;
  }
  // An error the daemon reports is 1, not 2.
  EXPECT_EQ(Run("session get 'bad name'").code, 1);
  EXPECT_EQ(Run("session list --limit 5000").code, 1);

  const std::string command = absl::StrCat("'", binary_.string(),
                                           "' --socket /nonexistent/sluice.sock ping 2>/dev/null");
  const int status = std::system(command.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_EQ(Run("--help").code, 0);
}

}  // namespace
}  // namespace sluice::control
