#include "sluice/control/session_manager.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <thread>

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "sluice/control/encryption_audit.h"
#include "absl/strings/str_cat.h"
#include "sluice/log/logger.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/srtp/sdes.h"
#include "sluice/version.h"

namespace sluice::control {
namespace {

// A static name (the suite table's, or a literal): sessions keep the view.
std::string_view SuiteLabel(const std::vector<srtp::MasterKey>& keys, const CryptoSpec& spec) {
  if (spec.kind == CryptoSpec::Kind::kPassthrough) return "passthrough";
  return keys.empty() ? "plain" : crypto::SuiteName(keys[0].suite);
}

// SRTP pass-through relays packets untouched, which is only meaningful when
// both ends of a direction ask for it: what leg i receives leaves leg 1 - i.
absl::Status CheckPassthrough(const CryptoSpec& rx, const CryptoSpec& other_tx, int i) {
  const bool in = rx.kind == CryptoSpec::Kind::kPassthrough;
  const bool out = other_tx.kind == CryptoSpec::Kind::kPassthrough;
  if (in == out) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "legs[", in ? i : 1 - i, in ? "].rx" : "].tx",
      ": passthrough relays SRTP without keys, so it needs legs[", in ? 1 - i : i,
      in ? "].tx" : "].rx", " to be passthrough too"));
}

absl::Status KeyReuse(const std::string& field) {
  return absl::FailedPreconditionError(absl::StrCat(
      "key_reuse: ", field,
      " repeats a master key already used in this session (a reused key is a two-time pad)"));
}

std::vector<srtp::KeyFingerprint> Fingerprints(const std::vector<srtp::MasterKey>& keys) {
  std::vector<srtp::KeyFingerprint> out;
  out.reserve(keys.size());
  for (const srtp::MasterKey& k : keys) out.emplace_back(k);
  return out;
}

// Refuses `keys` if one repeats a key of `seen` (naming the field), else
// adds them to it.
absl::Status AdmitFresh(const std::vector<srtp::KeyFingerprint>& keys,
                        std::vector<srtp::KeyFingerprint>& seen, const std::string& field) {
  for (const srtp::KeyFingerprint& k : keys) {
    for (const srtp::KeyFingerprint& s : seen) {
      if (k.Matches(s)) return KeyReuse(field);
    }
  }
  seen.insert(seen.end(), keys.begin(), keys.end());
  return absl::OkStatus();
}

absl::Status KeyUsedElsewhere(const std::string& field, uint64_t window_s) {
  return absl::FailedPreconditionError(absl::StrCat(
      "key_reuse: ", field,
      " repeats a master key that another session uses or used in the last ", window_s,
      " s ([security] key_reuse_window_s; a reused key is a two-time pad)"));
}

// Entries of the process-wide key registry: every key of the most sessions
// at once with room for re-keys, and at least a few thousand.
size_t KeyRegistryCapacity(const config::Config& config) {
  return std::max<size_t>(4096, size_t{8} * config.limits.max_sessions);
}

}  // namespace

// One direction of a leg as an update changes it.
struct SessionManager::KeyChange {
  bool requested = false;             // the direction changes: new keys, or plain
  std::vector<srtp::MasterKey> keys;  // empty: plain
  std::vector<srtp::KeyFingerprint> fingerprints;
  bool unencrypted_srtcp = false;
  std::unique_ptr<srtp::Context> context;  // built from keys before anything changes
};

SessionManager::SessionManager(const config::Config& config,
                               std::vector<InterfaceInfo> interfaces, session::FlowTable& table,
                               uint32_t workers, uint64_t tsc_hz, NeighborResolver resolver,
                               WorkerStatsFn worker_stats)
    : config_(config),
      interfaces_(std::move(interfaces)),
      table_(table),
      workers_(std::max<uint32_t>(workers, 1)),
      tsc_hz_(tsc_hz),
      resolver_(std::move(resolver)),
      worker_stats_(std::move(worker_stats)),
      watch_(table, workers_, config.workers.stall_ms),
      key_registry_(uint64_t{config.security.key_reuse_window_s} * 1000,
                    KeyRegistryCapacity(config)) {
  // Even ports only: RTP on the even port, RTCP (when not muxed) on the odd
  // one above it (RFC 3550 §11).
  for (const InterfaceInfo& iface : interfaces_) {
    PortPool& pool = ports_[iface.name];
    const uint16_t first = static_cast<uint16_t>(config_.media.port_min & ~1u);
    for (uint32_t p = first; p + 1 <= config_.media.port_max; p += 2) {
      pool.ready.push_back(static_cast<uint16_t>(p));
    }
  }
}

SessionManager::~SessionManager() { Clear(); }

std::string SessionManager::Version() const { return kVersion; }

uint64_t SessionManager::NowMs() const {
  if (clock_) return clock_();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

const InterfaceInfo* SessionManager::FindInterface(const std::string& name) const {
  for (const InterfaceInfo& iface : interfaces_) {
    if (iface.name == name) return &iface;
  }
  return nullptr;
}

absl::StatusOr<uint16_t> SessionManager::AllocatePort(const std::string& interface) {
  PortPool& pool = ports_[interface];
  // Ports that have rested port_reuse_delay_s since they were freed may be
  // handed out again.
  const uint64_t rest_ms = uint64_t{config_.media.port_reuse_delay_s} * 1000;
  const uint64_t now = NowMs();
  while (!pool.resting.empty() && pool.resting.front().second + rest_ms <= now) {
    pool.ready.push_back(pool.resting.front().first);
    pool.resting.pop_front();
  }
  if (pool.ready.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "no free media port on interface ", interface, " (range ", config_.media.port_min, "-",
        config_.media.port_max, ", ports rest ", config_.media.port_reuse_delay_s,
        " s after use)"));
  }
  // At random (OpenSSL's CSPRNG), so that a leg's port cannot be guessed
  // from another's and media sent to it before its peer does.
  uint32_t draw;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&draw), sizeof(draw)) != 1) {
    return absl::InternalError("no random source to choose a media port");
  }
  const size_t at = draw % pool.ready.size();  // a bias below 2^-16: the pool has <= 2^15
  const uint16_t port = pool.ready[at];
  pool.ready[at] = pool.ready.back();
  pool.ready.pop_back();
  return port;
}

absl::StatusOr<uint16_t> SessionManager::TakePort(const std::string& interface, uint16_t port) {
  std::vector<uint16_t>& ready = ports_[interface].ready;
  auto it = std::find(ready.begin(), ready.end(), port);
  if (it == ready.end()) {
    return absl::ResourceExhaustedError(absl::StrCat("port ", port, " on interface ", interface,
                                                     " is not free or not in [media]'s range"));
  }
  *it = ready.back();
  ready.pop_back();
  return port;
}

