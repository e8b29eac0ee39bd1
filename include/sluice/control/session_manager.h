// The session manager: carries out the control protocol's operations on the
// data plane. It allocates local ports, parses and generates keys, refuses
// reused keys, builds sessions and publishes them in the flow table, hands
// re-keys to workers and reclaims what they retire.
//
// Control thread only. Every operation either completes or leaves nothing
// behind (no port, no table entry, no key).
#ifndef SLUICE_CONTROL_SESSION_MANAGER_H_
#define SLUICE_CONTROL_SESSION_MANAGER_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/config/config.h"
#include "sluice/control/encryption_audit.h"
#include "sluice/control/key_registry.h"
#include "sluice/control/media_handshakes.h"
#include "sluice/control/operations.h"
#include "sluice/control/session_observer.h"
#include "sluice/control/worker_watch.h"
#include "sluice/packet/address.h"
#include "sluice/packet/rewrite.h"
#include "sluice/session/flow_table.h"
#include "sluice/session/session.h"
#include "sluice/srtp/master_key.h"

namespace sluice::control {

struct InterfaceInfo {
  std::string name;
  uint16_t port_id = 0;
  packet::MacAddress mac{};
  std::optional<packet::Prefix> ipv4;
  std::optional<packet::Prefix> ipv6;
  std::optional<packet::IpAddress> gateway;
  std::optional<packet::IpAddress> gateway6;
  uint16_t vlan = 0;
};

// Where the next hop toward a peer is asked for (ARP/ND), and where answers
// are looked up. Provided by the daemon's slow path; tests may leave it empty.
struct NeighborResolver {
  // Returns the MAC if known; otherwise starts resolving and returns nullopt.
  std::function<std::optional<packet::MacAddress>(uint16_t port_id,
                                                  const packet::IpAddress& next_hop)>
      lookup;
  // The slow path's frames waiting for a next hop (Stats::neighbor_hold).
  std::function<Stats::NeighborHold()> hold_stats;
};

// Per-worker counters as the daemon reads them.
using WorkerStatsFn = std::function<std::vector<WorkerStats>()>;
// Per-port counters as the daemon reads them.
using PortStatsFn = std::function<std::vector<PortStats>()>;

class SessionManager : public Operations {
 public:
  SessionManager(const config::Config& config, std::vector<InterfaceInfo> interfaces,
                 session::FlowTable& table, uint32_t workers, uint64_t tsc_hz,
                 NeighborResolver resolver = {}, WorkerStatsFn worker_stats = {});
  ~SessionManager() override;

  std::string Version() const override;
  uint32_t Workers() const override { return workers_; }
  absl::StatusOr<SessionInfo> Create(const CreateRequest& request) override;
  absl::StatusOr<SessionInfo> Update(const UpdateRequest& request) override;
  absl::StatusOr<SessionInfo> Delete(const std::string& session) override;
  absl::StatusOr<SessionInfo> Get(const std::string& session) override;
  absl::Status CheckKeyFree(const std::string& session, const srtp::KeyFingerprint& fp) override;
  ListResult List(uint64_t offset, uint64_t limit) override;
  Stats GetStats() override;

  // Control loop: frees contexts workers retired after re-keys, fills in
  // next hops that the resolver has learned since, reclaims deleted
  // sessions whose grace period is over, and watches the workers for
  // stalls. Never waits for a worker.
  void Tick();

  // Deletes every session (shutdown, once the workers have stopped): keys
  // wiped. Waits at most kShutdownGrace for readers still online; a reader
  // still registered after that is not running (a worker leaves the table
  // when it stops), and the memory is freed.
  void Clear();

  size_t session_count() const { return sessions_.size(); }
  // Deleted sessions whose memory waits for a grace period.
  size_t reclaiming_count() const { return reclaiming_.size(); }
  const WorkerWatch& worker_watch() const { return watch_; }

  // Where stats gets the ports' counters (none until set).
  void SetPortStats(PortStatsFn port_stats) { port_stats_ = std::move(port_stats); }
  // Control loop, from Tick at most once a second: finds the keys past
  // [media] key_limit_warn_percent from the counts the workers keep, logs
  // each once, and keeps the list stats returns.
  void CheckKeyLimits();

  // Timeouts ([media] timeout_s, silent_timeout_s, final_timeout_s). Each
  // Tick looks at up to kExpiryChecksPerTick sessions, in turn: it samples
  // each direction's relayed-packet counter (no work on the hot path),
  // notes when it last moved, and deletes what has timed out through Delete
  // (counted in stats, logged with the session's name, then on_expired).
  static constexpr size_t kExpiryChecksPerTick = 256;
  enum class TimeoutReason { kTimeout, kSilentTimeout, kFinalTimeout };
  static std::string_view TimeoutName(TimeoutReason reason);
  // Told the name of each session a timeout deleted (the ng handler).
  void SetOnExpired(std::function<void(const std::string&)> on_expired) {
    on_expired_ = std::move(on_expired);
  }
  // The clock for timeouts and port rest, in ms (tests); default steady_clock.
  void SetClock(std::function<uint64_t()> now_ms) { clock_ = std::move(now_ms); }

