#include "sluice/ha/restore.h"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <hiredis/hiredis.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sluice/ha/replicator.h"
#include "sluice/log/logger.h"
#include "sluice/memory/wiping_allocator.h"
#include "redis_address.h"

namespace sluice::ha {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;
struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

absl::StatusOr<Reply> Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> len;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    len.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), len.data())));
  if (!reply) return absl::UnavailableError(absl::StrCat("redis: ", c->errstr));
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("redis: ", std::string(reply->str, reply->len)));
  }
  return reply;
}

absl::StatusOr<Context> ConnectSync(const config::HaConfig& config) {
  timeval tv{static_cast<time_t>(config.restore_timeout_ms / 1000),
             static_cast<suseconds_t>((config.restore_timeout_ms % 1000) * 1000)};
  const RedisAddress where = RedisAddress::Parse(config.redis);
  Context c(where.unix_socket
                ? redisConnectUnixWithTimeout(where.path_or_host.c_str(), tv)
                : redisConnectWithTimeout(where.path_or_host.c_str(), where.port, tv));
  if (!c || c->err != 0) {
    return absl::UnavailableError(absl::StrCat("ha: cannot reach Redis at ", config.redis, ": ",
                                               c ? c->errstr : "out of memory",
                                               " (sessions cannot be restored; sluiced does not "
                                               "start without them)"));
  }
  redisSetTimeout(c.get(), tv);
  if (!config.password.empty()) {
    if (absl::StatusOr<Reply> r = Command(c.get(), {"AUTH", config.password}); !r.ok()) {
      return absl::UnavailableError(absl::StrCat("ha: Redis AUTH: ", r.status().message()));
    }
  }
  return c;
}

absl::StatusOr<std::vector<std::string>> ScanKeys(redisContext* c, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<Reply> r =
        Command(c, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    if (!r.ok()) return r.status();
    const redisReply* rep = r->get();
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY) {
      return absl::UnavailableError("redis: unexpected SCAN reply");
    }
    cursor.assign(rep->element[0]->str, rep->element[0]->len);
    for (size_t i = 0; i < rep->element[1]->elements; ++i) {
      const redisReply* k = rep->element[1]->element[i];
      if (k->type == REDIS_REPLY_STRING) keys.emplace_back(k->str, k->len);
    }
  } while (cursor != "0");
  return keys;
}

// A session's hash: its "record" and "streams" fields (either may be absent).
struct Fields {
  std::optional<std::string> record, streams;
};

absl::StatusOr<Fields> ReadFields(redisContext* c, const std::string& key) {
  absl::StatusOr<Reply> r = Command(c, {"HGETALL", key});
  Fields f;
  // A key of another type under the prefix: a record with neither field.
  if (!r.ok() && absl::StrContains(r.status().message(), "WRONGTYPE")) return f;
  if (!r.ok()) return r.status();
  const redisReply* rep = r->get();
  if (rep->type != REDIS_REPLY_ARRAY) return f;  // another type: neither field
  for (size_t i = 0; i + 1 < rep->elements; i += 2) {
    const redisReply* name = rep->element[i];
    const redisReply* value = rep->element[i + 1];
    if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) continue;
    const std::string_view n(name->str, name->len);
    if (n == "record") f.record.emplace(value->str, value->len);
    if (n == "streams") f.streams.emplace(value->str, value->len);
  }
  return f;
}

absl::Status UnsealInto(const SealedCrypto& sealed, const Sealer& sealer, const std::string& aad,
                        control::CryptoSpec& spec) {
  switch (sealed.kind) {
    case SealedCrypto::Kind::kPlain:
      spec.kind = control::CryptoSpec::Kind::kPlain;
      return absl::OkStatus();
    case SealedCrypto::Kind::kPassthrough:
      spec.kind = control::CryptoSpec::Kind::kPassthrough;
      return absl::OkStatus();
    case SealedCrypto::Kind::kSdes: break;
  }
  absl::StatusOr<std::string> text = sealer.Unseal(sealed.sealed, aad);
  if (!text.ok()) return text.status();
  spec.kind = control::CryptoSpec::Kind::kSdes;
  spec.sdes = *text;  // the spec wipes its copy
  memory::WipeString(*text);
  return absl::OkStatus();
}

absl::Status UnsealText(const std::string& sealed, const Sealer& sealer, const std::string& aad,
                        std::string& out) {
  absl::StatusOr<std::string> text = sealer.Unseal(sealed, aad);
  if (!text.ok()) return text.status();
  out = *text;  // IceSpec wipes its copy
  memory::WipeString(*text);
  return absl::OkStatus();
}

