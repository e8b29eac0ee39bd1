#include "traffic_generator.h"

#include <pthread.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sched.h>
#include <srtp2/srtp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libsrtp_loops.h"
#include "rtp_packets.h"
#include "sluice/crypto/backend.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"

namespace sluice::bench {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRtpSize = 172;  // G.711, 20 ms
constexpr uint32_t kUdpAt = 14 + 20;
constexpr uint32_t kRtpAt = kUdpAt + 8;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint8_t kSilence = 0xd5;  // G.711 A-law silence fills the payload
constexpr unsigned kKeyChangeRing = 65536;  // > 2 changes per call at kMaxTrafficCalls
constexpr unsigned kKeyChangesPerLoop = 8;
// Packets a stall of the generator held back go out at most this many times
// the rate, never back to back: a wire fills a NIC's ring at its own pace,
// and thousands of packets at the generator's full speed would fill
// sluiced's RX ring faster than the wire could.
constexpr double kCatchUpRate = 1.25;

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Store32(uint8_t* p, uint32_t v) {
  Store16(p, static_cast<uint16_t>(v >> 16));
  Store16(p + 2, static_cast<uint16_t>(v));
}
uint32_t Load32(const uint8_t* p) { return static_cast<uint32_t>(Load16(p)) << 16 | Load16(p + 2); }

using Mac = std::array<uint8_t, 6>;

double ThreadCpuSeconds() {
  rusage u = {};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One side of the memif pair: phone A's or phone B's.
struct Phone {
  uint16_t port_id = 0;
  Mac mac{};
  Mac relay_mac{};
  bool relay_mac_known = false;
  packet::IpAddress ip, relay_ip;
};

struct CallState {
  std::unique_ptr<srtp::Context> sender;  // phone A's, under the leg a rx key
  std::optional<LibsrtpSession> verify;   // sluiced's leg b tx key, on verified calls
  std::optional<LibsrtpSession> next_verify;  // a re-key's, until a packet shows it in use
  uint16_t relay_port = 0;
  uint16_t seq = 0;
  uint32_t numbered = 0;  // payloads numbered so far
  uint64_t sent = 0, received = 0;  // this run
};

}  // namespace

struct TrafficGenerator::State {
  GeneratorOptions options;
  Phone a, b;
  rte_mempool* pool = nullptr;
  rte_ring* key_changes = nullptr;
  std::unique_ptr<crypto::Backend> backend;
  std::unique_ptr<srtp::Engine> engine;
  std::vector<CallState> calls;
  size_t next_call = 0;
  TrafficRunResult* run = nullptr;  // the run under way
  uint32_t check_every = 1;  // received packets of a verified call per check
  uint64_t received_total = 0;
  uint8_t scratch[2048];