std::optional<std::array<LegStreams, 2>> SessionManager::Streams(const std::string& name) const {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || !it->second.session) return std::nullopt;
  const session::Session& session = *it->second.session;
  std::array<LegStreams, 2> out;
  for (int i = 0; i < 2; ++i) {
    if (const srtp::Context* rx = session.newest_rx(i)) out[i].rx = rx->SnapshotStreams(false);
    if (const srtp::Context* tx = session.newest_tx(i)) out[i].tx = tx->SnapshotStreams(true);
    const session::RemoteView remote = session.remote(i);
    if (remote.known) out[i].remote = remote.endpoint;
  }
  return out;
}

void SessionManager::ReleasePort(const std::string& interface, uint16_t port) {
  ports_[interface].resting.emplace_back(port, NowMs());
}

srtp::ContextOptions SessionManager::ContextOptionsFor() const {
  srtp::ContextOptions options;
  options.replay_window = config_.media.replay_window;
  options.max_streams = config_.media.max_ssrcs_per_leg;
  options.stream_idle = uint64_t{config_.media.ssrc_reuse_idle_ms} * tsc_hz_ / 1000;
  return options;
}

absl::StatusOr<std::vector<srtp::MasterKey>> SessionManager::KeysFor(
    const CryptoSpec& spec, const std::string& field, bool* unencrypted_srtcp,
    std::optional<std::string>* generated) {
  std::vector<srtp::MasterKey> keys;
  *unencrypted_srtcp = false;
  switch (spec.kind) {
    case CryptoSpec::Kind::kPlain:
    case CryptoSpec::Kind::kPassthrough:
      return keys;
    case CryptoSpec::Kind::kSdes: {
      absl::StatusOr<srtp::SdesCrypto> parsed = srtp::ParseSdesCrypto(spec.sdes);
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".crypto: ", parsed.status().message()));
      }
      *unencrypted_srtcp = parsed->unencrypted_srtcp;
      keys.push_back(parsed->key);
      return keys;
    }
    case CryptoSpec::Kind::kGenerate: {
      if (generated == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".suite: only tx keys are generated by Sluice"));
      }
      absl::StatusOr<srtp::SdesCrypto> crypto = srtp::GenerateSdesCrypto(spec.suite);
      if (!crypto.ok()) {
        return absl::InternalError(absl::StrCat(field, ": ", crypto.status().message()));
      }
      *generated = srtp::FormatSdesCrypto(*crypto);
      keys.push_back(crypto->key);
      return keys;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown crypto kind"));
}

absl::StatusOr<SessionInfo> SessionManager::Create(const CreateRequest& request) {
  if (!standby_refusal_.empty()) return absl::FailedPreconditionError(standby_refusal_);
  if (absl::Status s = CheckEncryption(request); !s.ok()) return s;
  absl::StatusOr<SessionInfo> created = CreateSession(request);
  if (!created.ok()) return CountRefusal(created.status());
  ++sessions_created_;
  LogUnencrypted(*created);
  return created;
}

absl::Status SessionManager::CheckEncryption(const CreateRequest& request) {
  if (request.legs.size() != 2) return absl::OkStatus();  // refused as such by CreateSession
  return RequireEncryption(request.session,
                           {RequestedLegEncryption(request.legs[0]),
                            RequestedLegEncryption(request.legs[1])});
}

absl::Status SessionManager::CheckEncryption(const UpdateRequest& request) {
  auto it = sessions_.find(request.session);
  if (it == sessions_.end()) return absl::OkStatus();  // UpdateSession says what is wrong
  const Entry& entry = it->second;
  const absl::StatusOr<int> updated = FindLeg(entry, request);
  if (!updated.ok()) return absl::OkStatus();
  std::array<Encryption, 2> levels;
  for (int i = 0; i < 2; ++i) {
    const LegState& state = entry.legs[i];
    Encryption rx = SuiteEncryption(state.rx_suite);
    Encryption tx = SuiteEncryption(state.tx_suite);
    if (i == *updated && request.rx) rx = SpecEncryption(*request.rx);
    if (i == *updated && request.tx) tx = SpecEncryption(*request.tx);
    // Not answered yet and no receive key: judged by what it sends with.
    const bool awaiting = !entry.activity.started && !request.answer &&
                          state.rx_suite == "plain" && !(i == *updated && request.rx);
    levels[static_cast<size_t>(i)] =
        state.dtls ? Encryption::kEncrypted : awaiting ? tx : Weaker(rx, tx);
  }
  return RequireEncryption(request.session, levels);
}

// [media] require_encryption over the levels a call's legs would have.
absl::Status SessionManager::RequireEncryption(const std::string& session,
                                               const std::array<Encryption, 2>& levels) {
  const config::RequireEncryption need = config_.media.require_encryption;
  if (need == config::RequireEncryption::kNone) return absl::OkStatus();
  std::string legs;
  int encrypted = 0;
  for (size_t i = 0; i < 2; ++i) {
    if (levels[i] == Encryption::kEncrypted) ++encrypted;
    absl::StrAppend(&legs, i == 0 ? "" : ", ", "legs[", i, "] is ",
                    std::string(EncryptionName(levels[i])));
  }
  const bool all = need == config::RequireEncryption::kAllLegs;
  if (encrypted >= (all ? 2 : 1)) return absl::OkStatus();
  ++encryption_refusals_;
  const char* mode = all ? "all-legs" : "one-leg";
  log::Event(log::Level::kWarning, "session.encryption_refused",
             {{"session", session}, {"require_encryption", mode}, {"legs", legs}});
  return absl::FailedPreconditionError(absl::StrCat(
      "encryption_required: [media] require_encryption is \"", mode, "\" and ", legs, "; key ",
      all ? "both legs" : "a leg", " with an authenticated SRTP suite (SDES or DTLS-SRTP)"));
}

void SessionManager::LogUnencrypted(const SessionInfo& created) const {
  if (config_.media.require_encryption == config::RequireEncryption::kNone ||
      created.encryption == EncryptionName(Encryption::kEncrypted)) {
    return;
  }
  std::string legs;
  for (const LegInfo& leg : created.legs) {
    absl::StrAppend(&legs, legs.empty() ? "" : ", ", leg.name, " ", leg.encryption);
  }
  log::Event(log::Level::kWarning, "session.not_all_encrypted",
             {{"session", created.session}, {"encryption", created.encryption}, {"legs", legs}});
}

absl::StatusOr<SessionInfo> SessionManager::Update(const UpdateRequest& request) {
  if (absl::Status s = CheckEncryption(request); !s.ok()) return s;
  absl::StatusOr<SessionInfo> updated = UpdateSession(request);
  if (!updated.ok()) return CountRefusal(updated.status());
  return updated;
}

absl::Status SessionManager::CountRefusal(const absl::Status& status) {
  if (absl::StartsWith(status.message(), "key_reuse: ")) ++key_reuse_refusals_;
  return status;
}