// A WebRTC leg comes back with its ICE credentials, both sides', and the
// pair its checks had selected (the checkpoint's peer), so the peer's
// consent checks go on verifying; keyed (a profile in the record), with its
// keys in rx and tx and no handshake awaited; else to handshake afresh.
absl::Status RestoreWebRtc(const LegRecord& r, const std::string& aad,
                           const control::LegStreams& s, const Sealer& sealer,
                           control::LegRequest& leg) {
  leg.dtls = r.dtls;
  if (!r.ice) return absl::OkStatus();
  control::IceSpec& ice = leg.ice.emplace();
  ice.local_ufrag = r.ice->ufrag;
  if (absl::Status st = UnsealText(r.ice->pwd_sealed, sealer, aad + "ice", ice.local_pwd);
      !st.ok()) {
    return st;
  }
  if (!r.ice->peer_ufrag.empty()) {
    ice.ufrag = r.ice->peer_ufrag;
    if (absl::Status st = UnsealText(r.ice->peer_pwd_sealed, sealer, aad + "ice-peer", ice.pwd);
        !st.ok()) {
      return st;
    }
  }
  // An ICE leg's peer is the one its checks select, never a remote.
  if (s.remote && s.remote->ip.family == r.family) ice.selected = s.remote;
  leg.remote.reset();
  return absl::OkStatus();
}

}  // namespace

uint32_t SrtcpSkip(const config::HaConfig& config, uint64_t at_unix_ms, uint64_t now_unix_ms) {
  const uint64_t elapsed = now_unix_ms > at_unix_ms ? now_unix_ms - at_unix_ms : 0;
  const uint64_t ms = elapsed + config.checkpoint_ms;
  const uint64_t skip = (uint64_t{config.max_rtcp_pps} * ms + 999) / 1000 + 1;
  return static_cast<uint32_t>(std::min<uint64_t>(skip, 0x7fffffff));
}

uint64_t RtpSkip(const config::HaConfig& config, uint64_t at_unix_ms, uint64_t now_unix_ms) {
  // A day at most: a clock far off neither overflows nor moves the index
  // space (2^48) noticeably.
  const uint64_t elapsed = std::min<uint64_t>(
      now_unix_ms > at_unix_ms ? now_unix_ms - at_unix_ms : 0, 86400000);
  return (uint64_t{config.max_rtp_pps} * (elapsed + config.checkpoint_ms) + 999) / 1000 + 1;
}

namespace {

// Rule 2 (docs/ha.md): leg `i` protects what the other leg receives in
// plain, so after a crash that source may send again a SEQ Sluice already
// protected, with another payload. Every index up to the checkpoint plus
// `skip` counts as used, and the SEQ shift grows by `skip`, so that the
// source's next packets land above them and relay.
void SkipPlainSourcedSender(const SessionRecord& record, int i, uint64_t skip,
                            control::LegRequest& leg) {
  if (record.legs[static_cast<size_t>(i)].tx.kind != SealedCrypto::Kind::kSdes ||
      record.legs[static_cast<size_t>(1 - i)].rx.kind != SealedCrypto::Kind::kPlain) {
    return;
  }
  // With no stream in the checkpoint there is no index to keep clear of
  // (a leg that has sent nothing, such as one awaiting an answer; a stream
  // begun since the checkpoint is a documented limit): no shift.
  if (std::none_of(leg.tx_streams.begin(), leg.tx_streams.end(),
                   [](const srtp::StreamState& st) { return st.rtp_used; })) {
    return;
  }
  leg.tx_seq_offset = static_cast<uint16_t>(leg.tx_seq_offset + skip);
  for (srtp::StreamState& st : leg.tx_streams) {
    if (st.rtp_used) st.rtp_top = std::min(st.rtp_top + skip, (uint64_t{1} << 48) - 1);
  }
}

}  // namespace

