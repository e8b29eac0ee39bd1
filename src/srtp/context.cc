#include "sluice/srtp/context.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/memory/hot_arena.h"

namespace sluice::srtp {

namespace {

// n_keys counts the carried previous key, if any, with the new ones.
absl::Status CheckOptions(size_t n_new_keys, size_t n_keys, const ContextOptions& options) {
  if (n_new_keys == 0 || n_keys > kMaxMasterKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("a crypto context holds 1 to ", kMaxMasterKeys, " master keys, got ",
                     n_keys));
  }
  if (options.replay_window < 64 || options.replay_window > 1024 ||
      options.replay_window % 64 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replay window must be 64 to 1024 packets in steps of 64, got ", options.replay_window));
  }
  if (options.max_streams < 1 || options.max_streams > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_streams must be 1 to 64, got ", options.max_streams));
  }
  return absl::OkStatus();
}

// One suite, one MKI length, distinct MKIs and distinct keys.
absl::Status CheckKeysAgree(std::span<const MasterKey> keys) {
  const crypto::Suite suite = keys[0].suite;
  const uint8_t mki_len = keys[0].mki_len;
  if (mki_len > kMaxMkiLen) {
    return absl::InvalidArgumentError(absl::StrCat("MKI length must be at most ", kMaxMkiLen,
                                                   " bytes, got ", mki_len));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].suite != suite) {
      return absl::InvalidArgumentError(
          absl::StrCat("master key ", i, " is for ", std::string(crypto::SuiteName(keys[i].suite)),
                       " but the context is ", std::string(crypto::SuiteName(suite))));
    }
    if (keys[i].mki_len != mki_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("every master key of a context needs the same MKI length; key ", i,
                       " has ", keys[i].mki_len, ", key 0 has ", mki_len));
    }
    for (size_t j = 0; j < i; ++j) {
      if (mki_len > 0 && std::memcmp(keys[i].mki.data(), keys[j].mki.data(), mki_len) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("master keys ", j, " and ", i, " have the same MKI"));
      }
      if (keys[i].SameKeyAs(keys[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat("master keys ", j, " and ", i, " are the same key"));
      }
    }
  }
  return absl::OkStatus();
}

// RFC 3711 §9.2: at most 2^48 SRTP and 2^31 SRTCP packets per master key;
// the SDES lifetime can only lower that.
uint64_t PacketLimit(uint64_t lifetime, uint64_t suite_max) {
  return lifetime == 0 ? suite_max : std::min(lifetime, suite_max);
}

}  // namespace

// The block, each part starting a cache line, in the order an RTP packet
// reads it: this object, the keys' lines, the first key's SRTP session key,
// the replay windows' words, the streams (then the record of retired ones,
// which no packet of a stream in a slot reads), the AES-GCM tables (the first
// key's SRTP ones first), then the other session keys. A packet of the first
// stream with the first key reads lines 0 to 6 and two more a line or two
// apart, nearly one run of memory rather than a few.
struct Context::Layout {
  static constexpr size_t kLine = 64;
  static constexpr size_t Lines(size_t bytes) { return (bytes + kLine - 1) & ~(kLine - 1); }

  Layout(size_t n_keys, const crypto::SuiteInfo& info, const ContextOptions& options)
      : n_keys(n_keys),
        n_tables(info.cipher == crypto::CipherKind::kAesGcm ? 2 * n_keys : 0),
        words(ReplayWindow::StorageBits(options.replay_window) / 64),
        keys_at(Lines(sizeof(Context))),
        first_key_at(keys_at + n_keys * sizeof(Key)),
        words_at(first_key_at + sizeof(crypto::SessionKey)),
        streams_at(words_at + Lines(size_t{options.max_streams} * 2 * words * 8)),
        roc_at(streams_at + options.max_streams * sizeof(Stream) +
               Lines(size_t{options.max_streams} * kRetiredPerStream * sizeof(Retired))),
        tables_at(roc_at + (options.roc_on_rekey == RocOnRekey::kDetect
                                ? Lines(size_t{options.max_streams} * sizeof(RocTrial))
                                : 0)),
        other_keys_at(tables_at + n_tables * sizeof(crypto::GcmTables)),
        total(other_keys_at + (2 * n_keys - 1) * sizeof(crypto::SessionKey)) {}

