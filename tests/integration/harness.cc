#include "harness.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "openssl/rand.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/sdes.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

const char* const kPhoneIf[2] = {"veth-a1", "veth-b1"};
const char* const kRelayIf[2] = {"veth-a0", "veth-b0"};

// Interface index or MAC of `ifname`, asked through a socket in its namespace.
bool InterfaceInfo(int fd, const char* ifname, int* index, std::array<uint8_t, 6>* mac) {
  ifreq ifr = {};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (index != nullptr) {
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) return false;
    *index = ifr.ifr_ifindex;
  }
  if (mac != nullptr) {
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return false;
    std::memcpy(mac->data(), ifr.ifr_hwaddr.sa_data, 6);
  }
  return true;
}

}  // namespace

std::string BuiltBinary(const std::string& name) {
  // build*/tests/<test> -> build*/src/<name>
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "src" /
          name)
      .string();
}

std::string SourcePath(const std::string& relative) {
  return std::string(SLUICE_SOURCE_DIR) + "/" + relative;
}

// --- ControlClient ---

bool ControlClient::Connect(const std::string& path) {
  client_.reset();
  absl::StatusOr<control::Client> client = control::Client::Connect(path);
  if (!client.ok()) return false;
  client_.emplace(*std::move(client));
  return true;
}

json ControlClient::Call(json request) {
  if (!client_) return json(json::value_t::discarded);
  request["id"] = ++id_;
  absl::StatusOr<std::string> reply = client_->Call(request.dump());
  if (!reply.ok()) return json(json::value_t::discarded);
  return json::parse(*reply, nullptr, false);
}

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

sockaddr_in6 Addr6(const std::string& ip, uint16_t port) {
  sockaddr_in6 a = {};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
  return a;
}

// --- Phone ---

Phone::Phone(Phone&& other) noexcept { *this = std::move(other); }

Phone& Phone::operator=(Phone&& other) noexcept {
  if (this != &other) {
    if (fd >= 0) close(fd);
    fd = other.fd;
    other.fd = -1;
    ssrc = other.ssrc;
    seq = other.seq;
    relay = other.relay;
    relay6 = other.relay6;
    send = std::move(other.send);
    recv = std::move(other.recv);
  }
  return *this;
}

Phone::~Phone() {
  if (fd >= 0) close(fd);
}

