// The ng handler's state of one session as [ha] replicates it (docs/ha.md,
// "ng call state"): a bencoded dictionary, version kStateVersion, with the
// call's dialog state, the session's branch and its media section. It holds
// keys (the latest offer's, the replies' SDP): the replicator seals it whole.
// Decoding takes any bytes and checks every field's type and range.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "handler_state.h"
#include "sluice/ng/handler.h"

namespace sluice::ng {
namespace {

constexpr int64_t kStateVersion = 1;
// Bounds a record must keep (the handler never comes near them).
constexpr int64_t kMaxIndex = 255;   // branches of a call, sections of an offer
constexpr size_t kMaxItems = 64;     // tags, crypto lines, fingerprints, candidates

Value Flag(bool b) { return Value(int64_t{b ? 1 : 0}); }

Value Strings(const std::vector<std::string>& v) {
  Value::List out;
  for (const std::string& s : v) out.emplace_back(s);
  return Value(std::move(out));
}

Value PeerValue(const PeerTransport& p) {
  Value v(Value::Dict{});
  v.Set("setup", p.setup);
  v.Set("fingerprints", Strings(p.fingerprints));
  v.Set("ufrag", p.ufrag);
  v.Set("pwd", Value(p.pwd));
  return v;
}

Value LocalValue(const WebrtcRewrite& w) {
  Value v(Value::Dict{});
  v.Set("fingerprint", w.fingerprint);
  v.Set("setup", w.setup);
  v.Set("ufrag", w.ice_ufrag);
  v.Set("pwd", Value(w.ice_pwd));
  v.Set("candidates", Strings(w.candidates));
  return v;
}

// Reads a dictionary's fields; the first problem is kept (and every later
// read returns a default), so a decoder reads on and checks once.
class Reader {
 public:
  Reader(const Value* dict, std::string* error, std::string where)
      : d_(dict), error_(error), where_(std::move(where)) {
    if (d_ == nullptr || !d_->is_dict()) Fail("not a dictionary");
  }
  bool ok() const { return error_->empty(); }
  const Value* Get(const char* key, bool (Value::*is)() const) {
    const Value* v = ok() ? d_->Find(key) : nullptr;
    if (ok() && (v == nullptr || !(v->*is)())) Fail(absl::StrCat(key, " missing or of the wrong type"));
    return ok() ? v : nullptr;
  }
  bool Has(const char* key) const { return ok() && d_->Find(key) != nullptr; }
  int64_t Int(const char* key, int64_t max) {
    const Value* v = Get(key, &Value::is_int);
    if (v != nullptr && (v->as_int() < 0 || v->as_int() > max)) Fail(absl::StrCat(key, " out of range"));
    return ok() ? v->as_int() : 0;
  }
  bool Bool(const char* key) { return Int(key, 1) == 1; }
  std::string Str(const char* key) {
    const Value* v = Get(key, &Value::is_string);
    return v ? std::string(v->str()) : std::string();
  }
  String Secret(const char* key) {
    const Value* v = Get(key, &Value::is_string);
    return v ? v->as_string() : String();
  }
  std::vector<std::string> StrList(const char* key) {
    std::vector<std::string> out;
    const Value* v = Get(key, &Value::is_list);
    if (v != nullptr && v->as_list().size() > kMaxItems) Fail(absl::StrCat(key, ": too many"));
    for (size_t i = 0; ok() && v != nullptr && i < v->as_list().size(); ++i) {
      if (!v->as_list()[i].is_string()) Fail(absl::StrCat(key, ": not a string"));
      if (ok()) out.emplace_back(v->as_list()[i].str());
    }
    return out;
  }
  const Value::List* List(const char* key, size_t max) {
    const Value* v = Get(key, &Value::is_list);
    if (v != nullptr && v->as_list().size() > max) Fail(absl::StrCat(key, ": too many"));
    return ok() ? &v->as_list() : nullptr;
  }
  packet::Endpoint Endpoint(const char* key) {
    std::optional<packet::Endpoint> e = packet::Endpoint::Parse(Str(key));
    if (ok() && !e) Fail(absl::StrCat(key, ": not an address and port"));
    return e.value_or(packet::Endpoint{});
  }
  void Fail(std::string_view what) {
    if (ok()) *error_ = absl::StrCat(where_, ": ", std::string(what));
  }

