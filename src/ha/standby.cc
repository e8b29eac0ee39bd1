#include "sluice/ha/standby.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "redis_address.h"
#include "sluice/ha/replicator.h"
#include "sluice/ha/restore.h"
#include "sluice/log/logger.h"

namespace sluice::ha {
namespace {

constexpr uint64_t kConnectTimeoutMs = 3000;
constexpr uint64_t kMaxBackoffMs = 5000;
// Without keyspace notifications (CONFIG refused), a full scan this often.
constexpr uint64_t kRescanMs = 1000;
// The keyspace events the mirror follows: K (the keyspace channel), h (HSET),
// g (DEL and other generic commands), x (expired), e (evicted). Redis's "A"
// stands for every class but K and E.
constexpr char kEvents[] = "Khgxe";

// Milliseconds from `then` to `now`; 0 for a `then` read after `now` (a reply
// handled within the Poll that read `now`, on a clock that moved meanwhile).
uint64_t Since(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

std::string Missing(const std::string& flags) {
  std::string missing;
  for (const char c : std::string_view(kEvents)) {
    const bool in_a = c != 'K' && absl::StrContains(flags, 'A');
    if (!in_a && !absl::StrContains(flags, c)) missing.push_back(c);
  }
  return missing;
}

std::string Str(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string(r->str, r->len)
             : std::string();
}

}  // namespace

// A command's context for its reply; the subscription's lives as long as
// the Standby (its callback runs for every notification).
struct Standby::Pending {
  enum class Kind { kIgnore, kConfigGet, kConfigSet, kScan, kRead, kHeartbeat, kSubscribe };
  Kind kind = Kind::kIgnore;
  std::string key;  // kRead: the session's key
};

Standby::Standby(config::HaConfig config, Sealer sealer,
                 std::function<bool(const std::string&)> interface_known, ClockFn clock)
    : config_(std::move(config)),
      sealer_(std::move(sealer)),
      interface_known_(std::move(interface_known)),
      clock_(std::move(clock)),
      prefix_(SessionKeyPrefix(config_.instance)),
      heartbeat_key_(HeartbeatKey(config_.instance)) {
  counts_.role = "standby";
}

Standby::~Standby() {
  for (Link* link : {&commands_, &events_}) {
    redisAsyncContext* ac = link->ac;
    link->ac = nullptr;  // callbacks run during the free see it gone
    if (ac != nullptr) redisAsyncFree(ac);
  }
}

uint64_t Standby::Now() const {
  if (clock_) return clock_();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool Standby::Poll() {
  const uint64_t now = Now();
  const bool down = commands_.ac == nullptr || events_.ac == nullptr;
  if (down && now >= next_connect_ms_) {
    // Both connections or neither: a reconnect is always followed by a full
    // scan, so no change made while one was down is missed.
    for (Link* link : {&commands_, &events_}) {
      redisAsyncContext* ac = link->ac;
      *link = Link{};
      if (ac != nullptr) redisAsyncFree(ac);
    }
    if (!Connect(commands_) || !Connect(events_)) {
      for (Link* link : {&commands_, &events_}) {
        redisAsyncContext* ac = link->ac;
        Drop(*link, counts_.last_error);
        if (ac != nullptr) redisAsyncFree(ac);
      }
    }
  }
  for (Link* link : {&commands_, &events_}) {
    if (link->ac != nullptr && !link->connected && Since(now, link->started_ms) > kConnectTimeoutMs) {
      redisAsyncContext* ac = link->ac;
      Drop(*link, "connect timed out");
      redisAsyncFree(ac);
    }
    Drive(*link);
  }
  if (!commands_.connected) return false;
  CheckHeartbeat(now);
  if (!notifications_ && !scanning_ && Since(now, last_update_ms_) >= kRescanMs) Scan("0");
  // The heartbeat's reply was handled (and timed) after `now` was read: the
  // absence is measured on a fresh reading.
  const uint64_t checked = Now();
  if (!config_.auto_promote || heartbeat_absent_since_ms_ == 0 ||
      Since(checked, heartbeat_absent_since_ms_) < config_.promote_after_ms) {
    return false;
  }
  heartbeat_absent_since_ms_ = checked;  // asked again after promote_after_ms if not promoted
  return true;
}

void Standby::CheckHeartbeat(uint64_t now) {
  if (heartbeat_pending_ || now < next_heartbeat_check_ms_) return;
  next_heartbeat_check_ms_ = now + std::max<uint64_t>(50, config_.heartbeat_ms / 2);
  heartbeat_pending_ = true;
  Command(commands_, new Pending{Pending::Kind::kHeartbeat, ""}, {"GET", heartbeat_key_});
}

bool Standby::Connect(Link& link) {
  const RedisAddress where = RedisAddress::Parse(config_.redis);
  redisAsyncContext* ac = where.unix_socket
                              ? redisAsyncConnectUnix(where.path_or_host.c_str())
                              : redisAsyncConnect(where.path_or_host.c_str(), where.port);
  if (ac == nullptr || ac->err != 0) {
    counts_.last_error = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    return false;
  }
  link.ac = ac;
  link.started_ms = Now();
  ac->data = this;
  AttachIoWants(ac, &link.io);
  redisAsyncSetConnectCallback(ac, &Standby::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &Standby::OnDisconnect);
  if (!config_.password.empty()) Command(link, new Pending{}, {"AUTH", config_.password});
  return true;
}

void Standby::Drive(Link& link) {
  redisAsyncContext* ac = link.ac;
  if (ac == nullptr) return;
  pollfd p{ac->c.fd, static_cast<short>((link.io.read ? POLLIN : 0) | (link.io.write ? POLLOUT : 0)),
           0};
  if (p.events == 0 || poll(&p, 1, 0) <= 0) return;
  if ((p.revents & (POLLIN | POLLERR | POLLHUP)) != 0) redisAsyncHandleRead(ac);
  if (link.ac == ac && (p.revents & POLLOUT) != 0) redisAsyncHandleWrite(ac);
}

// The link is gone (hiredis frees it, or the caller does): reconnect later.
// What was absent is unknown while Redis is away: no promotion on it.
void Standby::Drop(Link& link, const std::string& why) {
  if (link.connected) ++counts_.disconnects;
  link = Link{};
  counts_.last_error = why;
  scanning_ = heartbeat_pending_ = notifications_ = false;
  heartbeat_absent_since_ms_ = 0;
  next_connect_ms_ = Now() + backoff_ms_;
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
}

void Standby::Command(Link& link, Pending* p, std::initializer_list<std::string> args) {
  std::vector<const char*> argv;
  std::vector<size_t> len;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    len.push_back(a.size());
  }
  if (link.ac == nullptr ||
      redisAsyncCommandArgv(link.ac, &Standby::OnReply, p, static_cast<int>(argv.size()),
                            argv.data(), len.data()) != REDIS_OK) {
    if (p->kind != Pending::Kind::kSubscribe) delete p;
  }
}

void Standby::OnConnect(const redisAsyncContext* ac, int status) {
  auto* s = static_cast<Standby*>(ac->data);
  Link* link = s->commands_.ac == ac ? &s->commands_ : s->events_.ac == ac ? &s->events_ : nullptr;
  if (link == nullptr) return;
  if (status != REDIS_OK) {
    s->Drop(*link, ac->errstr);
    return;
  }
  link->connected = true;
  if (link == &s->events_) {
    static Pending subscription{Pending::Kind::kSubscribe, ""};
    s->Command(*link, &subscription,
               {"PSUBSCRIBE", absl::StrCat("__keyspace@*__:", s->prefix_, "*")});
    return;
  }
  ++s->counts_.connects;
  s->backoff_ms_ = 100;
  s->Command(*link, new Pending{Pending::Kind::kConfigGet, ""},
             {"CONFIG", "GET", "notify-keyspace-events"});
  s->Scan("0");
}

void Standby::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* s = static_cast<Standby*>(ac->data);
  Link* link = s->commands_.ac == ac ? &s->commands_ : s->events_.ac == ac ? &s->events_ : nullptr;
  if (link != nullptr) s->Drop(*link, status == REDIS_OK ? "disconnected" : ac->errstr);
}

void Standby::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  std::unique_ptr<Pending> owned(p->kind == Pending::Kind::kSubscribe ? nullptr : p);
  auto* s = static_cast<Standby*>(ac->data);
  if (s == nullptr || (s->commands_.ac != ac && s->events_.ac != ac)) return;
  const auto* r = static_cast<const redisReply*>(reply);
  if (p->kind == Pending::Kind::kHeartbeat) s->heartbeat_pending_ = false;
  if (r == nullptr) return;
  if (r->type == REDIS_REPLY_ERROR && p->kind != Pending::Kind::kRead) {
    s->counts_.last_error = std::string(r->str, r->len);
    if (p->kind == Pending::Kind::kConfigGet || p->kind == Pending::Kind::kConfigSet) {
      s->notifications_ = false;  // rescans instead
      log::Event(log::Level::kWarning, "ha.standby_rescanning", {{"reason", s->counts_.last_error}});
    }
    return;
  }
  s->Handle(*p, r);
}

