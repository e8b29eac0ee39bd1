// sluiced's control plane under abuse and over mutual TLS, end to end: the
// real daemon in a namespace of its own (net_af_packet on veths, as in
// relay_test), a call's media flowing through it from one phone namespace to
// another, and clients that send garbage, half lines, sit idle by the
// thousand, never read, or send 100,000 requests at once. The call keeps
// flowing, other clients keep being served, limits are refused with
// resource_exhausted, and sluicectl speaks TLS to the [control.tls] listener.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../control/test_certs.h"
#include "netns.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using control::testing::CertSpec;
using control::testing::Issued;
using control::testing::MakeCert;

constexpr int kMaxConnections = 10100;
constexpr int kMaxSessions = 6;
constexpr int kIdle = 10000;
constexpr int kBurst = 100000;
constexpr int kTimeoutMs = 10000;

std::filesystem::path BuildDir() {
  // build*/tests/integration_control_test -> build*/
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A connected, blocking Unix socket with timeouts, or -1.
int UnixConnect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{kTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// One line-oriented client of the control socket.
class Control {
 public:
  explicit Control(const std::string& path) : fd_(UnixConnect(path)) {}
  ~Control() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // The next line, or "" at end of stream or timeout.
  std::string Line() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      char chunk[65536];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  json Call(json request) {
    request["id"] = ++id_;
    if (!Send(request.dump() + "\n")) return {};
    return json::parse(Line(), nullptr, false);
  }

 private:
  int fd_ = -1;
  int id_ = 0;
  std::string buffer_;
};

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

json PlainLeg(const std::string& name, const std::string& iface, const std::string& remote) {
  return {{"name", name},          {"interface", iface},         {"rtcp", "mux"},
          {"remote", remote},      {"rx", {{"plain", true}}},    {"tx", {{"plain", true}}}};
}

uint16_t LocalPort(const json& leg) {
  const std::string local = leg["local"];
  return static_cast<uint16_t>(std::stoi(local.substr(local.rfind(':') + 1)));
}

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

class ControlTest : public ::testing::Test {
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
    // Room for the idle clients this test holds open.
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_max < kIdle + 200) {
      skip_reason_ = "the descriptor hard limit is below " + std::to_string(kIdle + 200);
      return;
    }
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    auto topo = Topology::Create();
    ASSERT_TRUE(topo.ok()) << topo.status();
    topo_ = std::move(*topo).release();
    for (const char* ns : {"relay", "pa", "pb"}) ASSERT_TRUE(topo_->AddNamespace(ns).ok());
    ASSERT_TRUE(topo_->AddVeth("relay", "veth-a0", "", "pa", "veth-a1", "10.203.1.2/24").ok());
    ASSERT_TRUE(topo_->AddVeth("relay", "veth-b0", "", "pb", "veth-b1", "10.203.2.2/24").ok());
    for (auto [ns, ifname] : {std::pair{"relay", "veth-a0"}, {"relay", "veth-b0"},
                              {"pa", "veth-a1"}, {"pb", "veth-b1"}}) {
      ASSERT_TRUE(topo_->DisableChecksumOffload(ns, ifname).ok());
    }
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("sluice-control-" + std::to_string(getpid())));
    std::filesystem::create_directories(*dir_);
    socket_ = new std::string(*dir_ + "/sluice-control-test.sock");
    const std::string& d = *dir_;
    ca_ = new Issued(MakeCert({.cn = "Sluice test CA", .ca = true}, nullptr, d, "ca"));
    server_cert_ = new Issued(MakeCert({.cn = "sluiced", .san = {"DNS:sluice.test"}}, ca_, d, "server"));
    good_ = new Issued(MakeCert({.cn = "sbc1", .client = true}, ca_, d, "good"));
    unlisted_ = new Issued(MakeCert({.cn = "intruder", .client = true}, ca_, d, "unlisted"));

    std::ofstream(d + "/sluiced.toml")
        << Config("sluice-control-test",
                  {"net_af_packet0,iface=veth-a0", "net_af_packet1,iface=veth-b0"}, "sluice.test");
    auto pid = topo_->Spawn("relay", {"sh", "-c",
                                      "exec " + (BuildDir() / "src" / "sluiced").string() +
                                          " --config " + d + "/sluiced.toml > " + d +
                                          "/sluiced.log 2>&1"});
    ASSERT_TRUE(pid.ok());
    daemon_ = *pid;
    for (int i = 0; i < 200 && !Control(*socket_).ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(Control(*socket_).ok()) << "sluiced did not open its control socket; log:\n"
                                        << ReadFile(d + "/sluiced.log");
  }

  // The daemon's configuration: two interfaces on the given vdevs, a small
  // session limit, a large connection limit, TLS on loopback.
  static std::string Config(const std::string& prefix, const std::vector<std::string>& vdevs,
                            const std::string& server_name) {
    std::string args;
    for (const std::string& v : vdevs) args += ", \"--vdev=" + v + "\"";
    const auto device = [&](size_t i) { return vdevs[i].substr(0, vdevs[i].find(',')); };
    const std::string& d = *dir_;
    return R"([eal]
args = ["-l", "0-1", "--no-huge", "--no-shconf", "-m", "512", "--no-pci",
        "--file-prefix=)" + prefix + R"(", "--log-level=*:warning")" + args + R"(]
[[interface]]
name = "a"
device = ")" + device(0) + R"("
ipv4 = "10.203.1.1/24"
[[interface]]
name = "b"
device = ")" + device(1) + R"("
ipv4 = "10.203.2.1/24"
[workers]
lcores = [1]
[media]
port_min = 30000
port_max = 30999
[limits]
max_sessions = )" + std::to_string(kMaxSessions) + R"(
[control]
socket = ")" + d + "/" + prefix + R"(.sock"
max_connections = )" + std::to_string(kMaxConnections) + R"(
[control.tls]
listen = "127.0.0.1:7443"
cert = ")" + server_cert_->cert_file + R"("
key = ")" + server_cert_->key_file + R"("
ca = ")" + ca_->cert_file + R"("
server_name = ")" + server_name + R"("
allowed_clients = ["sbc1"]
handshake_timeout_ms = 2000
max_connections = 256
)";
  }

  static void TearDownTestSuite() {
    if (daemon_ > 0) {
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
        std::printf("--- sluiced.log ---\n%s\n", ReadFile(*dir_ + "/sluiced.log").c_str());
      }
      std::filesystem::remove_all(*dir_);
    }
    for (Issued* i : {ca_, server_cert_, good_, unlisted_}) delete i;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_NE(topo_, nullptr);
  }

  // sluicectl inside the daemon's namespace (its loopback holds the TLS port).
  RunResult Sluicectl(const std::string& args) {
    const std::string out = *dir_ + "/ctl.out", err = *dir_ + "/ctl.err";
    const std::string command = "ip netns exec " + topo_->FullName("relay") + " '" +
                                (BuildDir() / "src" / "sluicectl").string() + "' " + args +
                                " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(command.c_str());
    RunResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  std::string TlsArgs(const Issued& client) {
    return "--connect 127.0.0.1:7443 --tls-server-name sluice.test --tls-ca " + ca_->cert_file +
           " --tls-cert " + client.cert_file + " --tls-key " + client.key_file;
  }

  std::string Log() { return ReadFile(*dir_ + "/sluiced.log"); }

  inline static Topology* topo_ = nullptr;
  inline static std::string* dir_ = nullptr;
  inline static std::string* socket_ = nullptr;
  inline static pid_t daemon_ = -1;
  inline static std::string skip_reason_;
  inline static Issued* ca_ = nullptr;
  inline static Issued* server_cert_ = nullptr;
  inline static Issued* good_ = nullptr;
  inline static Issued* unlisted_ = nullptr;
};

