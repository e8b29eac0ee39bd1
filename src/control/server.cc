#include "sluice/control/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
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
#include "sluice/log/logger.h"

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
// TLS clients over max_connections that are handshaking to be told so; more
// than this are closed at once.
constexpr size_t kMaxRefusing = 16;
constexpr std::chrono::seconds kCertificateCheckEvery{60};
constexpr time_t kCertificateLogEvery = 24 * 3600;

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

// What an SSL_read or SSL_write that moved nothing means.
enum class TlsIo { kWait, kClosed, kFailed };
TlsIo TlsOutcome(SSL* ssl, int rc) {
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return TlsIo::kWait;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return TlsIo::kClosed;
    default:
      DrainSslErrors();
      return TlsIo::kFailed;
  }
}

std::string PeerAddress(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
    return absl::StrCat(host, ":", port);
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
  port = ntohs(a->sin6_port);
  return absl::StrCat("[", host, "]:", port);
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
  // TLS only:
  SslPtr ssl;
  bool handshaking = false;
  bool refusing = false;    // over max_connections: told so after the handshake, then closed
  std::string peer;         // "address:port", for the log
  // Served: when it last sent bytes or took some of its replies.
  std::chrono::steady_clock::time_point last_active{};
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
  if (options_.tls.has_value()) return OpenTls();
  return absl::OkStatus();
}

absl::Status Server::OpenTls() {
  const TlsServerOptions& tls = *options_.tls;
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = SplitHostPort(tls.listen, "control.tls.listen", &host, &port); !s.ok()) {
    return s;
  }
  if (tls.max_connections == 0) {
    return absl::InvalidArgumentError("control.tls.max_connections must be at least 1");
  }
  absl::StatusOr<std::unique_ptr<TlsServerContext>> context = TlsServerContext::Create(tls);
  if (!context.ok()) return context.status();
  tls_ = std::move(*context);
  counters_.tls = true;
  CheckCertificate();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "control.tls.listen: \"", host, "\" is not an IP address (", gai_strerror(rc), ")"));
  }
  const int family = found->ai_family;
  sockaddr_storage addr{};
  const socklen_t addr_len = found->ai_addrlen;
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);

  tls_fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (tls_fd_ < 0) return ErrnoStatus(errno, "socket");
  const int one = 1;
  setsockopt(tls_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(tls_fd_, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("control.tls.listen: bind ", tls.listen));
  }
  if (listen(tls_fd_, SOMAXCONN) != 0) return ErrnoStatus(errno, "listen");
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (getsockname(tls_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0) {
    tls_port_ = ntohs(bound.ss_family == AF_INET6
                          ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                          : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTlsListener;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, tls_fd_, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl");
  }
  return absl::OkStatus();
}

void Server::CheckCertificate() {
  const auto now = std::chrono::steady_clock::now();
  if (tls_ == nullptr || now < next_certificate_check_) return;
  next_certificate_check_ = now + kCertificateCheckEvery;
  CertificateStatus cert = tls_->Certificate();
  counters_.tls_certificate_not_after = cert.not_after;
  counters_.tls_certificate_warning = std::move(cert.warning);
  const time_t wall = time(nullptr);
  if (!counters_.tls_certificate_warning.empty() &&
      wall - certificate_logged_ >= kCertificateLogEvery) {
    certificate_logged_ = wall;
    log::Event(log::Level::kWarning, "control.tls_certificate",
               {{"warning", counters_.tls_certificate_warning}});
  }
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
  if (tls_fd_ >= 0) close(tls_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  WipeMemory(scratch_.get(), kReadBytes);
}

void Server::PauseAccepting() {
  if (accept_paused_) return;
  log::Event(log::Level::kError, "control.accept_paused",
             {{"reason", "out of file descriptors"}});
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = kUnixListener;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  if (tls_fd_ >= 0) {
    ev.data.u64 = kTlsListener;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, tls_fd_, &ev);
  }
  accept_paused_ = true;
  accept_resume_ = std::chrono::steady_clock::now() + kAcceptPause;
}

void Server::ResumeAccepting() {
  if (!accept_paused_) return;
  if (spare_fd_ < 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kUnixListener;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  if (tls_fd_ >= 0) {
    ev.data.u64 = kTlsListener;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, tls_fd_, &ev);
  }
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
  for (const int next : {ExpireHandshakes(), ExpireIdle()}) {
    if (next >= 0 && (timeout_ms < 0 || timeout_ms > next)) timeout_ms = next;
  }
  CheckCertificate();
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return ErrnoStatus(errno, "epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[i].data.u64;
    if (id == kUnixListener || id == kTlsListener) {
      Accept(id == kTlsListener);
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

void Server::Accept(bool tls) {
  const int listen_fd = tls ? tls_fd_ : listen_fd_;
  for (int i = 0; i < kMaxAcceptsPerPoll; ++i) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EMFILE || err == ENFILE) {
        // Out of descriptors: the pending client would keep the listening
        // socket readable forever. Give up the spare to accept and refuse it.
        if (spare_fd_ >= 0) {
          close(spare_fd_);
          fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          const int again = errno;
          if (fd >= 0 && tls) {
            // No descriptor to spare for a handshake: closed untold.
            ++counters_.connections_refused_limit;
            close(fd);
          } else if (fd >= 0) {
            Refuse(fd, "out of file descriptors");
          }
          spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
          if (fd >= 0) continue;
          if (again == EAGAIN || again == EWOULDBLOCK) return;
        }
        // Not even that: stop watching the listening socket for a while
        // rather than spin on it.
        PauseAccepting();
        return;
      }
      log::Event(log::Level::kError, "control.accept_failed", {{"error", ErrnoText(err)}});
      return;
    }
    if (tls) {
      // The certificate is the credential, checked in the handshake.
      AddTlsConnection(fd, tls_open_ >= options_.tls->max_connections);
      continue;
    }
    const absl::StatusOr<PeerCredentials> peer = GetPeerCredentials(fd);
    if (!peer.ok() || !PeerAllowed(*peer, geteuid(), socket_gid_)) {
      ++counters_.connections_refused_credentials;
      if (peer.ok()) {
        log::Event(log::Level::kNotice, "control.client_refused",
                   {{"pid", peer->pid}, {"uid", peer->uid}, {"gid", peer->gid},
                    {"reason", absl::StrCat("not root, not our user, not in group ", socket_gid_)}});
      } else {
        log::Event(log::Level::kNotice, "control.client_refused",
                   {{"reason", peer.status().message()}});
      }
      close(fd);
      continue;
    }
    if (unix_open_ >= options_.max_connections) {
      Refuse(fd, absl::StrCat("at most ", options_.max_connections));
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = next_id_++;
    c->interest = EPOLLIN;
    if (Register(std::move(c))) ++counters_.connections_accepted;
  }
}

bool Server::Register(std::unique_ptr<Connection> c) {
  epoll_event ev{};
  ev.events = c->interest;
  ev.data.u64 = c->id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    log::Event(log::Level::kError, "control.epoll_failed", {{"error", ErrnoText(errno)}});
    close(c->fd);
    return false;
  }
  ++counters_.connections_open;
  if (c->ssl == nullptr) {
    ++unix_open_;
  } else if (!c->refusing) {
    ++tls_open_;
  }
  connections_.emplace(c->id, std::move(c));
  return true;
}

void Server::HandleEvent(Connection& c, uint32_t events) {
  if (c.handshaking) {
    Handshake(c);  // errors and hang-ups surface as a failed step
    return;
  }
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
  if (c.ssl != nullptr) return ReadTls(c);
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
      const auto start = std::chrono::steady_clock::now();
      const uint64_t errors = counters_.errors;
      std::string reply = HandleLine(operations_, line, &counters_);
      (c.ssl != nullptr ? counters_.over_tls : counters_.native)
          .Record(start, counters_.errors != errors);
      if (!c.peer_gone) c.out.Append(reply.data(), reply.size());
      WipeString(reply);
    }
    c.in.Consume(consumed);
  }
}