  // Told of every create, update and delete that succeeds (replication);
  // none until set. Not owned.
  void SetObserver(SessionObserver* observer) { observer_ = observer; }
  // Where stats gets its `ha` object (none until set).
  void SetHaStats(std::function<HaStats()> ha_stats) { ha_stats_ = std::move(ha_stats); }
  // What ha.rekek does (none until set: refused).
  void SetHaRekek(std::function<absl::StatusOr<uint64_t>()> rekek) { ha_rekek_ = std::move(rekek); }
  absl::StatusOr<uint64_t> HaRekek() override {
    return ha_rekek_ ? ha_rekek_() : Operations::HaRekek();
  }
  // An HA standby refuses every create with this message (it relays
  // nothing until promoted); empty: creates are served.
  void SetStandbyRefusal(std::string message) { standby_refusal_ = std::move(message); }
  // What ha.promote does (none until set: refused).
  void SetHaPromote(std::function<absl::StatusOr<uint64_t>()> promote) {
    ha_promote_ = std::move(promote);
  }
  absl::StatusOr<uint64_t> HaPromote() override {
    return ha_promote_ ? ha_promote_() : Operations::HaPromote();
  }
  // Both legs' streams (their ROC and indices) and peers now, for a
  // checkpoint; none when the session does not exist.
  std::optional<std::array<LegStreams, 2>> Streams(const std::string& session) const;

  // WebRTC legs (a leg with dtls or ice) run their handshakes here; without
  // it they are refused. Not owned; outlives the manager's sessions.
  void SetMediaHandshakes(MediaHandshakes* handshakes) { handshakes_ = handshakes; }
  // A handshake's outcome, from the control loop (session_handshakes.cc):
  // ICE's selected peer becomes the leg's remote; DTLS keys are installed
  // as a re-key of both directions and the leg stops waiting for them; a
  // lost consent stops the session's media until the peer checks again.
  // Events of a session or handshake that is gone are ignored.
  void OnHandshakeEvent(HandshakeEvent event);

 private:
  // An interface's even RTP ports: those that may be handed out, in no
  // order (one is drawn at random), and those freed lately, oldest first,
  // each with when it was freed (ms), until it has rested.
  struct PortPool {
    std::vector<uint16_t> ready;
    std::deque<std::pair<uint16_t, uint64_t>> resting;
  };
  struct KeyInUse {
    KeyInUse(const srtp::MasterKey& key, const srtp::KeyFingerprint& fp)
        : suite(key.suite), mki(key.mki), mki_len(key.mki_len), fingerprint(fp) {}
    crypto::Suite suite;
    std::array<uint8_t, srtp::kMaxMkiLen> mki;
    uint8_t mki_len;
    srtp::KeyFingerprint fingerprint;
  };
  // A WebRTC leg's handshakes. The generations: events older than
  // first_generation belong to another leg; DTLS events other than
  // dtls_generation to a replaced handshake.
  struct HandshakeState {
    bool keyed = false;         // a handshake's keys are installed
    bool consent_lost = false;  // media stopped until the peer checks again
    uint64_t first_generation = 0;
    uint64_t dtls_generation = 0;
    // The handshake whose keys are installed, or were refused (and why).
    uint64_t keys_generation = 0;
    uint64_t refused_generation = 0;
    std::string refused_reason;
  };
  struct LegState {
    std::string name;
    std::string interface;
    RtcpMode rtcp = RtcpMode::kSeparate;
    std::string_view rx_suite = "plain";  // static names (SuiteLabel)
    std::string_view tx_suite = "plain";
    // The keys in use, described (the master keys themselves live on only
    // as the contexts' prepared keys).
    std::optional<KeyInUse> rx_key;
    std::optional<KeyInUse> tx_key;
    bool tx_unencrypted_srtcp = false;
    RocOnRekey roc_on_rekey = RocOnRekey::kAuto;
    crypto::Aes192Kdf aes192_kdf = crypto::Aes192Kdf::kRfc6188;  // every context of the leg
    uint16_t tx_seq_offset = 0;  // every tx context of the leg (LegRequest)
    // Directions already logged as past the key warning: bit 0 rx, bit 1
    // tx; cleared by a re-key of that direction.
    uint8_t key_warned = 0;
    // WebRTC: keys from a DTLS handshake, the peer from ICE checks; a leg
    // with either has its handshakes' state (most legs have neither).
    bool dtls = false;
    bool ice = false;
    std::unique_ptr<HandshakeState> handshake;
  };
  struct Entry {
    uint64_t id = 0;
    // Whose keys these are in the key registry: the key group's first
    // session's id, or this session's own.
    uint64_t key_owner = 0;
    std::string key_group;
    std::unique_ptr<session::Session> session;
    LegState legs[2];
    // Every key this session has seen, for refusing reuse.
    std::vector<srtp::KeyFingerprint> used_keys;
    bool next_hops_pending = false;
    // For timeouts (control thread): each direction's relayed count when
    // last sampled and when it last moved, since when the clocks run.
    struct Activity {
      uint64_t created_ms = 0;
      uint64_t since_ms = 0;      // the answer or the latest update
      uint64_t moved_ms[2] = {0, 0};
      uint64_t relayed[2] = {0, 0};
      bool started = false;       // answered, or a packet was relayed
      bool hold = false;          // on hold: silent_timeout_s, not timeout_s (UpdateRequest::hold)
    } activity;
  };