void Standby::Handle(Pending& p, const redisReply* r) {
  const uint64_t now = Now();
  switch (p.kind) {
    case Pending::Kind::kIgnore: return;
    case Pending::Kind::kSubscribe: OnNotification(r); return;
    case Pending::Kind::kHeartbeat:
      if (r->type == REDIS_REPLY_STRING) {
        heartbeat_seen_ms_ = now;
        ever_seen_ = true;
        heartbeat_absent_since_ms_ = 0;
      } else if (heartbeat_absent_since_ms_ == 0) {
        heartbeat_absent_since_ms_ = now;
      }
      return;
    case Pending::Kind::kConfigGet: {
      const std::string flags = r->type == REDIS_REPLY_ARRAY && r->elements == 2
                                    ? Str(r->element[1]) : std::string();
      const std::string missing = Missing(flags);
      if (missing.empty()) {
        notifications_ = true;
        return;
      }
      Command(commands_, new Pending{Pending::Kind::kConfigSet, ""},
              {"CONFIG", "SET", "notify-keyspace-events", flags + missing});
      return;
    }
    case Pending::Kind::kConfigSet: notifications_ = true; return;
    case Pending::Kind::kScan: Scanned(r); return;
    case Pending::Kind::kRead: break;
  }
  Mirror(p.key, r, now);
}

