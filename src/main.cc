// sluiced: the Sluice media relay daemon.
//
// Reads its configuration, starts EAL and the ports, launches one poll-mode
// worker per configured lcore, and runs the control thread on the main lcore:
// the control socket, the slow path (ARP, neighbour discovery, echo) and the
// reclamation of re-keyed contexts. SIGTERM or SIGINT stops it cleanly:
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

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/config/config.h"
#include "sluice/control/server.h"
#include "sluice/control/session_manager.h"
#include "sluice/crypto/backend.h"
#include "sluice/dpdk/eal.h"
#include "sluice/dpdk/port.h"
#include "sluice/dpdk/slow_path.h"
#include "sluice/ng/listener.h"
#include "sluice/session/flow_table.h"
#include "sluice/version.h"
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

void Log(const std::string& line) { std::fprintf(stderr, "sluiced: %s\n", line.c_str()); }

struct WorkerSlot {
  std::unique_ptr<crypto::Backend> backend;
  std::unique_ptr<worker::Worker> worker;
  unsigned lcore = 0;
};

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
  return t;
}

uint32_t RoundPoolSize(uint64_t n) {
  uint32_t size = 4095;
  while (size < n && size < (1u << 24)) size = size * 2 + 1;
  return size;
}

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

int Run(const config::Config& cfg) {
  // Keys live in this process: no core dumps, no ptrace by other users,
  // unless the configuration allows dumps.
  RefuseCoreDumps(cfg.security);
  // Room for every control connection the configuration allows.
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

  std::vector<std::string> eal_args = {"sluiced"};
  eal_args.insert(eal_args.end(), cfg.eal_args.begin(), cfg.eal_args.end());
  if (absl::Status s = dpdk::InitEalWithArgs(eal_args); !s.ok()) {
    Log(std::string(s.message()));
    return 1;
  }
  const uint32_t n_workers = static_cast<uint32_t>(cfg.workers.lcores.size());
  for (unsigned lcore : cfg.workers.lcores) {
    if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
      Log(absl::StrCat("workers.lcores: lcore ", lcore,
                       " is not a worker lcore of EAL (give it in [eal] args -l, and keep the "
                       "main lcore ", rte_get_main_lcore(), " for the control thread)"));
      return 1;
    }
  }
  if (absl::StatusOr<std::unique_ptr<crypto::Backend>> probe =
          crypto::MakeBackend(cfg.crypto.backend);
      !probe.ok()) {
    Log(std::string(probe.status().message()));
    return 1;
  } else {
    Log(absl::StrCat("crypto backend ", std::string((*probe)->name()), " (",
                     std::string((*probe)->arch()), ")"));
  }

  // Mbufs for every RX and TX descriptor, bursts in flight and the rings.
  uint64_t mbufs = cfg.limits.mbufs;
  if (mbufs == 0) {
    for (const config::InterfaceConfig& iface : cfg.interfaces) {
      const uint16_t rxq = iface.rx_queues ? iface.rx_queues : static_cast<uint16_t>(n_workers);
      mbufs += uint64_t{rxq} * iface.rx_ring_size + uint64_t{n_workers} * iface.tx_ring_size;
    }
    mbufs += uint64_t{n_workers} * (1024 + 64 * 16) + 4096 + 2048;
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("sluiced_mbufs", RoundPoolSize(mbufs), 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    Log(absl::StrCat("cannot allocate ", mbufs,
                     " mbufs: give EAL more memory (-m) or set [limits] mbufs"));
    return 1;
  }

  std::vector<control::InterfaceInfo> infos;
  std::vector<dpdk::SlowPathInterface> slow_ifaces;
  std::vector<std::vector<worker::RxQueue>> queues(n_workers);
  std::vector<worker::TxChecksumOffload> tx_offload;  // by port id
  for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
    const config::InterfaceConfig& iface = cfg.interfaces[i];
    dpdk::PortSetup setup;
    setup.device = iface.device;
    setup.rx_queues = iface.rx_queues ? iface.rx_queues : static_cast<uint16_t>(n_workers);
    setup.tx_queues = static_cast<uint16_t>(n_workers);
    setup.rx_ring_size = iface.rx_ring_size;
    setup.tx_ring_size = iface.tx_ring_size;
    setup.mtu = iface.mtu;
    setup.pool = pool;
    setup.checksum_offload = iface.checksum_offload;
    absl::StatusOr<dpdk::PortInfo> port = dpdk::StartPort(setup);
    if (!port.ok()) {
      Log(absl::StrCat("interface ", iface.name, ": ", port.status().message()));
      return 1;
    }
    for (uint16_t q = 0; q < setup.rx_queues; ++q) {
      queues[(i + q) % n_workers].push_back({port->port_id, q});
    }
    if (tx_offload.size() <= port->port_id) tx_offload.resize(port->port_id + 1);
    tx_offload[port->port_id] = {.ipv4_header = port->tx_ip_checksum_offload,
                                 .udp = port->tx_udp_checksum_offload};
    control::InterfaceInfo info;
    info.name = iface.name;
    info.port_id = port->port_id;
    info.mac = port->mac;
    info.ipv4 = iface.ipv4;
    info.ipv6 = iface.ipv6;
    info.gateway = iface.gateway;
    info.gateway6 = iface.gateway6;
    info.vlan = iface.vlan;
    infos.push_back(info);
    dpdk::SlowPathInterface sp;
    sp.port_id = port->port_id;
    sp.mac = port->mac;
    sp.ipv4 = iface.ipv4;
    sp.ipv6 = iface.ipv6;
    sp.vlan = iface.vlan;
    slow_ifaces.push_back(sp);
    // Which checksums the NIC does: what an operator comparing hosts asks first.
    std::vector<std::string> offloads;
    if (port->rx_ip_checksum_offload) offloads.push_back("rx-ipv4");
    if (port->rx_udp_checksum_offload) offloads.push_back("rx-udp");
    if (port->tx_ip_checksum_offload) offloads.push_back("tx-ipv4");
    if (port->tx_udp_checksum_offload) offloads.push_back("tx-udp");
    Log(absl::StrCat("interface ", iface.name, ": ", iface.device, " port ", port->port_id,
                     iface.ipv4 ? " " + iface.ipv4->ToString() : "",
                     iface.ipv6 ? " " + iface.ipv6->ToString() : "", ", checksum offload: ",
                     offloads.empty() ? "none" : absl::StrJoin(offloads, " ")));
  }

  absl::StatusOr<std::unique_ptr<session::FlowTable>> table = session::FlowTable::Create(
      "sluiced_flows", cfg.limits.max_sessions * 4 + 64, n_workers);
  if (!table.ok()) {
    Log(std::string(table.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<dpdk::SlowPath>> slow = dpdk::SlowPath::Create(slow_ifaces, pool);
  if (!slow.ok()) {
    Log(std::string(slow.status().message()));
    return 1;
  }
  std::vector<rte_ring*> handoff;
  if (n_workers > 1) {
    for (uint32_t w = 0; w < n_workers; ++w) {
      rte_ring* ring = rte_ring_create(absl::StrCat("handoff", w).c_str(), 4096,
                                       SOCKET_ID_ANY, RING_F_SC_DEQ);
      if (ring == nullptr) {
        Log("cannot create the hand-off rings");
        return 1;
      }
      handoff.push_back(ring);
    }
  }

  std::vector<WorkerSlot> workers(n_workers);
  for (uint32_t w = 0; w < n_workers; ++w) {
    workers[w].backend = *crypto::MakeBackend(cfg.crypto.backend);
    worker::WorkerConfig wc;
    wc.id = w;
    wc.rx_queues = queues[w];
    wc.tx_queue = static_cast<uint16_t>(w);
    wc.burst = cfg.workers.burst;
    wc.table = table->get();
    wc.slow_path = (*slow)->ring();
    wc.backend = workers[w].backend.get();
    wc.handoff = handoff;
    wc.tx_checksum_offload = tx_offload;
    if (w == 0) wc.control_tx = (*slow)->tx_ring();
    workers[w].worker = std::make_unique<worker::Worker>(wc);
    workers[w].lcore = cfg.workers.lcores[w];
  }
  for (WorkerSlot& w : workers) {
    if (rte_eal_remote_launch(WorkerMain, w.worker.get(), w.lcore) != 0) {
      Log(absl::StrCat("cannot launch a worker on lcore ", w.lcore));
      workers_stop = true;
      rte_eal_mp_wait_lcore();
      return 1;
    }
  }

  auto worker_stats = [&workers]() {
    std::vector<control::WorkerStats> out;
    for (uint32_t i = 0; i < workers.size(); ++i) {
      const worker::WorkerCounters& c = workers[i].worker->counters();
      control::WorkerStats s;
      s.id = i;
      s.lcore = workers[i].lcore;
      s.rx_packets = c.rx_packets.load(std::memory_order_relaxed);
      s.tx_packets = c.tx_packets.load(std::memory_order_relaxed);
      s.busy_cycles = c.busy_cycles.load(std::memory_order_relaxed);
      s.idle_cycles = c.idle_cycles.load(std::memory_order_relaxed);
      for (int r = 0; r < worker::kDropReasonCount; ++r) {
        const uint64_t n = c.drops[static_cast<size_t>(r)].load(std::memory_order_relaxed);
        if (n > 0) {
          s.drops.emplace_back(worker::DropReasonName(static_cast<worker::DropReason>(r)), n);
        }
      }
      out.push_back(std::move(s));
    }
    return out;
  };
  dpdk::SlowPath* slow_path = slow->get();
  control::NeighborResolver resolver;
  resolver.lookup = [slow_path](uint16_t port, const packet::IpAddress& ip) {
    return slow_path->Lookup(port, ip);
  };
  control::SessionManager manager(cfg, infos, **table, n_workers, rte_get_tsc_hz(), resolver,
                                  worker_stats);
  manager.SetPortStats([&infos]() {
    std::vector<control::PortStats> out;
    for (const control::InterfaceInfo& info : infos) {
      rte_eth_stats s = {};
      if (rte_eth_stats_get(info.port_id, &s) != 0) continue;
      control::PortStats p;
      p.interface = info.name;
      p.rx_packets = s.ipackets;
      p.rx_bytes = s.ibytes;
      p.tx_packets = s.opackets;
      p.tx_bytes = s.obytes;
      p.rx_missed = s.imissed;
      p.rx_errors = s.ierrors;
      p.rx_no_mbuf = s.rx_nombuf;
      p.tx_errors = s.oerrors;
      out.push_back(std::move(p));
    }
    return out;
  });

  control::ServerOptions server_options;
  server_options.socket_path = cfg.control.socket;
  server_options.group = cfg.control.group;
  server_options.max_connections = cfg.control.max_connections;
  server_options.log = [](absl::string_view line) { Log(std::string(line)); };
  if (cfg.control.tls.has_value()) server_options.tls = TlsServerOptionsFrom(*cfg.control.tls);
  absl::StatusOr<std::unique_ptr<control::Server>> server =
      control::Server::Create(manager, server_options);
  int rc = 0;
  // rtpengine's ng protocol ([ng]) beside the native control socket, on the
  // same session manager.
  ng::Handler ng_handler(manager, ng::HandlerOptions{cfg.ng && !cfg.ng->interface.empty()
                                                         ? cfg.ng->interface
                                                         : cfg.interfaces.front().name});
  std::unique_ptr<ng::Listener> ng_listener;
  if (cfg.ng) {
    ng::ListenerOptions ng_options;
    ng_options.listen = cfg.ng->listen;
    ng_options.cache_entries = cfg.ng->reply_cache_entries;
    ng_options.cache_ms = cfg.ng->reply_cache_ms;
    absl::StatusOr<std::unique_ptr<ng::Listener>> listener =
        ng::Listener::Create(ng_handler, ng_options);
    if (listener.ok()) {
      ng_listener = std::move(*listener);
      Log(absl::StrCat("ng protocol on udp ", cfg.ng->listen.ToString()));
    } else {
      Log(std::string(listener.status().message()));
      rc = 1;
      stop_requested.store(true);
    }
  }
  if (server.ok() && rc == 0) {
    if (absl::Status s = DropPrivileges(cfg.security); !s.ok()) {
      Log(absl::StrCat("security.user: ", s.message()));
      rc = 1;
      stop_requested.store(true);
    } else if (!cfg.security.user.empty()) {
      Log(absl::StrCat("running as user ", cfg.security.user));
    }
  }
  if (!server.ok()) {
    Log(absl::StrCat("control socket: ", server.status().message()));
    rc = 1;
  } else {
    Log(absl::StrCat("ready: ", n_workers, " worker(s), control socket ", cfg.control.socket,
                     cfg.control.tls ? ", control TLS " + cfg.control.tls->listen.ToString() : ""));
    while (!stop_requested.load()) {
      if (absl::Status s = (*server)->Poll(2); !s.ok()) {
        Log(absl::StrCat("control socket: ", s.message()));
        rc = 1;
        break;
      }
      slow_path->Poll();
      if (ng_listener) {
        if (absl::Status s = ng_listener->Poll(0); !s.ok()) {
          Log(std::string(s.message()));
          rc = 1;
          break;
        }
      }
      manager.Tick();
    }
    Log("stopping");
  }

  workers_stop = true;
  rte_eal_mp_wait_lcore();
  if (server.ok()) server->reset();
  manager.Clear();  // every session deleted, every key wiped
  for (const control::InterfaceInfo& info : infos) dpdk::StopPort(info.port_id);
  Log("stopped");
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
    std::printf("%s: configuration is valid\n", config_path.c_str());
    return 0;
  }
  const int rc = sluice::Run(*cfg);
  sluice::dpdk::CleanupEal();
  return rc;
}