bool Server::Flush(Connection& c) {
  if (c.ssl != nullptr) return FlushTls(c);
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
  SetInterest(c, interest);
}

// False (and the connection closed) when epoll refuses.
bool Server::SetInterest(Connection& c, uint32_t interest) {
  if (interest == c.interest) return true;
  epoll_event ev{};
  ev.events = interest;
  ev.data.u64 = c.id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    log::Event(log::Level::kError, "control.epoll_failed", {{"error", ErrnoText(errno)}});
    Close(c);
    return false;
  }
  c.interest = interest;
  return true;
}

// --- TLS ---------------------------------------------------------------------

void Server::AddTlsConnection(int fd, bool refuse) {
  if (refuse && refusing_ >= kMaxRefusing) {
    ++counters_.connections_refused_limit;
    close(fd);
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->id = next_id_++;
  c->ssl = tls_->NewConnection(fd);
  c->handshaking = true;
  c->refusing = refuse;
  c->peer = PeerAddress(fd);
  c->interest = EPOLLIN;
  if (c->ssl == nullptr) {
    log::Event(log::Level::kError, "control.tls_failed", {{"peer", c->peer}, {"error", DrainSslErrors()}});
    close(fd);
    return;
  }
  const uint64_t id = c->id;
  if (!Register(std::move(c))) return;
  if (refuse) ++refusing_;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.tls->handshake_timeout_ms);
  handshakes_.emplace_back(deadline, id);
}

