// sluiced end to end: the real daemon on net_af_packet devices bound to veth
// ends in a namespace of its own, two phones in two more namespaces sending
// and receiving libsrtp2-protected RTP over ordinary UDP sockets, and the
// SBC's side played over the real control socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "libsrtp_peer.h"
#include "netns.h"
#include "sluice/srtp/sdes.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

std::string SluicedPath() {
  // build*/tests/integration_relay_test -> build*/src/sluiced
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "src" /
          "sluiced")
      .string();
}

// One line-oriented client of the control socket.
class Control {
 public:
  bool Connect(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    return connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Control() {
    if (fd_ >= 0) close(fd_);
  }
  json Call(json request) {
    request["id"] = ++id_;
    const std::string line = request.dump() + "\n";
    if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return {};
    std::string reply;
    char c;
    while (read(fd_, &c, 1) == 1 && c != '\n') reply.push_back(c);
    return json::parse(reply, nullptr, false);
  }

 private:
  int fd_ = -1;
  int id_ = 0;
};

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A phone: a UDP socket in its namespace and, for an SRTP leg, libsrtp2
// contexts for what it sends and what it receives.
struct Phone {
  int fd = -1;
  std::string ip;
  uint16_t port = 0;
  std::unique_ptr<LibsrtpPeer> send, recv;
  sockaddr_in relay{};
  uint32_t ssrc = 0;
  uint16_t seq = 0;

  std::vector<uint8_t> Rtp(uint16_t s, size_t payload = 160) const {
    std::vector<uint8_t> p(12 + payload);
    p[0] = 0x80;
    p[2] = static_cast<uint8_t>(s >> 8);
    p[3] = static_cast<uint8_t>(s);
    p[8] = static_cast<uint8_t>(ssrc >> 24);
    p[9] = static_cast<uint8_t>(ssrc >> 16);
    p[10] = static_cast<uint8_t>(ssrc >> 8);
    p[11] = static_cast<uint8_t>(ssrc);
    for (size_t i = 0; i < payload; ++i) p[12 + i] = static_cast<uint8_t>(s * 7 + i);
    return p;
  }
  // Sends the next packet; returns its plaintext.
  std::vector<uint8_t> SendNext() {
    std::vector<uint8_t> plain = Rtp(seq++);
    std::vector<uint8_t> wire = plain;
    if (send) EXPECT_EQ(send->ProtectRtp(wire), srtp_err_status_ok);
    SendRaw(wire);
    return plain;
  }
  void SendRaw(const std::vector<uint8_t>& wire) {
    sendto(fd, wire.data(), wire.size(), 0, reinterpret_cast<const sockaddr*>(&relay),
           sizeof relay);
  }
  // Receives what arrives within timeout_ms; unprotected when SRTP. Packets
  // that do not verify are counted in *bad.
  std::vector<std::vector<uint8_t>> Receive(int timeout_ms, int* bad = nullptr) {
    std::vector<std::vector<uint8_t>> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            deadline - std::chrono::steady_clock::now())
                                            .count());
      if (left <= 0) break;
      pollfd pfd = {fd, POLLIN, 0};
      if (poll(&pfd, 1, left) != 1) break;
      std::vector<uint8_t> buf(2048);
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      buf.resize(static_cast<size_t>(n));
      if (recv_ && recv->UnprotectRtp(buf) != srtp_err_status_ok) {
        if (bad) ++*bad;
        continue;
      }
      out.push_back(std::move(buf));
    }
    return out;
  }
  bool recv_ = false;
};

std::vector<uint8_t> Key(const std::string& sdes, srtp::MasterKey* key) {
  auto parsed = srtp::ParseSdesCrypto(sdes);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  *key = parsed->key;
  return {};
}

class RelayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!Topology::Supported(&why)) {
      skip_reason_ = why;
      return;
    }
    if (access("/usr/sbin/ethtool", X_OK) != 0 && access("/sbin/ethtool", X_OK) != 0) {
      skip_reason_ = "ethtool is not installed (scripts/setup-deps installs it)";
      return;
    }
    LibsrtpPeer::Init();
    auto topo = Topology::Create();
    ASSERT_TRUE(topo.ok()) << topo.status();
    topo_ = std::move(*topo).release();
    for (const char* ns : {"relay", "pa", "pb"}) ASSERT_TRUE(topo_->AddNamespace(ns).ok());
    ASSERT_TRUE(topo_->AddVeth("relay", "veth-a0", "", "pa", "veth-a1", "10.201.1.2/24").ok());
    ASSERT_TRUE(topo_->AddVeth("relay", "veth-b0", "", "pb", "veth-b1", "10.201.2.2/24").ok());
    for (auto [ns, ifname] : {std::pair{"relay", "veth-a0"}, {"relay", "veth-b0"},
                              {"pa", "veth-a1"}, {"pb", "veth-b1"}}) {
      ASSERT_TRUE(topo_->DisableChecksumOffload(ns, ifname).ok());
    }
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("sluice-relay-" + std::to_string(getpid())));
    std::filesystem::create_directories(*dir_);
    socket_ = new std::string(*dir_ + "/control.sock");
    std::ofstream(*dir_ + "/sluiced.toml") << R"([eal]
args = ["-l", "0-1", "--no-huge", "--no-shconf", "-m", "512", "--no-pci",
        "--file-prefix=sluice-relay-test", "--log-level=*:warning",
        "--vdev=net_af_packet0,iface=veth-a0",
        "--vdev=net_af_packet1,iface=veth-b0"]