 private:
  const Value* d_;
  std::string* error_;
  std::string where_;
};

PeerTransport PeerFrom(const Value* v, std::string* error) {
  Reader r(v, error, "peer transport");
  PeerTransport p;
  p.setup = r.Str("setup");
  p.fingerprints = r.StrList("fingerprints");
  p.ufrag = r.Str("ufrag");
  p.pwd = r.Secret("pwd");
  return p;
}

WebrtcRewrite LocalFrom(const Value* v, std::string* error) {
  Reader r(v, error, "local transport");
  WebrtcRewrite w;
  w.fingerprint = r.Str("fingerprint");
  w.setup = r.Str("setup");
  w.ice_ufrag = r.Str("ufrag");
  w.ice_pwd = r.Secret("pwd");
  w.candidates = r.StrList("candidates");
  return w;
}

}  // namespace

// Encodes and decodes the handler's private state (a friend of Handler).
class StateCodec {
 public:
  using Stream = Handler::Stream;
  using Branch = Handler::Branch;
  using OfferedMedia = Handler::OfferedMedia;

  // One session's state, decoded: its call's, its branch's (streams apart)
  // and its own media section's.
  struct Saved {
    std::string call_id;
    uint64_t seq = 0;
    bool answered = false;
    size_t branch = 0, stream = 0;
    Branch b;
    Stream s;
  };

  static Value Encode(const std::string& call_id, const Handler::Call& call, size_t bi,
                      size_t si) {
    Value v(Value::Dict{});
    v.Set("v", kStateVersion);
    v.Set("call-id", call_id);
    v.Set("seq", static_cast<int64_t>(call.seq & INT64_MAX));
    v.Set("answered", Flag(call.answered));
    v.Set("branch", static_cast<int64_t>(bi));
    v.Set("stream", static_cast<int64_t>(si));
    v.Set("dialog", BranchValue(call.branches[bi]));
    v.Set("media", StreamValue(call.branches[bi].streams[si]));
    return v;
  }

  static absl::Status Decode(std::string_view state, const std::string& session, Saved& out) {
    absl::StatusOr<Value> v = ng::Decode(state);
    if (!v.ok()) return absl::DataLossError(absl::StrCat("ng state: ", v.status().message()));
    std::string error;
    Reader r(&*v, &error, "ng state");
    if (r.Int("v", INT64_MAX) != kStateVersion && r.ok()) {
      return absl::DataLossError(absl::StrCat("ng state: unknown version (this sluiced reads v",
                                              kStateVersion, ")"));
    }
    out.call_id = r.Str("call-id");
    out.seq = static_cast<uint64_t>(r.Int("seq", INT64_MAX));
    out.answered = r.Bool("answered");
    out.branch = static_cast<size_t>(r.Int("branch", kMaxIndex));
    out.stream = static_cast<size_t>(r.Int("stream", kMaxIndex));
    if (r.ok()) BranchFrom(r.Get("dialog", &Value::is_dict), &error, out.b);
    if (r.ok()) StreamFrom(r.Get("media", &Value::is_dict), &error, out.s);
    if (r.ok() && out.call_id.empty()) r.Fail("no call-id");
    if (r.ok() && out.s.session != session) r.Fail("names another session");
    if (!error.empty()) return absl::DataLossError(error);
    return absl::OkStatus();
  }

  // Adopts a decoded session into the handler: its call made (or found),
  // its branch's dialog state taken when this record is the latest of the
  // branch, its media section put in place.
  static void Adopt(Handler& h, Saved saved, const control::CreateRequest& create) {
    auto [it, is_new] = h.calls_.try_emplace(saved.call_id);
    Handler::Call& call = it->second;
    if (is_new) {
      // An unanswered call's offer timeout starts again from the restore.
      call.offered_at_ms = h.options_.now_ms();
      h.unanswered_.emplace_back(call.offered_at_ms, saved.call_id);
    }
    if (is_new || saved.seq >= call.seq) {
      call.seq = saved.seq;
      call.answered = saved.answered;
    }
    if (call.branches.size() <= saved.branch) {
      // Branches no record names were deleted: their indices stay taken.
      const size_t before = call.branches.size();
      call.branches.resize(saved.branch + 1);
      for (size_t i = before; i < call.branches.size(); ++i) call.branches[i].gone = true;
    }
    Branch& b = call.branches[saved.branch];
    if (b.gone || saved.seq >= b.seq) {
      std::vector<Stream> streams = std::move(b.streams);
      b = std::move(saved.b);
      b.streams = std::move(streams);
      b.seq = saved.seq;
    }
    b.streams.resize(std::max({b.streams.size(), saved.stream + 1, b.offered.size()}));
    Stream& s = b.streams[saved.stream];
    s = std::move(saved.s);
    for (size_t leg = 0; leg < 2 && leg < create.legs.size(); ++leg) {
      Handler::RememberKeys(s, static_cast<int>(leg), create.legs[leg].rx, create.legs[leg].tx);
    }
    h.session_calls_[s.session] = saved.call_id;
  }

