// The control plane's operations, as typed requests and results: what the
// protocol codec decodes requests into, and what sluiced's session manager
// carries out. Independent of JSON and of the socket.
//
// Control thread only.
#ifndef SLUICE_CONTROL_OPERATIONS_H_
#define SLUICE_CONTROL_OPERATIONS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"
#include "sluice/memory/wiping_allocator.h"
#include "sluice/packet/address.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/stream_state.h"

namespace sluice::control {

// Wiping of key text, as the control plane calls it (memory/wiping_allocator.h).
using memory::WipeMemory;
using memory::WipeString;

// How one side of a leg is protected.
struct CryptoSpec {
  enum class Kind : uint8_t {
    kPlain,     // {"plain": true}
    kSdes,      // {"crypto": "<SDES crypto attribute value>"}
    kGenerate,  // {"suite": "<name>"}: tx only, Sluice generates the key
    // {"passthrough": true}: SRTP relayed as it is, without keys; must be
    // asked for on both ends of a direction (one leg's rx, the other's tx).
    kPassthrough,
  };
  Kind kind = Kind::kPlain;
  std::string sdes;  // kSdes: the attribute value (key material: wipe, never log)
  crypto::Suite suite = crypto::Suite::kAesCm128HmacSha1_80;  // kGenerate
  ~CryptoSpec();
};

enum class RtcpMode : uint8_t { kMux, kSeparate };

// The rollover counter on a re-key (docs/control-protocol.md): kAuto sends
// at ROC 0 when the new key comes with a new remote address or port (RFC
// 4568 §7.1.4), else keeps it (RFC 3711 §3.3.1), and detects the peer's
// rule on receive; kKeep and kReset force the send side, and kKeep turns
// detection off.
enum class RocOnRekey : uint8_t { kAuto, kKeep, kReset };

// A leg keyed by a DTLS-SRTP handshake on its media port (RFC 5763, RFC
// 5764): its receive and send keys come from the handshake, not from rx/tx.
// Checked by the session manager (setup names, fingerprint syntax).
struct DtlsSpec {
  std::string setup;                      // the peer's a=setup: actpass, active or passive
  std::vector<std::string> fingerprints;  // the peer's a=fingerprint values: "sha-256 AB:CD:..."
  // Sluice's own a=setup when the controller forces it: "active" or
  // "passive"; empty: Sluice picks (RFC 5763 §5), as [webrtc] does. The
  // peer's setup the same as this one is refused (RFC 4145 §4).
  std::string local_setup;
  // A leg restored keyed (docs/ha.md), never from the protocol codec: the
  // SRTP suite its handshake had negotiated, its exported keys in the leg's
  // rx and tx; the leg relays at once and waits for no handshake.
  std::string restored_profile;
};

// ICE-lite on the leg's media port (RFC 8445 §2.5): the peer is the address
// an authenticated check nominated. The peer's credentials may come later
// (ufrag and pwd empty until then).
struct IceSpec {
  std::string ufrag;
  std::string pwd;       // a credential: wiped, never logged
  bool restart = false;  // session.update only: new local credentials (RFC 8445 §9)
  // A restored leg's (docs/ha.md), never from the protocol codec: Sluice's
  // credentials as the peer has them (wiped), and the pair checks selected.
  std::string local_ufrag;
  std::string local_pwd;
  std::optional<packet::Endpoint> selected;
  ~IceSpec();
};

struct LegRequest {
  std::string name;
  std::string interface;
  std::optional<packet::Endpoint> remote;
  RtcpMode rtcp = RtcpMode::kSeparate;
  bool strict_source = false;
  // The family of the leg's local address (4 or 6); 0: the remote's, or
  // IPv4 when the interface has it. With a remote, the two must agree.
  uint8_t family = 0;
  CryptoSpec rx;
  CryptoSpec tx;
  // The peer answers later (an ng offer's answerer): while the leg's receive
  // side is plain or unauthenticated it learns no peer from traffic until an
  // update with `answer` ([media] learn_before_answer lifts this).
  bool await_answer = false;
  RocOnRekey roc_on_rekey = RocOnRekey::kAuto;
  // AES-192 session key derivation for both directions (other suites ignore
  // it); none: [media] aes192_kdf. Kept through updates.
  std::optional<crypto::Aes192Kdf> aes192_kdf;
  // With dtls, rx and tx are left out: the handshake keys both directions.
  std::optional<DtlsSpec> dtls;
  std::optional<IceSpec> ice;
  // A session restored from Redis (docs/ha.md), never from the protocol
  // codec: the local port it had (0: one is drawn), and where its streams
  // resume.
  uint16_t local_port = 0;
  std::vector<srtp::StreamState> rx_streams;
  std::vector<srtp::StreamState> tx_streams;
  // A restored leg's SEQ shift on what it sends (docs/ha.md, the checkpoint
  // rule); never from the wire.
  uint16_t tx_seq_offset = 0;
};

struct CreateRequest {
  std::string session;
  std::vector<LegRequest> legs;  // exactly two
  // Sessions of one key group may share master keys (an ng call's forked
  // branches all receive with the caller's key); across groups, and for
  // sessions with none, a key serves one session. Empty: none.
  std::string key_group;
};

struct UpdateRequest {
  std::string session;
  std::string leg;
  std::optional<CryptoSpec> rx;
  std::optional<CryptoSpec> tx;
  std::optional<packet::Endpoint> remote;
  bool answer = false;  // the leg's call is answered (see LegRequest::await_answer)
  // The session is on hold (media one way or none): its media timeout is
  // silent_timeout_s rather than timeout_s. None: unchanged.
  std::optional<bool> hold;
  std::optional<RocOnRekey> roc_on_rekey;  // from this update on
  // A new DTLS handshake (a new fingerprint in a re-offer): its keys replace
  // the leg's make-before-break. Only for a leg created with dtls.
  std::optional<DtlsSpec> dtls;
  // New peer credentials, or an ICE restart. Only for a leg with ice.
  std::optional<IceSpec> ice;
};

struct LegCounters {
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;  // RTP and RTCP
  uint64_t auth_failures = 0, replay_drops = 0, other_drops = 0, remote_changes = 0;
  // The RTCP among rx_* and tx_* above.
  uint64_t rx_rtcp_packets = 0, rx_rtcp_bytes = 0, tx_rtcp_packets = 0, tx_rtcp_bytes = 0;
};

// What a WebRTC leg's handshake took and refused (LegInfo::Dtls, ::Ice).
// Outside them: a nested class's member initializers would keep
// std::optional<LegInfo::Dtls> from being default-constructible in LegInfo.
struct HandshakeCounts {
  uint64_t taken = 0;
  std::vector<std::pair<std::string, uint64_t>> dropped;  // by reason, non-zero counts only
};

struct LegInfo {
  std::string name;
  std::string interface;
  packet::Endpoint local;
  std::optional<packet::Endpoint> remote;
  bool remote_learned = false;
  RtcpMode rtcp = RtcpMode::kSeparate;
  std::string rx_suite;  // suite name or "plain"
  std::string tx_suite;
  std::string encryption;  // "encrypted", "unauthenticated" or "plain" (encryption_audit.h)
  LegCounters counters;
  // How far each direction's master key has gone toward its packet limit,
  // in percent (none for plain), and the directions past [media]
  // key_limit_warn_percent ("rx", "tx"): the SBC should re-key them.
  std::optional<uint32_t> rx_key_used_percent;
  std::optional<uint32_t> tx_key_used_percent;
  std::vector<std::string> rekey_needed;
  // What the receive side found a re-key did to the peer's rollover
  // counter: "none", "undecided", "kept" or "reset".
  std::string roc_after_rekey = "none";
  // Only in a create/update reply, and only for a tx key Sluice generated:
  // the SDES attribute value the SBC must put in its SDP. Never in get/list
  // (the codec drops it from every other reply). Wiped by the destructor.
  std::optional<std::string> tx_crypto;
  // A DTLS-SRTP leg: its handshake as it stands. Never any key.
  struct Dtls {
    std::string state;        // "new", "handshaking", "keyed" or "failed"
    std::string reason;       // why it failed ("" otherwise)
    std::string setup;        // Sluice's a=setup: "active" or "passive"
    std::string fingerprint;  // Sluice's certificate: "sha-256 AB:CD:..."
    std::string profile;      // the negotiated SRTP suite, from "keyed" on ("" before)
    // The current handshake's datagrams: `taken` by it, and `dropped` by
    // reason ("unchecked_source", "not_dtls", ...).
    HandshakeCounts counts;
  };
  std::optional<Dtls> dtls;
  // An ICE-lite leg: Sluice's credentials and candidates for its SDP, and
  // the pair checks selected.
  struct Ice {
    std::string ufrag;
    std::string pwd;
    std::vector<std::string> candidates;  // a=candidate values
    std::optional<packet::Endpoint> selected;
    std::optional<uint64_t> consent_age_ms;  // since the selected peer's last authenticated check
    // Checks answered with success (`taken`), and STUN not accepted as a
    // check, by reason (ice::IceDropReasonName).
    HandshakeCounts counts;
  };
  std::optional<Ice> ice;
  ~LegInfo();
};

struct SessionInfo {
  std::string session;
  std::vector<LegInfo> legs;
  std::string encryption;  // its weaker leg's
  bool hold = false;  // on hold (UpdateRequest::hold): silent_timeout_s applies, not timeout_s
};

struct ListResult {
  uint64_t total = 0;
  std::vector<SessionInfo> sessions;
};

struct WorkerStats {
  uint32_t id = 0;
  unsigned lcore = 0;
  uint64_t rx_packets = 0, tx_packets = 0, busy_cycles = 0, idle_cycles = 0;
  uint64_t rx_bytes = 0, tx_bytes = 0;  // whole frames, as received and as sent
  uint64_t handshake_packets = 0;  // STUN and DTLS given to the handshake thread
  uint64_t neighbor_held = 0;  // given to the slow path to wait for a next hop
  std::vector<std::pair<std::string, uint64_t>> drops;  // reason -> count, non-zero only
  // RCU quiescent-state reports, as the control loop sees them: ms since the
  // last one, and whether that is past [workers] stall_ms.
  uint64_t quiescent_ms_ago = 0;
  bool stalled = false;
};

// One DPDK port's own counters (rte_eth_stats): what reached the port or was
// lost before any worker saw it.
struct PortStats {
  std::string interface;
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t rx_missed = 0;   // the NIC had no room: RX ring full (imissed)
  uint64_t rx_errors = 0;   // bad frames the NIC dropped (ierrors)
  uint64_t rx_no_mbuf = 0;  // no packet buffer to receive into
  uint64_t tx_errors = 0;
  // The driver's extended counters (rte_eth_xstats), by the driver's names.
  std::vector<std::pair<std::string, uint64_t>> xstats;
};

// The memory that holds the sessions' state every packet reads (their
// SRTP contexts, flows and peers): sluiced's hot arena.
struct MemoryStats {
  uint64_t session_state_bytes = 0;   // in live blocks
  uint64_t session_state_blocks = 0;
  uint64_t mapped_bytes = 0;          // of 2 MiB regions, for hugepages
};

// A direction of a leg whose key is past the warning (Stats::rekey_needed).
struct RekeyNeeded {
  std::string session;
  std::string leg;
  std::string direction;  // "rx" or "tx"
  uint32_t used_percent = 0;
};

// Live legs with one way of keying and one suite (Stats::legs).
struct LegCount {
  std::string_view keying;  // "plain", "sdes" or "dtls"
  std::string_view suite;   // what the leg receives with ("plain" until keyed)
  uint64_t legs = 0;
};

// Replication to Redis ([ha], docs/ha.md), as the control loop sees it.
struct HaStats {
  bool connected = false;
  uint64_t sessions = 0;  // sessions replicated
  // Sessions whose latest state Redis does not have yet (changed, or sent
  // and not yet acknowledged), and how old the oldest such change is.
  uint64_t backlog = 0;
  uint64_t lag_ms = 0;
  uint64_t writes = 0, deletes = 0, write_errors = 0, connects = 0, disconnects = 0;
  uint64_t checkpoints = 0;     // streams checkpoints that changed and were queued
  uint64_t not_replicated = 0;  // WebRTC sessions (DTLS keys are not replicated)
  // Start-up restore: sessions restored, and records refused, by reason.
  uint64_t restored = 0, refused_corrupt = 0, refused_unknown_interface = 0, refused_other = 0;
  std::string last_error;  // the latest Redis error ("" if none)
  // Failover (docs/ha.md, "Standby"): "active" or "standby"; an active that
  // found the heartbeat another's and stopped writing; a standby's mirror:
  // sessions whose records validate, records refused, ms since the mirror
  // last changed or was confirmed by a full scan, and since the active's
  // heartbeat was last seen (-1: never).
  std::string role = "active";
  bool fenced = false;
  uint64_t mirrored = 0, mirror_refused = 0;
  int64_t last_update_age_ms = -1, heartbeat_age_ms = -1;
};

struct Stats {
  uint64_t sessions = 0;
  // Since start: sessions created and deleted (by any front end, timeouts
  // included), and keys refused as reused (key_reuse errors).
  uint64_t sessions_created = 0, sessions_deleted = 0, key_reuse_refusals = 0;
  std::vector<LegCount> legs;
  // Live sessions by their weaker leg's encryption ("plain",
  // "unauthenticated", "encrypted"), and creates refused by [media]
  // require_encryption since start.
  std::vector<std::pair<std::string_view, uint64_t>> sessions_by_encryption;
  uint64_t encryption_refusals = 0;
  // Deleted sessions whose memory (and keys) wait for every worker to pass
  // a quiescent state before they are freed.
  uint64_t sessions_reclaiming = 0;
  // Legs with a key past [media] key_limit_warn_percent, and which (as of
  // the control loop's last pass, at most kMaxRekeyNeeded of them).
  uint64_t keys_near_limit = 0;
  std::vector<RekeyNeeded> rekey_needed;
  static constexpr size_t kMaxRekeyNeeded = 1000;
  // Sessions deleted by a [media] timeout, by reason.
  struct TimedOut {
    uint64_t timeout = 0, silent_timeout = 0, final_timeout = 0;
  } timed_out;
  // WebRTC legs' handshakes: outcomes since start.
  struct Handshakes {
    uint64_t dtls_keyed = 0;        // DTLS keys installed (first keys and re-keys)
    uint64_t dtls_failed = 0;       // handshakes that gave no keys
    uint64_t ice_selected = 0;      // peers chosen (or chosen again) by ICE checks
    uint64_t ice_consent_lost = 0;  // media stopped for want of consent
    // The handshake thread's own counters (webrtc::HandshakeCounters), by name.
    std::vector<std::pair<std::string, uint64_t>> thread;
  } webrtc;
  std::optional<MemoryStats> memory;
  std::vector<PortStats> ports;
  std::vector<WorkerStats> workers;
  // Frames whose next hop was not resolved yet, waiting in the slow path:
  // now, and since start sent once it answered and dropped (unanswered
  // within 3 s, or past the bounds; also counted as no_neighbor drops).
  struct NeighborHold {
    uint64_t waiting = 0, sent = 0, dropped = 0;
  } neighbor_hold;
  // Summed over workers, with neighbor_hold.dropped as no_neighbor.
  std::vector<std::pair<std::string, uint64_t>> drops;
  std::optional<HaStats> ha;  // with [ha] only
};

// Error codes of the protocol map onto absl::StatusCode:
//   invalid_argument -> kInvalidArgument, not_found -> kNotFound,
//   already_exists -> kAlreadyExists, key_reuse -> kFailedPrecondition with a
//   message starting "key_reuse: ", resource_exhausted -> kResourceExhausted,
//   internal -> anything else. parse_error and invalid_request are the codec's.
// Messages go to the client as they are: name the field, never a key.
inline absl::Status KeyReuseError(absl::string_view message) {
  return absl::FailedPreconditionError(std::string("key_reuse: ").append(message.data(), message.size()));
}

// What the protocol asks of sluiced. The codec has already checked the shape
// of every request (see protocol.h): names, endpoints, suite names, exactly
// two legs, exactly one protection per direction. Everything that needs the
// daemon's state or parses key material (SDES keys, interfaces, ports,
// duplicates, key reuse) is the implementation's to check.
class Operations {
 public:
  virtual ~Operations() = default;
  virtual std::string Version() const = 0;
  virtual uint32_t Workers() const = 0;
  // The reply's legs carry tx_crypto where the request asked for a generated
  // tx key (kGenerate).
  virtual absl::StatusOr<SessionInfo> Create(const CreateRequest& request) = 0;
  virtual absl::StatusOr<SessionInfo> Update(const UpdateRequest& request) = 0;
  // The session's final counters.
  virtual absl::StatusOr<SessionInfo> Delete(const std::string& session) = 0;
  virtual absl::StatusOr<SessionInfo> Get(const std::string& session) = 0;
  // Sessions [offset, offset + limit) in a stable order; limit <= 1000.
  virtual ListResult List(uint64_t offset, uint64_t limit) = 0;
  virtual Stats GetStats() = 0;
  // Whether session `session` may take up the master key `fp` in an Update
  // (not in use by another session, not released within the reuse window):
  // a caller that applies several updates as one checks them all first.
  // Without a process-wide key registry there is nothing to check.
  virtual absl::Status CheckKeyFree(const std::string& session, const srtp::KeyFingerprint& fp) {
    return absl::OkStatus();
  }
  // [ha] KEK rotation (docs/ha.md): every replicated key sealed again under
  // the KEK now in kek_file; the number of sessions resealed.
  virtual absl::StatusOr<uint64_t> HaRekek() {
    return absl::FailedPreconditionError("ha.rekek: sluiced runs without [ha]");
  }
  // [ha] role = "standby" (docs/ha.md): takes the heartbeat and the
  // addresses, installs the sessions; the number installed.
  virtual absl::StatusOr<uint64_t> HaPromote() {
    return absl::FailedPreconditionError("ha.promote: sluiced runs without [ha]");
  }
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_OPERATIONS_H_