  // Session key j: SRTP of key j / 2 when j is even, SRTCP when odd.
  size_t session_key_at(size_t j) const {
    return j == 0 ? first_key_at : other_keys_at + (j - 1) * sizeof(crypto::SessionKey);
  }

  size_t n_keys, n_tables;
  uint32_t words;  // 64-bit words per replay window
  size_t keys_at, first_key_at, words_at, streams_at, roc_at, tables_at, other_keys_at, total;
};

absl::StatusOr<std::unique_ptr<Context>> Context::Create(std::span<const MasterKey> keys,
                                                         const ContextOptions& options,
                                                         const Context* previous) {
  const size_t n_keys = keys.size() + (previous != nullptr ? 1 : 0);
  if (absl::Status st = CheckOptions(keys.size(), n_keys, options); !st.ok()) return st;
  if (absl::Status st = CheckKeysAgree(keys); !st.ok()) return st;
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(keys[0].suite);
  const Key* carried = previous != nullptr ? &previous->keys_[0] : nullptr;
  if (absl::Status st = CheckPrevious(keys, previous); !st.ok()) return st;
  if (n_keys > 1 && keys[0].mki_len == 0 && !options.trial_keys) {
    return absl::InvalidArgumentError("several master keys in one context need MKIs");
  }
  // From the placement on, the context owns its block: a failure frees it
  // through the destroying delete, which wipes whatever keys were made.
  std::unique_ptr<Context> ctx = Place(Layout(n_keys, info, options), info, options,
                                       keys[0].mki_len);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status st = ctx->DeriveKey(i, keys[i]); !st.ok()) return st;
    if (carried != nullptr && crypto::SamePreparedKey(*ctx->keys_[i].srtp, *carried->srtp)) {
      return absl::InvalidArgumentError(
          absl::StrCat("master key ", i, " is the previous context's key"));
    }
  }
  if (carried != nullptr) ctx->CarryKey(*carried);
  ctx->SetActiveKey(0);
  return ctx;
}

// The previous context's key must be of the same suite and MKI length, and
// its MKI must differ from every new key's.
absl::Status Context::CheckPrevious(std::span<const MasterKey> keys, const Context* previous) {
  if (previous == nullptr) return absl::OkStatus();
  const uint8_t mki_len = keys[0].mki_len;
  if (previous->suite_ != &crypto::GetSuiteInfo(keys[0].suite) || previous->mki_len_ != mki_len) {
    return absl::InvalidArgumentError(
        "the previous context's key is of another suite or MKI length");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (mki_len > 0 &&
        std::memcmp(keys[i].mki.data(), previous->keys_[0].mki.data(), mki_len) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("master key ", i, " has the previous key's MKI"));
    }
  }
  return absl::OkStatus();
}