// A session's hash, checked as a restore checks it.
void Standby::Mirror(const std::string& key, const redisReply* r, uint64_t now) {
  std::optional<std::string> record, streams;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
    mirror_.erase(key);  // deleted meanwhile
    seen_.erase(key);
  } else {
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
      const std::string name = Str(r->element[i]);
      if (name == "record") record = Str(r->element[i + 1]);
      if (name == "streams") streams = Str(r->element[i + 1]);
    }
    absl::StatusOr<control::CreateRequest> checked =
        CheckRecord(key, record, streams, config_, sealer_, interface_known_, UnixMs());
    const bool ok = checked.ok();
    auto [it, inserted] = mirror_.try_emplace(key, ok);
    if (!ok && (inserted || it->second)) {
      log::Event(log::Level::kWarning, "ha.mirror_refused",
                 {{"record", key}, {"reason", checked.status().message()}});
    }
    it->second = ok;
  }
  last_update_ms_ = now;
  ever_updated_ = true;
}

// A page of the full scan: each key listed is read.
void Standby::Scanned(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    scanning_ = false;
    return;
  }
  for (size_t i = 0; i < r->element[1]->elements; ++i) {
    const std::string key = Str(r->element[1]->element[i]);
    seen_[key] = scan_generation_;
    Read(key);
  }
  const std::string cursor = Str(r->element[0]);
  if (cursor != "0") {
    Scan(cursor);
    return;
  }
  // What the scan did not list is gone (a notification missed while
  // disconnected, say).
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (it->second == scan_generation_) {
      ++it;
      continue;
    }
    mirror_.erase(it->first);
    it = seen_.erase(it);
  }
  scanning_ = false;
  last_update_ms_ = Now();
  ever_updated_ = true;
}

void Standby::OnNotification(const redisReply* r) {
  // ["pmessage", pattern, "__keyspace@<db>__:<key>", event]
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || Str(r->element[0]) != "pmessage") return;
  const std::string channel = Str(r->element[2]);
  const size_t colon = channel.find(':');
  if (colon == std::string::npos) return;
  const std::string key = channel.substr(colon + 1);
  const std::string event = Str(r->element[3]);
  if (event == "del" || event == "expired" || event == "evicted" || event == "rename_from") {
    mirror_.erase(key);
    seen_.erase(key);
    last_update_ms_ = Now();
    return;
  }
  seen_[key] = scan_generation_;
  Read(key);
}

void Standby::Scan(const std::string& cursor) {
  if (cursor == "0") ++scan_generation_;
  scanning_ = true;
  Command(commands_, new Pending{Pending::Kind::kScan, ""},
          {"SCAN", cursor, "MATCH", prefix_ + "*", "COUNT", "1000"});
}

void Standby::Read(const std::string& key) {
  Command(commands_, new Pending{Pending::Kind::kRead, key}, {"HGETALL", key});
}

control::HaStats Standby::Stats() const {
  control::HaStats s = counts_;
  s.connected = commands_.connected && events_.connected;
  s.sessions = mirror_.size();
  s.mirrored = static_cast<uint64_t>(
      std::count_if(mirror_.begin(), mirror_.end(), [](const auto& e) { return e.second; }));
  s.mirror_refused = s.sessions - s.mirrored;
  const uint64_t now = Now();
  s.last_update_age_ms = ever_updated_ ? static_cast<int64_t>(Since(now, last_update_ms_)) : -1;
  s.heartbeat_age_ms = ever_seen_ ? static_cast<int64_t>(Since(now, heartbeat_seen_ms_)) : -1;
  return s;
}

}  // namespace sluice::ha