std::vector<uint8_t> Phone::Rtp(uint16_t s, size_t payload) const {
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

std::vector<uint8_t> Phone::SendNext() {
  std::vector<uint8_t> plain = Rtp(seq++);
  std::vector<uint8_t> wire = plain;
  if (send) {
    EXPECT_EQ(send->ProtectRtp(wire), srtp_err_status_ok);
  }
  SendRaw(wire);
  return plain;
}

void Phone::SendRaw(const std::vector<uint8_t>& wire) const {
  // A full socket buffer is waited out: every packet leaves.
  for (int tries = 0; tries < 1000; ++tries) {
    const bool v6 = relay6.sin6_family == AF_INET6;
    if (sendto(fd, wire.data(), wire.size(), 0,
               v6 ? reinterpret_cast<const sockaddr*>(&relay6)
                  : reinterpret_cast<const sockaddr*>(&relay),
               v6 ? sizeof relay6 : sizeof relay) >= 0 ||
        (errno != ENOBUFS && errno != EAGAIN)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

std::vector<std::vector<uint8_t>> Phone::Receive(int timeout_ms, int* bad) {
  std::vector<std::vector<uint8_t>> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, left > 0 ? left : 0) != 1) break;
    std::vector<uint8_t> buf(2048);
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    buf.resize(static_cast<size_t>(n));
    if (recv && recv->UnprotectRtp(buf) != srtp_err_status_ok) {
      if (bad) ++*bad;
      continue;
    }
    out.push_back(std::move(buf));
  }
  return out;
}

void ParseKey(const std::string& sdes, srtp::MasterKey* key) {
  auto parsed = srtp::ParseSdesCrypto(sdes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  *key = parsed->key;
}

std::string FreshKey(const std::string& suite) {
  const std::optional<crypto::Suite> s = crypto::SuiteFromName(suite);
  if (!s) {
    ADD_FAILURE() << "no suite " << suite;
    return "";
  }
  std::string raw(static_cast<size_t>(crypto::GetSuiteInfo(*s).key_salt_len()), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    ADD_FAILURE() << "RAND_bytes failed";
  }
  return absl::StrCat(suite, " inline:", absl::Base64Escape(raw));
}

void Arm(Phone& p, const std::string& rx_crypto, const std::string& tx_crypto) {
  srtp::MasterKey send_key, recv_key;
  ParseKey(rx_crypto, &send_key);
  ParseKey(tx_crypto, &recv_key);
  p.send = *LibsrtpPeer::Create(LibsrtpPeer::Role::kSender, {&send_key, 1}, {});
  p.recv = *LibsrtpPeer::Create(LibsrtpPeer::Role::kReceiver, {&recv_key, 1}, {});
}

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

uint16_t LocalPort(const json& leg) {
  const std::string local = leg["local"];
  return static_cast<uint16_t>(std::stoi(local.substr(local.rfind(':') + 1)));
}

// --- Exchange ---

bool ExchangeResult::Perfect() const {
  return bad_a == 0 && bad_b == 0 && got_b == sent_a && got_a == sent_b;
}

std::string ExchangeResult::Describe() const {
  return absl::StrCat("A to B: ", got_b.size(), " of ", sent_a.size(),
                      got_b == sent_a ? " in order" : " not all or not in order", ", ", bad_b,
                      " failed to verify; B to A: ", got_a.size(), " of ", sent_b.size(),
                      got_a == sent_b ? " in order" : " not all or not in order", ", ", bad_a,
                      " failed to verify");
}

ExchangeResult Exchange(Phone& a, Phone& b, int n) {
  ExchangeResult r;
  auto collect = [&](int timeout_ms) {
    auto ra = a.Receive(timeout_ms, &r.bad_a);
    auto rb = b.Receive(timeout_ms, &r.bad_b);
    r.got_a.insert(r.got_a.end(), ra.begin(), ra.end());
    r.got_b.insert(r.got_b.end(), rb.begin(), rb.end());
  };
  for (int i = 0; i < n; ++i) {
    r.sent_a.push_back(a.SendNext());
    r.sent_b.push_back(b.SendNext());
    collect(2);
  }
  collect(300);
  return r;
}

bool Reaches(Phone& from, Phone& to, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    const std::vector<uint8_t> sent = from.SendNext();
    const std::vector<std::vector<uint8_t>> got = to.Receive(20);
    // FIFO through the relay: the last sent arrived, so did (or never will)
    // every one before it.
    if (!got.empty() && got.back() == sent) return true;
  }
  return false;
}

::testing::AssertionResult Flows(Phone& a, Phone& b, int n) {
  const ExchangeResult r = Exchange(a, b, n);
  if (r.Perfect()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.Describe();
}

// --- RawSender ---

RawSender::~RawSender() {
  if (fd_ >= 0) close(fd_);
}

bool RawSender::Send(const std::vector<uint8_t>& frame) const {
  sockaddr_ll to = {};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, peer_mac_.data(), 6);
  return sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                sizeof to) == static_cast<ssize_t>(frame.size());
}

// --- Daemon ---

namespace {

// The relay's port on side `side` as an [eal] --vdev argument (quoted).
// Receive rings of 4096 frames (the default) ride out a worker kept off its
// CPU for a while on a busy test machine.
std::string Vdev(const DaemonOptions& options, int side) {
  if (options.pmd == "af_xdp") {
    return absl::StrCat("\"--vdev=net_af_xdp", side, ",iface=", kRelayIf[side],
                        ",start_queue=0,queue_count=1", options.vdev_args, "\"");
  }
  return absl::StrCat("\"--vdev=net_af_packet", side, ",iface=", kRelayIf[side],
                      ",framecnt=", options.rx_ring, options.vdev_args, "\"");
}

// af_xdp's socket ring is the port's RX ring; af_packet's is framecnt.
std::string RingSize(const DaemonOptions& options) {
  if (options.pmd != "af_xdp") return "";
  return absl::StrCat("rx_ring_size = ", options.rx_ring, "\n");
}

}  // namespace

