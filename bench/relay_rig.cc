#include "relay_rig.h"

#include <malloc.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <time.h>
#include <unistd.h>

#include <emmintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "measure.h"
#include "sluice/config/config.h"
#include "sluice/control/operations.h"
#include "sluice/control/session_manager.h"
#include "sluice/dpdk/eal.h"
#include "sluice/dpdk/thp_heap.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/packet/address.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow.h"
#include "sluice/session/flow_table.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/sdes.h"
#include "sluice/worker/worker.h"

namespace sluice::bench {
namespace {

using packet::Endpoint;
using packet::IpAddress;
using packet::MacAddress;

// Packets each worker relays between two refills: a multiple of the burst,
// about 2 MiB of 172-byte frames (beyond L2, as traffic of many calls is).
constexpr uint32_t kChunk = 8192;
constexpr uint32_t kTxRing = 4096;
// Legs one local address can hold: even ports from 1024 to 65534.
constexpr uint32_t kLegsPerAddress = (65534 - 1024) / 2 + 1;
// Below this many sessions per worker the traffic generator keeps a sender
// context per session; above it, it makes one per packet (off the clock).
constexpr uint32_t kPersistentSenders = 65536;
// The phones' addresses: 10.64.0.0 + session (leg "in"), 10.128.0.0 + session
// (leg "out"); on link for every interface (10.0.0.0/8).
constexpr uint32_t kInRemoteBase = 0x0a400000;
constexpr uint32_t kOutRemoteBase = 0x0a800000;
constexpr uint16_t kInRemotePort = 40000;
constexpr uint16_t kOutRemotePort = 50000;
constexpr MacAddress kPhoneMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0xbb};

bool eal_ready = false;
// Without hugepages, the packet buffers, rings and flow table go here (on
// 2 MiB pages, as on a host with hugepages); it lives as long as EAL.
dpdk::ThpHeap* thp_heap = nullptr;

// The DPDK heap for the rig's packet buffers, rings and flow table.
int DataSocket() {
  return thp_heap != nullptr ? thp_heap->socket_id() : static_cast<int>(rte_socket_id());
}

std::atomic<uint32_t> rig_serial{0};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Bytes allocated on the C++ heap, in the hot arena and on the DPDK heap, for
// memory per session.
uint64_t AllocatedBytes() {
  const struct mallinfo2 mi = mallinfo2();
  uint64_t total = mi.uordblks + mi.hblkhd + memory::GetHotArenaStats().in_use_bytes;
  rte_malloc_socket_stats stats;
  for (int s = 0; s < RTE_MAX_NUMA_NODES; ++s) {
    if (rte_malloc_get_socket_stats(s, &stats) == 0) total += stats.heap_allocsz_bytes;
  }
  if (thp_heap != nullptr && rte_malloc_get_socket_stats(thp_heap->socket_id(), &stats) == 0) {
    total += stats.heap_allocsz_bytes;
  }
  return total;
}

srtp::MasterKey RandomKey(crypto::Suite suite, std::mt19937_64& rng) {
  srtp::MasterKey key;
  key.suite = suite;
  for (auto& b : key.key) b = static_cast<uint8_t>(rng());
  for (auto& b : key.salt) b = static_cast<uint8_t>(rng());
  return key;
}

control::CryptoSpec Spec(const std::optional<srtp::MasterKey>& key) {
  control::CryptoSpec spec;
  if (!key) return spec;  // plain
  spec.kind = control::CryptoSpec::Kind::kSdes;
  srtp::SdesCrypto sdes;
  sdes.key = *key;
  spec.sdes = srtp::FormatSdesCrypto(sdes);
  return spec;
}

uint8_t PayloadByte(uint32_t session, uint16_t seq, uint32_t j) {
  return static_cast<uint8_t>(session * 7 + seq * 13u + j);
}

// Writes PayloadByte(session, seq, j) for j in [12, size), 16 bytes at a time
// (traffic generation must outrun the relay for --overload).
void FillPayload(uint8_t* rtp, uint32_t session, uint16_t seq, uint32_t size) {
  static const std::array<uint8_t, 1536> ramp = [] {
    std::array<uint8_t, 1536> r{};
    for (size_t j = 0; j < r.size(); ++j) r[j] = static_cast<uint8_t>(j);
    return r;
  }();
  const __m128i base = _mm_set1_epi8(static_cast<char>(PayloadByte(session, seq, 0)));
  uint32_t j = 12;
  for (; j + 16 <= size; j += 16) {
    const __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ramp.data() + j));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(rtp + j), _mm_add_epi8(r, base));
  }
  for (; j < size; ++j) rtp[j] = PayloadByte(session, seq, j);
}

std::string Describe(const worker::WorkerCounters& c) {
  std::string out;
  for (int r = 0; r < worker::kDropReasonCount; ++r) {
    if (uint64_t n = c.drops[r].load(); n > 0) {
      absl::StrAppend(&out, out.empty() ? "" : ", ",
                      worker::DropReasonName(static_cast<worker::DropReason>(r)), " x", n);
    }
  }
  for (int e = 0; e < packet::kParseErrorCount; ++e) {
    if (uint64_t n = c.parse_errors[e].load(); n > 0) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", "parse ",
                      packet::ParseErrorName(static_cast<packet::ParseError>(e)), " x", n);
    }
  }
  return out.empty() ? "no drop counted" : out;
}

}  // namespace

