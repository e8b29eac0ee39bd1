// sluiced: the Sluice media relay daemon.
//
// Reads its configuration, starts EAL and the ports, launches one poll-mode
// worker per configured lcore, and runs the control thread on the main lcore:
// the control socket, the slow path (ARP, neighbour discovery, echo) and the
// reclamation of re-keyed contexts. Beside it, on the same core, the
// handshake thread takes the STUN and DTLS of WebRTC legs. SIGTERM or SIGINT stops it cleanly:
// workers stop, every session is deleted and its keys wiped.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/config/config.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/control/server.h"
#include "sluice/control/session_manager.h"
#include "sluice/crypto/backend.h"
#include "sluice/dpdk/eal.h"
#include "sluice/dpdk/kernel_ring_drops.h"
#include "sluice/dpdk/port.h"
#include "sluice/dpdk/slow_path.h"
#include "sluice/metrics/http_endpoint.h"
#include "sluice/metrics/sluice_metrics.h"
#include "sluice/metrics/telemetry.h"
#include "sluice/ng/listener.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/policing.h"
#include "sluice/version.h"
#include "sluice/log/logger.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/fingerprint.h"
#include "sluice/dtls/srtp_profile.h"
#include "sluice/ha/replicator.h"
#include "sluice/ha/restore.h"
#include "sluice/ha/standby.h"
#include "sluice/webrtc/handshake_thread.h"
#include "sluice/webrtc/webrtc_legs.h"
#include "sluice/worker/worker.h"

namespace sluice {
namespace {

constexpr char kUsage[] =
    "sluiced %s: SRTP media relay for session border controllers.\n"
    "\n"
    "Relays the RTP/RTCP media of each call between its two legs on DPDK\n"
    "poll-mode NIC workers: authenticates and decrypts what each side sends,\n"
    "re-encrypts it with the other side's keys and forwards it. A SIP\n"
    "controller installs each call's keys over a local control socket\n"
    "(see docs/control-protocol.md and sluicectl).\n"
    "\n"
    "Usage: sluiced --config FILE [--check]\n"
    "\n"
    "Options:\n"
    "  --config FILE   TOML configuration (see configs/ for examples)\n"
    "  --check         validate the configuration and exit\n"
    "  --help          show this text\n"
    "  --version       print the version\n";

std::atomic<bool> stop_requested{false};

void OnSignal(int) { stop_requested.store(true); }

// A failure that stops the daemon: one error event, what failed and why.
void LogFailure(std::string_view event, absl::string_view reason) {
  log::Event(log::Level::kError, event, {{"reason", reason}});
}

std::atomic<bool> workers_stop{false};

int WorkerMain(void* arg) {
  static_cast<worker::Worker*>(arg)->Run(workers_stop);
  return 0;
}

// [control.tls] as the control server takes it.
control::TlsServerOptions TlsServerOptionsFrom(const config::ControlTlsConfig& tls) {
  control::TlsServerOptions t;
  t.listen = tls.listen.ToString();
  t.cert_file = tls.cert;
  t.key_file = tls.key;
  t.ca_file = tls.ca;
  t.server_name = tls.server_name;
  t.allowed_clients = tls.allowed_clients;
  t.handshake_timeout_ms = tls.handshake_timeout_ms;
  t.max_connections = tls.max_connections;
  t.idle_timeout_ms = tls.idle_timeout_ms;
  return t;
}

// ---------------------------------------------------------------------------
// Process limits and privileges.

void RefuseCoreDumps(const config::SecurityConfig& security) {
  if (security.core_dumps) {
    // Allowed: also after a change of user, which would otherwise clear it.
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    return;
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

// Session keys live in the hot arena's regions, which are locked so that no
// key reaches swap (sluice/memory/hot_arena.h). Locked memory counts against
// RLIMIT_MEMLOCK, which stays with the process when it drops privileges:
// raised here to unlimited while still root. Where it cannot be and is
// below what max_sessions need, sluiced refuses to start unless
// [security] allow_unlocked_keys (then warns: regions beyond the limit are
// not locked, still left out of core dumps).
bool HasCapIpcLock() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (caps >> 14) & 1;  // CAP_IPC_LOCK
  }
  return false;
}

absl::Status PrepareKeyMemoryLock(const config::Config& cfg) {
  const rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &unlimited) == 0) {
    log::Event(log::Level::kInfo, "memory.locked", {{"how", "RLIMIT_MEMLOCK unlimited"}});
    return absl::OkStatus();
  }
  rlimit lock = {};
  getrlimit(RLIMIT_MEMLOCK, &lock);
  lock.rlim_cur = lock.rlim_max;  // the soft limit up to the hard one
  setrlimit(RLIMIT_MEMLOCK, &lock);
  // CAP_IPC_LOCK (root's, in a container that keeps it) locks without limit,
  // as long as sluiced does not drop it by becoming [security] user.
  if (cfg.security.user.empty() && HasCapIpcLock()) {
    log::Event(log::Level::kInfo, "memory.locked", {{"how", "CAP_IPC_LOCK"}});
    return absl::OkStatus();
  }
  // About 8 KiB of session state a session (its contexts included), in
  // whole regions, and one region more.
  const uint64_t need =
      (uint64_t{cfg.limits.max_sessions} * 8192 / memory::kHotRegionBytes + 2) *
      memory::kHotRegionBytes;
  if (lock.rlim_cur == RLIM_INFINITY || lock.rlim_cur >= need) {
    log::Event(log::Level::kInfo, "memory.locked",
               {{"how", "RLIMIT_MEMLOCK"}, {"limit_bytes", uint64_t{lock.rlim_cur}}});
    return absl::OkStatus();
  }
  const std::string what = absl::StrCat(
      "RLIMIT_MEMLOCK is ", lock.rlim_cur, " bytes, below the ", need,
      " that locking key memory for [limits] max_sessions needs; raise it (ulimit -l, "
      "LimitMEMLOCK= in a systemd unit, or start sluiced as root)");
  if (!cfg.security.allow_unlocked_keys) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ", or set [security] allow_unlocked_keys = true"));
  }
  log::Event(log::Level::kWarning, "memory.unlocked",
             {{"reason", what}, {"effect", "session keys beyond the limit may be swapped to disk"}});
  return absl::OkStatus();
}