[[interface]]
name = "a"
device = "net_af_packet0"
ipv4 = "10.201.1.1/24"
[[interface]]
name = "b"
device = "net_af_packet1"
ipv4 = "10.201.2.1/24"
[workers]
lcores = [1]
[media]
port_min = 30000
port_max = 30999
rekey_overlap_ms = 2000
[control]
socket = ")" + *socket_ + R"("
)";
    auto pid = topo_->Spawn("relay", {"sh", "-c",
                                      "exec " + SluicedPath() + " --config " + *dir_ +
                                          "/sluiced.toml > " +
                                          *dir_ + "/sluiced.log 2>&1"});
    ASSERT_TRUE(pid.ok());
    daemon_ = *pid;
    for (int i = 0; i < 200; ++i) {
      Control probe;
      if (probe.Connect(*socket_)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Control probe;
    ASSERT_TRUE(probe.Connect(*socket_)) << "sluiced did not open its control socket; log: "
                                         << *dir_ << "/sluiced.log";
  }

  static void TearDownTestSuite() {
    if (daemon_ > 0) {
      // ip netns exec and sh both exec: the pid is sluiced's own.
      kill(daemon_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100 && waitpid(daemon_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (waitpid(daemon_, &status, WNOHANG) == 0) {
        kill(daemon_, SIGKILL);
        waitpid(daemon_, &status, 0);
        ADD_FAILURE() << "sluiced did not stop on SIGTERM within 5 s";
      } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "sluiced exit status " << status;
      }
    }
    delete topo_;
    topo_ = nullptr;
    if (dir_) {
      if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
        std::ifstream log(*dir_ + "/sluiced.log");
        std::printf("--- sluiced.log ---\n%s\n", std::string(std::istreambuf_iterator<char>(log),
                                                           std::istreambuf_iterator<char>())
                                                   .c_str());
      }
      std::filesystem::remove_all(*dir_);
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_NE(topo_, nullptr);
    ASSERT_TRUE(control_.Connect(*socket_));
  }

  // Opens a phone socket in `ns` at ip:port.
  Phone MakePhone(const std::string& ns, const std::string& ip, uint16_t port, uint32_t ssrc) {
    Phone p;
    auto fd = topo_->Socket(ns, AF_INET, SOCK_DGRAM);
    EXPECT_TRUE(fd.ok());
    p.fd = *fd;
    p.ip = ip;
    p.port = port;
    p.ssrc = ssrc;
    sockaddr_in a = Addr(ip, port);
    EXPECT_EQ(bind(p.fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return p;
  }

  json Create(const std::string& name, json leg_a, json leg_b) {
    json reply =
        control_.Call({{"op", "session.create"}, {"session", name}, {"legs", {leg_a, leg_b}}});
    // Creating a session with given remotes starts ARP for them; until the
    // answer is in, packets toward them are dropped as no_neighbor. An SBC's
    // offer/answer takes far longer than that; the test waits as long.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return reply;
  }

  static uint16_t LocalPort(const json& leg) {
    const std::string local = leg["local"];
    return static_cast<uint16_t>(std::stoi(local.substr(local.rfind(':') + 1)));
  }

  // Sends n packets each way, 2 ms apart, and checks every one arrives, in
  // order, with the payload that was sent.
  void Exchange(Phone& a, Phone& b, int n) {
    std::vector<std::vector<uint8_t>> sent_a, sent_b;
    std::vector<std::vector<uint8_t>> got_a, got_b;
    int bad_a = 0, bad_b = 0;
    for (int i = 0; i < n; ++i) {
      sent_a.push_back(a.SendNext());
      sent_b.push_back(b.SendNext());
      auto ra = a.Receive(2, &bad_a), rb = b.Receive(2, &bad_b);
      got_a.insert(got_a.end(), ra.begin(), ra.end());
      got_b.insert(got_b.end(), rb.begin(), rb.end());
    }
    auto ra = a.Receive(300, &bad_a), rb = b.Receive(300, &bad_b);
    got_a.insert(got_a.end(), ra.begin(), ra.end());
    got_b.insert(got_b.end(), rb.begin(), rb.end());
    EXPECT_EQ(bad_a, 0);
    EXPECT_EQ(bad_b, 0);
    EXPECT_EQ(got_b.size(), sent_a.size()) << "A to B: every packet";
    EXPECT_EQ(got_a.size(), sent_b.size()) << "B to A: every packet";
    EXPECT_TRUE(got_b == sent_a) << "A to B: same payloads, in order";
    EXPECT_TRUE(got_a == sent_b) << "B to A: same payloads, in order";
    if (::testing::Test::HasFailure()) {
      std::printf("stats: %s\n", control_.Call({{"op", "stats"}}).dump().c_str());
    }
  }

  inline static Topology* topo_ = nullptr;
  inline static std::string* dir_ = nullptr;
  inline static std::string* socket_ = nullptr;
  inline static pid_t daemon_ = -1;
  inline static std::string skip_reason_;
  Control control_;
};

json SrtpLeg(const std::string& name, const std::string& iface, const std::string& remote,
             const std::string& rx_crypto, const std::string& tx_suite) {
  json leg = {{"name", name}, {"interface", iface}, {"rtcp", "mux"},
              {"rx", {{"crypto", rx_crypto}}}, {"tx", {{"suite", tx_suite}}}};
  if (!remote.empty()) leg["remote"] = remote;
  return leg;
}

json PlainLeg(const std::string& name, const std::string& iface, const std::string& remote) {
  json leg = {{"name", name}, {"interface", iface}, {"rtcp", "mux"},
              {"rx", {{"plain", true}}}, {"tx", {{"plain", true}}}};
  if (!remote.empty()) leg["remote"] = remote;
  return leg;
}

// Sets up a phone's libsrtp2 contexts: it sends with `rx_crypto` (what Sluice
// receives) and receives with the key Sluice generated and returned.
void Arm(Phone& p, const std::string& rx_crypto, const std::string& tx_crypto) {
  srtp::MasterKey send_key, recv_key;
  Key(rx_crypto, &send_key);
  Key(tx_crypto, &recv_key);
  p.send = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&send_key, 1}, {});
  p.recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&recv_key, 1}, {});
  p.recv_ = true;
}

