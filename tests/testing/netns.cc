#include "netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace sluice::testing {
namespace {

constexpr char kPrefix[] = "sluice-";
constexpr char kNetnsDir[] = "/run/netns";

// Namespaces alive in this process, for the signal handler. Fixed-size and
// plain chars, so the handler reads them without allocating.
constexpr int kMaxLive = 64;
constexpr int kNameLen = 64;
char live_names[kMaxLive][kNameLen];
volatile sig_atomic_t live_used[kMaxLive];
std::mutex live_mu;
std::once_flag handlers_once;
struct sigaction previous[NSIG];

const char* FindIp() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return nullptr;
}

// fork + execv + waitpid: async-signal-safe enough for the handler.
int RunIpSignalSafe(const char* ip, const char* const argv[]) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execv(ip, const_cast<char* const*>(argv));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void DeleteNamespace(const char* name) {
  const char* ip = FindIp();
  if (ip == nullptr) return;
  const char* argv[] = {ip, "netns", "delete", name, nullptr};
  RunIpSignalSafe(ip, argv);
}

void OnSignal(int sig) {
  for (int i = 0; i < kMaxLive; ++i) {
    if (live_used[i]) {
      DeleteNamespace(live_names[i]);
      live_used[i] = 0;
    }
  }
  // Re-raise with the previous disposition so the process ends as it would have.
  sigaction(sig, &previous[sig], nullptr);
  raise(sig);
}

void InstallHandlers() {
  std::call_once(handlers_once, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction sa = {};
      sa.sa_handler = OnSignal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESETHAND;
      sigaction(sig, &sa, &previous[sig]);
    }
  });
}

void Track(const std::string& name) {
  std::lock_guard<std::mutex> lock(live_mu);
  for (int i = 0; i < kMaxLive; ++i) {
    if (!live_used[i]) {
      std::strncpy(live_names[i], name.c_str(), kNameLen - 1);
      live_names[i][kNameLen - 1] = '\0';
      live_used[i] = 1;
      return;
    }
  }
}

void Untrack(const std::string& name) {
  std::lock_guard<std::mutex> lock(live_mu);
  for (int i = 0; i < kMaxLive; ++i) {
    if (live_used[i] && name == live_names[i]) live_used[i] = 0;
  }
}

absl::Status RunCommand(const std::vector<std::string>& argv) {
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(pipefd[1]);
  std::string output;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("`", absl::StrJoin(argv, " "),
                                            "` failed: ", output));
  }
  return absl::OkStatus();
}

bool ProcessAlive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

void SweepStaleNamespaces() {
  DIR* dir = opendir(kNetnsDir);
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(dir)) {
    absl::string_view name = e->d_name;
    if (!absl::StartsWith(name, kPrefix)) continue;
    absl::string_view rest = name.substr(sizeof(kPrefix) - 1);
    size_t dash = rest.find('-');
    int pid = 0;
    if (dash == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dash), &pid)) {
      continue;
    }
    if (!ProcessAlive(pid)) stale.emplace_back(name);
  }
  closedir(dir);
  for (const std::string& name : stale) DeleteNamespace(name.c_str());
}

bool Topology::Supported(std::string* why) {
  if (geteuid() != 0) {
    *why = "network namespaces need root";
    return false;
  }
  if (FindIp() == nullptr) {
    *why = "iproute2 (ip) is not installed";
    return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Topology>> Topology::Create() {
  std::string why;
  if (!Supported(&why)) return absl::FailedPreconditionError(why);
  InstallHandlers();
  SweepStaleNamespaces();
  return std::unique_ptr<Topology>(new Topology());
}

Topology::~Topology() { Destroy(); }

std::string Topology::FullName(const std::string& name) const {
  return absl::StrCat(kPrefix, getpid(), "-", name);
}

absl::StatusOr<std::string> Topology::AddNamespace(const std::string& name) {
  const std::string full = FullName(name);
  if (full.size() >= kNameLen) {
    return absl::InvalidArgumentError(absl::StrCat("namespace name too long: ", name));
  }
  if (absl::Status s = RunCommand({"ip", "netns", "add", full}); !s.ok()) return s;
  namespaces_.push_back(full);
  Track(full);
  if (absl::Status s = RunCommand({"ip", "-n", full, "link", "set", "lo", "up"}); !s.ok()) {
    return s;
  }
  return full;
}

absl::Status Topology::AddVeth(const std::string& ns_a, const std::string& if_a,
                               const std::string& addr_a, const std::string& ns_b,
                               const std::string& if_b, const std::string& addr_b) {
  const std::string full_a = FullName(ns_a);
  const std::string full_b = FullName(ns_b);
  // Create both ends inside namespace a, then move b's end: the host's own
  // namespace never holds either end, even for a moment.
  if (absl::Status s = RunCommand({"ip", "-n", full_a, "link", "add", if_a, "type",
                                   "veth", "peer", "name", if_b, "netns", full_b});
      !s.ok()) {
    return s;
  }
  struct End {
    const std::string& ns;
    const std::string& ifname;
    const std::string& addr;
  };
  for (const End& end : {End{full_a, if_a, addr_a}, End{full_b, if_b, addr_b}}) {
    if (!end.addr.empty()) {
      std::vector<std::string> cmd = {"ip", "-n", end.ns};
      if (end.addr.find(':') != std::string::npos) cmd.push_back("-6");
      cmd.insert(cmd.end(), {"addr", "add", end.addr, "dev", end.ifname});
      if (end.addr.find(':') != std::string::npos) cmd.push_back("nodad");
      if (absl::Status s = RunCommand(cmd); !s.ok()) return s;
    }
    if (absl::Status s = RunCommand({"ip", "-n", end.ns, "link", "set", end.ifname, "up"});
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Topology::DisableChecksumOffload(const std::string& ns, const std::string& ifname) {
  return RunCommand({"ip", "netns", "exec", FullName(ns), "ethtool", "-K", ifname, "tx", "off",
                     "rx", "off"});
}

absl::Status Topology::Run(const std::string& name, const std::vector<std::string>& argv) {
  std::vector<std::string> cmd = {"ip", "netns", "exec", FullName(name)};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return RunCommand(cmd);
}

absl::StatusOr<pid_t> Topology::Spawn(const std::string& name,
                                      const std::vector<std::string>& argv) {
  std::vector<std::string> cmd = {"ip", "netns", "exec", FullName(name)};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  for (const std::string& a : cmd) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  return pid;
}

absl::StatusOr<int> Topology::Socket(const std::string& name, int domain, int type,
                                     int protocol) {
  const std::string path = absl::StrCat(kNetnsDir, "/", FullName(name));
  int ns_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) {
    return absl::NotFoundError(absl::StrCat("no namespace ", path, ": ", strerror(errno)));
  }
  // setns() changes only the calling thread; a short-lived thread enters the
  // namespace, opens the socket there and exits. The socket keeps its
  // namespace for life.
  int fd = -1;
  int err = 0;
  std::thread([&] {
    if (setns(ns_fd, CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) err = errno;
  }).join();
  close(ns_fd);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket in ", name, ": ", strerror(err)));
  }
  return fd;
}

void Topology::Destroy() {
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    DeleteNamespace(it->c_str());
    Untrack(*it);
  }
  namespaces_.clear();
}

}  // namespace sluice::testing
