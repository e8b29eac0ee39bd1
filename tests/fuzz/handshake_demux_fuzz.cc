// Fuzz target: the WebRTC demultiplexer past the worker. Any bytes become
// frames on the handshake thread's ring, as workers hand them over; one
// HandshakeThread::PollOnce at a time parses each frame, finds the WebRTC
// leg registered at its destination and hands it to that leg, which tells
// STUN from DTLS (RFC 7983) and gives them to its ICE-lite agent or its
// DTLS-SRTP endpoint, or refuses them. Two legs: ICE and DTLS (Sluice the
// DTLS server), and DTLS alone toward a configured remote (Sluice the
// client); a third address has none.
//
// Input: chunks of [selector][length][bytes]. The selector's low 2 bits say
// what the chunk is: its bytes as the UDP payload; a connectivity check that
// authenticates (so DTLS from that source reaches the endpoint); a real
// ClientHello with the bytes XORed over it; or the bytes as the whole
// Ethernet frame. Bits 2-3 pick the destination (3 as 0), 4-5 the source, 6 an IPv6
// frame, 7 moves the clock past the next timer.
//
// Checked after every input: every mbuf taken is accounted for (dispatched,
// no handler or malformed) and freed; the ICE leg's selected peer is a
// source that sent an authenticating check; every frame sent parses, comes
// from a leg's address and goes to an address that reached that leg.
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "sluice/dpdk/eal.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/ice/lite_agent.h"
#include "sluice/ice/stun.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"
#include "sluice/webrtc/handshake_thread.h"
#include "sluice/webrtc/webrtc_leg.h"
#include "udp_frame.h"