absl::StatusOr<control::CreateRequest> RequestFromRecord(const SessionRecord& record,
                                                         const StreamsRecord& streams,
                                                         const Sealer& sealer,
                                                         const config::HaConfig& config,
                                                         uint64_t now_unix_ms) {
  control::CreateRequest request;
  request.session = record.session;
  request.key_group = record.key_group;
  const uint32_t skip = SrtcpSkip(config, streams.at_unix_ms, now_unix_ms);
  const uint64_t rtp_skip = RtpSkip(config, streams.at_unix_ms, now_unix_ms);
  for (int i = 0; i < 2; ++i) {
    const LegRecord& r = record.legs[static_cast<size_t>(i)];
    const control::LegStreams& s = streams.legs[static_cast<size_t>(i)];
    control::LegRequest& leg = request.legs.emplace_back();
    leg.name = r.name;
    leg.interface = r.interface;
    leg.family = r.family;
    leg.local_port = r.local_port;
    leg.remote = s.remote ? s.remote : r.remote;
    if (leg.remote && leg.remote->ip.family != r.family) leg.remote = r.remote;
    leg.strict_source = r.strict_source;
    leg.await_answer = r.await_answer;
    leg.rtcp = r.rtcp;
    leg.roc_on_rekey = r.roc_on_rekey;
    leg.aes192_kdf = r.aes192_kdf;
    const std::string aad = absl::StrCat(record.session, "/", i, "/");
    if (absl::Status st = UnsealInto(r.rx, sealer, aad + "rx", leg.rx); !st.ok()) return st;
    if (absl::Status st = UnsealInto(r.tx, sealer, aad + "tx", leg.tx); !st.ok()) return st;
    if (absl::Status st = RestoreWebRtc(r, aad, s, sealer, leg); !st.ok()) return st;
    leg.rx_streams = s.rx;
    leg.tx_streams = s.tx;
    leg.tx_seq_offset = s.tx_seq_offset;
    // RFC 3711 §9.1: an SRTCP index is never used twice under one key.
    for (srtp::StreamState& st : leg.tx_streams) {
      st.rtcp_index = static_cast<uint32_t>(
          std::min<uint64_t>(uint64_t{st.rtcp_index} + skip, 0x7ffffffe));
    }
    SkipPlainSourcedSender(record, i, rtp_skip, leg);
  }
  return request;
}

absl::StatusOr<control::CreateRequest> CheckRecord(
    const std::string& key, const std::optional<std::string>& record_text,
    const std::optional<std::string>& streams_text, const config::HaConfig& config,
    const Sealer& sealer, const std::function<bool(const std::string&)>& interface_known,
    uint64_t now_unix_ms) {
  if (!record_text || !streams_text) return absl::DataLossError("record or streams missing");
  absl::StatusOr<SessionRecord> record = DecodeSession(*record_text);
  if (!record.ok()) return absl::DataLossError(record.status().message());
  absl::StatusOr<StreamsRecord> streams = DecodeStreams(*streams_text);
  if (!streams.ok()) return absl::DataLossError(streams.status().message());
  if (SessionKeyPrefix(config.instance) + record->session != key) {
    return absl::DataLossError("the record names another session");
  }
  for (const LegRecord& leg : record->legs) {
    if (!interface_known(leg.interface)) {
      return absl::NotFoundError(
          absl::StrCat("no interface \"", absl::CHexEscape(leg.interface), "\""));
    }
  }
  absl::StatusOr<control::CreateRequest> request =
      RequestFromRecord(*record, *streams, sealer, config, now_unix_ms);
  if (!request.ok() && !absl::IsFailedPrecondition(request.status())) {
    return absl::DataLossError(request.status().message());
  }
  return request;
}

namespace {

// A record's ng state unsealed and checked ("" when it has none or nobody
// takes it); FailedPrecondition under another KEK, DataLoss when damaged.
absl::StatusOr<std::string> UnsealNg(const SessionRecord& record, const Sealer& sealer,
                                     const NgRestore& ng) {
  if (record.ng_sealed.empty() || !ng.check) return std::string();
  absl::StatusOr<std::string> text = sealer.Unseal(record.ng_sealed, record.session + "/ng");
  if (!text.ok()) return text.status();
  if (absl::Status s = ng.check(record.session, *text); !s.ok()) {
    memory::WipeString(*text);
    return absl::DataLossError(s.message());
  }
  return text;
}

// A record sealed under another KEK: sluiced must not start.
absl::Status WrongKek(const std::string& key, const absl::Status& why) {
  return absl::FailedPreconditionError(
      absl::StrCat("ha: ", absl::CHexEscape(key), ": ", why.message(),
                   "; sluiced refuses to restore (give it the KEK the sessions were sealed under)"));
}

// One key: read, decoded, unsealed, created; a refusal counted and logged.
// Only a wrong KEK is an error.
absl::Status RestoreOne(redisContext* c, const std::string& key, const config::HaConfig& config, const Sealer& sealer,
                        control::Operations& ops,
                        const std::function<bool(const std::string&)>& interface_known,
                        control::HaStats& counts, const std::function<void(std::string_view)>& log,
                        const NgRestore& ng) {
  const auto refuse = [&](uint64_t& counter, absl::string_view why) {
    ++counter;
    log::Event(log::Level::kWarning, "ha.restore_refused", {{"record", key}, {"reason", why}});
    if (log) log(absl::StrCat("ha: restore refused ", absl::CHexEscape(key), ": ", why));
    return absl::OkStatus();
  };
  absl::StatusOr<Fields> f = ReadFields(c, key);
  if (!f.ok()) return f.status();
  absl::StatusOr<control::CreateRequest> request =
      CheckRecord(key, f->record, f->streams, config, sealer, interface_known, UnixMs());
  if (absl::IsNotFound(request.status())) {
    return refuse(counts.refused_unknown_interface, request.status().message());
  }
  if (absl::IsFailedPrecondition(request.status())) return WrongKek(key, request.status());
  if (!request.ok()) return refuse(counts.refused_corrupt, request.status().message());
  const SessionRecord record = *DecodeSession(*f->record);  // CheckRecord decoded it
  absl::StatusOr<std::string> ng_state = UnsealNg(record, sealer, ng);
  if (!ng_state.ok()) {
    if (absl::IsFailedPrecondition(ng_state.status())) return WrongKek(key, ng_state.status());
    return refuse(counts.refused_corrupt, ng_state.status().message());
  }
  absl::StatusOr<control::SessionInfo> created = ops.Create(*request);
  absl::Status adopted = created.ok() && !ng_state->empty() && ng.adopt
                             ? ng.adopt(*ng_state, *request)
                             : absl::OkStatus();
  memory::WipeString(*ng_state);
  if (!created.ok()) return refuse(counts.refused_other, created.status().message());
  if (!adopted.ok()) {  // checked before: not expected; the session relays on
    log::Event(log::Level::kWarning, "ha.restore_refused", {{"record", key}, {"reason", adopted.message()}});
  }
  ++counts.restored;
  return absl::OkStatus();
}

}  // namespace