// One session's traffic: what the phone on leg "in" sends, and what the phone
// on leg "out" must receive.
struct SessionTraffic {
  Endpoint in_local;  // Sluice's address on leg "in"
  Endpoint out_local;
  uint32_t ssrc = 0;
  uint16_t next_seq = 0;
  uint16_t owner = 0;
  std::optional<srtp::MasterKey> in_key;   // leg "in" rx
  std::optional<srtp::MasterKey> out_key;  // leg "out" tx
};

class RelayLoop;

struct RelayRig::Impl {
  RelayRigOptions options;
  uint32_t serial = 0;
  rte_mempool* pool = nullptr;
  uint16_t port_in = 0, port_out = 0;
  bool ports_started = false;
  MacAddress mac_in{}, mac_out{};
  std::vector<rte_ring*> rings;       // every ring made, freed last
  std::vector<rte_ring*> rx_rings;    // per worker, port "in"
  std::vector<rte_ring*> tx_rings;    // per worker, port "out"
  std::vector<rte_ring*> handoff;     // per worker
  std::unique_ptr<session::FlowTable> table;
  std::unique_ptr<control::SessionManager> manager;
  std::vector<std::unique_ptr<crypto::Backend>> backends;
  std::vector<std::unique_ptr<worker::Worker>> workers;
  std::vector<SessionTraffic> traffic;
  // One per worker, made by the first Run and kept: their sender contexts
  // carry each stream's rollover counter from one run to the next.
  std::vector<std::unique_ptr<RelayLoop>> loops;
  double install_seconds = 0;
  double bytes_per_session = 0;

  ~Impl();
  absl::Status MakePorts();
  // Creates every session through the SessionManager, as sluiced's control
  // plane would, and one Worker per lcore.
  absl::Status Install();
  // Install's steps, in order.
  void MakeTraffic(std::mt19937_64& rng);
  std::vector<control::InterfaceInfo> Interfaces() const;
  void MakeManager();
  absl::Status CreateSession(uint32_t s, std::mt19937_64& rng);
  absl::Status MakeWorkers();
};

// Relays one worker's traffic: Step is one Worker::PollOnce, as sluiced's
// worker loop runs it, and the TX completions a NIC driver would free;
// Refill generates the next chunk of protected RTP off the clock.
class RelayLoop final : public BurstLoop {
 public:
  RelayLoop(RelayRig::Impl& rig, uint32_t worker, std::vector<uint32_t> sessions)
      : rig_(rig), w_(worker), sessions_(std::move(sessions)), rng_(worker + 1) {
    chunk_ = kChunk / rig.options.burst * rig.options.burst;
    std::shuffle(sessions_.begin(), sessions_.end(), rng_);
    if (rig.options.in_suite && sessions_.size() <= kPersistentSenders) {
      senders_.resize(sessions_.size());
    }
  }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<crypto::Backend>> b = crypto::MakeBackend(rig_.options.backend);
    if (!b.ok()) return b.status();
    gen_backend_ = *std::move(b);
    engine_ = std::make_unique<srtp::Engine>(*gen_backend_);
    Refill();
    return failed_.empty() ? absl::OkStatus() : absl::InternalError(failed_);
  }

  size_t burst() const noexcept override { return rig_.options.burst; }
  bool NeedsRefill() const noexcept override { return remaining_ == 0; }
  void Refill() override;
  size_t Step() noexcept override;
  // Worker::Start, on the thread that will Step (again on a later run: it
  // marks the reader online and starts the poll clock).
  void StartWorker() noexcept { rig_.workers[w_]->Start(); }
  // Relays what the worker still holds; returns how many packets it sent.
  size_t Finish() noexcept;
  // Makes n (<= 64) frames of the next packets of this worker's sessions, as
  // their phones send them; false (and failed_ set) when it cannot.
  bool Generate(rte_mbuf** mbufs, uint32_t n, uint32_t ip_id, std::string* error);
  std::string FailureDetail() const override {
    if (!failed_.empty()) return failed_;
    return absl::StrCat("worker ", w_, ": ", Describe(rig_.workers[w_]->counters()));
  }

  // The output of everything until the next refill is kept for Verify.
  void Capture() { capture_ = true; }
  absl::StatusOr<uint64_t> Verify();

 private:
  absl::StatusOr<std::unique_ptr<srtp::Context>> ContextFor(const srtp::MasterKey& key) {
    return srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1),
                                 srtp::ContextOptions{});
  }
  absl::Status Protect(std::span<rte_mbuf*> mbufs, std::span<uint32_t> owners,
                       std::span<srtp::Packet> pkts);
  // Takes what the TX ring holds (capturing it when asked) and frees it, as
  // a NIC driver frees sent mbufs; returns how many.
  size_t CollectSent() noexcept;

  RelayRig::Impl& rig_;
  uint32_t w_;
  std::vector<uint32_t> sessions_;  // global indices, in visiting order
  size_t cursor_ = 0;
  std::mt19937_64 rng_;
  uint32_t chunk_ = 0;
  uint32_t remaining_ = 0;
  std::unique_ptr<crypto::Backend> gen_backend_;
  std::unique_ptr<srtp::Engine> engine_;
  std::vector<std::unique_ptr<srtp::Context>> senders_;  // by position in sessions_ order
  std::vector<uint32_t> positions_;                     // session -> sessions_ position (lazy)
  std::string failed_;
  bool capture_ = false;
  std::vector<std::vector<uint8_t>> captured_;
  // Live progress.
  double chunk_cpu_start_ = 0;
  uint64_t progress_packets_ = 0;
  double progress_cpu_ = 0;
  std::chrono::steady_clock::time_point last_print_ = std::chrono::steady_clock::now();
};