  void SendArpRequest(const Phone& p);
  void HandleArp(Phone& p, rte_mbuf* m);
  absl::Status LearnRelayMacs();
  size_t SendBurst(size_t n);
  void ReceiveAt(Phone& p);
  void Check(CallState& call, uint32_t index, const uint8_t* frame, uint32_t len);
  void ApplyKeyChanges();
};

namespace {

absl::Status InitEal(const GeneratorOptions& o) {
  // EAL starts its own threads (interrupts, where memif's handshake runs;
  // telemetry) on the CPUs the calling thread may use outside its lcores:
  // sluiced's worker's CPU, unless this thread keeps to the generator's.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(o.core, &cpus);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus); rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot run on CPU ", o.core, ": ", std::strerror(rc)));
  }
  const std::string devargs = absl::StrCat(",role=client,socket-abstract=no,rsize=", o.ring_log2,
                                           ",socket=");
  std::vector<std::string> args = {
      "sluice-bench-traffic", "-l", absl::StrCat(o.core), "--no-huge", "-m", "256",
      "--no-pci", "--no-shconf", absl::StrCat("--file-prefix=", o.file_prefix),
      "--log-level=*:warning",
      absl::StrCat("--vdev=net_memif0,id=0", devargs, o.socket_a),
      absl::StrCat("--vdev=net_memif1,id=0", devargs, o.socket_b)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    return absl::InternalError(absl::StrCat("rte_eal_init: ", rte_strerror(rte_errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> StartMemif(const char* name, rte_mempool* pool) {
  uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name, &port) != 0) {
    return absl::NotFoundError(absl::StrCat("no port ", name));
  }
  rte_eth_conf conf = {};
  if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc != 0) {
    return absl::InternalError(absl::StrCat(name, ": configure: ", rte_strerror(-rc)));
  }
  if (int rc = rte_eth_rx_queue_setup(port, 0, 4096, SOCKET_ID_ANY, nullptr, pool); rc != 0) {
    return absl::InternalError(absl::StrCat(name, ": RX queue: ", rte_strerror(-rc)));
  }
  if (int rc = rte_eth_tx_queue_setup(port, 0, 4096, SOCKET_ID_ANY, nullptr); rc != 0) {
    return absl::InternalError(absl::StrCat(name, ": TX queue: ", rte_strerror(-rc)));
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    return absl::InternalError(absl::StrCat(name, ": start (is sluiced serving its memif "
                                                  "socket?): ", rte_strerror(-rc)));
  }
  // The memif handshake runs on EAL's interrupt thread.
  for (int i = 0; i < 1000; ++i) {
    rte_eth_link link = {};
    rte_eth_link_get_nowait(port, &link);
    if (link.link_status == RTE_ETH_LINK_UP) return port;
    rte_delay_ms(10);
  }
  return absl::DeadlineExceededError(absl::StrCat(name, ": link not up within 10 s"));
}

}  // namespace

void TrafficGenerator::State::SendArpRequest(const Phone& p) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return;
  uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 42));
  if (d == nullptr) {  // a pool whose buffers are smaller than a frame
    rte_pktmbuf_free(m);
    return;
  }
  std::memset(d, 0xff, 6);
  std::memcpy(d + 6, p.mac.data(), 6);
  Store16(d + 12, kEtherArp);
  Store16(d + 14, 1);  // RFC 826: Ethernet, IPv4, 6- and 4-byte addresses
  Store16(d + 16, kEtherIpv4);
  d[18] = 6;
  d[19] = 4;
  Store16(d + 20, 1);  // request
  std::memcpy(d + 22, p.mac.data(), 6);
  std::memcpy(d + 28, p.ip.bytes.data(), 4);
  std::memset(d + 32, 0, 6);
  std::memcpy(d + 38, p.relay_ip.bytes.data(), 4);
  if (rte_eth_tx_burst(p.port_id, 0, &m, 1) != 1) rte_pktmbuf_free(m);
}

// Learns sluiced's MAC from its replies (and requests), and answers requests
// for the phone's address in place.
void TrafficGenerator::State::HandleArp(Phone& p, rte_mbuf* m) {
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  if (m->data_len < 42 || Load16(d + 14) != 1 || Load16(d + 16) != kEtherIpv4) {
    rte_pktmbuf_free(m);
    return;
  }
  if (std::memcmp(d + 28, p.relay_ip.bytes.data(), 4) == 0) {
    std::memcpy(p.relay_mac.data(), d + 22, 6);
    p.relay_mac_known = true;
  }
  if (Load16(d + 20) != 1 || std::memcmp(d + 38, p.ip.bytes.data(), 4) != 0) {
    rte_pktmbuf_free(m);
    return;
  }
  std::memcpy(d, d + 22, 6);
  std::memcpy(d + 6, p.mac.data(), 6);
  Store16(d + 20, 2);  // reply
  std::memcpy(d + 32, d + 22, 10);  // target = the asker
  std::memcpy(d + 22, p.mac.data(), 6);
  std::memcpy(d + 28, p.ip.bytes.data(), 4);
  if (rte_eth_tx_burst(p.port_id, 0, &m, 1) != 1) rte_pktmbuf_free(m);
}

