#include "sluice/control/server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sluice/control/client.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59  // Linux 4.13
#endif

namespace sluice::control {
namespace {

constexpr size_t kReadBytes = 64 * 1024;
constexpr int kMaxEvents = 64;
constexpr int kMaxAcceptsPerPoll = 64;
// Out of descriptors even for refusing: how long the listening socket is
// left alone (unless a connection closes first).
constexpr std::chrono::milliseconds kAcceptPause{100};

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", ErrnoText(err)));
}

bool FillSockaddr(absl::string_view path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// Bytes with a read position. Consumed bytes are wiped, and so is the old
// array when it grows or is freed: requests and replies can carry keys.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Release(); }

  const char* data() const { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }

  void Append(const char* bytes, size_t n) {
    if (n == 0) return;
    if (capacity_ - end_ < n) MakeRoom(n);
    std::memcpy(data_.get() + end_, bytes, n);
    end_ += n;
  }

  void Consume(size_t n) {
    n = std::min(n, size());
    WipeMemory(data_.get() + begin_, n);
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
      // A large buffer is not kept for an idle client.
      if (capacity_ > kKeepBytes) Release();
    }
  }

  void Clear() { Consume(size()); }

  void Release() {
    if (data_ != nullptr) WipeMemory(data_.get(), capacity_);
    data_.reset();
    capacity_ = begin_ = end_ = 0;
  }

 private:
  static constexpr size_t kKeepBytes = 128 * 1024;

  void MakeRoom(size_t n) {
    const size_t live = size();
    if (capacity_ - live >= n && begin_ >= live) {
      // Enough room once compacted, and the moved bytes do not overlap
      // their old place, which is wiped.
      std::memcpy(data_.get(), data(), live);
      WipeMemory(data_.get() + begin_, live);
      begin_ = 0;
      end_ = live;
      return;
    }
    const size_t capacity = std::max({capacity_ * 2, live + n, size_t{4096}});
    auto grown = std::make_unique<char[]>(capacity);
    if (live != 0) std::memcpy(grown.get(), data(), live);
    Release();
    data_ = std::move(grown);
    capacity_ = capacity;
    end_ = live;
  }

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

absl::StatusOr<PeerCredentials> GetPeerCredentials(int fd) {
  PeerCredentials peer;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus(errno, "SO_PEERCRED");
  }
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  peer.groups.resize(32);
  for (;;) {
    socklen_t bytes = static_cast<socklen_t>(peer.groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, peer.groups.data(), &bytes) == 0) {
      peer.groups.resize(bytes / sizeof(gid_t));
      break;
    }
    if (errno == ERANGE && bytes > peer.groups.size() * sizeof(gid_t)) {
      peer.groups.resize(bytes / sizeof(gid_t) + 1);
      continue;
    }
    // An old kernel: only the primary group counts.
    peer.groups.clear();
    break;
  }
  return peer;
}

absl::StatusOr<gid_t> LookUpGroup(const std::string& name) {
  std::vector<char> buf(16384);
  group entry{};
  group* result = nullptr;
  for (;;) {
    const int err = getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &result);
    if (err == ERANGE && buf.size() < (size_t{1} << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (err != 0) return ErrnoStatus(err, absl::StrCat("looking up group \"", name, "\""));
    if (result == nullptr) {
      return absl::NotFoundError(absl::StrCat("control.group: no group named \"", name, "\""));
    }
    return entry.gr_gid;
  }
}

// Creates the missing directories above `path`, mode 0750, in `gid` when set.
absl::Status MakeParents(const std::string& path, std::optional<gid_t> gid) {
  std::vector<std::string> missing;
  std::string dir = path.substr(0, path.rfind('/'));
  while (!dir.empty()) {
    struct stat st {};
    if (stat(dir.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
      }
      break;
    }
    if (errno != ENOENT) return ErrnoStatus(errno, dir);
    missing.push_back(dir);
    dir = dir.substr(0, dir.rfind('/'));
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (mkdir(it->c_str(), 0750) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("creating ", *it));
    }
    // mkdir's mode is filtered by the umask; the group needs r-x to reach the socket.
    if (chmod(it->c_str(), 0750) != 0) return ErrnoStatus(errno, absl::StrCat("chmod ", *it));
    if (gid.has_value() && chown(it->c_str(), static_cast<uid_t>(-1), *gid) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chown ", *it));
    }
  }
  return absl::OkStatus();
}

