// The lite agent against aioice (Debian python3-aioice), an independent
// STUN/ICE implementation: aioice builds the checks and verifies the answers
// (MESSAGE-INTEGRITY, FINGERPRINT, XOR-MAPPED-ADDRESS), and a full aioice
// agent runs ICE against the lite agent over loopback UDP.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "sluice/ice/lite_agent.h"

namespace sluice::ice {
namespace {

constexpr const char* kLocalUfrag = "sluiceA1";
constexpr const char* kLocalPwd = "L0calPasswordOfTheLeg+/x";
constexpr const char* kPeerUfrag = "aioiceB2";
constexpr const char* kPeerPwd = "AioicePasswordOfThePeer1";

struct PeerRun {
  int exit_code = -1;
  std::string out;
};

// Runs aioice_peer.py with `args` (only ice-chars, hex and digits: no quoting
// needed) and returns its exit code and output.
PeerRun Peer(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " SLUICE_AIOICE_PEER " " + args + " 2>&1";
  PeerRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

class AioiceInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    const int rc = std::system("/usr/bin/python3 -c 'import aioice' 2>/dev/null");
    ASSERT_EQ(rc, 0) << "python3-aioice is missing: run scripts/setup-deps";
    auto a = LiteAgent::Create(MakeIceCredentials(kLocalUfrag, kLocalPwd),
                               MakeIceCredentials(kPeerUfrag, kPeerPwd));
    ASSERT_TRUE(a.ok()) << a.status();
    agent_.emplace(std::move(*a));
  }

  // An aioice check: its bytes and transaction id (hex).
  static std::pair<std::vector<uint8_t>, std::string> AioiceCheck(const std::string& pwd,
                                                                  const std::string& flags) {
    const PeerRun r = Peer(std::string("request ") + kLocalUfrag + ":" + kPeerUfrag + " " + pwd +
                       " " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::vector<std::string> parts = absl::StrSplit(r.out, ' ');
    if (parts.size() != 2) return {};
    const std::string bytes = absl::HexStringToBytes(parts[0]);
    return {std::vector<uint8_t>(bytes.begin(), bytes.end()), parts[1]};
  }

  static std::string Hex(const std::vector<uint8_t>& v) {
    return absl::BytesToHexString(std::string(v.begin(), v.end()));
  }

  std::optional<LiteAgent> agent_;
};

TEST_F(AioiceInterop, AioiceVerifiesTheAnswerToItsCheck) {
  for (const char* from : {"192.0.2.7:40000", "[2001:db8::7]:40002"}) {
    const auto [check, txid] = AioiceCheck(kLocalPwd, "--use-candidate");
    const packet::Endpoint ep = *packet::Endpoint::Parse(from);
    const CheckResult r = agent_->Handle(check, ep, 1000);
    ASSERT_EQ(r.outcome, CheckOutcome::kAnswered) << IceDropReasonName(r.reason);
    EXPECT_EQ(agent_->selected(), ep);
    const std::string where = ep.ip.ToString() + " " + std::to_string(ep.port);
    PeerRun v =
        Peer("verify " + std::string(kLocalPwd) + " " + txid + " " + where + " " + Hex(r.response));
    EXPECT_EQ(v.exit_code, 0) << v.out;
    EXPECT_EQ(v.out, "ok");
    // aioice's verification can fail: under another key it refuses.
    v = Peer("verify " + std::string(kPeerPwd) + " " + txid + " " + where + " " + Hex(r.response));
    EXPECT_EQ(v.exit_code, 1) << v.out;
    EXPECT_NE(v.out.find("integrity"), std::string::npos) << v.out;
  }
  EXPECT_EQ(agent_->counters().nominations, 2u);
}

TEST_F(AioiceInterop, AioiceCheckUnderAnotherPasswordGets401) {
  const auto [check, txid] = AioiceCheck(kPeerPwd, "--use-candidate");
  const CheckResult r = agent_->Handle(check, *packet::Endpoint::Parse("192.0.2.7:40000"), 0);
  EXPECT_EQ(r.reason, IceDropReason::kBadIntegrity);
  const PeerRun e = Peer("error " + Hex(r.response));
  EXPECT_EQ(e.exit_code, 0) << e.out;
  EXPECT_EQ(e.out, "401 Unauthenticated");
  EXPECT_FALSE(agent_->selected());
}

TEST_F(AioiceInterop, AioiceControlledCheckGets487) {
  const auto [check, txid] = AioiceCheck(kLocalPwd, "--controlled --use-candidate");
  const CheckResult r = agent_->Handle(check, *packet::Endpoint::Parse("192.0.2.7:40000"), 0);
  EXPECT_EQ(r.reason, IceDropReason::kRoleConflict);
  const PeerRun e = Peer("error " + Hex(r.response));
  EXPECT_EQ(e.out, "487 Role Conflict");
  EXPECT_FALSE(agent_->selected());
}

// The lite agent on a loopback UDP socket, served by a thread until stopped.
class LoopbackServer {
 public:
  explicit LoopbackServer(LiteAgent& agent) : agent_(agent) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    const auto start = std::chrono::steady_clock::now();
    std::array<uint8_t, 2048> buf;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      const ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      packet::Endpoint ep{packet::IpAddress::V4(ntohl(from.sin_addr.s_addr)), ntohs(from.sin_port)};
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      const CheckResult r =
          agent_.Handle(std::span(buf.data(), static_cast<size_t>(n)), ep, now.count());
      if (!r.response.empty()) {
        sendto(fd_, r.response.data(), r.response.size(), 0,
               reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  LiteAgent& agent_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A full aioice agent (`flags`: "" controlling, "--controlled") runs ICE
// against `agent` served on a loopback socket.
PeerRun ConnectOverLoopback(LiteAgent& agent, const char* flags) {
  LoopbackServer server(agent);
  if (server.port() == 0) return {-1, "no loopback socket"};
  return Peer("connect " + std::to_string(server.port()) + " " + kLocalUfrag + " " + kLocalPwd +
              " " + kPeerUfrag + " " + kPeerPwd + " " + flags);
}

TEST_F(AioiceInterop, ControllingAioiceNominatesOverLoopback) {
  const PeerRun r = ConnectOverLoopback(*agent_, "");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<std::string> words = absl::StrSplit(r.out, ' ');
  ASSERT_EQ(words.size(), 3u) << r.out;
  EXPECT_EQ(agent_->selected(), packet::Endpoint::Parse(words[1] + ":" + words[2]));
  // Regular nomination (aioice knows the peer is lite): a check, then the
  // nominating one.
  EXPECT_GE(agent_->counters().answered, 2u);
  EXPECT_EQ(agent_->counters().nominations, 1u);
}

TEST_F(AioiceInterop, ControlledAioiceTakesTheControllingRoleOn487) {
  const PeerRun r = ConnectOverLoopback(*agent_, "--controlled");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_GE(agent_->counters().dropped[static_cast<size_t>(IceDropReason::kRoleConflict)], 1u);
  EXPECT_TRUE(agent_->selected());
  EXPECT_EQ(agent_->counters().nominations, 1u);
}

}  // namespace
}  // namespace sluice::ice