// Before anything else starts: keys live in this process, so no core dumps
// and no ptrace by other users unless the configuration allows dumps; room
// for every control connection the configuration allows; SIGTERM and SIGINT
// ask the control loop to stop.
void ApplyProcessLimits(const config::SecurityConfig& security) {
  RefuseCoreDumps(security);
  rlimit files = {};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// [security] user: with every port, socket and listener open, become that
// user for good (all threads: glibc applies set*id to the whole process).
absl::Status DropPrivileges(const config::SecurityConfig& security) {
  if (security.user.empty()) return absl::OkStatus();
  const passwd* pw = getpwnam(security.user.c_str());
  if (pw == nullptr) return absl::NotFoundError(absl::StrCat("no user \"", security.user, "\""));
  const uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (!security.group.empty()) {
    const group* gr = getgrnam(security.group.c_str());
    if (gr == nullptr) return absl::NotFoundError(absl::StrCat("no group \"", security.group, "\""));
    gid = gr->gr_gid;
  }
  if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
      setresuid(uid, uid, uid) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot become user ", security.user, ": ", std::strerror(errno)));
  }
  // Changing credentials resets the dumpable flag: set it again as
  // configured. And there is no way back.
  RefuseCoreDumps(security);
  if (uid != 0 && setuid(0) == 0) {
    return absl::InternalError("privileges could be regained after dropping them");
  }
  return absl::OkStatus();
}

// DropPrivileges with its log line; 0, or 1 (and a stop request) on failure.
int BecomeConfiguredUser(const config::SecurityConfig& security) {
  if (absl::Status s = DropPrivileges(security); !s.ok()) {
    LogFailure("security.user_failed", s.message());
    stop_requested.store(true);
    return 1;
  }
  if (!security.user.empty()) log::Event(log::Level::kInfo, "security.user", {{"user", security.user}});
  return 0;
}

// ---------------------------------------------------------------------------
// The data plane: EAL, the mbuf pool, ports, the flow table, the slow path,
// the hand-off rings and the workers.

struct WorkerSlot {
  std::unique_ptr<crypto::Backend> backend;
  std::unique_ptr<worker::Worker> worker;
  unsigned lcore = 0;
};

// Owned by Run from start-up to Shutdown; never moved once started (the
// control plane's stats callbacks point into it).
struct DataPlane {
  uint32_t n_workers = 0;
  rte_mempool* pool = nullptr;
  // Each configured interface as started, in configuration order: the one
  // description the session manager and the slow path are given.
  std::vector<control::InterfaceInfo> interfaces;
  dpdk::KernelRingDrops ring_drops;  // what af_packet and af_xdp kernel rings lost
  std::vector<std::vector<worker::RxQueue>> queues;   // by worker
  std::vector<worker::TxChecksumOffload> tx_offload;  // by port id
  std::unique_ptr<session::FlowTable> table;
  std::unique_ptr<dpdk::SlowPath> slow_path;
  // STUN and DTLS from every worker; it sends through the slow path's TX ring.
  std::unique_ptr<webrtc::HandshakeThread> handshake;
  std::vector<rte_ring*> handoff;  // by worker; empty with one worker
  std::vector<WorkerSlot> workers;
};

// EAL with the configured arguments, and every configured worker lcore one
// EAL enables, other than the main lcore (the control thread's).
absl::Status StartEal(const config::Config& cfg) {
  std::vector<std::string> eal_args = {"sluiced"};
  eal_args.insert(eal_args.end(), cfg.eal_args.begin(), cfg.eal_args.end());
  if (absl::Status s = dpdk::InitEalWithArgs(eal_args); !s.ok()) return s;
  for (unsigned lcore : cfg.workers.lcores) {
    if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "workers.lcores: lcore ", lcore,
          " is not a worker lcore of EAL (give it in [eal] args -l, and keep the main lcore ",
          rte_get_main_lcore(), " for the control thread)"));
    }
  }
  return absl::OkStatus();
}

// The configured crypto backend can be made on this CPU; logs which it is.
absl::Status ProbeCryptoBackend(const config::CryptoConfig& crypto) {
  absl::StatusOr<std::unique_ptr<crypto::Backend>> probe = crypto::MakeBackend(crypto.backend);
  if (!probe.ok()) return probe.status();
  log::Event(log::Level::kInfo, "crypto.backend", {{"backend", (*probe)->name()}, {"arch", (*probe)->arch()}});
  return absl::OkStatus();
}

uint32_t RoundPoolSize(uint64_t n) {
  uint32_t size = 4095;
  while (size < n && size < (1u << 24)) size = size * 2 + 1;
  return size;
}

uint16_t RxQueues(const config::InterfaceConfig& iface, uint32_t n_workers) {
  return iface.rx_queues ? iface.rx_queues : static_cast<uint16_t>(n_workers);
}

// Mbufs the handshake thread's ring holds at most.
constexpr uint32_t kHandshakeRingSize = 4096;

// [limits] mbufs, or enough for every RX and TX descriptor, the bursts in
// flight and the rings (the slow path's 4096 and 2048 for its ring and TX
// ring, the frames waiting for a next hop in its hold ring and held).
uint64_t MbufCount(const config::Config& cfg, uint32_t n_workers) {
  if (cfg.limits.mbufs != 0) return cfg.limits.mbufs;
  uint64_t mbufs = 0;
  for (const config::InterfaceConfig& iface : cfg.interfaces) {
    mbufs += uint64_t{RxQueues(iface, n_workers)} * iface.rx_ring_size +
             uint64_t{n_workers} * iface.tx_ring_size;
  }
  return mbufs + uint64_t{n_workers} * (1024 + 64 * 16) + 4096 + 2048 + kHandshakeRingSize +
         1024 + dpdk::SlowPath::kMaxHeld;
}