  struct KeyChange;

  // Create and Update as the operations do them; Create and Update count
  // what they give (stats: sessions created, key_reuse refusals).
  absl::StatusOr<SessionInfo> CreateSession(const CreateRequest& request);
  absl::StatusOr<SessionInfo> UpdateSession(const UpdateRequest& request);
  absl::Status CountRefusal(const absl::Status& status);
  // [media] require_encryption: refuses (and logs) a create, or an update
  // of its keys, that leaves the call below it; logs a created call with a
  // leg below encrypted (encryption_audit.h).
  absl::Status CheckEncryption(const CreateRequest& request);
  absl::Status CheckEncryption(const UpdateRequest& request);
  absl::Status RequireEncryption(const std::string& session,
                                 const std::array<Encryption, 2>& levels);
  void LogUnencrypted(const SessionInfo& created) const;
  // Live legs by keying and suite, sessions by encryption (stats).
  void CountLegs(Stats& stats) const;
  // A session's weaker leg (encryption_audit.h).
  static Encryption CallEncryption(const Entry& entry);

  static absl::Status CheckUpdate(const LegState& state, const UpdateRequest& request);
  // session_handshakes.cc: the WebRTC side of create, update and delete.
  absl::Status CheckHandshakeLeg(const LegRequest& leg, const std::string& field) const;
  absl::Status AddHandshakes(const std::string& name, const CreateRequest& request, Entry& entry,
                             const session::LegSpec specs[2]);
  absl::Status UpdateHandshakes(const std::string& name, Entry& entry, int leg,
                                const UpdateRequest& request);
  void RemoveHandshake(const LegState& leg, const packet::Endpoint& local);
  void RemoveHandshakes(Entry& entry);
  void DescribeHandshakes(const Entry& entry, int leg, LegInfo& info) const;
  static void HoldKeyedUntilInstalled(const HandshakeState& state, LegInfo::Dtls& dtls);
  void InstallHandshakeKeys(const std::string& name, Entry& entry, int leg, HandshakeEvent& event);
  // The observer told of a leg keyed, with its keys as SDES values.
  void TellKeyed(const std::string& name, int leg, const srtp::MasterKey& rx,
                 const srtp::MasterKey& tx);
  // A deleted session: out of the flow table, its memory and keys freed
  // (and its ports released) once the grace period `token` is over.
  struct Reclaiming {
    uint64_t token = 0;
    std::unique_ptr<session::Session> session;
    std::string interfaces[2];
  };
  static constexpr std::chrono::milliseconds kShutdownGrace{1000};

  // Frees the deleted sessions whose grace period is over, oldest first.
  void Reclaim();
  // The watch's view of each worker, into stats (a worker the callback did
  // not list is added by id).
  void AddWorkerWatch(std::vector<WorkerStats>& workers) const;

  // The process-wide reuse check: refuses `fps` (naming `field`) when one is
  // used by another session or was within [security] key_reuse_window_s.
  absl::Status AdmitAcrossSessions(const std::vector<srtp::KeyFingerprint>& fps, uint64_t owner,
                                   const std::string& field);

  // Create, in order: check the request, each leg's interface and keys, the
  // ports, the session published in the flow table.
  absl::Status CheckCreate(const CreateRequest& request) const;
  absl::Status PrepareLeg(int i, const LegRequest& leg, Entry& entry, session::LegSpec& spec,
                          std::optional<std::string>* generated);
  // Both or neither: a failure releases what it took.
  absl::Status AllocateLegPorts(const Entry& entry, const CreateRequest& request,
                                session::LegSpec specs[2]);
  absl::Status StartSession(Entry& entry, const session::LegSpec specs[2]);

