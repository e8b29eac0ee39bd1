#include "sluiced_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sluice/control/client.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string ShellQuote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

absl::StatusOr<std::string> DefaultSluicedPath() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return absl::InternalError(absl::StrCat("/proc/self/exe: ", ec.message()));
  return (self.parent_path().parent_path() / "src" / "sluiced").string();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const std::string& sluiced,
                                                      const std::string& config,
                                                      const std::string& socket,
                                                      const std::string& log,
                                                      testing::Topology* topo) {
  std::unique_ptr<Daemon> d(new Daemon(log));
  if (topo != nullptr) {
    // ip netns exec and sh both exec: the pid is sluiced's own.
    absl::StatusOr<pid_t> pid = topo->Spawn(
        "relay", {"sh", "-c",
                  absl::StrCat("exec ", ShellQuote(sluiced), " --config ", ShellQuote(config),
                               " >", ShellQuote(log), " 2>&1")});
    if (!pid.ok()) return pid.status();
    d->pid_ = *pid;
  } else {
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // no daemon outlives a killed benchmark
      if (freopen(log.c_str(), "w", stdout) == nullptr ||
          dup2(STDOUT_FILENO, STDERR_FILENO) < 0) {
        _exit(127);
      }
      execl(sluiced.c_str(), sluiced.c_str(), "--config", config.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    d->pid_ = pid;
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(d->pid_, &status, WNOHANG) == d->pid_) {
      d->pid_ = -1;
      return absl::UnavailableError(absl::StrCat("sluiced exited (status ", status,
                                                 ") before opening its socket:\n",
                                                 d->LogTail()));
    }
    if (control::Client::Connect(socket, 1000).ok()) return d;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("sluiced did not open its control socket within 30 s:\n", d->LogTail()));
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::Status Daemon::Stop() {
  if (pid_ <= 0) return absl::FailedPreconditionError("sluiced is not running");
  kill(pid_, SIGTERM);
  int status = 0;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
  pid_t done = 0;
  while ((done = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (done == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return absl::DeadlineExceededError(
        absl::StrCat("sluiced did not exit within 10 s of SIGTERM:\n", LogTail()));
  }
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      "sluiced ended with ",
      WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                        : absl::StrCat("signal ", WTERMSIG(status)),
      " after SIGTERM:\n", LogTail()));
}

std::string Daemon::LogTail() const {
  std::ifstream in(log_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
  return text;
}

}  // namespace sluice::bench