namespace {

using sluice::packet::Endpoint;
namespace dtls = sluice::dtls;
namespace ice = sluice::ice;
namespace packet = sluice::packet;
namespace webrtc = sluice::webrtc;

constexpr const char* kUfrag = "fuzzLeg1";
constexpr const char* kPwd = "FuzzLegPasswordOf24Char";
constexpr const char* kPeerUfrag = "fuzzPeer";
constexpr const char* kPeerPwd = "FuzzPeerPasswordOf24Chr";
constexpr packet::MacAddress kOurMac = {0x02, 0, 0, 0, 0, 0x01};
constexpr packet::MacAddress kPeerMac = {0x02, 0, 0, 0, 0, 0x99};
constexpr uint16_t kPort = 1;

void Check(bool ok) {
  if (!ok) std::abort();
}
Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

struct World {
  rte_mempool* pool = nullptr;
  rte_ring* tx = nullptr;
  std::optional<dtls::Certificate> ours, browser;
  std::vector<uint8_t> client_hello;  // a browser's, to our certificate
  Endpoint legs[3][2];                // [destination][family]: ICE+DTLS, DTLS only, nobody
  Endpoint sources[4][2];             // [source][family]; source 0 is the DTLS leg's remote
};

World& TheWorld() {
  static World* w = [] {
    auto* w = new World;
    sluice::dpdk::EalOptions o;
    o.program_name = "handshake_demux_fuzz";
    o.memory_mb = 128;
    o.force_no_huge = true;
    Check(sluice::dpdk::InitEal(o).ok());
    w->pool = rte_pktmbuf_pool_create("fuzz_pool", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      static_cast<int>(rte_socket_id()));
    w->tx = rte_ring_create("fuzz_tx", 4096, static_cast<int>(rte_socket_id()), 0);
    Check(w->pool != nullptr && w->tx != nullptr);
    w->ours.emplace(*dtls::Certificate::Generate());
    w->browser.emplace(*dtls::Certificate::Generate());
    dtls::EndpointOptions c;
    c.role = dtls::Role::kClient;
    c.peer_fingerprints = {w->ours->GetFingerprint()};
    auto client = *dtls::Endpoint::Create(*w->browser, c);
    client->Start(0);
    w->client_hello = client->TakeOutgoing().at(0);
    const char* legs[3][2] = {{"192.0.2.1:40000", "[2001:db8::1]:40000"},
                              {"192.0.2.1:40002", "[2001:db8::1]:40002"},
                              {"192.0.2.1:40004", "[2001:db8::1]:40004"}};
    const char* sources[4][2] = {{"198.51.100.7:5000", "[2001:db8:7::7]:5000"},
                                 {"198.51.100.8:5002", "[2001:db8:7::8]:5002"},
                                 {"203.0.113.9:6000", "[2001:db8:9::9]:6000"},
                                 {"203.0.113.9:6002", "[2001:db8:9::9]:6002"}};
    for (int i = 0; i < 3; ++i) {
      for (int f = 0; f < 2; ++f) w->legs[i][f] = Ep(legs[i][f]);
    }
    for (int i = 0; i < 4; ++i) {
      for (int f = 0; f < 2; ++f) w->sources[i][f] = Ep(sources[i][f]);
    }
    return w;
  }();
  return *w;
}

std::unique_ptr<dtls::Endpoint> MakeDtls(dtls::Role role) {
  dtls::EndpointOptions o;
  o.role = role;
  o.peer_fingerprints = {TheWorld().browser->GetFingerprint()};
  o.initial_retransmit_ms = 100;
  o.handshake_timeout_ms = 5000;
  return *dtls::Endpoint::Create(*TheWorld().ours, o);
}

// One input's legs on a fresh thread, for family `f`.
struct Run {
  explicit Run(int f) : family(f) {
    World& w = TheWorld();
    thread = *webrtc::HandshakeThread::Create(
        {.pool = w.pool, .tx_ring = w.tx, .ring_name = "fuzz_handshake", .ring_size = 1024,
         .clock = [this] { return now; }});
    webrtc::WebRtcLegConfig a;
    a.id = {"fuzz", 0, 1};
    a.local = w.legs[0][f];
    a.agent.emplace(*ice::LiteAgent::Create(ice::MakeIceCredentials(kUfrag, kPwd),
                                            ice::MakeIceCredentials(kPeerUfrag, kPeerPwd)));
    a.dtls = MakeDtls(dtls::Role::kServer);
    webrtc::WebRtcLegConfig b;
    b.id = {"fuzz", 1, 2};
    b.local = w.legs[1][f];
    b.remote = w.sources[0][f];
    b.dtls = MakeDtls(dtls::Role::kClient);
    ice_leg = std::make_shared<webrtc::WebRtcLeg>(std::move(a), nullptr);
    Check(thread->Register(w.legs[0][f], ice_leg).ok());
    Check(thread->Register(w.legs[1][f], std::make_shared<webrtc::WebRtcLeg>(std::move(b), nullptr))
              .ok());
  }
  ~Run() { thread->Stop(); }