// Allocates the block and constructs every part in it: keys with empty
// session keys (and AES-GCM tables), streams with zeroed replay windows.
std::unique_ptr<Context> Context::Place(const Layout& at, const crypto::SuiteInfo& info,
                                        const ContextOptions& options, uint8_t mki_len) {
  static_assert(sizeof(Key) % Layout::kLine == 0 &&
                sizeof(crypto::SessionKey) % Layout::kLine == 0 &&
                sizeof(crypto::GcmTables) % Layout::kLine == 0 &&
                sizeof(Stream) % Layout::kLine == 0);
  static_assert(Layout::kLine == memory::kHotAlignment);
  char* block = static_cast<char*>(memory::AllocateHot(at.total));
  std::unique_ptr<Context> ctx(new (block) Context());
  ctx->memory_bytes_ = at.total;  // what the destroying delete frees
  ctx->suite_ = &info;
  ctx->options_ = options;
  ctx->mki_len_ = mki_len;
  ctx->srtp_overhead_ = static_cast<uint8_t>(info.srtp_tag_len + mki_len);
  Key* key_array = reinterpret_cast<Key*>(block + at.keys_at);
  auto* tables = reinterpret_cast<crypto::GcmTables*>(block + at.tables_at);
  for (size_t i = 0; i < at.n_keys; ++i) {
    Key* k = new (&key_array[i]) Key();
    k->srtp = new (block + at.session_key_at(2 * i)) crypto::SessionKey();
    k->srtcp = new (block + at.session_key_at(2 * i + 1)) crypto::SessionKey();
    if (at.n_tables > 0) {
      k->srtp->gcm = new (&tables[2 * i]) crypto::GcmTables();
      k->srtcp->gcm = new (&tables[2 * i + 1]) crypto::GcmTables();
    }
  }
  ctx->keys_ = {key_array, at.n_keys};
  ctx->gcm_tables_ = {tables, at.n_tables};
  Stream* streams = reinterpret_cast<Stream*>(block + at.streams_at);
  ctx->streams_ = {streams, options.max_streams};
  ctx->window_words_ = reinterpret_cast<uint64_t*>(block + at.words_at);
  std::fill_n(ctx->window_words_, size_t{options.max_streams} * 2 * at.words, uint64_t{0});
  for (Retired& r : ctx->retired()) new (&r) Retired();
  if (options.roc_on_rekey == RocOnRekey::kDetect) {
    for (uint32_t i = 0; i < options.max_streams; ++i) new (&ctx->roc_trials()[i]) RocTrial();
  }
  for (uint32_t i = 0; i < options.max_streams; ++i) {
    Stream& s = *new (&streams[i]) Stream();
    s.rtp_window.Init(&ctx->window_words_[(2 * i) * at.words], options.replay_window);
    s.rtcp_window.Init(&ctx->window_words_[(2 * i + 1) * at.words], options.replay_window);
  }
  return ctx;
}

// Master key i's session keys (RFC 3711 §4.3), MKI and packet limits.
absl::Status Context::DeriveKey(size_t i, const MasterKey& master) {
  Key& k = keys_[i];
  if (absl::Status st = crypto::DeriveSessionKeysInto(*suite_, master.key_bytes(),
                                                      master.salt_bytes(), *k.srtp, *k.srtcp,
                                                      options_.aes192_kdf);
      !st.ok()) {
    return st;
  }
  k.mki = master.mki;
  k.srtp_limit = PacketLimit(master.lifetime, suite_->max_srtp_packets);
  k.srtcp_limit = PacketLimit(master.lifetime, suite_->max_srtcp_packets);
  return absl::OkStatus();
}

// The previous context's first key, as the last key: its prepared keys,
// limits, MKI and its packet counts so far (the owner is still counting
// there: AdoptKeyCountsFrom takes the final counts at the hand-over).
void Context::CarryKey(const Key& carried) {
  Key& k = keys_.back();
  crypto::CopyPreparedKey(*carried.srtp, *k.srtp);
  crypto::CopyPreparedKey(*carried.srtcp, *k.srtcp);
  k.mki = carried.mki;
  k.srtp_limit = carried.srtp_limit;
  k.srtcp_limit = carried.srtcp_limit;
  k.srtp_count = carried.srtp_count;
  k.srtcp_count = carried.srtcp_count;
  carried_ = static_cast<int8_t>(keys_.size() - 1);
}

void Context::AdoptKeyCountsFrom(const Context& old) noexcept {
  if (carried_ < 0 || old.suite_ != suite_) return;
  Key& k = keys_[static_cast<size_t>(carried_)];
  for (const Key& from : old.keys_) {
    if (crypto::SamePreparedKey(*from.srtp, *k.srtp)) {
      k.srtp_count = std::max(k.srtp_count, from.srtp_count);
      k.srtcp_count = std::max(k.srtcp_count, from.srtcp_count);
      return;
    }
  }
}

Context::~Context() {
  // The session keys wipe themselves; the GCM tables in this block too.
  for (Key& k : keys_) {
    k.srtp->~SessionKey();
    k.srtcp->~SessionKey();
  }
  for (crypto::GcmTables& t : gcm_tables_) t.~GcmTables();
}

void Context::operator delete(Context* ctx, std::destroying_delete_t) noexcept {
  const size_t bytes = ctx->memory_bytes_;
  ctx->~Context();
  memory::FreeHot(ctx, bytes);
}