// A socket file at `path` that nothing listens on is left over from a
// daemon that did not exit cleanly: remove it. Anything else stays.
absl::Status RemoveStaleSocket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; not replacing it"));
  }
  sockaddr_un addr;
  FillSockaddr(path, &addr);
  // Non-blocking: a live daemon with a full backlog answers EAGAIN, not a wait.
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoStatus(errno, "socket");
  const int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(probe);
  if (rc == 0 || err == EAGAIN) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, ": another process is listening on it (is sluiced already running?)"));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("removing stale socket ", path));
  }
  return absl::OkStatus();
}

}  // namespace

bool PeerAllowed(const PeerCredentials& peer, uid_t own_uid, gid_t socket_gid) {
  if (peer.uid == 0 || peer.uid == own_uid || peer.gid == socket_gid) return true;
  return std::find(peer.groups.begin(), peer.groups.end(), socket_gid) != peer.groups.end();
}

struct Server::Connection {
  int fd = -1;
  uint64_t id = 0;
  Buffer in;                // received bytes: at most a partial line, or lines waiting for `out` to drain
  Buffer out;               // replies not yet sent
  bool discarding = false;  // inside a line longer than kMaxLineBytes: dropped up to its '\n'
  bool read_closed = false; // the client sent EOF
  bool peer_gone = false;   // the client closed: its requests still run, replies go nowhere
  uint32_t interest = 0;    // the epoll events registered
};

Server::Server(Operations& operations, ServerOptions options)
    : operations_(operations),
      options_(std::move(options)),
      scratch_(std::make_unique<char[]>(kReadBytes)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Operations& operations,
                                                       ServerOptions options) {
  std::unique_ptr<Server> server(new Server(operations, std::move(options)));
  if (absl::Status s = server->Open(); !s.ok()) return s;
  return server;
}

absl::Status Server::Open() {
  const std::string& path = options_.socket_path;
  sockaddr_un addr;
  if (path.empty() || path[0] != '/' || !FillSockaddr(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "control socket path must be absolute and shorter than ", sizeof(addr.sun_path),
        " bytes: ", path));
  }
  if (options_.max_connections == 0) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  std::optional<gid_t> gid;
  if (!options_.group.empty()) {
    absl::StatusOr<gid_t> looked_up = LookUpGroup(options_.group);
    if (!looked_up.ok()) return looked_up.status();
    gid = *looked_up;
  }
  if (absl::Status s = MakeParents(path, gid); !s.ok()) return s;
  if (absl::Status s = RemoveStaleSocket(path); !s.ok()) return s;

  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoStatus(errno, "socket");
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", path));
  }
  // Until listen() nobody can connect, so the mode and group are right
  // before the first client arrives.
  struct stat st {};
  absl::Status status;
  if (chmod(path.c_str(), 0660) != 0) {
    status = ErrnoStatus(errno, absl::StrCat("chmod ", path));
  } else if (gid.has_value() && chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
    status = ErrnoStatus(errno, absl::StrCat("chown ", path, " to group ", options_.group));
  } else if (stat(path.c_str(), &st) != 0) {
    status = ErrnoStatus(errno, path);
  } else if (listen(listen_fd_, SOMAXCONN) != 0) {
    status = ErrnoStatus(errno, "listen");
  }
  if (!status.ok()) {
    unlink(path.c_str());
    return status;
  }
  socket_gid_ = st.st_gid;
  socket_dev_ = st.st_dev;
  socket_ino_ = st.st_ino;

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return ErrnoStatus(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl");
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return absl::OkStatus();
}

Server::~Server() {
  while (!connections_.empty()) Close(*connections_.begin()->second);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    // Only our own socket: another daemon may have replaced it since.
    struct stat st {};
    if (lstat(options_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
        st.st_ino == socket_ino_) {
      unlink(options_.socket_path.c_str());
    }
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  WipeMemory(scratch_.get(), kReadBytes);
}

void Server::Log(absl::string_view message) const {
  if (options_.log) options_.log(message);
}

void Server::PauseAccepting() {
  if (accept_paused_) return;
  Log("control: out of file descriptors; not accepting clients for a moment");
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = 0;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  accept_paused_ = true;
  accept_resume_ = std::chrono::steady_clock::now() + kAcceptPause;
}

void Server::ResumeAccepting() {
  if (!accept_paused_) return;
  if (spare_fd_ < 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  accept_paused_ = false;
}

absl::Status Server::Poll(int timeout_ms) {
  if (accept_paused_) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= accept_resume_) {
      ResumeAccepting();
    } else {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(accept_resume_ - now).count();
      if (timeout_ms < 0 || timeout_ms > left) timeout_ms = static_cast<int>(left);
    }
  }
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return ErrnoStatus(errno, "epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[i].data.u64;
    if (id == 0) {
      Accept();
      continue;
    }
    // Gone already if an earlier event in this batch closed it.
    const auto it = connections_.find(id);
    if (it != connections_.end()) HandleEvent(*it->second, events[i].events);
  }
  return absl::OkStatus();
}

