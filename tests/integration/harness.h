// A real sluiced for end-to-end tests: the daemon in a network namespace of
// its own with two net_af_packet interfaces on veth pairs, a namespace for
// each side's phones, a client of its control socket, phones that speak
// libsrtp2-protected RTP over UDP, and a raw Ethernet sender.
//
// Test thread only (a Phone may be used by one other thread at a time).
// Everything lives in the namespaces the Topology made and goes when the
// Daemon is destroyed.
#ifndef SLUICE_TESTS_INTEGRATION_HARNESS_H_
#define SLUICE_TESTS_INTEGRATION_HARNESS_H_

#include <netinet/in.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libsrtp_peer.h"
#include "netns.h"
#include "sluice/control/client.h"
#include "sluice/srtp/master_key.h"

namespace sluice::testing {

// A control::Client that speaks JSON values and numbers its requests.
class ControlClient {
 public:
  // False when nothing answers at `path` within 30 s.
  bool Connect(const std::string& path);
  // Sends the request with a fresh id; the reply, or a discarded value when
  // the daemon did not answer.
  nlohmann::json Call(nlohmann::json request);

 private:
  std::optional<control::Client> client_;
  int id_ = 0;
};

sockaddr_in Addr(const std::string& ip, uint16_t port);
sockaddr_in6 Addr6(const std::string& ip, uint16_t port);

// A phone: a UDP socket in its namespace (with a receive buffer large enough
// for floods) and, for an SRTP leg, libsrtp2 contexts for what it sends and
// what it receives.
struct Phone {
  Phone() = default;
  Phone(Phone&& other) noexcept;
  Phone& operator=(Phone&& other) noexcept;
  ~Phone();

  // RTP packet `s` of this phone's stream with a payload of `payload` bytes.
  std::vector<uint8_t> Rtp(uint16_t s, size_t payload = 160) const;
  // Sends the next packet (protected when SRTP); returns its plaintext.
  std::vector<uint8_t> SendNext();
  void SendRaw(const std::vector<uint8_t>& wire) const;
  // What arrives within timeout_ms (0: what is already queued), unprotected
  // when SRTP; packets that do not verify are counted in *bad.
  std::vector<std::vector<uint8_t>> Receive(int timeout_ms, int* bad = nullptr);

  int fd = -1;
  uint32_t ssrc = 0;
  uint16_t seq = 0;
  sockaddr_in relay{};
  sockaddr_in6 relay6{};  // an IPv6 phone's relay address, used when its family is set
  std::unique_ptr<LibsrtpPeer> send, recv;
};

// A phone socket in namespace `ns` (a short name of `topo`), bound to
// ip:port (IPv4, or IPv6 when ip has a ':').
Phone MakePhoneIn(Topology& topo, const std::string& ns, const std::string& ip, uint16_t port,
                  uint32_t ssrc);
// A program of this build (sluiced, sluicectl), by name.
std::string BuiltBinary(const std::string& name);
// A file of the source tree ("configs/kamailio/kamailio.cfg").
std::string SourcePath(const std::string& relative);

// Sets up a phone's libsrtp2 contexts: it sends with `rx_crypto` (what
// Sluice receives) and receives with `tx_crypto` (what Sluice sends with).
void Arm(Phone& p, const std::string& rx_crypto, const std::string& tx_crypto);
void ParseKey(const std::string& sdes, srtp::MasterKey* key);
// A new random master key of `suite` as "SUITE inline:..." (Sluice refuses
// a key another session uses or used within [security] key_reuse_window_s,
// so every session of a test gets its own).
std::string FreshKey(const std::string& suite);

nlohmann::json SrtpLeg(const std::string& name, const std::string& iface,
                       const std::string& remote, const std::string& rx_crypto,
                       const std::string& tx_suite);
nlohmann::json PlainLeg(const std::string& name, const std::string& iface,
                        const std::string& remote);
// The port of a leg in a session.create reply.
uint16_t LocalPort(const nlohmann::json& leg);

struct ExchangeResult {
  std::vector<std::vector<uint8_t>> sent_a, sent_b, got_a, got_b;
  int bad_a = 0, bad_b = 0;
  // Every packet arrived, once, in order, with the payload sent.
  bool Perfect() const;
  std::string Describe() const;
};
// Sends n packets each way, 2 ms apart, and collects what arrives.
ExchangeResult Exchange(Phone& a, Phone& b, int n);
// Sends a packet from `from` every 20 ms (at most for timeout_ms) until one
// reaches `to`, the last sent: nothing of it is left in flight. A relay
// holds packets toward an address it was just given until its ARP is
// answered (neighbor_hold), so they may arrive late; a test that times
// packets from the first waits for this first.
bool Reaches(Phone& from, Phone& to, int timeout_ms = 5000);
// Exchange, as a test assertion: success when Perfect(), else what was lost.
::testing::AssertionResult Flows(Phone& a, Phone& b, int n);

// Frames written on an AF_PACKET socket bound to a phone-side veth end.
class RawSender {
 public:
  ~RawSender();
  bool Send(const std::vector<uint8_t>& frame) const;
  const std::array<uint8_t, 6>& own_mac() const { return own_mac_; }
  const std::array<uint8_t, 6>& peer_mac() const { return peer_mac_; }