TEST_F(ControlTest, SluicectlOverMutualTls) {
  RunResult r = Sluicectl(TlsArgs(*good_) + " ping");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::MatchesRegex("sluiced .*, 1 workers\n"));
  r = Sluicectl(TlsArgs(*good_) + " stats");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("control TLS: "));
  EXPECT_THAT(r.out, HasSubstr("session state: "));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("warning")));
  EXPECT_THAT(Log(), ::testing::ContainsRegex(
                         "event=control.tls_client peer=127.0.0.1:[0-9]+ client=\"CN=sbc1,O=Sluice "
                         "tests, TLSv1.3 [A-Z0-9_]+, SNI sluice.test\""));  // sluicectl sent SNI

  // A certificate of the right CA that is not on the allow-list.
  r = Sluicectl(TlsArgs(*unlisted_) + " ping");
  EXPECT_EQ(r.code, 2);
  // (Refused after the TLS 1.3 handshake: the alert or a reset ends its request.)
  EXPECT_THAT(r.err, ::testing::ContainsRegex("sluicectl: (reading from|writing to) the control socket"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_THAT(Log(), HasSubstr("is not on control.tls.allowed_clients (its names: intruder)"));
  // The wrong server name: the client refuses the daemon.
  r = Sluicectl("--connect 127.0.0.1:7443 --tls-server-name other.test --tls-ca " +
                ca_->cert_file + " --tls-cert " + good_->cert_file + " --tls-key " +
                good_->key_file + " ping");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("hostname mismatch"));
  // Half the options.
  r = Sluicectl("--connect 127.0.0.1:7443 ping");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--connect needs --tls-ca, --tls-cert and --tls-key"));
}