bool Context::exhausted(int index) const {
  const Key& k = keys_[static_cast<size_t>(index)];
  const uint64_t srtcp = LoadCount(k.srtcp_count);
  return LoadCount(k.srtp_count) + srtcp >= k.srtp_limit || srtcp >= k.srtcp_limit;
}

uint32_t Context::KeyUsedPercent(int index) const noexcept {
  const Key& k = keys_[static_cast<size_t>(index)];
  const uint64_t srtcp = LoadCount(k.srtcp_count);
  const uint64_t both = LoadCount(k.srtp_count) + srtcp;
  // Counts stay below 2^49, limits at most 2^48: no overflow at * 100.
  const uint64_t of_srtp = k.srtp_limit == 0 ? 100 : both * 100 / k.srtp_limit;
  const uint64_t of_srtcp = k.srtcp_limit == 0 ? 100 : srtcp * 100 / k.srtcp_limit;
  return static_cast<uint32_t>(std::min<uint64_t>(100, std::max(of_srtp, of_srtcp)));
}

uint32_t Context::UsedPercent() const noexcept {
  uint32_t most = 0;
  for (int i = 0; i < key_count(); ++i) {
    if (i != carried_) most = std::max(most, KeyUsedPercent(i));
  }
  return most;
}

void Context::AdoptStreamsFrom(const Context& old) noexcept {
  // RFC 4568 §7.1.4: a new crypto context; nothing of the old one carries
  // over (its keys are gone with it, so no index repeats under a key).
  if (roc_on_rekey() == RocOnRekey::kReset) return;
  InheritRetired(old);
  for (const Stream& from : old.streams_) {
    if (!from.in_use()) continue;
    Stream* to = FindOrAddStream(from.ssrc, from.last_used - 1);
    if (to == nullptr) {
      // Fewer slots than before: the rest are remembered where there is room.
      bool full = false;
      if (Retired* r = RetireInto(from, from.ssrc, &full); r != nullptr) Remember(from, *r);
      continue;
    }
    to->rtp_window.CopyFrom(from.rtp_window);
    to->rtcp_window.CopyFrom(from.rtcp_window);
    to->srtcp_index = from.srtcp_index;
    if (roc_on_rekey() == RocOnRekey::kDetect && !to->rtp_window.empty() && to->roc() > 0) {
      SetRocState(*to, RocAfterRekey::kUndecided, kRocTrialPackets);
      roc_watch_ = true;
    }
  }
}

bool Context::MarkRocTrial(uint32_t ssrc, int k) noexcept {
  Stream* s = FindStream(ssrc);
  if (s == nullptr || k == carried_) return false;
  RocTrial& t = roc_trial(*s);
  if (t.state != RocAfterRekey::kUndecided || t.trials_left == 0) return false;
  --t.trials_left;
  if (t.trials_left == 0) RecomputeRocWatch();
  return true;
}

bool Context::DecideRoc(Stream& s, bool reset, uint32_t kept_roc) noexcept {
  RocTrial& t = roc_trial(s);
  const RocAfterRekey want = reset ? RocAfterRekey::kReset : RocAfterRekey::kKept;
  if (t.state != RocAfterRekey::kUndecided) return t.state == want;
  // RFC 4568 §7.1.4: the stream's index space starts again at ROC 0; the
  // window keeps what it held, moved down with it, so nothing accepted under
  // the kept ROC is accepted again under ROC 0.
  if (reset) s.rtp_window.Rebase(uint64_t{kept_roc} << 16);
  SetRocState(s, want, 0);
  RecomputeRocWatch();
  return true;
}

void Context::SetRocState(Stream& s, RocAfterRekey state, uint8_t trials) noexcept {
  RocTrial& t = roc_trial(s);
  std::atomic_ref<RocAfterRekey>(t.state).store(state, std::memory_order_relaxed);
  t.trials_left = trials;
}

void Context::RecomputeRocWatch() noexcept {
  roc_watch_ = false;
  for (const Stream& other : streams_) {
    const RocTrial& o = roc_trial(other);
    roc_watch_ = roc_watch_ || (o.state == RocAfterRekey::kUndecided && o.trials_left > 0);
  }
}

