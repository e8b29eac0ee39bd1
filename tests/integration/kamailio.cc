#include "kamailio.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "ng_peer.h"

namespace sluice::testing {

SipAgent::~SipAgent() {
  if (fd_ >= 0) close(fd_);
}

bool SipAgent::Open(Topology& topo, const std::string& ns, uint16_t port) {
  auto fd = topo.Socket(ns, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) return false;
  fd_ = *fd;
  port_ = port;
  sockaddr_in a = Addr("127.0.0.1", port);
  return bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

void SipAgent::Send(const std::string& msg, uint16_t to_port) const {
  sockaddr_in to = Addr("127.0.0.1", to_port);
  sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

std::string SipAgent::Receive(int timeout_ms) const {
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return "";
    std::string buf(65536, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) return "";
    buf.resize(static_cast<size_t>(n));
    if (buf.rfind("SIP/2.0 1", 0) == 0) continue;
    return buf;
  }
}

std::string Kamailio::Missing() {
  if (access("/usr/sbin/kamailio", X_OK) != 0) {
    return "kamailio is not installed (scripts/setup-deps installs it)";
  }
  return "";
}

bool Kamailio::Start(Topology& topo, const KamailioOptions& options) {
  sip_port_ = options.sip_port;
  dir_ = std::filesystem::temp_directory_path() /
         absl::StrCat("sluice-kamailio-", getpid(), "-", options.sip_port);
  std::filesystem::create_directories(dir_);
  // The example configuration as it is; the test's addresses as defines.
  auto pid = topo.Spawn(
      options.ns,
      {"sh", "-c",
       absl::StrCat("exec /usr/sbin/kamailio -f ", SourcePath("configs/kamailio/kamailio.cfg"),
                    " -A 'LISTEN=udp:127.0.0.1:", options.sip_port, "'",
                    options.ipv6 ? absl::StrCat(" -A 'LISTEN6=udp:[::1]:", options.sip_port, "'")
                                 : "",
                    " -A 'RTPENGINE_SOCK=\"",
                    options.rtpengine_sock, "\"' -DD -E -Y ", dir_, " -P ", dir_,
                    "/kamailio.pid > ", dir_, "/kamailio.log 2>&1")});
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return false;
  pid_ = *pid;
  SipAgent probe;
  EXPECT_TRUE(probe.Open(topo, options.ns, options.sip_port + 39));
  for (int i = 0; i < 50; ++i) {
    probe.Send(absl::StrCat("OPTIONS sip:127.0.0.1:", options.sip_port, " SIP/2.0\r\n",
                            "Via: SIP/2.0/UDP 127.0.0.1:", probe.port(),
                            ";branch=z9hG4bK-probe", i, "\r\n",
                            "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n",
                            "To: <sip:127.0.0.1>\r\nCall-ID: probe-", i, "\r\nCSeq: 1 OPTIONS\r\n",
                            "Content-Length: 0\r\n\r\n"),
               options.sip_port);
    if (probe.Receive(200).rfind("SIP/2.0 200", 0) == 0) return true;
  }
  ADD_FAILURE() << "kamailio did not answer OPTIONS; log:\n" << Log();
  return false;
}

std::string Kamailio::Log() const {
  std::ifstream log(dir_ + "/kamailio.log");
  return std::string(std::istreambuf_iterator<char>(log), {});
}

Kamailio::~Kamailio() {
  if (pid_ > 0) StopProcess(pid_);
  if (dir_.empty()) return;
  if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
    std::printf("--- kamailio.log ---\n%s\n", Log().c_str());
  }
  std::filesystem::remove_all(dir_);
}

}  // namespace sluice::testing