void Server::Handshake(Connection& c) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(c.ssl.get());
  if (rc == 1) {
    c.handshaking = false;
    if (c.refusing) {
      ++counters_.connections_refused_limit;
      const std::string line = EncodeError(
          nullptr, ErrorCode::kResourceExhausted,
          absl::StrCat("too many control connections (at most ", options_.tls->max_connections,
                       " TLS clients); try again later"));
      c.out.Append(line.data(), line.size());
      c.read_closed = true;  // nothing it sends is served; closed once told
    } else {
      ++counters_.tls_connections_accepted;
      c.last_active = std::chrono::steady_clock::now();
      log::Event(log::Level::kInfo, "control.tls_client",
                 {{"peer", c.peer}, {"client", TlsServerContext::Describe(c.ssl.get())}});
      // Requests sent with the handshake's last flight.
      if (!ReadOnce(c)) {
        Close(c);
        return;
      }
    }
    Settle(c);
    return;
  }
  switch (SSL_get_error(c.ssl.get(), rc)) {
    case SSL_ERROR_WANT_READ:
      SetInterest(c, EPOLLIN);
      return;
    case SSL_ERROR_WANT_WRITE:
      SetInterest(c, EPOLLOUT);
      return;
    default:
      break;
  }
  ++counters_.tls_handshakes_failed;
  log::Event(log::Level::kNotice, "control.tls_refused",
             {{"peer", c.peer}, {"reason", TlsServerContext::FailureReason(c.ssl.get())}});
  Close(c);
}

int Server::ExpireHandshakes() {
  const auto now = std::chrono::steady_clock::now();
  while (!handshakes_.empty()) {
    const auto [deadline, id] = handshakes_.front();
    const auto it = connections_.find(id);
    if (it == connections_.end() || !it->second->handshaking) {
      handshakes_.pop_front();
      continue;
    }
    if (deadline > now) {
      return static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    }
    handshakes_.pop_front();
    ++counters_.tls_handshake_timeouts;
    log::Event(log::Level::kNotice, "control.tls_handshake_timeout",
               {{"peer", it->second->peer}, {"timeout_ms", options_.tls->handshake_timeout_ms}});
    Close(*it->second);
  }
  return -1;
}

int Server::ExpireIdle() {
  if (tls_ == nullptr || options_.tls->idle_timeout_ms == 0) return -1;
  const auto now = std::chrono::steady_clock::now();
  const std::chrono::milliseconds idle(options_.tls->idle_timeout_ms);
  if (now < next_idle_check_) {
    return static_cast<int>(
        std::chrono::ceil<std::chrono::milliseconds>(next_idle_check_ - now).count());
  }
  // At most tls max_connections clients: a scan per deadline is cheap.
  auto next = now + idle;
  std::vector<Connection*> expired;
  for (const auto& [id, c] : connections_) {
    if (c->ssl == nullptr || c->handshaking || c->refusing) continue;
    const auto deadline = c->last_active + idle;
    if (deadline <= now) {
      expired.push_back(c.get());
    } else {
      next = std::min(next, deadline);
    }
  }
  for (Connection* c : expired) {
    ++counters_.tls_idle_timeouts;
    log::Event(log::Level::kInfo, "control.tls_idle_closed",
               {{"peer", c->peer}, {"idle_ms", options_.tls->idle_timeout_ms}});
    Close(*c);
  }
  next_idle_check_ = next;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
}

bool Server::ReadTls(Connection& c) {
  // Each SSL_read returns (at most) one whole record: asking for more than a
  // record holds leaves nothing buffered inside OpenSSL that epoll cannot see.
  size_t total = 0;
  while (total < kReadBytes || SSL_pending(c.ssl.get()) > 0) {
    ERR_clear_error();
    const int n = SSL_read(c.ssl.get(), scratch_.get(), static_cast<int>(kReadBytes));
    if (n > 0) {
      c.in.Append(scratch_.get(), static_cast<size_t>(n));
      WipeMemory(scratch_.get(), static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      c.last_active = std::chrono::steady_clock::now();
      continue;
    }
    // Reset, or closed without close_notify (a truncated request is not
    // served): kFailed.
    switch (TlsOutcome(c.ssl.get(), n)) {
      case TlsIo::kWait:
        if (c.peer_gone) c.read_closed = true;
        return true;
      case TlsIo::kClosed:
        c.read_closed = true;
        return true;
      case TlsIo::kFailed:
        return false;
    }
  }
  return true;
}

bool Server::FlushTls(Connection& c) {
  while (!c.out.empty()) {
    ERR_clear_error();
    const int n = SSL_write(c.ssl.get(), c.out.data(),
                            static_cast<int>(std::min<size_t>(c.out.size(), 1 << 30)));
    if (n > 0) {
      c.out.Consume(static_cast<size_t>(n));
      c.last_active = std::chrono::steady_clock::now();
      continue;
    }
    if (TlsOutcome(c.ssl.get(), n) != TlsIo::kWait) return false;
    return true;
  }
  return true;
}

void Server::Close(Connection& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.ssl != nullptr && !c.handshaking && !c.peer_gone) {
    ERR_clear_error();
    SSL_shutdown(c.ssl.get());  // close_notify, if the socket takes it now
    DrainSslErrors();
  }
  if (c.refusing) {
    --refusing_;
  } else if (c.ssl != nullptr) {
    --tls_open_;
  } else {
    --unix_open_;
  }
  close(c.fd);
  --counters_.connections_open;
  connections_.erase(c.id);  // frees (and wipes) c
  ResumeAccepting();         // a descriptor is free again
}

}  // namespace sluice::control