 private:
  static Value OfferedValue(const OfferedMedia& o) {
    Value v(Value::Dict{});
    v.Set("enabled", Flag(o.enabled));
    v.Set("offer-proto", o.offer_proto);
    v.Set("offerer-srtp", Flag(o.offerer_srtp));
    v.Set("accepted-tag", static_cast<int64_t>(o.accepted_tag));
    v.Set("offerer-rx", Value(o.offerer_rx));
    v.Set("offerer-tx", Value(o.offerer_tx));
    v.Set("answerer-srtp", Flag(o.answerer_srtp));
    Value::List offered;
    for (const SdpCrypto& c : o.offered) {
      Value line(Value::Dict{});
      line.Set("tag", static_cast<int64_t>(c.tag));
      line.Set("suite", c.suite_name);
      line.Set("value", Value(c.value));
      offered.push_back(std::move(line));
    }
    v.Set("offered", Value(std::move(offered)));
    if (o.offerer_remote) v.Set("offerer-remote", o.offerer_remote->ToString());
    v.Set("hold", Flag(o.on_hold));
    if (o.offerer_roc) v.Set("offerer-roc", static_cast<int64_t>(*o.offerer_roc));
    v.Set("offerer-dtls", Flag(o.offerer_dtls));
    v.Set("offerer-ice", Flag(o.offerer_ice));
    v.Set("offerer-transport", PeerValue(o.offerer_transport));
    v.Set("answerer-dtls", Flag(o.answerer_dtls));
    v.Set("answerer-ice", Flag(o.answerer_ice));
    v.Set("answerer-setup", o.answerer_setup);
    v.Set("answer-proto", o.answer_proto);
    if (o.offer_mid) v.Set("offer-mid", *o.offer_mid);
    v.Set("generated-mid", o.generated_mid);
    return v;
  }

  static void OfferedFrom(const Value* v, std::string* error, OfferedMedia& o) {
    Reader r(v, error, "offered media");
    o.enabled = r.Bool("enabled");
    o.offer_proto = r.Str("offer-proto");
    o.offerer_srtp = r.Bool("offerer-srtp");
    o.accepted_tag = static_cast<uint32_t>(r.Int("accepted-tag", UINT32_MAX));
    o.offerer_rx = r.Secret("offerer-rx");
    o.offerer_tx = r.Secret("offerer-tx");
    o.answerer_srtp = r.Bool("answerer-srtp");
    const Value::List* offered = r.List("offered", kMaxItems);
    for (size_t i = 0; offered != nullptr && i < offered->size() && r.ok(); ++i) {
      Reader line(&(*offered)[i], error, "offered a=crypto");
      SdpCrypto c;
      c.tag = static_cast<uint32_t>(line.Int("tag", UINT32_MAX));
      c.suite_name = line.Str("suite");
      c.value = line.Secret("value");
      o.offered.push_back(std::move(c));
    }
    if (r.Has("offerer-remote")) o.offerer_remote = r.Endpoint("offerer-remote");
    o.on_hold = r.Bool("hold");
    if (r.Has("offerer-roc")) {
      o.offerer_roc = static_cast<control::RocOnRekey>(
          r.Int("offerer-roc", static_cast<int64_t>(control::RocOnRekey::kReset)));
    }
    o.offerer_dtls = r.Bool("offerer-dtls");
    o.offerer_ice = r.Bool("offerer-ice");
    if (r.ok()) o.offerer_transport = PeerFrom(r.Get("offerer-transport", &Value::is_dict), error);
    o.answerer_dtls = r.Bool("answerer-dtls");
    o.answerer_ice = r.Bool("answerer-ice");
    o.answerer_setup = r.Str("answerer-setup");
    o.answer_proto = r.Str("answer-proto");
    if (r.Has("offer-mid")) o.offer_mid = r.Str("offer-mid");
    o.generated_mid = r.Str("generated-mid");
  }

  static Value BranchValue(const Branch& b) {
    Value v(Value::Dict{});
    v.Set("via-branch", b.via_branch);
    v.Set("tags", Strings({b.tags[0], b.tags[1]}));
    v.Set("aliases", Strings(b.aliases));
    v.Set("offerer", static_cast<int64_t>(b.offerer));
    v.Set("pending", Flag(b.pending));
    Value::List offered;
    for (const OfferedMedia& o : b.offered) offered.push_back(OfferedValue(o));
    v.Set("offered", Value(std::move(offered)));
    v.Set("offer-digest", b.offer_digest);
    v.Set("answer-digest", b.answer_digest);
    v.Set("offer-reply", Value(b.offer_reply));
    v.Set("answer-reply", Value(b.answer_reply));
    return v;
  }