 private:
  friend class Daemon;
  int fd_ = -1;
  int ifindex_ = 0;
  std::array<uint8_t, 6> own_mac_{}, peer_mac_{};
};

struct DaemonOptions {
  std::string name;      // log and file prefix
  std::string subnet_a;  // "10.202.1": the relay is .1, the phones .2 and .3
  std::string subnet_b;
  std::string extra_config;  // TOML appended to the generated file
  // "fd00:203:2": side 1 is dual stack, the relay ::1 and the phone ::2 (/64)
  std::string ipv6_b;
  // Appended to the namespace names ("relay2", "pa2", "pb2"), so a second
  // Daemon of the same test process gets namespaces of its own.
  std::string ns_suffix;
  // The DPDK driver on the relay's veth ends: "af_packet" or "af_xdp".
  std::string pmd = "af_packet";
  // Each relay port's receive ring, in frames (af_packet's framecnt, or
  // [[interface]] rx_ring_size for af_xdp's socket ring).
  int rx_ring = 4096;
  std::string vdev_args;  // appended to each --vdev: ",busy_budget=0"
};

class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  // Stops sluiced, prints its log if a test failed, removes the namespaces.
  ~Daemon();

  // Builds the namespaces and starts sluiced. Returns a reason to skip (no
  // root, no ethtool) or "" once it answers on its control socket (it has
  // finished starting: ports up, privileges dropped); a failure to start is
  // a test failure.
  std::string Start(const DaemonOptions& options);

  // Stops sluiced now (SIGTERM; it must exit 0 within 15 s); the namespaces
  // stay.
  void Stop();
  // SIGKILL: sluiced dies at once, without its shutdown; the namespaces stay.
  void Kill();
  // Starts sluiced again with the same configuration (after Stop or Kill):
  // true once it answers, false when it exited or did not answer in 30 s.
  bool Restart();
  // Waits up to timeout_ms for sluiced to exit: its exit code, or -1.
  int WaitExit(int timeout_ms);
  // What sluiced logged, over every start.
  std::string Log() const;
  bool running() const { return pid_ > 0; }
  // The process exists and its control socket answers.
  bool Alive();
  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_; }
  std::string relay_ip(int side) const { return subnet_[side] + ".1"; }
  std::string phone_ip(int side) const { return subnet_[side] + ".2"; }
  std::string spoof_ip() const { return subnet_[0] + ".3"; }  // a second address on side 0
  std::string relay_ip6() const { return ipv6_b_ + "::1"; }  // side 1, with ipv6_b
  std::string phone_ip6() const { return ipv6_b_ + "::2"; }
  Topology& topology() { return *topo_; }
  // Short names (for topology()) of the relay's and a side's phone namespace.
  std::string relay_ns() const { return "relay" + suffix_; }
  std::string phone_ns(int side) const;

  // A phone socket on side 0 ("pa") or 1 ("pb"), bound to ip:port (IPv4,
  // or IPv6 when ip has a ':').
  Phone MakePhone(int side, const std::string& ip, uint16_t port, uint32_t ssrc);
  // session.create, then long enough for sluiced to resolve the remotes.
  nlohmann::json Create(ControlClient& control, const std::string& name, nlohmann::json leg_a,
                        nlohmann::json leg_b);
  // A raw sender on side `side`'s phone veth, addressed to the relay's end.
  absl::StatusOr<std::unique_ptr<RawSender>> RawSocket(int side);

 private:
  // Its control socket accepts a connection and answers a ping (which
  // sluiced does only from its main loop, once it has finished starting).
  bool Answers() const;
  std::unique_ptr<Topology> topo_;
  std::string dir_, socket_;
  std::string subnet_[2];
  std::string ipv6_b_;
  std::string suffix_;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_HARNESS_H_