absl::Status Restore(const config::HaConfig& config, const Sealer& sealer,
                     control::Operations& ops,
                     const std::function<bool(const std::string&)>& interface_known,
                     control::HaStats& counts, const std::function<void(std::string_view)>& log,
                     const NgRestore& ng) {
  absl::StatusOr<Context> c = ConnectSync(config);
  if (!c.ok()) return c.status();
  const std::string prefix = SessionKeyPrefix(config.instance);
  absl::StatusOr<std::vector<std::string>> keys = ScanKeys(c->get(), prefix);
  if (!keys.ok()) return keys.status();
  for (const std::string& key : *keys) {
    absl::Status s =
        RestoreOne(c->get(), key, config, sealer, ops, interface_known, counts, log, ng);
    if (!s.ok()) return s;
  }
  log::Event(log::Level::kInfo, "ha.restored",
             {{"sessions", counts.restored}, {"redis", config.redis},
              {"refused_corrupt", counts.refused_corrupt},
              {"refused_unknown_interface", counts.refused_unknown_interface},
              {"refused_other", counts.refused_other}});
  if (!log) return absl::OkStatus();
  log(absl::StrCat("ha: restored ", counts.restored, " session(s) from ", config.redis,
                   "; refused ", counts.refused_corrupt, " corrupt, ",
                   counts.refused_unknown_interface, " for an unknown interface, ",
                   counts.refused_other, " other"));
  return absl::OkStatus();
}

absl::Status TakeHeartbeat(const config::HaConfig& config, const std::string& owner, TakeIf when) {
  absl::StatusOr<Context> c = ConnectSync(config);
  if (!c.ok()) return c.status();
  const std::string key = HeartbeatKey(config.instance);
  const std::string value = absl::StrCat(owner, " ", UnixMs());
  const std::string ttl = absl::StrCat(config.heartbeat_ttl_ms);
  absl::StatusOr<Reply> r;
  switch (when) {
    case TakeIf::kAbsent: r = Command(c->get(), {"SET", key, value, "PX", ttl, "NX"}); break;
    case TakeIf::kAbsentOrOurs:
      r = Command(c->get(), {"EVAL", kHeartbeatScript, "1", key, owner, absl::StrCat(UnixMs()), ttl});
      break;
    case TakeIf::kAlways: r = Command(c->get(), {"SET", key, value, "PX", ttl}); break;
  }
  if (!r.ok()) return r.status();
  // SET answers OK when it set the key; the script, nil.
  const bool taken = when == TakeIf::kAbsentOrOurs ? (*r)->type == REDIS_REPLY_NIL
                                                   : (*r)->type == REDIS_REPLY_STATUS;
  if (taken) return absl::OkStatus();
  std::string holder;
  if ((*r)->type == REDIS_REPLY_STRING) {
    holder.assign((*r)->str, (*r)->len);
  } else if (absl::StatusOr<Reply> g = Command(c->get(), {"GET", key});
             g.ok() && (*g)->type == REDIS_REPLY_STRING) {
    holder.assign((*g)->str, (*g)->len);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "ha: the heartbeat ", key, " is held by another instance (\"", absl::CHexEscape(holder),
      "\"): it is active"));
}

std::string HeartbeatOwner(const std::string& control_socket) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat(host, ":", control_socket);
}

}  // namespace sluice::ha