void Server::Refuse(int fd, absl::string_view why) {
  ++counters_.connections_refused_limit;
  const std::string line =
      EncodeError(nullptr, ErrorCode::kResourceExhausted,
                  absl::StrCat("too many control connections (", why, "); try again later"));
  // Best effort: a fresh socket's buffer has room for one line.
  (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
}

void Server::Accept() {
  for (int i = 0; i < kMaxAcceptsPerPoll; ++i) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EMFILE || err == ENFILE) {
        // Out of descriptors: the pending client would keep the listening
        // socket readable forever. Give up the spare to accept and refuse it.
        if (spare_fd_ >= 0) {
          close(spare_fd_);
          fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          const int again = errno;
          if (fd >= 0) Refuse(fd, "out of file descriptors");
          spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
          if (fd >= 0) continue;
          if (again == EAGAIN || again == EWOULDBLOCK) return;
        }
        // Not even that: stop watching the listening socket for a while
        // rather than spin on it.
        PauseAccepting();
        return;
      }
      Log(absl::StrCat("control: accept: ", ErrnoText(err)));
      return;
    }
    const absl::StatusOr<PeerCredentials> peer = GetPeerCredentials(fd);
    if (!peer.ok() || !PeerAllowed(*peer, geteuid(), socket_gid_)) {
      ++counters_.connections_refused_credentials;
      if (peer.ok()) {
        Log(absl::StrCat("control: refused a client (pid ", peer->pid, ", uid ", peer->uid,
                         ", gid ", peer->gid, "): not root, not our user, not in group ",
                         socket_gid_));
      } else {
        Log(absl::StrCat("control: refused a client: ", peer.status().message()));
      }
      close(fd);
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      Refuse(fd, absl::StrCat("at most ", options_.max_connections));
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = next_id_++;
    c->interest = EPOLLIN;
    epoll_event ev{};
    ev.events = c->interest;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      Log(absl::StrCat("control: epoll_ctl: ", ErrnoText(errno)));
      close(fd);
      continue;
    }
    ++counters_.connections_accepted;
    ++counters_.connections_open;
    connections_.emplace(c->id, std::move(c));
  }
}

void Server::HandleEvent(Connection& c, uint32_t events) {
  if (events & EPOLLERR) {
    Close(c);
    return;
  }
  if (events & EPOLLHUP) {
    // The client closed both directions. Requests it sent still run (a
    // client may write a request and close); the replies go nowhere.
    c.peer_gone = true;
    c.out.Clear();
    while (!c.read_closed) {
      if (!ReadOnce(c)) break;
      ProcessInput(c);
    }
    c.read_closed = true;
    ProcessInput(c);
    Close(c);
    return;
  }
  if ((events & EPOLLOUT) && !Flush(c)) {
    Close(c);
    return;
  }
  if ((events & EPOLLIN) && !c.read_closed && !ReadOnce(c)) {
    Close(c);
    return;
  }
  Settle(c);
}

bool Server::ReadOnce(Connection& c) {
  const ssize_t n = recv(c.fd, scratch_.get(), kReadBytes, MSG_DONTWAIT);
  if (n > 0) {
    c.in.Append(scratch_.get(), static_cast<size_t>(n));
    WipeMemory(scratch_.get(), static_cast<size_t>(n));
    return true;
  }
  if (n == 0) {
    c.read_closed = true;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    // Nothing now. In the EPOLLHUP drain this means everything was read.
    if (c.peer_gone) c.read_closed = true;
    return true;
  }
  return false;
}

void Server::ProcessInput(Connection& c) {
  while (c.peer_gone || c.out.size() < options_.max_output_bytes) {
    const absl::string_view pending(c.in.data(), c.in.size());
    const size_t newline = pending.find('\n');
    if (c.discarding) {
      if (newline == absl::string_view::npos) {
        c.in.Clear();
        return;
      }
      c.in.Consume(newline + 1);
      c.discarding = false;
      continue;
    }
    absl::string_view line;
    size_t consumed = 0;
    if (newline != absl::string_view::npos) {
      line = pending.substr(0, newline);
      consumed = newline + 1;
    } else if (pending.size() > kMaxLineBytes + 1) {
      // Too long already and no end in sight: refuse it now and drop the
      // rest of it as it arrives. (+1: a '\r' before the '\n' is allowed.)
      line = pending;
      consumed = pending.size();
      c.discarding = true;
    } else if (c.read_closed && !pending.empty()) {
      line = pending;  // the last request, without its '\n'
      consumed = pending.size();
    } else {
      return;
    }
    absl::ConsumeSuffix(&line, "\r");
    if (line.size() > kMaxLineBytes) {
      ++counters_.requests;
      ++counters_.errors;
      ++counters_.lines_too_long;
      const std::string reply = EncodeError(
          nullptr, ErrorCode::kInvalidRequest,
          absl::StrCat("line longer than ", kMaxLineBytes,
                       " bytes; it was discarded and the connection stays usable"));
      if (!c.peer_gone) c.out.Append(reply.data(), reply.size());
    } else if (!absl::StripAsciiWhitespace(line).empty()) {
      std::string reply = HandleLine(operations_, line, &counters_);
      if (!c.peer_gone) c.out.Append(reply.data(), reply.size());
      WipeString(reply);
    }
    c.in.Consume(consumed);
  }
}