absl::Status TrafficGenerator::State::LearnRelayMacs() {
  for (int i = 0; i < 100 && !(a.relay_mac_known && b.relay_mac_known); ++i) {
    if (!a.relay_mac_known) SendArpRequest(a);
    if (!b.relay_mac_known) SendArpRequest(b);
    for (int j = 0; j < 100; ++j) {
      ReceiveAt(a);
      ReceiveAt(b);
      rte_delay_ms(1);
    }
  }
  if (a.relay_mac_known && b.relay_mac_known) return absl::OkStatus();
  return absl::DeadlineExceededError("sluiced did not answer ARP on its memif ports within 10 s");
}

absl::StatusOr<std::unique_ptr<TrafficGenerator>> TrafficGenerator::Start(
    const GeneratorOptions& o) {
  auto s = std::make_unique<State>();
  s->options = o;
  if (absl::Status st = InitEal(o); !st.ok()) return st;
  s->pool = rte_pktmbuf_pool_create("traffic", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                    SOCKET_ID_ANY);
  s->key_changes = rte_ring_create("key_changes", kKeyChangeRing, SOCKET_ID_ANY,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (s->pool == nullptr || s->key_changes == nullptr) {
    return absl::ResourceExhaustedError("no memory for the generator's mbufs or ring");
  }
  absl::StatusOr<std::unique_ptr<crypto::Backend>> backend =
      crypto::MakeBackend(crypto::BackendKind::kAuto);
  if (!backend.ok()) return backend.status();
  s->backend = *std::move(backend);
  s->engine = std::make_unique<srtp::Engine>(*s->backend);
  if (srtp_err_status_t err = srtp_init(); err != srtp_err_status_ok) {
    return absl::InternalError(absl::StrCat("srtp_init: error ", static_cast<int>(err)));
  }
  for (auto [phone, name] : {std::pair{&s->a, "net_memif0"}, std::pair{&s->b, "net_memif1"}}) {
    absl::StatusOr<uint16_t> port = StartMemif(name, s->pool);
    if (!port.ok()) return port.status();
    phone->port_id = *port;
    rte_ether_addr mac;
    rte_eth_macaddr_get(*port, &mac);
    std::memcpy(phone->mac.data(), mac.addr_bytes, 6);
  }
  s->a.ip = *packet::IpAddress::Parse(kTrafficPhoneA);
  s->a.relay_ip = *packet::IpAddress::Parse(kTrafficRelayA);
  s->b.ip = *packet::IpAddress::Parse(kTrafficPhoneB);
  s->b.relay_ip = *packet::IpAddress::Parse(kTrafficRelayB);
  if (absl::Status st = s->LearnRelayMacs(); !st.ok()) return st;
  return std::unique_ptr<TrafficGenerator>(new TrafficGenerator(std::move(s)));
}

TrafficGenerator::TrafficGenerator(std::unique_ptr<State> state) : state_(std::move(state)) {}

TrafficGenerator::~TrafficGenerator() {
  void* change = nullptr;
  while (rte_ring_sc_dequeue(state_->key_changes, &change) == 0) {
    delete static_cast<KeyChange*>(change);
  }
  state_->calls.clear();
  for (uint16_t port : {state_->a.port_id, state_->b.port_id}) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
  }
  rte_eal_cleanup();
}

absl::Status TrafficGenerator::SetCalls(const std::vector<TrafficCall>& calls) {
  std::vector<CallState> states(calls.size());
  const size_t stride = (calls.size() + state_->options.verified_calls - 1) /
                        std::max<size_t>(1, state_->options.verified_calls);
  for (size_t i = 0; i < calls.size(); ++i) {
    absl::StatusOr<std::unique_ptr<srtp::Context>> sender = srtp::Context::Create(
        std::span<const srtp::MasterKey>(&calls[i].send_key, 1), srtp::ContextOptions{});
    if (!sender.ok()) return sender.status();
    states[i].sender = *std::move(sender);
    states[i].relay_port = calls[i].relay_port_a;
    if (i % stride != 0) continue;
    absl::StatusOr<LibsrtpSession> verify = LibsrtpSession::Create(calls[i].verify_key);
    if (!verify.ok()) return verify.status();
    states[i].verify.emplace(*std::move(verify));
  }
  // About one received packet in 64 is checked, whatever the number of calls.
  state_->check_every = static_cast<uint32_t>(std::max<size_t>(1, 64 / stride));
  state_->calls = std::move(states);
  state_->next_call = 0;
  return absl::OkStatus();
}

