#include "webrtc_peer_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace sluice::testing {

absl::StatusOr<std::unique_ptr<PeerProcess>> PeerProcess::Start(
    Topology& topology, const std::string& ns, const std::vector<std::string>& argv) {
  static int count = 0;
  std::unique_ptr<PeerProcess> p(new PeerProcess());
  p->dir_ = std::filesystem::temp_directory_path() /
            absl::StrCat("sluice-webrtc-peer-", getpid(), "-", ++count);
  std::filesystem::create_directories(p->dir_);
  const std::string in = p->dir_ + "/in", out = p->dir_ + "/out";
  if (mkfifo(in.c_str(), 0600) != 0 || mkfifo(out.c_str(), 0600) != 0) {
    return absl::InternalError(absl::StrCat("mkfifo in ", p->dir_, ": ", std::strerror(errno)));
  }
  // Both ends opened read-write here: no open blocks, and the peer sees the
  // end of its input when this process is gone (killed or not).
  p->in_fd_ = open(in.c_str(), O_RDWR | O_CLOEXEC);
  p->out_fd_ = open(out.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (p->in_fd_ < 0 || p->out_fd_ < 0) {
    return absl::InternalError(absl::StrCat("open fifo: ", std::strerror(errno)));
  }
  std::vector<std::string> cmd = {
      "sh", "-c", absl::StrCat("exec \"$@\" <", in, " >", out, " 2>", p->dir_, "/log"), "sh"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  absl::StatusOr<pid_t> pid = topology.Spawn(ns, cmd);
  if (!pid.ok()) return pid.status();
  p->pid_ = *pid;
  return p;
}

PeerProcess::~PeerProcess() {
  Stop();
  if (::testing::Test::HasFailure()) {
    std::printf("--- %s/log ---\n%s\n", dir_.c_str(), Log().c_str());
  }
  if (in_fd_ >= 0) close(in_fd_);
  if (out_fd_ >= 0) close(out_fd_);
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

void PeerProcess::Stop() {
  if (pid_ <= 0) return;
  const std::string quit = "{\"cmd\": \"quit\"}\n";
  (void)!write(in_fd_, quit.data(), quit.size());
  int status = 0;
  for (int sig : {0, SIGTERM, SIGKILL}) {
    if (sig != 0) kill(pid_, sig);
    for (int i = 0; i < 60; ++i) {  // 3 s for each step
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string PeerProcess::Log() const {
  std::ifstream log(dir_ + "/log");
  return std::string(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
}

bool PeerProcess::ReadLine(int timeout_ms, std::string* line) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (const size_t nl = pending_.find('\n'); nl != std::string::npos) {
      *line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    // The pid check notices a peer that died (its pipe never reports an end:
    // this process holds a writer too).
    pollfd pfd = {out_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 200))) == 1) {
      char buf[4096];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n > 0) pending_.append(buf, static_cast<size_t>(n));
    } else if (pid_ <= 0 || waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
  }
}

nlohmann::json PeerProcess::Call(const nlohmann::json& request, int timeout_ms) {
  const std::string line = request.dump() + "\n";
  if (pid_ <= 0 || write(in_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  std::string reply;
  if (!ReadLine(timeout_ms, &reply)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(reply, nullptr, false);
}

}  // namespace sluice::testing