bool Server::Flush(Connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.Consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  return true;
}

void Server::Settle(Connection& c) {
  // Replies sent make room for waiting requests, whose replies may be sent.
  for (;;) {
    const size_t in_before = c.in.size();
    ProcessInput(c);
    const size_t out_before = c.out.size();
    if (!Flush(c)) {
      Close(c);
      return;
    }
    if (c.in.size() == in_before && c.out.size() == out_before) break;
    if (c.out.size() >= options_.max_output_bytes) break;
  }
  if (c.read_closed && c.out.empty()) {
    Close(c);
    return;
  }
  uint32_t interest = 0;
  if (!c.read_closed && c.out.size() < options_.max_output_bytes) interest |= EPOLLIN;
  if (!c.out.empty()) interest |= EPOLLOUT;
  if (interest != c.interest) {
    epoll_event ev{};
    ev.events = interest;
    ev.data.u64 = c.id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
      Log(absl::StrCat("control: epoll_ctl: ", ErrnoText(errno)));
      Close(c);
      return;
    }
    c.interest = interest;
  }
}

void Server::Close(Connection& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  --counters_.connections_open;
  connections_.erase(c.id);  // frees (and wipes) c
  ResumeAccepting();         // a descriptor is free again
}

// ---------------------------------------------------------------------------
// Client (client.h): here, beside the server, for the socket helpers above.

absl::StatusOr<Client> Client::Connect(absl::string_view socket_path, int timeout_ms) {
  sockaddr_un addr;
  if (!FillSockaddr(socket_path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat("bad socket path: ", socket_path));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  Client client(fd);
  if (timeout_ms > 0) {
    timeval tv{};
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", socket_path, ": ", ErrnoText(err)));
  }
  return client;
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      scanned_(std::exchange(other.scanned_, 0)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    WipeString(buffer_);
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    scanned_ = std::exchange(other.scanned_, 0);
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
  WipeString(buffer_);
}

absl::Status Client::Write(absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::DeadlineExceededError("timed out writing to the control socket");
    }
    return absl::UnavailableError(
        absl::StrCat("writing to the control socket: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Client::ReadLine() {
  for (;;) {
    const size_t newline = buffer_.find('\n', scanned_);
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      // Shift the rest down in place, wiping what it leaves behind.
      const size_t rest = buffer_.size() - newline - 1;
      std::memmove(buffer_.data(), buffer_.data() + newline + 1, rest);
      WipeMemory(buffer_.data() + rest, buffer_.size() - rest);
      buffer_.resize(rest);
      scanned_ = 0;
      return line;
    }
    scanned_ = buffer_.size();
    char chunk[16384];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      if (buffer_.capacity() - buffer_.size() < static_cast<size_t>(n)) {
        // Grow by hand so the old array is wiped.
        std::string grown;
        grown.reserve(std::max(buffer_.capacity() * 2, buffer_.size() + static_cast<size_t>(n)));
        grown.append(buffer_);
        WipeString(buffer_);
        buffer_ = std::move(grown);
      }
      buffer_.append(chunk, static_cast<size_t>(n));
      WipeMemory(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return absl::UnavailableError("the control socket closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError("timed out waiting for a reply on the control socket");
    }
    return absl::UnavailableError(
        absl::StrCat("reading from the control socket: ", ErrnoText(errno)));
  }
}

absl::StatusOr<std::string> Client::Call(absl::string_view request) {
  if (!request.empty() && request.back() == '\n') {
    if (absl::Status s = Write(request); !s.ok()) return s;
  } else {
    std::string line;
    line.reserve(request.size() + 1);
    line.append(request.data(), request.size());
    line.push_back('\n');
    absl::Status s = Write(line);
    WipeString(line);
    if (!s.ok()) return s;
  }
  return ReadLine();
}

}  // namespace sluice::control