absl::StatusOr<rte_mempool*> CreateMbufPool(const config::Config& cfg, uint32_t n_workers) {
  const uint64_t mbufs = MbufCount(cfg, n_workers);
  rte_mempool* pool = rte_pktmbuf_pool_create("sluiced_mbufs", RoundPoolSize(mbufs), 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", mbufs, " mbufs: give EAL more memory (-m) or set [limits] mbufs"));
  }
  return pool;
}

// A configured interface on its started port: the one place where the
// configuration and the port become the daemon's description of it.
control::InterfaceInfo DescribeInterface(const config::InterfaceConfig& iface,
                                         const dpdk::PortInfo& port) {
  control::InterfaceInfo info;
  info.name = iface.name;
  info.port_id = port.port_id;
  info.mac = port.mac;
  info.ipv4 = iface.ipv4;
  info.ipv6 = iface.ipv6;
  info.gateway = iface.gateway;
  info.gateway6 = iface.gateway6;
  info.vlan = iface.vlan;
  return info;
}

// What the slow path answers for on an interface.
dpdk::SlowPathInterface SlowPathInterfaceOf(const control::InterfaceInfo& info) {
  return {.port_id = info.port_id, .mac = info.mac, .ipv4 = info.ipv4, .ipv6 = info.ipv6,
          .gateway = info.gateway, .gateway6 = info.gateway6, .vlan = info.vlan};
}

// The interface, its port and which checksums the NIC does: what an operator
// comparing hosts asks first.
void LogInterface(const config::InterfaceConfig& iface, const dpdk::PortInfo& port) {
  std::vector<std::string> offloads;
  if (port.rx_ip_checksum_offload) offloads.push_back("rx-ipv4");
  if (port.rx_udp_checksum_offload) offloads.push_back("rx-udp");
  if (port.tx_ip_checksum_offload) offloads.push_back("tx-ipv4");
  if (port.tx_udp_checksum_offload) offloads.push_back("tx-udp");
  log::Event(log::Level::kInfo, "interface.started",
             {{"interface", iface.name}, {"device", iface.device}, {"port", port.port_id},
              {"ipv4", iface.ipv4 ? iface.ipv4->ToString() : ""},
              {"ipv6", iface.ipv6 ? iface.ipv6->ToString() : ""},
              {"checksum_offload", offloads.empty() ? "none" : absl::StrJoin(offloads, ",")}});
}

// Starts the port of configured interface `index` and spreads its RX queues
// over the workers, starting at worker `index`.
absl::Status StartInterface(const config::Config& cfg, size_t index, DataPlane& data) {
  const config::InterfaceConfig& iface = cfg.interfaces[index];
  dpdk::PortSetup setup;
  setup.device = iface.device;
  setup.rx_queues = RxQueues(iface, data.n_workers);
  setup.tx_queues = static_cast<uint16_t>(data.n_workers);
  setup.rx_ring_size = iface.rx_ring_size;
  setup.tx_ring_size = iface.tx_ring_size;
  setup.mtu = iface.mtu;
  setup.pool = data.pool;
  setup.checksum_offload = iface.checksum_offload;
  absl::StatusOr<dpdk::PortInfo> port = dpdk::StartPort(setup);
  if (!port.ok()) {
    return absl::Status(port.status().code(),
                        absl::StrCat("interface ", iface.name, ": ", port.status().message()));
  }
  for (uint16_t q = 0; q < setup.rx_queues; ++q) {
    data.queues[(index + q) % data.n_workers].push_back({port->port_id, q});
  }
  if (data.tx_offload.size() <= port->port_id) data.tx_offload.resize(port->port_id + 1);
  data.tx_offload[port->port_id] = {.ipv4_header = port->tx_ip_checksum_offload,
                                    .udp = port->tx_udp_checksum_offload};
  data.interfaces.push_back(DescribeInterface(iface, *port));
  data.ring_drops.Watch(port->port_id);
  LogInterface(iface, *port);
  return absl::OkStatus();
}

// One hand-off ring per worker, where more than one worker runs.
absl::Status CreateHandoffRings(DataPlane& data) {
  if (data.n_workers <= 1) return absl::OkStatus();
  for (uint32_t w = 0; w < data.n_workers; ++w) {
    rte_ring* ring = rte_ring_create(absl::StrCat("handoff", w).c_str(), 4096, SOCKET_ID_ANY,
                                     RING_F_SC_DEQ);
    if (ring == nullptr) return absl::ResourceExhaustedError("cannot create the hand-off rings");
    data.handoff.push_back(ring);
  }
  return absl::OkStatus();
}

// One worker per configured lcore, each with its own crypto backend; worker 0
// also sends what the slow path queues.
void BuildWorkers(const config::Config& cfg, DataPlane& data) {
  data.workers.resize(data.n_workers);
  for (uint32_t w = 0; w < data.n_workers; ++w) {
    WorkerSlot& slot = data.workers[w];
    slot.backend = *crypto::MakeBackend(cfg.crypto.backend);
    worker::WorkerConfig wc;
    wc.id = w;
    wc.rx_queues = data.queues[w];
    wc.tx_queue = static_cast<uint16_t>(w);
    wc.burst = cfg.workers.burst;
    wc.table = data.table.get();
    wc.slow_path = data.slow_path->ring();
    wc.neighbor_hold = data.slow_path->hold_ring();
    wc.handshake = data.handshake->ring();
    wc.handshake_rate =
        session::policing::MakeRate(cfg.webrtc.handshake_max_pps, rte_get_tsc_hz());
    wc.backend = slot.backend.get();
    wc.handoff = data.handoff;
    wc.tx_checksum_offload = data.tx_offload;
    if (w == 0) wc.control_tx = data.slow_path->tx_ring();
    slot.worker = std::make_unique<worker::Worker>(wc);
    slot.lcore = cfg.workers.lcores[w];
  }
}

