// A call as the data plane carries it: two legs, each with its local address,
// its peer and its keys, and the two flows between them.
//
// Built and published by the control thread. Once published, its flows are
// read by workers through the FlowTable; Unpublish, a grace period
// (FlowTable::StartGracePeriod until GracePeriodOver), then destruction
// (which wipes every key).
#ifndef SLUICE_SESSION_SESSION_H_
#define SLUICE_SESSION_SESSION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/remote.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/master_key.h"

namespace sluice::session {

struct LegSpec {
  std::string name;
  uint16_t port_id = 0;            // DPDK port of the leg's interface
  packet::MacAddress port_mac{};   // that port's MAC
  uint16_t vlan = 0;
  packet::Endpoint local;          // our address and RTP port
  bool rtcp_mux = true;            // else RTCP on local port + 1
  std::optional<packet::Endpoint> remote;    // the peer, when the controller knows it
  std::optional<packet::MacAddress> remote_mac;  // next hop toward it, when resolved
  bool strict_source = false;      // never learn: accept only `remote`
  // Keys the peer sends with (unprotect) and Sluice sends with (protect);
  // empty = plain RTP in that direction. Session::Create makes the contexts
  // from them and keeps no copy (nor of the rest of the spec).
  std::vector<srtp::MasterKey> rx_keys;
  std::vector<srtp::MasterKey> tx_keys;
  bool tx_encrypt_srtcp = true;
  crypto::Aes192Kdf aes192_kdf = crypto::Aes192Kdf::kRfc6188;  // both directions' contexts
  // Learns no peer from unauthenticated traffic until SetAnswered
  // (sluice/session/learning.h).
  bool await_answer = false;
  // WebRTC: STUN and DTLS on the leg's port go to the handshake thread
  // (Flow::handshake), and its keys come from that handshake: until
  // SetKeysPending(leg, false) nothing is relayed to or from the leg.
  bool handshake = false;
  bool keys_pending = false;
  // A restored session's streams (docs/ha.md): where each SSRC of the rx
  // and tx contexts resumes. Applied by Session::Create, before publishing.
  std::vector<srtp::StreamState> rx_streams;
  std::vector<srtp::StreamState> tx_streams;
  // The tx contexts' SEQ shift (srtp::ContextOptions::rtp_seq_offset): a
  // restored plain-sourced leg's; 0 otherwise.
  uint16_t tx_seq_offset = 0;
};

struct SessionOptions {
  srtp::ContextOptions srtp;
  uint32_t learn_packets = 3;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(uint64_t id, const LegSpec& a,
                                                         const LegSpec& b,
                                                         const SessionOptions& options);
  ~Session();

  // A session (its peer slots and flows, which every packet reads) lives in
  // the hot arena, as its contexts do: see sluice/memory/hot_arena.h.
  // (Its cache-line-aligned members make it over-aligned: only the aligned
  // forms are ever called.)
  static void* operator new(std::size_t bytes, std::align_val_t);
  static void operator delete(void* p, std::size_t bytes, std::align_val_t) noexcept;

  // Adds the flows' keys to the table; on failure nothing stays added.
  absl::Status Publish(FlowTable& table);
  // Removes them. Destroy the session only once a grace period started after
  // this is over (FlowTable::GracePeriodOver).
  void Unpublish(FlowTable& table);

  // Re-key, control thread (the rule: sluice/session/rekey.h): hands leg i a
  // new receive (or send) context, or plain RTP with null. The worker that
  // owns the flow takes it on its next packet, carrying the streams over; a
  // context still pending from an earlier call is replaced and freed.
  void HandOverRx(int leg, std::unique_ptr<srtp::Context> context);
  void HandOverTx(int leg, std::unique_ptr<srtp::Context> context);
  // Control thread: leg i's newest receive context (the one last handed
  // over, taken by its worker or not; null for plain RTP). Its keys may be
  // read; it lives until a later hand-over replaces it.
  const srtp::Context* newest_rx(int leg) const { return newest_rx_[leg]; }
  // Control thread: leg i's newest send context (null for plain RTP), as
  // newest_rx. Its counts may be read (relaxed) while its worker counts.
  const srtp::Context* newest_tx(int leg) const { return newest_tx_[leg]; }
  // Frees the contexts workers have stopped using. Returns how many.
  int CollectRetired();
  // Whether a handed-over context is still waiting for its worker.
  bool HandOverPending() const;