  static void BranchFrom(const Value* v, std::string* error, Branch& b) {
    Reader r(v, error, "dialog");
    b.via_branch = r.Str("via-branch");
    const std::vector<std::string> tags = r.StrList("tags");
    if (r.ok() && tags.size() != 2) r.Fail("tags: not two");
    if (r.ok()) {
      b.tags[0] = tags[0];
      b.tags[1] = tags[1];
    }
    b.aliases = r.StrList("aliases");
    b.offerer = static_cast<int>(r.Int("offerer", 1));
    b.pending = r.Bool("pending");
    const Value::List* offered = r.List("offered", kMaxIndex);
    for (size_t i = 0; offered != nullptr && i < offered->size() && r.ok(); ++i) {
      OfferedFrom(&(*offered)[i], error, b.offered.emplace_back());
    }
    b.offer_digest = r.Str("offer-digest");
    b.answer_digest = r.Str("answer-digest");
    b.offer_reply = r.Secret("offer-reply");
    b.answer_reply = r.Secret("answer-reply");
  }

  static Value StreamValue(const Stream& s) {
    Value v(Value::Dict{});
    v.Set("session", s.session);
    v.Set("local", Strings({s.local[0].ToString(), s.local[1].ToString()}));
    v.Set("rtcp-mux", Value(Value::List{Flag(s.rtcp_mux[0]), Flag(s.rtcp_mux[1])}));
    Value::List legs;
    for (const Stream::Transport& t : s.transport) {
      Value leg(Value::Dict{});
      leg.Set("dtls", Flag(t.dtls));
      leg.Set("ice", Flag(t.ice));
      leg.Set("peer", PeerValue(t.peer));
      if (t.local) leg.Set("local", LocalValue(*t.local));
      legs.push_back(std::move(leg));
    }
    v.Set("transport", Value(std::move(legs)));
    return v;
  }

  static void StreamFrom(const Value* v, std::string* error, Stream& s) {
    Reader r(v, error, "media");
    s.session = r.Str("session");
    const std::vector<std::string> local = r.StrList("local");
    const Value::List* mux = r.List("rtcp-mux", 2);
    const Value::List* legs = r.List("transport", 2);
    if (r.ok() && (local.size() != 2 || mux->size() != 2 || legs->size() != 2)) {
      r.Fail("not two legs");
    }
    for (size_t i = 0; i < 2 && r.ok(); ++i) {
      std::optional<packet::Endpoint> e = packet::Endpoint::Parse(local[i]);
      if (!e || !(*mux)[i].is_int() || (*mux)[i].as_int() < 0 || (*mux)[i].as_int() > 1) {
        r.Fail("local or rtcp-mux not valid");
        break;
      }
      s.local[i] = *e;
      s.rtcp_mux[i] = (*mux)[i].as_int() == 1;
      Reader leg(&(*legs)[i], error, "transport");
      Stream::Transport& t = s.transport[i];
      t.dtls = leg.Bool("dtls");
      t.ice = leg.Bool("ice");
      if (leg.ok()) t.peer = PeerFrom(leg.Get("peer", &Value::is_dict), error);
      if (leg.Has("local")) t.local = LocalFrom(leg.Get("local", &Value::is_dict), error);
    }
    if (r.ok() && s.session.empty()) r.Fail("no session");
  }
};

std::optional<String> Handler::ExportSession(const std::string& session) const {
  auto at = session_calls_.find(session);
  if (at == session_calls_.end()) return std::nullopt;
  auto found = calls_.find(at->second);
  if (found == calls_.end()) return std::nullopt;
  const Call& call = found->second;
  for (size_t bi = 0; bi < call.branches.size(); ++bi) {
    for (size_t si = 0; si < call.branches[bi].streams.size(); ++si) {
      if (call.branches[bi].streams[si].session != session) continue;
      return Encode(StateCodec::Encode(at->second, call, bi, si));
    }
  }
  return std::nullopt;
}

absl::Status Handler::CheckSessionState(std::string_view state, const std::string& session) {
  StateCodec::Saved saved;
  return StateCodec::Decode(state, session, saved);
}

absl::Status Handler::RestoreSession(std::string_view state,
                                     const control::CreateRequest& create) {
  StateCodec::Saved saved;
  if (absl::Status s = StateCodec::Decode(state, create.session, saved); !s.ok()) return s;
  StateCodec::Adopt(*this, std::move(saved), create);
  return absl::OkStatus();
}

}  // namespace sluice::ng