absl::StatusOr<SessionInfo> SessionManager::CreateSession(const CreateRequest& request) {
  if (absl::Status s = CheckCreate(request); !s.ok()) return s;
  Entry entry;
  entry.id = next_id_;
  entry.key_group = request.key_group;
  entry.key_owner = entry.id;
  if (auto group = key_groups_.find(request.key_group);
      !request.key_group.empty() && group != key_groups_.end()) {
    entry.key_owner = group->second.owner;
  }
  session::LegSpec specs[2];
  std::optional<std::string> generated[2];
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = PrepareLeg(i, request.legs[static_cast<size_t>(i)], entry, specs[i],
                                    &generated[i]);
        !s.ok()) {
      return s;
    }
  }
  // Ports last: nothing above can leak one.
  if (!key_registry_.Reserve(entry.used_keys.size(), NowMs())) {
    return absl::ResourceExhaustedError(
        "every remembered master key is still in use (key registry full)");
  }
  if (absl::Status s = AllocateLegPorts(entry, request, specs); !s.ok()) return s;
  absl::Status started = AddHandshakes(request.session, request, entry, specs);
  if (started.ok()) {
    started = StartSession(entry, specs);
    if (!started.ok()) {
      for (int i = 0; i < 2; ++i) RemoveHandshake(entry.legs[i], specs[i].local);
    }
  }
  if (!started.ok()) {
    for (int i = 0; i < 2; ++i) ReleasePort(entry.legs[i].interface, specs[i].local.port);
    return started;
  }
  ++next_id_;
  for (const srtp::KeyFingerprint& fp : entry.used_keys) key_registry_.Acquire(fp, entry.key_owner);
  if (!entry.key_group.empty()) {
    KeyGroup& group = key_groups_[entry.key_group];
    group.owner = entry.key_owner;
    ++group.sessions;
  }
  auto [it, inserted] = sessions_.emplace(request.session, std::move(entry));
  Entry::Activity& activity = it->second.activity;
  activity.created_ms = activity.since_ms = NowMs();
  activity.started = std::none_of(request.legs.begin(), request.legs.end(),
                                  [](const LegRequest& leg) { return leg.await_answer; });
  ResolveNextHops(it->second);
  if (it->second.next_hops_pending) pending_.insert(&it->second);
  log::Event(log::Level::kInfo, "session.created",
             {{"session", it->first}, {"id", it->second.id}, {"key_group", it->second.key_group}});
  SessionInfo reply = Describe(it->first, it->second, generated);
  if (observer_ != nullptr) observer_->OnCreated(request, reply);
  return reply;
}

absl::Status SessionManager::AdmitAcrossSessions(const std::vector<srtp::KeyFingerprint>& fps,
                                                 uint64_t owner, const std::string& field) {
  const uint64_t now = NowMs();
  for (const srtp::KeyFingerprint& fp : fps) {
    if (key_registry_.Conflicts(fp, owner, now)) {
      return KeyUsedElsewhere(field, config_.security.key_reuse_window_s);
    }
  }
  return absl::OkStatus();
}

absl::Status SessionManager::CheckKeyFree(const std::string& session,
                                          const srtp::KeyFingerprint& fp) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session \"", session, "\" not found"));
  }
  return AdmitAcrossSessions({fp}, it->second.key_owner, "key");
}

absl::Status SessionManager::CheckCreate(const CreateRequest& request) const {
  if (sessions_.count(request.session) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("session \"", request.session,
                                                  "\" already exists"));
  }
  // Deleted sessions not yet reclaimed still hold their memory and ports.
  if (sessions_.size() + reclaiming_.size() >= config_.limits.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session limit reached (", config_.limits.max_sessions, " sessions, [limits] max_sessions)"));
  }
  if (request.legs.size() != 2) {
    return absl::InvalidArgumentError("legs: a session has exactly two legs");
  }
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = CheckPassthrough(request.legs[static_cast<size_t>(i)].rx,
                                          request.legs[static_cast<size_t>(1 - i)].tx, i);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status SessionManager::PrepareLeg(int i, const LegRequest& leg, Entry& entry,
                                        session::LegSpec& spec,
                                        std::optional<std::string>* generated) {
  const std::string field = absl::StrCat("legs[", i, "]");
  if (absl::Status s = CheckHandshakeLeg(leg, field); !s.ok()) return s;
  const InterfaceInfo* iface = FindInterface(leg.interface);
  if (iface == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".interface: unknown interface \"", leg.interface, "\""));
  }
  if (leg.family != 0 && leg.remote && leg.remote->ip.family != leg.family) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".family: IPv", leg.family, " but the remote is IPv", leg.remote->ip.family));
  }
  const int family = leg.remote ? leg.remote->ip.family
                     : leg.family != 0 ? leg.family
                                       : (iface->ipv4 ? 4 : 6);
  const std::optional<packet::Prefix>& prefix = family == 4 ? iface->ipv4 : iface->ipv6;
  if (!prefix) {
    return absl::InvalidArgumentError(absl::StrCat(field, leg.remote ? ".remote" : ".family",
                                                   ": interface ", iface->name, " has no IPv",
                                                   family, " address"));
  }
  bool unencrypted_rx = false, unencrypted_tx = false;
  auto rx = KeysFor(leg.rx, field + ".rx", &unencrypted_rx, nullptr);
  if (!rx.ok()) return rx.status();
  auto tx = KeysFor(leg.tx, field + ".tx", &unencrypted_tx, generated);
  if (!tx.ok()) return tx.status();
  const std::vector<srtp::KeyFingerprint> rx_fp = Fingerprints(*rx), tx_fp = Fingerprints(*tx);
  if (absl::Status s = AdmitFresh(rx_fp, entry.used_keys, field + ".rx"); !s.ok()) return s;
  if (absl::Status s = AdmitFresh(tx_fp, entry.used_keys, field + ".tx"); !s.ok()) return s;
  if (absl::Status s = AdmitAcrossSessions(rx_fp, entry.key_owner, field + ".rx"); !s.ok()) {
    return s;
  }
  if (absl::Status s = AdmitAcrossSessions(tx_fp, entry.key_owner, field + ".tx"); !s.ok()) {
    return s;
  }

  spec.name = leg.name;
  spec.port_id = iface->port_id;
  spec.port_mac = iface->mac;
  spec.vlan = iface->vlan;
  spec.local.ip = prefix->ip;
  spec.rtcp_mux = leg.rtcp == RtcpMode::kMux;
  spec.remote = leg.remote;
  spec.strict_source = leg.strict_source;
  spec.await_answer = leg.await_answer && !config_.media.learn_before_answer;
  spec.tx_encrypt_srtcp = !unencrypted_tx;
  spec.aes192_kdf = leg.aes192_kdf.value_or(config_.media.aes192_kdf);
  LegState& state = entry.legs[i];
  state.aes192_kdf = spec.aes192_kdf;
  state.tx_seq_offset = spec.tx_seq_offset = leg.tx_seq_offset;
  state.name = leg.name;
  state.interface = iface->name;
  state.rtcp = leg.rtcp;
  state.roc_on_rekey = leg.roc_on_rekey;
  state.rx_suite = SuiteLabel(*rx, leg.rx);
  state.tx_suite = SuiteLabel(*tx, leg.tx);
  if (!rx->empty()) state.rx_key.emplace((*rx)[0], rx_fp[0]);
  if (!tx->empty()) state.tx_key.emplace((*tx)[0], tx_fp[0]);
  state.tx_unencrypted_srtcp = unencrypted_tx;
  spec.rx_keys = std::move(*rx);
  spec.tx_keys = std::move(*tx);
  spec.rx_streams = leg.rx_streams;  // a restored session's (docs/ha.md)
  spec.tx_streams = leg.tx_streams;
  // WebRTC: STUN and DTLS go to the handshake thread; a DTLS leg relays nothing until
  // keyed (never in clear; one restored keyed at once, docs/ha.md); an ICE leg's peer is
  // the one its checks (had) selected, never moved by an unauthenticated packet (learning.h).
  spec.handshake = leg.dtls.has_value() || leg.ice.has_value();
  state.dtls = leg.dtls.has_value();
  state.ice = leg.ice.has_value();
  if (spec.handshake) state.handshake = std::make_unique<HandshakeState>();
  if (state.dtls && leg.dtls->restored_profile.empty()) {
    spec.keys_pending = true;
    state.rx_suite = state.tx_suite = "pending";
  }
  spec.await_answer = spec.await_answer || state.ice;
  if (state.ice && leg.ice->selected) spec.remote = leg.ice->selected;
  return absl::OkStatus();
}