absl::Status RelayLoop::Protect(std::span<rte_mbuf*> mbufs, std::span<uint32_t> sessions,
                                std::span<srtp::Packet> pkts) {
  // Sender contexts for this burst: persistent ones, or made for the burst.
  std::unique_ptr<srtp::Context> temp[srtp::Engine::kMaxBurst];
  srtp::Job jobs[srtp::Engine::kMaxBurst];
  srtp::Verdict verdicts[srtp::Engine::kMaxBurst];
  for (size_t i = 0; i < mbufs.size(); ++i) {
    srtp::Context* ctx = nullptr;
    const uint32_t s = sessions[i];
    if (!senders_.empty()) {
      std::unique_ptr<srtp::Context>& slot = senders_[positions_[s]];
      if (!slot) {
        absl::StatusOr<std::unique_ptr<srtp::Context>> c = ContextFor(*rig_.traffic[s].in_key);
        if (!c.ok()) return c.status();
        slot = *std::move(c);
      }
      ctx = slot.get();
    } else {
      absl::StatusOr<std::unique_ptr<srtp::Context>> c = ContextFor(*rig_.traffic[s].in_key);
      if (!c.ok()) return c.status();
      temp[i] = *std::move(c);
      ctx = temp[i].get();
    }
    jobs[i] = {ctx, &pkts[i]};
  }
  const size_t ok = engine_->ProtectRtp(std::span(jobs, mbufs.size()),
                                        std::span(verdicts, mbufs.size()));
  if (ok != mbufs.size()) return absl::InternalError("the traffic generator failed to protect");
  return absl::OkStatus();
}

void RelayLoop::Refill() {
  const double now_cpu = ThreadCpuSeconds();
  if (remaining_ == 0 && chunk_cpu_start_ > 0) {
    progress_cpu_ += now_cpu - chunk_cpu_start_;
    progress_packets_ += chunk_;
  }
  if (rig_.options.progress && w_ == 0 && progress_cpu_ > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_print_ >= std::chrono::seconds(1)) {
      std::fprintf(stderr, "\r  relaying: %.2f Mpps on worker 0, %.1f M packets so far   ",
                   static_cast<double>(progress_packets_) / progress_cpu_ / 1e6,
                   static_cast<double>(progress_packets_) / 1e6);
      std::fflush(stderr);
      last_print_ = now;
    }
  }
  uint32_t made = 0;
  rte_mbuf* mbufs[srtp::Engine::kMaxBurst];
  while (made < chunk_) {
    const uint32_t n = std::min<uint32_t>(srtp::Engine::kMaxBurst, chunk_ - made);
    if (!Generate(mbufs, n, made, &failed_)) return;
    if (rte_ring_enqueue_bulk(rig_.rx_rings[w_], reinterpret_cast<void**>(mbufs), n, nullptr) !=
        n) {
      failed_ = "the RX ring is full";
      rte_pktmbuf_free_bulk(mbufs, n);
      return;
    }
    made += n;
  }
  remaining_ = chunk_;
  chunk_cpu_start_ = ThreadCpuSeconds();
}