  // Worker that owns both flows' state (handed packets of other workers).
  void SetOwner(uint16_t worker);
  void SetRekeyOverlap(uint64_t tsc);
  // At most max_pps packets a second into each leg (0: unlimited); the rule:
  // sluice/session/policing.h. Before publishing.
  void SetRateLimit(uint32_t max_pps, uint64_t tsc_hz);
  // Control thread: the controller moved leg i's peer (the rule:
  // sluice/session/learning.h). Its next hop is resolved afresh.
  void SetRemote(int leg, const packet::Endpoint& remote);
  // Control thread: leg i's call is answered; from now on it learns its peer
  // as any leg does.
  void SetAnswered(int leg);
  bool awaiting_answer(int leg) const {
    return flows_[leg].awaiting_answer.load(std::memory_order_acquire);
  }
  // Control thread: leg i's port takes STUN and DTLS to the handshake
  // thread (on), or drops them (off).
  void SetHandshake(int leg, bool on);
  // Control thread: leg i's keys come from a handshake not finished yet
  // (pending), or are in place. While either leg's are pending, both flows
  // drop RTP and RTCP (not_keyed): flow i lacks leg i's receive keys, flow
  // 1 - i its send keys, and a null context must not pass for plain RTP.
  // To key a leg: HandOverRx and HandOverTx, then SetKeysPending(leg,
  // false), which first collects parked contexts so that the owning worker
  // adopts the new ones before it sees the flag clear (Flow::keys_pending).
  void SetKeysPending(int leg, bool pending);
  bool keys_pending(int leg) const { return keys_pending_[leg]; }

  uint64_t id() const { return flows_[0].id >> 1; }  // flow i's id is (id << 1) | i
  // Leg i's local address and RTP port (its name and the rest of its spec
  // are the control plane's to keep).
  const packet::Endpoint& local(int i) const { return flows_[i].in_local; }
  // Flow i carries what arrives on leg i to leg 1 - i.
  const Flow& flow(int i) const { return flows_[i]; }
  Flow& mutable_flow(int i) { return flows_[i]; }
  RemoteView remote(int i) const { return remotes_[i].Load(); }
  RemoteSlot& remote_slot(int i) { return remotes_[i]; }

 private:
  Session() = default;
  void HandOver(std::atomic<srtp::Context*>& slot, std::unique_ptr<srtp::Context> context);
  void Free(srtp::Context* context);
  // The flow table keys of leg i: its RTP port, then its RTCP port unless
  // muxed. Returns how many.
  int TableKeys(int leg, packet::Endpoint keys[2]) const;

  // The control plane's line, ahead of the lines packets read.
  // Every context the flows use, were handed or have not yet retired.
  std::vector<std::unique_ptr<srtp::Context>> contexts_;
  std::array<const srtp::Context*, 2> newest_rx_{};
  std::array<const srtp::Context*, 2> newest_tx_{};
  std::array<bool, 2> keys_pending_{};
  // How many of the legs' table keys (TableKeys, leg 0's first) are in the
  // table: Unpublish removes those, never a key another session holds.
  uint8_t published_ = 0;
  // The peers, then the flows: a packet of flow 0 reads six lines side by
  // side (both peers, its flow's hot lines).
  std::array<RemoteSlot, 2> remotes_;
  std::array<Flow, 2> flows_;
};
// Sessions are the bulk of a large relay's memory (with their contexts):
// control-plane data (leg names, specs) stays out of this block, whose
// first line holds what the session itself needs.
static_assert(sizeof(Session) == 64 + 2 * sizeof(RemoteSlot) + 2 * sizeof(Flow),
              "a session is one line, its peers and its flows");

}  // namespace sluice::session

#endif  // SLUICE_SESSION_SESSION_H_