absl::Status SessionManager::AllocateLegPorts(const Entry& entry, const CreateRequest& request,
                                              session::LegSpec specs[2]) {
  for (int i = 0; i < 2; ++i) {
    const uint16_t wanted = request.legs[static_cast<size_t>(i)].local_port;
    absl::StatusOr<uint16_t> port = wanted != 0 ? TakePort(entry.legs[i].interface, wanted)
                                                : AllocatePort(entry.legs[i].interface);
    if (!port.ok()) {
      if (i == 1) ReleasePort(entry.legs[0].interface, specs[0].local.port);
      return port.status();
    }
    specs[i].local.port = *port;
  }
  return absl::OkStatus();
}

absl::Status SessionManager::StartSession(Entry& entry, const session::LegSpec specs[2]) {
  session::SessionOptions options;
  options.srtp = ContextOptionsFor();
  options.learn_packets = config_.media.learn_packets;
  absl::StatusOr<std::unique_ptr<session::Session>> session =
      session::Session::Create(entry.id, specs[0], specs[1], options);
  if (!session.ok()) return session.status();
  (*session)->SetOwner(static_cast<uint16_t>(entry.id % workers_));
  (*session)->SetRekeyOverlap(uint64_t{config_.media.rekey_overlap_ms} * tsc_hz_ / 1000);
  (*session)->SetRateLimit(config_.limits.leg_max_pps, tsc_hz_);
  if (absl::Status s = (*session)->Publish(table_); !s.ok()) return s;
  entry.session = std::move(*session);
  entry.next_hops_pending = true;
  return absl::OkStatus();
}

absl::StatusOr<SessionInfo> SessionManager::UpdateSession(const UpdateRequest& request) {
  auto it = sessions_.find(request.session);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session \"", request.session, "\" not found"));
  }
  Entry& entry = it->second;
  absl::StatusOr<int> leg = FindLeg(entry, request);
  if (!leg.ok()) return leg.status();
  const LegState& state = entry.legs[*leg];
  if (absl::Status s = CheckUpdate(state, request); !s.ok()) return s;
  std::optional<std::string> generated[2];
  std::vector<srtp::KeyFingerprint> seen = entry.used_keys;
  KeyChange rx, tx;
  if (request.rx) {
    if (absl::Status s =
            PlanKeyChange(*request.rx, "rx", state.rx_key, nullptr, entry.key_owner, seen, rx);
        !s.ok()) {
      return s;
    }
  }
  if (request.tx) {
    if (absl::Status s =
            PlanKeyChange(*request.tx, "tx", state.tx_key, &generated[*leg], entry.key_owner,
                          seen, tx);
        !s.ok()) {
      return s;
    }
  }
  const packet::Endpoint& local = entry.session->local(*leg);
  if (request.remote && request.remote->ip.family != local.ip.family) {
    return absl::InvalidArgumentError(absl::StrCat("remote: ", request.remote->ToString(),
                                                   " is not the address family of the leg's local ",
                                                   local.ToString()));
  }
  // Build every context before handing anything over: a failure leaves the
  // session as it was.
  if (absl::Status s = BuildRxContext(entry, *leg, rx); !s.ok()) return s;
  if (absl::Status s =
          BuildTxContext(entry.legs[*leg], tx, TxRocRule(entry, *leg, request));
      !s.ok()) {
    return s;
  }
  if (!key_registry_.Reserve(rx.fingerprints.size() + tx.fingerprints.size(), NowMs())) {
    return absl::ResourceExhaustedError(
        "every remembered master key is still in use (key registry full)");
  }

  for (const KeyChange* change : {&rx, &tx}) {
    for (const srtp::KeyFingerprint& fp : change->fingerprints) {
      key_registry_.Acquire(fp, entry.key_owner);
    }
  }
  entry.used_keys = std::move(seen);  // with the new keys
  HandOverKeys(entry, *leg, request, rx, tx);
  if (request.roc_on_rekey) entry.legs[*leg].roc_on_rekey = *request.roc_on_rekey;
  if (request.answer) entry.session->SetAnswered(*leg);
  entry.activity.since_ms = NowMs();  // signalling restarts the timeout clocks
  entry.activity.started = entry.activity.started || request.answer;
  if (request.hold) entry.activity.hold = *request.hold;
  if (request.remote) {
    entry.session->SetRemote(*leg, *request.remote);
    entry.next_hops_pending = true;
    ResolveNextHops(entry);
  }
  if (entry.next_hops_pending || entry.session->HandOverPending()) pending_.insert(&entry);
  if (absl::Status s = UpdateHandshakes(it->first, entry, *leg, request); !s.ok()) return s;
  SessionInfo reply = Describe(it->first, entry, generated);
  if (observer_ != nullptr) observer_->OnUpdated(request, reply);
  return reply;
}