std::string Daemon::Start(const DaemonOptions& options) {
  std::string why;
  if (!Topology::Supported(&why)) return why;
  if (access("/usr/sbin/ethtool", X_OK) != 0 && access("/sbin/ethtool", X_OK) != 0) {
    return "ethtool is not installed (scripts/setup-deps installs it)";
  }
  LibsrtpPeer::Init();
  subnet_[0] = options.subnet_a;
  subnet_[1] = options.subnet_b;
  suffix_ = options.ns_suffix;
  auto topo = Topology::Create();
  EXPECT_TRUE(topo.ok()) << topo.status();
  if (!topo.ok()) return "";
  topo_ = std::move(*topo);
  for (const std::string& ns : {relay_ns(), phone_ns(0), phone_ns(1)}) {
    EXPECT_TRUE(topo_->AddNamespace(ns).ok());
  }
  for (int side = 0; side < 2; ++side) {
    EXPECT_TRUE(topo_->AddVeth(relay_ns(), kRelayIf[side], "", phone_ns(side), kPhoneIf[side],
                               phone_ip(side) + "/24")
                    .ok());
    EXPECT_TRUE(topo_->DisableChecksumOffload(relay_ns(), kRelayIf[side]).ok());
    EXPECT_TRUE(topo_->DisableChecksumOffload(phone_ns(side), kPhoneIf[side]).ok());
  }
  EXPECT_TRUE(
      topo_->Run(phone_ns(0), {"ip", "addr", "add", spoof_ip() + "/24", "dev", kPhoneIf[0]}).ok());
  ipv6_b_ = options.ipv6_b;
  if (!ipv6_b_.empty()) {  // nodad: usable at once, not after duplicate detection
    EXPECT_TRUE(topo_->Run(phone_ns(1), {"ip", "-6", "addr", "add", phone_ip6() + "/64", "dev",
                                  kPhoneIf[1], "nodad"})
                    .ok());
  }
  dir_ = std::filesystem::temp_directory_path() /
         absl::StrCat("sluice-", options.name, "-", getpid());
  std::filesystem::create_directories(dir_);
  socket_ = dir_ + "/control.sock";
  std::ofstream(dir_ + "/sluiced.toml") << absl::StrCat(
      "[eal]\n"
      "args = [\"-l\", \"0-1\", \"--no-huge\", \"--no-shconf\", \"-m\", \"512\", \"--no-pci\",\n"
      "        \"--file-prefix=sluice-", options.name, "-test\", \"--log-level=*:warning\",\n"
      "        ", Vdev(options, 0), ", ", Vdev(options, 1), "]\n"
      "[[interface]]\nname = \"a\"\ndevice = \"net_", options.pmd, "0\"\nipv4 = \"", relay_ip(0),
      "/24\"\n", RingSize(options),
      "[[interface]]\nname = \"b\"\ndevice = \"net_", options.pmd, "1\"\nipv4 = \"", relay_ip(1),
      "/24\"\n", RingSize(options),
      ipv6_b_.empty() ? "" : absl::StrCat("ipv6 = \"", relay_ip6(), "/64\"\n"),
      "[workers]\nlcores = [1]\n"
      "[control]\nsocket = \"", socket_, "\"\n", options.extra_config);
  if (!Restart()) {
    ADD_FAILURE() << "sluiced did not answer on its control socket; log: " << dir_
                  << "/sluiced.log";
  }
  return "";
}