TEST_F(ControlTest, StalledTlsHandshakesTimeOutWhileOthersAreServed) {
  Control admin(*socket_);
  ASSERT_TRUE(admin.ok());
  const uint64_t timeouts_before =
      admin.Call({{"op", "stats"}})["control"]["tls"]["handshake_timeouts"].get<uint64_t>();
  // 200 TCP clients of the TLS port that never finish a handshake (half of
  // them stop inside their first record), within its limit of 256.
  constexpr int kStalled = 200;
  std::vector<int> stalled;
  for (int i = 0; i < kStalled; ++i) {
    absl::StatusOr<int> fd = topo_->Socket("relay", AF_INET, SOCK_STREAM);
    ASSERT_TRUE(fd.ok()) << fd.status();
    const sockaddr_in addr = Addr("127.0.0.1", 7443);
    ASSERT_EQ(connect(*fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    if (i % 2 == 0) {
      ASSERT_EQ(write(*fd, "\x16\x03\x01\x02", 4), 4);
    }
    stalled.push_back(*fd);
  }
  const auto t = Clock::now();
  RunResult r = Sluicectl(TlsArgs(*good_) + " ping");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin.Call({{"op", "ping"}})["ok"], true);
  EXPECT_LT(Clock::now() - t, std::chrono::seconds(1));
  // Each is closed once handshake_timeout_ms (2 s) is up.
  for (int fd : stalled) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 5000), 1);
    char c;
    EXPECT_EQ(recv(fd, &c, 1, 0), 0);
    close(fd);
  }
  const json stats = admin.Call({{"op", "stats"}});
  EXPECT_EQ(stats["control"]["tls"]["handshake_timeouts"].get<uint64_t>() - timeouts_before,
            static_cast<uint64_t>(kStalled));
  EXPECT_THAT(Log(), HasSubstr("event=control.tls_handshake_timeout peer="));
  EXPECT_THAT(Log(), HasSubstr(" timeout_ms=2000"));
}

TEST_F(ControlTest, ServerNameNotInTheCertificateRefusesToStart) {
  // On null devices: this daemon never touches the veths.
  std::ofstream(*dir_ + "/bad.toml")
      << Config("sluice-control-bad", {"net_null0", "net_null1"}, "wrong.test");
  const std::string command = "ip netns exec " + topo_->FullName("relay") + " '" +
                              (BuildDir() / "src" / "sluiced").string() + "' --config " + *dir_ +
                              "/bad.toml >" + *dir_ + "/bad.log 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_THAT(ReadFile(*dir_ + "/bad.log"),
              HasSubstr("has no subjectAltName matching control.tls.server_name \\\"wrong.test\\\""));
  // --check says so before anything starts.
  const int check = std::system(((BuildDir() / "src" / "sluiced").string() + " --config " + *dir_ +
                                 "/bad.toml --check >" + *dir_ + "/check.log 2>&1")
                                    .c_str());
  EXPECT_TRUE(WIFEXITED(check) && WEXITSTATUS(check) == 2) << check;
  EXPECT_THAT(ReadFile(*dir_ + "/check.log"),
              HasSubstr("has no subjectAltName matching control.tls.server_name \"wrong.test\""));
}