absl::Status SessionManager::CheckUpdate(const LegState& state, const UpdateRequest& request) {
  for (const std::optional<CryptoSpec>* spec : {&request.rx, &request.tx}) {
    if (*spec && (*spec)->kind == CryptoSpec::Kind::kPassthrough) {
      return absl::InvalidArgumentError(
          "passthrough is chosen when the session is created (both ends of a direction at once)");
    }
  }
  if (state.dtls && (request.rx || request.tx)) {
    return absl::InvalidArgumentError(absl::StrCat(
        request.rx ? "rx" : "tx", ": the leg's keys come from its DTLS handshake (update dtls)"));
  }
  if ((request.dtls && !state.dtls) || (request.ice && !state.ice)) {
    return absl::InvalidArgumentError(absl::StrCat(request.dtls && !state.dtls ? "dtls" : "ice",
                                                   ": the leg was not created with it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SessionManager::FindLeg(const Entry& entry, const UpdateRequest& request) {
  int leg = -1;
  for (int i = 0; i < 2; ++i) {
    if (entry.legs[i].name == request.leg) leg = i;
  }
  if (leg < 0) {
    return absl::NotFoundError(absl::StrCat("leg \"", request.leg, "\" not found in session \"",
                                            request.session, "\""));
  }
  return leg;
}

bool SessionManager::RepeatsKeyInUse(const std::vector<srtp::MasterKey>& next,
                                     const std::vector<srtp::KeyFingerprint>& next_fp,
                                     const std::optional<KeyInUse>& current) {
  return next.size() == 1 && current && next[0].suite == current->suite &&
         next[0].mki_len == current->mki_len && next[0].mki == current->mki &&
         next_fp[0].Matches(current->fingerprint);
}

absl::Status SessionManager::PlanKeyChange(const CryptoSpec& spec, const std::string& field,
                                           const std::optional<KeyInUse>& current,
                                           std::optional<std::string>* generated,
                                           uint64_t owner,
                                           std::vector<srtp::KeyFingerprint>& seen,
                                           KeyChange& change) {
  auto keys = KeysFor(spec, field, &change.unencrypted_srtcp, generated);
  if (!keys.ok()) return keys.status();
  std::vector<srtp::KeyFingerprint> fp = Fingerprints(*keys);
  // A re-offer that repeats the key in use changes nothing: not a re-key,
  // and not a reuse.
  if (RepeatsKeyInUse(*keys, fp, current)) return absl::OkStatus();
  if (absl::Status s = AdmitFresh(fp, seen, field + ".crypto"); !s.ok()) return s;
  if (absl::Status s = AdmitAcrossSessions(fp, owner, field + ".crypto"); !s.ok()) return s;
  change.requested = true;
  change.keys = std::move(*keys);
  change.fingerprints = std::move(fp);
  return absl::OkStatus();
}

absl::Status SessionManager::BuildRxContext(const Entry& entry, int leg, KeyChange& rx) const {
  if (!rx.requested || rx.keys.empty()) return absl::OkStatus();
  const LegState& state = entry.legs[leg];
  const srtp::MasterKey& next = rx.keys[0];
  srtp::ContextOptions options = ContextOptionsFor();
  options.aes192_kdf = state.aes192_kdf;
  // Make-before-break: the previous key of the same suite stays valid for
  // packets in flight, by MKI or, without MKIs, tried second until the
  // overlap ends. It comes prepared from the context in use.
  const srtp::Context* previous = nullptr;
  if (state.rx_key && state.rx_key->suite == next.suite && state.rx_key->mki_len == next.mki_len &&
      !(next.mki_len > 0 && next.mki == state.rx_key->mki)) {
    previous = entry.session->newest_rx(leg);
    options.trial_keys = next.mki_len == 0;
  }
  options.roc_on_rekey = entry.legs[leg].roc_on_rekey == RocOnRekey::kKeep
                             ? srtp::RocOnRekey::kKeep
                             : srtp::RocOnRekey::kDetect;
  auto ctx = srtp::Context::Create(rx.keys, options, previous);
  if (!ctx.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rx: ", ctx.status().message()));
  }
  rx.context = std::move(*ctx);
  return absl::OkStatus();
}

// RFC 4568 §7.1.4: a new key that comes with a new address or port is a
// new crypto context (ROC 0); otherwise RFC 3711 §3.3.1 keeps the ROC.
srtp::RocOnRekey SessionManager::TxRocRule(const Entry& entry, int leg,
                                           const UpdateRequest& request) const {
  const RocOnRekey mode = request.roc_on_rekey.value_or(entry.legs[leg].roc_on_rekey);
  if (mode != RocOnRekey::kAuto) {
    return mode == RocOnRekey::kReset ? srtp::RocOnRekey::kReset : srtp::RocOnRekey::kKeep;
  }
  const session::RemoteView now = entry.session->remote(leg);
  const bool moved = request.remote && (!now.known || !(now.endpoint == *request.remote));
  return moved ? srtp::RocOnRekey::kReset : srtp::RocOnRekey::kKeep;
}

absl::Status SessionManager::BuildTxContext(const LegState& state, KeyChange& tx,
                                            srtp::RocOnRekey rule) const {
  if (!tx.requested || tx.keys.empty()) return absl::OkStatus();
  srtp::ContextOptions options = ContextOptionsFor();
  options.aes192_kdf = state.aes192_kdf;
  // A restored leg's SEQ shift carries on under the new key: its receivers
  // see the SEQ go on, not jump back.
  options.rtp_seq_offset = state.tx_seq_offset;
  options.encrypt_srtcp = !tx.unencrypted_srtcp;
  options.roc_on_rekey = rule;
  auto ctx = srtp::Context::Create(tx.keys, options);
  if (!ctx.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tx: ", ctx.status().message()));
  }
  tx.context = std::move(*ctx);
  return absl::OkStatus();
}

void SessionManager::HandOverKeys(Entry& entry, int leg, const UpdateRequest& request,
                                  KeyChange& rx, KeyChange& tx) {
  LegState& state = entry.legs[leg];
  if (rx.requested) {
    entry.session->HandOverRx(leg, std::move(rx.context));
    state.rx_suite = SuiteLabel(rx.keys, *request.rx);
    state.rx_key.reset();
    if (!rx.keys.empty()) state.rx_key.emplace(rx.keys[0], rx.fingerprints[0]);
  }
  if (tx.requested) {
    entry.session->HandOverTx(leg, std::move(tx.context));
    state.tx_suite = SuiteLabel(tx.keys, *request.tx);
    state.tx_key.reset();
    if (!tx.keys.empty()) state.tx_key.emplace(tx.keys[0], tx.fingerprints[0]);
    state.tx_unencrypted_srtcp = tx.unencrypted_srtcp;
  }
}

// A DTLS handshake's keys: a re-key of both directions through the same
// hand-over as an SDES re-key (make-before-break when the suite stays), then
// the leg stops waiting. Each handshake exports fresh keys, so the reuse
// checks only ever refuse a broken exporter; the keys wipe themselves.
void SessionManager::InstallHandshakeKeys(const std::string& name, Entry& entry, int leg,
                                          HandshakeEvent& event) {
  KeyChange rx, tx;
  rx.requested = tx.requested = true;
  rx.keys.push_back(event.rx);
  tx.keys.push_back(event.tx);
  rx.fingerprints = Fingerprints(rx.keys);
  tx.fingerprints = Fingerprints(tx.keys);
  std::vector<srtp::KeyFingerprint> seen = entry.used_keys;
  absl::Status s = AdmitFresh(rx.fingerprints, seen, "rx");
  if (s.ok()) s = AdmitFresh(tx.fingerprints, seen, "tx");
  if (s.ok()) s = AdmitAcrossSessions(rx.fingerprints, entry.key_owner, "rx");
  if (s.ok()) s = AdmitAcrossSessions(tx.fingerprints, entry.key_owner, "tx");
  if (s.ok()) s = BuildRxContext(entry, leg, rx);
  // A new DTLS association is a new SRTP context: its sender starts at ROC 0.
  if (s.ok()) s = BuildTxContext(entry.legs[leg], tx, srtp::RocOnRekey::kReset);
  if (s.ok() && !key_registry_.Reserve(2, NowMs())) {
    s = absl::ResourceExhaustedError("key registry full");
  }
  if (!s.ok()) {
    ++handshake_stats_.dtls_failed;
    entry.legs[leg].handshake->refused_generation = event.id.generation;
    entry.legs[leg].handshake->refused_reason = absl::StrCat("keys refused: ", s.message());
    log::Event(log::Level::kWarning, "dtls.keys_refused",
               {{"session", name}, {"leg", entry.legs[leg].name}, {"reason", s.message()}});
    return;
  }
  for (const KeyChange* change : {&rx, &tx}) {
    key_registry_.Acquire(change->fingerprints[0], entry.key_owner);
  }
  entry.used_keys = std::move(seen);
  LegState& state = entry.legs[leg];
  entry.session->HandOverRx(leg, std::move(rx.context));
  entry.session->HandOverTx(leg, std::move(tx.context));
  state.rx_suite = state.tx_suite = crypto::SuiteName(rx.keys[0].suite);
  state.rx_key.emplace(rx.keys[0], rx.fingerprints[0]);
  state.tx_key.emplace(tx.keys[0], tx.fingerprints[0]);
  state.key_warned = 0;
  state.handshake->keyed = true;
  state.handshake->keys_generation = event.id.generation;
  // After the hand-over: a worker that sees the flag clear adopts the new
  // contexts first (Session::SetKeysPending).
  if (!state.handshake->consent_lost) entry.session->SetKeysPending(leg, false);
  if (entry.session->HandOverPending()) pending_.insert(&entry);
  ++handshake_stats_.dtls_keyed;
  if (observer_ != nullptr) TellKeyed(name, leg, rx.keys[0], tx.keys[0]);
}

void SessionManager::TellKeyed(const std::string& name, int leg, const srtp::MasterKey& rx,
                               const srtp::MasterKey& tx) {
  srtp::SdesCrypto rx_sdes, tx_sdes;
  rx_sdes.key = rx;
  tx_sdes.key = tx;
  std::string rx_text = srtp::FormatSdesCrypto(rx_sdes), tx_text = srtp::FormatSdesCrypto(tx_sdes);
  observer_->OnLegKeyed(name, leg, std::string(crypto::SuiteName(rx.suite)), rx_text, tx_text);
  WipeString(rx_text);
  WipeString(tx_text);
}

absl::StatusOr<SessionInfo> SessionManager::Delete(const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session \"", name, "\" not found"));
  }
  Entry& entry = it->second;
  // No new packet finds its flows from here on; a worker that found one
  // before may still hold it until its next quiescent state, so the session
  // (and its keys, and its ports) are freed later, by Reclaim.
  entry.session->Unpublish(table_);
  const std::optional<std::string> none[2];
  SessionInfo final_counters = Describe(it->first, entry, none);
  RemoveHandshakes(entry);
  Reclaiming& dead = reclaiming_.emplace_back();
  dead.token = table_.StartGracePeriod();
  dead.session = std::move(entry.session);
  for (int i = 0; i < 2; ++i) dead.interfaces[i] = entry.legs[i].interface;
  pending_.erase(&entry);
  key_registry_.Release(entry.used_keys, entry.key_owner, NowMs());
  if (auto group = key_groups_.find(entry.key_group);
      group != key_groups_.end() && --group->second.sessions == 0) {
    key_groups_.erase(group);
  }
  log::Event(log::Level::kInfo, "session.deleted", {{"session", name}, {"id", entry.id}});
  if (observer_ != nullptr) observer_->OnDeleted(it->first);
  sessions_.erase(it);
  ++sessions_deleted_;
  Reclaim();  // at once when no worker is online
  return final_counters;
}