  int family;
  uint64_t now = 1000;
  std::unique_ptr<webrtc::HandshakeThread> thread;
  std::shared_ptr<webrtc::WebRtcLeg> ice_leg;
  absl::flat_hash_set<Endpoint> authenticated;  // sources that sent the ICE leg a good check
  absl::flat_hash_set<std::pair<Endpoint, Endpoint>> heard;  // (leg, source) of frames given
  uint64_t enqueued = 0;
};

std::vector<uint8_t> GoodCheck(uint8_t tag) {
  ice::StunTransactionId tid{};
  tid.fill(tag);
  ice::StunBuilder b(ice::kStunBindingMethod, ice::StunClass::kRequest, tid);
  b.AddUsername(std::string(kUfrag) + ":" + kPeerUfrag)
      .AddPriority(0x6e7f1eff)
      .AddIceControlling(7)
      .AddUseCandidate()
      .AddMessageIntegrity(ice::StunKey(kPwd))
      .AddFingerprint();
  return std::move(b).Take();
}

// The mbuf one chunk makes, or null.
rte_mbuf* MakeFrame(Run& run, uint8_t selector, std::span<const uint8_t> bytes) {
  World& w = TheWorld();
  const int f = (selector >> 6) & 1;
  const Endpoint& to = w.legs[((selector >> 2) & 3) % 3][f];
  const Endpoint& from = w.sources[(selector >> 4) & 3][f];
  const int mode = selector & 3;
  if (mode == 3) {  // the bytes as the whole frame
    rte_mbuf* m = rte_pktmbuf_alloc(w.pool);
    if (m == nullptr) return nullptr;
    void* d = rte_pktmbuf_append(m, static_cast<uint16_t>(std::min<size_t>(bytes.size(), 2048)));
    if (d != nullptr && !bytes.empty()) std::memcpy(d, bytes.data(), rte_pktmbuf_data_len(m));
    m->port = kPort;
    const packet::ParsedFrame frame = packet::ParseFrame(
        rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
        {.verify_ip_checksum = false, .verify_udp_checksum = false});
    if (frame.kind == packet::FrameKind::kUdp) run.heard.insert({frame.dst, frame.src});
    return m;
  }
  std::vector<uint8_t> payload(bytes.begin(), bytes.end());
  if (mode == 1) {
    payload = GoodCheck(static_cast<uint8_t>(run.enqueued));
    if (to == w.legs[0][f]) run.authenticated.insert(from);
  } else if (mode == 2) {
    payload = w.client_hello;
    for (size_t i = 0; i < bytes.size() && i < payload.size(); ++i) payload[i] ^= bytes[i];
  }
  if (payload.size() > 1400) payload.resize(1400);
  packet::UdpHeaderSpec spec;
  spec.src_mac = kPeerMac;
  spec.dst_mac = kOurMac;
  spec.src = from;
  spec.dst = to;
  run.heard.insert({to, from});
  return sluice::testing::UdpFrame(w.pool, spec, payload, kPort);
}

// What the thread sent: frames that parse, from a leg to one that reached it.
void DrainTx(const Run* run) {
  World& w = TheWorld();
  void* p;
  while (rte_ring_dequeue(w.tx, &p) == 0) {
    auto* m = static_cast<rte_mbuf*>(p);
    const packet::ParsedFrame frame = packet::ParseFrame(
        rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m), {});
    Check(frame.kind == packet::FrameKind::kUdp);
    Check(run != nullptr && run->heard.contains({frame.src, frame.dst}));
    rte_pktmbuf_free(m);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  {
    Run run(size > 0 ? (data[0] >> 6) & 1 : 0);
    size_t pos = 0;
    while (pos + 3 <= size) {
      const uint8_t selector = data[pos];
      const size_t len = std::min<size_t>(size - pos - 3, data[pos + 1] << 8 | data[pos + 2]);
      if (rte_mbuf* m = MakeFrame(run, selector, {data + pos + 3, len})) {
        if (rte_ring_enqueue(run.thread->ring(), m) != 0) {
          rte_pktmbuf_free(m);
        } else {
          ++run.enqueued;
        }
      }
      pos += 3 + len;
      while (run.thread->PollOnce() > 0) DrainTx(&run);
      if (selector & 0x80) run.now += 200 + (selector & 0x3f) * 100;  // past timers
      run.thread->PollOnce();
      DrainTx(&run);
    }
    const webrtc::HandshakeCounters& c = run.thread->counters();
    Check(c.received.load() == run.enqueued);
    Check(c.received.load() == c.dispatched.load() + c.no_handler.load() + c.malformed.load());
    const std::optional<Endpoint> selected =
        run.ice_leg->View(run.now, false).ice->selected;
    Check(!selected || run.authenticated.contains(*selected));
  }
  DrainTx(nullptr);  // nothing may be left behind
  Check(rte_mempool_in_use_count(w.pool) == 0);
  return 0;
}