RocAfterRekey Context::roc_after_rekey() const noexcept {
  if (roc_on_rekey() != RocOnRekey::kDetect) return RocAfterRekey::kNone;
  bool undecided = false, kept = false;
  for (uint32_t i = 0; i < streams_.size(); ++i) {
    const RocAfterRekey st = std::atomic_ref<RocAfterRekey>(roc_trials()[i].state)
                                 .load(std::memory_order_relaxed);
    if (st == RocAfterRekey::kReset) return st;
    undecided = undecided || st == RocAfterRekey::kUndecided;
    kept = kept || st == RocAfterRekey::kKept;
  }
  return undecided ? RocAfterRekey::kUndecided : kept ? RocAfterRekey::kKept : RocAfterRekey::kNone;
}

// Old's records guard indices used under old's keys: kept when this context
// holds one of them (an old key carried for the overlap), as inherited ones.
// What old itself inherited guards keys older still, which old held and this
// context does not (a re-key never brings a used key back): dropped.
void Context::InheritRetired(const Context& old) noexcept {
  bool shared_key = false;
  for (const Key& mine : keys_) {
    for (const Key& theirs : old.keys_) {
      shared_key = shared_key || crypto::SamePreparedKey(*mine.srtp, *theirs.srtp);
    }
  }
  for (Retired& r : retired()) r = Retired();
  if (!shared_key) return;
  std::span<Retired> to = retired();
  size_t n = 0;
  for (const Retired& r : old.retired()) {
    if (!r.used() || (r.rtp_next & Retired::kInherited) != 0 || n == to.size()) continue;
    to[n] = r;
    to[n++].rtp_next |= Retired::kInherited;
  }
}

std::vector<StreamState> Context::SnapshotStreams(bool sender) const {
  std::vector<StreamState> out;
  for (const Stream& s : streams_) {
    const uint64_t used = std::atomic_ref<uint64_t>(const_cast<uint64_t&>(s.last_used))
                              .load(std::memory_order_relaxed);
    if (used == 0) continue;
    StreamState st;
    st.ssrc = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s.ssrc)).load(std::memory_order_relaxed);
    st.rtp_used = !s.rtp_window.empty_relaxed();
    st.rtp_top = st.rtp_used ? s.rtp_window.top_relaxed() : 0;
    if (sender) {
      st.rtcp_index = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s.srtcp_index))
                          .load(std::memory_order_relaxed);
    } else if (!s.rtcp_window.empty_relaxed()) {
      st.rtcp_index = static_cast<uint32_t>(s.rtcp_window.top_relaxed());
    }
    out.push_back(st);
  }
  return out;
}

bool Context::RestoreStream(const StreamState& state, bool sender) noexcept {
  Stream* s = FindOrAddStream(state.ssrc, 0);
  if (s == nullptr) return false;
  if (state.rtp_used) s->rtp_window.Resume(state.rtp_top);
  if (sender) {
    s->srtcp_index = state.rtcp_index;
  } else if (state.rtcp_index != 0) {
    s->rtcp_window.Resume(state.rtcp_index);
  }
  return true;
}

void Context::SeedRtpStream(uint32_t ssrc, uint32_t roc, uint16_t highest_seq) noexcept {
  const uint64_t index = (uint64_t{roc} << 16) | highest_seq;
  Stream* s = FindOrAddStream(ssrc, 0);
  if (s != nullptr && (s->rtp_window.empty() || s->rtp_window.top() < index)) {
    s->rtp_window.Seed(index);
  }
}

const Context::Stream* Context::ReclaimableStream(uint64_t now) const noexcept {
  const Stream* lru = nullptr;
  for (const Stream& s : streams_) {
    if (!s.in_use()) return &s;
    if (lru == nullptr || s.last_used < lru->last_used) lru = &s;
  }
  // last_used is the clock + 1; a clock behind it (a stream carried over
  // from a context another clock drove) counts as in use now.
  const uint64_t idle_since = lru->last_used - 1;
  if (now < idle_since || now - idle_since < options_.stream_idle) return nullptr;
  return lru;
}

