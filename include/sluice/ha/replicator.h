// Replication of the active instance's sessions to Redis (docs/ha.md): the
// session manager's observer. Each create, update and delete marks the
// session changed; each control-loop Poll sends what changed (the latest
// state of a session, coalesced), reads Redis's replies, takes the streams'
// checkpoints every [ha] checkpoint_ms and reconnects with backoff. Redis is
// reached through hiredis's asynchronous API on a non-blocking socket that
// Poll drives: a slow or absent Redis grows the backlog and the lag that
// stats reports, and never stops or delays a call.
//
// Control thread only. Keys reach it as SDES text in requests and replies:
// sealed at once, never kept or logged in clear.
#ifndef SLUICE_HA_REPLICATOR_H_
#define SLUICE_HA_REPLICATOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "sluice/control/operations.h"
#include "sluice/control/session_observer.h"
#include "sluice/ha/record.h"
#include "sluice/ha/sealer.h"

struct redisAsyncContext;

namespace sluice::ha {

// What a Redis connection driven by a control-loop Poll waits for on its
// socket (set by hiredis's event hooks; src/ha/redis_address.h).
struct IoWants {
  bool read = false, write = false;
};

// Where a session lives in Redis: a hash with fields "record" and
// "streams" (record.h) at "sluice:<instance>:s:<session>". The active's
// heartbeat: "sluice:<instance>:heartbeat", "<owner> <Unix time in ms>",
// written every [ha] heartbeat_ms to expire heartbeat_ttl_ms later.
std::string SessionKeyPrefix(const std::string& instance);
std::string HeartbeatKey(const std::string& instance);

// A session request's keys sealed into a record, a WebRTC leg's ICE
// passwords too (its DTLS keys come later: Replicator::OnLegKeyed); false
// (nothing kept) when sealing failed.
bool RecordFromCreate(const control::CreateRequest& request, const control::SessionInfo& reply,
                      const Sealer& sealer, SessionRecord& record);

class Replicator : public control::SessionObserver {
 public:
  struct Options {
    std::string redis;     // "unix:/path" or "tcp://host:port"
    std::string password;  // AUTH; empty: none
    std::string instance;
    uint32_t checkpoint_ms = 1000;
    uint32_t heartbeat_ms = 1000, heartbeat_ttl_ms = 3000;
    // Names this process in the heartbeat: one that finds the heartbeat
    // another's (a standby promoted) stops writing to Redis (fenced).
    std::string owner;
  };
  using StreamsFn =
      std::function<std::optional<std::array<control::LegStreams, 2>>(const std::string&)>;
  using ClockFn = std::function<uint64_t()>;  // ms, steady

  Replicator(Options options, Sealer sealer, StreamsFn streams, ClockFn clock = {});
  ~Replicator() override;
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  void OnCreated(const control::CreateRequest& request, const control::SessionInfo& reply) override;
  void OnUpdated(const control::UpdateRequest& request, const control::SessionInfo& reply) override;
  void OnDeleted(const std::string& session) override;
  // Seals the keys a WebRTC leg's handshake exported into its record.
  void OnLegKeyed(const std::string& session, int leg, const std::string& profile,
                  const std::string& rx, const std::string& tx) override;

  // Control loop: connects, sends, reads, checkpoints. Never blocks.
  void Poll();
  // Shutdown: Polls until Redis has everything or timeout_ms passed.
  void Flush(uint64_t timeout_ms);

  control::HaStats Stats() const;
  // KEK rotation: every record's keys unsealed and sealed again under
  // `next` (which should keep the current KEK as its previous, for records
  // Redis still holds under it), then written. All or nothing; the number
  // of sessions resealed.
  absl::StatusOr<uint64_t> Rekek(Sealer next);
  const Sealer& sealer() const { return sealer_; }
  // The heartbeat (docs/ha.md, "Standby"): found another instance's (this
  // one writes nothing more); when Redis last confirmed it ours (steady ms,
  // 0: not yet); a write asked for at the next Poll.
  bool fenced() const { return fenced_; }
  uint64_t heartbeat_confirmed_ms() const { return heartbeat_confirmed_ms_; }
  void HeartbeatNow() { next_heartbeat_ms_ = 0; }
  // The start-up restore's counts, shown in stats.
  control::HaStats& restore_counts() { return counts_; }

  // The ng front end's state of a session's call (docs/ha.md, "ng call
  // state"), asked for at each write of the session and sealed into its
  // record at once (the replicator wipes the text); none: no ng call.
  using NgStateFn = std::function<std::optional<std::string>(const std::string&)>;
  void SetNgState(NgStateFn ng_state) { ng_state_ = std::move(ng_state); }
  // A session's ng state changed without a session operation.
  void NgChanged(const std::string& session);

 private:
  struct Held {
    SessionRecord record;
    StreamsRecord streams;
    bool ng_stale = true;  // record.ng_sealed is to be asked for again
  };
  struct InFlight;  // one command awaiting its reply

  uint64_t Now() const;
  void MarkChanged(const std::string& session, uint64_t since);
  void Connect(uint64_t now);
  void Disconnected(const std::string& why);
  void SendChanged();
  bool Send(const std::string& session, uint64_t since);
  void Checkpoint();
  void SealNg(const std::string& session, Held& held) const;
  // Whether a heartbeat was sent (connected and not fenced).
  bool Heartbeat();
  void MergeStreams(Held& held, const std::array<control::LegStreams, 2>& now);
  void ApplyUpdate(Held& held, const control::UpdateRequest& request,
                   const control::SessionInfo& reply);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnHeartbeat(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);

  Options options_;
  Sealer sealer_;
  StreamsFn streams_;
  ClockFn clock_;
  NgStateFn ng_state_;
  std::string prefix_;
  std::map<std::string, Held> held_;
  // Sessions whose latest state Redis lacks (a write, or a delete when
  // held_ has none), with when it first changed: coalesced by name.
  std::map<std::string, uint64_t> changed_;
  // Commands sent and not yet answered: their first-change times.
  std::map<uint64_t, uint64_t> in_flight_;
  std::set<std::string> sending_;  // sessions with a command in flight
  uint64_t next_command_ = 1;
  redisAsyncContext* ac_ = nullptr;
  bool connected_ = false;
  IoWants io_;  // what the Redis socket waits for
  uint64_t connect_started_ms_ = 0;
  uint64_t next_connect_ms_ = 0;
  uint64_t backoff_ms_ = 100;
  uint64_t next_checkpoint_ms_ = 0;
  uint64_t next_heartbeat_ms_ = 0;
  bool fenced_ = false;  // the heartbeat is another instance's: nothing written
  uint64_t heartbeat_confirmed_ms_ = 0;
  uint64_t writes_paused_until_ms_ = 0;  // after Redis refused a write
  std::string checkpoint_cursor_;
  control::HaStats counts_;
};

}  // namespace sluice::ha

#endif  // SLUICE_HA_REPLICATOR_H_