void TrafficGenerator::PostKeyChange(KeyChange change) {
  auto* c = new KeyChange(std::move(change));
  while (rte_ring_sp_enqueue(state_->key_changes, c) != 0) rte_pause();
}

void TrafficGenerator::State::ApplyKeyChanges() {
  void* changes[kKeyChangesPerLoop];
  const unsigned n =
      rte_ring_sc_dequeue_burst(key_changes, changes, kKeyChangesPerLoop, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    std::unique_ptr<KeyChange> c(static_cast<KeyChange*>(changes[i]));
    CallState& call = calls[c->call];
    if (c->leg == KeyChange::Leg::kSendA) {
      // The new context carries on the stream (ROC and sequence), as the
      // phone's own SRTP stack would across a re-key; its new key protects
      // (the previous one follows it, as a trial key only unprotect uses).
      srtp::ContextOptions options;
      options.trial_keys = true;
      absl::StatusOr<std::unique_ptr<srtp::Context>> sender = srtp::Context::Create(
          std::span<const srtp::MasterKey>(&c->key, 1), options, call.sender.get());
      if (!sender.ok()) {
        ++run->send_failures;
        continue;
      }
      call.sender = *std::move(sender);
    } else if (call.verify) {
      absl::StatusOr<LibsrtpSession> next = LibsrtpSession::Create(c->key);
      if (next.ok()) call.next_verify.emplace(*std::move(next));
    }
    ++run->key_changes;
  }
}

// Phone A: n packets round-robin over the calls, each a fresh SRTP packet
// with the call's index and number in its payload. Returns the packets made.
size_t TrafficGenerator::State::SendBurst(size_t n) {
  rte_mbuf* m[kBurst];
  if (rte_pktmbuf_alloc_bulk(pool, m, static_cast<unsigned>(n)) != 0) return 0;
  srtp::Packet pkts[kBurst];
  srtp::Job jobs[kBurst];
  srtp::Verdict verdicts[kBurst];
  uint32_t index[kBurst];
  for (size_t i = 0; i < n; ++i) {
    index[i] = static_cast<uint32_t>(next_call);
    CallState& call = calls[next_call];
    next_call = next_call + 1 == calls.size() ? 0 : next_call + 1;
    uint8_t* rtp = rte_pktmbuf_mtod(m[i], uint8_t*) + kRtpAt;
    rtp[0] = 0x80;  // RFC 3550 §5.1: version 2, PCMU
    rtp[1] = 0;
    Store16(rtp + 2, call.seq++);
    Store32(rtp + 4, call.numbered * 160);
    Store32(rtp + 8, kBenchSsrc);
    Store32(rtp + 12, index[i]);
    Store32(rtp + 16, call.numbered++);
    std::memset(rtp + 20, kSilence, kRtpSize - 20);
    pkts[i] = {rtp, kRtpSize, rte_pktmbuf_tailroom(m[i]) - kRtpAt};
    jobs[i] = {call.sender.get(), &pkts[i]};
  }
  engine->SetNow(rte_rdtsc());
  engine->ProtectRtp(std::span<const srtp::Job>(jobs, n), std::span<srtp::Verdict>(verdicts, n));
  size_t good = 0;
  for (size_t i = 0; i < n; ++i) {
    if (verdicts[i] != srtp::Verdict::kOk) {
      ++run->send_failures;
      rte_pktmbuf_free(m[i]);
      continue;
    }
    CallState& call = calls[index[i]];
    uint8_t* d = rte_pktmbuf_mtod(m[i], uint8_t*);
    if (options.fault_every != 0 && (run->sent + good + 1) % options.fault_every == 0) {
      d[kRtpAt + 20] ^= 1;
      ++run->faults_sent;
    }
    std::memcpy(d, a.relay_mac.data(), 6);
    std::memcpy(d + 6, a.mac.data(), 6);
    Store16(d + 12, kEtherIpv4);
    uint8_t* ip = d + 14;
    const uint32_t udp_len = 8 + pkts[i].len;
    ip[0] = 0x45;
    ip[1] = 0;
    Store16(ip + 2, static_cast<uint16_t>(20 + udp_len));
    Store32(ip + 4, 0x4000);  // id 0, don't fragment
    ip[8] = 64;
    ip[9] = 17;
    Store16(ip + 10, 0);
    std::memcpy(ip + 12, a.ip.bytes.data(), 4);
    std::memcpy(ip + 16, a.relay_ip.bytes.data(), 4);
    Store16(ip + 10, packet::Ipv4HeaderChecksum(ip, 20));
    uint8_t* udp = d + kUdpAt;
    Store16(udp, static_cast<uint16_t>(kPhonePortBase + 2 * index[i]));
    Store16(udp + 2, call.relay_port);
    Store16(udp + 4, static_cast<uint16_t>(udp_len));
    Store16(udp + 6, 0);
    const uint16_t sum = packet::UdpChecksum(a.ip, a.relay_ip, udp, udp_len);
    Store16(udp + 6, sum == 0 ? 0xffff : sum);
    m[i]->data_len = static_cast<uint16_t>(kUdpAt + udp_len);
    m[i]->pkt_len = m[i]->data_len;
    ++call.sent;
    m[good++] = m[i];
  }
  const uint16_t on_wire = rte_eth_tx_burst(a.port_id, 0, m, static_cast<uint16_t>(good));
  if (on_wire < good) {
    run->ring_full += good - on_wire;
    rte_pktmbuf_free_bulk(m + on_wire, static_cast<unsigned>(good - on_wire));
  }
  run->sent += good;
  return n;
}