// A slot reclaimed from an idle SSRC: the idle one is remembered first (so
// that, should it come back, it never uses or accepts an index twice under
// these keys: RFC 3711 §9.1 keystream reuse, §3.3.2 replay), and with no
// room to remember it the slot is not reclaimed. The new SSRC starts a
// stream of its own (RFC 3711 §3.3.1: its ROC starts at 0), or resumes from
// its own record.
Context::Stream* Context::ClaimStream(uint32_t ssrc, uint64_t now) noexcept {
  Stream* s = const_cast<Stream*>(ReclaimableStream(now));
  if (s == nullptr) return nullptr;
  Retired* mine = FindRetired(ssrc);
  const Retired resume = mine != nullptr ? *mine : Retired();
  if (s->in_use()) {
    bool full = false;
    Retired* into = RetireInto(*s, ssrc, &full);
    if (full) return nullptr;
    if (into != nullptr) Remember(*s, *into);
    if (mine != nullptr && into != mine) *mine = Retired();
    s->rtp_window.Reset();
    s->rtcp_window.Reset();
    s->srtcp_index = 0;
  } else if (mine != nullptr) {
    *mine = Retired();
  }
  s->ssrc = ssrc;
  s->last_used = now + 1;
  if (roc_on_rekey() == RocOnRekey::kDetect && roc_trial(*s).state != RocAfterRekey::kNone) {
    SetRocState(*s, RocAfterRekey::kNone, 0);
    RecomputeRocWatch();
  }
  if (resume.used()) Resume(resume, *s);
  return s;
}

bool Context::CanAddStream(uint32_t ssrc, uint64_t now) const noexcept {
  const Stream* s = ReclaimableStream(now);
  if (s == nullptr) return false;
  if (!s->in_use()) return true;
  bool full = false;
  RetireInto(*s, ssrc, &full);
  return !full;
}

bool Context::RetiredRtpTop(uint32_t ssrc, uint64_t* top) const noexcept {
  const Retired* r = FindRetired(ssrc);
  if (r == nullptr || (r->rtp_next & Retired::kIndexMask) == 0) return false;
  *top = (r->rtp_next & Retired::kIndexMask) - 1;
  return true;
}

Context::Retired* Context::FindRetired(uint32_t ssrc) const noexcept {
  for (Retired& r : retired()) {
    if (r.used() && r.ssrc == ssrc) return &r;
  }
  return nullptr;
}

Context::Retired* Context::RetireInto(const Stream& s, uint32_t ssrc, bool* full) const noexcept {
  *full = false;
  if (s.rtp_window.empty() && s.rtcp_window.empty() && s.srtcp_index == 0) return nullptr;
  if (Retired* mine = FindRetired(ssrc)) return mine;
  for (Retired& r : retired()) {
    if (!r.used()) return &r;
  }
  *full = true;
  return nullptr;
}

// A sender's SRTCP index is the last one it used (0: none); a receiver's
// window top is the highest it accepted.
void Context::Remember(const Stream& s, Retired& into) noexcept {
  uint32_t rtcp_next = s.srtcp_index == 0 ? 0 : s.srtcp_index + 1;
  if (!s.rtcp_window.empty()) {
    rtcp_next = std::max(rtcp_next, static_cast<uint32_t>(s.rtcp_window.top()) + 1);
  }
  const uint64_t rtp_next = s.rtp_window.empty() ? 0 : s.rtp_window.top() + 1;
  into = Retired{s.ssrc, rtcp_next, Retired::kUsed | rtp_next};
}

// The stream carries on after the highest indices it used: a sender's next
// SRTCP index follows, and nothing at or below them is accepted or sent.
void Context::Resume(const Retired& r, Stream& s) noexcept {
  const uint64_t rtp_next = r.rtp_next & Retired::kIndexMask;
  if (rtp_next != 0) s.rtp_window.Resume(rtp_next - 1);
  if (r.rtcp_next != 0) {
    s.rtcp_window.Resume(r.rtcp_next - 1);
    s.srtcp_index = r.rtcp_next - 1;
  }
}

int Context::FindKeyByMki(const uint8_t* mki) const noexcept {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].mki.data(), mki, mki_len_) == 0) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace sluice::srtp
