#include "sluice/ha/replicator.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "absl/strings/str_cat.h"
#include "redis_address.h"
#include "sluice/log/logger.h"
#include "sluice/memory/wiping_allocator.h"

namespace sluice::ha {
namespace {

// Commands sent and unanswered at most: a slow Redis holds the rest as
// changed sessions (one entry each, coalesced), not as queued commands.
constexpr size_t kMaxInFlight = 256;
// Sessions a Poll checkpoints at most (the rest in the next Polls).
constexpr size_t kChecksPerPoll = 2048;
constexpr uint64_t kConnectTimeoutMs = 3000;
constexpr uint64_t kMaxBackoffMs = 5000;
// A direction keeps at most this many streams (the record codec's bound).
constexpr size_t kMaxStreams = 64;

// What the key of leg `leg`'s direction `dir` is sealed to: the session,
// the leg and the direction, so that a sealed key cannot be moved to
// another session or another place in the same one.
std::string Aad(const std::string& session, int leg, const char* dir) {
  return absl::StrCat(session, "/", leg, "/", dir);
}

// Seals one direction's protection; false when sealing failed.
bool SealSpec(const control::CryptoSpec& spec, const std::optional<std::string>& generated,
              const Sealer& sealer, const std::string& aad, SealedCrypto& out) {
  out = SealedCrypto{};
  switch (spec.kind) {
    case control::CryptoSpec::Kind::kPlain: return true;
    case control::CryptoSpec::Kind::kPassthrough:
      out.kind = SealedCrypto::Kind::kPassthrough;
      return true;
    case control::CryptoSpec::Kind::kSdes:
    case control::CryptoSpec::Kind::kGenerate: break;
  }
  const std::string* text =
      spec.kind == control::CryptoSpec::Kind::kSdes ? &spec.sdes : (generated ? &*generated : nullptr);
  if (text == nullptr) return false;
  absl::StatusOr<std::string> sealed = sealer.Seal(*text, aad);
  if (!sealed.ok()) return false;
  out.kind = SealedCrypto::Kind::kSdes;
  out.sealed = *std::move(sealed);
  return true;
}

bool SealText(const std::string& text, const Sealer& sealer, const std::string& aad,
              std::string& out) {
  absl::StatusOr<std::string> sealed = sealer.Seal(text, aad);
  if (!sealed.ok()) return false;
  out = *std::move(sealed);
  return true;
}

// A WebRTC leg's ICE state: Sluice's credentials as the request gave them
// (a restore's) or as the reply shows them, and the peer's once known.
bool SealIce(const control::IceSpec& in, const std::optional<control::LegInfo::Ice>& shown,
             const Sealer& sealer, const std::string& aad, IceRecord& out) {
  out = IceRecord{};
  const bool restored = !in.local_ufrag.empty();
  if (!restored && (!shown || shown->pwd.empty())) return false;
  out.ufrag = restored ? in.local_ufrag : shown->ufrag;
  if (!SealText(restored ? in.local_pwd : shown->pwd, sealer, aad + "ice", out.pwd_sealed)) {
    return false;
  }
  if (in.ufrag.empty()) return true;
  out.peer_ufrag = in.ufrag;
  return SealText(in.pwd, sealer, aad + "ice-peer", out.peer_pwd_sealed);
}

// A stream the snapshot lacks keeps its checkpoint: a re-key's context not
// yet adopted by its worker has none yet, and a retired stream resumes from
// its own record.
void MergeDirection(std::vector<srtp::StreamState>& kept, const std::vector<srtp::StreamState>& now) {
  for (const srtp::StreamState& s : now) {
    auto it = std::find_if(kept.begin(), kept.end(),
                           [&](const srtp::StreamState& k) { return k.ssrc == s.ssrc; });
    if (it == kept.end()) {
      if (kept.size() < kMaxStreams) kept.push_back(s);
      continue;
    }
    // The stream as the context has it now: lower only when the peer's ROC
    // reset on a re-key was detected (RocOnRekey), which moved it down.
    *it = s;
  }
}

bool SameStream(const srtp::StreamState& a, const srtp::StreamState& b) {
  return a.ssrc == b.ssrc && a.rtp_used == b.rtp_used && a.rtp_top == b.rtp_top &&
         a.rtcp_index == b.rtcp_index;
}

// Compared field by field: a checkpoint pass visits every session, and most
// have not moved since the last (no encoding for those).
bool SameStreams(const std::array<control::LegStreams, 2>& a,
                 const std::array<control::LegStreams, 2>& b) {
  const auto same = [](const std::vector<srtp::StreamState>& x,
                       const std::vector<srtp::StreamState>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(), SameStream);
  };
  for (size_t i = 0; i < 2; ++i) {
    if (!same(a[i].rx, b[i].rx) || !same(a[i].tx, b[i].tx) || a[i].remote != b[i].remote) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string SessionKeyPrefix(const std::string& instance) {
  return absl::StrCat("sluice:", instance, ":s:");
}

std::string HeartbeatKey(const std::string& instance) {
  return absl::StrCat("sluice:", instance, ":heartbeat");
}

bool RecordFromCreate(const control::CreateRequest& request, const control::SessionInfo& reply,
                      const Sealer& sealer, SessionRecord& record) {
  if (request.legs.size() != 2 || reply.legs.size() != 2) return false;
  record = SessionRecord{};
  record.session = request.session;
  record.key_group = request.key_group;
  record.hold = reply.hold;
  for (int i = 0; i < 2; ++i) {
    const control::LegRequest& in = request.legs[static_cast<size_t>(i)];
    const control::LegInfo& info = reply.legs[static_cast<size_t>(i)];
    LegRecord& leg = record.legs[static_cast<size_t>(i)];
    leg.dtls = in.dtls;
    if (in.ice && !SealIce(*in.ice, info.ice, sealer, Aad(request.session, i, ""),
                           leg.ice.emplace())) {
      return false;
    }
    leg.name = in.name;
    leg.interface = in.interface;
    leg.family = info.local.ip.family;
    leg.local_port = info.local.port;
    leg.remote = in.remote;
    leg.strict_source = in.strict_source;
    leg.await_answer = in.await_answer;
    leg.rtcp = in.rtcp;
    leg.roc_on_rekey = in.roc_on_rekey;
    leg.aes192_kdf = in.aes192_kdf;
    if (!SealSpec(in.rx, std::nullopt, sealer, Aad(request.session, i, "rx"), leg.rx) ||
        !SealSpec(in.tx, info.tx_crypto, sealer, Aad(request.session, i, "tx"), leg.tx)) {
      return false;
    }
  }
  return true;
}

// One command awaiting Redis's reply.
struct Replicator::InFlight {
  Replicator* replicator;
  uint64_t id;
  std::string session;
  uint64_t since;
  bool is_delete;
};

Replicator::Replicator(Options options, Sealer sealer, StreamsFn streams, ClockFn clock)
    : options_(std::move(options)),
      sealer_(std::move(sealer)),
      streams_(std::move(streams)),
      clock_(std::move(clock)),
      prefix_(SessionKeyPrefix(options_.instance)) {}

Replicator::~Replicator() {
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;  // callbacks run during the free see it gone
    redisAsyncFree(ac);
  }
}

uint64_t Replicator::Now() const {
  if (clock_) return clock_();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void Replicator::MarkChanged(const std::string& session, uint64_t since) {
  auto [it, inserted] = changed_.emplace(session, since);
  if (!inserted) it->second = std::min(it->second, since);
}

void Replicator::OnCreated(const control::CreateRequest& request,
                           const control::SessionInfo& reply) {
  Held held;
  if (!RecordFromCreate(request, reply, sealer_, held.record)) {
    ++counts_.not_replicated;
    return;
  }
  for (int i = 0; i < 2; ++i) {
    const control::LegRequest& leg = request.legs[static_cast<size_t>(i)];
    held.streams.legs[static_cast<size_t>(i)].rx = leg.rx_streams;  // a restore's, else none
    held.streams.legs[static_cast<size_t>(i)].tx = leg.tx_streams;
    held.streams.legs[static_cast<size_t>(i)].tx_seq_offset = leg.tx_seq_offset;
  }
  held.streams.at_unix_ms = UnixMs();
  held_[request.session] = std::move(held);
  MarkChanged(request.session, Now());
}

void Replicator::OnUpdated(const control::UpdateRequest& request,
                           const control::SessionInfo& reply) {
  auto it = held_.find(request.session);
  if (it == held_.end()) return;  // not replicated (sealing failed)
  ApplyUpdate(it->second, request, reply);
  MarkChanged(request.session, Now());
}

void Replicator::ApplyUpdate(Held& held, const control::UpdateRequest& request,
                             const control::SessionInfo& reply) {
  int i = 0;
  while (i < 2 && held.record.legs[static_cast<size_t>(i)].name != request.leg) ++i;
  if (i == 2 || reply.legs.size() != 2) return;
  LegRecord& leg = held.record.legs[static_cast<size_t>(i)];
  control::LegStreams& streams = held.streams.legs[static_cast<size_t>(i)];
  // New keys, new index space (the ROC may restart): the old checkpoint
  // of that direction no longer applies.
  if (request.rx && SealSpec(*request.rx, std::nullopt, sealer_,
                             Aad(request.session, i, "rx"), leg.rx)) {
    streams.rx.clear();
  }
  if (request.tx && SealSpec(*request.tx, reply.legs[static_cast<size_t>(i)].tx_crypto, sealer_,
                             Aad(request.session, i, "tx"), leg.tx)) {
    streams.tx.clear();
  }
  // A new handshake's keys replace the old ones once it is keyed
  // (OnLegKeyed); until then a restore relays on the old ones.
  if (request.dtls && leg.dtls) {
    const std::string profile = leg.dtls->restored_profile;
    leg.dtls = request.dtls;
    leg.dtls->restored_profile = profile;
  }
  if (request.ice && leg.ice) {
    IceRecord ice;
    if (SealIce(*request.ice, reply.legs[static_cast<size_t>(i)].ice, sealer_,
                Aad(request.session, i, ""), ice)) {
      if (ice.peer_ufrag.empty()) {  // the update kept the peer's credentials
        ice.peer_ufrag = leg.ice->peer_ufrag;
        ice.peer_pwd_sealed = leg.ice->peer_pwd_sealed;
      }
      leg.ice = std::move(ice);
    }
  }
  if (request.remote) leg.remote = request.remote;
  if (request.answer) leg.await_answer = false;
  if (request.roc_on_rekey) leg.roc_on_rekey = *request.roc_on_rekey;
  if (request.hold) held.record.hold = *request.hold;
}

void Replicator::OnLegKeyed(const std::string& session, int leg, const std::string& profile,
                            const std::string& rx, const std::string& tx) {
  auto it = held_.find(session);
  if (it == held_.end() || leg < 0 || leg > 1) return;
  LegRecord& r = it->second.record.legs[static_cast<size_t>(leg)];
  if (!r.dtls) return;
  SealedCrypto sealed_rx{SealedCrypto::Kind::kSdes, {}}, sealed_tx{SealedCrypto::Kind::kSdes, {}};
  if (!SealText(rx, sealer_, Aad(session, leg, "rx"), sealed_rx.sealed) ||
      !SealText(tx, sealer_, Aad(session, leg, "tx"), sealed_tx.sealed)) {
    return;  // the record keeps the keys before (a restore relays on them)
  }
  r.rx = std::move(sealed_rx);
  r.tx = std::move(sealed_tx);
  r.dtls->restored_profile = profile;
  // A new DTLS association is a new SRTP context (ROC 0): the checkpoint
  // of the keys before no longer applies.
  control::LegStreams& streams = it->second.streams.legs[static_cast<size_t>(leg)];
  streams.rx.clear();
  streams.tx.clear();
  MarkChanged(session, Now());
}

void Replicator::OnDeleted(const std::string& session) {
  if (held_.erase(session) == 0) return;
  MarkChanged(session, Now());
}

void Replicator::Poll() {
  const uint64_t now = Now();
  if (ac_ == nullptr && now >= next_connect_ms_) Connect(now);
  // (connect_started_ms_ is this Poll's `now` or earlier: no underflow.)
  if (ac_ != nullptr && !connected_ && now - connect_started_ms_ > kConnectTimeoutMs) {
    redisAsyncContext* ac = ac_;
    Disconnected("connect timed out");
    redisAsyncFree(ac);
  }
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    pollfd p{ac->c.fd, static_cast<short>((io_.read ? POLLIN : 0) | (io_.write ? POLLOUT : 0)),
             0};
    if (p.events != 0 && poll(&p, 1, 0) > 0) {
      if ((p.revents & (POLLIN | POLLERR | POLLHUP)) != 0) redisAsyncHandleRead(ac);
      if (ac_ == ac && (p.revents & POLLOUT) != 0) redisAsyncHandleWrite(ac);
    }
  }
  Checkpoint();
  // The next one heartbeat_ms after one was sent: not after a Poll that
  // found Redis not connected yet, so a (re)connection beats at once.
  if (now >= next_heartbeat_ms_ && Heartbeat()) next_heartbeat_ms_ = now + options_.heartbeat_ms;
  if (connected_ && !fenced_ && now >= writes_paused_until_ms_) SendChanged();
}

void Replicator::Flush(uint64_t timeout_ms) {
  const uint64_t until = Now() + timeout_ms;
  while ((!changed_.empty() || !in_flight_.empty()) && Now() < until) {
    Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Replicator::Connect(uint64_t now) {
  const RedisAddress where = RedisAddress::Parse(options_.redis);
  redisAsyncContext* ac = where.unix_socket
                              ? redisAsyncConnectUnix(where.path_or_host.c_str())
                              : redisAsyncConnect(where.path_or_host.c_str(), where.port);
  connect_started_ms_ = now;
  if (ac == nullptr || ac->err != 0) {
    counts_.last_error = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    Disconnected(counts_.last_error);
    return;
  }
  ac_ = ac;
  ac->data = this;
  AttachIoWants(ac, &io_);
  redisAsyncSetConnectCallback(ac, &Replicator::OnConnect);
  redisAsyncSetDisconnectCallback(ac, &Replicator::OnDisconnect);
  if (!options_.password.empty()) {
    const char* argv[] = {"AUTH", options_.password.data()};
    const size_t len[] = {4, options_.password.size()};
    auto* auth = new InFlight{this, 0, "", 0, false};
    redisAsyncCommandArgv(ac, &Replicator::OnReply, auth, 2, argv, len);
  }
}

void Replicator::Disconnected(const std::string& why) {
  if (ac_ != nullptr) ++counts_.disconnects;
  ac_ = nullptr;
  connected_ = false;
  io_ = IoWants{};
  counts_.last_error = why;
  next_connect_ms_ = Now() + backoff_ms_;
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
}

void Replicator::OnConnect(const redisAsyncContext* ac, int status) {
  auto* r = static_cast<Replicator*>(ac->data);
  if (r == nullptr || r->ac_ != ac) return;
  if (status != REDIS_OK) {
    r->Disconnected(ac->errstr);
    return;
  }
  r->connected_ = true;
  ++r->counts_.connects;
  r->backoff_ms_ = 100;
  // Redis may have lost what it had (restarted without persistence):
  // every session is written again.
  const uint64_t now = r->Now();
  for (const auto& [name, held] : r->held_) r->MarkChanged(name, now);
}

void Replicator::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* r = static_cast<Replicator*>(ac->data);
  if (r == nullptr || r->ac_ != ac) return;
  r->Disconnected(status == REDIS_OK ? "disconnected" : ac->errstr);
}

void Replicator::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<InFlight> f(static_cast<InFlight*>(privdata));
  Replicator* r = f->replicator;
  const auto* rep = static_cast<const redisReply*>(reply);
  const bool failed = rep == nullptr || rep->type == REDIS_REPLY_ERROR;
  if (f->id != 0) {
    r->in_flight_.erase(f->id);
    r->sending_.erase(f->session);
  }
  if (failed) {
    ++r->counts_.write_errors;
    r->counts_.last_error =
        rep != nullptr ? std::string(rep->str, rep->len) : "connection lost before a reply";
    if (f->id != 0) r->MarkChanged(f->session, f->since);  // sent again once connected
    // A Redis that refuses writes (out of memory, read-only replica) is not
    // asked again at once: every write waits a second.
    if (rep != nullptr) r->writes_paused_until_ms_ = r->Now() + 1000;
    return;
  }
  if (f->id == 0) return;  // AUTH or the heartbeat
  ++(f->is_delete ? r->counts_.deletes : r->counts_.writes);
}

// One command per session at a time: a slow Redis sees each session's
// latest state once, not every state it went through.
void Replicator::SendChanged() {
  for (auto it = changed_.begin();
       it != changed_.end() && in_flight_.size() < kMaxInFlight && ac_ != nullptr;) {
    if (sending_.count(it->first) > 0) {
      ++it;
      continue;
    }
    const std::string session = it->first;
    const uint64_t since = it->second;
    it = changed_.erase(it);
    if (!Send(session, since)) {
      MarkChanged(session, since);
      break;
    }
  }
}

bool Replicator::Send(const std::string& session, uint64_t since) {
  const std::string key = prefix_ + session;
  auto held = held_.find(session);
  auto* f = new InFlight{this, next_command_++, session, since, held == held_.end()};
  int rc;
  if (f->is_delete) {
    const char* argv[] = {"DEL", key.data()};
    const size_t len[] = {3, key.size()};
    rc = redisAsyncCommandArgv(ac_, &Replicator::OnReply, f, 2, argv, len);
  } else {
    SealNg(session, held->second);
    const std::string record = EncodeSession(held->second.record);
    const std::string streams = EncodeStreams(held->second.streams);
    const char* argv[] = {"HSET", key.data(), "record", record.data(), "streams", streams.data()};
    const size_t len[] = {4, key.size(), 6, record.size(), 7, streams.size()};
    rc = redisAsyncCommandArgv(ac_, &Replicator::OnReply, f, 6, argv, len);
  }
  if (rc != REDIS_OK) {
    delete f;
    return false;
  }
  in_flight_[f->id] = since;
  sending_.insert(session);
  return true;
}

void Replicator::NgChanged(const std::string& session) {
  auto it = held_.find(session);
  if (it == held_.end()) return;
  it->second.ng_stale = true;
  MarkChanged(session, Now());
}

// Asked for and sealed at the first write after it changed (not at each
// checkpoint's), under the KEK of now: a KEK rotation marks every session's
// stale. Its place is the session's: "<session>/ng" (no key's place, which
// ends in /rx or /tx).
void Replicator::SealNg(const std::string& session, Held& held) const {
  if (!held.ng_stale) return;
  held.ng_stale = false;
  SessionRecord& record = held.record;
  std::optional<std::string> text = ng_state_ ? ng_state_(session) : std::nullopt;
  if (!text) {
    record.ng_sealed.clear();
    return;
  }
  absl::StatusOr<std::string> sealed = sealer_.Seal(*text, absl::StrCat(session, "/ng"));
  memory::WipeString(*text);
  if (sealed.ok()) record.ng_sealed = *std::move(sealed);  // else the last one stays
}

void Replicator::Checkpoint() {
  const uint64_t now = Now();
  if (now < next_checkpoint_ms_ || !streams_) return;
  auto it = held_.lower_bound(checkpoint_cursor_);
  for (size_t n = 0; it != held_.end() && n < kChecksPerPoll; ++it, ++n) {
    // Read before the streams: the restore's bound on what was sent after
    // a checkpoint counts from no later than the snapshot (docs/ha.md).
    const uint64_t wall = UnixMs();
    std::optional<std::array<control::LegStreams, 2>> streams = streams_(it->first);
    if (!streams) continue;
    Held& held = it->second;
    const std::array<control::LegStreams, 2> before = held.streams.legs;
    MergeStreams(held, *streams);
    if (!SameStreams(held.streams.legs, before)) {
      held.streams.at_unix_ms = wall;
      MarkChanged(it->first, now);
      ++counts_.checkpoints;
    }
  }
  if (it == held_.end()) {
    checkpoint_cursor_.clear();
    next_checkpoint_ms_ = now + options_.checkpoint_ms;
  } else {
    checkpoint_cursor_ = it->first;
  }
}

// The active's heartbeat, set only while it is ours or absent (one atomic
// script): a standby that promoted itself took it (SET NX), and an active
// that finds it so stops writing rather than fight over the sessions.
bool Replicator::Heartbeat() {
  if (fenced_ || !connected_ || ac_ == nullptr) return false;
  const std::string key = HeartbeatKey(options_.instance);
  const std::string value = absl::StrCat(UnixMs());
  const std::string ttl = absl::StrCat(options_.heartbeat_ttl_ms);
  const char* argv[] = {"EVAL", kHeartbeatScript, "1", key.data(), options_.owner.data(), value.data(),
                        ttl.data()};
  const size_t len[] = {4, sizeof kHeartbeatScript - 1, 1, key.size(), options_.owner.size(), value.size(),
                        ttl.size()};
  return redisAsyncCommandArgv(ac_, &Replicator::OnHeartbeat, this, 7, argv, len) == REDIS_OK;
}

void Replicator::OnHeartbeat(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* r = static_cast<Replicator*>(privdata);
  const auto* rep = static_cast<const redisReply*>(reply);
  if (r == nullptr || r->ac_ != ac || rep == nullptr) return;
  if (rep->type == REDIS_REPLY_ERROR) {
    ++r->counts_.write_errors;
    r->counts_.last_error = std::string(rep->str, rep->len);
    return;
  }
  if (rep->type != REDIS_REPLY_STRING) {
    r->heartbeat_confirmed_ms_ = r->Now();  // nil: set, ours
    return;
  }
  if (r->fenced_) return;
  const std::string owner(rep->str, rep->len);
  r->fenced_ = true;
  r->counts_.fenced = true;
  r->counts_.last_error = absl::StrCat("heartbeat held by another instance (", owner,
                                       "): no longer writing to Redis");
  log::Event(log::Level::kError, "ha.fenced", {{"heartbeat", owner}});
}

void Replicator::MergeStreams(Held& held, const std::array<control::LegStreams, 2>& now) {
  for (size_t i = 0; i < 2; ++i) {
    MergeDirection(held.streams.legs[i].rx, now[i].rx);
    MergeDirection(held.streams.legs[i].tx, now[i].tx);
    if (now[i].remote) held.streams.legs[i].remote = now[i].remote;
  }
}

namespace {

// Sealed bytes (empty: none) opened under `from` and sealed under `to`.
absl::Status ResealText(std::string& sealed_text, const Sealer& from, const Sealer& to,
                        const std::string& aad) {
  if (sealed_text.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> text = from.Unseal(sealed_text, aad);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> sealed = to.Seal(*text, aad);
  memory::WipeString(*text);
  if (!sealed.ok()) return sealed.status();
  sealed_text = *std::move(sealed);
  return absl::OkStatus();
}

absl::Status Reseal(SealedCrypto& c, const Sealer& from, const Sealer& to, const std::string& aad) {
  if (c.kind != SealedCrypto::Kind::kSdes) return absl::OkStatus();
  return ResealText(c.sealed, from, to, aad);
}

}  // namespace

absl::StatusOr<uint64_t> Replicator::Rekek(Sealer next) {
  std::map<std::string, Held> resealed = held_;
  for (auto& [name, held] : resealed) {
    for (int i = 0; i < 2; ++i) {
      LegRecord& leg = held.record.legs[static_cast<size_t>(i)];
      for (auto [c, dir] : {std::pair{&leg.rx, "rx"}, std::pair{&leg.tx, "tx"}}) {
        if (absl::Status s = Reseal(*c, sealer_, next, Aad(name, i, dir)); !s.ok()) return s;
      }
      if (!leg.ice) continue;
      for (auto [text, dir] : {std::pair{&leg.ice->pwd_sealed, "ice"},
                               std::pair{&leg.ice->peer_pwd_sealed, "ice-peer"}}) {
        if (absl::Status s = ResealText(*text, sealer_, next, Aad(name, i, dir)); !s.ok()) {
          return s;
        }
      }
    }
  }
  held_ = std::move(resealed);
  sealer_ = std::move(next);
  for (auto& [name, held] : held_) held.ng_stale = true;
  const uint64_t now = Now();
  for (const auto& [name, held] : held_) MarkChanged(name, now);
  return held_.size();
}

control::HaStats Replicator::Stats() const {
  control::HaStats s = counts_;
  s.connected = connected_;
  s.sessions = held_.size();
  s.backlog = changed_.size() + in_flight_.size();
  uint64_t oldest = UINT64_MAX;
  for (const auto& [name, since] : changed_) oldest = std::min(oldest, since);
  for (const auto& [id, since] : in_flight_) oldest = std::min(oldest, since);
  const uint64_t now = Now();
  s.lag_ms = oldest == UINT64_MAX || oldest > now ? 0 : now - oldest;
  return s;
}

}  // namespace sluice::ha