// libsrtp2 checks a received packet with the call's key (and a re-key's new
// one, which replaces it once a packet shows sluiced uses it); the payload
// must be what phone A sent: this call's index and silence.
void TrafficGenerator::State::Check(CallState& call, uint32_t index, const uint8_t* frame,
                                    uint32_t len) {
  const uint8_t* udp = frame + kUdpAt;
  const uint32_t udp_len = Load16(udp + 4);
  if (udp_len < 8 + 12 || kUdpAt + udp_len > len || udp_len - 8 > sizeof scratch) {
    ++run->corrupted;
    return;
  }
  if (packet::Ipv4HeaderChecksum(frame + 14, 20) != 0 ||
      (Load16(udp + 6) != 0 && packet::UdpChecksum(b.relay_ip, b.ip, udp, udp_len) != 0)) {
    ++run->bad_checksums;
  }
  ++run->auth_checked;
  int n = static_cast<int>(udp_len - 8);
  std::memcpy(scratch, udp + 8, n);
  if (options.fault_every != 0 && run->auth_checked % options.fault_every == 0) {
    scratch[20] ^= 1;
    ++run->faults_checked;
  }
  bool ok = srtp_unprotect(call.verify->get(), scratch, &n) == srtp_err_status_ok;
  if (!ok && call.next_verify) {
    n = static_cast<int>(udp_len - 8);
    std::memcpy(scratch, udp + 8, n);
    ok = srtp_unprotect(call.next_verify->get(), scratch, &n) == srtp_err_status_ok;
    if (ok) {
      call.verify = std::move(call.next_verify);
      call.next_verify.reset();
    }
  }
  if (!ok) {
    ++run->auth_failures;
    return;
  }
  bool same = n == static_cast<int>(kRtpSize) && Load32(scratch + 12) == index;
  for (int i = 20; same && i < n; ++i) same = scratch[i] == kSilence;
  if (!same) ++run->corrupted;
}

