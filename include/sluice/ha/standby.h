// An HA standby (docs/ha.md, "Standby"): keeps a copy of the active
// instance's sessions as Redis holds them, each record checked as a restore
// would check it (decoded, on known interfaces, keys unsealed) and nothing
// installed, and watches the active's heartbeat. A full SCAN at every
// (re)connect, then Redis keyspace notifications (a second connection,
// subscribed) re-read each session that changes. When the heartbeat has
// been absent for [ha] promote_after_ms, Poll says it is time to promote.
//
// Control thread only. Redis is reached through hiredis's asynchronous API
// on non-blocking sockets that Poll drives: it never blocks.
#ifndef SLUICE_HA_STANDBY_H_
#define SLUICE_HA_STANDBY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "sluice/config/config.h"
#include "sluice/control/operations.h"
#include "sluice/ha/replicator.h"
#include "sluice/ha/sealer.h"

struct redisAsyncContext;
struct redisReply;

namespace sluice::ha {

class Standby {
 public:
  using ClockFn = std::function<uint64_t()>;  // ms, steady

  Standby(config::HaConfig config, Sealer sealer,
          std::function<bool(const std::string&)> interface_known, ClockFn clock = {});
  ~Standby();
  Standby(const Standby&) = delete;
  Standby& operator=(const Standby&) = delete;

  // Connects, reads, re-reads what changed, checks the heartbeat. True once
  // the heartbeat has been absent for promote_after_ms (with auto_promote).
  bool Poll();

  control::HaStats Stats() const;
  // Whether each mirrored session's record validates (true) or was refused.
  const std::map<std::string, bool>& mirror() const { return mirror_; }

 private:
  // One Redis connection driven by Poll.
  struct Link {
    redisAsyncContext* ac = nullptr;
    bool connected = false;
    IoWants io;
    uint64_t started_ms = 0;
  };
  struct Pending;  // a command's context for its reply

  uint64_t Now() const;
  bool Connect(Link& link);
  void Drive(Link& link);
  void Drop(Link& link, const std::string& why);
  void Scan(const std::string& cursor);
  void Read(const std::string& key);
  void Watch();
  void CheckHeartbeat(uint64_t now);
  void Command(Link& link, Pending* p, std::initializer_list<std::string> args);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  void Handle(Pending& p, const redisReply* r);
  void OnNotification(const redisReply* r);
  void Scanned(const redisReply* r);
  void Mirror(const std::string& key, const redisReply* r, uint64_t now);

  config::HaConfig config_;
  Sealer sealer_;
  std::function<bool(const std::string&)> interface_known_;
  ClockFn clock_;
  std::string prefix_, heartbeat_key_;
  Link commands_, events_;
  uint64_t next_connect_ms_ = 0, backoff_ms_ = 100;
  uint64_t next_heartbeat_check_ms_ = 0;
  bool heartbeat_pending_ = false;
  std::map<std::string, bool> mirror_;
  uint64_t scan_generation_ = 0;
  std::map<std::string, uint64_t> seen_;  // key -> the scan that last saw it
  bool scanning_ = false;
  bool notifications_ = false;  // keyspace notifications on (else: rescans)
  uint64_t last_update_ms_ = 0, heartbeat_seen_ms_ = 0, heartbeat_absent_since_ms_ = 0;
  bool ever_updated_ = false, ever_seen_ = false;
  control::HaStats counts_;
};

}  // namespace sluice::ha

#endif  // SLUICE_HA_STANDBY_H_