void SessionManager::Reclaim() {
  while (!reclaiming_.empty() && table_.GracePeriodOver(reclaiming_.front().token)) {
    Reclaiming& dead = reclaiming_.front();
    for (int i = 0; i < 2; ++i) {
      ReleasePort(dead.interfaces[i], dead.session->local(i).port);
    }
    reclaiming_.pop_front();  // contexts and master keys wipe themselves
  }
}

absl::StatusOr<SessionInfo> SessionManager::Get(const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session \"", name, "\" not found"));
  }
  const std::optional<std::string> none[2];
  return Describe(it->first, it->second, none);
}

ListResult SessionManager::List(uint64_t offset, uint64_t limit) {
  ListResult result;
  result.total = sessions_.size();
  const std::optional<std::string> none[2];
  uint64_t index = 0;
  for (const auto& [name, entry] : sessions_) {
    if (index++ < offset) continue;
    if (result.sessions.size() >= limit) break;
    result.sessions.push_back(Describe(name, entry, none));
  }
  return result;
}

Stats SessionManager::GetStats() {
  Stats stats;
  stats.sessions = sessions_.size();
  if (memory::HotArenaUsesRegions()) {
    const memory::HotArenaStats arena = memory::GetHotArenaStats();
    stats.memory = MemoryStats{arena.in_use_bytes, arena.in_use_blocks, arena.mapped_bytes};
  }
  stats.sessions_reclaiming = reclaiming_.size();
  stats.sessions_created = sessions_created_;
  stats.sessions_deleted = sessions_deleted_;
  stats.key_reuse_refusals = key_reuse_refusals_;
  stats.encryption_refusals = encryption_refusals_;
  CountLegs(stats);
  stats.timed_out = timed_out_;
  stats.webrtc = handshake_stats_;
  if (handshakes_ != nullptr) handshakes_->AddStats(stats.webrtc);
  if (worker_stats_) stats.workers = worker_stats_();
  AddWorkerWatch(stats.workers);
  if (port_stats_) stats.ports = port_stats_();
  if (resolver_.hold_stats) stats.neighbor_hold = resolver_.hold_stats();
  std::map<std::string, uint64_t> drops;
  for (const WorkerStats& w : stats.workers) {
    for (const auto& [reason, count] : w.drops) drops[reason] += count;
  }
  if (stats.neighbor_hold.dropped > 0) drops["no_neighbor"] += stats.neighbor_hold.dropped;
  stats.drops.assign(drops.begin(), drops.end());
  stats.keys_near_limit = keys_near_limit_;
  stats.rekey_needed = rekey_needed_;
  if (ha_stats_) stats.ha = ha_stats_();
  return stats;
}