bool RelayLoop::Generate(rte_mbuf** mbufs, uint32_t n, uint32_t ip_id, std::string* error) {
  if (positions_.empty() && !senders_.empty()) {
    positions_.assign(rig_.traffic.size(), 0);
    for (size_t i = 0; i < sessions_.size(); ++i) positions_[sessions_[i]] = static_cast<uint32_t>(i);
  }
  const RelayRigOptions& o = rig_.options;
  packet::UdpHeaderSpec spec;
  spec.dst_mac = rig_.mac_in;
  spec.src_mac = kPhoneMac;
  spec.dscp = 46;
  uint32_t owners[srtp::Engine::kMaxBurst];
  srtp::Packet pkts[srtp::Engine::kMaxBurst];
  if (rte_pktmbuf_alloc_bulk(rig_.pool, mbufs, n) != 0) {
    *error = "out of packet buffers while generating traffic";
    return false;
  }
  // The largest header: RTP data sits at a fixed offset that fits it.
  spec.src = Endpoint{IpAddress::V4(kInRemoteBase), kInRemotePort};
  spec.dst = rig_.traffic[0].in_local;
  const uint32_t hdr = packet::HeaderLength(spec);
  for (uint32_t i = 0; i < n; ++i) {
    if (cursor_ == sessions_.size()) cursor_ = 0;
    const uint32_t s = sessions_[cursor_++];
    SessionTraffic& t = rig_.traffic[s];
    owners[i] = s;
    uint8_t* rtp = rte_pktmbuf_mtod(mbufs[i], uint8_t*) + hdr;
    const uint16_t seq = t.next_seq++;
    rtp[0] = 0x80;
    rtp[1] = 0;  // PCMU
    rtp[2] = static_cast<uint8_t>(seq >> 8);
    rtp[3] = static_cast<uint8_t>(seq);
    const uint32_t ts = uint32_t{seq} * 160;
    rtp[4] = static_cast<uint8_t>(ts >> 24);
    rtp[5] = static_cast<uint8_t>(ts >> 16);
    rtp[6] = static_cast<uint8_t>(ts >> 8);
    rtp[7] = static_cast<uint8_t>(ts);
    rtp[8] = static_cast<uint8_t>(t.ssrc >> 24);
    rtp[9] = static_cast<uint8_t>(t.ssrc >> 16);
    rtp[10] = static_cast<uint8_t>(t.ssrc >> 8);
    rtp[11] = static_cast<uint8_t>(t.ssrc);
    FillPayload(rtp, s, seq, o.size);
    const uint32_t capacity = rte_pktmbuf_tailroom(mbufs[i]) - hdr;
    pkts[i] = {rtp, o.size, capacity};
  }
  if (o.in_suite) {
    if (absl::Status st = Protect(std::span(mbufs, n), std::span(owners, n), std::span(pkts, n));
        !st.ok()) {
      *error = std::string(st.message());
      rte_pktmbuf_free_bulk(mbufs, n);
      return false;
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    const SessionTraffic& t = rig_.traffic[owners[i]];
    spec.src = Endpoint{IpAddress::V4(kInRemoteBase + owners[i]), kInRemotePort};
    spec.dst = t.in_local;
    packet::WriteUdpHeaders(pkts[i].data, pkts[i].len, spec, static_cast<uint16_t>(ip_id + i));
    const uint32_t frame = hdr + pkts[i].len;
    mbufs[i]->data_len = static_cast<uint16_t>(frame);
    mbufs[i]->pkt_len = frame;
    if (o.nic_offloads) {
      mbufs[i]->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    }
  }
  return true;
}

size_t RelayLoop::Step() noexcept {
  if (!failed_.empty()) return 0;
  // The daemon's own poll: the worker's RX queue is this loop's port.
  worker::Worker& worker = *rig_.workers[w_];
  const uint32_t held_before = worker.held_packets();
  const uint32_t n = worker.PollOnce();
  remaining_ -= std::min<uint32_t>(remaining_, n);
  const uint32_t held_after = worker.held_packets();
  const size_t sent = CollectSent();
  // Packets still held came out right so far: they are not lost.
  const int64_t ok = static_cast<int64_t>(sent) + held_after - held_before;
  return ok > 0 ? static_cast<size_t>(ok) : 0;
}

size_t RelayLoop::Finish() noexcept {
  worker::Worker& worker = *rig_.workers[w_];
  worker.Drain();
  worker.FlushTx();
  return CollectSent();
}

size_t RelayLoop::CollectSent() noexcept {
  // TX completions: what the port sent goes back to the pool, as a NIC
  // driver frees it on a later TX burst.
  rte_mbuf* out[worker::Worker::kMaxBurst];
  size_t sent = 0;
  unsigned k;
  while ((k = rte_ring_dequeue_burst(rig_.tx_rings[w_], reinterpret_cast<void**>(out),
                                     worker::Worker::kMaxBurst, nullptr)) > 0) {
    if (capture_) {
      for (unsigned i = 0; i < k; ++i) {
        const uint8_t* d = rte_pktmbuf_mtod(out[i], const uint8_t*);
        std::vector<uint8_t>& frame = captured_.emplace_back(d, d + rte_pktmbuf_data_len(out[i]));
        // The checksums a NIC would fill in, as it would; Verify then checks
        // them like any others.
        const uint64_t flags = out[i]->ol_flags;
        if ((flags & RTE_MBUF_F_TX_OFFLOAD_MASK) != 0 &&
            !packet::CompleteOffloadedChecksums(
                frame.data(), static_cast<uint32_t>(frame.size()), out[i]->l2_len,
                out[i]->l3_len, (flags & RTE_MBUF_F_TX_IP_CKSUM) != 0,
                (flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM)) {
          frame.clear();  // Verify reports it as not UDP
        }
      }
    }
    rte_pktmbuf_free_bulk(out, k);
    sent += k;
  }
  return sent;
}

absl::StatusOr<uint64_t> RelayLoop::Verify() {
  packet::ParseOptions parse;
  uint64_t ok = 0;
  srtp::Verdict verdict;
  for (std::vector<uint8_t>& frame : captured_) {
    const packet::ParsedFrame f = packet::ParseFrame(frame.data(), static_cast<uint32_t>(frame.size()), parse);
    if (f.kind != packet::FrameKind::kUdp || !f.dst.ip.is_v4()) {
      return absl::InternalError("the relay sent a frame that is not UDP over IPv4");
    }
    const uint32_t s = f.dst.ip.v4_host_order() - kOutRemoteBase;
    if (s >= rig_.traffic.size() || f.dst.port != kOutRemotePort) {
      return absl::InternalError(absl::StrCat("the relay sent to ", f.dst.ToString(),
                                              ", which is no phone's address"));
    }
    const SessionTraffic& t = rig_.traffic[s];
    if (f.src != t.out_local) {
      return absl::InternalError(absl::StrCat("session ", s, ": sent from ", f.src.ToString(),
                                              " instead of ", t.out_local.ToString()));
    }
    srtp::Packet pkt{frame.data() + f.payload_offset, f.payload_len,
                     static_cast<uint32_t>(frame.size() - f.payload_offset)};
    if (t.out_key) {
      absl::StatusOr<std::unique_ptr<srtp::Context>> ctx = ContextFor(*t.out_key);
      if (!ctx.ok()) return ctx.status();
      srtp::Job job{ctx->get(), &pkt};
      if (engine_->UnprotectRtp(std::span(&job, 1), std::span(&verdict, 1)) != 1) {
        return absl::InternalError(absl::StrCat("session ", s, ": the phone cannot unprotect (",
                                                srtp::VerdictName(verdict), ")"));
      }
    }
    const uint8_t* rtp = pkt.data;
    const uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
    const uint32_t ssrc = uint32_t{rtp[8]} << 24 | uint32_t{rtp[9]} << 16 |
                          uint32_t{rtp[10]} << 8 | rtp[11];
    bool same = pkt.len == rig_.options.size && ssrc == t.ssrc;
    for (uint32_t j = 12; same && j < pkt.len; ++j) same = rtp[j] == PayloadByte(s, seq, j);
    if (!same) {
      return absl::InternalError(
          absl::StrCat("session ", s, ": packet ", seq, " arrived altered"));
    }
    ++ok;
  }
  captured_.clear();
  captured_.shrink_to_fit();
  capture_ = false;
  return ok;
}

// --- RelayRig -----------------------------------------------------------------

absl::Status RelayRig::InitEal(uint32_t max_workers, uint32_t max_sessions,
                               bool small_pages) {
  if (eal_ready) return absl::OkStatus();
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (max_workers < 1 || max_workers > static_cast<uint32_t>(std::max(1L, cores))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workers must be 1 to ", cores, " (one per core this machine has), got ", max_workers));
  }
  dpdk::EalOptions eal;
  eal.program_name = "sluice-bench";
  eal.lcores = max_workers == 1 ? "0" : absl::StrCat("0-", max_workers - 1);
  // EAL's memory: the flow table (4 keys per session, about 100 bytes each)
  // and the packet pools where they do not go to the heap below, and the
  // table's RCU defer queue wherever they go.
  eal.memory_mb = 512 + static_cast<int>(uint64_t{max_sessions} * 4 * 128 / (1 << 20));
  if (absl::Status s = dpdk::InitEal(eal); !s.ok()) return s;
  eal_ready = true;
  // Without hugepages EAL's memory is on 4 KiB pages; a production host has
  // hugepages, so the rig's data-plane memory goes to a heap on transparent
  // hugepages instead (unless asked to measure small pages).
  // DPDK zeroes a heap's memory when it is added, so it is sized to need:
  // per worker a pool of packets of up to 1400 bytes (under 64 MiB), per
  // session four flow-table keys (about 60 bytes each), and room to spare.
  if (!rte_eal_has_hugepages() && !small_pages) {
    const uint64_t bytes =
        (uint64_t{max_workers} << 26) + uint64_t{max_sessions} * 4 * 128 + (uint64_t{64} << 20);
    absl::StatusOr<std::unique_ptr<dpdk::ThpHeap>> heap = dpdk::ThpHeap::Create("bench_thp", bytes);
    if (!heap.ok()) return heap.status();
    thp_heap = heap->release();
  }
  return absl::OkStatus();
}

std::string_view RelayRig::DataMemory() {
  if (rte_eal_has_hugepages()) return "hugepages";
  return thp_heap != nullptr ? "transparent-hugepages" : "small-pages";
}

std::string_view RelayRig::SessionMemory() {
  const memory::HotArenaStats stats = memory::GetHotArenaStats();
  if (stats.regions > 0 && stats.hugetlb_regions == stats.regions) return "hugepages";
  return stats.hugetlb_regions == 0 ? "transparent-hugepages" : "mixed";
}

RelayRig::RelayRig(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RelayRig::~RelayRig() = default;

RelayRig::Impl::~Impl() {
  for (uint32_t w = 0; w < workers.size(); ++w) table->UnregisterReader(w);
  manager.reset();  // unpublishes and wipes every session
  workers.clear();
  table.reset();
  if (ports_started) {
    for (uint16_t p : {port_in, port_out}) {
      rte_eth_dev_stop(p);
      rte_eth_dev_close(p);
    }
  }
  for (rte_ring* r : rings) {
    void* m;
    while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(r);
  }
  if (pool != nullptr) rte_mempool_free(pool);
}

absl::Status RelayRig::Impl::MakePorts() {
  const uint32_t w = options.workers;
  const uint32_t room = RTE_PKTMBUF_HEADROOM + options.size + 128;
  const uint32_t mbufs = w * (kChunk * 2 + kTxRing + 1024);
  pool = rte_pktmbuf_pool_create(absl::StrCat("relay", serial).c_str(), mbufs, 256, 0,
                                 static_cast<uint16_t>(room), DataSocket());
  if (pool == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", mbufs, " packet buffers: ", rte_strerror(rte_errno)));
  }
  auto ring = [&](const std::string& name, uint32_t size, unsigned flags) -> rte_ring* {
    rte_ring* r = rte_ring_create(absl::StrCat(name, serial).c_str(), size, DataSocket(), flags);
    if (r != nullptr) rings.push_back(r);
    return r;
  };
  std::vector<rte_ring*> in_tx, out_rx;
  for (uint32_t i = 0; i < w; ++i) {
    const std::string q = absl::StrCat(i, "_");
    rx_rings.push_back(ring("rin" + q, kChunk * 2, RING_F_SP_ENQ | RING_F_SC_DEQ));
    in_tx.push_back(ring("tin" + q, kTxRing, RING_F_SP_ENQ | RING_F_SC_DEQ));
    out_rx.push_back(ring("rout" + q, 64, RING_F_SP_ENQ | RING_F_SC_DEQ));
    tx_rings.push_back(ring("tout" + q, kTxRing, RING_F_SP_ENQ | RING_F_SC_DEQ));
    handoff.push_back(ring("ho" + q, 1024, RING_F_SC_DEQ));
  }
  for (rte_ring* r : rings) {
    if (r == nullptr) return absl::ResourceExhaustedError("cannot create the port rings");
  }
  const int in = rte_eth_from_rings(absl::StrCat("relay_in", serial).c_str(), rx_rings.data(), w,
                                    in_tx.data(), w, rte_socket_id());
  const int out = rte_eth_from_rings(absl::StrCat("relay_out", serial).c_str(), out_rx.data(), w,
                                     tx_rings.data(), w, rte_socket_id());
  if (in < 0 || out < 0) return absl::InternalError("cannot create the ring ports");
  port_in = static_cast<uint16_t>(in);
  port_out = static_cast<uint16_t>(out);
  for (uint16_t p : {port_in, port_out}) {
    // The ring driver's queues are the rings given above; configuring them
    // only links them up.
    rte_eth_conf conf = {};
    if (rte_eth_dev_configure(p, static_cast<uint16_t>(w), static_cast<uint16_t>(w), &conf) != 0) {
      return absl::InternalError("cannot configure a ring port");
    }
    for (uint16_t q = 0; q < w; ++q) {
      if (rte_eth_rx_queue_setup(p, q, kChunk * 2, rte_socket_id(), nullptr, pool) != 0 ||
          rte_eth_tx_queue_setup(p, q, kTxRing, rte_socket_id(), nullptr) != 0) {
        return absl::InternalError("cannot set up a ring port's queues");
      }
    }
    if (rte_eth_dev_start(p) != 0) return absl::InternalError("cannot start a ring port");
    rte_ether_addr addr;
    rte_eth_macaddr_get(p, &addr);
    std::memcpy(p == port_in ? mac_in.data() : mac_out.data(), addr.addr_bytes, 6);
  }
  ports_started = true;
  return absl::OkStatus();
}

absl::Status RelayRig::Impl::Install() {
  const uint32_t n = options.sessions;
  // The bench's own records first, so that only Sluice's memory is counted.
  std::mt19937_64 rng(0x511ce + n);
  MakeTraffic(rng);
  const uint64_t before = AllocatedBytes();
  const auto start = std::chrono::steady_clock::now();

  absl::StatusOr<std::unique_ptr<session::FlowTable>> t = session::FlowTable::Create(
      absl::StrCat("relay_flows", serial), n * 4 + 64, options.workers, DataSocket());
  if (!t.ok()) return t.status();
  table = *std::move(t);
  MakeManager();
  for (uint32_t s = 0; s < n; ++s) {
    if (absl::Status status = CreateSession(s, rng); !status.ok()) return status;
  }
  install_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bytes_per_session = static_cast<double>(AllocatedBytes() - before) / n;
  return MakeWorkers();
}

// Each session's keys and SSRC, drawn from `rng` in session order.
void RelayRig::Impl::MakeTraffic(std::mt19937_64& rng) {
  traffic.resize(options.sessions);
  for (SessionTraffic& tr : traffic) {
    if (options.in_suite) tr.in_key = RandomKey(*options.in_suite, rng);
    if (options.out_suite) tr.out_key = RandomKey(*options.out_suite, rng);
    tr.ssrc = static_cast<uint32_t>(rng());
  }
}

// One local address holds kLegsPerAddress legs: enough interfaces (all on the
// same two ports) for every leg, as a large relay has several addresses.
std::vector<control::InterfaceInfo> RelayRig::Impl::Interfaces() const {
  const uint32_t addresses = (options.sessions + kLegsPerAddress - 1) / kLegsPerAddress;
  std::vector<control::InterfaceInfo> ifaces;
  for (uint32_t side = 0; side < 2; ++side) {
    for (uint32_t k = 0; k < addresses; ++k) {
      control::InterfaceInfo info;
      info.name = absl::StrCat(side == 0 ? "in" : "out", k);
      info.port_id = side == 0 ? port_in : port_out;
      info.mac = side == 0 ? mac_in : mac_out;
      info.ipv4 = packet::Prefix{IpAddress::V4(0x0a000001u + ((side + 1) << 16) + (k << 8)), 8};
      ifaces.push_back(info);
    }
  }
  return ifaces;
}

// A SessionManager on the flow table whose neighbours all resolve to the
// phones' MAC.
void RelayRig::Impl::MakeManager() {
  config::Config config;
  config.media.port_min = 1024;
  config.media.port_max = 65535;
  config.media.port_reuse_delay_s = 0;
  config.limits.max_sessions = options.sessions;
  control::NeighborResolver resolver;
  resolver.lookup = [](uint16_t, const IpAddress&) -> std::optional<MacAddress> {
    return kPhoneMac;
  };
  manager = std::make_unique<control::SessionManager>(config, Interfaces(), *table,
                                                      options.workers, rte_get_tsc_hz(),
                                                      std::move(resolver));
}

// Session `s`: leg "in" receives traffic[s].in_key, leg "out" sends with
// traffic[s].out_key. Records its local addresses and the worker that owns it.
absl::Status RelayRig::Impl::CreateSession(uint32_t s, std::mt19937_64& rng) {
  SessionTraffic& tr = traffic[s];
  control::CreateRequest req;
  req.session = absl::StrCat("call-", s);
  req.legs.resize(2);
  for (int i = 0; i < 2; ++i) {
    control::LegRequest& leg = req.legs[i];
    leg.name = i == 0 ? "in" : "out";
    leg.interface = absl::StrCat(leg.name, s / kLegsPerAddress);
    leg.remote = i == 0 ? Endpoint{IpAddress::V4(kInRemoteBase + s), kInRemotePort}
                        : Endpoint{IpAddress::V4(kOutRemoteBase + s), kOutRemotePort};
    const std::optional<crypto::Suite>& suite = i == 0 ? options.in_suite : options.out_suite;
    // The unused direction gets its own fresh keys (no key is used twice).
    std::optional<srtp::MasterKey> other;
    if (suite) other = RandomKey(*suite, rng);
    leg.rx = Spec(i == 0 ? tr.in_key : other);
    leg.tx = Spec(i == 0 ? other : tr.out_key);
  }
  absl::StatusOr<control::SessionInfo> info = manager->Create(req);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("session ", s, ": ", info.status().message()));
  }
  tr.in_local = info->legs[0].local;
  tr.out_local = info->legs[1].local;
  session::FlowKey key = session::FlowKey::From(tr.in_local);
  session::FlowRef ref{};
  table->LookupBulk(&key, 1, &ref);
  if (ref.flow == nullptr) return absl::InternalError("a session is missing from the flow table");
  tr.owner = ref.flow->owner;
  if (tr.owner >= options.workers) return absl::InternalError("a flow has no such worker");
  return absl::OkStatus();
}

// One Worker per lcore, each with its own crypto backend, receiving on queue
// w of port "in" and sending on queue w of port "out".
absl::Status RelayRig::Impl::MakeWorkers() {
  for (uint32_t w = 0; w < options.workers; ++w) {
    absl::StatusOr<std::unique_ptr<crypto::Backend>> b = crypto::MakeBackend(options.backend);
    if (!b.ok()) return b.status();
    backends.push_back(*std::move(b));
    worker::WorkerConfig wc;
    wc.id = w;
    wc.rx_queues = {{port_in, static_cast<uint16_t>(w)}};
    wc.tx_queue = static_cast<uint16_t>(w);
    wc.burst = options.burst;
    wc.table = table.get();
    if (options.workers > 1) wc.handoff = handoff;
    if (options.nic_offloads) {
      wc.tx_checksum_offload.resize(std::max(port_in, port_out) + 1);
      for (uint16_t p : {port_in, port_out}) {
        wc.tx_checksum_offload[p] = {.ipv4_header = true, .udp = true};
      }
    }
    wc.backend = backends.back().get();
    workers.push_back(std::make_unique<worker::Worker>(wc));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RelayRig>> RelayRig::Create(const RelayRigOptions& options) {
  if (!eal_ready) return absl::FailedPreconditionError("RelayRig::InitEal first");
  if (options.sessions < 1 || options.sessions > 1000000) {
    return absl::InvalidArgumentError("sessions must be 1 to 1000000");
  }
  if (options.burst < 1 || options.burst > worker::Worker::kMaxBurst) {
    return absl::InvalidArgumentError("burst must be 1 to 64");
  }
  if (options.workers < 1 || options.workers > rte_lcore_count()) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers must be 1 to ", rte_lcore_count()));
  }
  if (options.size < 12 || options.size > 1400) {
    return absl::InvalidArgumentError("size must be 12 to 1400 bytes");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->serial = rig_serial++;
  if (absl::Status s = impl->MakePorts(); !s.ok()) return s;
  if (absl::Status s = impl->Install(); !s.ok()) return s;
  return std::unique_ptr<RelayRig>(new RelayRig(std::move(impl)));
}

namespace {

struct WorkerRun {
  RelayLoop* loop = nullptr;
  double seconds = 0;
  absl::StatusOr<Measurement> measurement = absl::UnknownError("not run");
  absl::StatusOr<uint64_t> verified = absl::UnknownError("not run");
};

int RunWorker(void* arg) {
  WorkerRun& run = *static_cast<WorkerRun*>(arg);
  run.loop->StartWorker();  // on this thread: registers it with the flow table
  // First chunk: every packet checked as its phone would check it.
  run.loop->Capture();
  while (!run.loop->NeedsRefill()) {
    if (run.loop->Step() != run.loop->burst()) {
      run.verified = absl::InternalError(run.loop->FailureDetail());
      return 0;
    }
  }
  run.loop->Finish();  // Verify counts what is missing
  run.verified = run.loop->Verify();
  if (!run.verified.ok()) return 0;
  absl::StatusOr<Measurement> warm = Measure(*run.loop, 0.2);
  if (!warm.ok()) {
    run.measurement = warm.status();
    return 0;
  }
  run.measurement = Measure(*run.loop, run.seconds);
  return 0;
}

}  // namespace

absl::StatusOr<RelayRigResult> RelayRig::Run(double seconds) {
  Impl& rig = *impl_;
  const uint32_t w = rig.options.workers;
  if (rig.loops.empty()) {
    std::vector<std::vector<uint32_t>> owned(w);
    for (uint32_t s = 0; s < rig.traffic.size(); ++s) owned[rig.traffic[s].owner].push_back(s);
    for (uint32_t i = 0; i < w; ++i) {
      if (owned[i].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("worker ", i, " owns no session: give at least ", w, " sessions"));
      }
      rig.loops.push_back(std::make_unique<RelayLoop>(rig, i, std::move(owned[i])));
      if (absl::Status s = rig.loops.back()->Init(); !s.ok()) return s;
    }
  }
  std::vector<WorkerRun> runs(w);
  for (uint32_t i = 0; i < w; ++i) runs[i] = {rig.loops[i].get(), seconds};
  unsigned lcore = rte_get_main_lcore();
  for (uint32_t i = 1; i < w; ++i) {
    lcore = rte_get_next_lcore(lcore, 1, 0);
    if (rte_eal_remote_launch(RunWorker, &runs[i], lcore) != 0) {
      rte_eal_mp_wait_lcore();
      return absl::InternalError("cannot start a worker lcore");
    }
  }
  RunWorker(&runs[0]);
  rte_eal_mp_wait_lcore();
  if (rig.options.progress) std::fprintf(stderr, "\r%70s\r", "");

  RelayRigResult r;
  r.backend = std::string(rig.backends[0]->name());
  r.install_seconds = rig.install_seconds;
  r.bytes_per_session = rig.bytes_per_session;
  double cpu_ns = 0, wall_ns = 0;
  for (uint32_t i = 0; i < w; ++i) {
    if (!runs[i].verified.ok()) return runs[i].verified.status();
    if (!runs[i].measurement.ok()) return runs[i].measurement.status();
    const Measurement& m = *runs[i].measurement;
    r.verified += *runs[i].verified;
    r.packets += m.packets;
    r.mpps_total += m.mpps();
    cpu_ns += m.ns_per_packet();
    wall_ns += m.wall_ns_per_packet();
    if (rig.workers[i]->counters().handed_off.load() != 0) {
      return absl::InternalError("a packet was handed to another worker: steering is wrong");
    }
  }
  r.mpps_per_core = r.mpps_total / w;
  r.ns_per_packet = cpu_ns / w;
  r.wall_ns_per_packet = wall_ns / w;
  // One inbound frame: Ethernet + IPv4 + UDP + the SRTP packet.
  const uint32_t tag =
      rig.options.in_suite ? crypto::GetSuiteInfo(*rig.options.in_suite).srtp_tag_len : 0;
  r.frame_bytes = 14 + 20 + 8 + rig.options.size + tag;
  // On the wire each frame also has a 4-byte FCS, 8 bytes of preamble and a
  // 12-byte gap.
  r.gbps = r.mpps_total * 1e6 * (r.frame_bytes + 24) * 8 / 1e9;
  return r;
}


namespace {

struct OverloadWorker {
  RelayLoop* loop = nullptr;
  const std::atomic<bool>* stop = nullptr;
  uint64_t relayed = 0;
  double cpu_seconds = 0;
};

int RunOverloadWorker(void* arg) {
  OverloadWorker& w = *static_cast<OverloadWorker*>(arg);
  const double start = ThreadCpuSeconds();
  while (!w.stop->load(std::memory_order_relaxed)) w.relayed += w.loop->Step();
  w.cpu_seconds = ThreadCpuSeconds() - start;
  return 0;
}

}  // namespace

absl::StatusOr<RelayOverloadResult> RelayRig::RunOverload(double offered_mpps, double seconds) {
  Impl& rig = *impl_;
  if (rig.options.workers != 1 || rig.loops.size() != 1) {
    return absl::FailedPreconditionError("overload runs with one worker, after Run");
  }
  if (rte_lcore_count() < 2) {
    return absl::FailedPreconditionError("overload needs a second lcore for the traffic");
  }
  RelayLoop& loop = *rig.loops[0];
  // What the last Run left in the RX ring goes first.
  void* left;
  while (rte_ring_dequeue(rig.rx_rings[0], &left) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
  std::atomic<bool> stop{false};
  OverloadWorker worker{&loop, &stop};
  const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
  if (rte_eal_remote_launch(RunOverloadWorker, &worker, lcore) != 0) {
    return absl::InternalError("cannot start the worker lcore");
  }
  // This thread is the wire: fresh packets at the offered rate into the RX
  // ring, and what does not fit is lost as at a NIC whose ring is full.
  RelayOverloadResult r;
  std::string error;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t start = rte_rdtsc();
  const uint64_t end = start + static_cast<uint64_t>(seconds * static_cast<double>(hz));
  const double per_tick = offered_mpps * 1e6 / static_cast<double>(hz);
  rte_mbuf* mbufs[32];
  uint64_t now;
  while ((now = rte_rdtsc()) < end) {
    if (static_cast<double>(r.offered + 32) > static_cast<double>(now - start) * per_tick) continue;
    if (!loop.Generate(mbufs, 32, static_cast<uint32_t>(r.offered), &error)) break;
    const unsigned queued =
        rte_ring_enqueue_burst(rig.rx_rings[0], reinterpret_cast<void**>(mbufs), 32, nullptr);
    if (queued < 32) rte_pktmbuf_free_bulk(mbufs + queued, 32 - queued);
    r.offered += 32;
    r.ring_full_drops += 32 - queued;
  }
  const double wall = static_cast<double>(rte_rdtsc() - start) / static_cast<double>(hz);
  stop.store(true);
  rte_eal_mp_wait_lcore();
  while (rte_ring_dequeue(rig.rx_rings[0], &left) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
  if (!error.empty()) return absl::InternalError(error);
  r.relayed = worker.relayed;
  r.offered_mpps = static_cast<double>(r.offered) / wall / 1e6;
  r.relayed_mpps = worker.cpu_seconds > 0 ? static_cast<double>(r.relayed) / worker.cpu_seconds / 1e6 : 0;
  r.relayed_wall_mpps = static_cast<double>(r.relayed) / wall / 1e6;
  const worker::WorkerCounters& counters = rig.workers[0]->counters();
  r.worker_drops = counters.total_drops();
  r.worker_drop_reasons = Describe(counters);
  return r;
}

}  // namespace sluice::bench