const char kKeyA[] = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const char kKeyB[] = "AEAD_AES_256_GCM inline:3AN5DNfSOnNQ58KvJbEtYJ4zyTbw9QfzWrgLadCgyY+Bxl2bKlHSxTZvO18=";

TEST_F(RelayTest, DifferentSuitesOnTheTwoLegsAcrossTheSequenceWrap) {
  json r = Create("suites", SrtpLeg("a", "a", "10.201.1.2:40000", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  SrtpLeg("b", "b", "10.201.2.2:40002", kKeyB, "AEAD_AES_256_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40000, 0xa1);
  Phone b = MakePhone("pb", "10.201.2.2", 40002, 0xb1);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  a.seq = 65400;  // the rollover counter advances mid-call
  b.seq = 65450;
  Exchange(a, b, 200);
  json g = control_.Call({{"op", "session.get"}, {"session", "suites"}});
  EXPECT_EQ(g["legs"][0]["counters"]["rx_packets"], 200) << g.dump();
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 0);
  EXPECT_EQ(g.dump().find("inline:"), std::string::npos) << "no key in session.get";
  EXPECT_TRUE(control_.Call({{"op", "session.delete"}, {"session", "suites"}})["ok"].get<bool>());
}

TEST_F(RelayTest, PlainLegBridgedToSrtpLeg) {
  json r = Create("bridge", PlainLeg("trunk", "a", "10.201.1.2:40010"),
                  SrtpLeg("phone", "b", "10.201.2.2:40012", kKeyB, "AEAD_AES_128_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40010, 0xa2);
  Phone b = MakePhone("pb", "10.201.2.2", 40012, 0xb2);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  Exchange(a, b, 100);
  control_.Call({{"op", "session.delete"}, {"session", "bridge"}});
}

TEST_F(RelayTest, LearnsPeersButNeverFromForgedOrReplayedPackets) {
  json r = Create("learn", SrtpLeg("a", "a", "", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  SrtpLeg("b", "b", "", kKeyB, "AEAD_AES_256_GCM"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40020, 0xa3);
  Phone b = MakePhone("pb", "10.201.2.2", 40022, 0xb3);
  Phone spoof = MakePhone("pa", "10.201.1.2", 40666, 0xa3);
  a.relay = spoof.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  Arm(b, kKeyB, r["legs"][1]["tx"]["crypto"]);
  // A forged packet first: a valid header and a bad tag, from the spoofer.
  std::vector<uint8_t> forged = a.Rtp(1);
  forged.resize(forged.size() + 10, 0xee);
  spoof.SendRaw(forged);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  json g = control_.Call({{"op", "session.get"}, {"session", "learn"}});
  EXPECT_TRUE(g["legs"][0]["remote"].is_null()) << "a forged packet taught nothing: " << g.dump();
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 1);
  // B speaks first: learned, but with A still unknown its packet has nowhere
  // to go (counted, not relayed). Then A's first packet reaches the learned B.
  b.SendNext();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<uint8_t> first = a.SendNext();
  auto got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0] == first);
  // A capture of A's packet replayed by the spoofer: dropped as a replay.
  std::vector<uint8_t> wire = a.Rtp(a.seq++);
  const std::vector<uint8_t> plain = wire;
  ASSERT_EQ(a.send->ProtectRtp(wire), srtp_err_status_ok);
  a.SendRaw(wire);
  spoof.SendRaw(wire);
  got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u) << "the replay must not be relayed";
  // A tampered packet (one payload bit flipped) in the middle of the call.
  std::vector<uint8_t> tampered = a.Rtp(a.seq++);
  ASSERT_EQ(a.send->ProtectRtp(tampered), srtp_err_status_ok);
  tampered[30] ^= 0x01;
  a.SendRaw(tampered);
  Exchange(a, b, 50);
  g = control_.Call({{"op", "session.get"}, {"session", "learn"}});
  EXPECT_EQ(g["legs"][0]["remote"], "10.201.1.2:40020") << g.dump();
  EXPECT_EQ(g["legs"][0]["remote_learned"], true);
  EXPECT_EQ(g["legs"][0]["counters"]["replay_drops"], 1);
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 2) << "the forged and the tampered packet";
  control_.Call({{"op", "session.delete"}, {"session", "learn"}});
}

TEST_F(RelayTest, RekeyMidStreamLosesNothing) {
  json r = Create("rekey", SrtpLeg("a", "a", "10.201.1.2:40030", kKeyA, "AES_CM_128_HMAC_SHA1_80"),
                  PlainLeg("b", "b", "10.201.2.2:40032"));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  Phone a = MakePhone("pa", "10.201.1.2", 40030, 0xa4);
  Phone b = MakePhone("pb", "10.201.2.2", 40032, 0xb4);
  a.relay = Addr("10.201.1.1", LocalPort(r["legs"][0]));
  b.relay = Addr("10.201.2.1", LocalPort(r["legs"][1]));
  Arm(a, kKeyA, r["legs"][0]["tx"]["crypto"]);
  a.seq = 65500;
  Exchange(a, b, 60);
  // The re-INVITE: new keys both ways. A's packets under the old key that
  // are still in flight must keep verifying.
  const char kNewA[] = "AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
  std::vector<uint8_t> in_flight = a.Rtp(a.seq++);
  const std::vector<uint8_t> in_flight_plain = in_flight;
  ASSERT_EQ(a.send->ProtectRtp(in_flight), srtp_err_status_ok);
  json u = control_.Call({{"op", "session.update"}, {"session", "rekey"}, {"leg", "a"},
                          {"rx", {{"crypto", kNewA}}}, {"tx", {{"suite", "AEAD_AES_128_GCM"}}}});
  ASSERT_TRUE(u["ok"].get<bool>()) << u.dump();
  a.SendRaw(in_flight);
  auto got = b.Receive(300);
  ASSERT_EQ(got.size(), 1u) << control_.Call({{"op", "session.get"}, {"session", "rekey"}}).dump()
                            << control_.Call({{"op", "stats"}}).dump();
  EXPECT_TRUE(got[0] == in_flight_plain);
  // The phone moves to the new keys, keeping its stream (and ROC).
  srtp::MasterKey new_send, new_recv;
  Key(kNewA, &new_send);
  Key(u["legs"][0]["tx"]["crypto"], &new_recv);
  auto sender = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&new_send, 1}, {});
  // libsrtp2 starts a new sender at ROC 0; bring it to the stream's ROC by
  // protecting (and discarding) the sequence numbers up to the wrap.
  for (uint32_t s = 65500; s <= 65535; ++s) {
    std::vector<uint8_t> skip = a.Rtp(static_cast<uint16_t>(s));
    sender->ProtectRtp(skip);
  }
  a.send = std::move(sender);
  a.recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&new_recv, 1}, {});
  Exchange(a, b, 60);
  json g = control_.Call({{"op", "session.get"}, {"session", "rekey"}});
  EXPECT_EQ(g["legs"][0]["counters"]["auth_failures"], 0) << g.dump();
  EXPECT_EQ(g["legs"][0]["tx_suite"], "AEAD_AES_128_GCM");
  // The old key again: refused as a two-time pad.
  json reuse = control_.Call({{"op", "session.update"}, {"session", "rekey"}, {"leg", "a"},
                              {"rx", {{"crypto", kKeyA}}}});
  EXPECT_FALSE(reuse["ok"].get<bool>());
  EXPECT_EQ(reuse["error"]["code"], "key_reuse") << reuse.dump();
  control_.Call({{"op", "session.delete"}, {"session", "rekey"}});
}

TEST_F(RelayTest, AnswersArpAndPing) {
  EXPECT_TRUE(topo_->Run("pa", {"ping", "-c", "1", "-W", "2", "10.201.1.1"}).ok());
  EXPECT_TRUE(topo_->Run("pb", {"ping", "-c", "1", "-W", "2", "10.201.2.1"}).ok());
}

}  // namespace
}  // namespace sluice::testing