// A deleted session holds its slot until every worker has passed a
// quiescent state (stats' sessions_reclaiming); on a busy host that can take
// a while. Waits, bounded, until none is left.
bool WaitReclaimed(Control& c) {
  for (int i = 0; i < 500; ++i) {
    if (c.Call({{"op", "stats"}})["sessions_reclaiming"] == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_F(ControlTest, SessionLimitRefusedWithResourceExhausted) {
  Control c(*socket_);
  ASSERT_TRUE(c.ok());
  const int before = c.Call({{"op", "stats"}})["sessions"].get<int>();
  std::vector<std::string> made;
  json refused;
  for (int i = 0; i <= kMaxSessions; ++i) {
    const std::string name = "limit-" + std::to_string(i);
    json r = c.Call({{"op", "session.create"},
                     {"session", name},
                     {"legs", {PlainLeg("a", "a", "10.203.1.2:41000"),
                               PlainLeg("b", "b", "10.203.2.2:41002")}}});
    if (!r["ok"].get<bool>()) {
      refused = r;
      break;
    }
    made.push_back(name);
  }
  EXPECT_EQ(static_cast<int>(made.size()) + before, kMaxSessions);
  EXPECT_EQ(refused["error"]["code"], "resource_exhausted") << refused.dump();
  // A freed slot is usable again.
  ASSERT_FALSE(made.empty());
  EXPECT_TRUE(c.Call({{"op", "session.delete"}, {"session", made.back()}})["ok"].get<bool>());
  made.pop_back();
  EXPECT_TRUE(WaitReclaimed(c));
  json again = c.Call({{"op", "session.create"},
                       {"session", "limit-again"},
                       {"legs", {PlainLeg("a", "a", "10.203.1.2:41000"),
                                 PlainLeg("b", "b", "10.203.2.2:41002")}}});
  EXPECT_TRUE(again["ok"].get<bool>()) << again.dump();
  made.push_back("limit-again");
  for (const std::string& name : made) c.Call({{"op", "session.delete"}, {"session", name}});
  EXPECT_TRUE(WaitReclaimed(c));  // the next test's sessions need the slots
}

// A call relayed from phone A to phone B while the test abuses the control
// socket; every packet carries its index.
class Call {
 public:
  Call(Topology& topo, Control& control) {
    json r = control.Call({{"op", "session.create"},
                           {"session", "abused"},
                           {"legs", {PlainLeg("a", "a", "10.203.1.2:40000"),
                                     PlainLeg("b", "b", "10.203.2.2:40002")}}});
    EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
    if (!r["ok"].get<bool>()) return;
    a_ = *topo.Socket("pa", AF_INET, SOCK_DGRAM);
    b_ = *topo.Socket("pb", AF_INET, SOCK_DGRAM);
    sockaddr_in a = Addr("10.203.1.2", 40000), b = Addr("10.203.2.2", 40002);
    EXPECT_EQ(bind(a_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(bind(b_, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
    relay_ = Addr("10.203.1.1", LocalPort(r["legs"][0]));
    timeval tv{0, 200000};
    setsockopt(b_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // Let ARP for the remotes settle, as an SBC's offer/answer would.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sender_ = std::thread([this] { Send(); });
    receiver_ = std::thread([this] { Receive(); });
  }
  ~Call() { Stop(); }

  void Stop() {
    if (!sender_.joinable()) return;
    stop_ = true;
    sender_.join();
    receiver_.join();
    close(a_);
    close(b_);
  }
  uint32_t sent() const { return sent_; }
  uint32_t received() const { return received_; }
  uint32_t out_of_order() const { return out_of_order_; }

 private:
  // An RTP packet every millisecond.
  void Send() {
    uint8_t p[172] = {0x80, 0x00};
    const auto start = Clock::now();
    while (!stop_) {
      const uint32_t i = sent_;
      p[2] = static_cast<uint8_t>(i >> 8);
      p[3] = static_cast<uint8_t>(i);
      std::memcpy(p + 12, &i, sizeof(i));
      p[8] = 0xca;
      sendto(a_, p, sizeof(p), 0, reinterpret_cast<const sockaddr*>(&relay_), sizeof(relay_));
      ++sent_;
      std::this_thread::sleep_until(start + std::chrono::milliseconds(sent_));
    }
  }
  void Receive() {
    int64_t last = -1;
    for (;;) {
      uint8_t p[2048];
      const ssize_t n = recv(b_, p, sizeof(p), 0);
      if (n < 0) {
        if (stop_) break;
        continue;
      }
      if (n != 172) continue;
      uint32_t i;
      std::memcpy(&i, p + 12, sizeof(i));
      if (static_cast<int64_t>(i) <= last) ++out_of_order_;
      last = i;
      ++received_;
    }
  }

  int a_ = -1, b_ = -1;
  sockaddr_in relay_{};
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> sent_{0}, received_{0}, out_of_order_{0};
  std::thread sender_, receiver_;
};

// Pings on a fresh connection; the slowest answer in `*slowest`.
bool Served(const std::string& socket, Clock::duration* slowest) {
  const auto t = Clock::now();
  Control c(socket);
  if (!c.ok()) return false;
  const json r = c.Call({{"op", "ping"}});
  *slowest = std::max(*slowest, Clock::now() - t);
  return r.is_object() && r["ok"] == true;
}

TEST_F(ControlTest, CallAndOtherClientsServedWhileTheControlSocketIsAbused) {
  Control admin(*socket_);
  ASSERT_TRUE(admin.ok());
  Call call(*topo_, admin);
  Clock::duration slowest{};
  const auto t0 = Clock::now();

  // Garbage: binary bytes, not JSON, a NUL, invalid UTF-8. Each line gets
  // its error and the connection stays usable.
  {
    Control g(*socket_);
    ASSERT_TRUE(g.ok());
    std::string junk;
    for (int i = 0; i < 4096; ++i) {
      const char c = static_cast<char>((i * 131 + 7) % 256);
      junk.push_back(c == '\n' ? 'x' : c);
    }
    static constexpr char kNul[] = "{\"id\":1,\0\"op\"}\n";
    ASSERT_TRUE(g.Send(junk + "\n" + std::string(kNul, sizeof(kNul) - 1) + "\xff\xfe{}\n" +
                       "]]]\n"));
    for (int i = 0; i < 4; ++i) {
      const json r = json::parse(g.Line(), nullptr, false);
      ASSERT_TRUE(r.is_object()) << "reply " << i;
      EXPECT_EQ(r["ok"], false);
    }
    EXPECT_EQ(g.Call({{"op", "ping"}})["ok"], true);
  }
  // Half lines: clients that stop in the middle of a request.
  std::vector<std::unique_ptr<Control>> half;
  for (int i = 0; i < 50; ++i) {
    half.push_back(std::make_unique<Control>(*socket_));
    ASSERT_TRUE(half.back()->ok());
    ASSERT_TRUE(half.back()->Send(std::string(R"({"id":1,"op":"sess)").substr(0, 1 + i % 17)));
  }
  EXPECT_TRUE(Served(*socket_, &slowest));

  // 10,000 idle connections.
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    const int fd = UnixConnect(*socket_);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Served(*socket_, &slowest));
  // Over the limit: refused with resource_exhausted, never left hanging.
  json stats = admin.Call({{"op", "stats"}});
  const int open = stats["control"]["connections"].get<int>();
  EXPECT_GE(open, kIdle + 50);
  std::vector<std::unique_ptr<Control>> fill;
  for (int i = open; i < kMaxConnections - 1; ++i) {
    fill.push_back(std::make_unique<Control>(*socket_));
    ASSERT_TRUE(fill.back()->ok());
  }
  // (Clients that closed a moment ago may still be counted, up to the 20
  // served just above and more on a loaded machine: that many more may get
  // in before the limit is reached.)
  json refusal;
  for (int i = 0; i < 100 && refusal.is_null(); ++i) {
    fill.push_back(std::make_unique<Control>(*socket_));
    ASSERT_TRUE(fill.back()->ok());
    const json r = fill.back()->Call({{"op", "ping"}});
    if (r.is_object() && r["ok"] == false) {
      refusal = r;
      EXPECT_EQ(fill.back()->Line(), "");  // and closed
    }
  }
  EXPECT_EQ(refusal["error"]["code"], "resource_exhausted") << refusal.dump();
  EXPECT_TRUE(refusal["id"].is_null());
  fill.clear();
  // Existing connections are still served, and new ones once there is room.
  EXPECT_EQ(admin.Call({{"op", "ping"}})["ok"], true);
  bool room = false;
  for (int i = 0; i < 100 && !room; ++i) {
    room = Served(*socket_, &slowest);
    if (!room) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(room);

  // A client that never reads its replies, sending until its socket is full.
  const uint64_t requests_before = admin.Call({{"op", "stats"}})["control"]["requests"];
  Control deaf(*socket_);
  ASSERT_TRUE(deaf.ok());
  ASSERT_EQ(fcntl(deaf.fd(), F_SETFL, O_NONBLOCK), 0);
  std::string pings;
  for (int i = 0; i < 1000; ++i) pings += R"({"id":0,"op":"stats"})" "\n";
  size_t stuffed = 0;
  for (int stalls = 0; stalls < 20;) {
    const ssize_t n = send(deaf.fd(), pings.data(), pings.size(), MSG_NOSIGNAL);
    if (n > 0) {
      stuffed += static_cast<size_t>(n);
      stalls = 0;
    } else {
      ++stalls;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // Its replies back up and the daemon stops reading its requests (rather
  // than queue without bound); what it did answer is bounded by
  // max_output_bytes.
  const uint64_t lines = stuffed / (pings.size() / 1000);
  const uint64_t handled =
      admin.Call({{"op", "stats"}})["control"]["requests"].get<uint64_t>() - requests_before;
  EXPECT_LT(handled, lines);
  EXPECT_GT(handled, 1000u);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Served(*socket_, &slowest));

  // 100,000 requests in one burst from one client, read by another thread;
  // meanwhile other clients are served.
  Control burst(*socket_);
  ASSERT_TRUE(burst.ok());
  std::atomic<int> answered{0};
  std::atomic<bool> in_order{true};
  std::thread reader([&] {
    for (int i = 0; i < kBurst; ++i) {
      const std::string line = burst.Line();
      if (line.empty()) break;
      const json r = json::parse(line, nullptr, false);
      if (!r.is_object() || r["id"] != i || r["ok"] != true) in_order = false;
      ++answered;
    }
  });
  const auto burst_start = Clock::now();
  std::thread writer([&] {
    std::string chunk;
    for (int i = 0; i < kBurst; ++i) {
      chunk += R"({"id":)" + std::to_string(i) + R"(,"op":"ping"})" "\n";
      if (chunk.size() > 60000 || i + 1 == kBurst) {
        if (!burst.Send(chunk)) break;
        chunk.clear();
      }
    }
  });
  while (answered < kBurst && Clock::now() - burst_start < std::chrono::seconds(20)) {
    EXPECT_TRUE(Served(*socket_, &slowest));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  writer.join();
  reader.join();
  const double burst_s = std::chrono::duration<double>(Clock::now() - burst_start).count();
  EXPECT_EQ(answered, kBurst);
  EXPECT_TRUE(in_order);

  // The call went on throughout (and for at least 1.5 s, to be counted).
  std::this_thread::sleep_until(
      std::max(Clock::now() + std::chrono::milliseconds(300), t0 + std::chrono::milliseconds(1500)));
  call.Stop();
  std::printf("abuse took %.1f s; burst of %d requests answered in %.2f s (%.0f/s); slowest "
              "other client %.1f ms; media %u sent, %u received, %u out of order\n",
              std::chrono::duration<double>(Clock::now() - t0).count(), kBurst, burst_s,
              kBurst / burst_s, std::chrono::duration<double, std::milli>(slowest).count(),
              call.sent(), call.received(), call.out_of_order());
  EXPECT_LT(slowest, std::chrono::seconds(1));
  EXPECT_GT(call.sent(), 1000u);
  EXPECT_EQ(call.out_of_order(), 0u);
  EXPECT_GE(call.received(), call.sent() * 99 / 100) << "the call kept flowing";

  for (int fd : idle) close(fd);
  half.clear();
  stats = admin.Call({{"op", "stats"}});
  EXPECT_TRUE(stats["ok"].get<bool>());
  EXPECT_GE(stats["control"]["connections_refused_limit"].get<int>(), 1);
  EXPECT_TRUE(admin.Call({{"op", "session.delete"}, {"session", "abused"}})["ok"].get<bool>());
  EXPECT_EQ(kill(daemon_, 0), 0) << "sluiced is still running";
}

}  // namespace
}  // namespace sluice::testing