void SessionManager::CountLegs(Stats& stats) const {
  std::map<std::pair<std::string_view, std::string_view>, uint64_t> counts;
  uint64_t by_encryption[3] = {0, 0, 0};
  for (const auto& [name, entry] : sessions_) {
    ++by_encryption[static_cast<size_t>(CallEncryption(entry))];
    for (const LegState& leg : entry.legs) {
      const std::string_view keying = leg.dtls ? "dtls" : (leg.rx_key || leg.tx_key) ? "sdes" : "plain";
      ++counts[{keying, leg.rx_suite}];
    }
  }
  for (const auto& [key, n] : counts) stats.legs.push_back({key.first, key.second, n});
  for (const Encryption e :
       {Encryption::kPlain, Encryption::kUnauthenticated, Encryption::kEncrypted}) {
    stats.sessions_by_encryption.emplace_back(EncryptionName(e),
                                              by_encryption[static_cast<size_t>(e)]);
  }
}

void SessionManager::AddWorkerWatch(std::vector<WorkerStats>& workers) const {
  const uint64_t now = NowMs();
  for (uint32_t id = 0; id < watch_.workers(); ++id) {
    auto it = std::find_if(workers.begin(), workers.end(),
                           [id](const WorkerStats& w) { return w.id == id; });
    if (it == workers.end()) {
      workers.emplace_back().id = id;
      it = std::prev(workers.end());
    }
    const WorkerWatch::State& state = watch_.worker(id);
    it->stalled = state.stalled;
    it->quiescent_ms_ago = now > state.last_seen_ms ? now - state.last_seen_ms : 0;
  }
}