bool Daemon::Restart() {
  // The log is appended to: a restart's test reads what each run said.
  auto pid = topo_->Spawn(relay_ns(), {"sh", "-c",
                                    "exec " + BuiltBinary("sluiced") + " --config " + dir_ +
                                        "/sluiced.toml >> " + dir_ + "/sluiced.log 2>&1"});
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return false;
  pid_ = *pid;
  // Ready once it answers: its socket accepts connections as soon as it
  // listens, before sluiced has finished starting (dropped privileges, say);
  // it answers requests only from its main loop. Its start (EAL, memory,
  // ports) can take seconds on a loaded machine: its main thread shares
  // lcore 0 with every other sluiced there.
  for (int i = 0; i < 600; ++i) {
    if (Answers()) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void Daemon::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int Daemon::WaitExit(int timeout_ms) {
  if (pid_ <= 0) return -1;
  int status = 0;
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string Daemon::Log() const {
  std::ifstream log(dir_ + "/sluiced.log");
  return std::string(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
}

std::string Daemon::phone_ns(int side) const {
  return (side == 0 ? "pa" : "pb") + suffix_;
}

void Daemon::Stop() {
  if (pid_ > 0) {
    // ip netns exec and sh both exec: the pid is sluiced's own. Its exit
    // (unmapping its memory) can take seconds on a loaded machine.
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      ADD_FAILURE() << "sluiced did not stop on SIGTERM within 15 s";
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sluiced exit status " << status;
    }
    pid_ = -1;
  }
}

Daemon::~Daemon() {
  Stop();
  topo_.reset();
  if (!dir_.empty()) {
    if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
      std::ifstream log(dir_ + "/sluiced.log");
      std::printf("--- sluiced.log ---\n%s\n",
                  std::string(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>())
                      .c_str());
    }
    std::filesystem::remove_all(dir_);
  }
}

bool Daemon::Alive() {
  if (pid_ <= 0 || kill(pid_, 0) != 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != 0) {
    pid_ = -1;
    return false;
  }
  return Answers();
}

bool Daemon::Answers() const {
  ControlClient probe;
  if (!probe.Connect(socket_)) return false;
  const json r = probe.Call({{"op", "ping"}});
  return !r.is_discarded() && r.value("ok", false);
}

Phone Daemon::MakePhone(int side, const std::string& ip, uint16_t port, uint32_t ssrc) {
  return MakePhoneIn(*topo_, phone_ns(side), ip, port, ssrc);
}

Phone MakePhoneIn(Topology& topo, const std::string& ns, const std::string& ip, uint16_t port,
                  uint32_t ssrc) {
  Phone p;
  const bool v6 = ip.find(':') != std::string::npos;
  auto fd = topo.Socket(ns, v6 ? AF_INET6 : AF_INET, SOCK_DGRAM);
  EXPECT_TRUE(fd.ok()) << fd.status();
  if (!fd.ok()) return p;
  p.fd = *fd;
  p.ssrc = ssrc;
  // Room for a flood's worth of replies (root may exceed rmem_max).
  const int bytes = 8 << 20;
  setsockopt(p.fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  setsockopt(p.fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes);
  sockaddr_in a = Addr(ip, port);
  sockaddr_in6 a6 = Addr6(ip, port);
  EXPECT_EQ(v6 ? bind(p.fd, reinterpret_cast<sockaddr*>(&a6), sizeof a6)
               : bind(p.fd, reinterpret_cast<sockaddr*>(&a), sizeof a),
            0)
      << ip << ":" << port << ": " << std::strerror(errno);
  return p;
}

json Daemon::Create(ControlClient& control, const std::string& name, json leg_a, json leg_b) {
  json reply =
      control.Call({{"op", "session.create"}, {"session", name}, {"legs", {leg_a, leg_b}}});
  // Creating a session with given remotes starts ARP for them; until the
  // answer is in, packets toward them wait in the relay (neighbor_hold). An
  // SBC's offer/answer takes far longer than that; the test waits as long.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return reply;
}

absl::StatusOr<std::unique_ptr<RawSender>> Daemon::RawSocket(int side) {
  auto sender = std::make_unique<RawSender>();
  auto fd = topo_->Socket(phone_ns(side), AF_PACKET, SOCK_RAW, 0);
  if (!fd.ok()) return fd.status();
  sender->fd_ = *fd;
  if (!InterfaceInfo(sender->fd_, kPhoneIf[side], &sender->ifindex_, &sender->own_mac_)) {
    return absl::InternalError(absl::StrCat(kPhoneIf[side], ": ", std::strerror(errno)));
  }
  auto relay_fd = topo_->Socket(relay_ns(), AF_INET, SOCK_DGRAM);
  if (!relay_fd.ok()) return relay_fd.status();
  const bool ok = InterfaceInfo(*relay_fd, kRelayIf[side], nullptr, &sender->peer_mac_);
  close(*relay_fd);
  if (!ok) return absl::InternalError(absl::StrCat(kRelayIf[side], ": ", std::strerror(errno)));
  return sender;
}

}  // namespace sluice::testing