  // Update, in order: find the leg, plan each direction's key change
  // (refusing reuse), build the new contexts, hand them over.
  static absl::StatusOr<int> FindLeg(const Entry& entry, const UpdateRequest& request);
  absl::Status PlanKeyChange(const CryptoSpec& spec, const std::string& field,
                             const std::optional<KeyInUse>& current,
                             std::optional<std::string>* generated, uint64_t owner,
                             std::vector<srtp::KeyFingerprint>& seen, KeyChange& change);
  static bool RepeatsKeyInUse(const std::vector<srtp::MasterKey>& next,
                              const std::vector<srtp::KeyFingerprint>& next_fp,
                              const std::optional<KeyInUse>& current);
  absl::Status BuildRxContext(const Entry& entry, int leg, KeyChange& rx) const;
  absl::Status BuildTxContext(const LegState& state, KeyChange& tx, srtp::RocOnRekey rule) const;
  // The send side's ROC rule for an update of `leg` (RocOnRekey).
  srtp::RocOnRekey TxRocRule(const Entry& entry, int leg, const UpdateRequest& request) const;
  static void HandOverKeys(Entry& entry, int leg, const UpdateRequest& request, KeyChange& rx,
                           KeyChange& tx);

  absl::StatusOr<uint16_t> AllocatePort(const std::string& interface);
  // A restored leg's own port, if it is free.
  absl::StatusOr<uint16_t> TakePort(const std::string& interface, uint16_t port);
  void ReleasePort(const std::string& interface, uint16_t port);
  const InterfaceInfo* FindInterface(const std::string& name) const;
  uint64_t NowMs() const;
  SessionInfo Describe(const std::string& name, const Entry& entry,
                       const std::optional<std::string> tx_crypto[2]) const;
  // Builds the keys a crypto spec asks for: parsed SDES, or generated (then
  // *generated gets the SDES value to return).
  absl::StatusOr<std::vector<srtp::MasterKey>> KeysFor(const CryptoSpec& spec,
                                                       const std::string& field,
                                                       bool* unencrypted_srtcp,
                                                       std::optional<std::string>* generated);
  srtp::ContextOptions ContextOptionsFor() const;
  void ResolveNextHops(Entry& entry);
  // How far leg's rx (or tx) key has gone toward its limit, in percent;
  // none for plain.
  static std::optional<uint32_t> KeyUsedPercent(const Entry& entry, int leg, bool rx);
  void CheckLegKeys(const std::string& name, Entry& entry, int leg);
  // Timeouts: the next sessions in turn, one session's verdict, its delete.
  void ExpireSessions();
  std::optional<TimeoutReason> Expired(Entry& entry, uint64_t now) const;
  void DeleteExpired(const std::string& name, TimeoutReason reason);

  config::Config config_;
  std::vector<InterfaceInfo> interfaces_;
  std::map<std::string, PortPool> ports_;  // by interface name
  session::FlowTable& table_;
  uint32_t workers_;
  uint64_t tsc_hz_;
  NeighborResolver resolver_;
  MediaHandshakes* handshakes_ = nullptr;
  Stats::Handshakes handshake_stats_;
  uint64_t next_generation_ = 1;
  WorkerStatsFn worker_stats_;
  PortStatsFn port_stats_;
  uint64_t next_id_ = 1;
  uint64_t sessions_created_ = 0;
  uint64_t sessions_deleted_ = 0;
  uint64_t key_reuse_refusals_ = 0;
  uint64_t encryption_refusals_ = 0;
  std::map<std::string, Entry> sessions_;  // ordered, for stable list paging
  // Sessions with work for Tick (a re-key in flight, a next hop to resolve),
  // so Tick costs nothing per idle session.
  std::set<Entry*> pending_;
  // Deleted sessions in the order of their tokens. With sessions_ it counts
  // against max_sessions, which bounds it.
  std::deque<Reclaiming> reclaiming_;
  WorkerWatch watch_;
  // Fingerprints of the keys every session uses or used lately.
  KeyRegistry key_registry_;
  // Key groups with live sessions: the group's owner in the registry and
  // how many sessions it has.
  struct KeyGroup {
    uint64_t owner = 0;
    uint32_t sessions = 0;
  };
  std::map<std::string, KeyGroup> key_groups_;
  // The last CheckKeyLimits pass: when, its findings.
  uint64_t key_check_ms_ = 0;
  uint64_t keys_near_limit_ = 0;
  std::vector<RekeyNeeded> rekey_needed_;
  // Timeouts: where the next pass starts (a name; empty: the first), the
  // counts by reason, the log and hook.
  std::string expiry_cursor_;
  Stats::TimedOut timed_out_;
  std::function<void(const std::string&)> on_expired_;
  std::function<uint64_t()> clock_;
  SessionObserver* observer_ = nullptr;
  std::function<HaStats()> ha_stats_;
  std::function<absl::StatusOr<uint64_t>()> ha_rekek_;
  std::function<absl::StatusOr<uint64_t>()> ha_promote_;
  std::string standby_refusal_;
};

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_SESSION_MANAGER_H_