void SessionManager::Tick() {
  Reclaim();
  watch_.Poll(NowMs());
  if (const uint64_t now = NowMs(); now - key_check_ms_ >= 1000) {
    key_check_ms_ = now;
    CheckKeyLimits();
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    Entry& entry = **it;
    entry.session->CollectRetired();
    if (entry.next_hops_pending) ResolveNextHops(entry);
    if (!entry.next_hops_pending && !entry.session->HandOverPending()) {
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  ExpireSessions();
}

std::string_view SessionManager::TimeoutName(TimeoutReason reason) {
  switch (reason) {
    case TimeoutReason::kTimeout: return "timeout";
    case TimeoutReason::kSilentTimeout: return "silent_timeout";
    case TimeoutReason::kFinalTimeout: return "final_timeout";
  }
  return "timeout";
}

void SessionManager::ExpireSessions() {
  const config::MediaConfig& m = config_.media;
  if (sessions_.empty() || (m.timeout_s == 0 && m.silent_timeout_s == 0 && m.final_timeout_s == 0)) {
    return;
  }
  const uint64_t now = NowMs();
  // A bounded slice per pass, resumed by name, so that a million sessions
  // cost the control loop no more per pass than a few hundred.
  std::vector<std::pair<std::string, TimeoutReason>> expired;
  auto it = sessions_.lower_bound(expiry_cursor_);
  const size_t checks = std::min(kExpiryChecksPerTick, sessions_.size());
  for (size_t n = 0; n < checks; ++n, ++it) {
    if (it == sessions_.end()) it = sessions_.begin();
    if (std::optional<TimeoutReason> reason = Expired(it->second, now)) {
      expired.emplace_back(it->first, *reason);
    }
  }
  expiry_cursor_ = it == sessions_.end() ? std::string() : it->first;
  for (const auto& [name, reason] : expired) DeleteExpired(name, reason);
}

// As rtpengine: a session lives while either direction relays (timeout);
// a direction silent for silent_timeout ends it even while the other
// relays (one-way media, or a hold that sends nothing back), and ends a
// session on hold (UpdateRequest::hold) in place of timeout; final_timeout
// bounds its life. Only authenticated packets are relayed, so a stranger's
// packets keep nothing alive. A session that has neither been answered nor
// relayed a packet waits for its controller (ng: offer_timeout_ms).
std::optional<SessionManager::TimeoutReason> SessionManager::Expired(Entry& entry,
                                                                     uint64_t now) const {
  Entry::Activity& a = entry.activity;
  for (int i = 0; i < 2; ++i) {
    const uint64_t relayed = session::FlowCounters::Both(entry.session->flow(i).counters.tx_packets);
    if (relayed != a.relayed[i]) {
      a.relayed[i] = relayed;
      a.moved_ms[i] = now;
      if (!a.started) a.since_ms = now;
      a.started = true;
    }
  }
  const config::MediaConfig& m = config_.media;
  const auto past = [now](uint64_t since, uint32_t seconds) {
    return seconds != 0 && now >= since && now - since >= uint64_t{seconds} * 1000;
  };
  if (past(a.created_ms, m.final_timeout_s)) return TimeoutReason::kFinalTimeout;
  if (!a.started) return std::nullopt;
  const uint64_t quiet_since[2] = {std::max(a.moved_ms[0], a.since_ms),
                                   std::max(a.moved_ms[1], a.since_ms)};
  // Both directions quiet since the later of the two; one of them since the
  // earlier. On hold, media one way or none is what was negotiated: only
  // silent_timeout applies, to either.
  if (!a.hold && past(std::max(quiet_since[0], quiet_since[1]), m.timeout_s)) {
    return TimeoutReason::kTimeout;
  }
  if (past(std::min(quiet_since[0], quiet_since[1]), m.silent_timeout_s)) {
    return TimeoutReason::kSilentTimeout;
  }
  return std::nullopt;
}

void SessionManager::DeleteExpired(const std::string& name, TimeoutReason reason) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return;
  const uint64_t id = it->second.id;
  if (!Delete(name).ok()) return;
  const config::MediaConfig& m = config_.media;
  std::string why;
  switch (reason) {
    case TimeoutReason::kTimeout:
      ++timed_out_.timeout;
      why = absl::StrCat("no packet relayed in either direction for ", m.timeout_s, " s");
      break;
    case TimeoutReason::kSilentTimeout:
      ++timed_out_.silent_timeout;
      why = absl::StrCat("one direction relayed no packet for ", m.silent_timeout_s, " s");
      break;
    case TimeoutReason::kFinalTimeout:
      ++timed_out_.final_timeout;
      why = absl::StrCat(m.final_timeout_s, " s since it was created");
      break;
  }
  log::Event(log::Level::kNotice, "session.timed_out",
             {{"session", name}, {"id", id}, {"reason", TimeoutName(reason)}, {"detail", why}});
  if (on_expired_) on_expired_(name);
}

std::optional<uint32_t> SessionManager::KeyUsedPercent(const Entry& entry, int leg, bool rx) {
  const srtp::Context* ctx = rx ? entry.session->newest_rx(leg) : entry.session->newest_tx(leg);
  if (ctx == nullptr) return std::nullopt;
  return ctx->UsedPercent();
}

void SessionManager::CheckKeyLimits() {
  keys_near_limit_ = 0;
  rekey_needed_.clear();
  for (auto& [name, entry] : sessions_) {
    for (int i = 0; i < 2; ++i) CheckLegKeys(name, entry, i);
  }
}

void SessionManager::CheckLegKeys(const std::string& name, Entry& entry, int leg) {
  LegState& state = entry.legs[leg];
  bool near = false;
  for (const bool rx : {true, false}) {
    const uint8_t bit = rx ? 1 : 2;
    const std::optional<uint32_t> used = KeyUsedPercent(entry, leg, rx);
    if (!used || *used < config_.media.key_limit_warn_percent) {
      state.key_warned &= static_cast<uint8_t>(~bit);
      continue;
    }
    near = true;
    const char* direction = rx ? "rx" : "tx";
    const std::string& leg_name = entry.legs[leg].name;
    if (rekey_needed_.size() < Stats::kMaxRekeyNeeded) {
      rekey_needed_.push_back(RekeyNeeded{name, leg_name, direction, *used});
    }
    if ((state.key_warned & bit) == 0) {
      log::Event(log::Level::kWarning, "key.near_limit",
                 {{"session", name}, {"leg", leg_name}, {"direction", direction},
                  {"used_percent", *used}, {"action", "re-key with session.update"}});
    }
    state.key_warned |= bit;
  }
  if (near) ++keys_near_limit_;
}

void SessionManager::Clear() {
  for (auto& [name, entry] : sessions_) {
    RemoveHandshakes(entry);
    entry.session->Unpublish(table_);
    Reclaiming& dead = reclaiming_.emplace_back();
    dead.session = std::move(entry.session);
    for (int i = 0; i < 2; ++i) dead.interfaces[i] = entry.legs[i].interface;
  }
  pending_.clear();
  sessions_.clear();
  const uint64_t token = table_.StartGracePeriod();
  for (auto& dead : reclaiming_) dead.token = token;
  const auto give_up = std::chrono::steady_clock::now() + kShutdownGrace;
  while (!table_.GracePeriodOver(token) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  reclaiming_.clear();  // contexts and master keys wipe themselves
}

void SessionManager::ResolveNextHops(Entry& entry) {
  bool pending = false;
  for (int i = 0; i < 2; ++i) {
    session::RemoteSlot& slot = entry.session->remote_slot(i);
    const session::RemoteView view = slot.Load();
    packet::MacAddress mac;
    if (!view.known || view.has_mac || slot.ResolvedMac(&mac)) continue;
    const InterfaceInfo* iface = FindInterface(entry.legs[i].interface);
    if (iface == nullptr || !resolver_.lookup) continue;
    const packet::IpAddress& peer = view.endpoint.ip;
    // On-link peers are asked for directly; others through the gateway.
    const packet::IpAddress hop = peer.is_v4() ? packet::NextHop(peer, iface->ipv4, iface->gateway)
                                               : packet::NextHop(peer, iface->ipv6, iface->gateway6);
    if (std::optional<packet::MacAddress> found = resolver_.lookup(iface->port_id, hop)) {
      slot.SetResolvedMac(*found);
    } else {
      pending = true;
    }
  }
  entry.next_hops_pending = pending;
}

SessionInfo SessionManager::Describe(const std::string& name, const Entry& entry,
                                     const std::optional<std::string> tx_crypto[2]) const {
  SessionInfo info;
  info.session = name;
  info.hold = entry.activity.hold;
  for (int i = 0; i < 2; ++i) {
    const LegState& state = entry.legs[i];
    const session::Flow& in = entry.session->flow(i);       // arrives on this leg
    const session::Flow& out = entry.session->flow(1 - i);  // leaves on this leg
    LegInfo leg;
    leg.name = state.name;
    leg.interface = state.interface;
    leg.local = entry.session->local(i);
    const session::RemoteView view = entry.session->remote(i);
    if (view.known) leg.remote = view.endpoint;
    leg.remote_learned = view.learned;
    leg.rtcp = state.rtcp;
    leg.rx_suite = std::string(state.rx_suite);
    leg.tx_suite = std::string(state.tx_suite);
    leg.encryption = EncryptionName(LegEncryption(state.rx_suite, state.tx_suite, state.dtls));
    auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    using session::FlowCounters;
    leg.counters.rx_packets = FlowCounters::Both(in.counters.rx_packets);
    leg.counters.rx_bytes = FlowCounters::Both(in.counters.rx_bytes);
    leg.counters.rx_rtcp_packets = get(in.counters.rx_packets[FlowCounters::kRtcp]);
    leg.counters.rx_rtcp_bytes = get(in.counters.rx_bytes[FlowCounters::kRtcp]);
    leg.counters.auth_failures = get(in.counters.auth_failures);
    leg.counters.replay_drops = get(in.counters.replay_drops);
    leg.counters.other_drops = get(in.counters.other_drops);
    leg.counters.remote_changes = get(in.counters.remote_changes);
    leg.counters.tx_packets = FlowCounters::Both(out.counters.tx_packets);
    leg.counters.tx_bytes = FlowCounters::Both(out.counters.tx_bytes);
    leg.counters.tx_rtcp_packets = get(out.counters.tx_packets[FlowCounters::kRtcp]);
    leg.counters.tx_rtcp_bytes = get(out.counters.tx_bytes[FlowCounters::kRtcp]);
    leg.rx_key_used_percent = KeyUsedPercent(entry, i, true);
    leg.tx_key_used_percent = KeyUsedPercent(entry, i, false);
    for (const bool rx : {true, false}) {
      const std::optional<uint32_t>& used = rx ? leg.rx_key_used_percent : leg.tx_key_used_percent;
      if (used && *used >= config_.media.key_limit_warn_percent) {
        leg.rekey_needed.push_back(rx ? "rx" : "tx");
      }
    }
    if (const srtp::Context* rx = entry.session->newest_rx(i); rx != nullptr) {
      constexpr const char* kNames[] = {"none", "undecided", "kept", "reset"};
      leg.roc_after_rekey = kNames[static_cast<int>(rx->roc_after_rekey())];
    }
    if (tx_crypto != nullptr && tx_crypto[i]) leg.tx_crypto = tx_crypto[i];
    DescribeHandshakes(entry, i, leg);
    info.legs.push_back(std::move(leg));
  }
  info.encryption = EncryptionName(CallEncryption(entry));
  return info;
}

Encryption SessionManager::CallEncryption(const Entry& entry) {
  Encryption call = Encryption::kEncrypted;
  for (const LegState& leg : entry.legs) {
    call = Weaker(call, LegEncryption(leg.rx_suite, leg.tx_suite, leg.dtls));
  }
  return call;
}

}  // namespace sluice::control