void TrafficGenerator::State::ReceiveAt(Phone& p) {
  rte_mbuf* m[kBurst];
  const uint16_t n = rte_eth_rx_burst(p.port_id, 0, m, kBurst);
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* d = rte_pktmbuf_mtod(m[i], const uint8_t*);
    const uint32_t len = m[i]->data_len;
    if (len >= 14 && Load16(d + 12) == kEtherArp) {
      HandleArp(p, m[i]);
      continue;
    }
    const uint16_t to = len >= kRtpAt ? Load16(d + kUdpAt + 2) : 0;
    const uint32_t index = (to - kPhonePortBase) / 2;
    if (run == nullptr) {
      // Between runs: late packets are not counted.
    } else if (&p != &b || Load16(d + 12) != kEtherIpv4 || d[23] != 17 || to < kPhonePortBase ||
               to % 2 != 0 || index >= calls.size()) {
      ++run->unexpected;
    } else {
      CallState& call = calls[index];
      ++received_total;
      if (++call.received % check_every == 0 && call.verify) Check(call, index, d, len);
    }
    rte_pktmbuf_free(m[i]);
  }
}

TrafficRunResult TrafficGenerator::Run(double pps, double seconds, double drain) {
  State& s = *state_;
  TrafficRunResult r;
  r.target_pps = pps;
  s.run = &r;
  for (CallState& c : s.calls) c.sent = c.received = 0;
  const uint64_t hz = rte_get_tsc_hz();
  const double cpu_start = ThreadCpuSeconds();
  const uint64_t start = rte_rdtsc();
  const uint64_t end = start + static_cast<uint64_t>(seconds * hz);
  const double per_cycle = pps / static_cast<double>(hz);
  uint64_t made = 0, busy = 0, now = start, last = start, max_stall = 0;
  double credit = kBurst;  // packets it may send now, refilled at kCatchUpRate times the rate
  while ((now = rte_rdtsc()) < end) {
    max_stall = std::max(max_stall, now - last);
    credit = std::min<double>(kBurst, credit + static_cast<double>(now - last) * per_cycle *
                                                   kCatchUpRate);
    last = now;
    const uint64_t due = static_cast<uint64_t>(static_cast<double>(now - start) * per_cycle);
    const uint64_t before = r.sent + r.send_failures + r.unexpected + s.received_total;
    r.max_backlog = std::max(r.max_backlog, due > made ? due - made : 0);
    const uint64_t n =
        made < due ? std::min<uint64_t>(due - made, static_cast<uint64_t>(credit)) : 0;
    if (n > 0 && !s.calls.empty()) {
      const size_t sent = s.SendBurst(n);
      made += sent;
      credit -= static_cast<double>(sent);
    }
    if (r.ring_full > 0 && r.first_ring_full_s < 0) {
      r.first_ring_full_s = static_cast<double>(now - start) / static_cast<double>(hz);
    }
    s.ReceiveAt(s.b);
    s.ReceiveAt(s.a);
    s.ApplyKeyChanges();
    if (r.sent + r.send_failures + r.unexpected + s.received_total != before) busy += rte_rdtsc() - now;
  }
  r.seconds = static_cast<double>(now - start) / static_cast<double>(hz);
  r.generator_busy = static_cast<double>(busy) / static_cast<double>(now - start);
  r.max_stall_ms = static_cast<double>(max_stall) * 1e3 / static_cast<double>(hz);
  r.generator_cpu_share = (ThreadCpuSeconds() - cpu_start) / r.seconds;
  const uint64_t drain_end = rte_rdtsc() + static_cast<uint64_t>(drain * hz);
  while (rte_rdtsc() < drain_end) {
    s.ReceiveAt(s.b);
    s.ReceiveAt(s.a);
    s.ApplyKeyChanges();
  }
  for (const CallState& c : s.calls) {
    r.received += std::min(c.received, c.sent);
    r.lost += c.sent > c.received ? c.sent - c.received : 0;
    r.duplicated += c.received > c.sent ? c.received - c.sent : 0;
    r.calls_with_loss += c.received < c.sent ? 1 : 0;
  }
  r.offered_mpps = static_cast<double>(r.sent) / r.seconds / 1e6;
  r.received_mpps = static_cast<double>(r.received) / r.seconds / 1e6;
  s.run = nullptr;
  return r;
}

}  // namespace sluice::bench
