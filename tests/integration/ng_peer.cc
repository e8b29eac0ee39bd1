#include "ng_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/ng/sdp.h"
#include "sluice/srtp/sdes.h"

namespace sluice::testing {

NgClient::~NgClient() {
  if (fd_ >= 0) close(fd_);
}

bool NgClient::Open(Topology& topo, const std::string& ns, const std::string& ip, uint16_t port,
                    const std::string& source_ip) {
  auto fd = topo.Socket(ns, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) return false;
  fd_ = *fd;
  if (!source_ip.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source_ip.c_str(), &from.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) return false;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &to.sin_addr);
  return connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0;
}

std::string NgClient::RawText(const std::string& datagram, int timeout_ms) {
  if (send(fd_, datagram.data(), datagram.size(), 0) < 0) return "";
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "";
  std::string buf(65536, '\0');
  const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
  if (n <= 0) return "";
  buf.resize(static_cast<size_t>(n));
  return buf;
}

std::string NgClient::Raw(const std::string& cookie, const ng::Value& request) {
  const ng::String body = ng::Encode(request);
  return RawText(absl::StrCat(cookie, " ", std::string(body.data(), body.size())), 2000);
}

std::string NgClient::ReplyTo(const std::string& cookie, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string buf(65536, '\0');
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    pollfd p{fd_, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) != 1) return "";
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) return "";
    // A late reply to an earlier request (its cookie) is not this one's.
    if (buf.compare(0, cookie.size() + 1, cookie + " ") == 0) {
      return buf.substr(cookie.size() + 1, static_cast<size_t>(n) - cookie.size() - 1);
    }
  }
}

ng::Value NgClient::Call(const ng::Value& request) {
  const std::string cookie = absl::StrCat("t", getpid(), "_", ++next_);
  const ng::String body = ng::Encode(request);
  const std::string datagram = absl::StrCat(cookie, " ", std::string(body.data(), body.size()));
  if (send(fd_, datagram.data(), datagram.size(), 0) < 0) return ng::Value(ng::Value::Dict{});
  // Sluice answers in milliseconds; the deadline is for a loaded machine
  // (CI runs the whole suite on two cores, aiortc and Kamailio included).
  const std::string reply = ReplyTo(cookie, 10000);
  absl::StatusOr<ng::Value> v = ng::Decode(reply);
  return v.ok() ? *v : ng::Value(ng::Value::Dict{});
}

std::string NewSdesKey() {
  srtp::SdesCrypto c;
  c.key.suite = crypto::Suite::kAesCm128HmacSha1_80;
  RAND_bytes(c.key.key.data(), 16);
  RAND_bytes(c.key.salt.data(), 14);
  return srtp::FormatSdesCrypto(c);
}

std::string PhoneSdp(const std::string& ip, uint16_t port, const std::string& proto,
                     const std::vector<std::string>& keys) {
  const char* family = ip.find(':') == std::string::npos ? "IP4 " : "IP6 ";
  std::string sdp = absl::StrCat("v=0\r\no=phone 1 1 IN ", family, ip, "\r\ns=-\r\nc=IN ",
                                 family, ip,
                                 "\r\nt=0 0\r\nm=audio ", port, " ", proto,
                                 " 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                                 "a=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n");
  for (size_t i = 0; i < keys.size(); ++i) absl::StrAppend(&sdp, "a=crypto:", i + 1, " ", keys[i], "\r\n");
  return sdp + "a=sendrecv\r\n";
}

ng::Value NgCommand(const std::string& command, const std::string& call_id) {
  ng::Value r(ng::Value::Dict{});
  r.Set("command", command);
  if (!call_id.empty()) r.Set("call-id", call_id);
  return r;
}

ng::Value NgOffer(const std::string& call_id, const std::string& from_tag, const std::string& sdp) {
  ng::Value r = NgCommand("offer", call_id);
  r.Set("from-tag", from_tag);
  r.Set("sdp", sdp);
  r.Set("flags", ng::Value(ng::Value::List{"trust-address"}));
  r.Set("direction", ng::Value(ng::Value::List{"a", "b"}));
  return r;
}

ng::Value NgAnswer(const std::string& call_id, const std::string& from_tag,
                   const std::string& to_tag, const std::string& sdp) {
  ng::Value r = NgOffer(call_id, from_tag, sdp);
  r.Set("command", "answer");
  r.Set("to-tag", to_tag);
  return r;
}

std::string Result(const ng::Value& reply) {
  const ng::Value* v = reply.Find("result");
  return v && v->is_string() ? std::string(v->str()) : "<no result>";
}

std::string ErrorReason(const ng::Value& reply) {
  const ng::Value* v = reply.Find("error-reason");
  return v && v->is_string() ? std::string(v->str()) : "";
}

SdpView ViewSdp(const std::string& sdp) {
  SdpView view;
  absl::StatusOr<ng::Sdp> parsed = ng::ParseSdp(sdp);
  if (!parsed.ok() || parsed->media.empty()) return view;
  if (std::optional<packet::IpAddress> ip = parsed->Address(0)) view.ip = ip->ToString();
  view.port = parsed->media[0].port;
  view.proto = parsed->media[0].proto;
  for (const ng::SdpCrypto& c : parsed->media[0].crypto) {
    view.crypto.emplace_back(c.value.data(), c.value.size());
  }
  return view;
}

SdpView ViewSdp(const ng::Value& reply) {
  const ng::Value* sdp = reply.Find("sdp");
  return sdp && sdp->is_string() ? ViewSdp(std::string(sdp->str())) : SdpView{};
}

namespace {

// A process's start time (/proc/<pid>/stat's 22nd field), or "" when it is
// gone: with the pid, what tells it from a later process given its pid.
std::string StartTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  // Fields after the command (which may hold spaces) start past its ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
  }
  return field;
}

// The children of `pid`, each with its start time.
std::vector<std::pair<pid_t, std::string>> Children(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  std::vector<std::pair<pid_t, std::string>> out;
  for (pid_t child; in >> child;) out.emplace_back(child, StartTime(child));
  return out;
}

}  // namespace

void StopProcess(pid_t pid) {
  if (pid <= 0) return;
  const std::vector<std::pair<pid_t, std::string>> children = Children(pid);
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  for (const auto& [child, started] : children) {
    if (!started.empty() && StartTime(child) == started) kill(child, SIGKILL);
  }
}

absl::StatusOr<pid_t> StartRtpengine(Topology& topo, const std::string& ns,
                                     const std::string& args, uint16_t ng_port,
                                     const std::string& log) {
  absl::StatusOr<pid_t> pid = topo.Spawn(
      ns, {"sh", "-c",
           absl::StrCat("exec /usr/bin/rtpengine --foreground --log-stderr --table=-1 "
                        "--no-fallback --listen-ng=127.0.0.1:", ng_port, " ", args, " > ", log,
                        " 2>&1")});
  if (!pid.ok()) return pid;
  for (int i = 0; i < 50; ++i) {
    NgClient probe;
    if (probe.Open(topo, ns, "127.0.0.1", ng_port) &&
        Result(probe.Call(NgCommand("ping", ""))) == "pong") {
      return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  StopProcess(*pid);
  return absl::UnavailableError("rtpengine did not answer ping (its log: " + log + ")");
}

}  // namespace sluice::testing