// Launches every worker on its lcore; if one cannot start, stops those that did.
absl::Status LaunchWorkers(DataPlane& data) {
  for (WorkerSlot& w : data.workers) {
    if (rte_eal_remote_launch(WorkerMain, w.worker.get(), w.lcore) != 0) {
      workers_stop = true;
      rte_eal_mp_wait_lcore();
      return absl::InternalError(absl::StrCat("cannot launch a worker on lcore ", w.lcore));
    }
  }
  return absl::OkStatus();
}

// Starts everything the workers run on, then the workers. An error is the
// line to log before exiting with 1.
absl::Status StartDataPlane(const config::Config& cfg, DataPlane& data) {
  data.n_workers = static_cast<uint32_t>(cfg.workers.lcores.size());
  if (absl::Status s = StartEal(cfg); !s.ok()) return s;
  if (absl::Status s = ProbeCryptoBackend(cfg.crypto); !s.ok()) return s;
  absl::StatusOr<rte_mempool*> pool = CreateMbufPool(cfg, data.n_workers);
  if (!pool.ok()) return pool.status();
  data.pool = *pool;
  data.queues.resize(data.n_workers);
  for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
    if (absl::Status s = StartInterface(cfg, i, data); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<session::FlowTable>> table = session::FlowTable::Create(
      "sluiced_flows", cfg.limits.max_sessions * 4 + 64, data.n_workers);
  if (!table.ok()) return table.status();
  data.table = *std::move(table);
  std::vector<dpdk::SlowPathInterface> slow_ifaces;
  for (const control::InterfaceInfo& info : data.interfaces) {
    slow_ifaces.push_back(SlowPathInterfaceOf(info));
  }
  // The neighbour table's bound: a next hop for every leg, two gateways an
  // interface.
  dpdk::SlowPathOptions slow_options;
  slow_options.max_neighbors = static_cast<uint32_t>(
      std::min<uint64_t>(UINT32_MAX, 2ull * cfg.limits.max_sessions + 2 * slow_ifaces.size()));
  absl::StatusOr<std::unique_ptr<dpdk::SlowPath>> slow =
      dpdk::SlowPath::Create(std::move(slow_ifaces), data.pool, std::move(slow_options));
  if (!slow.ok()) return slow.status();
  data.slow_path = *std::move(slow);
  absl::StatusOr<std::unique_ptr<webrtc::HandshakeThread>> handshake =
      webrtc::HandshakeThread::Create({.pool = data.pool,
                                       .tx_ring = data.slow_path->tx_ring(),
                                       .ring_size = kHandshakeRingSize});
  if (!handshake.ok()) return handshake.status();
  data.handshake = *std::move(handshake);
  data.handshake->Start();
  if (absl::Status s = CreateHandoffRings(data); !s.ok()) return s;
  BuildWorkers(cfg, data);
  return LaunchWorkers(data);
}

// ---------------------------------------------------------------------------
// The control plane: the session manager and the listeners that drive it.

std::vector<control::WorkerStats> ReadWorkerStats(const std::vector<WorkerSlot>& workers) {
  std::vector<control::WorkerStats> out;
  for (uint32_t i = 0; i < workers.size(); ++i) {
    const worker::WorkerCounters& c = workers[i].worker->counters();
    control::WorkerStats s;
    s.id = i;
    s.lcore = workers[i].lcore;
    s.rx_packets = c.rx_packets.load(std::memory_order_relaxed);
    s.tx_packets = c.tx_packets.load(std::memory_order_relaxed);
    s.rx_bytes = c.rx_bytes.load(std::memory_order_relaxed);
    s.tx_bytes = c.tx_bytes.load(std::memory_order_relaxed);
    s.busy_cycles = c.busy_cycles.load(std::memory_order_relaxed);
    s.idle_cycles = c.idle_cycles.load(std::memory_order_relaxed);
    s.handshake_packets = c.handshake_packets.load(std::memory_order_relaxed);
    s.neighbor_held = c.neighbor_held.load(std::memory_order_relaxed);
    for (int r = 0; r < worker::kDropReasonCount; ++r) {
      const uint64_t n = c.drops[static_cast<size_t>(r)].load(std::memory_order_relaxed);
      if (n > 0) {
        s.drops.emplace_back(worker::DropReasonName(static_cast<worker::DropReason>(r)), n);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<control::PortStats> ReadPortStats(const DataPlane& data) {
  std::vector<control::PortStats> out;
  for (const control::InterfaceInfo& info : data.interfaces) {
    rte_eth_stats s = {};
    if (rte_eth_stats_get(info.port_id, &s) != 0) continue;
    control::PortStats p;
    p.interface = info.name;
    p.rx_packets = s.ipackets;
    p.rx_bytes = s.ibytes;
    p.tx_packets = s.opackets;
    p.tx_bytes = s.obytes;
    // A kernel ring's overflow is the same loss as a NIC's full RX ring.
    p.rx_missed = s.imissed + data.ring_drops.Drops(info.port_id);
    p.rx_errors = s.ierrors;
    p.rx_no_mbuf = s.rx_nombuf;
    p.tx_errors = s.oerrors;
    p.xstats = dpdk::ReadXstats(info.port_id);
    out.push_back(std::move(p));
  }
  return out;
}

// Destroyed before the data plane it points into. Members are built in
// their order and destroyed in reverse: the listeners before the manager
// they call.
struct ControlPlane {
  // [ha]: the manager's observer; declared first, so destroyed last.
  std::unique_ptr<ha::Replicator> replicator;
  // [ha] role = "standby", until promoted; this process's name in the
  // heartbeat; gratuitous ARPs still to send after a promotion.
  std::unique_ptr<ha::Standby> standby;
  std::string ha_owner;
  int announcements_left = 0;
  uint64_t next_announce_ms = 0;
  // An active's control loop: its last pass, and since when it holds back
  // from the addresses until Redis confirms the heartbeat still its own.
  uint64_t last_pass_ms = 0, unconfirmed_since_ms = 0;
  // WebRTC legs' handshakes: the manager (declared after it, so destroyed
  // first) removes its legs from it as it deletes its sessions.
  std::unique_ptr<webrtc::WebRtcLegs> webrtc;
  std::unique_ptr<control::SessionManager> manager;
  absl::StatusOr<std::unique_ptr<control::Server>> server;
  std::unique_ptr<ng::Handler> ng_handler;
  std::unique_ptr<ng::Listener> ng_listener;  // only with [ng]
  std::unique_ptr<metrics::HttpEndpoint> metrics;  // only with [metrics]
  std::unique_ptr<metrics::Telemetry> telemetry;   // DPDK telemetry's /sluice/ commands
};

std::unique_ptr<control::SessionManager> CreateSessionManager(const config::Config& cfg,
                                                              const DataPlane& data) {
  dpdk::SlowPath* slow_path = data.slow_path.get();
  control::NeighborResolver resolver;
  resolver.lookup = [slow_path](uint16_t port, const packet::IpAddress& ip) {
    return slow_path->Lookup(port, ip);
  };
  resolver.hold_stats = [slow_path]() {
    const dpdk::SlowPathCounters& c = slow_path->counters();
    return control::Stats::NeighborHold{slow_path->held(), c.hold_sent, c.hold_dropped};
  };
  const std::vector<WorkerSlot>* workers = &data.workers;
  auto manager = std::make_unique<control::SessionManager>(
      cfg, data.interfaces, *data.table, data.n_workers, rte_get_tsc_hz(), resolver,
      [workers]() { return ReadWorkerStats(*workers); });
  manager->SetPortStats([&data]() { return ReadPortStats(data); });
  return manager;
}

absl::StatusOr<std::unique_ptr<control::Server>> CreateControlServer(
    const config::ControlConfig& control, control::SessionManager& manager) {
  control::ServerOptions options;
  options.socket_path = control.socket;
  options.group = control.group;
  options.max_connections = control.max_connections;
  if (control.tls.has_value()) options.tls = TlsServerOptionsFrom(*control.tls);
  return control::Server::Create(manager, options);
}

// rtpengine's ng protocol ([ng]) beside the native control socket, on the
// same session manager. False (logged) when [ng] is set and cannot listen.
bool StartNg(const config::Config& cfg, ControlPlane& control) {
  ng::HandlerOptions handler_options{cfg.ng && !cfg.ng->interface.empty()
                                         ? cfg.ng->interface
                                         : cfg.interfaces.front().name};
  if (cfg.ng) {
    handler_options.allow_null_auth = cfg.ng->allow_null_auth;
    handler_options.max_calls = cfg.ng->max_calls;
    handler_options.offer_timeout_ms = cfg.ng->offer_timeout_ms;
    handler_options.delete_delay_ms = cfg.ng->delete_delay_ms;
  }
  control.ng_handler = std::make_unique<ng::Handler>(*control.manager, handler_options);
  // Sessions a [media] timeout deletes end their ng calls too.
  ng::Handler* handler = control.ng_handler.get();
  control.manager->SetOnExpired(
      [handler](const std::string& session) { handler->SessionExpired(session); });
  if (!cfg.ng) return true;
  ng::ListenerOptions options;
  options.listen = cfg.ng->listen;
  options.cache_entries = cfg.ng->reply_cache_entries;
  options.cache_ms = cfg.ng->reply_cache_ms;
  options.allowed_sources = cfg.ng->allowed_sources;
  options.socket_path = cfg.ng->socket;
  options.socket_group = cfg.ng->socket_group;
  absl::StatusOr<std::unique_ptr<ng::Listener>> listener =
      ng::Listener::Create(*control.ng_handler, options);
  if (!listener.ok()) {
    LogFailure("ng.failed", listener.status().message());
    return false;
  }
  control.ng_listener = *std::move(listener);
  log::Event(log::Level::kInfo, "ng.listening", {{"udp", cfg.ng->listen.ToString()}, {"unix", cfg.ng->socket}});
  return true;
}

// WebRTC legs ([webrtc]): the DTLS certificate (from its files, or generated
// now: a new one at each start) and the legs' handshakes on the handshake
// thread, their events delivered to the manager by the control loop.
absl::Status StartWebRtc(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  const config::WebRtcConfig& w = cfg.webrtc;
  absl::StatusOr<dtls::Certificate> certificate =
      w.certificate.empty() ? dtls::Certificate::Generate()
                            : dtls::Certificate::LoadPemFiles(w.certificate, w.private_key);
  if (!certificate.ok()) {
    return absl::Status(certificate.status().code(),
                        absl::StrCat("webrtc certificate: ", certificate.status().message()));
  }
  webrtc::WebRtcLegsOptions options;
  options.profiles.clear();
  for (const std::string& name : w.srtp_profiles) {
    options.profiles.push_back(*dtls::SrtpProfileFromName(name));  // names checked at load
  }
  options.mtu = w.mtu;
  options.handshake_timeout_ms = w.handshake_timeout_ms;
  options.consent_timeout_ms = w.consent_timeout_ms;
  log::Event(log::Level::kInfo, "dtls.certificate",
             {{"source", w.certificate.empty() ? "generated" : w.certificate},
              {"fingerprint", dtls::FormatFingerprint(certificate->GetFingerprint())}});
  control::SessionManager* manager = control.manager.get();
  control.webrtc = std::make_unique<webrtc::WebRtcLegs>(
      *data.handshake, *std::move(certificate), std::move(options),
      [manager](control::HandshakeEvent event) { manager->OnHandshakeEvent(std::move(event)); });
  manager->SetMediaHandshakes(control.webrtc.get());
  return absl::OkStatus();
}

// One scrape of /metrics: the stats the control socket's stats op gives,
// and each front end's requests.
std::string RenderMetrics(ControlPlane& control) {
  const control::Stats stats = control.manager->GetStats();
  metrics::SluiceMetricsInput input;
  input.version = kVersion;
  input.stats = &stats;
  input.tsc_hz = rte_get_tsc_hz();
  if (control.server.ok()) {
    const control::ControlCounters& c = (*control.server)->counters();
    input.front_ends.push_back(
        {"native", c.native.requests, c.native.errors, &c.native.latency});
    if (c.tls) {
      input.front_ends.push_back(
          {"tls", c.over_tls.requests, c.over_tls.errors, &c.over_tls.latency});
    }
  }
  if (control.ng_listener) {
    const ng::ListenerCounters& n = control.ng_listener->counters();
    input.front_ends.push_back({"ng", n.requests, n.errors, &n.latency});
  }
  input.http = &control.metrics->counters();
  return metrics::RenderSluiceMetrics(input);
}

// [metrics]: the Prometheus endpoint, served by the control loop. False
// (logged) when it is configured and cannot listen.
bool StartMetrics(const config::Config& cfg, ControlPlane& control) {
  if (!cfg.metrics) return true;
  metrics::HttpEndpointOptions options;
  options.listen = cfg.metrics->listen;
  absl::StatusOr<std::unique_ptr<metrics::HttpEndpoint>> endpoint = metrics::HttpEndpoint::Create(
      options, [&control]() { return RenderMetrics(control); });
  if (!endpoint.ok()) {
    LogFailure("metrics.failed", endpoint.status().message());
    return false;
  }
  control.metrics = *std::move(endpoint);
  log::Event(log::Level::kInfo, "metrics.listening",
             {{"url", absl::StrCat("http://", cfg.metrics->listen.ToString(), "/metrics")}});
  return true;
}

// /sluice/stats, /sluice/workers and /sluice/sessions in DPDK's telemetry
// socket (docs/metrics.md says where it is). Without it sluiced runs on,
// and says so.
void StartTelemetry(ControlPlane& control) {
  control::SessionManager* manager = control.manager.get();
  absl::StatusOr<std::unique_ptr<metrics::Telemetry>> telemetry =
      metrics::Telemetry::Start([manager]() { return manager->GetStats(); });
  if (!telemetry.ok()) {
    log::Event(log::Level::kWarning, "telemetry.unavailable", {{"reason", telemetry.status().message()}});
    return;
  }
  control.telemetry = *std::move(telemetry);
}

// The session manager, the control socket (and its TLS listener) and the ng
// listener. Returns 0, or 1 with a stop requested when the ng listener
// failed; a control socket that failed is left in control.server for Run.
int StartControlPlane(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  control.manager = CreateSessionManager(cfg, data);
  if (absl::Status s = StartWebRtc(cfg, data, control); !s.ok()) {
    LogFailure("webrtc.failed", s.message());
    stop_requested.store(true);
    return 1;
  }
  control.server = CreateControlServer(cfg.control, *control.manager);
  if (!StartNg(cfg, control) || !StartMetrics(cfg, control)) {
    stop_requested.store(true);
    return 1;
  }
  StartTelemetry(control);
  return 0;
}

// [ha]'s KEKs: kek_file, and previous_kek_file when that file exists (a
// rotation under way: what the previous KEK sealed still opens).
absl::StatusOr<ha::Sealer> LoadKeks(const config::HaConfig& ha) {
  absl::StatusOr<ha::Sealer> sealer = ha::Sealer::FromFile(ha.kek_file);
  if (!sealer.ok()) return sealer.status();
  if (!ha.previous_kek_file.empty() && access(ha.previous_kek_file.c_str(), F_OK) == 0) {
    absl::StatusOr<ha::Sealer> previous = ha::Sealer::FromFile(ha.previous_kek_file);
    if (!previous.ok()) return previous.status();
    sealer->SetPrevious(*std::move(previous));
  }
  return sealer;
}

// The ng front end's calls in Redis (docs/ha.md, "ng call state"): taken
// back at the restore, written with their sessions from then on.
ha::NgRestore NgRestoreOf(ng::Handler& handler) {
  return {[](const std::string& session, std::string_view state) {
            return ng::Handler::CheckSessionState(state, session);
          },
          [&handler](std::string_view state, const control::CreateRequest& create) {
            return handler.RestoreSession(state, create);
          }};
}

void ConnectNgReplication(ng::Handler& handler, ha::Replicator& replicator) {
  replicator.SetNgState([&handler](const std::string& session) -> std::optional<std::string> {
    std::optional<ng::String> state = handler.ExportSession(session);
    if (!state) return std::nullopt;
    return std::string(state->data(), state->size());  // the replicator wipes it
  });
  handler.SetOnChanged([&replicator](const std::string& session) { replicator.NgChanged(session); });
}

uint64_t SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Whether this sluiced has an interface called `name`.
std::function<bool(const std::string&)> InterfaceKnown(const DataPlane& data) {
  const std::vector<control::InterfaceInfo>* interfaces = &data.interfaces;
  return [interfaces](const std::string& name) {
    return std::any_of(interfaces->begin(), interfaces->end(),
                       [&](const control::InterfaceInfo& i) { return i.name == name; });
  };
}

// The active's [ha] (docs/ha.md): the KEK read (refused unless 32 bytes,
// mode 0600), every session in Redis restored, then replication on. An
// error means sluiced must not start (or a standby must not go on): a
// wrong KEK, Redis unreachable.
absl::Status StartActive(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  absl::StatusOr<ha::Sealer> sealer = LoadKeks(*cfg.ha);
  if (!sealer.ok()) return sealer.status();
  control::SessionManager* manager = control.manager.get();
  ha::Replicator::Options options{cfg.ha->redis,        cfg.ha->password,
                                  cfg.ha->instance,     cfg.ha->checkpoint_ms,
                                  cfg.ha->heartbeat_ms, cfg.ha->heartbeat_ttl_ms,
                                  control.ha_owner};
  control.replicator = std::make_unique<ha::Replicator>(
      std::move(options), *std::move(sealer),
      [manager](const std::string& session) { return manager->Streams(session); });
  ha::Replicator* replicator = control.replicator.get();
  manager->SetObserver(replicator);
  absl::Status restored = ha::Restore(*cfg.ha, replicator->sealer(), *manager,
                                      InterfaceKnown(data), replicator->restore_counts(),
                                      /*log=*/{}, NgRestoreOf(*control.ng_handler));
  if (!restored.ok()) return restored;
  ConnectNgReplication(*control.ng_handler, *replicator);
  manager->SetHaStats([replicator]() { return replicator->Stats(); });
  manager->SetHaRekek([replicator, ha = *cfg.ha]() -> absl::StatusOr<uint64_t> {
    absl::StatusOr<ha::Sealer> next = LoadKeks(ha);
    if (!next.ok()) return next.status();
    if (next->kek_id() == replicator->sealer().kek_id()) {
      return absl::FailedPreconditionError(
          "ha.rekek: ha.kek_file still holds the KEK in use: move it to ha.previous_kek_file "
          "and put the new KEK in ha.kek_file first (docs/ha.md)");
    }
    return replicator->Rekek(*std::move(next));
  });
  return absl::OkStatus();
}

// A standby's promotion (docs/ha.md, "Standby"): the heartbeat taken
// (`when` says on what terms), the sessions restored from Redis as at a
// start, the addresses answered for and announced. The sessions installed.
absl::StatusOr<uint64_t> Promote(const config::Config& cfg, const DataPlane& data,
                                 ControlPlane& control, ha::TakeIf when) {
  if (!control.standby) return absl::FailedPreconditionError("ha.promote: this instance is active");
  const auto started = std::chrono::steady_clock::now();
  if (absl::Status s = ha::TakeHeartbeat(*cfg.ha, control.ha_owner, when); !s.ok()) return s;
  control.standby.reset();
  control.manager->SetStandbyRefusal("");
  // The addresses first: the restored sessions ask for their peers (ARP
  // requests name our address), and the peers send here the sooner.
  data.slow_path->SetAnswering(true);
  data.slow_path->Announce();
  if (absl::Status s = StartActive(cfg, data, control); !s.ok()) {
    // Holding the heartbeat without the sessions: stop, for the supervisor
    // to start a standby again (the heartbeat expires meanwhile).
    LogFailure("ha.failed", s.message());
    stop_requested.store(true);
    return s;
  }
  // Twice more, a second apart: a lost frame, a switch still learning.
  control.announcements_left = 2;
  control.next_announce_ms = SteadyMs() + 1000;
  const uint64_t sessions = control.replicator->restore_counts().restored;
  log::Event(log::Level::kWarning, "ha.promoted",
             {{"sessions", sessions},
              {"trigger", when == ha::TakeIf::kAlways ? "ha.promote" : "heartbeat expired"},
              {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started).count()}});
  return sessions;
}

// A standby: the sessions mirrored and checked, nothing installed, the
// addresses left to the active until a promotion.
absl::Status StartStandby(const config::Config& cfg, const DataPlane& data,
                          ControlPlane& control) {
  absl::StatusOr<ha::Sealer> sealer = LoadKeks(*cfg.ha);
  if (!sealer.ok()) return sealer.status();
  data.slow_path->SetAnswering(false);
  control.manager->SetStandbyRefusal(
      "this sluiced is an HA standby: it creates no session until promoted (sluicectl ha "
      "promote); send calls to the active");
  control.standby =
      std::make_unique<ha::Standby>(*cfg.ha, *std::move(sealer), InterfaceKnown(data));
  control::SessionManager* manager = control.manager.get();
  manager->SetHaStats([&control]() {
    return control.standby ? control.standby->Stats() : control.replicator->Stats();
  });
  manager->SetHaPromote([&cfg, &data, &control]() {
    return Promote(cfg, data, control, ha::TakeIf::kAlways);
  });
  log::Event(log::Level::kInfo, "ha.standby", {{"redis", cfg.ha->redis}, {"instance", cfg.ha->instance}});
  return absl::OkStatus();
}

// [ha]: a standby, or an active that takes the heartbeat (refusing to start
// while another instance holds it) and restores the sessions.
absl::Status StartHa(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  if (!cfg.ha) return absl::OkStatus();
  control.ha_owner = ha::HeartbeatOwner(cfg.control.socket);
  if (cfg.ha->standby) return StartStandby(cfg, data, control);
  absl::Status taken = ha::TakeHeartbeat(*cfg.ha, control.ha_owner, ha::TakeIf::kAbsentOrOurs);
  if (absl::IsFailedPrecondition(taken)) {
    return absl::FailedPreconditionError(
        absl::StrCat(taken.message(), "; start this one with role = \"standby\" (docs/ha.md)"));
  }
  if (!taken.ok()) return taken;
  if (absl::Status s = StartActive(cfg, data, control); !s.ok()) return s;
  control.manager->SetHaPromote([]() -> absl::StatusOr<uint64_t> {
    return absl::FailedPreconditionError("ha.promote: this instance is active");
  });
  return absl::OkStatus();
}

// A standby's watch over the heartbeat, and a new active's announcements.
void PollFailover(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  if (control.standby && control.standby->Poll()) {
    absl::StatusOr<uint64_t> promoted = Promote(cfg, data, control, ha::TakeIf::kAbsent);
    if (!promoted.ok() && control.standby) {
      log::Event(log::Level::kWarning, "ha.promotion_refused", {{"reason", promoted.status().message()}});
    }
  }
  if (control.announcements_left > 0 && SteadyMs() >= control.next_announce_ms) {
    data.slow_path->Announce();
    --control.announcements_left;
    control.next_announce_ms += 1000;
  }
}

// An active that stalled (stopped, starved) for longer than the heartbeat
// lives may have been replaced: it answers for no address (ARP, ND, and no
// requests naming them) until Redis confirms the heartbeat its own, and for
// good once it finds it another's (fenced). Called before the slow path
// answers what queued up meanwhile.
void GuardAddresses(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  if (!control.replicator) return;
  const uint64_t now = SteadyMs();
  if (control.last_pass_ms != 0 && now - control.last_pass_ms > cfg.ha->heartbeat_ttl_ms) {
    control.unconfirmed_since_ms = now;
    data.slow_path->SetAnswering(false);
    control.replicator->HeartbeatNow();
    log::Event(log::Level::kWarning, "ha.stalled", {{"ms", now - control.last_pass_ms}});
  }
  control.last_pass_ms = now;
  if (control.replicator->fenced()) {
    data.slow_path->SetAnswering(false);
  } else if (control.unconfirmed_since_ms != 0 &&
             control.replicator->heartbeat_confirmed_ms() > control.unconfirmed_since_ms) {
    control.unconfirmed_since_ms = 0;
    data.slow_path->SetAnswering(true);
  }
}

// Serves the control socket, the slow path, the ng listener and the manager's
// timers until a stop is requested. 0, or 1 when a listener failed.
int RunControlLoop(const config::Config& cfg, const DataPlane& data, ControlPlane& control) {
  log::Event(log::Level::kInfo, "daemon.ready",
             {{"version", kVersion}, {"workers", data.n_workers}, {"control_socket", cfg.control.socket},
              {"control_tls", cfg.control.tls ? cfg.control.tls->listen.ToString() : ""}});
  int rc = 0;
  while (!stop_requested.load()) {
    GuardAddresses(cfg, data, control);
    if (absl::Status s = (*control.server)->Poll(2); !s.ok()) {
      LogFailure("control.failed", s.message());
      rc = 1;
      break;
    }
    data.slow_path->Poll();
    data.handshake->RunControlTasks();
    if (control.ng_listener) {
      if (absl::Status s = control.ng_listener->Poll(0); !s.ok()) {
        LogFailure("ng.failed", s.message());
        rc = 1;
        break;
      }
    }
    if (control.metrics) {
      if (absl::Status s = control.metrics->Poll(0); !s.ok()) {
        LogFailure("metrics.failed", s.message());
        rc = 1;
        break;
      }
    }
    if (control.telemetry) control.telemetry->Serve();
    control.manager->Tick();
    if (control.replicator) control.replicator->Poll();
    PollFailover(cfg, data, control);
  }
  log::Event(log::Level::kInfo, "daemon.stopping", {});
  return rc;
}

// Workers stop first, then the handshake thread (its handlers released
// while the control plane they report to stands), then the control socket
// closes, every session is deleted and its keys wiped, and the ports stop.
void Shutdown(DataPlane& data, ControlPlane& control) {
  workers_stop = true;
  rte_eal_mp_wait_lcore();
  data.handshake->Stop();
  if (control.server.ok()) control.server->reset();
  control.telemetry.reset();
  // [ha]: what Redis lacks is sent (for a second at most); the sessions
  // stay in Redis, for the next start to restore.
  if (control.replicator) {
    control.replicator->Flush(1000);
    control.manager->SetObserver(nullptr);
  }
  control.manager->Clear();
  for (const control::InterfaceInfo& info : data.interfaces) dpdk::StopPort(info.port_id);
  log::Event(log::Level::kInfo, "daemon.stopped", {});
}

// The daemon from start to stop; its exit code.
int Run(const config::Config& cfg) {
  ApplyProcessLimits(cfg.security);
  memory::SetHotArenaHugepageSource(cfg.limits.session_hugepages);
  if (absl::Status s = PrepareKeyMemoryLock(cfg); !s.ok()) {
    LogFailure("memory.lock_failed", s.message());
    return 1;
  }
  DataPlane data;
  if (absl::Status s = StartDataPlane(cfg, data); !s.ok()) {
    LogFailure("daemon.start_failed", s.message());
    return 1;
  }
  ControlPlane control;
  int rc = StartControlPlane(cfg, data, control);
  if (rc == 0) {
    if (absl::Status s = StartHa(cfg, data, control); !s.ok()) {
      // Nothing of this start reaches Redis: what it holds stays as it was.
      control.manager->SetObserver(nullptr);
      control.replicator.reset();
      LogFailure("ha.failed", s.message());
      stop_requested.store(true);
      rc = 1;
    }
  }
  // Privileges go only once every socket listens.
  if (rc == 0 && control.server.ok()) rc = BecomeConfiguredUser(cfg.security);
  if (!control.server.ok()) {
    LogFailure("control.failed", control.server.status().message());
    rc = 1;
  } else if (rc == 0 && RunControlLoop(cfg, data, control) != 0) {
    rc = 1;
  }
  Shutdown(data, control);
  return rc;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(sluice::kUsage, sluice::kVersion);
      return 0;
    }
    if (arg == "--version") {
      std::printf("sluiced %s\n", sluice::kVersion);
      return 0;
    }
    if (arg == "--check") {
      check_only = true;
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.substr(0, 9) == "--config=") {
      config_path = std::string(arg.substr(9));
    } else {
      std::fprintf(stderr, "sluiced: unknown argument \"%s\"; see --help\n", argv[i]);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "sluiced: --config FILE is required; see --help\n");
    return 2;
  }
  absl::StatusOr<sluice::config::Config> cfg = sluice::config::LoadConfigFile(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "sluiced: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (check_only) {
    // The control TLS certificate, key and CA are loaded and checked too: a
    // listener that would refuse to start fails the check.
    if (cfg->control.tls.has_value()) {
      absl::StatusOr<std::unique_ptr<sluice::control::TlsServerContext>> tls =
          sluice::control::TlsServerContext::Create(
              sluice::TlsServerOptionsFrom(*cfg->control.tls));
      if (!tls.ok()) {
        std::fprintf(stderr, "sluiced: %s: %s\n", config_path.c_str(),
                     std::string(tls.status().message()).c_str());
        return 2;
      }
    }
    // [ha]'s KEK files too (size, mode): a restart would refuse them.
    if (cfg->ha.has_value()) {
      if (absl::StatusOr<sluice::ha::Sealer> keks = sluice::LoadKeks(*cfg->ha); !keks.ok()) {
        std::fprintf(stderr, "sluiced: %s: %s\n", config_path.c_str(),
                     std::string(keks.status().message()).c_str());
        return 2;
      }
    }
    std::printf("%s: configuration is valid\n", config_path.c_str());
    return 0;
  }
  const int rc = sluice::Run(*cfg);
  sluice::dpdk::CleanupEal();
  return rc;
}
