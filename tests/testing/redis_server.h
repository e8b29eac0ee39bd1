// A real redis-server for tests: started on a Unix socket in a temporary
// directory of its own, no TCP port, no persistence; stopped, paused and
// started again by the test. Header-only.
//
// Test thread only.
#ifndef SLUICE_TESTS_TESTING_REDIS_SERVER_H_
#define SLUICE_TESTS_TESTING_REDIS_SERVER_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

namespace sluice::testing {

class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  static bool Installed() { return access(kBinary, X_OK) == 0; }

  RedisServer() {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-redis-" + std::to_string(getpid()) + "-" + std::to_string(++count_));
    std::filesystem::create_directories(dir_);
    socket_ = dir_ + "/redis.sock";
  }
  ~RedisServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts it (empty); true once its socket exists (within 10 s).
  bool Start() {
    std::filesystem::remove(socket_);
    pid_ = fork();
    if (pid_ == 0) {
      execl(kBinary, kBinary, "--port", "0", "--unixsocket", socket_.c_str(), "--unixsocketperm",
            "777", "--save", "", "--appendonly", "no", "--dir", dir_.c_str(), "--logfile",
            (dir_ + "/redis.log").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      if (std::filesystem::exists(socket_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Stops it (SIGKILL: what it held is gone).
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // A paused server accepts connections and answers nothing.
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

  // A command through a connection of the test's own: its reply as a
  // string (a bulk, status or integer reply; "" for others), or nullopt on an error
  // reply or no connection.
  std::optional<std::string> Command(const std::vector<std::string>& args) const {
    redisContext* c = redisConnectUnix(socket_.c_str());
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return std::nullopt;
    }
    std::vector<const char*> argv;
    std::vector<size_t> len;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), len.data()));
    std::optional<std::string> out;
    if (r != nullptr && r->type != REDIS_REPLY_ERROR) {
      out.emplace();
      if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) out->assign(r->str, r->len);
      if (r->type == REDIS_REPLY_INTEGER) *out = std::to_string(r->integer);
    }
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return out;
  }

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }

 private:
  inline static int count_ = 0;
  std::string dir_, socket_;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_REDIS_SERVER_H_
